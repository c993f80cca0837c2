from tests.conftest import problem_type


async def test_core_flow(client, alice, bob, mallory):
    r = await client.get("/v1/profile", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "alice"
    r = await client.patch("/v1/profile", headers=alice.headers, json={"display_name": "Alice A", "bio": "hi", "timezone": "Europe/Paris", "links": [{"title": "site", "url": "https://example.com"}]})
    assert r.status_code == 200, r.text
    r = await client.patch("/v1/profile", headers=bob.headers, json={"username": "ALICE"})
    assert problem_type(r) == "username-taken", r.text
    r = await client.get("/v1/profile/activity", headers=alice.headers)
    assert r.status_code == 200 and r.json()[0]["action"] == "profile_updated", r.text
    r = await client.patch("/v1/settings", headers=alice.headers, json={"notification_defaults": {"messages": False}, "theme": "dark"})
    assert r.status_code == 200, r.text
    assert r.json()["notification_defaults"]["mentions"] is True and r.json()["notification_defaults"]["messages"] is False
    r = await client.post("/v1/contact-requests", headers=alice.headers, json={"user_id": bob.user_id})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/contact-requests", headers=bob.headers, json={"user_id": alice.user_id})
    assert r.status_code == 201 and r.json()["status"] == "accepted", r.text
    r = await client.get("/v1/contacts", headers=alice.headers)
    assert [c["contact_user_id"] for c in r.json()["items"]] == [bob.user_id], r.text
    r = await client.post("/v1/contacts", headers=alice.headers, json={"first_name": "Kid", "relationship": "My child", "email": "carol@example.com"})
    assert r.status_code == 201, r.text
    g = await client.post("/v1/contact-groups", headers=alice.headers, json={"name": "Family"})
    assert g.status_code == 201, g.text
    r = await client.put(f"/v1/contact-groups/{g.json()['id']}/members/{r.json()['id']}", headers=alice.headers)
    assert r.status_code == 204, r.text
    r = await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers, json={"reason": "spam"})
    assert r.status_code == 200, r.text
    r = await client.get("/v1/contacts", headers=bob.headers)
    assert r.json()["items"] == [], r.text
    r = await client.post("/v1/contact-requests", headers=bob.headers, json={"user_id": alice.user_id})
    assert problem_type(r) == "contact-request-not-allowed"
    r = await client.get(f"/v1/users/{alice.user_id}/profile", headers=mallory.headers)
    assert r.status_code == 200
    await client.patch("/v1/profile", headers=alice.headers, json={"profile_visibility": "private"})
    r = await client.get(f"/v1/users/{alice.user_id}/profile", headers=mallory.headers)
    assert problem_type(r) == "profile-not-found"
    r = await client.delete(f"/v1/blocks/{bob.user_id}", headers=alice.headers)
    assert r.status_code == 204
