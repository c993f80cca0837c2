"""A calmer rewrite of a hostile draft, from rules: deterministic, local, and keeping what
the draft asks and says (times, places, the children's needs) while leaving out what
attacks the reader.

Sentence by sentence: threats and bare attacks go; insults, swearing and scorn are taken
out of what remains; blame in absolutes becomes how it feels ("you always" → "it feels like
you often"); orders become requests; shouting and strings of exclamation marks calm down.
What is left is the same message, said so that the other parent can answer it."""

from __future__ import annotations

import re
from collections.abc import Callable

from rapport.modules.coparenting._tone import ACRONYMS, markers_in

_I = re.IGNORECASE
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")

_INSULT_WORDS = (
    r"idiot\w*|stupid|moron\w*|imbecile|pathetic|loser|incompetent|worthless|clown|narcissist\w*|deadbeat|"
    r"disgrace\w*|hypocrite|selfish|liar|lying|lazy|crazy|insane|nuts|useless|clueless|irresponsible|disgusting|"
    r"manipulative|toxic|joke|dumb|unreliable|impossible|ridiculous|hopeless|childish|cruel|vindictive|petty|"
    r"(?:terrible|awful|horrible|bad|lousy|worst|useless|unfit) (?:parent|mother|father|mom|dad|person)"
)
# "..., you idiot": said to the reader in passing; the rest of the sentence stays.
_INSULT_CLAUSE_VOCATIVE = re.compile(r",\s*you (?:idiot\w*|moron\w*|imbecile|loser|clown)\b", _I)
# "you idiot", "you're such a selfish person", "you are so lazy": the whole clause goes.
_INSULT_CLAUSE = re.compile(
    r"(?:,\s*|\b)you(?:'re| are)?(?: such| so| a| an| being| just| completely| totally| the| a real)* "
    rf"(?:{_INSULT_WORDS})(?: person| man| woman)?\b",
    _I,
)
# An insult that is the sentence's point ("you are so selfish", "she is a joke"): the sentence goes.
_INSULT_PREDICATE = re.compile(
    r"\b(?:you(?:'re| are)(?: such| so| a| an| being| just| completely| totally| the| a real)* "
    rf"(?:{_INSULT_WORDS})|(?:is|are|'s) (?:a|such a) joke)\b",
    _I,
)
# "stop being so lazy and ...": the request stays.
_STOP_BEING = re.compile(rf"\bstop being(?: so| such a| a| an)? (?:{_INSULT_WORDS})(?: and)?\s*", _I)
# An insult left on its own ("your stupid rules"); words that insult only when said of
# the reader ("a crazy week") stay.
_INSULT_WORD = re.compile(
    r"\b(?:idiot\w*|stupid|moron\w*|imbecile|pathetic|loser|worthless|clown|deadbeat|what a joke|piece of work|"
    r"waste of space)\b",
    _I,
)
_PROFANITY = re.compile(
    r"\b(?:the (?:hell|fuck)|what the (?:hell|fuck)|f+u+c+k\w*|shit\w*|damn\w*|bitch\w*|bastard\w*|crap\w*|"
    r"asshole\w*|wtf|bullshit|pissed off|pissed)\b",
    _I,
)
_THREAT = re.compile(
    r"\b(?:or else|you'?ll regret|you will regret|see you in court|take you (?:back )?to court|"
    r"(?:call|get|calling|getting|talk to|talking to) (?:my|a) lawyer|my lawyer will|"
    r"(?:never|won'?t|will not) see (?:the kids|the children|them|her|him) again|i'?m warning you|last warning|"
    r"you'?ll be sorry|watch yourself|i'?ll make sure you|i will make sure you|full custody|"
    r"don'?t you (?:dare|ever)|(?:or )?i'?m done being nice)\b",
    _I,
)
_CONTEMPT = re.compile(
    r"\b(?:whatever|i don'?t care(?: anymore)?|shut up|grow up|get a life|who cares|not my problem|deal with it|"
    r"are you kidding(?: me)?\??|unbelievable|ridiculous|how dare you|seriously\??|give me a break|typical of you|"
    r"so typical|that figures|do you even|what(?: the hell| the fuck|'?s| is)* wrong with you\??|"
    r"get your act together|(?:i'?m )?sick (?:and tired )?of you|(?:i'?m )?fed up with you|not that you care|"
    r"like you care|as if you care|for once|hope you'?re (?:proud|happy)|you had one job|disgusting)\b",
    _I,
)

# What is left before a threat, without the words that led into it.
_THREAT_LEAD = re.compile(r"(?:[\s,;:-]|\b(?:or|otherwise|and|so|else|if not|i'?m|i am|i will|i'?ll)\b)*$", _I)
# A sentence that opens with scorn ("I don't care what you think") says nothing else.
_SCORN_FIRST = re.compile(r"^\W*(?:whatever|i don'?t care|who cares|not my problem|deal with it|shut up|grow up)\b", _I)

# Blame in absolutes, as how it feels; orders, as requests.
_SOFTER: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"\b(?:it'?s|it is|this is|that'?s|that is) (?:all |entirely )?your fault\b", _I), "I'm worried"),
    (re.compile(r"\byou(?:'re| are) always\b", _I), "it feels like you're often"),
    (re.compile(r"\byou(?:'re| are) never\b", _I), "it feels like you're rarely"),
    (re.compile(r"\byou always\b", _I), "it feels like you often"),
    (re.compile(r"\byou never\b", _I), "it feels like you rarely"),
    (re.compile(r"\s*\b(?:because of you|thanks to you)\b", _I), ""),
    (re.compile(r"\byou don'?t care about\b", _I), "I'm not sure you see how much I care about"),
    (re.compile(r"\byou don'?t care\b", _I), "I'm not sure we see this the same way"),
    (re.compile(r"\byou only care about yourself\b", _I), "I'd like us both to think about what the kids need"),
    (re.compile(r"\byou only care about\b", _I), "I feel you mostly think about"),
    (re.compile(r"\bevery single time\b", _I), "more than once"),
    (re.compile(r"\byou (can'?t|couldn'?t|didn'?t) even\b", _I), lambda m: f"you {m.group(1)}"),
    (re.compile(r"\byou forgot again\b", _I), "this was missed again"),
    (re.compile(r"\byou ruined\b", _I), "I was upset about"),
    (re.compile(r"\bi demand\b", _I), "I'd like"),
    (re.compile(r"\bi expect you to\b", _I), "I'd appreciate it if you could"),
    (re.compile(r"\bdo it now\b", _I), "please do it soon"),
]
_ORDER = re.compile(r"^(?:and |so |now )?you(?:'d| had)? (?:need to|have to|got to|must|better|gotta) ", _I)
_SHOUTED = re.compile(r"\b[A-Z][A-Z']{2,}\b")
_MARKS = [
    (re.compile(r"\?+!+[!?]*|!+\?+[!?]*"), "?"),
    (re.compile(r"\?{2,}"), "?"),
    (re.compile(r"!+"), "."),
]
_SPACES = re.compile(r"\s{2,}")
_DANGLING = re.compile(r"^[\s,;:.-]+|[\s,;:-]+(?=[.?]?$)")

CLOSING = "I'd like us to sort this out calmly."
NOTHING_LEFT = "I'm upset about this. Can we talk it through calmly?"


def rewrite(text: str) -> str | None:
    """A calmer version of the draft, or None when the rules change nothing."""
    plain = text.translate(_APOSTROPHES).strip()
    kept: list[str] = []
    dropped_attack = False
    for sentence in (part.strip() for part in _SENTENCES.split(plain)):
        if not sentence:
            continue
        calmer = _calm_sentence(sentence)
        if calmer is None:
            dropped_attack = True
        else:
            kept.append(calmer)
    if not kept:
        result = NOTHING_LEFT
    else:
        result = " ".join(kept)
        if dropped_attack or any(m in markers_in(plain) for m in ("insult", "threat", "profanity")):
            result = f"{result} {CLOSING}"
    if _same(result, plain):
        return None
    return result


def _calm_sentence(sentence: str) -> str | None:
    """The sentence said calmly, or None when nothing but an attack was in it."""
    threat = _THREAT.search(sentence)
    if threat is not None:
        # What came before the threat may be a request worth keeping ("send the forms by
        # Monday, or else ...").
        sentence = _THREAT_LEAD.sub("", sentence[: threat.start()])
    if _SCORN_FIRST.match(sentence):
        return None
    sentence = _STOP_BEING.sub("", sentence)
    if _INSULT_PREDICATE.search(sentence) and not _INSULT_CLAUSE_VOCATIVE.search(sentence):
        return None
    words_before = len(sentence.split())
    calmer = _CONTEMPT.sub("", sentence)
    calmer = _INSULT_CLAUSE.sub("", calmer)
    calmer = _INSULT_WORD.sub("", calmer)
    calmer = _PROFANITY.sub("", calmer)
    for pattern, replacement in _SOFTER:
        calmer = pattern.sub(replacement, calmer)
    calmer = _unshout(calmer)
    calmer = _tidy(calmer)
    # A word or none left of a longer sentence: it was the attack.
    if len(re.findall(r"[\w']+", calmer)) < 2 and words_before > len(calmer.split()):
        return None
    if not re.search(r"\w", calmer):
        return None
    return _as_request(calmer)


def _unshout(sentence: str) -> str:
    def lower(match: re.Match[str]) -> str:
        word = match.group(0)
        return word if word in ACRONYMS or word == "I" else word.lower()

    return _SHOUTED.sub(lower, sentence)


def _tidy(sentence: str) -> str:
    for pattern, replacement in _MARKS:
        sentence = pattern.sub(replacement, sentence)
    sentence = re.sub(r"\s+([,.?;])(?!\w)", r"\1", sentence)
    sentence = re.sub(r",\s*(?=[,.?])", "", sentence)
    sentence = _SPACES.sub(" ", sentence)
    sentence = _DANGLING.sub("", sentence).strip()
    if sentence and sentence[-1].isalnum():
        sentence += "."
    return sentence[:1].upper() + sentence[1:]


def _as_request(sentence: str) -> str:
    order = _ORDER.match(sentence)
    if order is None:
        return sentence
    rest = sentence[order.end() :].rstrip(".?")
    return f"Could you please {rest}?"


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())
