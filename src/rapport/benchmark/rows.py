"""The pieces every generated data set is made of: UUIDv7 ids and their timestamps as
PostgreSQL reads them, sizes falling as 1/rank, a word list with skewed frequencies, and
COPY text joined into chunks. Shared by `rapport bench` and the scripts under bench/."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import AsyncIterator, Iterable

# Words with frequencies falling by rank (weight 1 / (rank + 8)): the small words of any
# sentence first, then everyday and work words.
WORDS = """
the i you to a and it is that of in for we on my this be have are not with so just can do but
at what was me your if all no will get like ok yes know think about there one they up how
good see out now here when time then go today then would can't more well need back going
let's sure thanks great still really also right call meet tomorrow morning tonight later
week friday monday weekend lunch dinner coffee home work office meeting project deadline
report review team client budget plan idea question answer problem issue bug fix release
deploy server database query test build code design draft slides document email link photo
video file update status launch sprint ticket priority feature customer sales marketing
travel flight hotel train trip airport beach mountain city weather rain sun snow summer
birthday party gift music movie game match score football tennis running gym yoga pizza
sushi tacos pasta wine beer tea cake breakfast family kids mom dad brother sister friend
dog cat garden house car bike book podcast series episode news article paper study exam
class school university thesis research data model chart numbers invoice payment contract
""".split()  # noqa: SIM905 (a word list reads better as text)
# Rare words, each about 1 in 10,000 messages: searches that find a few hundred at 10M.
RARE_WORDS = [
    "zanzibar", "quokka", "xylophone", "fjord", "kumquat", "obelisk", "marzipan", "tundra", "sextant", "origami",
]  # fmt: skip


def word_weights(count: int = len(WORDS)) -> list[float]:
    """Cumulative weights for `random.choices(WORDS, cum_weights=...)`: rank r weighs 1 / (r + 8)."""
    return list(itertools.accumulate(1 / (rank + 8) for rank in range(count)))


def zipf_sizes(total: int, count: int) -> list[int]:
    """`count` sizes falling as 1/rank, each at least 1, summing to `total` (at least `count`)."""
    harmonic = sum(1 / k for k in range(1, count + 1))
    sizes = [max(1, int(total / (harmonic * k))) for k in range(1, count + 1)]
    rest = total - sum(sizes)
    i = 0
    while rest != 0:  # the rounding goes to (or comes from) the largest, in turn
        step = 1 if rest > 0 else -1
        if sizes[i % count] + step >= 1:
            sizes[i % count] += step
            rest -= step
        i += 1
    return sizes


def uuid7_from_bits(ms: int, bits: int) -> str:
    """A UUIDv7 made at millisecond `ms` whose 80 random bits are `bits`, as text."""
    value = (ms << 80) | (bits & ((1 << 80) - 1))
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_text(ms: int, rng: random.Random) -> str:
    """A UUIDv7 made at millisecond `ms`, as text."""
    return uuid7_from_bits(ms, rng.getrandbits(80))


def timestamp_text(ms: int) -> str:
    """Millisecond `ms` (since the epoch) as PostgreSQL reads a timestamptz: exactly
    `messaging.id_time()` of a UUIDv7 made then."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}+00"


_MASK = (1 << 64) - 1


def mix(value: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit number from any integer. Values that
    must be the same whichever chunk makes them (a message's id, which a reply in a later
    chunk points to) come from this rather than from a running generator."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def copy_chunks(rows: Iterable[str], chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    """COPY text lines joined into chunks of about a MiB, as asyncpg's `copy_to_table` takes them."""

    async def chunks() -> AsyncIterator[bytes]:
        buffer: list[str] = []
        size = 0
        for row in rows:
            buffer.append(row)
            size += len(row)
            if size >= chunk:
                yield "".join(buffer).encode()
                buffer, size = [], 0
        if buffer:
            yield "".join(buffer).encode()

    return chunks()
