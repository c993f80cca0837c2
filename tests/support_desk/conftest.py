"""The support desk's people, for every test of the desk: see tests/support_desk/support.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from rapport.kernel.runtime import Runtime
from tests.support import Persona
from tests.support_desk.support import Desk, grant


@pytest.fixture
async def desk(make_persona: Callable[[str], Awaitable[Persona]], runtime: Runtime, alice: Persona) -> Desk:
    return Desk(
        alice=alice,
        tess=await grant(runtime, await make_persona("tess"), "support-t1"),
        theo=await grant(runtime, await make_persona("theo"), "support-t2"),
        tara=await grant(runtime, await make_persona("tara"), "support-t3"),
        max=await grant(runtime, await make_persona("max"), "support-manager"),
        sam=await grant(runtime, await make_persona("sam"), "supervisor"),
        mallory=await make_persona("mallory"),
    )
