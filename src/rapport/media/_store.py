"""What the media domain holds for a process's lifetime: the storage backend (with its
connections), the staging folder and the upload limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rapport.config import Settings
from rapport.media._limits import Limits
from rapport.media._storage import Storage, staging_dir, storage_from_settings


@dataclass
class MediaStore:
    storage: Storage
    staging: Path
    limits: Limits

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaStore:
        """Built when the app starts: settings that do not make a storage stop the start."""
        return cls(
            storage=storage_from_settings(settings),
            staging=staging_dir(settings),
            limits=Limits.from_settings(settings),
        )

    async def close(self) -> None:
        await self.storage.close()
