"""The e-mail digest: after the person's delay, one mail listing what they have not read
and were not mailed yet, with a plain text and an HTML part; nothing when they read it
all meanwhile, or turned the digest off."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import text

from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.notifications import tasks
from tests.messaging.support import make_conversation, send
from tests.notifications.pipeline.support import Pipeline, job_rows, make_due, notifications_of, set_settings


async def email_rows(pipeline: Pipeline, user_id: str) -> list[Any]:
    async with system_transaction(pipeline.runtime.system_engine) as db:
        rows = await db.execute(
            text(
                "SELECT id, kind, status, notification_ids, subject, attempts, due_at, created_at, time_to_deliver_ms "
                "  FROM notifications.email_notifications WHERE user_id = :u ORDER BY created_at"
            ),
            {"u": user_id},
        )
        return list(rows)


def parts(message: Any) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }


async def test_what_someone_missed_is_mailed_once_after_their_delay(
    client, app_engine, alice, bob, carol, pipeline: Pipeline, mailbox
):
    await set_settings(pipeline.runtime, bob, digest_delay_minutes=30)
    direct = await make_conversation(app_engine, alice, bob, type="direct")
    room = await make_conversation(app_engine, carol, bob, name="Book club")

    await send(client, alice, direct, "Dinner at eight?")
    await send(client, carol, room, "Chapter 3 <b>tonight</b>", mentions=[bob.user_id])
    await pipeline.settle()

    [digest] = await email_rows(pipeline, bob.user_id)
    assert (digest.kind, digest.status) == ("digest", "pending")
    delay = (digest.due_at - digest.created_at).total_seconds()
    assert 29 * 60 < delay <= 30 * 60 + 5
    [job] = await job_rows(pipeline.runtime, tasks.email_digest)
    assert job.status == "queued"
    assert mailbox.to(bob.email) == []

    await make_due(pipeline.runtime, tasks.email_digest)
    await pipeline.settle()

    [mail] = await mailbox.wait_for(bob.email)
    assert mail["Subject"] == "2 notifications you missed"
    body = parts(mail)
    assert "alice" in body["text/plain"] and "Dinner at eight?" in body["text/plain"]
    assert "carol mentioned you in Book club" in body["text/plain"]
    # The HTML part escapes what people wrote.
    assert "&lt;b&gt;tonight&lt;/b&gt;" in body["text/html"] and "<b>tonight</b>" not in body["text/html"]
    [sent] = await email_rows(pipeline, bob.user_id)
    notes = await notifications_of(pipeline.runtime, bob)
    assert sent.status == "sent" and set(sent.notification_ids) == {note.id for note in notes}
    assert sent.time_to_deliver_ms is not None


async def test_nothing_is_mailed_when_they_read_it_first(client, app_engine, alice, bob, pipeline: Pipeline, mailbox):
    direct = await make_conversation(app_engine, alice, bob, type="direct")
    await send(client, alice, direct, "Dinner at eight?")
    await pipeline.settle()

    read = await client.post("/v1/notifications/read", json={"all": True}, headers=bob.headers)
    assert read.status_code == 200, read.text
    await make_due(pipeline.runtime, tasks.email_digest)
    await pipeline.settle()

    assert mailbox.to(bob.email) == []
    assert await email_rows(pipeline, bob.user_id) == []
    assert await job_rows(pipeline.runtime, tasks.email_digest) == []


async def test_a_digest_lists_only_what_was_not_mailed_before(
    client, app_engine, alice, bob, carol, pipeline: Pipeline, mailbox
):
    direct = await make_conversation(app_engine, alice, bob, type="direct")
    other = await make_conversation(app_engine, carol, bob, type="direct")
    await send(client, alice, direct, "first")
    await pipeline.settle()
    await make_due(pipeline.runtime, tasks.email_digest)
    await pipeline.settle()
    await mailbox.wait_for(bob.email)

    await send(client, carol, other, "second")
    await pipeline.settle()
    await make_due(pipeline.runtime, tasks.email_digest)
    await pipeline.settle()

    first, second = await mailbox.wait_for(bob.email, count=2)
    assert "first" in parts(first)["text/plain"]
    assert "second" in parts(second)["text/plain"] and "first" not in parts(second)["text/plain"]
    assert second["Subject"] == "1 notifications you missed"


async def test_no_digest_for_someone_who_turned_it_off(client, app_engine, alice, bob, pipeline: Pipeline, mailbox):
    await set_settings(pipeline.runtime, bob, email_digest=False)
    direct = await make_conversation(app_engine, alice, bob, type="direct")
    await send(client, alice, direct, "hello")
    await pipeline.settle()

    assert [note.type for note in await notifications_of(pipeline.runtime, bob)] == ["message"]
    assert await email_rows(pipeline, bob.user_id) == []
    assert await job_rows(pipeline.runtime, tasks.email_digest) == []


async def test_a_digest_job_run_twice_mails_once(client, app_engine, alice, bob, pipeline: Pipeline, mailbox):
    direct = await make_conversation(app_engine, alice, bob, type="direct")
    await send(client, alice, direct, "hello")
    await pipeline.settle()
    [digest] = await email_rows(pipeline, bob.user_id)
    await make_due(pipeline.runtime, tasks.email_digest)
    await pipeline.settle()
    await mailbox.wait_for(bob.email)

    async with system_transaction(pipeline.runtime.system_engine) as db:
        await jobs.enqueue(db, tasks.email_digest, {"email_id": str(UUID(str(digest.id)))})
    await pipeline.settle()

    assert len(mailbox.to(bob.email)) == 1
