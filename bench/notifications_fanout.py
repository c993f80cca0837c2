"""Notifications fanned out for a message to a big channel: how long until every push and
e-mail job is done, and how many jobs a second the worker sustains.

    .venv/bin/python -m bench.notifications_fanout                       # 1,000 people, 50 away
    .venv/bin/python -m bench.notifications_fanout --people 200 --away 20 --messages 5   # a smoke run
    .venv/bin/python -m bench.notifications_fanout --concurrency 8

The benchmark makes a throw-away data folder, starts an embedded PostgreSQL in it,
provisions and migrates, and makes `--people` accounts (no passwords: nobody signs in)
in one channel. `--away` of them are away and each has one Web Push subscription at a
local push service (tests/notifications/fakes.PushService in a process of its own: it
checks the VAPID signature and decrypts every payload, as a browser would); the others
are connected. Presence is given to the consumer as that set, not read from sockets: the
benchmark measures the pipeline, not realtime.

In this process, as `rapport serve`'s in-process worker would: the outbox consumer
(`rapport.notifications._consumer.Consumer`) and a job worker (`kernel.jobs.Worker`,
`--concurrency` jobs at a time), with the providers built from the settings and an SMTP
server (aiosmtpd) taking the mail.

1. One message to the channel (`messaging.do_post_message`, committed): the time until the
   consumer has read it (the notifications and their jobs are written in the consumer's
   transaction), and until every push job is done, each subscription's delivery `sent`.
2. The digests: their jobs wait for each person's digest delay (an hour by default); they
   are made due at once, and timed until every digest e-mail is `sent`.
3. Throughput: `--messages` more messages, sent back to back; every one makes a push job
   per away person (their notification bundles and is pushed again): jobs done per second
   from the first send to the last job, and the pushes the service received.

Figures go to stdout and to bench/results/notifications_fanout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import text

RESULTS = Path(__file__).resolve().parent / "results"


# -- the push service, in a process of its own --------------------------------------------------


def _serve_push(count: int, application_server_key: str, pipe: Any) -> None:
    """Run the fake push service, hand back `count` browser subscriptions, then report how
    many pushes it received when asked (any message on the pipe), until told to stop."""
    from tests.notifications.fakes import PushService

    async def main() -> None:
        service = PushService()
        await service.start()
        subscriptions = [service.subscribe(application_server_key) for _ in range(count)]
        pipe.send([(s.endpoint, s.p256dh, s.auth) for s in subscriptions])
        loop = asyncio.get_running_loop()
        while True:
            message = await loop.run_in_executor(None, pipe.recv)
            if message == "stop":
                break
            pipe.send({"received": len(service.received), "refused": len(service.refused)})
        await service.stop()

    asyncio.run(main())


# -- the situation ---------------------------------------------------------------------------------


async def _people(runtime: Any, count: int) -> list[UUID]:
    from rapport.identity import service as identity_service
    from rapport.kernel.db import system_transaction

    people = []
    async with system_transaction(runtime.system_engine) as db:
        for n in range(count):
            email = f"person{n}@bench.test"
            people.append(
                await identity_service.do_create_user(db, rt=runtime, email=email, password=None, verified=True)
            )
    return people


_CHANNEL = text(
    "INSERT INTO messaging.conversations (id, type, name, creator_id) VALUES (:id, 'channel', 'All hands', :o)"
)


async def _channel(runtime: Any, people: list[UUID]) -> UUID:
    from rapport.kernel.db import user_transaction
    from rapport.kernel.ids import uuid7

    owner, *members = people
    channel = uuid7()
    async with user_transaction(runtime.engine, owner) as db:
        await db.execute(_CHANNEL, {"id": channel, "o": owner})
        await db.execute(text("SELECT messaging.add_participant(:c, :u, 'owner')"), {"c": channel, "u": owner})
        for member in members:
            await db.execute(text("SELECT messaging.add_participant(:c, :u)"), {"c": channel, "u": member})
    return channel


async def _subscribe(runtime: Any, user_id: UUID, endpoint: str, p256dh: str, auth: str) -> None:
    from rapport.kernel.db import user_transaction
    from rapport.kernel.ids import uuid7

    async with user_transaction(runtime.engine, user_id) as db:
        await db.execute(
            text(
                "SELECT notifications.register_push_subscription("
                "    :id, 'webpush', :url, :key, :secret, NULL, NULL, 'bench')"
            ),
            {"id": uuid7(), "url": endpoint, "key": p256dh, "secret": auth},
        )


async def _post(runtime: Any, sender: UUID, channel: UUID, content: str) -> None:
    from rapport.kernel.actor import Actor
    from rapport.kernel.db import user_transaction
    from rapport.messaging import service as messaging_service

    async with user_transaction(runtime.engine, sender) as db:
        await messaging_service.do_post_message(
            db, actor=Actor(user_id=sender), conversation_id=channel, content=content
        )


async def _count(runtime: Any, statement: str) -> int:
    from rapport.kernel.db import system_transaction

    async with system_transaction(runtime.system_engine) as db:
        return int((await db.execute(text(statement))).scalar_one())


async def _until(check: Callable[[], Any], *, within: float = 600.0) -> float:
    """Seconds until `check()` is true (polled every 10 ms)."""
    started = time.perf_counter()
    async with asyncio.timeout(within):
        while True:
            if await check():
                return time.perf_counter() - started
            await asyncio.sleep(0.01)


# -- the run -------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    from aiosmtpd.controller import Controller
    from tests.support import Mailbox, free_port

    from bench.messaging_data import prepare
    from rapport.config import Settings
    from rapport.identity import service as identity_service
    from rapport.kernel import jobs
    from rapport.kernel.db import create_engine, create_system_engine
    from rapport.kernel.logging import configure_logging
    from rapport.kernel.runtime import Runtime
    from rapport.notifications import tasks
    from rapport.notifications._consumer import Consumer
    from rapport.notifications.vapid import new_key_pair

    urls = await prepare(data_dir)
    keys = new_key_pair()
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings = Settings(
        _env_file=None,
        password_time_cost=1,
        password_memory_cost_kib=1024,
        password_parallelism=1,
        log_level="WARNING",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        vapid_private_key=keys.private_key,
        vapid_subject="mailto:ops@bench.test",
    )
    configure_logging(settings)
    runtime = Runtime.build(
        settings,
        create_engine(urls.app, pool_size=8),
        system_engine=create_system_engine(urls.worker, pool_size=args.concurrency + 4),
        authenticate=identity_service.authenticate,
    )
    here, there = multiprocessing.Pipe()
    push = multiprocessing.get_context("spawn").Process(
        target=_serve_push, args=(args.away, keys.public_key, there), daemon=True
    )
    push.start()
    try:
        subscriptions = await asyncio.get_running_loop().run_in_executor(None, here.recv)
        print(f"Making {args.people} people in one channel, {args.away} of them away…", file=sys.stderr)
        people = await _people(runtime, args.people)
        channel = await _channel(runtime, people)
        away = set(people[-args.away :])
        for user_id, (endpoint, p256dh, auth) in zip(sorted(away), subscriptions, strict=True):
            await _subscribe(runtime, user_id, endpoint, p256dh, auth)

        def connected(user_ids: Collection[UUID]) -> set[UUID]:
            return {user_id for user_id in user_ids if user_id not in away}

        consumer = Consumer(runtime.system_engine, connected=connected)
        await consumer.consume_available()  # the cursor starts now
        worker = jobs.Worker(runtime, queues=[tasks.QUEUE], concurrency=args.concurrency, poll_seconds=0.1)
        worker.start()
        sender = people[0]

        # 1. One message.
        started = time.perf_counter()
        await _post(runtime, sender, channel, "The office is closed on Friday.")
        await consumer.catch_up(within=600)
        read_s = time.perf_counter() - started

        async def pushed() -> bool:
            sent = await _count(runtime, "SELECT count(*) FROM notifications.push_delivery_log WHERE status = 'sent'")
            return bool(sent >= args.away)

        await _until(pushed)
        await worker.wait_idle()
        push_s = time.perf_counter() - started

        # 2. The digests, made due now.
        async with runtime.system_engine.engine.begin() as db:
            await db.execute(text("UPDATE kernel.jobs SET run_at = now() WHERE task = 'notifications.email_digest'"))
            await db.execute(text("SELECT pg_notify('kernel_jobs', '')"))
        started = time.perf_counter()

        async def mailed() -> bool:
            sent = await _count(runtime, "SELECT count(*) FROM notifications.email_notifications WHERE status = 'sent'")
            return bool(sent >= args.away)

        await _until(mailed)
        digest_s = time.perf_counter() - started

        # 3. Throughput.
        before = await _count(runtime, "SELECT coalesce(sum(attempts), 0) FROM notifications.push_delivery_log")
        started = time.perf_counter()
        for n in range(args.messages):
            await _post(runtime, sender, channel, f"Reminder {n + 1}: the office is closed on Friday.")
        posted_s = time.perf_counter() - started
        await consumer.catch_up(within=600)

        async def drained() -> bool:
            return await _count(runtime, "SELECT count(*) FROM kernel.jobs WHERE task = 'notifications.push'") == 0

        await _until(drained)
        await worker.wait_idle()
        burst_s = time.perf_counter() - started
        after = await _count(runtime, "SELECT coalesce(sum(attempts), 0) FROM notifications.push_delivery_log")
        here.send("counts")
        service = await asyncio.get_running_loop().run_in_executor(None, here.recv)
        push_jobs = args.messages * args.away
        await worker.stop()
        return {
            "people": args.people,
            "away": args.away,
            "concurrency": args.concurrency,
            "one_message": {
                "read_into_notifications_s": round(read_s, 3),
                "all_pushes_sent_s": round(push_s, 3),
                "all_digests_sent_after_due_s": round(digest_s, 3),
                "emails_received": len(mailbox.messages),
            },
            "burst": {
                "messages": args.messages,
                "posted_in_s": round(posted_s, 3),
                "push_jobs": push_jobs,
                "push_attempts": after - before,
                "done_in_s": round(burst_s, 3),
                "jobs_per_s": round(push_jobs / burst_s, 1) if burst_s else None,
            },
            "push_service": service,
        }
    finally:
        here.send("stop")
        push.join(timeout=10)
        smtp.stop()
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--away", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="messages of the throughput burst")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at a time (RAPPORT_WORKER_CONCURRENCY)")
    args = parser.parse_args()
    if not 0 < args.away < args.people:
        parser.error("--away must be between 1 and --people - 1")
    data_dir = Path(tempfile.mkdtemp(prefix="rapport-notifications-"))
    try:
        result = asyncio.run(run(args, data_dir))
    finally:
        from bench.messaging_data import stop_embedded

        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "notifications_fanout.json").write_text(json.dumps(result, indent=2) + "\n")
    one, burst = result["one_message"], result["burst"]
    print(f"{args.people} people, {args.away} away, {args.concurrency} jobs at a time")
    print(
        f"  one message: read into notifications {one['read_into_notifications_s']} s, "
        f"every push sent {one['all_pushes_sent_s']} s, every digest sent {one['all_digests_sent_after_due_s']} s "
        f"after due ({one['emails_received']} e-mails)"
    )
    print(
        f"  burst of {burst['messages']} messages: {burst['push_jobs']} push jobs in {burst['done_in_s']} s = "
        f"{burst['jobs_per_s']} jobs/s"
    )


if __name__ == "__main__":
    main()
