"""The data set's shape, made in memory from the seed: who exists, who knows whom, which
conversations there are and who is in them. Everything is reproducible: a rerun after a
crash makes the same plan and continues where the database says it stopped.

Skews, as in real messaging:
- conversations: sizes fall as 1/rank (Zipf); the largest few are channels of hundreds
  to thousands of members, the next 5% groups of 3 to 60, the rest direct conversations;
- people: a few take part in many conversations and know many people (memberships and
  contacts drawn with weights falling as a power of rank);
- messages: mostly short, a quarter of medium length, one in twenty long (see _messages).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from rapport.benchmark.rows import uuid7_text, zipf_sizes

DAY_MS = 86_400_000
PASSWORD = "rapport-bench-password-1"
GROUP_NAMES = ["Team", "Project", "Family", "Friends", "Launch", "Ops", "Design", "Club", "Running", "Trip", "Support"]


@dataclass(frozen=True)
class Shape:
    """What to generate. `end_ms` fixes the data set's time span, so that a resumed load
    makes the same rows as the interrupted one."""

    messages: int
    users: int
    conversations: int
    end_ms: int
    days: int = 150
    seed: int = 20261130
    chunk: int = 1_000_000  # messages per loading step (about)

    @classmethod
    def for_messages(
        cls, messages: int, *, users: int | None, end_ms: int, seed: int = 20261130, chunk: int | None = None
    ) -> Shape:
        conversations = max(4, min(messages, messages // 100))
        people = users if users is not None else max(20, messages // 200)
        return cls(
            messages=messages,
            users=people,
            conversations=conversations,
            end_ms=end_ms,
            seed=seed,
            chunk=chunk or max(500, min(1_000_000, messages // 10)),
        )

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.days * DAY_MS

    @property
    def channels(self) -> int:
        return max(1, self.conversations // 5000)

    @property
    def groups(self) -> int:
        return max(1, self.conversations // 20)

    @property
    def slices(self) -> int:
        """How many time slices the messages are loaded in (each one transaction)."""
        return max(1, math.ceil(self.messages / self.chunk))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Conversation:
    index: int
    id: str
    type: str
    size: int  # messages
    start_ms: int
    end_ms: int
    members: list[int]  # user indexes; the first is the creator, the first few send most
    name: str | None = None


@dataclass
class Plan:
    shape: Shape
    user_ids: list[str]
    contacts: list[tuple[int, int]]  # (owner, contact), both directions present
    conversations: list[Conversation]
    users_created_ms: int
    key: int = field(default=0)  # the seed's part in every per-message hash

    def email(self, user: int) -> str:
        return f"user-{user}@bench.example"


def _weights(count: int, exponent: float = 0.9) -> list[float]:
    """Cumulative weights falling as a power of rank: person 0 is the busiest."""
    return list(itertools.accumulate(1 / (rank + 5) ** exponent for rank in range(count)))


def _pick_distinct(rng: random.Random, cumulative: list[float], count: int, total: int) -> list[int]:
    chosen: dict[int, None] = {}
    top = cumulative[-1]
    while len(chosen) < count:
        chosen[bisect.bisect_left(cumulative, rng.random() * top) % total] = None
    return list(chosen)


def make_plan(shape: Shape) -> Plan:
    rng = random.Random(shape.seed)
    created = shape.start_ms - 30 * DAY_MS
    user_ids = [uuid7_text(created + i, rng) for i in range(shape.users)]
    weights = _weights(shape.users)
    contacts = _make_contacts(shape, rng, weights)
    known: dict[int, list[int]] = {}
    for owner, other in contacts:
        known.setdefault(owner, []).append(other)
    sizes = zipf_sizes(shape.messages, shape.conversations)
    conversations: list[Conversation] = []
    pairs: set[tuple[int, int]] = set()
    for rank, size in enumerate(sizes):
        if rank < shape.channels:
            kind, count = "channel", min(shape.users, 500 + 3000 // (rank + 1))
        elif rank < shape.channels + shape.groups:
            kind, count = "group", min(shape.users, 3 + int(57 * rng.random() ** 3))
        else:
            kind, count = "direct", 2
        if rank < 200:
            begin, finish = shape.start_ms, shape.end_ms
        else:
            begin = rng.randrange(shape.start_ms, shape.end_ms - DAY_MS)
            finish = min(shape.end_ms, begin + int(rng.expovariate(1 / (20 * DAY_MS))) + 3_600_000)
        if kind == "direct":
            members = _direct_pair(rng, weights, known, pairs, shape.users)
            if members is None:  # every pair taken (a tiny data set): a group of two instead
                kind, members = "group", _pick_distinct(rng, weights, 2, shape.users)
        elif kind == "channel":
            members = rng.sample(range(shape.users), count)
        else:
            members = _pick_distinct(rng, weights, count, shape.users)
        conversations.append(
            Conversation(
                index=rank,
                id=uuid7_text(begin - 60_000, rng),
                type=kind,
                size=size,
                start_ms=begin,
                end_ms=finish,
                members=members,
                name=None if kind == "direct" else f"{rng.choice(GROUP_NAMES)} {rank}",
            )
        )
    return Plan(shape, user_ids, contacts, conversations, created, key=shape.seed * 1_000_003)


def _make_contacts(shape: Shape, rng: random.Random, weights: list[float]) -> list[tuple[int, int]]:
    """Mutual contacts with power-law degrees: most people know a handful, a few know hundreds."""
    seen: set[int] = set()
    edges: list[tuple[int, int]] = []
    cap = max(1, min(shape.users - 1, 1000))
    for person in range(shape.users):
        degree = min(cap, int(rng.paretovariate(1.6) * 2) - 1)
        for other in _pick_distinct(rng, weights, min(degree, shape.users - 1), shape.users) if degree > 0 else []:
            if other == person:
                continue
            low, high = min(person, other), max(person, other)
            if low * shape.users + high in seen:
                continue
            seen.add(low * shape.users + high)
            edges.append((low, high))
            edges.append((high, low))
    return edges


def _direct_pair(
    rng: random.Random,
    weights: list[float],
    known: dict[int, list[int]],
    pairs: set[tuple[int, int]],
    users: int,
) -> list[int] | None:
    """Two people, most often two who know each other; at most one conversation per pair."""
    for _ in range(20):
        first = _pick_distinct(rng, weights, 1, users)[0]
        friends = known.get(first)
        second = rng.choice(friends) if friends and rng.random() < 0.8 else rng.randrange(users)
        pair = (min(first, second), max(first, second))
        if first != second and pair not in pairs:
            pairs.add(pair)
            return [first, second]
    return None


def read_marker(rng: random.Random, last_seq: int) -> int:
    """Where a participant has read up to: three in four everything, the rest some behind."""
    if rng.random() < 0.75:
        return last_seq
    return max(0, last_seq - 1 - int(rng.expovariate(1 / 20)))
