"""UUIDv7 (RFC 9562): time-ordered ids, made by the application.

Time order gives index locality on insert and lets keyset pagination walk by id.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def uuid7() -> uuid.UUID:
    """A new UUIDv7; ids made in the same millisecond by one process still sort in order."""
    global _last_ms, _last_rand
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 6  # 74 random bits
        else:
            # Same (or earlier, after a clock step) millisecond: count up from the last
            # value so ids stay monotonic within this process.
            _last_rand += 1
        ms, rand = _last_ms, _last_rand
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= rand_a << 64
    value |= 0b10 << 62
    value |= rand_b
    return uuid.UUID(int=value)
