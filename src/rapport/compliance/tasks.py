"""The jobs of exports and erasure (kernel.jobs, docs/decisions/0010), on the queue
`compliance`, and what a process that runs jobs runs beside them: the hourly round.

- `compliance.build_export`: makes one export's archive (rapport.compliance._archive);
  queued by POST /v1/me/exports.
- `compliance.erase_due`: erases the accounts whose grace period has ended
  (rapport.compliance._erase); queued by the round.
- `compliance.expire_exports`: removes archives past their time; queued by the round.
"""

from __future__ import annotations

from uuid import UUID

from rapport.compliance import _archive, _erase, _exports
from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from rapport.media import service as media_service

QUEUE = "compliance"


@jobs.tasks.task("compliance.build_export", queue=QUEUE, max_attempts=3, timeout_seconds=6 * 3600)
async def build_export(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    runtime = ctx.runtime
    export_id = UUID(payload["export_id"])
    async with system_transaction(runtime.system_engine) as db:
        user_id = await _exports.start_export(db, export_id=export_id)
    if user_id is None:
        return
    store = media_service.MediaStore.from_settings(runtime.settings)
    try:
        try:
            built = await _archive.build_archive(runtime.system_engine, store, export_id=export_id, user_id=user_id)
        except Exception as exc:
            # The last attempt says so to the person; earlier ones are tried again.
            if ctx.job.attempt >= ctx.job.max_attempts:
                async with system_transaction(runtime.system_engine) as db:
                    await _exports.fail_export(db, export_id=export_id, error=f"{type(exc).__name__}: {exc}")
            raise
        async with system_transaction(runtime.system_engine) as db:
            kept = await _exports.complete_export(
                db, export_id=export_id, built=built, ttl_days=runtime.settings.export_ttl_days
            )
        if not kept:
            # The account was erased while its archive was being made.
            await store.storage.delete(built.storage_key)
    finally:
        await store.close()


@jobs.tasks.task("compliance.erase_due", queue=QUEUE, max_attempts=5, timeout_seconds=3600)
async def erase_due(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    store = media_service.MediaStore.from_settings(ctx.runtime.settings)
    try:
        await _erase.erase_due_accounts(ctx.runtime.system_engine, store, keyring=ctx.runtime.keyring)
    finally:
        await store.close()


@jobs.tasks.task("compliance.expire_exports", queue=QUEUE, max_attempts=5, timeout_seconds=600)
async def expire_exports(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    store = media_service.MediaStore.from_settings(ctx.runtime.settings)
    try:
        await _exports.expire_exports(ctx.runtime.system_engine, store)
    finally:
        await store.close()


def rounds(runtime: Runtime, *, every_seconds: float = jobs.HOURLY) -> jobs.Rounds:
    """Queues `compliance.erase_due` and `compliance.expire_exports` every hour, in each
    process that runs jobs. Both jobs are idempotent and take their rows with SKIP LOCKED."""
    work = jobs.enqueue_each(erase_due, expire_exports)
    return jobs.Rounds(runtime, name="compliance rounds", work=work, every_seconds=every_seconds)
