"""The messages of one time slice, as COPY rows, with what goes with them: mentions,
reactions, and deletions (retraction and history rows).

A message's id and time are pure functions of (conversation, seq) (rows.mix), so a reply
made in a later slice, and the conversation's last message written with the conversation,
name the same id as the message itself, whichever run makes it. Everything else comes from
one generator per slice, seeded by the slice: a resumed load remakes a slice identically.

Conversation c with n messages over [start, end) gives message j (0-based) the slot
[start + span·j/n, start + span·(j+1)/n) and a moment inside it, so sequence and time agree;
a message belongs to the slice its slot starts in.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from rapport.benchmark._plan import Conversation, Plan
from rapport.benchmark.rows import RARE_WORDS, WORDS, mix, timestamp_text, uuid7_from_bits, word_weights

EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "🙏", "🔥", "👀"]
_CUMULATIVE = word_weights()


@dataclass
class SliceRows:
    messages: list[tuple[int, str]] = field(default_factory=list)  # (ms, COPY line), sorted before loading
    mentions: list[str] = field(default_factory=list)
    reactions: list[str] = field(default_factory=list)
    retractions: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)


class Timeline:
    """Slots, slices and ids of every message of a plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.begin = plan.shape.start_ms
        self.span = plan.shape.end_ms - plan.shape.start_ms
        self.slices = plan.shape.slices
        self.keys = [mix(plan.key + c.index) for c in plan.conversations]

    def slice_of(self, ms: int) -> int:
        return min(self.slices - 1, max(0, (ms - self.begin) * self.slices // self.span))

    def slice_end(self, k: int) -> int:
        """The first millisecond of slice k + 1."""
        return self.begin + -(-(k + 1) * self.span // self.slices)

    @staticmethod
    def slot(c: Conversation, j: int) -> int:
        return c.start_ms + (c.end_ms - c.start_ms) * j // c.size

    def moment(self, c: Conversation, seq: int) -> tuple[int, int]:
        """(millisecond, hash) of message `seq` (1-based) of conversation `c`."""
        h = mix(self.keys[c.index] + seq)
        first, following = self.slot(c, seq - 1), self.slot(c, seq)
        ms = first + ((h >> 40) * (following - first) >> 24)
        ms = min(ms, self.slice_end(self.slice_of(first)) - 1, c.end_ms)
        return max(ms, first), h

    def message_id(self, c: Conversation, seq: int) -> str:
        ms, h = self.moment(c, seq)
        return uuid7_from_bits(ms, (h << 16) | (c.index & 0xFFFF))

    def seqs_in(self, c: Conversation, k: int) -> range:
        """The sequences (1-based) of c's messages whose slots start in slice k."""
        first = bisect.bisect_left(range(c.size), k, key=lambda j: self.slice_of(self.slot(c, j)))
        last = bisect.bisect_left(range(c.size), k + 1, key=lambda j: self.slice_of(self.slot(c, j)))
        return range(first + 1, last + 1)

    def active(self) -> Iterator[tuple[int, list[Conversation]]]:
        """Each slice with the conversations active in it, sweeping the slices in order."""
        by_start = sorted(self.plan.conversations, key=lambda c: c.start_ms)
        live: dict[int, Conversation] = {}
        position = 0
        for k in range(self.slices):
            end = self.slice_end(k)
            while position < len(by_start) and by_start[position].start_ms < end:
                c = by_start[position]
                live[c.index] = c
                position += 1
            yield k, sorted(live.values(), key=lambda c: c.index)
            for index in [i for i, c in live.items() if self.slice_of(self.slot(c, c.size - 1)) <= k]:
                del live[index]


def content(rng: random.Random, u: float) -> str:
    """Mostly short, a quarter of medium length, one in twenty long."""
    if u < 0.70:
        count = 1 + int(rng.expovariate(1 / 5))
    elif u < 0.95:
        count = 10 + int(30 * rng.random())
    else:
        count = 60 + int(240 * rng.random() ** 2)
    words = rng.choices(WORDS, cum_weights=_CUMULATIVE, k=count)
    if rng.random() < 0.001:
        words.insert(rng.randrange(len(words) + 1), rng.choice(RARE_WORDS))
    return " ".join(words)


def slice_rows(timeline: Timeline, k: int, conversations: list[Conversation]) -> SliceRows:
    plan = timeline.plan
    rng = random.Random(mix(plan.key ^ (k + 1) * 0x9E3779B1))
    rows = SliceRows()
    users = plan.user_ids
    for c in conversations:
        members = c.members
        grouped = c.type != "direct"
        for seq in timeline.seqs_in(c, k):
            ms, h = timeline.moment(c, seq)
            message_id = uuid7_from_bits(ms, (h << 16) | (c.index & 0xFFFF))
            g = mix(h)
            sender_index = members[int(len(members) * ((g & 0xFFFFFF) / 0x1000000) ** 2)]
            sender = users[sender_index]
            text = content(rng, ((g >> 24) & 0xFFFFFF) / 0x1000000)
            reply = "\\N"
            if seq > 1 and ((g >> 48) & 0xFFFF) / 0x10000 < (0.08 if grouped else 0.04):
                target = max(1, seq - 1 - int(rng.expovariate(1 / 3)))
                reply = timeline.message_id(c, target)
            created = timestamp_text(ms)
            mentions = "{}"
            if rng.random() < 0.002:
                deleted = f"{timestamp_text(ms + 60_000)}\t{sender}"
                rows.retractions.append(f"{c.id}\t{seq}\t{message_id}\t{timestamp_text(ms + 60_000)}\n")
                rows.history.append(
                    f"{c.id}\t{message_id}\tdelete\t{text}\t{{}}\t{sender}\t{timestamp_text(ms + 60_000)}\n"
                )
                text = ""
            else:
                deleted = "\\N\t\\N"
                if grouped and rng.random() < 0.02:
                    mentioned = members[rng.randrange(min(len(members), 8))]
                    if mentioned != sender_index:
                        mentions = "{" + users[mentioned] + "}"
                        rows.mentions.append(f"{users[mentioned]}\t{c.id}\t{seq}\t{message_id}\t{created}\n")
                if rng.random() < 0.10:
                    count = min(len(members), 1 + int(3 * rng.random() ** 3))
                    for person in rng.sample(members, count):
                        rows.reactions.append(
                            f"{c.id}\t{message_id}\t{users[person]}\t{rng.choice(EMOJI)}\t{created}\n"
                        )
            rows.messages.append(
                (ms, f"{message_id}\t{c.id}\t{seq}\t{sender}\t{text}\t{reply}\t{mentions}\t{deleted}\t{created}\n")
            )
    rows.messages.sort()
    return rows


MESSAGE_COLUMNS = [
    "id", "conversation_id", "seq", "sender_id", "content", "reply_to_id", "mentions", "deleted_at", "deleted_by",
    "created_at",
]  # fmt: skip
