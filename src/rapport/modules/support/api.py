"""Routes of the support desk, under /v1/support: rooms, guests, agents joining, bots
brought in, escalations, queues and SLAs, and supervisors reading rooms.

A change is authorised in the caller's own transaction, then made as system work in a
second one (rapport.modules.support.service says why); a refusal in the second leaves
nothing behind."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status

from rapport.kernel.db import system_transaction
from rapport.kernel.deps import NO_CONTENT, CallerDep, ClientDep, PageDep, RuntimeDep
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from rapport.modules.support import schemas as s
from rapport.modules.support import service

router = APIRouter(prefix="/v1", tags=["support"])

RoomPath = Annotated[UUID, Path(description="The room's conversation id.")]
EscalationPath = Annotated[UUID, Path(description="The escalation.")]
LevelPath = Annotated[s.Level, Path(description="T1, T2, T3 or manager.")]
PriorityPath = Annotated[int, Path(ge=1, le=5, description="1 (high) to 5 (low).")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="The `next` value of the previous page.")]


# --- rooms ------------------------------------------------------------------------------------


@router.post("/support/rooms", response_model=s.RoomCreated, status_code=status.HTTP_201_CREATED)
async def open_room(body: s.RoomCreate, caller: CallerDep) -> s.RoomCreated:
    """Open a support room about an issue: its conversation (type `support`) with the
    caller in it as the customer, waiting at level T1 for an agent. Its messages are read
    and sent through the messaging API with `room.conversation_id`.

    Errors: `support-customer-required` (403) for a guest or a bot.
    """
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_open_room(db, actor=actor)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_open_room(db, permit=permit, body=body)


@router.get("/support/rooms", response_model=Page[s.RoomOut])
async def list_rooms(caller: CallerDep, page: PageDep) -> Page[s.RoomOut]:
    """The rooms the caller opened, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_rooms(db, actor=actor, page=page)


@router.get("/support/rooms/{room_id}", response_model=s.RoomOut)
async def get_room(room_id: RoomPath, caller: CallerDep) -> s.RoomOut:
    """A room the caller sees: theirs as its customer, one they take part in, one of a level
    they work (or below), any to a supervisor.

    Errors: `support-room-not-found` (404).
    """
    async with caller.transaction() as (db, actor):
        return await service.get_room(db, actor=actor, conversation_id=room_id)


@router.patch("/support/rooms/{room_id}", response_model=s.RoomOut)
async def update_room(room_id: RoomPath, body: s.RoomUpdate, caller: CallerDep) -> s.RoomOut:
    """Open or shut the room to guests and set how many may take part, `max_participants`
    (its customer, or an agent taking part in it); set its priority (an agent taking part
    in it).

    Errors: `support-room-not-found` (404); `support-room-participant-required` (403);
    `support-room-closed` (409); `validation-error` (422: a limit below how many take part).
    """
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_update_room(db, actor=actor, conversation_id=room_id, changes=body)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_update_room(db, permit=permit, changes=body)


@router.post("/support/rooms/{room_id}/close", response_model=s.RoomOut)
async def close_room(room_id: RoomPath, caller: CallerDep) -> s.RoomOut:
    """Close the room (its customer, or an agent taking part in it with `chat:room:close`):
    it leaves the queues; its conversation closes (nobody sends in it any more, and its
    history stays readable); its guests' sessions end at once and its open guest links
    are revoked; its open escalations are cancelled, with a note. A closed room stays
    closed. Closing again changes nothing more.

    Errors: `support-room-not-found` (404); `support-room-participant-required` (403);
    `permission-required` (403).
    """
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_close_room(db, actor=actor, conversation_id=room_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_close_room(db, permit=permit)


@router.post("/support/rooms/{room_id}/join", response_model=s.RoomOut)
async def join_room(room_id: RoomPath, caller: CallerDep) -> s.RoomOut:
    """Join the room as an agent (who works its level or a higher one): a member of its
    conversation, whose first message there is the room's first response. Joining again
    changes nothing.

    Errors: `support-room-not-found` (404); `support-level-required`,
    `permission-required` (403, without `chat:room:join`); `support-room-closed`,
    `conversation-full` (409).
    """
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_join_room(db, actor=actor, conversation_id=room_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_join_room(db, permit=permit)


@router.post("/support/rooms/{room_id}/bots", response_model=s.RoomOut)
async def add_bot(room_id: RoomPath, body: s.RoomBotAdd, caller: CallerDep) -> s.RoomOut:
    """Bring a bot the caller manages into the room (its customer, or an agent taking part
    in it, holding `chat:robot:invoke` there): it takes part in the room's conversation
    and hears its messages as it subscribed to. Adding it again changes nothing.

    Errors: `support-room-not-found`, `bot-not-found` (404); `support-room-participant-required`,
    `permission-required` (403); `support-room-closed`, `conversation-full` (409).
    """
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_add_bot(db, actor=actor, conversation_id=room_id, bot_id=body.bot_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_add_bot(db, permit=permit)


@router.get("/support/rooms/{room_id}/messages", response_model=s.ObservedPage)
async def observe_messages(room_id: RoomPath, caller: CallerDep, page: PageDep) -> Response:
    """A supervisor (`supervisor:chat:observe` and `chat:message:read`) reads the room's messages, newest first,
    without taking part in it: nobody sees them among its participants.

    Errors: `support-room-not-found` (404); `permission-required` (403).
    """
    async with caller.transaction() as (db, actor):
        observed = await service.list_observed_messages(db, actor=actor, conversation_id=room_id, page=page)
    return Response(observed, media_type="application/json")


# --- guests ------------------------------------------------------------------------------------


@router.post(
    "/support/rooms/{room_id}/guest-links", response_model=s.GuestLinkCreated, status_code=status.HTTP_201_CREATED
)
async def create_guest_link(room_id: RoomPath, body: s.GuestLinkCreate, caller: CallerDep) -> s.GuestLinkCreated:
    """A link for someone without an account to join the room as a guest (its customer, or
    an agent taking part in it). Its `token`, in this answer only, is redeemed at
    `POST /v1/support/guest-sessions`, before `expires_at`, `max_uses` times (once by default).

    Errors: `support-room-not-found` (404); `support-room-participant-required` (403);
    `support-guests-not-allowed` (403); `support-room-closed` (409).
    """
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_guest_link(db, actor=actor, conversation_id=room_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_create_guest_link(db, rt=caller.runtime, permit=permit, body=body)


@router.get("/support/rooms/{room_id}/guest-links", response_model=Page[s.GuestLinkOut])
async def list_guest_links(room_id: RoomPath, caller: CallerDep, page: PageDep) -> Page[s.GuestLinkOut]:
    """The guest links to the room that the caller made, newest first (never their tokens).

    Errors: `support-room-not-found` (404).
    """
    async with caller.transaction() as (db, actor):
        return await service.list_guest_links(db, actor=actor, conversation_id=room_id, page=page)


@router.delete("/support/guest-links/{link_id}", **NO_CONTENT)
async def revoke_guest_link(link_id: UUID, caller: CallerDep) -> None:
    """Revoke a guest link the caller made: it admits nobody more; its guests stay.

    Errors: `support-guest-link-not-found` (404).
    """
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_revoke_guest_link(db, actor=actor, link_id=link_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        await service.do_revoke_guest_link(db, permit=permit, link_id=link_id)


@router.post("/support/guest-sessions", response_model=s.GuestSession, status_code=status.HTTP_201_CREATED)
async def redeem_guest_link(body: s.GuestSessionCreate, runtime: RuntimeDep, client: ClientDep) -> s.GuestSession:
    """Join a support room as a guest, with a link's `token` and the `display_name` its
    people will see; no account needed. The answer holds the guest's tokens (refresh them
    at `POST /v1/auth/refresh`) and the room: the guest takes part in it alone.

    Errors: `support-guest-link-not-found` (404); `support-guest-link-expired` (410);
    `support-guest-link-used` (410); `support-guests-not-allowed` (403);
    `support-room-closed` (409).
    """
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_redeem_guest_link(db, rt=runtime, client=client, body=body)


# --- escalations ---------------------------------------------------------------------------------


@router.post(
    "/support/rooms/{room_id}/escalations", response_model=s.EscalationOut, status_code=status.HTTP_201_CREATED
)
async def escalate(room_id: RoomPath, body: s.EscalationCreate, caller: CallerDep) -> s.EscalationOut:
    """Escalate the room to a higher level (`chat:escalation:create`): `same_room` raises the
    room itself; `new_room` opens an escalated room below it with the customer in it. The
    escalation starts `created`, in the queue of `to_level`.

    Errors: `support-room-not-found` (404); `permission-required` (403);
    `support-escalation-not-upward` (409); `support-room-closed` (409).
    """
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_escalate(db, actor=actor, conversation_id=room_id, body=body)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_escalate(db, permit=permit, body=body)


@router.get("/support/rooms/{room_id}/escalations", response_model=Page[s.EscalationOut])
async def list_escalations(room_id: RoomPath, caller: CallerDep, page: PageDep) -> Page[s.EscalationOut]:
    """The room's escalations the caller sees, newest first.

    Errors: `support-room-not-found` (404).
    """
    async with caller.transaction() as (db, actor):
        return await service.list_escalations(db, actor=actor, conversation_id=room_id, page=page)


@router.get("/support/escalations/{escalation_id}", response_model=s.EscalationOut)
async def get_escalation(escalation_id: EscalationPath, caller: CallerDep) -> s.EscalationOut:
    """An escalation the caller sees: made by or assigned to them, of a level they work, or
    any to a supervisor.

    Errors: `support-escalation-not-found` (404).
    """
    async with caller.transaction() as (db, actor):
        return await service.get_escalation(db, actor=actor, escalation_id=escalation_id)


async def _step(
    caller: CallerDep,
    escalation_id: UUID,
    step: service.Step,
    *,
    assignee_id: UUID | None = None,
    notes: str | None = None,
) -> s.EscalationOut:
    async with caller.transaction() as (db, actor):
        permit = await service.authorise_step(
            db, actor=actor, escalation_id=escalation_id, step=step, assignee_id=assignee_id
        )
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_step(db, permit=permit, notes=notes)


@router.post("/support/escalations/{escalation_id}/assign", response_model=s.EscalationOut)
async def assign_escalation(
    escalation_id: EscalationPath, caller: CallerDep, body: s.EscalationAssign | None = None
) -> s.EscalationOut:
    """Assign a created (or re-assign an assigned) escalation (`chat:escalation:assign`) to
    `assignee_id`, an agent of its level or higher, or to the caller: the assignee joins
    the room it is worked in, and hears of it.

    Errors: `support-escalation-not-found` (404); `permission-required`,
    `support-level-required` (403); `support-assignee-not-agent` (409);
    `support-escalation-transition` (409, naming the status).
    """
    assignee = body.assignee_id if body is not None else None
    return await _step(caller, escalation_id, "assign", assignee_id=assignee)


@router.post("/support/escalations/{escalation_id}/start", response_model=s.EscalationOut)
async def start_escalation(escalation_id: EscalationPath, caller: CallerDep) -> s.EscalationOut:
    """The assignee starts working on an assigned escalation: `in_progress`.

    Errors: `support-escalation-not-found` (404); `support-not-assignee` (403);
    `support-escalation-transition` (409, naming the status).
    """
    return await _step(caller, escalation_id, "start")


@router.post("/support/escalations/{escalation_id}/resolve", response_model=s.EscalationOut)
async def resolve_escalation(
    escalation_id: EscalationPath, body: s.EscalationResolve, caller: CallerDep
) -> s.EscalationOut:
    """The assignee (`chat:escalation:resolve`) resolves an escalation in progress, with notes.

    Errors: `support-escalation-not-found` (404); `support-not-assignee`,
    `permission-required` (403); `support-escalation-transition` (409, naming the status).
    """
    return await _step(caller, escalation_id, "resolve", notes=body.notes)


@router.post("/support/escalations/{escalation_id}/cancel", response_model=s.EscalationOut)
async def cancel_escalation(escalation_id: EscalationPath, caller: CallerDep) -> s.EscalationOut:
    """Cancel an open escalation (its creator, or `chat:escalation:assign`). A room raised
    by it stays at its level.

    Errors: `support-escalation-not-found` (404); `permission-required` (403);
    `support-escalation-transition` (409, naming the status).
    """
    return await _step(caller, escalation_id, "cancel")


# --- queues and service levels --------------------------------------------------------------------


@router.get("/support/queues/{level}", response_model=s.QueuePage)
async def get_queue(
    level: LevelPath, caller: CallerDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> s.QueuePage:
    """What waits at a level (agents of that level or higher; supervisors any): its rooms no
    agent has answered and its open escalations, by priority then age, each with the time
    its SLA makes it due and whether that has passed.

    Errors: `support-level-required` (403); `invalid-cursor` (400).
    """
    async with caller.transaction() as (db, actor):
        return await service.list_queue(db, actor=actor, level=level, limit=limit, cursor=cursor)


@router.get("/support/queues/{level}/breached", response_model=s.QueuePage)
async def get_breached(
    level: LevelPath, caller: CallerDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> s.QueuePage:
    """As the queue, only what is past its SLA.

    Errors: `support-level-required` (403); `invalid-cursor` (400).
    """
    async with caller.transaction() as (db, actor):
        return await service.list_queue(db, actor=actor, level=level, limit=limit, cursor=cursor, breached_only=True)


@router.get("/support/sla", response_model=list[s.SlaOut])
async def list_sla(caller: CallerDep) -> list[s.SlaOut]:
    """The service level of each priority: minutes to a first response and to resolution."""
    async with caller.transaction() as (db, _):
        return await service.list_sla(db)


@router.put("/support/sla/{priority}", response_model=s.SlaOut)
async def put_sla(priority: PriorityPath, body: s.SlaUpdate, caller: CallerDep) -> s.SlaOut:
    """Set a priority's service level (`access:admin:manage`; platform administrators).

    Errors: `permission-required` (403).
    """
    async with caller.transaction() as (db, actor):
        return await service.do_update_sla(db, actor=actor, priority=priority, body=body)
