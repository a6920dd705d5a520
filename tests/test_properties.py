"""Properties that must hold for any transaction and any instant."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban import Rulebook, decide, decide_table, load_rulebook
from appban.engine.law import resolve
from appban.engine.timeline import timeline
from appban.vocabulary import Category
from tests.conftest import without

BOOK = load_rulebook()
NO_COURTS = without(BOOK, "court_order")
SUBJECTS = sorted(BOOK.subjects.subjects)
PLACES = ["US", "US-MT", "US-CA", "PR", "GU", "IN", "IN-DL", "DE", "CN", "CA"]
FACTS = [None, {"user_to_user_transfer": True}, {"agency_exception_granted": True}, {"personally_owned_device": False}]

instants = st.datetimes(min_value=dt.datetime(2019, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC))
# Instants near the law's own breakpoints are where mistakes hide, so draw those often.
BREAKPOINTS = sorted({t for s in SUBJECTS for t in resolve(BOOK).instants_for(s)})
near_breakpoints = st.builds(lambda t, s: t + dt.timedelta(seconds=s), st.sampled_from(BREAKPOINTS), st.integers(-3, 3))
any_instant = st.one_of(instants, near_breakpoints)
transactions = st.tuples(
    st.sampled_from(SUBJECTS),
    st.sampled_from(list(Category)),
    st.sampled_from(PLACES),
    any_instant,
    st.sampled_from(FACTS),
)


@settings(max_examples=300, deadline=None)
@given(transactions)
def test_court_orders_never_change_as_written(tx: tuple) -> None:
    app, category, where, at, facts = tx
    with_courts = decide(app, category, where, at, facts)
    without_courts = decide(app, category, where, at, facts, rulebook=NO_COURTS)
    assert with_courts.as_written == without_courts.as_written
    # and the verdict without courts is exactly what the instruments say
    assert without_courts.verdict == with_courts.as_written


@settings(max_examples=300, deadline=None)
@given(transactions)
def test_verdict_is_a_function_of_its_inputs(tx: tuple) -> None:
    app, category, where, at, facts = tx
    first = decide(app, category, where, at, facts)
    again = decide(app, category, where, at.astimezone(dt.timezone(dt.timedelta(hours=-5))), facts)
    assert first == again  # the same instant in another offset is the same question


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SUBJECTS),
    st.sampled_from(PLACES),
    st.sampled_from(list(Category)),
    st.lists(any_instant, min_size=2, max_size=6),
)
def test_verdicts_are_piecewise_constant_between_timeline_instants(
    app: str, where: str, category: Category, probes: list[dt.datetime]
) -> None:
    changes = [c for c in timeline(app, where, categories=[category]).changes]
    cuts = sorted(dt.datetime.fromisoformat(c.at.replace("Z", "+00:00")) for c in changes)

    def segment(t: dt.datetime) -> int:
        return sum(1 for cut in cuts if cut <= t)

    seen: dict[int, tuple] = {}
    for t in probes:
        d = decide(app, category, where, t)
        outcome = (d.verdict, d.as_written, d.enforcement)
        assert seen.setdefault(segment(t), outcome) == outcome, f"verdict changed inside a segment at {t}"
    for change in changes:  # and at each reported instant it does change
        t = dt.datetime.fromisoformat(change.at.replace("Z", "+00:00"))
        before, after = decide(app, category, where, t - dt.timedelta(seconds=1)), decide(app, category, where, t)
        assert (before.verdict, before.as_written, before.enforcement) != (
            after.verdict,
            after.as_written,
            after.enforcement,
        )


@settings(max_examples=40, deadline=None)
@given(st.lists(transactions, min_size=1, max_size=40))
def test_batch_form_equals_scalar_form(rows: list[tuple]) -> None:
    import json

    table = pa.table(
        {
            "app": [r[0] for r in rows],
            "transaction": [r[1].value for r in rows],
            "where": [r[2] for r in rows],
            "at": pa.array([r[3] for r in rows], pa.timestamp("us", tz="UTC")),
            "facts": [json.dumps(r[4]) if r[4] else None for r in rows],
        }
    )
    out = decide_table(table).to_pylist()
    for row, (app, category, where, at, facts) in zip(out, rows, strict=True):
        d = decide(app, category, where, at, facts)
        assert (row["verdict"], row["as_written"], row["enforcement"], row["rule_ids"]) == (
            d.verdict.value,
            d.as_written.value,
            d.enforcement.value,
            d.rule_ids,
        )


def test_rulebook_without_courts_is_smaller(rulebook: Rulebook) -> None:
    kinds = {i.kind for i in NO_COURTS.instruments.values()}
    assert "court_order" not in kinds and len(NO_COURTS.instruments) < len(rulebook.instruments)
