"""Feature vectors from tags too (layout version 2): a person's community tags count with
their dating profile's interests; PUT /v1/me/tags publishes `community.tags_changed` when
the tags change, and matching's reader of the outbox remakes the person's vector; the
daily job remakes the vectors an older layout made before it proposes.

Alice has a dating profile; bob uses the community alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text, update

from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.runtime import Runtime
from rapport.modules.matching import models_people as m
from rapport.modules.matching import service
from tests.matching.test_daily import user_events
from tests.support import Persona

pytestmark = pytest.mark.module_database

PROFILE = {"birth_date": "1990-01-01", "gender": "woman", "interests": ["Jazz", "hiking"]}


async def features_of(runtime: Runtime, who: Persona) -> tuple[int, list[float]] | None:
    async with user_transaction(runtime.engine, who.user_id) as db:
        return await service.get_features(db, actor=Actor(user_id=UUID(who.user_id)))


async def put_tags(client: httpx.AsyncClient, who: Persona, tags: list[str]) -> None:
    answer = await client.put("/v1/me/tags", headers=who.headers, json={"tags": tags})
    assert answer.status_code == 200, answer.text


def test_tags_count_with_the_interests_once_each() -> None:
    assert service.build_features([], tags=["jazz", "chess"]) == service.build_features(["jazz", "chess"])
    assert service.build_features(["Jazz"], tags=["jazz"]) == service.build_features(["jazz"])
    assert service.build_features(["jazz"], tags=["tea"]) != service.build_features(["jazz"])
    assert service.build_features([], tags=[]) is None


async def test_changing_tags_remakes_the_vector_through_the_outbox(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona
) -> None:
    assert (await client.put("/v1/matching/profile", headers=alice.headers, json=PROFILE)).status_code == 200

    await put_tags(client, alice, ["Pottery", "tea"])
    # However far the server's own reader got, this returns once every change is read.
    await service.refresh_heard_features(runtime.system_engine)

    assert await user_events(runtime, alice, "community.") == [("community.tags_changed", {"tags": ["pottery", "tea"]})]
    version, features = await features_of(runtime, alice) or (0, [])
    assert version == service.FEATURE_VERSION
    assert features == pytest.approx(
        service.build_features(["jazz", "hiking"], tags=["pottery", "tea"]) or [], abs=1e-6
    )


async def test_the_same_tags_again_change_nothing(client: httpx.AsyncClient, runtime: Runtime, alice: Persona) -> None:
    await put_tags(client, alice, ["tea"])
    await put_tags(client, alice, ["TEA"])

    assert await user_events(runtime, alice, "community.") == [("community.tags_changed", {"tags": ["tea"]})]


async def test_tags_alone_make_a_vector_and_clearing_them_removes_it(
    client: httpx.AsyncClient, runtime: Runtime, bob: Persona
) -> None:
    await put_tags(client, bob, ["gardening"])
    await service.refresh_heard_features(runtime.system_engine)
    version, features = await features_of(runtime, bob) or (0, [])
    assert (version, features) == (service.FEATURE_VERSION, pytest.approx(service.build_features(["gardening"])))

    await put_tags(client, bob, [])
    await service.refresh_heard_features(runtime.system_engine)
    assert await features_of(runtime, bob) is None


async def test_the_profile_and_assessment_keep_the_tags(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona
) -> None:
    await put_tags(client, alice, ["pottery"])
    assert (await client.put("/v1/matching/profile", headers=alice.headers, json=PROFILE)).status_code == 200

    _, features = await features_of(runtime, alice) or (0, [])
    assert features == pytest.approx(service.build_features(["jazz", "hiking"], tags=["pottery"]) or [], abs=1e-6)


async def test_the_daily_job_first_remakes_vectors_of_an_older_layout(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, jobs_done: Callable[[], Awaitable[None]]
) -> None:
    await put_tags(client, alice, ["pottery"])
    assert (await client.put("/v1/matching/profile", headers=alice.headers, json=PROFILE)).status_code == 200
    await service.refresh_heard_features(runtime.system_engine)
    # A vector of layout 1: the interests alone.
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(m.user_features).values(version=1, features=service.build_features(["jazz", "hiking"])))
        await service.enqueue_if_due(db)
    await jobs_done()

    version, features = await features_of(runtime, alice) or (0, [])
    assert version == service.FEATURE_VERSION == 2
    assert features == pytest.approx(service.build_features(["jazz", "hiking"], tags=["pottery"]) or [], abs=1e-6)
    async with system_transaction(runtime.system_engine) as db:
        stale = (await db.execute(text("SELECT count(*) FROM matching.user_features WHERE version < 2"))).scalar_one()
    assert stale == 0
