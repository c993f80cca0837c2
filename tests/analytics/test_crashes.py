"""Crash reports: the same fault reported from different builds, devices and memory
layouts is one crash, counted, with how many people it hit; the message stays with the
reporter, and only with their privacy_policy consent (without it the crash is counted
with nothing of them). Administrators list crashes; anyone else is refused."""

from __future__ import annotations

from uuid import UUID

import pytest

from rapport.analytics._crashes import normalise_stack
from tests.analytics.ingest_support import CRASHES, consent, rows
from tests.compliance.admin_support import make_admin
from tests.support import problem_type

pytestmark = pytest.mark.module_database

STACK_A = """java.lang.NullPointerException: Attempt to invoke 'String User.getName()' on a null object
    at com.rapport.chat.InboxAdapter.bind(InboxAdapter.java:142)
    at com.rapport.chat.InboxAdapter.onBindViewHolder(InboxAdapter.java:88)
    #3 0x00007ffd5a2b1c40 in libart.so + 1234
"""
# The same fault in another build: other line numbers, addresses, offsets and message values.
STACK_B = """java.lang.NullPointerException: Attempt to invoke 'String Other.get()' on a null object
    at com.rapport.chat.InboxAdapter.bind(InboxAdapter.java:150)
    at com.rapport.chat.InboxAdapter.onBindViewHolder(InboxAdapter.java:91)

    #3 0x00007ffe00000010 in libart.so + 98
"""
OTHER = """java.lang.IllegalStateException
    at com.rapport.call.Ringer.start(Ringer.java:12)
"""


def report(stack: str, **fields: object) -> dict[str, object]:
    return {"platform": "android", "exception_type": "java.lang.NullPointerException", "stack_trace": stack, **fields}


def test_normalising_takes_out_what_varies():
    assert normalise_stack(STACK_A) == normalise_stack(STACK_B)
    assert normalise_stack(STACK_A) != normalise_stack(OTHER)
    assert "142" not in normalise_stack(STACK_A) and "0x?" in normalise_stack(STACK_A)


async def test_reports_of_one_fault_are_one_crash(client, runtime, alice, bob):
    await consent(client, alice)
    await consent(client, bob)
    first = await client.post(
        CRASHES, json=report(STACK_A, app_version="3.1.0", message="for alice"), headers=alice.headers
    )
    assert first.status_code == 202, first.text
    again = await client.post(CRASHES, json=report(STACK_B, app_version="3.2.0"), headers=alice.headers)
    by_bob = await client.post(CRASHES, json=report(STACK_B, app_version="3.2.1", message="bob's"), headers=bob.headers)
    other = await client.post(CRASHES, json=report(OTHER, exception_type="IllegalStateException"), headers=bob.headers)
    on_ios = await client.post(CRASHES, json=report(STACK_A, platform="ios"), headers=bob.headers)
    crash_id = first.json()["crash_id"]
    assert again.json() == {"crash_id": crash_id, "occurrences": 2}
    assert by_bob.json() == {"crash_id": crash_id, "occurrences": 3}
    assert other.json()["crash_id"] != crash_id and on_ios.json()["crash_id"] != crash_id

    (crash,) = await rows(runtime, "SELECT * FROM analytics.crash_reports WHERE id = :id", id=UUID(crash_id))
    assert (crash["occurrences"], crash["first_app_version"], crash["last_app_version"]) == (3, "3.1.0", "3.2.1")
    assert crash["first_seen"] <= crash["last_seen"]
    links = await rows(
        runtime,
        "SELECT user_id, occurrences, last_message FROM analytics.crash_report_users WHERE crash_id = :id"
        " ORDER BY occurrences DESC",
        id=UUID(crash_id),
    )
    assert [(r["user_id"], r["occurrences"], r["last_message"]) for r in links] == [
        (UUID(alice.user_id), 2, "for alice"),
        (UUID(bob.user_id), 1, "bob's"),
    ]


async def test_administrators_list_crashes_and_others_are_refused(client, runtime, alice, bob, carol):
    await consent(client, alice)
    await consent(client, bob)
    crash_id = (await client.post(CRASHES, json=report(STACK_A), headers=alice.headers)).json()["crash_id"]
    await client.post(CRASHES, json=report(STACK_B), headers=bob.headers)
    await client.post(CRASHES, json=report(OTHER, exception_type="IllegalStateException"), headers=bob.headers)

    refused = await client.get(CRASHES, headers=alice.headers)
    assert refused.status_code == 403
    assert problem_type(refused) == "platform-admin-required"
    assert (await client.get(f"{CRASHES}/{crash_id}", headers=bob.headers)).status_code == 403

    admin = await make_admin(runtime, carol)
    listed = await client.get(CRASHES, headers=admin.headers, params={"limit": 1})
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == 1 and listed.json()["next"]
    rest = await client.get(CRASHES, headers=admin.headers, params={"limit": 1, "cursor": listed.json()["next"]})
    ids = [listed.json()["items"][0]["id"], rest.json()["items"][0]["id"]]
    assert sorted(ids) != [] and len(set(ids)) == 2
    one = (await client.get(f"{CRASHES}/{crash_id}", headers=admin.headers)).json()
    assert (one["occurrences"], one["affected_users"]) == (2, 2)
    assert len(one["fingerprint"]) == 64
    assert "message" not in one


async def test_without_consent_a_crash_is_counted_with_nothing_of_the_reporter(client, runtime, alice, bob):
    await consent(client, alice)
    await consent(client, bob)
    await consent(client, bob, granted=False)
    with_alice = await client.post(CRASHES, json=report(STACK_A, message="alice typed"), headers=alice.headers)
    without_bob = await client.post(CRASHES, json=report(STACK_B, message="bob typed"), headers=bob.headers)
    never_carol = await client.post(CRASHES, json=report(OTHER, exception_type="IllegalStateException", message="c"))

    assert without_bob.status_code == 202, without_bob.text
    assert without_bob.json() == {"crash_id": with_alice.json()["crash_id"], "occurrences": 2}
    assert never_carol.status_code == 401
    links = await rows(runtime, "SELECT user_id, last_message FROM analytics.crash_report_users")
    assert [(r["user_id"], r["last_message"]) for r in links] == [(UUID(alice.user_id), "alice typed")]
    [crash] = await rows(runtime, "SELECT * FROM analytics.crash_reports")
    assert crash["occurrences"] == 2 and "bob typed" not in str(dict(crash))


async def test_bad_reports_are_refused(client, alice):
    for bad in (
        {"platform": "android", "exception_type": "X"},
        report(STACK_A, exception_type=""),
        report("x" * 50_001),
        report(STACK_A, extra=1),
    ):
        response = await client.post(CRASHES, json=bad, headers=alice.headers)
        assert response.status_code == 422, (bad, response.text)
    assert (await client.post(CRASHES, json=report(STACK_A))).status_code == 401
