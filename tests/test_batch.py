"""decide_table(): input forms, output columns and errors."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from appban import decide, decide_table
from appban.engine.batch import TableInputError


def table(**columns: list) -> pa.Table:
    return pa.table(columns)


def test_appends_decision_columns_and_rulebook_version(rulebook) -> None:  # type: ignore[no-untyped-def]
    out = decide_table(
        table(
            app=["tiktok", "WeChat"],
            transaction=["cdn", "cdn"],
            where=["US", "US"],
            at=["2020-11-20T00:00:00Z", "2021-07-01T00:00:00-04:00"],
        )
    )
    assert out.column_names == ["app", "transaction", "where", "at", "verdict", "as_written", "enforcement", "rule_ids"]
    assert out.column("verdict").to_pylist() == ["enjoined", "revoked"]
    assert out.column("as_written").to_pylist() == ["prohibited", "revoked"]
    assert out.column("rule_ids").to_pylist() == [["tiktok-item-3-cdn"], ["wechat-item-3-cdn"]]
    assert out.schema.metadata[b"appban.rulebook_version"] == rulebook.version.encode()


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamp_columns_in_any_unit(unit: str) -> None:
    start = dt.datetime(2020, 11, 13, 4, 59, tzinfo=dt.UTC)
    stamps = [start - dt.timedelta(microseconds=1000), start]
    out = decide_table(
        table(
            app=["tiktok"] * 2,
            transaction=["cdn"] * 2,
            where=["US"] * 2,
            at=pa.array(stamps, pa.timestamp(unit, tz="America/New_York")),
        )
    )
    # a millisecond before the start is before it, in every unit (seconds truncate towards the past)
    assert out.column("as_written").to_pylist() == ["not_yet_effective", "prohibited"]


def test_naive_instants_are_an_error_unless_a_zone_is_given() -> None:
    rows = table(app=["tiktok"], transaction=["cdn"], where=["US"], at=["2020-11-12T23:59:00"])
    with pytest.raises(TableInputError, match=r"no UTC offset|no time zone"):
        decide_table(rows)
    assert decide_table(rows, tz="America/New_York").column("as_written").to_pylist() == ["prohibited"]
    assert decide_table(rows, tz="-04:00").column("as_written").to_pylist() == ["not_yet_effective"]


def test_naive_timestamp_column_needs_a_zone() -> None:
    rows = table(
        app=["tiktok"],
        transaction=["cdn"],
        where=["US"],
        at=pa.array([dt.datetime(2020, 11, 12, 23, 59)], pa.timestamp("s")),
    )
    with pytest.raises(TableInputError, match="no time zone"):
        decide_table(rows)
    assert decide_table(rows, tz="America/New_York").column("as_written").to_pylist() == ["prohibited"]


def test_bad_rows_are_all_reported_with_row_and_column() -> None:
    rows = table(
        app=["tiktok", "tiktokk", "wechat", "wechat"],
        transaction=["cdn", "cdn", "streaming", "cdn"],
        where=["US", "US", "US", "XX"],
        at=["2020-11-20T00:00:00Z", "2020-11-20T00:00:00Z", "2020-11-20T00:00:00Z", "yesterday"],
    )
    with pytest.raises(TableInputError) as caught:
        decide_table(rows)
    found = {(e.row, e.column) for e in caught.value.errors}
    assert found == {(1, "app"), (2, "transaction"), (3, "where"), (3, "at")}


def test_missing_column() -> None:
    with pytest.raises(TableInputError, match="where: column is missing"):
        decide_table(table(app=["tiktok"], transaction=["cdn"], at=["2020-11-20T00:00:00Z"]))


def test_facts_column_is_read_per_row() -> None:
    at = "2020-09-22T00:00:00Z"
    out = decide_table(
        table(
            app=["wechat"] * 3,
            transaction=["funds_transfer"] * 3,
            where=["US"] * 3,
            at=[at] * 3,
            facts=[None, '{"user_to_user_transfer": true}', "{}"],
        )
    )
    assert out.column("as_written").to_pylist() == ["prohibited", "not_prohibited", "prohibited"]
    with pytest.raises(TableInputError, match="unknown fact"):
        decide_table(table(app=["wechat"], transaction=["cdn"], where=["US"], at=[at], facts=['{"nope": 1}']))


def test_empty_table() -> None:
    empty = pa.table({name: pa.array([], pa.string()) for name in ("app", "transaction", "where", "at")})
    assert decide_table(empty).num_rows == 0


def test_large_batch_matches_scalar_on_a_sample() -> None:
    apps = ["tiktok", "wechat", "capcut", "wechat_pay", "douyin", "alipay"]
    cats = ["app_store_distribution", "internet_hosting", "payment_processing", "government_device", "cdn"]
    places = ["US", "US-MT", "IN", "DE"]
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    rows = [(apps[i % 6], cats[i % 5], places[i % 4], start + dt.timedelta(hours=37 * i)) for i in range(5000)]
    out = decide_table(
        table(
            app=[r[0] for r in rows],
            transaction=[r[1] for r in rows],
            where=[r[2] for r in rows],
            at=pa.array([r[3] for r in rows], pa.timestamp("s", tz="UTC")),
        )
    ).to_pylist()
    for index in range(0, 5000, 97):
        app, category, where, at = rows[index]
        d = decide(app, category, where, at)
        assert out[index]["verdict"] == d.verdict.value and out[index]["rule_ids"] == d.rule_ids
