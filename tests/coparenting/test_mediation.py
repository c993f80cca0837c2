"""Mediation through the API: a parent's triggers, the analysis of a draft (local, or by a
language model behind an OpenAI-compatible endpoint when they consented to AI features),
what they did with a suggested rewrite, their statistics and their communication profile
learned by a job. Nothing of it reaches the conversation or the other parent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from rapport.config import Settings
from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from tests.coparenting.llm_fake import API_KEY, MODEL, FakeLlm
from tests.messaging.support import make_conversation, send
from tests.support import Persona, make_settings, problem_type

pytestmark = pytest.mark.module_database

ANALYSIS = "/v1/coparenting/analysis"
TRIGGERS = "/v1/coparenting/triggers"
REWRITES = "/v1/coparenting/rewrites"
STATISTICS = "/v1/coparenting/mediation/statistics"
PROFILE = "/v1/coparenting/communication-profile"
HOSTILE = "You need to send the school forms by Monday or else I'm calling my lawyer!!"
CIVIL = "Can you pick up Emma at 5 on Friday?"
TIMEOUT_S = 0.3


@pytest.fixture(scope="module")
async def llm() -> AsyncIterator[FakeLlm]:
    async with FakeLlm() as fake:
        yield fake


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, object], llm: FakeLlm) -> Settings:
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        llm_url=llm.url,
        llm_model=MODEL,
        llm_api_key=API_KEY,
        llm_timeout_s=TIMEOUT_S,
    )


@pytest.fixture(autouse=True)
def fresh_llm(llm: FakeLlm) -> FakeLlm:
    llm.reset()
    return llm


async def analyse(client: httpx.AsyncClient, who: Persona, draft: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(ANALYSIS, headers=who.headers, json={"text": draft, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_trigger(client: httpx.AsyncClient, who: Persona, trigger_type: str, value: str, **extra: Any) -> dict:
    response = await client.post(
        TRIGGERS, headers=who.headers, json={"trigger_type": trigger_type, "trigger_value": value, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


async def consent_to_ai(client: httpx.AsyncClient, who: Persona) -> None:
    response = await client.post(
        "/v1/me/consents", headers=who.headers, json={"consent_type": "ai_features", "granted": True}
    )
    assert response.status_code == 201, response.text


async def answer(client: httpx.AsyncClient, who: Persona, rewrite_id: str, outcome: str, **extra: Any):
    return await client.post(
        f"{REWRITES}/{rewrite_id}/outcome", headers=who.headers, json={"outcome": outcome, **extra}
    )


# Triggers


async def test_a_parent_keeps_triggers_of_each_type(client, alice):
    topic = await add_trigger(client, alice, "topic", "money", intensity=0.8)
    await add_trigger(client, alice, "phrase", "you always")
    await add_trigger(client, alice, "pattern", "you * late")

    listed = await client.get(TRIGGERS, headers=alice.headers)

    assert listed.status_code == 200, listed.text
    assert [(t["trigger_type"], t["trigger_value"]) for t in listed.json()["items"]] == [
        ("pattern", "you * late"),
        ("phrase", "you always"),
        ("topic", "money"),
    ]
    assert (topic["intensity"], topic["detection_count"], topic["last_detected"]) == ("0.80", 0, None)


async def test_a_trigger_is_changed_and_removed(client, alice):
    made = await add_trigger(client, alice, "topic", "money")

    changed = await client.patch(f"{TRIGGERS}/{made['id']}", headers=alice.headers, json={"intensity": 0.3})
    removed = await client.delete(f"{TRIGGERS}/{made['id']}", headers=alice.headers)
    again = await client.delete(f"{TRIGGERS}/{made['id']}", headers=alice.headers)

    assert changed.status_code == 200 and changed.json()["intensity"] == "0.30", changed.text
    assert removed.status_code == 204
    assert problem_type(again) == "trigger-not-found"


async def test_the_same_trigger_twice_whatever_its_case_is_a_conflict(client, alice):
    await add_trigger(client, alice, "phrase", "You Always")

    response = await client.post(
        TRIGGERS, headers=alice.headers, json={"trigger_type": "phrase", "trigger_value": "you always"}
    )

    assert response.status_code == 409 and problem_type(response) == "trigger-exists"


@pytest.mark.parametrize(
    "body",
    [
        {"trigger_type": "topic", "trigger_value": "why? now"},
        {"trigger_type": "pattern", "trigger_value": "* *"},
        {"trigger_type": "mood", "trigger_value": "anger"},
        {"trigger_type": "phrase", "trigger_value": "late", "intensity": 1.5},
        {"trigger_type": "phrase", "trigger_value": ""},
        {"trigger_type": "phrase", "trigger_value": "late", "intensity": "high"},
    ],
)
async def test_a_bad_trigger_is_refused_with_422(client, alice, body):
    response = await client.post(TRIGGERS, headers=alice.headers, json=body)

    assert response.status_code == 422 and problem_type(response) == "validation-error", response.text


async def test_a_change_that_makes_the_value_wrong_for_its_type_is_refused(client, alice):
    made = await add_trigger(client, alice, "phrase", "why? now")

    response = await client.patch(f"{TRIGGERS}/{made['id']}", headers=alice.headers, json={"trigger_type": "topic"})

    assert response.status_code == 422 and problem_type(response) == "validation-error"


# The analysis, locally


async def test_a_hostile_draft_shows_its_triggers_tone_and_a_calmer_rewrite(client, alice):
    await add_trigger(client, alice, "topic", "school forms", intensity=0.9)

    body = await analyse(client, alice, HOSTILE)

    assert body["hostile"] is True and body["engine"] == "local"
    assert body["tone"]["label"] == "hostile"
    assert {"threat", "command", "exclamations"} <= set(body["tone"]["markers"])
    assert [(t["trigger_value"], t["matched"]) for t in body["triggers"]] == [("school forms", "school forms")]
    assert body["suggestion"]["engine"] == "local"
    assert "school forms by Monday" in body["suggestion"]["text"] and "lawyer" not in body["suggestion"]["text"]
    listed = (await client.get(TRIGGERS, headers=alice.headers)).json()["items"]
    assert listed[0]["detection_count"] == 1 and listed[0]["last_detected"] is not None


async def test_a_civil_draft_gets_no_suggestion(client, alice):
    body = await analyse(client, alice, CIVIL)

    assert (body["hostile"], body["suggestion"], body["triggers"]) == (False, None, [])
    rewrites = await client.get(REWRITES, headers=alice.headers)
    assert rewrites.json()["items"] == []


async def test_a_draft_for_a_conversation_keeps_it_and_the_other_parent_sees_nothing(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob, type="direct")
    await send(client, bob, room, "When are you bringing them back?")

    body = await analyse(client, alice, HOSTILE, conversation_id=str(room))

    rewrites = (await client.get(REWRITES, headers=alice.headers)).json()["items"]
    assert [(r["id"], r["conversation_id"], r["outcome"]) for r in rewrites] == [
        (body["suggestion"]["id"], str(room), None)
    ]
    history = await client.get(f"/v1/conversations/{room}/messages", headers=bob.headers)
    assert [m["content"] for m in history.json()["items"]] == ["When are you bringing them back?"]
    assert (await client.get(REWRITES, headers=bob.headers)).json()["items"] == []


async def test_a_conversation_the_sender_takes_no_part_in_is_not_found(client, app_engine, alice, bob, carol):
    room = await make_conversation(app_engine, bob, carol, type="direct")

    response = await client.post(ANALYSIS, headers=alice.headers, json={"text": HOSTILE, "conversation_id": str(room)})

    assert response.status_code == 404 and problem_type(response) == "conversation-not-found"


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "x" * 5001}, {"text": "hi", "conversation_id": "nope"}, {}])
async def test_a_bad_draft_is_refused_with_422(client, alice, body):
    response = await client.post(ANALYSIS, headers=alice.headers, json=body)

    assert response.status_code == 422 and problem_type(response) == "validation-error"


async def test_the_analysis_needs_a_caller(client):
    response = await client.post(ANALYSIS, json={"text": CIVIL})

    assert response.status_code == 401


# Outcomes and statistics


async def test_statistics_start_at_zero_with_no_rate(client, alice):
    response = await client.get(STATISTICS, headers=alice.headers)

    assert response.status_code == 200
    assert response.json() == {
        "total_interventions": 0,
        "accepted_count": 0,
        "modified_count": 0,
        "rejected_count": 0,
        "ignored_count": 0,
        "acceptance_rate": None,
        "last_intervention_at": None,
    }


async def test_each_outcome_is_counted_and_the_view_gives_the_acceptance_rate(client, alice):
    ids = [(await analyse(client, alice, HOSTILE))["suggestion"]["id"] for _ in range(5)]

    assert (await answer(client, alice, ids[0], "accepted")).status_code == 200
    assert (await answer(client, alice, ids[1], "accepted")).status_code == 200
    modified = await answer(client, alice, ids[2], "modified", final_text="Please send the forms by Monday.")
    assert (await answer(client, alice, ids[3], "rejected")).status_code == 200

    assert modified.status_code == 200 and modified.json()["final_text"] == "Please send the forms by Monday."
    stats = (await client.get(STATISTICS, headers=alice.headers)).json()
    assert [stats[k] for k in ("total_interventions", "accepted_count", "modified_count", "rejected_count")] == [
        4,
        2,
        1,
        1,
    ]
    assert (stats["ignored_count"], stats["acceptance_rate"]) == (0, "0.5000")
    assert stats["last_intervention_at"] is not None


async def test_an_outcome_is_recorded_once(client, alice):
    suggestion = (await analyse(client, alice, HOSTILE))["suggestion"]
    await answer(client, alice, suggestion["id"], "ignored")

    again = await answer(client, alice, suggestion["id"], "accepted")

    assert again.status_code == 409 and problem_type(again) == "outcome-already-recorded"
    stats = (await client.get(STATISTICS, headers=alice.headers)).json()
    assert (stats["total_interventions"], stats["ignored_count"], stats["acceptance_rate"]) == (1, 1, "0.0000")


@pytest.mark.parametrize(
    "body",
    [
        {"outcome": "modified"},
        {"outcome": "accepted", "final_text": "Hi"},
        {"outcome": "loved"},
    ],
)
async def test_a_bad_outcome_is_refused_with_422(client, alice, body):
    suggestion = (await analyse(client, alice, HOSTILE))["suggestion"]

    response = await client.post(f"{REWRITES}/{suggestion['id']}/outcome", headers=alice.headers, json=body)

    assert response.status_code == 422 and problem_type(response) == "validation-error"


async def test_an_unknown_suggestion_is_not_found(client, alice):
    response = await answer(client, alice, str(uuid7()), "accepted")

    assert response.status_code == 404 and problem_type(response) == "rewrite-not-found"


async def test_an_outcome_is_announced_to_the_parent_alone(client, runtime, alice):
    suggestion = (await analyse(client, alice, HOSTILE))["suggestion"]

    await answer(client, alice, suggestion["id"], "accepted")

    async with system_transaction(runtime.system_engine) as db:
        rows = (
            await db.execute(
                text(
                    "SELECT scope_kind, scope_id, payload FROM kernel.events"
                    " WHERE type = 'coparenting.rewrite.answered'"
                )
            )
        ).all()
    assert [(r.scope_kind, str(r.scope_id), r.payload["outcome"]) for r in rows] == [
        ("user", alice.user_id, "accepted")
    ]


# The communication profile


async def test_the_profile_is_learned_by_a_job_from_the_parents_own_messages(client, app_engine, jobs_done, alice, bob):
    room = await make_conversation(app_engine, alice, bob, type="direct")
    for content in ["Hey, can you grab the kids at 5? Thanks 😊", "ok cool, see you then", "Thanks!! 🙂"]:
        await send(client, alice, room, content)
    await send(client, bob, room, "Furthermore, I would like to discuss the arrangements in considerable detail.")
    assert (await client.get(PROFILE, headers=alice.headers)).status_code == 404

    queued = await client.post(f"{PROFILE}/learn", headers=alice.headers)
    await jobs_done()

    assert queued.status_code == 202
    profile = await client.get(PROFILE, headers=alice.headers)
    assert profile.status_code == 200, profile.text
    body = profile.json()
    assert (body["messages_analysed"], body["profile_version"]) == (3, 1)
    assert body["emoji_usage"] == "moderate" and "casual" in body["tone_tendencies"]
    assert body["vocabulary_complexity"] == "simple"
    assert body["avg_message_length"] == round(
        sum(map(len, ["Hey, can you grab the kids at 5? Thanks 😊", "ok cool, see you then", "Thanks!! 🙂"])) / 3
    )


async def test_learning_again_counts_the_version_and_reads_are_recorded(client, runtime, jobs_done, alice):
    for _ in range(2):
        await client.post(f"{PROFILE}/learn", headers=alice.headers)
        await jobs_done()

    profile = await client.get(PROFILE, headers=alice.headers)

    assert profile.json()["profile_version"] == 2 and profile.json()["messages_analysed"] == 0
    async with system_transaction(runtime.system_engine) as db:
        reads = (
            await db.execute(
                text(
                    "SELECT count(*) FROM audit.sensitive_data_access WHERE user_id = :u"
                    " AND table_name = 'coparenting.communication_profiles' AND action = 'read'"
                ),
                {"u": UUID(alice.user_id)},
            )
        ).scalar_one()
    assert reads == 1


# The language model


async def test_without_the_ai_consent_the_model_is_never_asked(client, alice, fresh_llm):
    body = await analyse(client, alice, HOSTILE)

    assert body["engine"] == "local" and fresh_llm.received == []


async def test_with_the_consent_the_model_judges_and_rewrites_and_sees_only_the_draft(client, alice, fresh_llm):
    await consent_to_ai(client, alice)
    await add_trigger(client, alice, "topic", "school forms")
    fresh_llm.answer({"hostile": True, "tone": "hostile", "rewrite": "Could you send the school forms by Monday?"})

    body = await analyse(client, alice, HOSTILE)

    assert (body["engine"], body["hostile"]) == ("llm", True)
    assert body["suggestion"]["text"] == "Could you send the school forms by Monday?"
    assert body["suggestion"]["engine"] == "llm"
    assert [t["trigger_value"] for t in body["triggers"]] == ["school forms"]
    (sent,) = fresh_llm.received
    assert sent["model"] == MODEL
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert sent["messages"][1]["content"] == HOSTILE
    assert alice.email not in str(sent) and 'school forms"' not in str(sent["messages"][0])
    rewrites = (await client.get(REWRITES, headers=alice.headers)).json()["items"]
    assert rewrites[0]["engine"] == "llm"


async def test_the_models_calm_verdict_means_no_suggestion(client, alice, fresh_llm):
    await consent_to_ai(client, alice)
    fresh_llm.answer({"hostile": False, "tone": "neutral", "rewrite": None})

    body = await analyse(client, alice, HOSTILE)

    assert (body["engine"], body["hostile"], body["suggestion"]) == ("llm", False, None)


@pytest.mark.parametrize("failure", ["status", "slow", "garbled", "incomplete"])
async def test_when_the_model_fails_the_local_analysis_answers(client, alice, fresh_llm, failure):
    await consent_to_ai(client, alice)
    fresh_llm.answer({"hostile": True, "tone": "hostile", "rewrite": "Calm words."})
    if failure == "status":
        fresh_llm.fail_next(503)
    elif failure == "slow":
        fresh_llm.delay_next(TIMEOUT_S * 3)
    elif failure == "garbled":
        fresh_llm.garble_next()
    else:
        fresh_llm.answer({"hostile": True, "tone": "hostile"})

    body = await analyse(client, alice, HOSTILE)

    assert len(fresh_llm.received) == 1
    assert (body["engine"], body["hostile"], body["suggestion"]["engine"]) == ("local", True, "local")
    assert "school forms by Monday" in body["suggestion"]["text"]
