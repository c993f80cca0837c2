"""What a data set will take on disk, said before loading starts.

The bytes per row (table, TOAST and indexes together) are what PostgreSQL 16 took for a
200,000-message data set of this generator (2026-11-30): 612 per message (405 of heap, about
200 of indexes; a mean of 78 characters of text), 30 of reactions and mentions per
message, 348 per participant, 487 per conversation, 307 per contact, about 3,000 per account
with its profile, settings and audit row. Loading also needs room for WAL (up to
`max_wal_size` between checkpoints) and for the sort of the largest index while it is
rebuilt (the full-text one, about 60 bytes a message): a quarter more than the data.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rapport.benchmark._plan import Shape

BYTES_PER_MESSAGE = 650  # with its share of reactions and mentions, rounded up
BYTES_PER_PARTICIPANT = 350
BYTES_PER_CONVERSATION = 500
BYTES_PER_USER = 3_000
BYTES_PER_CONTACT = 300
HEADROOM = 1.25


@dataclass(frozen=True)
class DiskNeed:
    data_bytes: int
    needed_bytes: int  # with headroom for WAL and index builds
    free_bytes: int | None  # None when the database's folder is not on this machine or not readable
    where: str | None

    @property
    def short(self) -> bool:
        return self.free_bytes is not None and self.free_bytes < self.needed_bytes


def estimate(shape: Shape, *, participants: int, contacts: int, done_fraction: float = 0.0) -> int:
    """Bytes the data set will take once loaded; `done_fraction` of the messages already are."""
    messages = shape.messages * (1 - done_fraction)
    return int(
        messages * BYTES_PER_MESSAGE
        + participants * BYTES_PER_PARTICIPANT
        + shape.conversations * BYTES_PER_CONVERSATION
        + shape.users * BYTES_PER_USER
        + contacts * BYTES_PER_CONTACT
    )


def need(data_bytes: int, data_directory: str | None) -> DiskNeed:
    free: int | None = None
    if data_directory and Path(data_directory).is_dir():
        free = shutil.disk_usage(data_directory).free
    return DiskNeed(data_bytes, int(data_bytes * HEADROOM), free, data_directory if free is not None else None)


def gib(value: int) -> str:
    return f"{value / 2**30:,.2f} GiB"
