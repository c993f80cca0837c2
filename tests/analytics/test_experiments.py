"""A/B tests: a person's variant is decided by hashing the test's key with their id (the
same every time, in SQL as in Python), spread by the weights; their first exposure is
recorded; the result per variant has its 95 % Wilson interval; administrators start and
stop tests."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from rapport.analytics.service_reports import assign_variant, wilson_interval
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.analytics.ingest_support import consent
from tests.analytics.reports_support import Event, add_events
from tests.analytics.reports_support import system_rows as rows_of
from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

TEST = {
    "key": "onboarding-v2",
    "name": "The new onboarding",
    "variants": [{"name": "control", "weight": 1}, {"name": "new-flow", "weight": 3}],
    "conversion_event": "first_message",
}
VARIANTS = [("control", 1), ("new-flow", 3)]
# Ids made the same on every run: the shares below are exact, not left to chance.
PEOPLE = [uuid.uuid5(uuid.NAMESPACE_URL, f"rapport:person:{n}") for n in range(10_000)]


def test_a_person_always_gets_the_same_variant_and_tests_are_independent() -> None:
    person = PEOPLE[0]
    assert {assign_variant("onboarding-v2", person, VARIANTS) for _ in range(5)} == {
        assign_variant("onboarding-v2", person, VARIANTS)
    }
    first = [assign_variant("a", p, [("x", 1), ("y", 1)]) for p in PEOPLE[:1000]]
    second = [assign_variant("b", p, [("x", 1), ("y", 1)]) for p in PEOPLE[:1000]]
    agree = sum(a == b for a, b in zip(first, second, strict=True))
    assert 400 < agree < 600, "two tests split people independently"


def test_variants_are_spread_by_their_weights() -> None:
    shares = Counter(assign_variant("onboarding-v2", p, VARIANTS) for p in PEOPLE)
    assert 0.23 < shares["control"] / len(PEOPLE) < 0.27
    assert 0.73 < shares["new-flow"] / len(PEOPLE) < 0.77
    assert Counter(assign_variant("k", p, [("off", 0), ("on", 5)]) for p in PEOPLE[:500]) == {"on": 500}


async def test_sql_and_python_assign_alike(runtime: Runtime) -> None:
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text(
                "SELECT p, analytics.assign_variant('onboarding-v2', p, CAST(:v AS jsonb))"
                " FROM unnest(CAST(:p AS uuid[])) p"
            ),
            {"p": PEOPLE[:300], "v": '[{"name": "control", "weight": 1}, {"name": "new-flow", "weight": 3}]'},
        )
        in_sql = {row[0]: row[1] for row in rows}
    assert in_sql == {p: assign_variant("onboarding-v2", p, VARIANTS) for p in PEOPLE[:300]}


def test_the_wilson_interval_matches_known_values() -> None:
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(5, 10) or (0.0, 0.0)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = wilson_interval(0, 10) or (0.0, 0.0)
    assert (low, round(high, 4)) == (0.0, 0.2775)
    low, high = wilson_interval(81, 263) or (0.0, 0.0)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


async def test_a_person_gets_their_variant_and_is_exposed_once(
    client: httpx.AsyncClient, runtime: Runtime, admin: Persona, alice: Persona
) -> None:
    made = await client.post("/v1/admin/analytics/experiments", json=TEST, headers=admin.headers)
    assert made.status_code == 201, made.text
    await consent(client, alice)

    first = await client.get("/v1/analytics/experiments/onboarding-v2", headers=alice.headers)
    second = await client.get("/v1/analytics/experiments/onboarding-v2", headers=alice.headers)

    assert first.status_code == 200, first.text
    assert first.json() == second.json()
    assert first.json()["variant"] == assign_variant("onboarding-v2", UUID(alice.user_id), VARIANTS)
    assert first.json()["running"] is True
    exposures = await rows_of(runtime, "SELECT user_id, variant FROM analytics.ab_test_exposures")
    assert [tuple(row) for row in exposures] == [(UUID(alice.user_id), first.json()["variant"])]


async def test_without_consent_a_person_gets_their_variant_and_no_exposure_is_kept(
    client: httpx.AsyncClient, runtime: Runtime, admin: Persona, alice: Persona, bob: Persona
) -> None:
    await client.post("/v1/admin/analytics/experiments", json=TEST, headers=admin.headers)
    await consent(client, bob)
    await consent(client, bob, granted=False)

    unconsented = await client.get("/v1/analytics/experiments/onboarding-v2", headers=alice.headers)
    withdrawn = await client.get("/v1/analytics/experiments/onboarding-v2", headers=bob.headers)

    for person, answer in ((alice, unconsented), (bob, withdrawn)):
        assert answer.status_code == 200, answer.text
        assert answer.json()["variant"] == assign_variant("onboarding-v2", UUID(person.user_id), VARIANTS)
        assert (answer.json()["running"], answer.json()["exposed_at"]) == (True, None)
    assert await rows_of(runtime, "SELECT user_id FROM analytics.ab_test_exposures") == []

    await consent(client, alice)
    counted = await client.get("/v1/analytics/experiments/onboarding-v2", headers=alice.headers)
    assert counted.json()["variant"] == unconsented.json()["variant"] and counted.json()["exposed_at"] is not None
    exposed = await rows_of(runtime, "SELECT user_id FROM analytics.ab_test_exposures")
    assert [row.user_id for row in exposed] == [UUID(alice.user_id)]


async def test_an_unknown_test_is_not_found(client: httpx.AsyncClient, alice: Persona) -> None:
    missing = await client.get("/v1/analytics/experiments/nothing-here", headers=alice.headers)
    assert missing.status_code == 404 and problem_type(missing) == "analytics-experiment-not-found"
    bad = await client.get("/v1/analytics/experiments/Not%20a%20key", headers=alice.headers)
    assert bad.status_code == 422 and problem_type(bad) == "validation-error"


async def test_the_result_counts_conversions_after_exposure_with_its_interval(
    client: httpx.AsyncClient, runtime: Runtime, admin: Persona, alice: Persona, bob: Persona, carol: Persona
) -> None:
    await client.post("/v1/admin/analytics/experiments", json=TEST, headers=admin.headers)
    seen = {}
    for person in (alice, bob, carol):
        await consent(client, person)
        answer = await client.get("/v1/analytics/experiments/onboarding-v2", headers=person.headers)
        seen[person.name] = answer.json()["variant"]
    [exposed] = await rows_of(runtime, "SELECT max(exposed_at) AS at FROM analytics.ab_test_exposures")
    later, earlier = exposed.at + timedelta(seconds=1), exposed.at - timedelta(days=1)
    await add_events(
        runtime,
        [
            Event("first_message", later, UUID(alice.user_id)),
            Event("first_message", later, UUID(alice.user_id)),  # one person converts once
            Event("first_message", earlier, UUID(bob.user_id)),  # before exposure: not a conversion
            Event("app_open", later, UUID(carol.user_id)),  # not the conversion event
        ],
    )

    report = await client.get("/v1/admin/analytics/experiments/onboarding-v2", headers=admin.headers)

    assert report.status_code == 200, report.text
    results = {r["variant"]: r for r in report.json()["results"]}
    assert list(results) == ["control", "new-flow"]
    for variant, result in results.items():
        exposures = sum(v == variant for v in seen.values())
        conversions = int(seen["alice"] == variant)
        assert (result["exposures"], result["conversions"]) == (exposures, conversions)
        interval = wilson_interval(conversions, exposures)
        if interval is None:
            assert (result["rate"], result["ci_low"], result["ci_high"]) == (None, None, None)
        else:
            assert result["rate"] == round(conversions / exposures, 6)
            assert (result["ci_low"], result["ci_high"]) == (round(interval[0], 6), round(interval[1], 6))


async def test_a_stopped_test_shows_its_control_to_newcomers_and_records_nobody(
    client: httpx.AsyncClient, runtime: Runtime, admin: Persona, alice: Persona, bob: Persona
) -> None:
    await client.post("/v1/admin/analytics/experiments", json=TEST, headers=admin.headers)
    await consent(client, alice)
    await consent(client, bob)
    before = await client.get("/v1/analytics/experiments/onboarding-v2", headers=alice.headers)

    stopped = await client.post("/v1/admin/analytics/experiments/onboarding-v2/stop", headers=admin.headers)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    again = await client.post("/v1/admin/analytics/experiments/onboarding-v2/stop", headers=admin.headers)
    assert again.status_code == 409 and problem_type(again) == "analytics-experiment-stopped"

    newcomer = await client.get("/v1/analytics/experiments/onboarding-v2", headers=bob.headers)
    assert (newcomer.json()["variant"], newcomer.json()["running"]) == ("control", False)
    kept = await client.get("/v1/analytics/experiments/onboarding-v2", headers=alice.headers)
    assert kept.json()["variant"] == before.json()["variant"], "who saw a variant keeps it"
    assert [row.user_id for row in await rows_of(runtime, "SELECT user_id FROM analytics.ab_test_exposures")] == [
        UUID(alice.user_id)
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"variants": [{"name": "only", "weight": 1}]},
        {"variants": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]},
        {"variants": [{"name": "a", "weight": 0}, {"name": "b", "weight": 0}]},
        {"variants": [{"name": "a", "weight": -1}, {"name": "b", "weight": 1}]},
        {"conversion_event": "Not An Event"},
    ],
)
async def test_a_bad_test_is_refused(client: httpx.AsyncClient, admin: Persona, change: dict[str, object]) -> None:
    refused = await client.post("/v1/admin/analytics/experiments", json={**TEST, **change}, headers=admin.headers)
    assert refused.status_code == 422 and problem_type(refused) == "validation-error", refused.text


async def test_a_key_is_taken_once_and_tests_are_listed(client: httpx.AsyncClient, admin: Persona) -> None:
    assert (await client.post("/v1/admin/analytics/experiments", json=TEST, headers=admin.headers)).status_code == 201
    again = await client.post("/v1/admin/analytics/experiments", json=TEST, headers=admin.headers)
    assert again.status_code == 409 and problem_type(again) == "analytics-experiment-key-taken"
    listed = await client.get("/v1/admin/analytics/experiments", headers=admin.headers)
    assert [(t["key"], t["status"]) for t in listed.json()["items"]] == [("onboarding-v2", "running")]
    missing = await client.get("/v1/admin/analytics/experiments/nope", headers=admin.headers)
    assert missing.status_code == 404 and problem_type(missing) == "analytics-experiment-not-found"
