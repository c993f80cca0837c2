"""The fakes of tests/notifications/fakes.py, one running server each per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from rapport.notifications.vapid import VapidKeyPair, new_key_pair
from tests.notifications.fakes import ApnsService, FcmService, PushService, SmsService


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        yield client


@pytest.fixture
def vapid_keys() -> VapidKeyPair:
    return new_key_pair()


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    async with PushService() as service:
        yield service


@pytest.fixture
async def fcm() -> AsyncIterator[FcmService]:
    async with FcmService() as service:
        yield service


@pytest.fixture
async def apns() -> AsyncIterator[ApnsService]:
    async with ApnsService() as service:
        yield service


@pytest.fixture
async def sms() -> AsyncIterator[SmsService]:
    async with SmsService() as service:
        yield service
