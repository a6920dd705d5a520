"""decide_table() row by row against decide() on generated tables: names and aliases, time zones given per
row or for the table, instants as text and as timestamps, facts as JSON, as NAME=VALUE and as columns, empty
and bad cells, and the coming changes. Both ways of numbering the rows' questions (a dense table and a sort)
and the compiled law starting again when full are exercised, as are several threads deciding at once."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from unittest import mock
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban import decide, decide_table, load_rulebook
from appban.engine import batch, compiled
from appban.engine.batch import TableInputError
from appban.engine.decide import DecisionInputError
from appban.engine.law import resolve
from appban.engine.rowfacts import facts_from_text
from appban.vocabulary import Category

BOOK = load_rulebook()
SUBJECTS = sorted(BOOK.subjects.subjects)
# Other spellings the rulebook knows for an app: distinct cells that are one question.
ALIASES = [name for s in SUBJECTS[:20] for name in (s.upper(), s.title()) if BOOK.subject_id(name) is not None]
PLACES = ["US", "US-MT", "US-CA", "US-TX", "PR", "GU", "IN", "IN-DL", "DE", "CN", "CA"]
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Europe/Berlin"]
FACT_TEXTS = [
    None,
    "",
    '{"user_to_user_transfer": true}',
    "agency_exception_granted=true",
    "personally_owned_device=no; wages_or_benefits=yes",
]
FACT_COLUMN = "federal_agency_device"  # given as a column of its own; no text above names it
BREAKPOINTS = sorted({t for s in SUBJECTS for t in resolve(BOOK).instants_for(s)})

LAW = resolve(BOOK)
ANY_TIME = st.datetimes(min_value=dt.datetime(2019, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC))
# Around the app's own breakpoints (the instant itself, just before and after it) is where mistakes hide.
NEAR = [dt.timedelta(0), dt.timedelta(seconds=-1), dt.timedelta(microseconds=-1), dt.timedelta(microseconds=500)]


@st.composite
def good_rows(draw: st.DrawFn) -> tuple:
    """One row: app, transaction, where, instant, how the instant is written, its zone, facts text, fact column."""
    subject = draw(st.sampled_from(SUBJECTS))
    own = LAW.instants_for(subject) or BREAKPOINTS
    at = draw(st.one_of(ANY_TIME, st.builds(lambda t, d: t + d, st.sampled_from(own), st.sampled_from(NEAR))))
    spellings = [subject, *(a for a in ALIASES if BOOK.subject_id(a) == subject)]
    return (
        draw(st.sampled_from(spellings)),
        draw(st.sampled_from([c.value for c in Category])),
        draw(st.sampled_from(PLACES)),
        at,
        draw(st.sampled_from(["z", "offset", "local"])),
        draw(st.sampled_from([*ZONES, ""])),
        draw(st.sampled_from(FACT_TEXTS)),
        draw(st.sampled_from([None, True, False])),
    )


BAD_CELLS = [("app", "no-such-app"), ("transaction", "nope"), ("where", None), ("where", "XX-!!"), ("at", "soon")]


def written(at: dt.datetime, form: str, zone: str) -> str:
    if form == "z":
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    local = at.astimezone(ZoneInfo(zone or "UTC"))
    return local.isoformat() if form == "offset" else local.replace(tzinfo=None).isoformat()


def build(rows: list[tuple], bad: list[tuple[int, str, str | None]]) -> tuple[pa.Table, list[dict]]:
    cells = []
    for app, transaction, where, at, form, zone, facts, column in rows:
        cells.append(
            {
                "app": app,
                "transaction": transaction,
                "where": where,
                "at": written(at, form, zone),
                "tz": zone,
                "facts": facts,
                FACT_COLUMN: column,
            }
        )
    for index, name, value in bad:
        cells[index % len(cells)][name] = value
    names = ["app", "transaction", "where", "at", "tz", "facts"]
    table = pa.table({**{n: pa.array([c[n] for c in cells], pa.string()) for n in names},
                      FACT_COLUMN: pa.array([c[FACT_COLUMN] for c in cells], pa.bool_())})  # fmt: skip
    return table, cells


def scalar(cell: dict, tz: str) -> dict | None:
    """What decide() says of one row, or None when it refuses the row (an empty cell, which decide() has no
    way to be given, is refused by the table)."""
    if any(cell[name] is None for name in ("app", "transaction", "where", "at")):
        return None
    facts = facts_from_text(BOOK, cell["facts"] or "")
    if cell[FACT_COLUMN] is not None:
        facts[FACT_COLUMN] = cell[FACT_COLUMN]
    try:
        d = decide(cell["app"], cell["transaction"], cell["where"], cell["at"], facts, tz=cell["tz"] or tz)
    except (DecisionInputError, TypeError, ValueError):
        return None
    return {
        "verdict": d.verdict.value,
        "as_written": d.as_written.value,
        "enforcement": d.enforcement.value,
        "rule_ids": d.rule_ids,
        "later": [change.instrument for change in d.later],
    }


def check(table: pa.Table, cells: list[dict], later: bool) -> None:
    tz = "America/Chicago"
    wanted = [scalar(cell, tz) for cell in cells]
    refused = [index for index, want in enumerate(wanted) if want is None]
    if refused:
        with pytest.raises(TableInputError) as raised:
            decide_table(table, tz=tz, rulebook=BOOK, later=later)
        reported = {error.row for error in raised.value.errors}
        assert reported <= set(refused) and min(refused) in reported
        return
    out = decide_table(table, tz=tz, rulebook=BOOK, later=later)
    assert out.schema.field("rule_ids").type == pa.list_(pa.string())
    names = ["verdict", "as_written", "enforcement", "rule_ids", *(["later"] if later else [])]
    got = out.select(names).to_pylist()
    for index, (row, want) in enumerate(zip(got, wanted, strict=True)):
        assert want is not None
        assert row == {name: want[name] for name in names}, f"row {index}: {cells[index]}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(good_rows(), min_size=1, max_size=30),
    st.lists(st.tuples(st.integers(0, 29), st.sampled_from(BAD_CELLS)), max_size=2),
    st.booleans(),
    st.booleans(),
)
def test_batch_equals_scalar_row_by_row(
    rows: list[tuple], bad: list[tuple[int, tuple[str, str | None]]], later: bool, sort: bool
) -> None:
    table, cells = build(rows, [(index, name, value) for index, (name, value) in bad])
    # `sort`: number the questions by sorting rather than through the dense table.
    with mock.patch.object(batch, "_DENSE_COMBINATIONS", 0 if sort else batch._DENSE_COMBINATIONS):
        check(table, cells, later)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(good_rows(), min_size=5, max_size=30), st.lists(good_rows(), min_size=5, max_size=30))
def test_compiled_law_starting_again_keeps_answers(first: list[tuple], second: list[tuple]) -> None:
    # Room for three questions only: the second table, and often the first alone, make it start again.
    width = len(compiled.compiled(BOOK).epochs) + 1
    with mock.patch.object(compiled, "_MAX_CELLS", 3 * width):
        for rows in (first, second, first):
            check(*build(rows, []), later=True)


def test_threads_deciding_at_once_on_a_fresh_rulebook() -> None:
    book, fresh = load_rulebook(), load_rulebook()
    book.derived.pop("compiled", None)
    start = dt.datetime(2019, 6, 1, tzinfo=dt.UTC)

    def table(seed: int) -> pa.Table:
        count = 400
        return pa.table(
            {
                "app": [SUBJECTS[(seed * 7 + i) % len(SUBJECTS)] for i in range(count)],
                "transaction": [list(Category)[(seed + i) % len(Category)].value for i in range(count)],
                "where": [PLACES[(seed + i * 3) % len(PLACES)] for i in range(count)],
                "at": pa.array([start + dt.timedelta(days=(seed * 13 + i * 5) % 2500) for i in range(count)]),
                "facts": [json.dumps({"user_to_user_transfer": True}) if i % 5 == 0 else None for i in range(count)],
            }
        ).cast(pa.schema([*(pa.field(n, pa.string()) for n in ("app", "transaction", "where")),
                          pa.field("at", pa.timestamp("us", tz="UTC")), pa.field("facts", pa.string())]))  # fmt: skip

    tables = [table(seed) for seed in range(8)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda t: decide_table(t, rulebook=book, later=True), tables))
    fresh.derived.pop("compiled", None)
    alone = [decide_table(t, rulebook=fresh, later=True) for t in tables]
    for mine, theirs in zip(together, alone, strict=True):
        assert mine.to_pylist() == theirs.to_pylist()
    sample = tables[3].to_pylist()[::37]
    decided = together[3].to_pylist()[::37]
    for row, out in zip(sample, decided, strict=True):
        d = decide(row["app"], row["transaction"], row["where"], row["at"], json.loads(row["facts"] or "{}"))
        assert out["verdict"] == d.verdict.value and out["rule_ids"] == d.rule_ids
