"""Co-parenting routes: family. The details kept about a child or a co-parent among your
contacts, the tasks you share with the other parent, and the topics of your shared room."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.modules.coparenting import schemas_family as s
from rapport.modules.coparenting import service

router = APIRouter(prefix="/v1/coparenting", tags=["coparenting"])

_SENSITIVE = (
    " Sensitive: only you read or write them, only with a signed-in session (not an API key), and every"
    " read and write is recorded (`GET /v1/profile/sensitive-access`)."
)


# Contacts' details


@router.get(
    "/contacts/{contact_id}/child-details",
    response_model=s.ChildDetailsOut,
    description='The details of a child among your contacts (relationship such as "My Child"): health, '
    "activities, appointments; every field is null until first saved." + _SENSITIVE,
)
async def get_child_details(contact_id: UUID, caller: CallerDep) -> BaseModel:
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.get_child_details(db, actor=actor, contact_id=contact_id)


@router.put(
    "/contacts/{contact_id}/child-details",
    response_model=s.ChildDetailsOut,
    description="Replace a child's details: fields left out are cleared." + _SENSITIVE,
)
async def put_child_details(contact_id: UUID, body: s.ChildDetailsIn, caller: CallerDep) -> BaseModel:
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_put_child_details(db, actor=actor, contact_id=contact_id, values=body)


@router.delete("/contacts/{contact_id}/child-details", **NO_CONTENT)
async def delete_child_details(contact_id: UUID, caller: CallerDep) -> None:
    """Erase a child's details."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_delete_child_details(db, actor=actor, contact_id=contact_id)


@router.get(
    "/contacts/{contact_id}/coparent-details",
    response_model=s.CoparentDetailsOut,
    description="The details of a co-parent or partner among your contacts (relationship such as "
    '"My Co-Parent"): separation and custody, the relationship; null until first saved.' + _SENSITIVE,
)
async def get_coparent_details(contact_id: UUID, caller: CallerDep) -> BaseModel:
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.get_coparent_details(db, actor=actor, contact_id=contact_id)


@router.put(
    "/contacts/{contact_id}/coparent-details",
    response_model=s.CoparentDetailsOut,
    description="Replace a co-parent's or partner's details: fields left out are cleared." + _SENSITIVE,
)
async def put_coparent_details(contact_id: UUID, body: s.CoparentDetailsIn, caller: CallerDep) -> BaseModel:
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_put_coparent_details(db, actor=actor, contact_id=contact_id, values=body)


@router.delete("/contacts/{contact_id}/coparent-details", **NO_CONTENT)
async def delete_coparent_details(contact_id: UUID, caller: CallerDep) -> None:
    """Erase a co-parent's or partner's details."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_delete_coparent_details(db, actor=actor, contact_id=contact_id)


# Tasks


@router.post("/tasks", status_code=status.HTTP_201_CREATED, response_model=s.TaskOut)
async def create_task(body: s.TaskCreate, caller: CallerDep) -> s.TaskOut:
    """Make a task: yours alone, or shared with everyone in a room you take part in (your
    shared room with the other parent). You are reminded when it falls due."""
    async with caller.transaction() as (db, actor):
        return await service.do_create_task(db, actor=actor, task=body)


@router.get("/tasks", response_model=Page[s.TaskOut])
async def list_tasks(
    caller: CallerDep,
    page: PageDep,
    conversation_id: Annotated[UUID | None, Query(description="Only this room's tasks.")] = None,
    task_status: Annotated[s.TaskStatus | None, Query(alias="status", description="Only tasks in this state.")] = None,
    assigned_to_me: Annotated[bool, Query(description="Only tasks given to you.")] = False,
) -> Page[s.TaskOut]:
    """Your tasks and those of your rooms, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_tasks(
            db,
            actor=actor,
            page=page,
            conversation_id=conversation_id,
            status=task_status,
            assigned_to_me=assigned_to_me,
        )


@router.get("/tasks/{task_id}", response_model=s.TaskOut)
async def get_task(task_id: UUID, caller: CallerDep) -> s.TaskOut:
    """A task you made or share."""
    async with caller.transaction() as (db, actor):
        return await service.access_task(db, actor=actor, task_id=task_id)


@router.patch("/tasks/{task_id}", response_model=s.TaskOut)
async def update_task(task_id: UUID, body: s.TaskUpdate, caller: CallerDep) -> s.TaskOut:
    """Change a task: its creator or anyone acting in its room."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_task(db, actor=actor, task_id=task_id, changes=body)


@router.delete("/tasks/{task_id}", **NO_CONTENT)
async def delete_task(task_id: UUID, caller: CallerDep) -> None:
    """Remove a task for everyone who shares it."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_task(db, actor=actor, task_id=task_id)


@router.put("/tasks/{task_id}/people/{contact_id}", response_model=s.TaskOut)
async def add_related_person(task_id: UUID, contact_id: UUID, caller: CallerDep) -> s.TaskOut:
    """Say the task is about one of your contacts; those who share the task see their name."""
    async with caller.transaction() as (db, actor):
        return await service.do_add_related_person(db, actor=actor, task_id=task_id, contact_id=contact_id)


@router.delete("/tasks/{task_id}/people/{contact_id}", response_model=s.TaskOut)
async def remove_related_person(task_id: UUID, contact_id: UUID, caller: CallerDep) -> s.TaskOut:
    """The task is no longer about this person."""
    async with caller.transaction() as (db, actor):
        return await service.do_remove_related_person(db, actor=actor, task_id=task_id, contact_id=contact_id)


# Topics


@router.get("/rooms/{conversation_id}/topics", response_model=s.TopicRoomOut)
async def get_topic_room(conversation_id: UUID, caller: CallerDep) -> s.TopicRoomOut:
    """Whether the room's new messages are organised into topic threads (404 when not)."""
    async with caller.transaction() as (db, actor):
        return await service.get_topic_room(db, actor=actor, conversation_id=conversation_id)


@router.put(
    "/rooms/{conversation_id}/topics",
    status_code=status.HTTP_201_CREATED,
    response_model=s.TopicRoomOut,
    responses={200: {"model": s.TopicRoomOut, "description": "Topics were already organised here."}},
)
async def enable_topics(conversation_id: UUID, caller: CallerDep, response: Response) -> s.TopicRoomOut:
    """Organise the room's new messages into topic threads from now on (201), or leave it so (200)."""
    async with caller.transaction() as (db, actor):
        made, room = await service.do_enable_topics(db, actor=actor, conversation_id=conversation_id)
    if not made:
        response.status_code = status.HTTP_200_OK
    return room


@router.delete("/rooms/{conversation_id}/topics", **NO_CONTENT)
async def disable_topics(conversation_id: UUID, caller: CallerDep) -> None:
    """Stop organising the room's new messages; what was suggested stays."""
    async with caller.transaction() as (db, actor):
        await service.do_disable_topics(db, actor=actor, conversation_id=conversation_id)


@router.get("/rooms/{conversation_id}/topic-suggestions", response_model=Page[s.TopicSuggestionOut])
async def list_topic_suggestions(
    conversation_id: UUID,
    caller: CallerDep,
    page: PageDep,
    state: Annotated[s.SuggestionState | None, Query(description="Only suggestions in this state.")] = None,
) -> Page[s.TopicSuggestionOut]:
    """Where the room's messages were placed (`place`: a topic thread they match) and the
    new topics proposed (`new`, pending until accepted or dismissed), newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_suggestions(db, actor=actor, conversation_id=conversation_id, page=page, state=state)


@router.post("/rooms/{conversation_id}/topic-suggestions/{suggestion_id}/accept", response_model=s.TopicSuggestionOut)
async def accept_topic_suggestion(
    conversation_id: UUID, suggestion_id: UUID, caller: CallerDep, body: s.AcceptSuggestion | None = None
) -> s.TopicSuggestionOut:
    """Accept a suggestion: a proposed topic becomes a topic thread of the room (with the
    title given, or the one proposed); a placement is confirmed."""
    async with caller.transaction() as (db, actor):
        return await service.do_accept_suggestion(
            db,
            actor=actor,
            conversation_id=conversation_id,
            suggestion_id=suggestion_id,
            title=body.title if body is not None else None,
        )


@router.post("/rooms/{conversation_id}/topic-suggestions/{suggestion_id}/dismiss", response_model=s.TopicSuggestionOut)
async def dismiss_topic_suggestion(
    conversation_id: UUID, suggestion_id: UUID, caller: CallerDep
) -> s.TopicSuggestionOut:
    """Dismiss a suggestion: the topic is not made, or the placement is undone."""
    async with caller.transaction() as (db, actor):
        return await service.do_dismiss_suggestion(
            db, actor=actor, conversation_id=conversation_id, suggestion_id=suggestion_id
        )
