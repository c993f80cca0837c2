"""Sign-in with an OpenID Connect ID token, against a real (fake) provider: an HTTP
server on 127.0.0.1 that publishes a JWKS of RSA keys, whose private halves sign the
tokens the tests present."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import update

from rapport.identity.models import users
from rapport.kernel.db import system_transaction
from tests.support import PASSWORD, bearer, create_verified_user, make_settings, problem_type

GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_CLIENT_ID = "rapport-web.apps.googleusercontent.com"
AUTH0_ISSUER = "https://rapport-test.eu.auth0.com/"
AUTH0_CLIENT_ID = "rapport-auth0-client"
DISABLED = ("suspended", "banned", "deleted")

pytestmark = pytest.mark.module_database


# ---------------------------------------------------------------------------------------
# The provider


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def jwk(self) -> dict:
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class Tenant:
    """One provider's JWKS endpoint: what it publishes and how often it was asked."""

    issuer: str
    audience: str
    path: str
    port: int
    keys: list[SigningKey]
    status: int = 200
    body: bytes | None = None  # served as is instead of the JWKS
    requests: int = 0

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def config(self) -> dict:
        return {"issuer": self.issuer, "audience": self.audience, "jwks_url": self.jwks_url}

    def token(self, *, key: SigningKey | None = None, headers: dict | None = None, **claims) -> str:
        """An ID token signed with the tenant's first key; a claim given as None is left out."""
        key = key or self.keys[0]
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "sub-alice",
            "iat": now,
            "exp": now + 3600,
            "email": "alice@example.com",
            "email_verified": True,
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key.private_key, algorithm="RS256", headers={"kid": key.kid, **(headers or {})})


class _JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        tenant: Tenant | None = self.server.tenants.get(self.path)  # type: ignore[attr-defined]
        if tenant is None:
            self.send_error(404)
            return
        tenant.requests += 1
        body = tenant.body if tenant.body is not None else json.dumps({"keys": [k.jwk() for k in tenant.keys]}).encode()
        self.send_response(tenant.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture(scope="session")
def jwks_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    server.tenants = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]


def _new_key(private_key: rsa.RSAPrivateKey) -> SigningKey:
    # Fresh key ids for each tenant: Rapport's key cache lives as long as the process.
    return SigningKey(kid=uuid.uuid4().hex[:16], private_key=private_key)


def _tenant(server, issuer: str, audience: str, private_key: rsa.RSAPrivateKey) -> Tenant:
    # A path of its own per tenant, so that no tenant sees keys cached for another.
    tenant = Tenant(
        issuer=issuer,
        audience=audience,
        path=f"/{uuid.uuid4().hex}/jwks.json",
        port=server.server_address[1],
        keys=[_new_key(private_key)],
    )
    server.tenants[tenant.path] = tenant
    return tenant


# The providers of the module's app; a test that counts their fetches or changes what they
# serve has providers and an app of its own (TestTheProvidersKeys).


@pytest.fixture(scope="module")
def google(jwks_server, rsa_keys) -> Tenant:
    return _tenant(jwks_server, GOOGLE_ISSUER, GOOGLE_CLIENT_ID, rsa_keys[0])


@pytest.fixture(scope="module")
def auth0(jwks_server, rsa_keys) -> Tenant:
    return _tenant(jwks_server, AUTH0_ISSUER, AUTH0_CLIENT_ID, rsa_keys[1])


@pytest.fixture(scope="module")
def flaky(jwks_server, rsa_keys) -> Tenant:
    """A provider whose JWKS endpoint a test breaks."""
    return _tenant(jwks_server, "https://flaky.example.com", "rapport", rsa_keys[2])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def module_settings(smtp_server, google, auth0, flaky):
    return settings_for(smtp_server, google, auth0, flaky)


@pytest.fixture
def settings(smtp_server, google, auth0, flaky):
    return settings_for(smtp_server, google, auth0, flaky)


def settings_for(smtp_server, google: Tenant, auth0: Tenant, flaky: Tenant):
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        oidc_providers={
            "google": google.config(),
            "auth0": auth0.config(),
            "flaky": flaky.config(),
            "down": {
                "issuer": "https://down.example.com",
                "audience": "rapport",
                "jwks_url": f"http://127.0.0.1:{_closed_port()}/jwks.json",
            },
        },
    )


async def oidc_login(client, provider: str, id_token: str, **device):
    return await client.post(f"/v1/auth/oidc/{provider}", json={"id_token": id_token, **device})


def outcome(response) -> tuple[int, str | None]:
    """The status and problem type of an answer, for comparing many at once."""
    is_problem = response.headers.get("content-type", "").startswith("application/problem+json")
    return response.status_code, problem_type(response) if is_problem else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict, claims: dict, sign) -> str:
    """A JWT put together by hand, for the algorithms PyJWT rightly refuses to sign with."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


# ---------------------------------------------------------------------------------------
# Accounts


async def test_first_sign_in_creates_an_account(client, google):
    response = await oidc_login(client, "google", google.token(), device_type="mobile", device_name="Pixel")
    assert response.status_code == 200, response.text
    me = await client.get("/v1/auth/me", headers=bearer(response.json()["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == response.json()["user_id"]
    assert (me.json()["email"], me.json()["status"], me.json()["email_verified"]) == (
        "alice@example.com",
        "active",
        True,
    )


async def test_sign_in_is_recorded_with_the_provider(client, google):
    tokens = (await oidc_login(client, "google", google.token())).json()
    history = await client.get("/v1/auth/login-history", headers=bearer(tokens["access_token"]))
    assert [(h["method"], h["succeeded"]) for h in history.json()["items"]] == [("oidc:google", True)]


async def test_same_subject_signs_in_to_the_same_account(client, google):
    first = await oidc_login(client, "google", google.token())
    # The address at the provider changed; the subject is what identifies the person.
    second = await oidc_login(client, "google", google.token(email="alice@new.example.com"))
    assert second.status_code == 200, second.text
    assert second.json()["user_id"] == first.json()["user_id"]


async def test_concurrent_first_sign_ins_make_one_account(client, google):
    responses = await asyncio.gather(*(oidc_login(client, "google", google.token()) for _ in range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
    assert len({r.json()["user_id"] for r in responses}) == 1


async def test_email_is_normalised(client, google):
    tokens = (await oidc_login(client, "google", google.token(email="  Alice@Example.COM "))).json()
    me = await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.json()["email"] == "alice@example.com"


@pytest.mark.parametrize(("provider", "email_verified"), [("google", True), ("auth0", "true")])
async def test_verified_email_links_to_the_existing_account(client, runtime, provider, email_verified, request):
    tenant: Tenant = request.getfixturevalue(provider)
    user_id = await create_verified_user(runtime, "alice@example.com")
    response = await oidc_login(client, provider, tenant.token(email_verified=email_verified))
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == user_id
    events = await client.get("/v1/auth/security-events", headers=bearer(response.json()["access_token"]))
    linked = [e for e in events.json()["items"] if e["event_type"] == "identity_linked"]
    assert [e["details"]["provider"] for e in linked] == [provider]


async def test_two_providers_reach_one_account(client, google, auth0):
    via_google = await oidc_login(client, "google", google.token())
    via_auth0 = await oidc_login(client, "auth0", auth0.token(sub="auth0|alice"))
    assert via_auth0.status_code == 200, via_auth0.text
    assert via_auth0.json()["user_id"] == via_google.json()["user_id"]


async def test_the_password_still_works_after_linking(client, runtime, google):
    await create_verified_user(runtime, "alice@example.com")
    await oidc_login(client, "google", google.token())
    response = await client.post("/v1/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.text


async def test_linking_an_unverified_registration_activates_it_and_drops_its_password(client, google):
    # Mallory registers alice's address with his own password and never verifies it;
    # when alice arrives through Google, mallory's password must not open her account.
    registered = await client.post(
        "/v1/auth/register", json={"email": "alice@example.com", "password": "mallory's password"}
    )
    assert registered.status_code == 202
    response = await oidc_login(client, "google", google.token())
    assert response.status_code == 200, response.text
    me = (await client.get("/v1/auth/me", headers=bearer(response.json()["access_token"]))).json()
    assert (me["status"], me["email_verified"]) == ("active", True)
    mallory = await client.post("/v1/auth/login", json={"email": "alice@example.com", "password": "mallory's password"})
    assert problem_type(mallory) == "invalid-credentials"


async def test_an_unverified_email_is_refused_whether_or_not_it_has_an_account(client, runtime, google, auth0):
    await create_verified_user(runtime, "alice@example.com")
    answers = {
        (name, repr(verified)): await oidc_login(client, name, provider.token(email=email, email_verified=verified))
        for name, provider, email in (("google", google, "alice@example.com"), ("auth0", auth0, "nobody@example.com"))
        for verified in (False, "false", None)
    }
    assert {k: outcome(r) for k, r in answers.items()} == dict.fromkeys(answers, (403, "email-not-verified"))


async def test_a_squatter_with_an_unverified_provider_address_gets_no_account(client, google, auth0):
    # Mallory's Auth0 tenant vouches for nothing: no account is made with alice's
    # address, so when alice signs in with Google the account is hers alone.
    refused = await oidc_login(client, "auth0", auth0.token(sub="auth0|mallory", email_verified=False))
    assert problem_type(refused) == "email-not-verified"
    response = await oidc_login(client, "google", google.token())
    assert response.status_code == 200, response.text


async def test_a_new_account_needs_an_email(client, google):
    answers = {
        repr(email): await oidc_login(client, "google", google.token(email=email))
        for email in (None, "", "not an address")
    }
    assert {k: outcome(r) for k, r in answers.items()} == dict.fromkeys(answers, (400, "email-required"))


async def test_a_known_subject_needs_no_email(client, google):
    first = await oidc_login(client, "google", google.token())
    second = await oidc_login(client, "google", google.token(email=None))
    assert second.json()["user_id"] == first.json()["user_id"]


async def test_disabled_account_is_refused(client, runtime, google):
    user_id = (await oidc_login(client, "google", google.token())).json()["user_id"]
    answers = {}
    for status in DISABLED:
        async with system_transaction(runtime.system_engine) as db:
            await db.execute(update(users).where(users.c.id == uuid.UUID(user_id)).values(status=status))
        answers[status] = await oidc_login(client, "google", google.token())
    assert {k: outcome(r) for k, r in answers.items()} == dict.fromkeys(DISABLED, (403, "account-disabled"))


async def test_disabled_account_is_not_linked(client, runtime, google):
    user_id = await create_verified_user(runtime, "alice@example.com")
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(users).where(users.c.id == uuid.UUID(user_id)).values(status="suspended"))
    response = await oidc_login(client, "google", google.token())
    assert problem_type(response) == "account-disabled"


async def test_account_with_two_factor_gets_a_challenge(client, runtime, google):
    await create_verified_user(runtime, "alice@example.com")
    password_tokens = (
        await client.post("/v1/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
    ).json()
    enrolment = (await client.post("/v1/auth/totp", headers=bearer(password_tokens["access_token"]))).json()
    confirmed = await client.post(
        "/v1/auth/totp/confirm",
        headers=bearer(password_tokens["access_token"]),
        json={"code": pyotp.TOTP(enrolment["secret"]).now()},
    )
    assert confirmed.status_code == 200, confirmed.text

    response = await oidc_login(client, "google", google.token())
    assert response.status_code == 200, response.text
    assert response.json()["mfa_required"] is True
    assert "access_token" not in response.json()


# ---------------------------------------------------------------------------------------
# Tokens Rapport refuses


def _expired(t: Tenant, keys) -> str:
    return t.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)


def _signed_by_another_key(t: Tenant, keys) -> str:
    # The published key id, the wrong private key.
    return t.token(key=SigningKey(kid=t.keys[0].kid, private_key=keys[2]))


def _alg_none(t: Tenant, keys) -> str:
    now = int(time.time())
    claims = {"iss": t.issuer, "aud": t.audience, "sub": "sub-alice", "iat": now, "exp": now + 3600}
    return hand_signed({"alg": "none", "kid": t.keys[0].kid}, claims, lambda _: b"")


def _hs256_with_the_public_key(t: Tenant, keys) -> str:
    # The classic algorithm confusion: the public key used as an HMAC secret.
    now = int(time.time())
    claims = {"iss": t.issuer, "aud": t.audience, "sub": "sub-alice", "iat": now, "exp": now + 3600}
    secret = t.keys[0].public_pem()
    return hand_signed(
        {"alg": "HS256", "kid": t.keys[0].kid}, claims, lambda data: hmac.new(secret, data, hashlib.sha256).digest()
    )


def _tampered(t: Tenant, keys) -> str:
    header, _, signature = t.token().split(".")
    payload = _b64(
        json.dumps(
            {
                "iss": t.issuer,
                "aud": t.audience,
                "sub": "sub-bob",
                "iat": int(time.time()),
                "exp": int(time.time()) + 3600,
            }
        ).encode()
    )
    return f"{header}.{payload}.{signature}"


INVALID_TOKENS = {
    "expired": _expired,
    "issued in the future": lambda t, keys: t.token(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200),
    "wrong audience": lambda t, keys: t.token(aud="someone-elses-client"),
    "several audiences without azp": lambda t, keys: t.token(aud=[t.audience, "other-client"]),
    "wrong issuer": lambda t, keys: t.token(iss="https://evil.example.com"),
    "bad signature": _signed_by_another_key,
    "tampered claims": _tampered,
    "unknown kid": lambda t, keys: t.token(key=_new_key(keys[2])),
    "alg none": _alg_none,
    "hs256": _hs256_with_the_public_key,
    "no exp": lambda t, keys: t.token(exp=None),
    "no sub": lambda t, keys: t.token(sub=None),
    "empty sub": lambda t, keys: t.token(sub=""),
    "sub not a string": lambda t, keys: t.token(sub=12345),
    "garbage": lambda t, keys: "not-a-jwt",
    "three garbage parts": lambda t, keys: "a.b.c",
}


async def test_invalid_tokens_are_refused(client, google, rsa_keys):
    # One database for all the cases: each refusal changes nothing.
    answers = {
        name: await oidc_login(client, "google", make(google, rsa_keys)) for name, make in INVALID_TOKENS.items()
    }
    assert {name: outcome(r) for name, r in answers.items()} == dict.fromkeys(INVALID_TOKENS, (401, "invalid-token"))


async def test_a_token_for_one_provider_does_not_work_at_another(client, google, auth0):
    response = await oidc_login(client, "auth0", google.token())
    assert problem_type(response) == "invalid-token"


async def test_several_audiences_with_our_azp_are_accepted(client, google):
    token = google.token(aud=[GOOGLE_CLIENT_ID, "other-client"], azp=GOOGLE_CLIENT_ID)
    response = await oidc_login(client, "google", token)
    assert response.status_code == 200, response.text


async def test_google_issuer_without_scheme_is_accepted(client, google):
    response = await oidc_login(client, "google", google.token(iss="accounts.google.com"))
    assert response.status_code == 200, response.text


async def test_oversized_token_is_a_validation_error(client):
    response = await oidc_login(client, "google", "a" * 8193)
    assert response.status_code == 422
    assert problem_type(response) == "validation-error"


async def test_unknown_provider(client, google):
    response = await oidc_login(client, "facebook", google.token())
    assert response.status_code == 404
    assert problem_type(response) == "unknown-identity-provider"


# ---------------------------------------------------------------------------------------
# The provider's keys


async def test_provider_down(client, google):
    response = await oidc_login(client, "down", google.token())
    assert response.status_code == 503
    assert problem_type(response) == "identity-provider-unavailable"


UNUSABLE_JWKS = {
    "server error": (500, b"oops"),
    "not json": (200, b"<html>not json</html>"),
    "not an object": (200, b"[]"),
    "no keys": (200, b'{"keys": []}'),
    "only a symmetric key": (200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]}'),
}


class TestTheProvidersKeys:
    """Providers of the test's own (a JWKS at a new address, new key ids) and an app started
    with them: Rapport's key cache lives as long as the process, and these tests count the
    provider's fetches or change what it serves."""

    @pytest.fixture
    def google(self, jwks_server, rsa_keys) -> Tenant:
        return _tenant(jwks_server, GOOGLE_ISSUER, GOOGLE_CLIENT_ID, rsa_keys[0])

    @pytest.fixture
    def flaky(self, jwks_server, rsa_keys) -> Tenant:
        return _tenant(jwks_server, "https://flaky.example.com", "rapport", rsa_keys[2])

    @pytest.fixture
    def app(self, fresh_app):
        return fresh_app

    async def test_provider_with_unusable_keys(self, client, flaky):
        answers = {}
        for name, (status, body) in UNUSABLE_JWKS.items():
            flaky.status, flaky.body = status, body
            answers[name] = await oidc_login(client, "flaky", flaky.token())
        expected = dict.fromkeys(UNUSABLE_JWKS, (503, "identity-provider-unavailable"))
        assert {name: outcome(r) for name, r in answers.items()} == expected

    async def test_keys_are_cached(self, client, google):
        for _ in range(3):
            assert (await oidc_login(client, "google", google.token())).status_code == 200
        assert google.requests == 1

    async def test_key_rotation(self, client, google, rsa_keys):
        old = google.keys[0]
        assert (await oidc_login(client, "google", google.token())).status_code == 200
        new = _new_key(rsa_keys[2])
        google.keys = [new]

        response = await oidc_login(client, "google", google.token(key=new))
        assert response.status_code == 200, response.text
        assert google.requests == 2
        retired = await oidc_login(client, "google", google.token(key=old))
        assert problem_type(retired) == "invalid-token"

    async def test_unknown_key_ids_refetch_at_most_once_in_a_while(self, client, google, rsa_keys):
        assert (await oidc_login(client, "google", google.token())).status_code == 200
        for _ in range(3):
            response = await oidc_login(client, "google", google.token(key=_new_key(rsa_keys[2])))
            assert problem_type(response) == "invalid-token"
        assert google.requests == 2
