"""Co-parenting routes: pairing two parents by e-mail, link or code, and their shared room."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from rapport.kernel.deps import NO_CONTENT, CallerDep
from rapport.modules.coparenting import schemas_pairing as s
from rapport.modules.coparenting import service

router = APIRouter(prefix="/v1/coparenting", tags=["coparenting"])


@router.post("/pairings", response_model=s.PairingCreated, status_code=status.HTTP_201_CREATED)
async def create_pairing(body: s.PairingCreate, caller: CallerDep) -> s.PairingCreated:
    """Invite the other parent. `email`: Rapport mails them a token, which only an account
    with that address may accept. `link`: the answer's `token`, shown this once, is for the
    caller to pass on. `code`: the answer's `pairing_code` (`LZ-NNNNNN`), to read aloud.
    The invitation lasts `expires_in_hours` (a week by default).

    Errors: `cannot-pair-with-yourself` (422) for the caller's own address.
    """
    async with caller.transaction() as (db, actor):
        return await service.do_create_pairing(db, actor=actor, body=body)


@router.post("/pairings/accept", response_model=s.PairingOut)
async def accept_pairing(body: s.PairingAccept, caller: CallerDep) -> s.PairingOut:
    """Accept an invitation by its `code` or its `token`. The pairing becomes active and the
    two parents' shared room (`shared_room_id`) is made; a system message in it says the
    caller joined, and both parents receive `pairing.accepted`.

    Errors: `pairing-invitation-not-found` (404) for a code or token that opens nothing
    (also an e-mail invitation to another address); `pairing-invitation-expired` (410);
    `cannot-pair-with-yourself` (422) for the caller's own invitation; `already-paired`
    (409); `too-many-pairing-attempts` (429) after many failures in a short time;
    `user-not-found` (404) when the initiator cannot share a room with the caller (a block).
    """
    async with caller.transaction() as (db, actor):
        return await service.do_accept_pairing(db, actor=actor, body=body)


@router.get("/pairing", response_model=s.PairingStatusOut)
async def get_pairing_status(caller: CallerDep) -> s.PairingStatusOut:
    """The caller's pairing status: their active pairing (partner and shared room), or else
    their newest pending invitation, or else their newest expired one.

    Errors: `pairing-not-found` (404) when there is none.
    """
    async with caller.transaction() as (db, actor):
        return await service.get_pairing_status(db, actor=actor)


@router.get("/pairings/{pairing_id}", response_model=s.PairingOut)
async def get_pairing(pairing_id: UUID, caller: CallerDep) -> s.PairingOut:
    """One of the caller's pairings. Errors: `pairing-not-found` (404)."""
    async with caller.transaction() as (db, actor):
        return await service.get_pairing(db, actor=actor, pairing_id=pairing_id)


@router.get("/pairings/{pairing_id}/log", response_model=list[s.PairingLogEntry])
async def list_pairing_log(pairing_id: UUID, caller: CallerDep) -> list[s.PairingLogEntry]:
    """Every step of one of the caller's pairings, oldest first. Errors: `pairing-not-found` (404)."""
    async with caller.transaction() as (db, actor):
        return await service.list_pairing_log(db, actor=actor, pairing_id=pairing_id)


@router.post("/pairings/{pairing_id}/cancel", response_model=s.PairingOut)
async def cancel_pairing(pairing_id: UUID, caller: CallerDep) -> s.PairingOut:
    """Cancel a pending invitation (its initiator), or end an active pairing (either
    parent: the room and its history stay). Canceling again changes nothing. Both parents
    receive `pairing.canceled`.

    Errors: `pairing-not-found` (404); `pairing-not-cancelable` (409) once expired.
    """
    async with caller.transaction() as (db, actor):
        return await service.do_cancel_pairing(db, actor=actor, pairing_id=pairing_id)


@router.delete("/pairings/{pairing_id}", **NO_CONTENT)
async def delete_pairing(pairing_id: UUID, caller: CallerDep) -> None:
    """As `POST .../cancel`, answering 204."""
    async with caller.transaction() as (db, actor):
        await service.do_cancel_pairing(db, actor=actor, pairing_id=pairing_id)
