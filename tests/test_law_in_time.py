"""The law as it stood at T: an instrument counts only from the instant it was made.

Three invariants over the real rulebook, on random questions:
- removing every instrument made after T leaves the answer at T unchanged (apart from `later`, the
  coming changes, and the rulebook version, which names a different rulebook);
- a reference evaluator written apart from the engine (tests/reference_law.py) agrees with `decide()` and
  `decide_table()` on at least 10,000 questions a run: every app and alias, every category and place,
  random facts, and instants within two seconds of every instant the rulebook names, in several zones;
- `decide_table()` equals `decide()` row for row.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban import decide, decide_table, load_rulebook
from appban.engine.instants import parse_instant
from appban.vocabulary import Category
from tests.conftest import without
from tests.reference_law import boundaries, reference_decision

BOOK = load_rulebook()
NAMES = sorted({name for key, s in BOOK.subjects.subjects.items() for name in (key, s.name, *s.aliases)})
PLACES = sorted(
    {m for group in BOOK.places.groups.values() for m in group.members}
    | {"US-MT", "US-CA", "US-DC", "IN-DL", "IN-MH", "DE", "CN", "FR", "CA", "SG", "HK", "BR"}
)
ZONES = [
    dt.UTC,
    ZoneInfo("America/New_York"),
    ZoneInfo("America/Los_Angeles"),
    ZoneInfo("America/Denver"),
    ZoneInfo("Asia/Kolkata"),
    ZoneInfo("Pacific/Kiritimati"),  # +14:00
    ZoneInfo("Pacific/Pago_Pago"),  # -11:00
    dt.timezone(dt.timedelta(hours=-5)),
]
EDGES = boundaries(BOOK)
BOOL_FACTS = sorted(name for name, spec in BOOK.facts.facts.items() if spec.type == "bool")

near_an_edge = st.builds(
    lambda t, s: t + dt.timedelta(seconds=s), st.sampled_from(EDGES), st.integers(min_value=-2, max_value=2)
)
anywhen = st.datetimes(
    min_value=dt.datetime(2018, 1, 1), max_value=dt.datetime(2027, 12, 31), timezones=st.just(dt.UTC)
)
instants = st.builds(
    lambda t, zone: t.astimezone(zone).isoformat(),
    st.one_of(near_an_edge, near_an_edge, anywhen),
    st.sampled_from(ZONES),
)
facts = st.dictionaries(st.sampled_from(BOOL_FACTS), st.booleans(), max_size=3)
questions = st.tuples(
    st.sampled_from(NAMES), st.sampled_from([c.value for c in Category]), st.sampled_from(PLACES), instants, facts
)


def _table(batch: list[tuple]) -> pa.Table:
    """The questions as decide_table() reads them."""
    names = ("app", "transaction", "where", "at")
    columns = {name: [q[i] for q in batch] for i, name in enumerate(names)}
    return pa.table(columns | {"facts": [json.dumps(q[4]) for q in batch]})


def _outcome(decision: dict) -> tuple:
    return (decision["verdict"], decision["as_written"], decision["enforcement"], sorted(decision["rule_ids"]))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(questions, min_size=200, max_size=200))
def test_the_engine_agrees_with_the_reference_evaluator(batch: list[tuple]) -> None:
    """50 runs of 200 questions: 10,000 questions through decide(), decide_table() and the reference."""
    table = _table(batch)
    rows = decide_table(table).to_pylist()
    for (app, category, where, at, known_facts), row in zip(batch, rows, strict=True):
        expected = reference_decision(BOOK, app, category, where, parse_instant(at), known_facts)
        decision = decide(app, category, where, at, known_facts)
        scalar = {
            "verdict": decision.verdict.value,
            "as_written": decision.as_written.value,
            "enforcement": decision.enforcement.value,
            "rule_ids": decision.rule_ids,
        }
        question = (app, category, where, at, known_facts)
        assert _outcome(scalar) == _outcome(expected), question
        assert _outcome(row) == _outcome(expected), question
        assert row["rule_ids"] == decision.rule_ids, question  # the same trail order, too


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(questions)
def test_instruments_made_after_the_instant_change_nothing_in_the_answer(question: tuple) -> None:
    app, category, where, at, known_facts = question
    instant = parse_instant(at)
    later = tuple(key for key, instrument in BOOK.instruments.items() if instrument.made.instant > instant)
    as_it_stood = without(BOOK, ids=later)
    full = decide(app, category, where, at, known_facts).model_dump(mode="json")
    reduced = decide(app, category, where, at, known_facts, rulebook=as_it_stood).model_dump(mode="json")
    assert reduced["later"] == []
    for answer in (full, reduced):
        del answer["later"], answer["rulebook_version"]
    assert full == reduced
    # and the coming changes name only instruments made after the instant, in the order they were made
    coming = decide(app, category, where, at, known_facts).later
    assert all(change.instrument in later for change in coming)
    assert [c.made for c in coming] == sorted(c.made for c in coming)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(questions, min_size=50, max_size=50))
def test_decide_table_lists_the_coming_changes_decide_lists(batch: list[tuple]) -> None:
    table = _table(batch)
    with_later = decide_table(table, later=True)
    assert with_later.drop_columns(["later"]).equals(decide_table(table))  # it changes nothing else
    for question, coming in zip(batch, with_later.column("later").to_pylist(), strict=True):
        assert coming == [change.instrument for change in decide(*question).later], question


def test_a_coming_change_never_moves_the_verdict_and_says_how_it_would_read() -> None:
    hosting = decide("tiktok", "internet_hosting", "US", "2021-07-01T12:00:00-04:00")
    assert (hosting.verdict.value, hosting.as_written.value) == ("revoked", "revoked")
    assert "pafaca-2024" not in {c.instrument for c in hosting.citations}
    assert [(c.instrument, c.made, c.verdict.value) for c in hosting.later] == [
        ("pafaca-2024", "2024-04-24T04:00:00Z", "not_yet_effective")
    ]
    assert "pafaca-2a1-hosting" in hosting.later[0].effect
    # EO 14166 (signed the evening of 20 Jan 2025) reaches back to 19 Jan, but only once it exists
    sunday = decide("tiktok", "app_store_distribution", "US", "2025-01-19T12:00:00-05:00")
    assert (sunday.verdict.value, sunday.enforcement.value) == ("prohibited", "enforceable")
    assert [(c.instrument, c.enforcement.value) for c in sunday.later] == [("eo-14166", "suspended")]
    assert sunday.later[0].made_doubt  # the hour is a report's, with the other reading beside it
    monday = decide("tiktok", "app_store_distribution", "US", "2025-01-21T12:00:00-05:00")
    assert (monday.verdict.value, monday.enforcement.value) == ("prohibited", "suspended")


def test_answers_before_any_order_are_not_prohibited() -> None:
    cases = [
        ("tiktok", "app_store_distribution", "US", "2019-06-01T12:00:00-04:00", "not_prohibited"),
        ("tiktok", "government_device", "US", "2022-06-01T12:00:00-04:00", "not_prohibited"),
        ("douyin", "app_store_distribution", "US", "2020-10-15T12:00:00-04:00", "not_prohibited"),
        ("tiktok", "app_store_distribution", "IN", "2020-06-28T12:00:00+05:30", "not_prohibited"),
        ("tiktok", "app_store_distribution", "IN", "2020-06-29T12:00:00+05:30", "prohibited"),
        ("tiktok", "internet_hosting", "US", "2020-09-17T12:00:00-04:00", "not_prohibited"),
        ("tiktok", "internet_hosting", "US", "2020-09-18T12:00:00-04:00", "not_yet_effective"),
    ]
    for app, category, where, at, verdict in cases:
        answer = decide(app, category, where, at)
        assert answer.verdict.value == verdict, (app, category, where, at)
    douyin = decide("douyin", "app_store_distribution", "US", "2020-10-15T12:00:00-04:00")
    assert not {line.rule_id for line in douyin.rules} & {"pafaca-2a1-marketplace", "pafaca-2a1-hosting"}


def test_answers_in_2020_never_list_or_cite_pafaca() -> None:
    for category in Category:
        answer = decide("tiktok", category, "US", "2020-11-20T00:00:00Z")
        assert not any(line.instrument == "pafaca-2024" for line in answer.rules), category
        assert not any("118-50" in c.cite for c in answer.citations), category
        assert not any("118-50" in note or "PAFACA" in note for note in answer.notes + answer.uncertainties)


def test_the_time_zone_of_the_question_does_not_matter() -> None:
    instant = dt.datetime(2020, 9, 28, 3, 59, tzinfo=dt.UTC)
    answers = {
        json.dumps(decide("tiktok", "app_store_update", "US", instant.astimezone(zone)).model_dump(mode="json"))
        for zone in ZONES
    }
    assert len(answers) == 1


def test_exports_for_november_2020_cite_only_the_law_of_2020() -> None:
    from typer.testing import CliRunner

    from appban.cli import app

    runner = CliRunner()
    at = "2020-11-20T00:00:00Z"
    jamf = runner.invoke(
        app,
        ["export", "mdm", "--where", "US", "--at", at, "--format", "jamf", "--include-enjoined",
         "--transaction", "app_store_distribution"],
    )  # fmt: skip
    rpz = runner.invoke(
        app, ["export", "blocklist", "--where", "US", "--at", at, "--format", "rpz", "--include-enjoined"]
    )
    for result in (jamf, rpz):
        assert result.exit_code == 0, result.output
        assert "85 FR 60061" in result.stdout  # the TikTok identification, enjoined then
        assert "118-50" not in result.stdout and "pafaca" not in result.stdout.lower()
    assert "com.zhiliaoapp.musically" in jamf.stdout and "lemon8" not in jamf.stdout.lower()


def test_check_shows_coming_changes_under_their_own_heading() -> None:
    from typer.testing import CliRunner

    from appban.cli import app

    args = ["check", "--app", "tiktok", "--transaction", "internet_hosting", "--where", "US"]
    shown = CliRunner().invoke(app, [*args, "--at", "2021-07-01T12:00:00-04:00"], terminal_width=200)
    assert shown.exit_code == 0 and shown.stdout.index("REVOKED") < shown.stdout.index("Coming changes")
    assert "2024-04-24T04:00:00Z  PAFACA [pafaca-2024]" in shown.stdout.split("Coming changes")[1]
    today = CliRunner().invoke(app, [*args, "--at", "2026-06-01T00:00:00Z"], terminal_width=200)
    assert today.exit_code == 0 and "Coming changes" not in today.stdout


def test_decide_later_adds_the_coming_changes_as_a_column(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from appban.cli import app

    questions = tmp_path / "questions.csv"
    questions.write_text(
        "app,transaction,where,at\n"
        "tiktok,internet_hosting,US,2021-07-01T12:00:00-04:00\n"
        "tiktok,internet_hosting,US,2026-06-01T00:00:00Z\n"
    )
    plain = CliRunner().invoke(app, ["decide", str(questions), "--format", "csv"])
    with_later = CliRunner().invoke(app, ["decide", str(questions), "--format", "csv", "--later"])
    assert plain.exit_code == with_later.exit_code == 0
    header, *rows = with_later.stdout.splitlines()
    assert header.endswith(',"later"') and '"later"' not in plain.stdout
    assert [row.rsplit(",", 1)[1] for row in rows] == ['"pafaca-2024"', '""']
    # the answer itself is the same with or without the column
    assert [row.rsplit(",", 1)[0] for row in rows] == plain.stdout.splitlines()[1:]
