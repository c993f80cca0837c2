"""The local analysis of a draft, without the database: a person's triggers found by type,
tone and its markers, the rules' rewrite, and patterns that cannot make matching slow."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rapport.kernel.ids import uuid7
from rapport.modules.coparenting._analysis import Trigger, analyse, find_triggers
from rapport.modules.coparenting._tone import tone_of
from rapport.modules.coparenting.schemas_mediation import check_trigger_value


def trigger(trigger_type: str, value: str, intensity: str = "0.5") -> Trigger:
    return Trigger(uuid7(), trigger_type, value, Decimal(intensity))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trigger_type", "value", "text", "matched"),
    [
        ("topic", "money", "We need to talk about the MONEY for camp.", "money"),
        ("topic", "school fees", "The fees for her school are due.", "school fees"),
        ("topic", "holiday", "Can we sort out the holidays?", "holidays"),
        ("phrase", "you always", "You... always do this.", "you... always"),
        ("phrase", "new girlfriend", "Will your new girlfriend be there?", "new girlfriend"),
        ("pattern", "you * late", "You are always late.", "you are always late"),
        ("pattern", "why * you", "Why didn't you call?", "why didn't you"),
        ("phrase", "don't", "I don’t know yet.", "don't"),
    ],
)
def test_each_kind_of_trigger_is_found(trigger_type, value, text, matched):
    found = find_triggers(text, [trigger(trigger_type, value)])

    assert [f.matched for f in found] == [matched]


@pytest.mark.parametrize(
    ("trigger_type", "value", "text"),
    [
        ("topic", "art", "I read an article about it."),
        ("topic", "school fees", "School starts on Monday."),
        ("phrase", "you always", "You can always call me."),
        ("pattern", "you * late", "You, late."),
        ("pattern", "you * late", "You were not at all very much late."),
    ],
)
def test_a_trigger_is_not_found_where_it_is_not(trigger_type, value, text):
    assert find_triggers(text, [trigger(trigger_type, value)]) == ()


def test_the_strongest_trigger_comes_first():
    weak, strong = trigger("topic", "money", "0.2"), trigger("phrase", "your mother", "0.9")

    found = find_triggers("Your mother asked about the money.", [weak, strong])

    assert [f.trigger for f in found] == [strong, weak]


def test_a_pattern_built_to_backtrack_is_matched_at_once():
    text = "you " + "a " * 2000 + "!"
    evil = trigger("pattern", "you * * * * * * * * * * late")

    # Exponential backtracking would not return within the run's lifetime.
    assert find_triggers(text, [evil]) == ()


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("You idiot.", "insult"),
        ("This is bullshit.", "profanity"),
        ("See you in court.", "threat"),
        ("Whatever.", "contempt"),
        ("You never listen.", "blame"),
        ("You need to call her.", "command"),
        ("WHY ARE YOU LATE", "shouting"),
        ("Call me!!!", "exclamations"),
    ],
)
def test_each_marker_is_named(text, marker):
    assert marker in tone_of(text).markers


def test_acronyms_are_not_shouting_and_civil_worry_is_not_hostile():
    tone = tone_of("Please call the GP ASAP, I'm worried about her fever.")

    assert "shouting" not in tone.markers
    assert not tone.hostile


def test_a_hostile_draft_gets_a_calmer_rewrite_keeping_the_request():
    result = analyse("You need to send the school forms by Monday or else I'm calling my lawyer!!", [])

    assert result.tone.hostile
    assert result.rewrite is not None
    assert "school forms by Monday" in result.rewrite
    assert "lawyer" not in result.rewrite and "!" not in result.rewrite
    assert not tone_of(result.rewrite).hostile


def test_a_tense_draft_on_a_trigger_gets_a_rewrite_and_a_plain_one_does_not():
    tense = "You never told me about the money for camp."

    assert tone_of(tense).label == "tense"
    assert analyse(tense, []).rewrite is None
    assert analyse(tense, [trigger("topic", "money")]).rewrite is not None
    assert analyse("Can we talk about the money for camp?", [trigger("topic", "money")]).rewrite is None


def test_the_patterns_label_markers_then_triggers():
    result = analyse("You idiot, the money is late AGAIN!!", [trigger("topic", "money")])

    assert result.patterns[-1] == "trigger:topic"
    assert "insult" in result.patterns


@pytest.mark.parametrize(
    ("trigger_type", "value"),
    [("topic", "why? you"), ("pattern", "* *"), ("pattern", "you  * late"), ("phrase", "!!!"), ("pattern", "a " * 13)],
)
def test_a_value_that_does_not_fit_its_type_is_refused(trigger_type, value):
    with pytest.raises(ValueError):
        check_trigger_value(trigger_type, value.strip() if trigger_type != "pattern" else value)
