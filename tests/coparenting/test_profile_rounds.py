"""Communication profiles learned again by the hourly round: the profile of each person who
has written since it was last learned, and no other; a profile nobody asked for is never
learned."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from rapport.modules.coparenting import service
from rapport.modules.coparenting.tasks import relearn_profiles
from tests.messaging.support import make_conversation, send
from tests.support import Persona

pytestmark = pytest.mark.module_database

PROFILE = "/v1/coparenting/communication-profile"
JobsDone = Callable[[], Awaitable[None]]


async def queue_relearning(runtime: Runtime, overlap: timedelta | None = None) -> list[UUID]:
    """Whose learning the round's job queues (with the default overlap unless given)."""
    async with system_transaction(runtime.system_engine) as db:
        if overlap is None:
            return await service.do_queue_relearning(db)
        return await service.do_queue_relearning(db, overlap=overlap)


async def learned(client: httpx.AsyncClient, persona: Persona) -> tuple[int, int]:
    """(profile_version, messages_analysed) of the persona's profile."""
    profile = await client.get(PROFILE, headers=persona.headers)
    assert profile.status_code == 200, profile.text
    return profile.json()["profile_version"], profile.json()["messages_analysed"]


async def test_the_round_learns_again_the_profiles_of_those_who_wrote_since(
    client: httpx.AsyncClient,
    runtime: Runtime,
    app_engine: AsyncEngine,
    jobs_done: JobsDone,
    alice: Persona,
    bob: Persona,
    carol: Persona,
) -> None:
    room = await make_conversation(app_engine, alice, bob, carol)
    await send(client, alice, room, "Can you pick up Emma at 5?")
    await send(client, carol, room, "I will bring the school forms on Monday")
    for parent in (alice, bob):
        assert (await client.post(f"{PROFILE}/learn", headers=parent.headers)).status_code == 202
    await jobs_done()

    quiet = await queue_relearning(runtime, overlap=timedelta(0))
    await send(client, alice, room, "Thanks, see you then")
    await send(client, carol, room, "Fine")
    due = await queue_relearning(runtime, overlap=timedelta(0))
    await jobs_done()

    assert (quiet, due) == ([], [UUID(alice.user_id)])
    assert await learned(client, alice) == (2, 2)
    assert await learned(client, bob) == (1, 0)
    # Carol wrote, but never asked for a profile: none is learned for her.
    assert (await client.get(PROFILE, headers=carol.headers)).status_code == 404


async def test_the_rounds_job_queues_the_learning(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: AsyncEngine, jobs_done: JobsDone, alice: Persona
) -> None:
    room = await make_conversation(app_engine, alice)
    await client.post(f"{PROFILE}/learn", headers=alice.headers)
    await jobs_done()
    await send(client, alice, room, "The dentist moved the appointment to Thursday")

    async with system_transaction(runtime.system_engine) as db:
        await jobs.enqueue(db, relearn_profiles, {})
    await jobs_done()

    assert await learned(client, alice) == (2, 1)


async def test_a_message_written_just_before_a_learning_still_counts_as_new(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: AsyncEngine, jobs_done: JobsDone, alice: Persona
) -> None:
    # As one sent while the profile was being learned, after its messages were read.
    room = await make_conversation(app_engine, alice)
    await send(client, alice, room, "I can take them on Saturday")
    await client.post(f"{PROFILE}/learn", headers=alice.headers)
    await jobs_done()

    assert await queue_relearning(runtime) == [UUID(alice.user_id)]
    assert await queue_relearning(runtime, overlap=timedelta(0)) == []
