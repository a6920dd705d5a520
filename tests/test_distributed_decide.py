"""decide_spark and decide_dask answer row for row as the engine's decide_table does in process, on a real
local Spark session and a real Dask LocalCluster (threads: the worker-process cache is tested with network
classification in test_distributed.py). Bad rows get their own error; refusals of a whole table come from
the driver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from appban.distributed.core import Knowledge
from appban.distributed.decide import decide_batches
from appban.engine.batch import decide_table
from tests.test_distributed import _require

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

ROWS = 3_000
APPS = ["tiktok", "wechat", "WeChat", "douyin", "alipay", "capcut"]
TRANSACTIONS = ["app_store_distribution", "payment_processing", "funds_transfer", "internet_hosting"]
PLACES = ["US", "US-CA", "IN", "CN", "GB"]
BAD = {7: ("app", "no-such-app"), 1500: ("transaction", "bogus"), 2999: ("at", "not a time")}


def _table(rows: int = ROWS, seed: int = 18) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    at = [
        start + dt.timedelta(days=int(d), seconds=int(s))
        for d, s in zip(rng.integers(0, 3000, rows), rng.integers(0, 86400, rows), strict=True)
    ]
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "app": pa.array([APPS[i] for i in rng.integers(0, len(APPS), rows)]),
            "transaction": pa.array([TRANSACTIONS[i] for i in rng.integers(0, len(TRANSACTIONS), rows)]),
            "where": pa.array([PLACES[i] for i in rng.integers(0, len(PLACES), rows)]),
            "at": pa.array([t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in at]),
        }
    )


def _with_bad_rows(table: pa.Table) -> pa.Table:
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    for row, (column, value) in BAD.items():
        columns[column][row] = value
    return pa.table(columns, schema=table.schema)


@pytest.fixture(scope="module")
def good() -> pa.Table:
    return _table()


@pytest.fixture(scope="module")
def expected(good: pa.Table) -> pa.Table:
    """decide_table in process, with the columns the distributed form adds (no error, the stamp)."""
    decided = decide_table(good)
    for name in ("verdict", "as_written", "enforcement"):
        decided = decided.set_column(decided.schema.get_field_index(name), name, decided.column(name).cast(pa.string()))
    knowledge = Knowledge.current()
    decided = decided.append_column("error", pa.nulls(decided.num_rows, pa.string()))
    decided = decided.append_column("rulebook_version", pa.array([knowledge.rulebook_version] * decided.num_rows))
    decided = decided.append_column("bundle", pa.array([knowledge.bundle] * decided.num_rows, pa.string()))
    assert len(set(decided.column("verdict").to_pylist())) >= 3  # not a vacuous comparison
    return decided.replace_schema_metadata(None)


def _assert_same(actual: pa.Table, expected: pa.Table) -> None:
    actual = actual.select(expected.column_names).sort_by("id").cast(expected.schema)
    assert actual.num_rows == expected.num_rows
    for name in expected.column_names:
        got, want = actual.column(name).to_pylist(), expected.column(name).to_pylist()
        if name == "error":  # in process the line is cut with its "row N: " in front: compare what both show
            got, want = ([_shown(v) for v in values] for values in (got, want))
        if got != want:
            row = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            raise AssertionError(f"column {name}, id {row}: got {got[row]!r}, expected {want[row]!r}")


def _shown(message: str | None) -> str | None:
    return None if message is None else message.removesuffix("…")[:250]


def _bad_rows_expected(expected: pa.Table) -> pa.Table:
    """Bad rows: null answers and the message decide_table gives for that row; every other row as before."""
    bad_table = _with_bad_rows(_table())
    with pytest.raises(ValueError) as refused:
        decide_table(bad_table)  # in process the whole table is refused, naming each bad row
    said = {
        int(line.split(":")[0].removeprefix("row ")): line.split(": ", 1)[1] for line in str(refused.value).splitlines()
    }
    assert set(said) == set(BAD)
    columns = {name: expected.column(name).to_pylist() for name in expected.column_names}
    for row, (column, value) in BAD.items():
        columns[column][row] = value
        for name in ("verdict", "as_written", "enforcement", "rule_ids"):
            columns[name][row] = None
        columns["error"][row] = said[row]
    return pa.table(columns, schema=expected.schema)


def test_in_process_equals_decide_table_and_sets_bad_rows_aside(good: pa.Table, expected: pa.Table) -> None:
    _assert_same(decide_batches(good), expected)
    _assert_same(decide_batches(_with_bad_rows(good)), _bad_rows_expected(expected))


def test_whole_table_refusals_are_the_drivers(good: pa.Table) -> None:
    with pytest.raises(ValueError, match=r"column\(s\) where missing"):
        decide_batches(good.drop_columns(["where"]))
    with pytest.raises(ValueError, match=r"verdict.*decided already"):
        decide_batches(decide_batches(good).drop_columns(["rulebook_version", "bundle"]))


# ---- Spark -------------------------------------------------------------------------------------------


def test_spark_equals_decide_table(spark: Any, good: pa.Table, expected: pa.Table) -> None:
    from appban.distributed.decide import decide_spark

    df = spark.createDataFrame(_with_bad_rows(good)).repartition(5)
    _assert_same(decide_spark(df).toArrow(), _bad_rows_expected(expected))
    empty = decide_spark(spark.createDataFrame(good).where("id < 0")).toArrow()
    assert empty.num_rows == 0 and empty.column_names == expected.column_names
    with pytest.raises(ValueError, match="at missing"):
        decide_spark(spark.createDataFrame(good).drop("at"))


# ---- Dask --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    _require("dask.dataframe")
    distributed = _require("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_dask_equals_decide_table(dask_client: Any, good: pa.Table, expected: pa.Table, tmp_path: Any) -> None:
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    from appban.distributed.decide import decide_dask

    bad = _with_bad_rows(good)
    pq.write_table(bad.slice(0, 1000), tmp_path / "a.parquet")
    pq.write_table(bad.slice(0, 0), tmp_path / "b.parquet")  # an empty file: a partition of zero chunks
    pq.write_table(bad.slice(1000), tmp_path / "c.parquet", row_group_size=700)
    ddf = dd.read_parquet(str(tmp_path), dtype_backend="pyarrow").repartition(npartitions=4)
    out = decide_dask(ddf).compute()
    assert out["verdict"].isna().sum() == len(BAD)  # null, not NaN, for the rows set aside
    _assert_same(pa.Table.from_pandas(out, preserve_index=False), _bad_rows_expected(expected))
    from_pandas = decide_dask(dd.from_pandas(good.to_pandas(), npartitions=3)).compute()
    _assert_same(pa.Table.from_pandas(from_pandas, preserve_index=False), expected)
