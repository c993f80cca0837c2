"""The local analysis of a draft: the person's triggers found in it, its tone, and whether
a calmer rewrite is worth suggesting (and which). Pure functions over the text and the
person's triggers: no database, no network.

Triggers are matched on the text lower-cased, word by word:
- topic: every word of it appears, with any ending ("school" finds "schools");
- phrase: its words in this order, whatever the punctuation between them;
- pattern: its words in order, each `*` standing for one to three words.
The expressions built here have no nested repetition over overlapping characters, so a
person's pattern cannot make matching slow."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from rapport.modules.coparenting._rewrite import rewrite
from rapport.modules.coparenting._tone import Tone, normalise, tone_of
from rapport.modules.coparenting.models_mediation import TriggerType

_WORD = r"[\w']+"
_GAP = r"[^\w']+"
# Topic words this short must match whole: "art" must not find "article".
_WHOLE_TOPIC_WORD = 3


@dataclass(frozen=True)
class Trigger:
    id: UUID
    trigger_type: TriggerType
    trigger_value: str
    intensity: Decimal


@dataclass(frozen=True)
class Found:
    trigger: Trigger
    matched: str


@dataclass(frozen=True)
class LocalAnalysis:
    tone: Tone
    found: tuple[Found, ...]
    rewrite: str | None

    @property
    def patterns(self) -> list[str]:
        """What was found, as labels: the tone's markers, then trigger:<type> for each trigger."""
        labels: list[str] = list(self.tone.markers)
        labels += [f"trigger:{found.trigger.trigger_type}" for found in self.found]
        return list(dict.fromkeys(labels))


def _words(value: str) -> list[str]:
    return re.findall(_WORD, normalise(value))


def trigger_expression(trigger_type: str, value: str) -> re.Pattern[str] | None:
    """The expression a phrase or pattern trigger is searched with (None for a topic,
    matched word by word)."""
    if trigger_type == "topic":
        return None
    parts: list[str] = []
    pending_star = False
    for token in normalise(value).split():
        if token == "*":
            pending_star = True
            continue
        words = _words(token)
        if not words:
            continue
        literal = _GAP.join(re.escape(word) for word in words)
        if parts:
            parts.append(rf"(?:{_GAP}{_WORD}){{1,3}}{_GAP}" if pending_star else _GAP)
        elif pending_star:
            parts.append(rf"(?:{_WORD}{_GAP}){{1,3}}")
        parts.append(literal)
        pending_star = False
    if not parts:
        return None
    if pending_star:
        parts.append(rf"(?:{_GAP}{_WORD}){{1,3}}")
    return re.compile(r"(?<![\w'])" + "".join(parts) + r"(?![\w'])")


def _find_topic(value: str, tokens: Sequence[str]) -> str | None:
    hits = []
    for word in _words(value):
        if len(word) <= _WHOLE_TOPIC_WORD:
            hit = next((token for token in tokens if token == word), None)
        else:
            hit = next((token for token in tokens if token.startswith(word)), None)
        if hit is None:
            return None
        hits.append(hit)
    return " ".join(hits) or None


def find_triggers(text: str, triggers: Sequence[Trigger]) -> tuple[Found, ...]:
    """The person's triggers the text contains, strongest first."""
    plain = normalise(text)
    tokens = re.findall(_WORD, plain)
    found = []
    for trigger in triggers:
        if trigger.trigger_type == "topic":
            matched = _find_topic(trigger.trigger_value, tokens)
        else:
            expression = trigger_expression(trigger.trigger_type, trigger.trigger_value)
            hit = expression.search(plain) if expression is not None else None
            matched = hit.group(0) if hit is not None else None
        if matched is not None:
            found.append(Found(trigger, matched))
    return tuple(sorted(found, key=lambda f: (-f.trigger.intensity, f.trigger.trigger_value)))


def needs_rewrite(tone: Tone, found: Sequence[Found]) -> bool:
    """Hostile, or tense about something that sets the sender off."""
    return tone.hostile or (tone.label == "tense" and bool(found))


def analyse(text: str, triggers: Sequence[Trigger]) -> LocalAnalysis:
    """The local analysis of a draft against the person's triggers."""
    tone = tone_of(text)
    found = find_triggers(text, triggers)
    suggestion = rewrite(text) if needs_rewrite(tone, found) else None
    return LocalAnalysis(tone=tone, found=found, rewrite=suggestion)
