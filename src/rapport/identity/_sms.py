"""Outgoing SMS of identity (codes and notices), through the job queue, as mail goes
(rapport.kernel.mail): `enqueue_sms` adds a job in the caller's transaction, and the
worker hands the message to the SMS provider.

The provider (Twilio's Messages API) belongs to notifications, a layer above identity:
notifications hands identity a way to reach it with `use_sms_gateway` when it is
imported, so identity never imports it. Where no provider is configured the message is
written into the log, so that a developer can read a code without an SMS account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime

log = structlog.get_logger(__name__)

QUEUE = "sms"


@dataclass(frozen=True)
class Sms:
    to: str  # E.164
    body: str


class SmsOutcome(Protocol):
    """What a provider says of one message (notifications' `Outcome`)."""

    @property
    def delivered(self) -> bool: ...
    @property
    def retry(self) -> bool: ...
    @property
    def detail(self) -> str: ...


class SmsSender(Protocol):
    async def send(self, phone: str, body: str, *, idempotency_key: str) -> SmsOutcome: ...


# The runtime's SMS sender, or None when none is configured.
SmsGateway = Callable[[Runtime], SmsSender | None]


def _no_gateway(runtime: Runtime) -> SmsSender | None:
    return None


_gateway: list[SmsGateway] = [_no_gateway]


def use_sms_gateway(gateway: SmsGateway) -> None:
    """Send identity's SMS through what `gateway` returns for a runtime."""
    _gateway[0] = gateway


class SmsNotAccepted(Exception):
    """The provider may take the message later: the job fails, and the queue retries it."""


# Four attempts span about a minute and a half of backoff (10, 20, 40 s): codes expire
# after fifteen minutes, and a code that comes late is worth less than a new request.
@jobs.tasks.task("identity.send_sms", queue=QUEUE, max_attempts=4, timeout_seconds=60)
async def send_sms(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Deliver a queued SMS. The job's key goes as the provider's idempotency key: a
    retry after an answer that got lost does not send twice where the provider honours it."""
    to, body, key = str(payload["to"]), str(payload["body"]), str(payload["key"])
    sender = _gateway[0](ctx.runtime)
    if sender is None:
        log.info("sms.logged", to=to, body=body)
        return
    outcome = await sender.send(to, body, idempotency_key=key)
    if outcome.delivered:
        log.info("sms.sent", to=to)
        return
    if outcome.retry:
        raise SmsNotAccepted(outcome.detail[:500])
    # Refused for good (an unreachable number, a number that replied STOP): trying again
    # cannot help, and the person asks again if they still want a code.
    log.warning("sms.refused", to=to, detail=outcome.detail[:500])


async def enqueue_sms(db: AsyncConnection, sms: Sms) -> None:
    """Send `sms` once the caller's transaction commits; nothing is sent if it rolls back."""
    await jobs.enqueue(db, send_sms, {"to": sms.to, "body": sms.body, "key": str(uuid7())})
