"""The media tests' apps keep files' bytes in a folder of their own: one per test, or one
per module for a module marked `module_database` (its app lives as long as the module)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.config import Settings
from rapport.kernel.db import create_engine
from rapport.kernel.provisioning import DatabaseUrls
from tests.support import Mailbox, make_settings


@pytest.fixture(scope="module")
def module_media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, Mailbox], module_media_dir: Path) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, media_dir=module_media_dir)


@pytest.fixture
def settings(smtp_server: tuple[Controller, Mailbox], tmp_path: Path) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, media_dir=tmp_path / "media")


@pytest.fixture
async def owner_engine(database: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    """Connected as rapport_owner, as the definer functions run: for writing rows only
    they write (a message's attachments, written by the send)."""
    engine = create_engine(database.owner, pool_size=1)
    yield engine
    await engine.dispose()
