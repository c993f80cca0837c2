"""Running the Alembic history from code: the CLI, `serve` and the tests use this."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(owner_url: URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = owner_url
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config(URL.create("postgresql")))
    return script.get_current_head() or ""


# Alembic's env.py starts its own event loop, so async callers run these in a thread.
async def upgrade(owner_url: URL, revision: str = "head") -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(owner_url), revision)


async def downgrade(owner_url: URL, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(owner_url), revision)


async def current_revision(owner_url: URL) -> str | None:
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()
