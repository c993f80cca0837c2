"""The local analysis measured on a labelled set of co-parents' messages
(labelled_messages.jsonl: hostile and civil, written for Rapport's tests): precision and
recall of "hostile", and how many hostile drafts the rules' rewrite makes non-hostile. The
figures are printed (run with -s) and kept in docs/PERFORMANCE.md; the floors here catch a
change that makes the analysis worse."""

from __future__ import annotations

import json
from pathlib import Path

from rapport.modules.coparenting._analysis import analyse
from rapport.modules.coparenting._tone import tone_of

LABELLED = Path(__file__).resolve().parent / "labelled_messages.jsonl"
PRECISION_FLOOR = 0.9
RECALL_FLOOR = 0.85
CALMED_FLOOR = 0.85


def _labelled() -> list[tuple[str, bool]]:
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]
    return [(row["text"], row["hostile"]) for row in rows]


def test_the_labelled_set_has_both_kinds_in_number():
    labels = [hostile for _, hostile in _labelled()]

    assert labels.count(True) >= 30 and labels.count(False) >= 30


def test_hostility_is_found_with_precision_and_recall_above_the_floors():
    predicted = [(tone_of(text).hostile, hostile) for text, hostile in _labelled()]
    true_positives = sum(p and h for p, h in predicted)
    false_positives = sum(p and not h for p, h in predicted)
    false_negatives = sum(h and not p for p, h in predicted)

    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / (true_positives + false_negatives)
    print(f"\nhostile drafts: precision {precision:.3f}, recall {recall:.3f} over {len(predicted)} messages")
    assert precision >= PRECISION_FLOOR
    assert recall >= RECALL_FLOOR


def test_the_suggested_rewrites_of_hostile_drafts_read_as_not_hostile():
    hostile = [text for text, is_hostile in _labelled() if is_hostile and tone_of(text).hostile]
    rewrites = [analyse(text, []).rewrite for text in hostile]

    calmed = sum(1 for text in rewrites if text is not None and not tone_of(text).hostile)
    share = calmed / len(hostile)
    print(f"\nrewrites of hostile drafts no longer hostile: {share:.3f} ({calmed} of {len(hostile)})")
    assert share >= CALMED_FLOOR


def test_no_civil_message_gets_a_rewrite():
    civil = [text for text, hostile in _labelled() if not hostile]

    assert [text for text in civil if analyse(text, []).rewrite is not None] == []
