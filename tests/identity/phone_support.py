"""What the phone tests share: a stand-in for Twilio's Messages API (tests/notifications'
`SmsService`, a real HTTP server checking basic auth and the form) that the app's SMS
provider is pointed at, and helpers that read the codes it received.

A module uses them with

    pytestmark = pytest.mark.module_database
    from tests.identity.phone_support import *  # noqa: F403  (the fixtures)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from rapport.config import Settings
from tests.notifications.fakes import SmsService, provider_settings
from tests.support import PASSWORD, Persona, make_settings

# Mobile numbers of France (the +33 6 range), Germany and the United States, one per persona.
ALICE_PHONE = "+33612345601"
BOB_PHONE = "+33612345602"
CAROL_PHONE = "+4915112345603"
MALLORY_PHONE = "+33612345604"
ZOE_PHONE = "+33612345605"
NOBODY_PHONE = "+33612345699"
US_PHONE = "+12025550123"

REGISTER = "/v1/auth/register/phone"
VERIFY = "/v1/auth/verify-phone"
RESEND = "/v1/auth/verify-phone/resend"
LOGIN = "/v1/auth/login/phone"
SMS_LOGIN = "/v1/auth/login/sms"
SMS_LOGIN_VERIFY = "/v1/auth/login/sms/verify"
SECOND_FACTOR = "/v1/auth/login/second-factor/sms"
SECOND_FACTOR_VERIFY = "/v1/auth/login/second-factor/sms/verify"
FORGOT = "/v1/auth/password/forgot/phone"
RESET = "/v1/auth/password/reset/phone"
PHONE = "/v1/auth/phone"
PHONE_VERIFY = "/v1/auth/phone/verify"
PHONE_REMOVE = "/v1/auth/phone/remove"
SMS_FALLBACK = "/v1/auth/totp/sms-fallback"

_CODE = re.compile(r"\b(\d{6})\b")


def sms_settings(smtp: Controller, sms: SmsService, **overrides: Any) -> Settings:
    return make_settings(smtp_host="127.0.0.1", smtp_port=smtp.port, **provider_settings(sms=sms), **overrides)


@pytest.fixture(scope="module")
async def sms() -> AsyncIterator[SmsService]:
    async with SmsService() as service:
        yield service


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, object], sms: SmsService) -> Settings:
    controller, _ = smtp_server
    return sms_settings(controller, sms)


@pytest.fixture
def settings(module_settings: Settings) -> Settings:
    return module_settings


@pytest.fixture(autouse=True)
def empty_sms_inbox(app: FastAPI, sms: SmsService) -> FastAPI:
    """The running app, and the stand-in's inbox empty."""
    sms.received.clear()
    return app


class Phones:
    """What reached the stand-in, once the app's jobs have run."""

    def __init__(self, sms: SmsService, jobs_done: Callable[[], Awaitable[None]]) -> None:
        self._sms = sms
        self._jobs_done = jobs_done

    async def to(self, phone: str) -> list[str]:
        """The bodies of the SMS sent to `phone`, oldest first."""
        await self._jobs_done()
        return [message.body for message in self._sms.received if message.to == phone]

    async def code(self, phone: str) -> str:
        """The code in the newest SMS to `phone` that carries one."""
        for _ in range(50):
            codes = [m for body in await self.to(phone) if (m := _CODE.search(body))]
            if codes:
                return codes[-1].group(1)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no code reached {phone}: {await self.to(phone)}")

    async def count(self) -> int:
        await self._jobs_done()
        return len(self._sms.received)


@pytest.fixture
def phones(sms: SmsService, jobs_done: Callable[[], Awaitable[None]]) -> Phones:
    return Phones(sms, jobs_done)


async def register(client: httpx.AsyncClient, phone: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(REGISTER, json={"phone": phone, "password": password})


async def registered(client: httpx.AsyncClient, phones: Phones, phone: str, name: str = "zoe") -> Persona:
    """A person registered with `phone` alone, verified with the code and so signed in."""
    assert (await register(client, phone)).status_code == 202
    verified = await client.post(VERIFY, json={"phone": phone, "code": await phones.code(phone)})
    assert verified.status_code == 200, verified.text
    tokens = verified.json()
    return Persona(
        name=name,
        email="",
        password=PASSWORD,
        user_id=tokens["user_id"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        session_id=tokens["session_id"],
    )


async def add_phone(client: httpx.AsyncClient, phones: Phones, persona: Persona, phone: str) -> None:
    """`persona` adds and verifies `phone`."""
    asked = await client.post(PHONE, headers=persona.headers, json={"phone": phone})
    assert asked.status_code == 202, asked.text
    verified = await client.post(
        PHONE_VERIFY, headers=persona.headers, json={"phone": phone, "code": await phones.code(phone)}
    )
    assert verified.status_code == 200, verified.text
