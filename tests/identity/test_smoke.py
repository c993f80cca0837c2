from tests.conftest import problem_type


async def test_register_verify_login_me(client, mailbox):
    response = await client.post("/v1/auth/register", json={"email": " Zoe@Example.com ", "password": "a long enough password"})
    assert response.status_code == 202, response.text
    code = mailbox.last_code("zoe@example.com")
    response = await client.post("/v1/auth/verify-email", json={"email": "zoe@example.com", "code": code})
    assert response.status_code == 200, response.text
    tokens = response.json()
    me = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "zoe@example.com"
    assert me.json()["status"] == "active"


async def test_alice_lists_sessions(client, alice):
    response = await client.get("/v1/auth/sessions", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert [s["current"] for s in response.json()["items"]] == [True]


async def test_bad_json(client):
    response = await client.post("/v1/auth/login", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert problem_type(response) == "malformed-json"
