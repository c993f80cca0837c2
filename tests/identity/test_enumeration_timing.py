"""What an answer's timing reveals: "forgot password" and "resend the code" take as long
for an address with an account as for one without (docs/decisions/0002).

Checked by statistics, not by eye: requests for an existing and an unknown address are
interleaved in random order (so a slower moment of a loaded machine falls on both
alike), and the best threshold on response time that tells one from the other must do
no better than chance, within a tolerance. The threshold classifier uses only the order
of the times, so a few long pauses cannot sway it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from rapport.config import Settings
from rapport.kernel.runtime import Runtime
from tests.support import create_verified_user, make_settings

PAIRS = 200
# Chance does about 0.5; the best of all thresholds over 2 x 200 samples reaches 0.58 by
# luck alone only once in a thousand runs (the Kolmogorov-Smirnov bound). Before the work
# was equalised, "forgot" for an account (a code written, a mail queued) scored about 0.8
# even on a machine loaded to four times its cores.
TOLERANCE = 0.65
# Connections, prepared statements and caches warm before anything is measured.
WARM_UP = 25


@pytest.fixture
def settings(smtp_server: tuple[object, object]) -> Settings:
    """Limits out of the way: this measures the work, not the limiter's refusals."""
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,  # type: ignore[attr-defined]
        mail_requests_per_address_per_hour=100_000,
        mail_requests_per_ip_per_hour=100_000,
        mails_per_address_per_hour=100_000,
    )


def best_threshold_accuracy(known: list[float], unknown: list[float]) -> float:
    """The accuracy of the best rule "slower than t means known" (or its reverse)."""
    samples = sorted([(t, 1) for t in known] + [(t, 0) for t in unknown])
    total, known_total = len(samples), len(known)
    best = 0.0
    known_below = 0
    for index, (_, label) in enumerate(samples, start=1):
        known_below += label
        unknown_below = index - known_below
        # Everything up to here called "unknown", the rest "known"; or the other way round.
        correct = unknown_below + (known_total - known_below)
        best = max(best, correct / total, (total - correct) / total)
    return best


async def timed_pairs(
    send: Callable[[str], Awaitable[httpx.Response]], known: str, unknown: str, *, pairs: int = PAIRS
) -> tuple[list[float], list[float]]:
    times: dict[str, list[float]] = {known: [], unknown: []}
    rng = random.Random(6)
    for _ in range(pairs):
        pair = [known, unknown]
        rng.shuffle(pair)
        for address in pair:
            started = time.perf_counter()
            response = await send(address)
            times[address].append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
    return times[known], times[unknown]


def test_the_classifier_tells_a_difference_from_chance() -> None:
    """The check has teeth: two samples of one distribution stay under the tolerance, a
    shift of twice the noise is found (the old forgot answered 2x slower for accounts)."""
    rng = random.Random(7)
    noise = [rng.gauss(0.010, 0.001) for _ in range(2 * PAIRS)]
    assert best_threshold_accuracy(noise[:PAIRS], noise[PAIRS:]) <= TOLERANCE
    assert best_threshold_accuracy([t + 0.002 for t in noise[:PAIRS]], noise[PAIRS:]) > 0.8


async def test_forgot_takes_as_long_for_any_address(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await create_verified_user(runtime, "alice@example.com")

    async def forgot(address: str) -> httpx.Response:
        return await client.post("/v1/auth/password/forgot", json={"email": address})

    await timed_pairs(forgot, "alice@example.com", "nobody@example.com", pairs=WARM_UP)
    known, unknown = await timed_pairs(forgot, "alice@example.com", "nobody@example.com")
    assert best_threshold_accuracy(known, unknown) <= TOLERANCE


async def test_resend_takes_as_long_for_any_address(client: httpx.AsyncClient) -> None:
    registered = await client.post(
        "/v1/auth/register", json={"email": "zoe@example.com", "password": "zoe's long enough password"}
    )
    assert registered.status_code == 202

    async def resend(address: str) -> httpx.Response:
        return await client.post("/v1/auth/verify-email/resend", json={"email": address})

    await timed_pairs(resend, "zoe@example.com", "nobody@example.com", pairs=WARM_UP)
    known, unknown = await timed_pairs(resend, "zoe@example.com", "nobody@example.com")
    assert best_threshold_accuracy(known, unknown) <= TOLERANCE
