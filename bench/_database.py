"""What every benchmark on its own embedded PostgreSQL starts with: the server in a data
folder, Rapport's roles and database provisioned, migrated to head, and a superuser
connection to load the data with (the only time the superuser is used)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
from rich.console import Console

if TYPE_CHECKING:
    from rapport.kernel.provisioning import DatabaseUrls

err = Console(stderr=True)


@dataclass(frozen=True)
class BenchDatabase:
    urls: DatabaseUrls
    admin: asyncpg.Connection


async def open_bench_database(data_dir: Path, name: str = "rapport_bench") -> BenchDatabase:
    """Start the embedded server in `data_dir`, provision and migrate `name` (provisioning
    installs pgvector, which the embedded server has); the caller closes `admin`."""
    from rapport.config import Settings
    from rapport.kernel import migrate, provisioning

    settings = Settings(_env_file=None, owner_password=None, app_password=None, database_name=name)
    with err.status("Starting the embedded PostgreSQL…"):
        admin_url = provisioning.start_embedded_server(data_dir)
    urls = provisioning.urls_for(admin_url, database=name, settings=settings)
    await provisioning.provision(urls, settings)
    with err.status("Migrating…"):
        await migrate.upgrade(urls.owner)
    admin = await asyncpg.connect(provisioning.asyncpg_dsn(urls.admin.set(database=name)), command_timeout=None)
    return BenchDatabase(urls=urls, admin=admin)
