"""Mediation: a person's conflict triggers, the analysis of their drafts, the rewrites
suggested and what they did with them, and their statistics.

Everything here is the acting person's own: row-level security keeps every row to its
person, and nothing is published to a conversation. The events (a trigger changed, an
outcome recorded) are scoped to the person alone, for their other devices. A mediation
notice is not posted in the conversation as an `ai` message: messaging shows a message to
every participant, and the other parent must never learn that a rewrite was suggested.

The analysis runs in two short transactions around the optional language model, so that
no connection is held while it thinks."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from uuid import UUID

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from rapport.compliance import service as compliance_service
from rapport.kernel.actor import Acting, Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import ValidationFailed, constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.kernel.runtime import Runtime
from rapport.messaging import service as messaging_service
from rapport.modules.coparenting import _llm
from rapport.modules.coparenting import schemas_mediation as s
from rapport.modules.coparenting._analysis import LocalAnalysis, Trigger, analyse
from rapport.modules.coparenting.errors import (
    ConversationEncrypted,
    OutcomeRecorded,
    RewriteNotFound,
    TooManyTriggers,
    TriggerExists,
    TriggerNotFound,
)
from rapport.modules.coparenting.models_mediation import (
    Engine,
    communication_triggers,
    intervention_rewrites,
)

# Triggers one person may keep: enough for anyone's list, few enough to match in a moment.
MAX_TRIGGERS = 100
# The longest list of labels kept with a suggestion (the column's CHECK).
MAX_PATTERN_LABELS = 500

ActingTransaction = Callable[[], AbstractAsyncContextManager[Acting]]

_STATISTICS = text(
    """
    SELECT total_interventions, accepted_count, modified_count, rejected_count, ignored_count, acceptance_rate,
           last_intervention_at
      FROM coparenting.intervention_stats_with_rate
     WHERE user_id = :user_id
    """
)


# Triggers


def _trigger(row: AnyRow) -> s.TriggerOut:
    return s.TriggerOut(
        id=row.id,
        trigger_type=row.trigger_type,
        trigger_value=row.trigger_value,
        intensity=row.intensity,
        detection_count=row.detection_count,
        last_detected=row.last_detected,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_triggers(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[s.TriggerOut]:
    """The actor's triggers, newest first."""
    query = keyset(
        select(communication_triggers).where(communication_triggers.c.user_id == actor.user_id),
        communication_triggers.c.id,
        page,
    )
    return make_page([_trigger(row) for row in (await db.execute(query)).all()], page)


async def _write_trigger(db: AsyncConnection, statement: Executable) -> AnyRow | None:
    try:
        async with db.begin_nested():
            row: AnyRow | None = (await db.execute(statement)).one_or_none()
    except IntegrityError as error:
        if constraint_of(error) == "ux_communication_triggers_value":
            raise TriggerExists() from None
        raise
    return row


async def _announce(db: AsyncConnection, actor: Actor, kind: str, payload: dict[str, object]) -> None:
    await publish(
        db, scope=Scope.user(actor.user_id), type=f"coparenting.{kind}", payload=payload, actor_id=actor.user_id
    )


async def do_create_trigger(db: AsyncConnection, *, actor: Actor, wanted: s.TriggerIn) -> s.TriggerOut:
    """Add one of the actor's triggers.

    Raises:
        TriggerExists: they have this value of this type already (in any case).
        TooManyTriggers: they keep MAX_TRIGGERS already.
    """
    mine = communication_triggers.c.user_id == actor.user_id
    held = (await db.execute(select(func.count()).select_from(communication_triggers).where(mine))).scalar_one()
    if held >= MAX_TRIGGERS:
        raise TooManyTriggers(f"You keep {MAX_TRIGGERS} triggers, the most one person may.")
    statement = (
        insert(communication_triggers)
        .values(
            id=uuid7(),
            user_id=actor.user_id,
            trigger_type=wanted.trigger_type,
            trigger_value=wanted.trigger_value,
            intensity=wanted.intensity,
        )
        .returning(communication_triggers)
    )
    row = await _write_trigger(db, statement)
    assert row is not None
    await _announce(db, actor, "trigger.created", {"trigger_id": str(row.id)})
    return _trigger(row)


async def _own_trigger(db: AsyncConnection, *, actor: Actor, trigger_id: UUID) -> AnyRow:
    row = (
        await db.execute(
            select(communication_triggers).where(
                communication_triggers.c.id == trigger_id, communication_triggers.c.user_id == actor.user_id
            )
        )
    ).one_or_none()
    if row is None:
        raise TriggerNotFound()
    return row


async def do_update_trigger(
    db: AsyncConnection, *, actor: Actor, trigger_id: UUID, changes: s.TriggerPatch
) -> s.TriggerOut:
    """Change one of the actor's triggers (the fields sent).

    Raises:
        TriggerNotFound: no such trigger of theirs.
        TriggerExists: the change would repeat another of theirs.
        ValidationFailed: the value does not fit its type.
    """
    current = await _own_trigger(db, actor=actor, trigger_id=trigger_id)
    values = changes.changes()
    if not values:
        return _trigger(current)
    trigger_type = values.get("trigger_type", current.trigger_type)
    trigger_value = values.get("trigger_value", current.trigger_value)
    try:
        s.check_trigger_value(trigger_type, trigger_value)
    except ValueError as error:
        raise ValidationFailed(f"trigger_value: {error}") from None
    statement = (
        update(communication_triggers)
        .where(communication_triggers.c.id == trigger_id, communication_triggers.c.user_id == actor.user_id)
        .values(**values)
        .returning(communication_triggers)
    )
    row = await _write_trigger(db, statement)
    if row is None:
        raise TriggerNotFound()
    await _announce(db, actor, "trigger.updated", {"trigger_id": str(row.id)})
    return _trigger(row)


async def do_delete_trigger(db: AsyncConnection, *, actor: Actor, trigger_id: UUID) -> None:
    """Remove one of the actor's triggers.

    Raises:
        TriggerNotFound: no such trigger of theirs.
    """
    deleted = (
        await db.execute(
            communication_triggers.delete()
            .where(communication_triggers.c.id == trigger_id, communication_triggers.c.user_id == actor.user_id)
            .returning(communication_triggers.c.id)
        )
    ).one_or_none()
    if deleted is None:
        raise TriggerNotFound()
    await _announce(db, actor, "trigger.deleted", {"trigger_id": str(trigger_id)})


# The analysis


async def _prepare(db: AsyncConnection, *, actor: Actor, conversation_id: UUID | None) -> tuple[list[Trigger], bool]:
    """The actor's triggers, and whether they agreed to AI features (the model may be asked).

    Raises:
        ConversationNotFound: conversation_id names one they take no part in.
        ConversationEncrypted: it names an end-to-end encrypted one.
    """
    if conversation_id is not None:
        conversation = await messaging_service.access_conversation(db, actor=actor, conversation_id=conversation_id)
        # Its drafts are never read, sent to a model or kept here: the promise that Rapport
        # holds no plaintext of an encrypted conversation covers what is about to be sent.
        if conversation.is_encrypted:
            raise ConversationEncrypted()
    rows = (
        await db.execute(
            select(
                communication_triggers.c.id,
                communication_triggers.c.trigger_type,
                communication_triggers.c.trigger_value,
                communication_triggers.c.intensity,
            ).where(communication_triggers.c.user_id == actor.user_id)
        )
    ).all()
    triggers = [Trigger(row.id, row.trigger_type, row.trigger_value, row.intensity) for row in rows]
    consented = await compliance_service.has_consent(db, user_id=actor.user_id, consent_type="ai_features")
    return triggers, consented


def _judgement(draft: str, local: LocalAnalysis, verdict: _llm.Verdict | None) -> tuple[bool, s.ToneLabel, str | None]:
    """Hostile or not, the tone's label, and the rewrite to suggest: the model's when it
    answered, else the local analysis'."""
    if verdict is None:
        return local.tone.hostile, local.tone.label, local.rewrite
    hostile = verdict.hostile
    label: s.ToneLabel = verdict.tone
    if (label == "hostile") != hostile:
        label = "hostile" if hostile else "tense"
    wanted = hostile or (label == "tense" and bool(local.found))
    suggestion = verdict.rewrite if wanted and verdict.rewrite and verdict.rewrite != draft else None
    return hostile, label, suggestion


async def analyse_draft(runtime: Runtime, transaction: ActingTransaction, *, body: s.AnalysisIn) -> s.AnalysisOut:
    """Analyse a draft for the acting person: their triggers in it, its tone, and a calmer
    rewrite when it needs one (recorded, pending, for them to answer). The language model
    is asked only when one is configured and the person gave the ai_features consent; when
    it fails or is slow the local analysis answers.

    Raises:
        ConversationNotFound: conversation_id names one they take no part in.
        ConversationEncrypted: conversation_id names an end-to-end encrypted one; nothing
            is analysed, sent or kept.
    """
    async with transaction() as (db, actor):
        triggers, consented = await _prepare(db, actor=actor, conversation_id=body.conversation_id)
    local = analyse(body.text, triggers)
    verdict = None
    if consented and _llm.configured(runtime.settings):
        verdict = await _llm.ask(runtime.http, runtime.settings, body.text)
    hostile, label, suggestion = _judgement(body.text, local, verdict)
    engine: Engine = "llm" if verdict is not None else "local"
    async with transaction() as (db, actor):
        if local.found:
            await db.execute(
                update(communication_triggers)
                .where(
                    communication_triggers.c.user_id == actor.user_id,
                    communication_triggers.c.id.in_([found.trigger.id for found in local.found]),
                )
                .values(detection_count=communication_triggers.c.detection_count + 1, last_detected=func.now())
            )
        suggested = None
        if suggestion is not None:
            if body.conversation_id is not None:
                # They may have left it while the model thought.
                await messaging_service.access_conversation(db, actor=actor, conversation_id=body.conversation_id)
            rewrite_id = uuid7()
            await db.execute(
                insert(intervention_rewrites).values(
                    id=rewrite_id,
                    user_id=actor.user_id,
                    conversation_id=body.conversation_id,
                    original_text=body.text,
                    rewrite_text=suggestion,
                    pattern_detected=",".join(local.patterns)[:MAX_PATTERN_LABELS] or None,
                    engine=engine,
                )
            )
            suggested = s.SuggestionOut(id=rewrite_id, text=suggestion, engine=engine)
    return s.AnalysisOut(
        hostile=hostile,
        tone=s.ToneOut(
            label=label,
            compound=local.tone.compound,
            hostility=local.tone.hostility,
            markers=list(local.tone.markers),
        ),
        triggers=[
            s.TriggerFoundOut(
                id=found.trigger.id,
                trigger_type=found.trigger.trigger_type,
                trigger_value=found.trigger.trigger_value,
                intensity=found.trigger.intensity,
                matched=found.matched,
            )
            for found in local.found
        ],
        suggestion=suggested,
        engine=engine,
    )


# Rewrites and outcomes


def _rewrite(row: AnyRow) -> s.RewriteOut:
    return s.RewriteOut(
        id=row.id,
        conversation_id=row.conversation_id,
        original_text=row.original_text,
        rewrite_text=row.rewrite_text,
        final_text=row.final_text,
        outcome=row.outcome,
        pattern_detected=row.pattern_detected,
        engine=row.engine,
        outcome_at=row.outcome_at,
        created_at=row.created_at,
    )


async def list_rewrites(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[s.RewriteOut]:
    """The rewrites suggested to the actor, newest first, with what they did with each."""
    query = keyset(
        select(intervention_rewrites).where(intervention_rewrites.c.user_id == actor.user_id),
        intervention_rewrites.c.id,
        page,
    )
    return make_page([_rewrite(row) for row in (await db.execute(query)).all()], page)


async def do_record_outcome(
    db: AsyncConnection, *, actor: Actor, rewrite_id: UUID, wanted: s.OutcomeIn
) -> s.RewriteOut:
    """Record what the actor did with a suggestion; their statistics count it (by trigger).

    Raises:
        RewriteNotFound: no such suggestion of theirs.
        OutcomeRecorded: they recorded its outcome already.
    """
    row = (
        await db.execute(
            update(intervention_rewrites)
            .where(
                intervention_rewrites.c.id == rewrite_id,
                intervention_rewrites.c.user_id == actor.user_id,
                intervention_rewrites.c.outcome.is_(None),
            )
            .values(outcome=wanted.outcome, final_text=wanted.final_text, outcome_at=func.now())
            .returning(intervention_rewrites)
        )
    ).one_or_none()
    if row is None:
        exists = (
            await db.execute(
                select(intervention_rewrites.c.id).where(
                    intervention_rewrites.c.id == rewrite_id, intervention_rewrites.c.user_id == actor.user_id
                )
            )
        ).one_or_none()
        raise OutcomeRecorded() if exists is not None else RewriteNotFound()
    await _announce(db, actor, "rewrite.answered", {"rewrite_id": str(row.id), "outcome": row.outcome})
    return _rewrite(row)


async def get_statistics(db: AsyncConnection, *, actor: Actor) -> s.StatisticsOut:
    """The actor's answered suggestions summed, with the acceptance rate (zeros before the first)."""
    row = (await db.execute(_STATISTICS, {"user_id": actor.user_id})).one_or_none()
    if row is None:
        return s.StatisticsOut(
            total_interventions=0,
            accepted_count=0,
            modified_count=0,
            rejected_count=0,
            ignored_count=0,
            acceptance_rate=None,
            last_intervention_at=None,
        )
    return s.StatisticsOut.model_validate(row._asdict())
