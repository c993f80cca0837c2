"""The VAPID key pair: made by `rapport admin vapid-keys`, read back from the settings."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from rapport.cli import app
from rapport.notifications._providers import PushMessage, PushTarget, providers_from
from rapport.notifications.vapid import new_key_pair
from tests.notifications.fakes import PushService
from tests.support import make_settings


def test_vapid_keys_prints_the_two_settings() -> None:
    result = CliRunner().invoke(app, ["admin", "vapid-keys"])

    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    assert set(lines) == {"RAPPORT_VAPID_PUBLIC_KEY", "RAPPORT_VAPID_PRIVATE_KEY"}


async def test_the_printed_pair_signs_pushes_the_service_accepts(
    push_service: PushService, http: httpx.AsyncClient
) -> None:
    result = CliRunner().invoke(app, ["admin", "vapid-keys"])
    lines = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    settings = make_settings(
        vapid_public_key=lines["RAPPORT_VAPID_PUBLIC_KEY"],
        vapid_private_key=lines["RAPPORT_VAPID_PRIVATE_KEY"],
        vapid_subject="https://rapport.test/contact",
    )
    providers = providers_from(settings, http)
    subscription = push_service.subscribe(application_server_key=providers.vapid_public_key)
    target = PushTarget("webpush", subscription.endpoint, subscription.p256dh, subscription.auth)

    outcome = await providers.push.send(target, PushMessage("t", "b", None, None, {}))

    assert providers.vapid_public_key == lines["RAPPORT_VAPID_PUBLIC_KEY"]
    assert outcome.delivered
    assert push_service.received[0].vapid_claims["sub"] == "https://rapport.test/contact"


async def test_a_public_key_that_is_not_the_private_keys_is_refused_at_start(http: httpx.AsyncClient) -> None:
    settings = make_settings(
        vapid_public_key=new_key_pair().public_key,
        vapid_private_key=new_key_pair().private_key,
        vapid_subject="mailto:ops@rapport.test",
    )

    with pytest.raises(ValueError, match="RAPPORT_VAPID_PUBLIC_KEY"):
        providers_from(settings, http)


def test_the_subject_must_be_a_contact_uri() -> None:
    with pytest.raises(ValueError, match="mailto"):
        make_settings(vapid_subject="ops@rapport.test")


async def test_a_pem_private_key_works_too(push_service: PushService, http: httpx.AsyncClient) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    providers = providers_from(make_settings(vapid_private_key=pem, vapid_subject="mailto:ops@rapport.test"), http)
    subscription = push_service.subscribe(application_server_key=providers.vapid_public_key)
    target = PushTarget("webpush", subscription.endpoint, subscription.p256dh, subscription.auth)

    assert (await providers.push.send(target, PushMessage("t", "b", None, None, {}))).delivered
