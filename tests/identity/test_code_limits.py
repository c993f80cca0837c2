"""The rate limits of e-mailed codes and of mail (docs/decisions/0008): a budget of wrong
guesses per address that no number of fresh codes renews, a budget per client, a cap on
mail per address answered as if sent, and limits on the requests that send mail."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from rapport.config import Settings
from rapport.identity import _limits as limits
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.conftest import Mailbox
from tests.support import Persona, make_settings, problem_type, wrong

pytestmark = pytest.mark.module_database

FORGOT = "/v1/auth/password/forgot"
RESET = "/v1/auth/password/reset"
REGISTER = "/v1/auth/register"
VERIFY = "/v1/auth/verify-email"
RESEND = "/v1/auth/verify-email/resend"
NEW_PASSWORD = "a brand new long password"
ZOE = "zoe@example.com"


async def reset(client: httpx.AsyncClient, email: str, code: str) -> httpx.Response:
    return await client.post(RESET, json={"email": email, "code": code, "new_password": NEW_PASSWORD})


async def guess_wrong(client: httpx.AsyncClient, path: str, email: str, code: str, times: int) -> None:
    for _ in range(times):
        body = {"email": email, "code": wrong(code)} | ({"new_password": NEW_PASSWORD} if path == RESET else {})
        response = await client.post(path, json=body)
        assert (response.status_code, problem_type(response)) == (400, "invalid-code"), response.text


# The bound on guessing


def test_the_default_budget_keeps_a_code_out_of_reach_for_centuries() -> None:
    """The arithmetic of docs/decisions/0008, on the defaults."""
    rule = limits.Rules.from_settings(Settings(_env_file=None)).code_guesses_per_address  # type: ignore[call-arg]
    per_year = rule.limit * (1 + 365 * 86_400 / rule.window_seconds)
    assert per_year / 1_000_000 < 0.004  # the chance of guessing any code within a year
    assert 1_000_000 / (rule.limit * 86_400 / rule.window_seconds) / 365 > 250  # expected years to a hit


async def test_the_budget_stops_guessing_even_with_fresh_codes(
    client: httpx.AsyncClient, mailbox: Mailbox, alice: Persona, settings: Settings
) -> None:
    budget = settings.code_guesses_per_address_per_day
    mails = 0
    while budget > 0:
        await client.post(FORGOT, json={"email": alice.email})
        mails += 1
        guesses = min(budget, settings.otp_max_attempts)
        await guess_wrong(client, RESET, alice.email, await mailbox.code_for(alice.email, count=mails), guesses)
        budget -= guesses

    await client.post(FORGOT, json={"email": alice.email})
    fresh = await mailbox.code_for(alice.email, count=mails + 1)
    response = await reset(client, alice.email, fresh)

    assert (response.status_code, problem_type(response)) == (429, "too-many-attempts")
    assert int(response.headers["retry-after"]) > 0


async def test_the_budget_spans_every_purpose(client: httpx.AsyncClient, mailbox: Mailbox, settings: Settings) -> None:
    await client.post(REGISTER, json={"email": ZOE, "password": "zoe's long enough password"})
    half = settings.code_guesses_per_address_per_day // 2
    await guess_wrong(client, VERIFY, ZOE, await mailbox.code_for(ZOE), half)
    await client.post(FORGOT, json={"email": ZOE})
    await guess_wrong(
        client, RESET, ZOE, await mailbox.code_for(ZOE, count=2), settings.code_guesses_per_address_per_day - half
    )

    await client.post(RESEND, json={"email": ZOE})
    response = await client.post(VERIFY, json={"email": ZOE, "code": await mailbox.code_for(ZOE, count=3)})

    assert (response.status_code, problem_type(response)) == (429, "too-many-attempts")


async def test_an_unknown_address_has_the_same_budget(
    client: httpx.AsyncClient, alice: Persona, settings: Settings
) -> None:
    answers = {}
    for address in (alice.email, "nobody@example.com"):
        await guess_wrong(client, VERIFY, address, "123456", settings.code_guesses_per_address_per_day)
        answers[address] = await client.post(VERIFY, json={"email": address, "code": "123456"})
    shapes = {(r.status_code, problem_type(r), r.json()["detail"]) for r in answers.values()}
    assert shapes == {(429, "too-many-attempts", answers[alice.email].json()["detail"])}


async def test_a_right_code_costs_no_guess(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime, alice: Persona, settings: Settings
) -> None:
    for n in range(1, settings.code_guesses_per_address_per_day + 2):
        await client.post(FORGOT, json={"email": alice.email})
        response = await client.post(
            RESET,
            json={
                "email": alice.email,
                "code": await mailbox.code_for(alice.email, count=n),
                "new_password": f"{NEW_PASSWORD} {n}",
            },
        )
        assert response.status_code == 204, response.text
        if n % 4 == 0:
            # Past the mail cap: let the hour pass.
            await refill_mail(runtime, alice.email)


async def refill_mail(runtime: Runtime, email: str) -> None:
    """As if the hour had passed: the address's mail limits are full again."""
    rules = limits.rules(runtime)
    async with system_transaction(runtime.system_engine) as db:
        for rule in (rules.mails_per_address, rules.mail_requests_per_address):
            await limits.forget(db, rule=rule, subject=limits.address(runtime, email))


class TestPerClient:
    """Wrong codes for many addresses from one client: each address stays within its own
    budget, so only the client's budget stops them."""

    MAX = 3

    @pytest.fixture
    def settings(self, smtp_server: tuple[object, object]) -> Settings:
        controller, _ = smtp_server
        return make_settings(
            smtp_host="127.0.0.1",
            smtp_port=controller.port,  # type: ignore[attr-defined]
            code_guesses_per_ip_per_hour=self.MAX,
        )

    @pytest.fixture
    def app(self, fresh_app: FastAPI) -> FastAPI:
        return fresh_app

    @pytest.fixture
    async def other_client(self, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
            yield http

    async def test_a_client_that_sprays_addresses_is_stopped(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient
    ) -> None:
        for n in range(self.MAX):
            await guess_wrong(client, VERIFY, f"target{n}@example.com", "123456", 1)
        stopped = await client.post(VERIFY, json={"email": "another@example.com", "code": "123456"})
        elsewhere = await other_client.post(VERIFY, json={"email": "another@example.com", "code": "123456"})
        assert (stopped.status_code, problem_type(stopped)) == (429, "too-many-attempts")
        assert (elsewhere.status_code, problem_type(elsewhere)) == (400, "invalid-code")


# Mail


@pytest.mark.parametrize(
    ("path", "setup"),
    [
        pytest.param(FORGOT, "verified", id="forgot"),
        pytest.param(RESEND, "pending", id="resend"),
        pytest.param(REGISTER, "verified", id="register-taken"),
        pytest.param(FORGOT, "none", id="forgot-unknown"),
    ],
)
async def test_mail_to_one_address_is_capped_and_answered_as_if_sent(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    runtime: Runtime,
    settings: Settings,
    jobs_done: Callable[[], Awaitable[None]],
    path: str,
    setup: str,
) -> None:
    if setup == "verified":
        await service_user(runtime)
    elif setup == "pending":
        await client.post(REGISTER, json={"email": ZOE, "password": "zoe's long enough password"})
        await mailbox.wait_for(ZOE)
        await refill_mail(runtime, ZOE)
        mailbox.messages.clear()
    cap = settings.mails_per_address_per_hour
    body = {"email": ZOE} | ({"password": "zoe's long enough password"} if path == REGISTER else {})

    answers = [await client.post(path, json=body) for _ in range(cap + 3)]

    assert len({(a.status_code, a.text) for a in answers}) == 1
    assert answers[0].status_code == 202
    await mailbox.wait_for(ZOE, count=cap)
    await jobs_done()
    assert len(mailbox.to(ZOE)) == cap


async def test_past_the_cap_the_code_in_the_inbox_still_works(
    client: httpx.AsyncClient, mailbox: Mailbox, alice: Persona, settings: Settings
) -> None:
    for _ in range(settings.mails_per_address_per_hour + 2):
        await client.post(FORGOT, json={"email": alice.email})
    code = await mailbox.code_for(alice.email, count=settings.mails_per_address_per_hour)
    assert (await reset(client, alice.email, code)).status_code == 204


async def test_requests_past_the_address_limit_are_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    answers = {}
    for address in (ZOE, "nobody@example.com"):
        for _ in range(settings.mail_requests_per_address_per_hour):
            assert (await client.post(FORGOT, json={"email": address})).status_code == 202
        answers[address] = await client.post(FORGOT, json={"email": address})
    assert {(r.status_code, problem_type(r)) for r in answers.values()} == {(429, "too-many-attempts")}
    assert all(int(r.headers["retry-after"]) > 0 for r in answers.values())


async def test_requests_past_the_client_limit_are_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    """The limit per client IP, shared by every route that sends mail, each address new."""
    routes = [REGISTER, RESEND, FORGOT]
    refused = []
    for n in range(settings.mail_requests_per_ip_per_hour + 1):
        route = routes[n % len(routes)]
        body = {"email": f"someone{n}@example.com"}
        if route == REGISTER:
            body["password"] = "zoe's long enough password"
        answer = await client.post(route, json=body)
        if answer.status_code == 429:
            assert problem_type(answer) == "too-many-attempts"
            refused.append(n)
        else:
            assert answer.status_code == 202, answer.text
    assert refused == [settings.mail_requests_per_ip_per_hour]


async def service_user(runtime: Runtime) -> None:
    from tests.support import create_verified_user

    await create_verified_user(runtime, ZOE)
