"""Brute-force defence on POST /v1/auth/login (docs/decisions/0003): a lock per e-mail
typed and client after repeated failures, a cap on failures per client address, and a
budget per e-mail typed past which only clients known to the account get through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from rapport.identity import _throttle as throttle
from rapport.identity.models import login_throttle, users
from rapport.kernel.db import system_transaction
from tests.support import create_verified_user, login, make_settings, problem_type

pytestmark = pytest.mark.module_database

WRONG = "not the right password"


async def fail(client, email: str, times: int) -> None:
    for _ in range(times):
        response = await login(client, email, WRONG)
        assert response.status_code == 401, response.text


async def lift_locks(runtime) -> None:
    """Let every lock run out, as if its time had passed."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(login_throttle).values(locked_until=func.now() - timedelta(seconds=1)))


@asynccontextmanager
async def client_from(app, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling from another address."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
        yield http


@pytest.fixture
async def mallory_client(app) -> AsyncIterator[httpx.AsyncClient]:
    """Mallory, calling from her own address."""
    async with client_from(app, "198.51.100.66") as http:
        yield http


@pytest.fixture
async def unsigned_carol(runtime) -> str:
    email = "carol@example.com"
    await create_verified_user(runtime, email)
    return email


# The lock per e-mail


async def test_right_password_is_refused_once_locked(client, unsigned_carol, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    response = await login(client, unsigned_carol)
    assert (response.status_code, problem_type(response)) == (429, "login-throttled")


async def test_lock_says_when_to_retry(client, unsigned_carol, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    response = await login(client, unsigned_carol)
    assert 0 < int(response.headers["retry-after"]) <= settings.login_lock_base_seconds


async def test_fewer_failures_than_the_threshold_do_not_lock(client, unsigned_carol, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold - 1)
    response = await login(client, unsigned_carol)
    assert response.status_code == 200


async def test_success_starts_the_count_again(client, unsigned_carol, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold - 1)
    await login(client, unsigned_carol)
    await fail(client, unsigned_carol, settings.login_lock_threshold - 1)
    response = await login(client, unsigned_carol)
    assert response.status_code == 200


async def test_unknown_email_locks_like_a_known_one(client, unsigned_carol, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    await fail(client, "nobody@example.com", settings.login_lock_threshold)
    known = await login(client, unsigned_carol, WRONG)
    unknown = await login(client, "nobody@example.com", WRONG)
    assert _shape(unknown) == _shape(known)


def _shape(response) -> tuple:
    return (response.status_code, problem_type(response), sorted(response.json()), "retry-after" in response.headers)


async def test_unknown_email_is_locked_after_the_threshold(client, settings):
    await fail(client, "nobody@example.com", settings.login_lock_threshold)
    response = await login(client, "nobody@example.com", WRONG)
    assert (response.status_code, problem_type(response)) == (429, "login-throttled")


async def test_lock_is_per_address(client, unsigned_carol, alice, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    response = await login(client, alice.email, alice.password)
    assert response.status_code == 200


async def test_lock_matches_the_address_in_any_case(client, unsigned_carol, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    response = await login(client, unsigned_carol.upper())
    assert problem_type(response) == "login-throttled"


async def test_lock_lifts_when_it_runs_out(client, unsigned_carol, settings, runtime):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    await lift_locks(runtime)
    response = await login(client, unsigned_carol)
    assert response.status_code == 200


async def test_each_failure_past_the_threshold_doubles_the_lock(client, unsigned_carol, settings, runtime):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    await lift_locks(runtime)
    await fail(client, unsigned_carol, 1)
    response = await login(client, unsigned_carol)
    assert int(response.headers["retry-after"]) > settings.login_lock_base_seconds


async def test_attempts_while_locked_do_not_lengthen_the_lock(client, unsigned_carol, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    for _ in range(3):
        await login(client, unsigned_carol, WRONG)
    response = await login(client, unsigned_carol)
    assert int(response.headers["retry-after"]) <= settings.login_lock_base_seconds


async def test_lock_is_a_security_event(client, alice, settings):
    await fail(client, alice.email, settings.login_lock_threshold)
    events = (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]
    assert [(e["event_type"], e["severity"]) for e in events] == [("sign_in_locked", "warning")]


async def test_mallorys_failures_do_not_lock_alice_out(client, mallory_client, alice, settings):
    """The lock holds the client that failed, not the account: item 5 of the hardening."""
    await fail(mallory_client, alice.email, settings.login_lock_threshold)
    assert problem_type(await login(mallory_client, alice.email)) == "login-throttled"
    response = await login(client, alice.email, alice.password)
    assert response.status_code == 200


async def test_mallorys_failures_never_lock_the_account_row(client, mallory_client, alice, runtime, settings):
    await fail(mallory_client, alice.email, settings.login_lock_threshold)
    async with system_transaction(runtime.system_engine) as db:
        row = (
            await db.execute(
                select(users.c.locked_until, users.c.failed_login_attempts).where(users.c.email == alice.email)
            )
        ).one()
    assert (row.locked_until, row.failed_login_attempts) == (None, settings.login_lock_threshold)


async def test_lock_does_not_end_live_sessions(client, alice, settings):
    await fail(client, alice.email, settings.login_lock_threshold)
    assert (await client.get("/v1/auth/me", headers=alice.headers)).status_code == 200


async def test_password_reset_lifts_the_lock(client, mailbox, unsigned_carol, settings):
    await fail(client, unsigned_carol, settings.login_lock_threshold)
    await client.post("/v1/auth/password/forgot", json={"email": unsigned_carol})
    await client.post(
        "/v1/auth/password/reset",
        json={
            "email": unsigned_carol,
            "code": await mailbox.code_for(unsigned_carol),
            "new_password": "a brand new long password",
        },
    )
    response = await login(client, unsigned_carol, "a brand new long password")
    assert response.status_code == 200


def test_lock_starts_at_the_threshold_and_doubles_up_to_the_maximum():
    settings = make_settings(login_lock_threshold=5, login_lock_base_seconds=30, login_lock_max_seconds=3600)
    assert [throttle.lock_seconds(n, settings) for n in (4, 5, 6, 7, 100)] == [0, 30, 60, 120, 3600]


# The cap per client address


class TestPerClientAddress:
    """Failures on many addresses from one client: each e-mail stays under its own lock
    threshold, so only the per-address cap stops them."""

    MAX = 3

    @pytest.fixture
    def settings(self, smtp_server):
        controller, _ = smtp_server
        return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, login_ip_max_failures=self.MAX)

    @pytest.fixture
    def app(self, fresh_app):
        return fresh_app

    @pytest.fixture
    async def other_client(self, app):
        async with client_from(app, "198.51.100.9") as http:
            yield http

    async def spray(self, client, count: int) -> None:
        for n in range(count):
            await fail(client, f"target{n}@example.com", 1)

    async def test_right_password_is_refused_once_the_address_is_capped(self, client, unsigned_carol):
        await self.spray(client, self.MAX)
        response = await login(client, unsigned_carol)
        assert (response.status_code, problem_type(response)) == (429, "login-throttled")

    async def test_cap_says_when_to_retry(self, client, unsigned_carol, settings):
        await self.spray(client, self.MAX)
        response = await login(client, unsigned_carol)
        assert 0 < int(response.headers["retry-after"]) <= settings.login_ip_window_seconds

    async def test_fewer_failures_than_the_cap_are_let_through(self, client, unsigned_carol):
        await self.spray(client, self.MAX - 1)
        response = await login(client, unsigned_carol)
        assert response.status_code == 200

    async def test_another_address_is_not_capped(self, client, other_client, unsigned_carol):
        await self.spray(client, self.MAX)
        response = await login(other_client, unsigned_carol)
        assert response.status_code == 200

    async def test_success_does_not_reset_the_cap(self, client, unsigned_carol):
        await self.spray(client, self.MAX - 1)
        await login(client, unsigned_carol)
        await fail(client, "one-more@example.com", 1)
        response = await login(client, unsigned_carol)
        assert problem_type(response) == "login-throttled"


# The budget per address: many clients together only slow an account


class TestBudgetPerAddress:
    """Failures on one address from many clients, each under its own lock: past the
    address's budget, only clients that signed in to the account before get through."""

    BUDGET = 6

    @pytest.fixture
    def settings(self, smtp_server):
        controller, _ = smtp_server
        return make_settings(
            smtp_host="127.0.0.1", smtp_port=controller.port, login_address_failures_per_hour=self.BUDGET
        )

    @pytest.fixture
    def app(self, fresh_app):
        return fresh_app

    async def spend(self, app, email: str) -> None:
        """A botnet: two failures from each of several addresses, none of them locked."""
        for n in range(self.BUDGET // 2):
            async with client_from(app, f"198.51.100.{n + 10}") as bot:
                await fail(bot, email, 2)

    async def test_a_stranger_is_slowed_once_the_budget_is_spent(self, app, alice):
        await self.spend(app, alice.email)
        async with client_from(app, "192.0.2.200") as stranger:
            response = await login(stranger, alice.email, alice.password)
        assert (response.status_code, problem_type(response)) == (429, "login-throttled")
        assert 0 < int(response.headers["retry-after"]) <= 3600 // self.BUDGET

    @pytest.mark.personas_sign_in
    async def test_a_known_client_still_signs_in(self, app, client, alice):
        """alice signed in from the test client's address when her persona was made."""
        await self.spend(app, alice.email)
        response = await login(client, alice.email, alice.password)
        assert response.status_code == 200

    async def test_an_unknown_address_is_slowed_like_a_known_one(self, app, alice):
        await self.spend(app, alice.email)
        await self.spend(app, "nobody@example.com")
        async with client_from(app, "192.0.2.200") as stranger:
            known = await login(stranger, alice.email, WRONG)
            unknown = await login(stranger, "nobody@example.com", WRONG)
        assert _shape(unknown) == _shape(known)

    async def test_a_reset_password_restores_the_budget(self, app, client, mailbox, unsigned_carol):
        await self.spend(app, unsigned_carol)
        await client.post("/v1/auth/password/forgot", json={"email": unsigned_carol})
        await client.post(
            "/v1/auth/password/reset",
            json={
                "email": unsigned_carol,
                "code": await mailbox.code_for(unsigned_carol),
                "new_password": "a brand new long password",
            },
        )
        async with client_from(app, "192.0.2.200") as elsewhere:
            response = await login(elsewhere, unsigned_carol, "a brand new long password")
        assert response.status_code == 200
