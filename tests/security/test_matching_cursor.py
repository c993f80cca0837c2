"""matching.cursor, the place in the outbox of matching's reader of community tag changes,
attacked through SQL as `rapport_app`: mallory, alice (whose tag change the reader has
read) and a transaction naming no one neither read it nor move it."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.runtime import Runtime
from rapport.modules.matching import service
from tests.security.messaging_sql import DENIED, attempt
from tests.support import Persona

pytestmark = pytest.mark.module_database


async def test_the_readers_cursor_is_system_works_alone(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: AsyncEngine, alice: Persona, mallory: Persona
) -> None:
    put = await client.put("/v1/me/tags", headers=alice.headers, json={"tags": ["hiking"]})
    assert put.status_code == 200, put.text
    await service.refresh_heard_features(runtime.system_engine)

    for who in (mallory, alice, None):
        assert await attempt(app_engine, who, "SELECT count(*) FROM matching.cursor") == DENIED
        assert await attempt(app_engine, who, "UPDATE matching.cursor SET position = 0") == DENIED
        assert await attempt(app_engine, who, "DELETE FROM matching.cursor") == DENIED
    forged = "INSERT INTO matching.cursor (name, position) VALUES ('tag-changes', 0)"
    assert await attempt(app_engine, mallory, forged) == DENIED
