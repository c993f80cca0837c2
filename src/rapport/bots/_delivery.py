"""One attempt at delivering an interaction to its bot's webhook, run by the job
`bots.deliver` (rapport.bots.tasks): the attempt is counted and the row marked
`processing` in one system transaction, the POST runs outside any transaction, and its
outcome is recorded in another. A failed attempt raises, so that the job queue retries it
with backoff until its attempts are spent; the row then stays `failed` with the last
error, every attempt listed in its observation_data."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import orjson
import structlog
from sqlalchemy import Update, case, func, null, text, update

from rapport.bots import _webhooks
from rapport.bots.models import bots, robot_interactions
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime

log = structlog.get_logger(__name__)

# How many attempts observation_data keeps (the newest).
KEPT_ATTEMPTS = 20


class DeliveryFailed(Exception):
    """An attempt that did not get a 2xx: the job fails, and the queue retries it."""


def _claim(interaction_id: UUID) -> Update:
    """Count an attempt and mark it under way, with what it needs: the body, and the
    bot's webhook and secret as they are now (and its previous secret within a
    rotation's grace)."""
    return (
        update(robot_interactions)
        .where(
            robot_interactions.c.id == interaction_id,
            robot_interactions.c.bot_id == bots.c.id,
            robot_interactions.c.status != "completed",
        )
        .values(status="processing", attempts=robot_interactions.c.attempts + 1)
        .returning(
            robot_interactions.c.attempts,
            robot_interactions.c.request_data,
            bots.c.webhook_url,
            bots.c.webhook_secret,
            case(
                (bots.c.previous_webhook_secret_until > func.now(), bots.c.previous_webhook_secret),
                else_=null(),
            ).label("previous_secret"),
            bots.c.status.label("bot_status"),
        )
    )


# The outcome of an attempt, appended to the attempts kept (the newest KEPT_ATTEMPTS).
_RECORD = text(
    """
    UPDATE bots.robot_interactions i
       SET status = :status, http_status = :http_status, duration_ms = :duration_ms,
           error_message = :error, response_data = CAST(:response AS jsonb),
           completed_at = CASE WHEN :finished THEN now() END,
           observation_data = (
               SELECT coalesce(jsonb_agg(a.attempt ORDER BY a.n), '[]'::jsonb)
                 FROM jsonb_array_elements(i.observation_data || jsonb_build_array(CAST(:attempt AS jsonb)))
                      WITH ORDINALITY AS a (attempt, n)
                WHERE a.n > jsonb_array_length(i.observation_data) + 1 - :kept)
     WHERE i.id = :id
    """
)


async def deliver(runtime: Runtime, *, interaction_id: UUID, final: bool) -> None:
    """Make one attempt at an interaction's delivery. `final`: the queue will not retry
    it (its last attempt), so a failure is its end.

    Raises:
        DeliveryFailed: the webhook did not answer 2xx (the job is retried).
    """
    async with system_transaction(runtime.system_engine) as db:
        found = (await db.execute(_claim(interaction_id))).one_or_none()
    if found is None:
        return  # delivered already, or gone with its bot or its conversation
    if found.bot_status != "active":
        await _record(runtime, interaction_id, found.attempts, finished=True, attempt=_not_sent("The bot is disabled."))
        return
    rule = _webhooks.WebhookRule.for_settings(runtime.settings)
    try:
        await rule.check_target(found.webhook_url)
    except _webhooks.TargetRefused as refused:
        # The URL will not become acceptable by waiting: no retry.
        await _record(runtime, interaction_id, found.attempts, finished=True, attempt=_not_sent(str(refused)))
        return
    attempt = await _webhooks.post(
        runtime.http,
        url=found.webhook_url,
        secret=_webhooks.open_secret(runtime.keyring, found.webhook_secret),
        previous_secret=(
            _webhooks.open_secret(runtime.keyring, found.previous_secret) if found.previous_secret is not None else None
        ),
        delivery_id=str(interaction_id),
        body=orjson.dumps(found.request_data),
        timeout_s=runtime.settings.bot_webhook_timeout_s,
    )
    await _record(runtime, interaction_id, found.attempts, finished=attempt.ok or final, attempt=attempt)
    if not attempt.ok:
        raise DeliveryFailed(attempt.error or "The webhook did not answer 2xx.")


def _not_sent(error: str) -> _webhooks.Attempt:
    return _webhooks.Attempt(ok=False, http_status=None, duration_ms=0, error=error, response=None)


async def _record(
    runtime: Runtime, interaction_id: UUID, number: int, *, finished: bool, attempt: _webhooks.Attempt
) -> None:
    observed = {
        "attempt": number,
        "at": datetime.now(UTC).isoformat(),
        "http_status": attempt.http_status,
        "duration_ms": attempt.duration_ms,
        "error": attempt.error,
    }
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            _RECORD,
            {
                "id": interaction_id,
                "status": "completed" if attempt.ok else "failed",
                "http_status": attempt.http_status,
                "duration_ms": attempt.duration_ms,
                "error": attempt.error,
                "response": orjson.dumps(attempt.response).decode() if attempt.response is not None else None,
                "finished": finished,
                "attempt": orjson.dumps(observed).decode(),
                "kept": KEPT_ATTEMPTS,
            },
        )
    if not attempt.ok:
        log.info("bots.delivery_failed", interaction_id=str(interaction_id), attempt=number, error=attempt.error)
