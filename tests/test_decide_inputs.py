"""Decisions in batches as users bring them: facts as JSON or NAME=VALUE, columns named after a fact, a zone
per row, and JSON lines whose later lines carry fields the first did not. Every row must be decided as
decide() (and POST /v1/decide) decides it alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from appban import decide, decide_table
from appban.cli import app as cli
from appban.engine import batch
from appban.engine.batch import TableInputError
from appban.service import bodies
from appban.service.app import create_app
from appban.service.bodies import BatchBodyError, JSONLines, lines_named
from appban.service.settings import ServiceSettings

# The example: a user-to-user WeChat transfer while the injunction was in force is not prohibited
# (the WeChat identification exempts it), while a plain one is enjoined.
TRANSFER: dict[str, Any] = {
    "app": "wechat",
    "transaction": "funds_transfer",
    "where": "US",
    "at": "2020-09-22T12:00:00-04:00",
}
USER_TO_USER = {"user_to_user_transfer": True}


def rows(count: int, **columns: Any) -> pa.Table:
    base: dict[str, Any] = {name: [value] * count for name, value in TRANSFER.items()}
    return pa.table(base | columns)


def verdicts(table: pa.Table) -> list[str]:
    return [str(value) for value in table.column("verdict").to_pylist()]


def test_the_examples_stand_as_decide_answers_them() -> None:
    assert decide(**TRANSFER, facts=USER_TO_USER).verdict.value == "not_prohibited"
    assert decide(**TRANSFER).verdict.value == "enjoined"


# ------------------------------------------------------------------------------------------------
# The facts column: JSON or NAME=VALUE


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('{"user_to_user_transfer": true}', "not_prohibited"),
        ("user_to_user_transfer=true", "not_prohibited"),
        (" user_to_user_transfer = yes ; wages_or_benefits=0; ", "not_prohibited"),
        ("user_to_user_transfer=1;user_to_user_transfer=1", "not_prohibited"),
        ("user_to_user_transfer=no", "enjoined"),
        ("", "enjoined"),
        (None, "enjoined"),
    ],
)
def test_facts_cells_are_json_or_name_value_pairs(cell: str | None, expected: str) -> None:
    assert verdicts(decide_table(rows(1, facts=pa.array([cell], pa.string())))) == [expected]


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("user_to_user_transfer", "'user_to_user_transfer' is not NAME=VALUE"),
        ("=true", "'=true' is not NAME=VALUE"),
        ("user_to_user_transfer=maybe", "fact 'user_to_user_transfer' is true or false, got 'maybe'"),
        ("user_to_user_transfer=", "fact 'user_to_user_transfer' is true or false, got ''"),
        ("user_to_user_transfer=yes;user_to_user_transfer=no", "given twice"),
        ("no_such_fact=true", "unknown fact 'no_such_fact'"),
        ('{"user_to_user_transfer": true', "not a JSON object"),
        ("[1, 2]", "is not NAME=VALUE"),
    ],
)
def test_bad_facts_cells_are_row_errors_naming_the_column(cell: str, said: str) -> None:
    table = rows(3, facts=[None, cell, cell])
    with pytest.raises(TableInputError) as caught:
        decide_table(table)
    (error,) = caught.value.errors
    assert (error.row, error.column) == (1, "facts")
    assert said in error.message and error.message.endswith("(2 rows)")


def test_unknown_facts_are_refused_in_the_words_decide_uses() -> None:
    with pytest.raises(ValueError, match="unknown fact") as scalar:
        decide(**TRANSFER, facts={"no_such_fact": True})
    with pytest.raises(TableInputError) as batched:
        decide_table(rows(1, facts=["no_such_fact=true"]))
    assert batched.value.errors[0].message == str(scalar.value).split(": ", 1)[1]


# ------------------------------------------------------------------------------------------------
# Columns named after a fact


@pytest.mark.parametrize(
    "column",
    [
        pa.array(["yes", "no", "", None, "TRUE", " 0 "]),
        pa.array([True, False, None, None, True, False]),
        pa.array([1, 0, None, None, 1, 0], pa.int64()),
        pa.array(["true", "false", None, None, "1", "no"]).dictionary_encode(),
    ],
    ids=["text", "bool", "int", "dictionary"],
)
def test_a_column_named_after_a_fact_is_that_fact(column: pa.Array) -> None:
    decided = decide_table(rows(6, user_to_user_transfer=column))
    # Empty and null are unknown: the exception is only possible, so the enjoined prohibition stands.
    assert verdicts(decided) == ["not_prohibited", "enjoined", "enjoined", "enjoined", "not_prohibited", "enjoined"]
    assert decided.column("user_to_user_transfer").to_pylist() == column.to_pylist()


def test_fact_columns_and_facts_agree_or_the_row_is_an_error() -> None:
    agreeing = rows(
        3,
        facts=['{"user_to_user_transfer": true}', "wages_or_benefits=no", None],
        user_to_user_transfer=["yes", "true", None],
    )
    assert verdicts(decide_table(agreeing)) == ["not_prohibited", "not_prohibited", "enjoined"]
    disagreeing = rows(4, facts=[None, "user_to_user_transfer=no", "user_to_user_transfer=no", "{}"])
    disagreeing = disagreeing.append_column("user_to_user_transfer", pa.array([True, True, True, False]))
    with pytest.raises(TableInputError) as caught:
        decide_table(disagreeing)
    (error,) = caught.value.errors
    assert (error.row, error.column) == (1, "user_to_user_transfer")
    assert error.message == "true here, but false in the facts column (2 rows)"


def test_fact_columns_of_another_type_or_named_twice_are_refused() -> None:
    with pytest.raises(TableInputError, match="user_to_user_transfer: column type double is not true/false"):
        decide_table(rows(1, user_to_user_transfer=[1.0]))
    twice = rows(1).append_column("wages_or_benefits", pa.array(["no"])).append_column("wages_or_benefits", [["no"]])
    with pytest.raises(TableInputError, match="wages_or_benefits: the column appears 2 times"):
        decide_table(twice)
    with pytest.raises(TableInputError) as caught:
        decide_table(rows(2, wages_or_benefits=["no", "perhaps"]))
    assert [(e.row, e.column) for e in caught.value.errors] == [(1, "wages_or_benefits")]


# ------------------------------------------------------------------------------------------------
# A zone per row


def test_each_row_is_read_in_its_own_zone() -> None:
    # 23:59 on 12 November 2020 is before the CDN prohibition's start (23:59 eastern standard time) in UTC,
    # at it in New York, and after it in Los Angeles; each row's own zone decides which.
    table = pa.table(
        {
            "app": ["tiktok"] * 5,
            "transaction": ["cdn"] * 5,
            "where": ["US"] * 5,
            "at": ["2020-11-12T23:59:00"] * 4 + ["2020-11-12T23:59:00Z"],
            "tz": ["UTC", "America/New_York", "America/Los_Angeles", None, "Mars/Olympus"],
        }
    )
    expected = [
        decide("tiktok", "cdn", "US", "2020-11-12T23:59:00", tz=zone).as_written.value
        for zone in ("UTC", "America/New_York", "America/Los_Angeles", "-05:00")
    ] + [decide("tiktok", "cdn", "US", "2020-11-12T23:59:00Z", tz="Mars/Olympus").as_written.value]
    assert len(set(expected)) == 2  # the zone changes the answer, or this test would prove nothing
    decided = decide_table(table, tz="-05:00")  # the argument stands in for the row without a zone
    assert decided.column("as_written").to_pylist() == expected
    with pytest.raises(TableInputError) as caught:
        decide_table(table.set_column(4, "tz", pa.array(["UTC", "Mars/Olympus", None, "Mars/Olympus", None])))
    assert [(e.row, e.column) for e in caught.value.errors] == [(1, "at"), (2, "at")]
    assert "unknown time zone 'Mars/Olympus'" in caught.value.errors[0].message
    assert "no UTC offset" in caught.value.errors[1].message


def test_a_naive_timestamp_column_takes_each_rows_zone() -> None:
    import datetime as dt

    naive = pa.array([dt.datetime(2020, 11, 12, 23, 59)] * 2, pa.timestamp("s"))
    table = pa.table(
        {"app": ["tiktok"] * 2, "transaction": ["cdn"] * 2, "where": ["US"] * 2, "at": naive, "tz": ["UTC", "EST"]}
    )
    assert decide_table(table).column("as_written").to_pylist() == ["not_yet_effective", "prohibited"]


def test_zones_past_the_limit_are_refused_naming_the_first_row_beyond(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "_MAX_ZONES", 2)
    zones = ["UTC", "UTC", "-05:00", "Asia/Kolkata", "UTC"]
    table = rows(5, at=["2020-09-22T12:00:00"] * 5, tz=zones)
    with pytest.raises(TableInputError) as caught:
        decide_table(table)
    assert [(e.row, e.column) for e in caught.value.errors] == [(3, "tz")]
    # With an offset on every instant no zone is read, however many are named.
    assert decide_table(rows(5, tz=zones)).num_rows == 5


# ------------------------------------------------------------------------------------------------
# The decide command


def test_the_decide_command_reads_fact_columns_facts_pairs_and_zones(tmp_path: Path) -> None:
    path = tmp_path / "transfers.csv"
    path.write_text(
        "app,transaction,where,at,facts,user_to_user_transfer,tz\n"
        "wechat,funds_transfer,US,2020-09-22T12:00:00-04:00,,true,\n"
        "wechat,funds_transfer,US,2020-09-22T12:00:00,user_to_user_transfer=yes,,America/New_York\n"
        "wechat,funds_transfer,US,2020-09-22T12:00:00,,,\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["decide", str(path), "--format", "json", "--tz", "-04:00"])
    assert result.exit_code == 0, result.output
    assert [row["verdict"] for row in json.loads(result.stdout)["rows"]] == ["not_prohibited"] * 2 + ["enjoined"]
    # The same rows from Parquet, where the fact column is boolean.
    table = rows(2, user_to_user_transfer=pa.array([True, None]))
    pq.write_table(table, tmp_path / "transfers.parquet")
    result = CliRunner().invoke(cli, ["decide", str(tmp_path / "transfers.parquet"), "--format", "json"])
    assert [row["verdict"] for row in json.loads(result.stdout)["rows"]] == ["not_prohibited", "enjoined"]


def test_the_decide_command_names_file_line_and_field_and_decides_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "app,transaction,where,at,facts,user_to_user_transfer\n"
        "wechat,funds_transfer,US,2020-09-22T12:00:00-04:00,user_to_user_transfer=no,yes\n"
        "wechat,funds_transfer,US,2020-09-22T12:00:00-04:00,,\n"
        "wechat,funds_transfer,US,2020-09-22T12:00:00-04:00,transfer,maybe\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["decide", str(path), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{path}:2: user_to_user_transfer: true here, but false in the facts column" in result.output
    assert f"{path}:4: facts: 'transfer'" in result.output
    assert f"{path}:4: user_to_user_transfer: 'maybe'" in result.output
    assert not out.exists()


# ------------------------------------------------------------------------------------------------
# JSON lines


def decoded(lines: list[dict[str, Any] | str], cut_every: int = 0) -> tuple[pa.Table, Any]:
    """Lines through the service's decoder, fed in blocks of `cut_every` lines (0: one block)."""
    texts = [line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines]
    decoder = JSONLines()
    step = cut_every or len(texts) or 1
    for start in range(0, len(texts), step):
        decoder.feed("".join(text + "\n" for text in texts[start : start + step]).encode())
    return decoder.table()


def test_a_field_that_first_appears_in_a_late_block_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "_ROWS_PER_TABLE", 100)  # many Arrow tables, each from the lines seen so far
    lines: list[dict[str, Any] | str] = [TRANSFER] * 5000
    lines += [TRANSFER | {"facts": USER_TO_USER}, TRANSFER | {"at": "2020-09-22T12:00:00", "tz": "-04:00"}, ""]
    lines += [TRANSFER | {"at": "2020-09-22T12:00:00", "tz": "America/New_York", "facts": USER_TO_USER}]
    table, line_numbers = decoded(lines, cut_every=700)
    assert table.column_names == ["app", "transaction", "where", "at", "facts", "tz"]
    assert line_numbers[-3:].tolist() == [5001, 5002, 5004]
    assert verdicts(decide_table(table))[-4:] == ["enjoined", "not_prohibited", "enjoined", "not_prohibited"]


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (TRANSFER | {"id": 7}, "line 2: id: unknown field (a line holds app, transaction, where, at, facts, tz)"),
        (TRANSFER | {"user_to_user_transfer": True}, "line 2: user_to_user_transfer: unknown field"),
        (TRANSFER | {"fact": USER_TO_USER}, "line 2: fact: unknown field"),
        (TRANSFER | {"facts": "user_to_user_transfer=true"}, "line 2: facts: not a JSON object"),
        (TRANSFER | {"tz": 5}, "line 2: tz: not text"),
        (TRANSFER | {"app": None}, "line 2: app: null (leave the field out, or give a value)"),
        (TRANSFER | {"at": None}, "line 2: at: null"),
    ],
)
def test_lines_are_what_decide_takes(line: dict[str, Any], said: str) -> None:
    with pytest.raises(BatchBodyError) as caught:
        decoded([TRANSFER, line])
    assert str(caught.value) == said or str(caught.value).startswith(said)


# ------------------------------------------------------------------------------------------------
# The service


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    options = ServiceSettings(db_url=f"sqlite:///{tmp_path / 'audit.db'}", upload_dir=tmp_path, open_reads=True)
    with TestClient(create_app(options), raise_server_exceptions=False) as client:
        yield client


def test_every_line_of_a_batch_is_answered_as_decide_answers_it(api: TestClient) -> None:
    lines = [
        TRANSFER,
        TRANSFER | {"facts": USER_TO_USER},
        TRANSFER | {"at": "2020-09-22T12:00:00", "tz": "America/New_York"},
        TRANSFER | {"at": "2020-09-22T12:00:00", "tz": "Asia/Shanghai", "facts": {"user_to_user_transfer": "no"}},
        TRANSFER | {"tz": None, "facts": {}},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    answered = api.post("/v1/decide/batch", content=body, headers={"content-type": "application/x-ndjson"})
    assert answered.status_code == 200, answered.text
    got = [json.loads(line) for line in answered.text.splitlines()]
    alone = [api.post("/v1/decide", json=line).json() for line in lines]
    for name in ("verdict", "as_written", "enforcement"):
        assert [row[name] for row in got] == [row[name] for row in alone]
    assert [(row["verdict"], row["as_written"], row["enforcement"], row["rule_ids"]) for row in got] == [
        _alone(line) for line in lines
    ]
    assert [row["verdict"] for row in got][:2] == ["enjoined", "not_prohibited"]
    # An unknown key is refused by both, naming it.
    refused = api.post(
        "/v1/decide/batch",
        content=body + json.dumps(TRANSFER | {"timezone": "UTC"}) + "\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("line 6: timezone: unknown field")
    assert api.post("/v1/decide", json=TRANSFER | {"timezone": "UTC"}).status_code == 422
    # A null is taken where /v1/decide takes it (tz, facts) and refused where it refuses it (app).
    for field, status in (("tz", 200), ("facts", 200), ("app", 422)):
        line = TRANSFER | {field: None}
        alone = api.post("/v1/decide", json=line).status_code
        batch = api.post(
            "/v1/decide/batch", content=json.dumps(line) + "\n", headers={"content-type": "application/x-ndjson"}
        )
        assert (alone, batch.status_code) == (status, 200 if status == 200 else 400), batch.text


def test_an_arrow_batch_reads_fact_columns_and_zones(api: TestClient) -> None:
    table = rows(
        3,
        at=["2020-09-22T12:00:00-04:00", "2020-09-22T12:00:00", "2020-09-22T12:00:00"],
        tz=[None, "America/New_York", None],
        user_to_user_transfer=pa.array([True, None, True]),
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = "application/vnd.apache.arrow.stream"
    answered = api.post("/v1/decide/batch", content=sink.getvalue().to_pybytes(), headers={"content-type": arrow})
    assert answered.status_code == 400  # the last row's instant has no offset and no zone
    assert answered.json()["error"]["message"].startswith("row 2: at:")
    table = table.set_column(table.column_names.index("tz"), "tz", pa.array([None, "America/New_York", "-04:00"]))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    answered = api.post("/v1/decide/batch", content=sink.getvalue().to_pybytes(), headers={"content-type": arrow})
    decided = pa.ipc.open_stream(answered.content).read_all()
    assert verdicts(decided) == ["not_prohibited", "enjoined", "not_prohibited"]


def test_the_openapi_document_says_what_a_batch_holds(api: TestClient) -> None:
    content = api.get("/openapi.json").json()["paths"]["/v1/decide/batch"]["post"]["requestBody"]["content"]
    lines = content["application/x-ndjson"]["schema"]["description"]
    assert "DecideRequest" in lines and "tz" in lines and "refused" in lines
    columns = content["application/vnd.apache.arrow.stream"]["schema"]["description"]
    assert "tz" in columns and "NAME=VALUE" in columns and "a column per fact" in columns


# ------------------------------------------------------------------------------------------------
# Property: a batch is its lines, each decided alone

_AT = [
    "2020-09-20T12:00:00Z",
    "2020-09-22T12:00:00-04:00",
    "2020-09-22T12:00:00",
    "2020-11-01T01:30:00",  # twice in New York: the first is meant, as decide() reads it
    "2020-11-12T23:59:00",
    "2021-06-09T12:00:00",
    "2025-01-19T12:00:00+00:00",
    "yesterday",
]
_LINE = st.fixed_dictionaries(
    {
        "app": st.sampled_from(["wechat", "WeChat", "微信", "tiktok", "TikTok"]),
        "transaction": st.sampled_from(["funds_transfer", "payment_processing", "cdn", "app_store_distribution"]),
        "where": st.sampled_from(["US", "US-MT", "IN"]),
        "at": st.sampled_from(_AT),
    },
    optional={
        "tz": st.sampled_from([None, "UTC", "America/New_York", "-04:00", "Asia/Kolkata", "Mars/Olympus"]),
        "facts": st.one_of(
            st.none(),
            st.dictionaries(
                st.sampled_from(["user_to_user_transfer", "wages_or_benefits", "no_such_fact"]),
                st.sampled_from([True, False, "yes", "no", "maybe"]),
                max_size=2,
            ),
        ),
    },
)


def _alone(line: dict[str, Any]) -> tuple[str, str, str, list[str]] | None:
    """decide() on the line alone, or None when it refuses it (a null tz or facts is a field not given)."""
    try:
        d = decide(
            line["app"], line["transaction"], line["where"], line["at"], line.get("facts") or {}, tz=line.get("tz")
        )
    except ValueError:
        return None
    return d.verdict.value, d.as_written.value, d.enforcement.value, d.rule_ids


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINE, min_size=1, max_size=40), cut_every=st.integers(0, 7), per_table=st.integers(1, 9))
def test_a_batch_answers_each_line_as_decide_answers_it_alone(
    lines: list[dict[str, Any]], cut_every: int, per_table: int
) -> None:
    expected = [_alone(line) for line in lines]
    with mock.patch.object(bodies, "_ROWS_PER_TABLE", per_table):
        table, line_numbers = decoded(list(lines), cut_every)
    bad = {number for number, answer in enumerate(expected, start=1) if answer is None}
    try:
        decided = decide_table(table)
    except TableInputError as exc:
        named = {error.row for error in lines_named(exc, line_numbers).errors}
        assert bad and named <= bad and min(bad) in named
        return
    assert not bad
    got = zip(
        *(decided.column(name).to_pylist() for name in ("verdict", "as_written", "enforcement", "rule_ids")),
        strict=True,
    )
    assert [tuple(row) for row in got] == expected
