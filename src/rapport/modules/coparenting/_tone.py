"""The tone of a draft, locally and deterministically: VADER's lexicon-based sentiment
(a maintained library with no model to download) and markers of hostility in the wording
that a sentiment score alone misses in co-parents' messages (an insult said calmly, a
threat, blame, shouting).

Sentiment alone is not hostility: "I'm worried, she had a fever all night" is negative and
civil. The hostility score is mostly the markers; a negative sentiment adds to it, and only
a strongly negative one addressed to the reader comes near the line on its own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import get_args

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

from rapport.modules.coparenting.schemas_mediation import Marker, ToneLabel

# At and above this hostility a draft is hostile.
HOSTILE = 0.5
# At and above this it is tense.
TENSE = 0.25

MARKERS: tuple[Marker, ...] = get_args(Marker)

_INSULTS = (
    r"idiot\w*|stupid\w*|moron\w*|imbecile|pathetic|loser|incompetent|worthless|clown|narcissist\w*|deadbeat|"
    r"disgrac\w+|hypocrit\w+|what a joke|piece of work|waste of space|sorry excuse for a|"
    r"unfit (?:parent|mother|father)|"
    r"(?:terrible|awful|horrible|bad|lousy|worst|useless) (?:parent|mother|father|mom|dad|person)|"
    r"(?:is|are|'s) (?:a|such a) joke|"
    # Words that insult when said of the reader ("you're so lazy"), not of a week ("a crazy week").
    r"(?:you(?:'re| are)|stop being|don'?t be)(?: such| so| a| an| being| just| completely| totally)* "
    r"(?:selfish|liar|lying|lazy|crazy|insane|"
    r"nuts|useless|clueless|irresponsible|disgusting|manipulative|toxic|joke|dumb|unreliable|impossible|ridiculous|"
    r"hopeless|childish|cruel|vindictive|petty)"
)
_PROFANITY = r"f+u+c+k\w*|shit\w*|damn\w*|bitch\w*|bastard\w*|crap\w*|ass|asshole\w*|wtf|pissed|bullshit|hell"
_THREATS = (
    r"or else|you'?ll regret|you will regret|see you in court|take you (?:back )?to court|"
    r"(?:call|get|calling|getting|talk to|talking to) (?:my|a) lawyer|my lawyer will|"
    r"(?:never|won'?t|will not) see (?:the kids|the children|them|her|him) again|i'?m warning you|last warning|"
    r"you'?ll be sorry|watch yourself|i'?ll make sure you|i will make sure you|full custody|"
    r"don'?t you (?:dare|ever)|i'?m done being nice"
)
_CONTEMPT = (
    r"whatever\W*$|^\W*whatever|i don'?t care|don'?t care what you|don'?t give a (?:damn|shit|f\w*)|shut up|grow up|"
    r"get a life|who cares|not my problem|deal with it|are you kidding|how dare you|typical of you|so typical|"
    r"that figures|of course you|do you even|can'?t you ever|what is wrong with you|what'?s wrong with you|"
    r"get your act together|sick (?:and tired )?of you|fed up with you|not that you care|like you care|"
    r"as if you care|playing the victim|you had one job|hope you'?re (?:proud|happy)"
)
# Scorn that is sometimes only surprise ("unbelievable, she scored three goals"): it counts less.
_MILD_CONTEMPT = r"unbelievable|ridiculous|seriously\?|give me a break|for once|disgusting"
_BLAME = (
    r"you (?:always|never)|you'?re (?:always|never)|you are (?:always|never)|your fault|because of you|"
    r"thanks to you|you don'?t care|you made (?:her|him|them|me)|you ruined|you ruin|you only care|"
    r"every single time|you can'?t even|you couldn'?t even|you didn'?t even|you still haven'?t|you forgot again"
)
_COMMAND = r"you (?:need|have|got) to|you(?:'d| had)? better|you must|i demand|i expect you to|do it now"

_PATTERNS: dict[Marker, re.Pattern[str]] = {
    "insult": re.compile(rf"(?<![\w'])(?:{_INSULTS})(?![\w'])"),
    "profanity": re.compile(rf"(?<![\w'])(?:{_PROFANITY})(?![\w'])"),
    "threat": re.compile(rf"(?<![\w'])(?:{_THREATS})(?![\w'])"),
    "contempt": re.compile(rf"(?<![\w'])(?:{_CONTEMPT}|{_MILD_CONTEMPT})", re.MULTILINE),
    "blame": re.compile(rf"(?<![\w'])(?:{_BLAME})(?![\w'])"),
    "command": re.compile(rf"(?<![\w'])(?:{_COMMAND})(?![\w'])"),
}
# What each marker adds to the hostility score.
WEIGHTS: dict[Marker, float] = {
    "insult": 0.6,
    "profanity": 0.4,
    "threat": 0.6,
    "contempt": 0.5,
    "blame": 0.35,
    "command": 0.15,
    "shouting": 0.25,
    "exclamations": 0.15,
}
MILD_CONTEMPT = 0.3
# Capitals that are not shouting.
ACRONYMS = frozenset(
    {"ASAP", "OK", "AM", "PM", "USA", "UK", "TV", "ID", "GP", "ER", "PTA", "FYI", "BTW", "DMV", "RSVP"}
)
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_EXCLAIM = re.compile(r"[!?]*![!?]+|\?\?+")
_STRONG_CONTEMPT = re.compile(rf"(?<![\w'])(?:{_CONTEMPT})", re.MULTILINE)
# A second, third... distinct match of one marker adds this share of its weight (twice at most).
_REPEATED = 0.5
_SECOND_PERSON = re.compile(r"(?<![\w'])(?:you|your|you're|yours)(?![\w'])")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})


@dataclass(frozen=True)
class Tone:
    label: ToneLabel
    compound: float
    hostility: float
    markers: tuple[Marker, ...]

    @property
    def hostile(self) -> bool:
        return self.label == "hostile"


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    # Reads VADER's lexicon once per process.
    return SentimentIntensityAnalyzer()


def normalise(text: str) -> str:
    """Lower case, with typographic apostrophes made plain: what the patterns read."""
    return text.translate(_APOSTROPHES).lower()


def shouted_words(text: str) -> list[str]:
    """Words of three letters or more written in capitals, acronyms aside."""
    return [word for word in _CAPS_WORD.findall(text) if word not in ACRONYMS]


def _counts(text: str) -> dict[Marker, int]:
    """How many distinct matches of each marker the draft holds."""
    plain = normalise(text)
    counts: dict[Marker, int] = {}
    for marker, pattern in _PATTERNS.items():
        matches = {match.group(0) for match in pattern.finditer(plain)}
        if matches:
            counts[marker] = len(matches)
    return counts


def markers_in(text: str) -> tuple[Marker, ...]:
    """The hostility markers of a draft, in MARKERS order."""
    found: set[Marker] = set(_counts(text))
    letters = [char for char in text if char.isalpha()]
    shouted = shouted_words(text)
    if shouted and (len(shouted) >= 2 or sum(char.isupper() for char in letters) > 0.6 * len(letters)):
        found.add("shouting")
    if _EXCLAIM.search(text):
        found.add("exclamations")
    return tuple(marker for marker in MARKERS if marker in found)


def tone_of(text: str) -> Tone:
    """The tone of a draft: its sentiment, its markers, and the label they make."""
    compound = float(_analyzer().polarity_scores(text)["compound"])
    markers = markers_in(text)
    counts = _counts(text)
    negativity = max(0.0, -compound)
    hostility = 0.35 * negativity
    for marker in markers:
        weight = WEIGHTS[marker]
        if marker == "contempt" and not _STRONG_CONTEMPT.search(normalise(text)):
            weight = MILD_CONTEMPT
        hostility += weight * (1 + _REPEATED * min(counts.get(marker, 1) - 1, 2))
    if negativity >= 0.6 and _SECOND_PERSON.search(normalise(text)):
        # Strong negativity aimed at the reader, even in words no list holds.
        hostility += 0.15
    hostility = round(min(hostility, 1.0), 3)
    if hostility >= HOSTILE:
        label: ToneLabel = "hostile"
    elif hostility >= TENSE or compound <= -0.5:
        label = "tense"
    elif compound >= 0.3 and not markers:
        label = "friendly"
    else:
        label = "neutral"
    return Tone(label=label, compound=round(compound, 4), hostility=hostility, markers=markers)
