"""Signing in with the client: password, two-factor, API keys, refreshing by itself,
and signing out."""

from __future__ import annotations

import asyncio

import httpx
import pyotp
import pytest

from rapport.client import Client, NotSignedIn, TokenPair, TwoFactorRequired, Unauthorized
from rapport.config import Settings
from tests.support import Persona, bearer, make_settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Access tokens that live two seconds: long enough for a call, short enough to outlive.
    return make_settings(**{**settings.model_dump(), "access_token_ttl_seconds": 2})


async def test_wrong_password_is_unauthorized(server_url: str, alice: Persona) -> None:
    async with Client(server_url) as client:
        with pytest.raises(Unauthorized) as refused:
            await client.login(alice.email, "not the password")
        assert refused.value.slug == "invalid-credentials"
        with pytest.raises(NotSignedIn):
            await client.me()


async def test_two_factor_is_a_clear_exception_then_a_second_step(
    alice_client: Client, server_url: str, alice: Persona
) -> None:
    assert alice_client.tokens is not None
    async with httpx.AsyncClient(base_url=server_url, headers=bearer(alice_client.tokens.access_token)) as http:
        enrolment = (await http.post("/v1/auth/totp")).json()
        confirmed = await http.post("/v1/auth/totp/confirm", json={"code": pyotp.TOTP(enrolment["secret"]).now()})
    recovery = confirmed.json()["recovery_codes"][0]

    async with Client(server_url) as client:
        with pytest.raises(TwoFactorRequired) as challenge:
            await client.login(alice.email, alice.password)
        assert challenge.value.mfa_token and challenge.value.expires_in > 0
        tokens = await client.login_totp(challenge.value.mfa_token, recovery_code=recovery)
        assert str(tokens.user_id) == alice.user_id
        assert (await client.me()).two_factor_enabled


async def test_an_api_key_signs_a_bot_in(alice_client: Client, server_url: str, alice: Persona) -> None:
    made = await alice_client.create_api_key("echo bot")
    assert made.key.startswith("rk_")
    async with Client(server_url, api_key=made.key) as bot:
        assert str((await bot.me()).id) == alice.user_id
        assert bot.tokens is None


async def test_the_access_token_is_refreshed_before_it_expires(alice_client: Client) -> None:
    first = alice_client.tokens
    assert first is not None and first.expires_in == 2
    await asyncio.sleep(2.2)  # the first access token has expired
    assert (await alice_client.me()).email
    assert alice_client.tokens is not None and alice_client.tokens.access_token != first.access_token


async def test_a_refused_access_token_is_refreshed_once_and_the_call_retried(server_url: str, alice: Persona) -> None:
    async with Client(server_url) as client:
        real = await client.login(alice.email, alice.password)
        # An access token the server no longer accepts, that the client believes fresh.
        client.use_tokens(TokenPair.model_validate({**real.model_dump(), "access_token": "x.y.z", "expires_in": 900}))
        calls = await asyncio.gather(client.me(), client.me(), client.me())
        assert {str(me.id) for me in calls} == {alice.user_id}
        # Three calls met the refused token; the refreshes did not end the session.
        assert client.tokens is not None
        assert (await client.refresh()).session_id == real.session_id


async def test_logout_ends_the_session(server_url: str, alice: Persona) -> None:
    async with Client(server_url) as client:
        tokens = await client.login(alice.email, alice.password)
        await client.logout()
        with pytest.raises(NotSignedIn):
            await client.me()
    async with Client(server_url) as replay:
        replay.use_tokens(tokens)
        with pytest.raises(Unauthorized):
            await replay.refresh()
