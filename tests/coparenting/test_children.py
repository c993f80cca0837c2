"""The details kept about a child or a co-parent among one's contacts
(GET/PUT/DELETE /v1/coparenting/contacts/{id}/child-details and .../coparent-details):
their owner's alone, every read and write on record."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

CHILD = {
    "birth_date": "2016-05-02",
    "school": "Jean Moulin primary",
    "allergies": "Peanuts",
    "medications": "Inhaler before sport",
    "activities": [{"name": "Swimming", "schedule": "Wednesdays 17:00"}],
    "appointments": [{"title": "Dentist", "starts_at": "2026-12-03T09:30:00+01:00", "location": "Lyon"}],
}
COPARENT = {
    "relationship_start": "2010-06-01",
    "separation_date": "2021-02-14",
    "custody_arrangement": "joint",
    "custody_schedule": "Alternate weeks, handover Sunday 18:00",
    "legal_notes": "Mediation agreement signed March 2021",
}


async def add_contact(client: httpx.AsyncClient, owner: Persona, relationship: str | None, name: str = "Emma") -> str:
    made = await client.post(
        "/v1/contacts", headers=owner.headers, json={"first_name": name, "relationship": relationship}
    )
    assert made.status_code == 201, made.text
    contact_id: str = made.json()["id"]
    return contact_id


def child_url(contact_id: str) -> str:
    return f"/v1/coparenting/contacts/{contact_id}/child-details"


def coparent_url(contact_id: str) -> str:
    return f"/v1/coparenting/contacts/{contact_id}/coparent-details"


async def access_rows(runtime: Any, persona: Persona, table: str) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text(
                "SELECT accessed_by, action, fields FROM audit.sensitive_data_access"
                " WHERE user_id = :id AND table_name = :table ORDER BY id"
            ),
            {"id": UUID(persona.user_id), "table": table},
        )
        return list(rows)


async def test_a_childs_details_are_empty_until_saved(client, alice):
    emma = await add_contact(client, alice, "My Child")

    read = await client.get(child_url(emma), headers=alice.headers)

    assert read.status_code == 200, read.text
    assert read.json()["updated_at"] is None
    assert read.json()["activities"] == [] and read.json()["allergies"] is None


async def test_a_childs_details_are_saved_and_read_back(client, alice):
    emma = await add_contact(client, alice, "My Child")

    saved = await client.put(child_url(emma), headers=alice.headers, json=CHILD)
    read = await client.get(child_url(emma), headers=alice.headers)

    assert saved.status_code == 200, saved.text
    body = read.json()
    assert body["contact_id"] == emma and body["updated_at"] is not None
    assert {key: body[key] for key in ("birth_date", "school", "allergies", "medications")} == {
        key: CHILD[key] for key in ("birth_date", "school", "allergies", "medications")
    }
    assert body["activities"] == [{"name": "Swimming", "schedule": "Wednesdays 17:00", "location": None}]
    assert body["appointments"][0]["title"] == "Dentist"


async def test_put_replaces_the_details_whole(client, alice):
    emma = await add_contact(client, alice, "My Child")
    await client.put(child_url(emma), headers=alice.headers, json=CHILD)

    replaced = await client.put(child_url(emma), headers=alice.headers, json={"school": "Collège Ampère"})

    assert replaced.json()["school"] == "Collège Ampère"
    assert replaced.json()["allergies"] is None and replaced.json()["activities"] == []


async def test_every_read_and_write_of_a_childs_details_is_recorded(client, runtime, alice):
    emma = await add_contact(client, alice, "my-child")
    await client.put(child_url(emma), headers=alice.headers, json={"allergies": "Peanuts"})
    await client.get(child_url(emma), headers=alice.headers)
    await client.delete(child_url(emma), headers=alice.headers)

    rows = await access_rows(runtime, alice, "coparenting.child_details")

    assert [(row.action, row.accessed_by) for row in rows] == [
        ("write", UUID(alice.user_id)),
        ("read", UUID(alice.user_id)),
        ("delete", UUID(alice.user_id)),
    ]
    assert "allergies" in rows[0].fields and rows[1].fields == ["allergies"]


async def test_details_follow_the_contacts_relationship(client, alice):
    friend = await add_contact(client, alice, "Friend", name="Sam")
    nobody = await add_contact(client, alice, None, name="Lou")
    emma = await add_contact(client, alice, "Daughter")

    assert problem_type(await client.get(child_url(friend), headers=alice.headers)).endswith("contact-not-a-child")
    assert problem_type(await client.put(child_url(nobody), headers=alice.headers, json={})).endswith(
        "contact-not-a-child"
    )
    assert problem_type(await client.get(coparent_url(emma), headers=alice.headers)).endswith("contact-not-a-coparent")


async def test_a_coparents_details_are_saved_read_and_recorded(client, runtime, alice):
    sam = await add_contact(client, alice, "My Co-Parent", name="Sam")

    saved = await client.put(coparent_url(sam), headers=alice.headers, json=COPARENT)
    read = await client.get(coparent_url(sam), headers=alice.headers)

    assert saved.status_code == 200, saved.text
    assert {key: read.json()[key] for key in COPARENT} == COPARENT
    rows = await access_rows(runtime, alice, "coparenting.coparent_details")
    assert [row.action for row in rows] == ["write", "read"]


async def test_separation_before_the_relationship_began_is_refused(client, alice):
    sam = await add_contact(client, alice, "partner", name="Sam")

    refused = await client.put(
        coparent_url(sam),
        headers=alice.headers,
        json={"relationship_start": "2015-01-01", "separation_date": "2014-01-01"},
    )

    assert refused.status_code == 422
    assert problem_type(refused).endswith("validation-error")


@pytest.mark.parametrize(
    "body",
    [
        {"custody_arrangement": "weekends"},
        {"separation_date": "2999-01-01"},
        {"legal_notes": "x" * 2001},
    ],
)
async def test_bad_coparent_details_are_refused(client, alice, body):
    sam = await add_contact(client, alice, "My Co-Parent", name="Sam")

    assert (await client.put(coparent_url(sam), headers=alice.headers, json=body)).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"birth_date": "1800-01-01"},
        {"activities": [{"schedule": "Mondays"}]},
        {"appointments": [{"title": "Dentist", "starts_at": "soon"}]},
        {"school": "x" * 201},
        {"unknown": 1},
    ],
)
async def test_bad_child_details_are_refused(client, alice, body):
    emma = await add_contact(client, alice, "My Child")

    assert (await client.put(child_url(emma), headers=alice.headers, json=body)).status_code == 422


async def test_another_persons_contact_has_no_details_to_them(client, alice, bob):
    emma = await add_contact(client, alice, "My Child")
    await client.put(child_url(emma), headers=alice.headers, json=CHILD)

    for response in (
        await client.get(child_url(emma), headers=bob.headers),
        await client.put(child_url(emma), headers=bob.headers, json=CHILD),
        await client.delete(child_url(emma), headers=bob.headers),
    ):
        assert response.status_code == 404
        assert problem_type(response).endswith("contact-not-found")
    assert (await client.get(child_url(emma), headers=alice.headers)).json()["school"] == CHILD["school"]


async def test_removing_the_contact_removes_its_details(client, runtime, alice):
    emma = await add_contact(client, alice, "My Child")
    await client.put(child_url(emma), headers=alice.headers, json=CHILD)

    assert (await client.delete(f"/v1/contacts/{emma}", headers=alice.headers)).status_code == 204

    async with system_transaction(runtime.system_engine) as db:
        left = await db.execute(
            text("SELECT count(*) FROM coparenting.child_details WHERE contact_id = :id"), {"id": UUID(emma)}
        )
        assert left.scalar_one() == 0
