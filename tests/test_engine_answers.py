"""The scalar engine remembers decisions per segment of the law (between two `answer_instants`).

Every remembered answer must equal a fresh evaluation at the instant asked: each segment is entered at
its start (which fills the memory) and then asked about in its middle and at its last second, for every
app, transaction type and kind of place.
"""

from __future__ import annotations

import datetime as dt

import pytest

from appban.engine.decide import answer_instants, decide, decide_json, evaluate
from appban.engine.law import resolve
from appban.rulebook.loader import load_rulebook
from appban.vocabulary import Category

BOOK = load_rulebook()
LAW = resolve(BOOK)
PLACES = ("US", "PR", "IN", "FR")  # the U.S., a territory in its group, another listed country, neither


def _probes(subject: str) -> list[tuple[dt.datetime, list[dt.datetime]]]:
    """Per segment: where it starts, then instants inside it."""
    instants = answer_instants(LAW, subject)
    day = dt.timedelta(days=1)
    starts = [instants[0] - 30 * day, *instants] if instants else [dt.datetime(2020, 1, 1, tzinfo=dt.UTC)]
    ends = [*instants, starts[-1] + 30 * day]
    second = dt.timedelta(seconds=1)
    return [(start, [start + (end - start) / 2, end - second]) for start, end in zip(starts, ends, strict=True)]


@pytest.mark.parametrize("subject", list(BOOK.subjects.subjects))
def test_remembered_answers_equal_fresh_evaluations_in_every_segment(subject: str) -> None:
    book = load_rulebook()  # its own memory, filled in the order below
    for start, inside in _probes(subject):
        for category in Category:
            for place in PLACES:
                decide(subject, category, place, start, rulebook=book)
                for at in inside:
                    fresh = evaluate(LAW, subject, category, place, at, {}).model_copy(update={"app": subject})
                    assert decide(subject, category, place, at, rulebook=book) == fresh, (category, place, at)
                text, instant = decide_json(subject, category, place, inside[0], rulebook=book)
                assert (text, instant) == (
                    evaluate(LAW, subject, category, place, inside[0], {})
                    .model_copy(update={"app": subject})
                    .model_dump_json(),
                    inside[0],
                )


def test_the_json_answer_spells_the_app_as_asked() -> None:
    text, _ = decide_json("TikTok", "cdn", "US", "2020-11-13T00:00:00+01:00")
    assert text == decide("TikTok", "cdn", "US", "2020-11-13T00:00:00+01:00").model_dump_json()
    assert '"app":"TikTok"' in text and '"at":"2020-11-12T23:00:00Z"' in text


def test_a_segment_is_evaluated_once() -> None:
    book = load_rulebook()
    first = decide("tiktok", "app_store_distribution", "US", "2021-03-01T00:00:00Z", rulebook=book)
    again = decide("tiktok", "app_store_distribution", "US", "2021-03-02T00:00:00Z", rulebook=book)
    assert again.at == "2021-03-02T00:00:00Z" and first.at == "2021-03-01T00:00:00Z"
    assert again.model_copy(update={"at": first.at}) == first
