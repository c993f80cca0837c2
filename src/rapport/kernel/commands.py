"""What the `rapport` commands that act on the database share: finding (or starting) the
server with its roles and database made, and doing system work in one transaction on an
engine of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.config import Settings
from rapport.kernel import pooling, provisioning
from rapport.kernel.db import create_system_engine, system_transaction
from rapport.kernel.provisioning import DatabaseUrls

T = TypeVar("T")


def prepare_database(settings: Settings, console: Console) -> DatabaseUrls:
    """The server (started if embedded), with its roles and database made if missing; the
    URLs name PostgreSQL itself, past any pooler (a command's work may span a session)."""
    with console.status("Preparing the database…"):
        urls = provisioning.resolve_database(settings)
        asyncio.run(provisioning.provision(urls, settings))
    return pooling.session_urls(urls, settings)


async def as_system(urls: DatabaseUrls, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """`work` as system work in one transaction, on an engine made for it and disposed of."""
    engine = create_system_engine(urls.worker, pool_size=1)
    try:
        async with system_transaction(engine) as db:
            return await work(db)
    finally:
        await engine.dispose()
