"""UUIDv7 (RFC 9562) ids made by the application."""

from __future__ import annotations

import time
import uuid

from rapport.kernel.ids import uuid7


def _millis(value: uuid.UUID) -> int:
    return value.int >> 80


def test_version_is_7():
    assert uuid7().version == 7


def test_variant_is_rfc_9562():
    assert uuid7().variant == uuid.RFC_4122


def test_ids_are_unique():
    assert len({uuid7() for _ in range(10_000)}) == 10_000


def test_ids_are_monotonic_within_a_process():
    ids = [uuid7() for _ in range(10_000)]
    assert ids == sorted(ids)


def test_ids_sort_as_strings_too():
    ids = [uuid7() for _ in range(1_000)]
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)


def test_prefix_is_the_unix_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= _millis(value) <= after


def test_a_later_id_has_a_later_or_equal_time_prefix():
    first = uuid7()
    time.sleep(0.002)
    assert _millis(uuid7()) > _millis(first)
