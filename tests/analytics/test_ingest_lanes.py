"""The hot lane (decisions/0017) answers a plainly well-formed batch; a batch the model
refuses, or one sent with an extra query parameter, goes on to FastAPI, whose answer is the
same for a good batch. Which lane answered is read from `scope["route"]`, as
tests/messaging/test_hot_lane_more.py reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.analytics.ingest_support import EVENTS, consent, event
from tests.lanes import FASTAPI, HOT, lane_watching_client

pytestmark = pytest.mark.module_database


@pytest.fixture
def lanes() -> list[str]:
    return []


@pytest.fixture
async def client(app: FastAPI, lanes: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    async with lane_watching_client(app, lanes) as http:
        yield http


async def test_each_lane_answers_a_batch_alike(client, alice, lanes):
    await consent(client, alice)
    lanes.clear()
    hot = await client.post(EVENTS, json={"events": [event()]}, headers=alice.headers)
    declined = await client.post(EVENTS, params={"x": "1"}, json={"events": [event()]}, headers=alice.headers)
    assert (hot.status_code, hot.json()) == (declined.status_code, declined.json()) == (202, {"accepted": 1})
    bad = await client.post(EVENTS, json={"events": [event("Bad")]}, headers=alice.headers)
    assert bad.status_code == 422
    assert lanes == [HOT, FASTAPI, FASTAPI]
