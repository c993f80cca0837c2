"""analytics.events is range-partitioned by month on created_at: a row lands in its month's
partition, and the partitions are kept ahead like messaging.messages'."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction

pytestmark = pytest.mark.module_database


async def test_an_event_lands_in_its_months_partition(runtime, alice):
    now = datetime.now(UTC)
    async with system_transaction(runtime.system_engine) as db:
        registered = (
            await db.execute(
                text("SELECT months_ahead FROM kernel.monthly_partitions WHERE parent = 'analytics.events'::regclass")
            )
        ).scalar_one()
        assert registered >= 1
        await db.execute(
            text(
                "INSERT INTO analytics.events (user_id, event_name, source) "
                "VALUES (CAST(:user_id AS uuid), 'app_open', 'client')"
            ),
            {"user_id": alice.user_id},
        )
        partition = (
            await db.execute(
                text("SELECT tableoid::regclass::text FROM analytics.events WHERE event_name = 'app_open'")
            )
        ).scalar_one()
    assert partition == f"analytics.events_p{now:%Y%m}"
