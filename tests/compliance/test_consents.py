"""Consents: a person gives and withdraws each type, with the address and user agent it came
from; reads where each stands and the whole history; features that need a consent ask
`compliance.has_consent` (the e-mail digest leaves marketing out without
marketing_emails)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.message import Message
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.compliance import service
from rapport.kernel import jobs
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from rapport.notifications import tasks
from tests.support import Mailbox, Persona, problem_type

pytestmark = pytest.mark.module_database

TYPES = ["terms_of_service", "privacy_policy", "ai_features", "ai_coaching", "marketing_emails"]


async def give(client: httpx.AsyncClient, who: Persona, consent_type: str, granted: bool, **extra: object) -> dict:
    response = await client.post(
        "/v1/me/consents",
        json={"consent_type": consent_type, "granted": granted, **extra},
        headers={**who.headers, "User-Agent": "RapportTest/1.0"},
    )
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


async def states(client: httpx.AsyncClient, who: Persona) -> dict[str, bool]:
    response = await client.get("/v1/me/consents", headers=who.headers)
    assert response.status_code == 200, response.text
    return {item["consent_type"]: item["granted"] for item in response.json()["consents"]}


async def test_every_type_starts_not_given(client: httpx.AsyncClient, alice: Persona) -> None:
    response = await client.get("/v1/me/consents", headers=alice.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == alice.user_id
    assert [item["consent_type"] for item in body["consents"]] == TYPES
    assert all(item["granted"] is False and item["updated_at"] is None for item in body["consents"])


async def test_giving_and_withdrawing_is_kept_whole_with_address_and_user_agent(
    client: httpx.AsyncClient, alice: Persona
) -> None:
    given = await give(client, alice, "marketing_emails", True, document_version="2026-11")
    await give(client, alice, "terms_of_service", True)
    withdrawn = await give(client, alice, "marketing_emails", False)

    assert (given["ip_address"], given["user_agent"], given["document_version"]) == (
        "203.0.113.7",
        "RapportTest/1.0",
        "2026-11",
    )
    assert await states(client, alice) == {t: t == "terms_of_service" for t in TYPES}
    history = await client.get("/v1/me/consents/history", headers=alice.headers)
    assert history.status_code == 200, history.text
    assert [(item["id"], item["consent_type"], item["granted"]) for item in history.json()["items"]] == [
        (withdrawn["id"], "marketing_emails", False),
        (history.json()["items"][1]["id"], "terms_of_service", True),
        (given["id"], "marketing_emails", True),
    ]
    log = await client.get("/v1/me/compliance-log", headers=alice.headers)
    assert log.status_code == 200, log.text
    events = [(item["event_type"], item["details"]["consent_type"]) for item in log.json()["items"]]
    assert events == [
        ("consent_withdrawn", "marketing_emails"),
        ("consent_given", "terms_of_service"),
        ("consent_given", "marketing_emails"),
    ]
    assert all(item["user_id"] == alice.user_id for item in log.json()["items"])


async def test_history_pages(client: httpx.AsyncClient, alice: Persona) -> None:
    for granted in (True, False, True):
        await give(client, alice, "ai_features", granted)

    first = await client.get("/v1/me/consents/history", params={"limit": 2}, headers=alice.headers)
    second = await client.get(
        "/v1/me/consents/history", params={"limit": 2, "cursor": first.json()["next"]}, headers=alice.headers
    )

    assert [item["granted"] for item in first.json()["items"]] == [True, False]
    assert [item["granted"] for item in second.json()["items"]] == [True]
    assert second.json()["next"] is None


async def test_one_persons_consents_are_theirs_alone(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    await give(client, alice, "ai_coaching", True)

    assert (await states(client, bob))["ai_coaching"] is False
    history = await client.get("/v1/me/consents/history", headers=bob.headers)
    assert history.json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"consent_type": "newsletters", "granted": True}, id="unknown-type"),
        pytest.param({"consent_type": "ai_features"}, id="no-granted"),
        pytest.param({"consent_type": "ai_features", "granted": "yes"}, id="granted-not-boolean"),
        pytest.param({"consent_type": "ai_features", "granted": True, "user_id": str(uuid7())}, id="extra-field"),
        pytest.param({"consent_type": "ai_features", "granted": True, "document_version": "v 1"}, id="bad-version"),
        pytest.param({"consent_type": "ai_features", "granted": True, "document_version": "x" * 65}, id="long-version"),
    ],
)
async def test_a_bad_consent_is_refused_with_422(client: httpx.AsyncClient, alice: Persona, body: dict) -> None:
    response = await client.post("/v1/me/consents", json=body, headers=alice.headers)

    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-error"


async def test_an_api_key_cannot_consent_for_its_owner(client: httpx.AsyncClient, alice: Persona) -> None:
    made = await client.post("/v1/auth/api-keys", json={"name": "script"}, headers=alice.headers)
    assert made.status_code == 201, made.text
    key = {"Authorization": f"Bearer {made.json()['key']}"}

    response = await client.post("/v1/me/consents", json={"consent_type": "ai_features", "granted": True}, headers=key)

    assert response.status_code == 403, response.text
    assert problem_type(response) == "session-required"
    assert (await client.get("/v1/me/consents", headers=key)).status_code == 200


async def test_has_consent_answers_for_the_person_and_system_work_only(
    client: httpx.AsyncClient, alice: Persona, mallory: Persona, app_engine: AsyncEngine, runtime: Runtime
) -> None:
    await give(client, alice, "ai_features", True)
    alice_id = UUID(alice.user_id)

    async with user_transaction(app_engine, alice_id) as db:
        by_alice = await service.has_consent(db, user_id=alice_id, consent_type="ai_features")
        not_given = await service.has_consent(db, user_id=alice_id, consent_type="ai_coaching")
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        by_mallory = await service.has_consent(db, user_id=alice_id, consent_type="ai_features")
    async with system_transaction(runtime.system_engine) as db:
        by_system = await service.has_consent(db, user_id=alice_id, consent_type="ai_features")

    assert (by_alice, not_given, by_mallory, by_system) == (True, False, False, True)
    await give(client, alice, "ai_features", False)
    async with system_transaction(runtime.system_engine) as db:
        assert await service.has_consent(db, user_id=alice_id, consent_type="ai_features") is False


# Marketing e-mail needs marketing_emails: the digest is where marketing notifications
# would be mailed (security alone is mailed on its own), and it leaves them out without it.

_NOTIFY = text(
    """
    INSERT INTO notifications.notifications (id, user_id, type, category, priority, title, body)
    VALUES (:id, :user_id, 'system', :category, 'normal', :title, :body)
    """
)


async def _notify(runtime: Runtime, who: Persona, *, category: str, title: str) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            _NOTIFY, {"id": uuid7(), "user_id": UUID(who.user_id), "category": category, "title": title, "body": title}
        )


def plain_text(message: Message) -> str:
    return "".join(
        part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_type() == "text/plain"
    )


async def _digest_now(runtime: Runtime, who: Persona) -> None:
    from rapport.notifications._consumer import new_email

    async with system_transaction(runtime.system_engine) as db:
        now = (await db.execute(text("SELECT now()"))).scalar_one()
        email_id = await new_email(db, user_id=UUID(who.user_id), kind="digest", ids=[], due_at=now)
        await jobs.enqueue(db, tasks.email_digest, {"email_id": str(email_id)})


async def test_the_digest_mails_marketing_only_with_marketing_emails_consent(
    client: httpx.AsyncClient,
    alice: Persona,
    runtime: Runtime,
    mailbox: Mailbox,
    jobs_done: Callable[[], Awaitable[None]],
) -> None:
    await _notify(runtime, alice, category="system", title="Scheduled maintenance tonight")
    await _notify(runtime, alice, category="marketing", title="Twenty percent off Premium")
    await _digest_now(runtime, alice)
    await jobs_done()

    [first] = mailbox.to(alice.email)
    text_of_first = plain_text(first)
    assert "Scheduled maintenance tonight" in text_of_first
    assert "Twenty percent off Premium" not in text_of_first

    await give(client, alice, "marketing_emails", True)
    await _notify(runtime, alice, category="marketing", title="Thirty percent off Premium")
    await _digest_now(runtime, alice)
    await jobs_done()

    [_, second] = mailbox.to(alice.email)
    assert "Thirty percent off Premium" in plain_text(second)


async def test_marketing_alone_mails_nothing_without_consent(
    client: httpx.AsyncClient,
    alice: Persona,
    runtime: Runtime,
    mailbox: Mailbox,
    jobs_done: Callable[[], Awaitable[None]],
) -> None:
    await give(client, alice, "marketing_emails", True)
    await give(client, alice, "marketing_emails", False)
    await _notify(runtime, alice, category="marketing", title="Twenty percent off Premium")
    await _digest_now(runtime, alice)
    await jobs_done()

    assert mailbox.to(alice.email) == []
