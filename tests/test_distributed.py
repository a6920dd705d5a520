"""appban.distributed: the in-process classifier, Spark (mapInArrow) and Dask (map_partitions) agree row for row.

Spark runs as a real local session (one for the whole test run: tests/spark_session.py) and Dask on a real
LocalCluster with two worker processes for the module. Without pyspark or dask installed these tests skip, except
under CI (environment variable CI set), where they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from appban.distributed import core
from appban.distributed.core import KNOWLEDGE_NAMES, Knowledge, builds
from appban.distributed.network import OUTPUT_FIELDS, NetworkFactory, classify_batches, output_schema
from appban.engine.decide import default_rulebook
from appban.network.classify import Classifier
from appban.network.indicators import default_indicators

# pyspark 4 warns about pandas 3 on every Arrow path although mapInArrow never goes through pandas.
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

ROWS = 5_000
# Routing table: 203.0.113.0/24 originated by Bytedance (listed), 2001:db8:1::/48 by Tencent (listed),
# 198.51.100.0/24 by an AS the indicators do not list (so it must not match).
ASN_TABLE = [("203.0.113.0/24", 396986), ("2001:db8:1::/48", 45090), ("198.51.100.0/24", 64496)]

HOSTS = [
    "www.tiktok.com",
    "p16-sign.tiktokcdn-us.com",
    "nottiktok.com",  # a suffix of the string, not of the labels: no match
    "weixin.qq.com",
    "v.qq.com",
    "api.mch.weixin.qq.com",
    "WWW.TikTok.COM.",
    None,
]
INSIDE_IPS = ["71.18.248.{}", "71.18.251.{}", "2404:9dc0:cd01::{:x}", "203.0.113.{}", "2001:db8:1::{:x}"]
OUTSIDE_IPS = ["8.8.{}.8", "198.51.100.{}", "71.18.244.{}", "2404:9dc0:cd02::{:x}", "2001:4860::{:x}"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require(module: str) -> Any:
    """The module; skips when it is not installed, fails instead under CI."""
    try:
        return pytest.importorskip(module)
    except pytest.skip.Exception:
        if _in_ci():
            pytest.fail(f"{module} is not installed (CI is set, so this fails instead of skipping)", pytrace=False)
        raise


def _sample(rows: int = ROWS, seed: int = 20240119) -> pa.Table:
    """DNS-like records: known and unrelated host names, nulls, and addresses inside and outside the prefixes."""
    rng = np.random.default_rng(seed)
    hosts: list[str | None] = []
    ips: list[str | None] = []
    for i in range(rows):
        pick = rng.integers(0, 10)
        hosts.append(HOSTS[pick] if pick < len(HOSTS) else f"cdn{rng.integers(0, 400)}.example{pick}.org")
        kind = rng.integers(0, 12)
        if kind < len(INSIDE_IPS):
            ips.append(INSIDE_IPS[kind].format(int(rng.integers(1, 255))))
        elif kind < len(INSIDE_IPS) + len(OUTSIDE_IPS):
            ips.append(OUTSIDE_IPS[kind - len(INSIDE_IPS)].format(int(rng.integers(1, 255))))
        else:
            ips.append(None if i % 2 else "not-an-address")
    start = dt.datetime(2025, 1, 19, tzinfo=dt.UTC)
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "ts": pa.array([start + dt.timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", "UTC")),
            "host": pa.array(hosts, pa.string()),
            "dst_ip": pa.array(ips, pa.string()),
            "bytes": pa.array(rng.integers(0, 1 << 20, rows), pa.int32()),
            "rtt": pa.array(rng.random(rows), pa.float64()),
        }
    )


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return _sample()


@pytest.fixture(scope="module")
def expected(sample: pa.Table) -> pa.Table:
    """The reference: one Classifier over the whole table in this process."""
    classifier = Classifier(default_indicators(default_rulebook()), ASN_TABLE)
    table = pa.Table.from_batches([classifier.classify(sample.combine_chunks().to_batches()[0])])
    knowledge = Knowledge.current()  # every output says what it was screened under
    for field, column in zip(core.KNOWLEDGE_FIELDS, knowledge.columns(table.num_rows), strict=True):
        table = table.append_column(field, column)
    assert knowledge.rulebook_version
    # Guard against a vacuous comparison: every way of matching, and not matching, occurs.
    assert set(table.column("indicator_kind").to_pylist()) == {"domain", "ip", "asn", None}
    return table


def _assert_same(actual: pa.Table, expected: pa.Table) -> None:
    actual = actual.select(expected.column_names).sort_by("id").cast(expected.schema)
    assert actual.num_rows == expected.num_rows
    for name in expected.column_names:
        got, want = actual.column(name).to_pylist(), expected.column(name).to_pylist()
        if got != want:
            row = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            raise AssertionError(f"column {name}, id {row}: got {got[row]!r}, expected {want[row]!r}")


# ---- in process --------------------------------------------------------------------------------------


def test_output_schema_appends_class_fields_and_refuses_a_second_pass(sample: pa.Table) -> None:
    schema = output_schema(sample.schema)
    assert schema.names == sample.column_names + [f.name for f in OUTPUT_FIELDS] + list(KNOWLEDGE_NAMES)
    with pytest.raises(ValueError, match="app"):
        output_schema(schema)


def test_classify_batches_equals_the_classifier(sample: pa.Table, expected: pa.Table) -> None:
    out = list(classify_batches(sample.to_batches(max_chunksize=700), ASN_TABLE))
    assert len(out) == -(-ROWS // 700)
    assert all(batch.schema.equals(output_schema(sample.schema)) for batch in out)
    _assert_same(pa.Table.from_batches(out), expected)


def test_classify_batches_empty_input(sample: pa.Table) -> None:
    assert list(classify_batches(iter([]), ASN_TABLE)) == []
    (out,) = classify_batches([pa.RecordBatch.from_pylist([], schema=sample.schema)], ASN_TABLE)
    assert out.num_rows == 0
    assert out.schema.equals(output_schema(sample.schema))


def test_a_task_of_empty_batches_builds_nothing(sample: pa.Table) -> None:
    factory = NetworkFactory.of([("192.0.2.0/24", 1)])  # a table no other test uses
    schema = output_schema(sample.schema)
    before = builds()
    empty = pa.RecordBatch.from_pylist([], schema=sample.schema)
    (out,) = core.screen_batches([empty], factory, schema, Knowledge.current())
    assert out.num_rows == 0 and out.schema.equals(schema)
    assert builds() == before  # no classifier for nothing to classify


def test_classifier_built_once_per_process_and_table(sample: pa.Table) -> None:
    batch = sample.slice(0, 100).to_batches()[0]
    table = [("192.0.2.0/24", 396986)]  # a table no other test uses
    before = builds()
    for _ in range(3):
        list(classify_batches([batch, batch], list(table)))  # a fresh copy each time, as a worker unpickles
    assert builds() == before + 1
    assert core.cached(NetworkFactory.of(table)) is core.cached(NetworkFactory.of(list(table)))  # same contents


def test_package_imports_without_pyspark_dask_or_pandas() -> None:
    script = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"pyspark", "py4j", "dask", "distributed", "pandas"}:
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Block())
        import pyarrow as pa
        import appban.distributed, appban.distributed.spark, appban.distributed.dask
        from appban.distributed import classify_batches
        (out,) = classify_batches([pa.record_batch({"host": ["www.tiktok.com"]})])
        assert out.column("app").to_pylist() == ["tiktok"], out
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---- Spark -------------------------------------------------------------------------------------------


def test_arrow_to_spark_schema() -> None:
    _require("pyspark")
    from pyspark.sql import types

    from appban.distributed.spark import arrow_to_spark_schema

    schema = pa.schema(
        [
            pa.field("s", pa.string()),
            pa.field("f", pa.float32()),
            pa.field("d", pa.float64(), nullable=False),
            pa.field("i", pa.int32()),
            pa.field("l", pa.int64()),
            pa.field("t", pa.timestamp("us", "UTC")),
        ]
    )
    assert arrow_to_spark_schema(schema) == types.StructType(
        [
            types.StructField("s", types.StringType()),
            types.StructField("f", types.FloatType()),
            types.StructField("d", types.DoubleType(), nullable=False),
            types.StructField("i", types.IntegerType()),
            types.StructField("l", types.LongType()),
            types.StructField("t", types.TimestampType()),
        ]
    )
    with pytest.raises(TypeError, match="decimal"):
        arrow_to_spark_schema(pa.schema([pa.field("x", pa.decimal256(50, 2))]))  # over Spark's 38 digits


def test_spark_equals_in_process(spark: Any, sample: pa.Table, expected: pa.Table) -> None:
    from appban.distributed.spark import classify_spark

    df = spark.createDataFrame(sample).repartition(6)  # several partitions, so several tasks
    out = classify_spark(df, ASN_TABLE)
    assert out.columns == expected.column_names
    _assert_same(out.toArrow(), expected)


def test_spark_empty_input(spark: Any, sample: pa.Table) -> None:
    from appban.distributed.spark import classify_spark

    names = output_schema(sample.schema).names
    # No rows at all, and partitions that exist but hold no rows.
    for df in (spark.createDataFrame(sample.slice(0, 0)), spark.createDataFrame(sample).where("id < 0")):
        out = classify_spark(df, ASN_TABLE).toArrow()
        assert out.num_rows == 0
        assert out.column_names == names


# ---- Dask --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    _require("dask.dataframe")
    distributed = _require("distributed")
    # Worker processes, not threads: the classifier must really be built (and cached) in each worker.
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit="1GiB"
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _dask_frame(table: pa.Table, partitions: int) -> Any:
    import dask.dataframe as dd

    return dd.from_pandas(table.to_pandas(), npartitions=partitions)


def test_dask_equals_in_process(dask_client: Any, sample: pa.Table, expected: pa.Table) -> None:
    from appban.distributed.dask import classify_dask

    ddf = classify_dask(_dask_frame(sample, 8), ASN_TABLE)
    assert list(ddf.columns) == expected.column_names
    out = ddf.compute()
    assert list(out.dtypes) == list(ddf._meta.dtypes)  # meta declares what the partitions really hold
    _assert_same(pa.Table.from_pandas(out, preserve_index=False), expected)


def test_dask_empty_input(dask_client: Any, sample: pa.Table) -> None:
    from appban.distributed.dask import classify_dask

    ddf = classify_dask(_dask_frame(sample.slice(0, 0), 1), ASN_TABLE)
    out = ddf.compute()
    assert len(out) == 0
    assert list(out.columns) == output_schema(sample.schema).names
    assert list(out.dtypes) == list(ddf._meta.dtypes)


def test_dask_builds_one_classifier_per_worker(dask_client: Any, sample: pa.Table) -> None:
    from appban.distributed.dask import classify_dask

    classify_dask(_dask_frame(sample, 12), ASN_TABLE).compute()
    per_worker = dask_client.run(builds)
    assert len(per_worker) == 2
    # Every Dask test here uses ASN_TABLE, so however tests are ordered, no worker may have built twice.
    assert all(count <= 1 for count in per_worker.values()), per_worker
    assert sum(per_worker.values()) >= 1, per_worker


def test_dask_reads_empty_files_and_many_chunks(
    dask_client: Any, sample: pa.Table, expected: pa.Table, tmp_path: Any
) -> None:
    """Partitions whose columns have zero chunks (an empty Parquet file in the directory) or several (after
    a concat or repartition) are classified as one contiguous chunk would be."""
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    from appban.distributed.dask import classify_dask

    half = ROWS // 2
    pq.write_table(sample.slice(0, half), tmp_path / "part-0.parquet")
    pq.write_table(sample.slice(0, 0), tmp_path / "part-1.parquet")  # Spark and Hadoop jobs write these
    pq.write_table(sample.slice(half), tmp_path / "part-2.parquet", row_group_size=900)
    frame = dd.read_parquet(str(tmp_path), dtype_backend="pyarrow")
    frames = {
        "directory": frame,
        "repartition": frame.repartition(npartitions=5),
        "concat": dd.concat([frame.partitions[0], frame.partitions[1], frame.partitions[2]]).repartition(npartitions=2),
    }
    for how, ddf in frames.items():
        out = classify_dask(ddf, ASN_TABLE).compute()
        try:
            _assert_same(pa.Table.from_pandas(out, preserve_index=False), expected)
        except AssertionError as error:
            raise AssertionError(f"{how}: {error}") from None


def test_dask_no_match_is_null_not_nan(dask_client: Any, sample: pa.Table) -> None:
    from appban.distributed.dask import classify_dask

    out = classify_dask(_dask_frame(sample.slice(0, 200), 2), ASN_TABLE).compute()
    unmatched = out[out["app"].isna()]
    assert len(unmatched) > 0
    assert unmatched["confidence"].isna().all()
    assert str(out["confidence"].dtype) == "float[pyarrow]"  # a null, not a NaN standing in for one
    assert (
        out["rulebook_version"].notna().all()
        and out["rulebook_version"].iloc[0] == Knowledge.current().rulebook_version
    )


def test_column_map_and_driver_checks(dask_client: Any, sample: pa.Table, expected: pa.Table) -> None:
    from appban.distributed.dask import classify_dask

    zeek = sample.rename_columns(["id", "ts", "query", "id.resp_h", "bytes", "rtt"])
    out = classify_dask(_dask_frame(zeek, 3), ASN_TABLE, columns={"host": "query", "dst_ip": "id.resp_h"}).compute()
    renamed = pa.Table.from_pandas(out, preserve_index=False).rename_columns(expected.column_names)
    _assert_same(renamed, expected)
    # Each mistake is named on the driver, before any task runs.
    with pytest.raises(ValueError, match=r"none of host, dst_ip, src_ip; map yours, e.g. columns=\{'host': 'query'\}"):
        classify_dask(_dask_frame(zeek, 1))
    cased = sample.rename_columns(["id", "ts", "Host", "dst", "bytes", "rtt"])
    with pytest.raises(ValueError, match="'Host'"):
        classify_dask(_dask_frame(cased, 1))
    with pytest.raises(ValueError, match=r"host is mapped to 'qeury', which the input lacks"):
        classify_dask(_dask_frame(zeek, 1), columns={"host": "qeury"})
    with pytest.raises(ValueError, match=r"column 'bytes' \(host\) is int32, not text"):
        classify_dask(_dask_frame(zeek, 1), columns={"host": "bytes"})
    with pytest.raises(ValueError, match="unknown role"):
        classify_dask(_dask_frame(zeek, 1), columns={"hostname": "query"})
    with pytest.raises(ValueError, match=r"asn_table entry 1: '10.0.0/33' is not an IP prefix"):
        classify_dask(_dask_frame(sample, 1), [("192.0.2.0/24", 1), ("10.0.0/33", 2)])
    with pytest.raises(ValueError, match=r"asn_table entry 0: AS number '64496'"):
        classify_dask(_dask_frame(sample, 1), [("192.0.2.0/24", "64496")])


def _readme_block(marker: str) -> str:
    """The README's python code block whose text contains `marker`."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    (block,) = [block for block in blocks if marker in block]
    return block


def test_readme_dask_recipe_runs(dask_client: Any, sample: pa.Table, tmp_path: Any) -> None:
    import pyarrow.parquet as pq

    logs, out = tmp_path / "logs", tmp_path / "out"
    logs.mkdir()
    zeek = sample.rename_columns(["id", "ts", "query", "id.resp_h", "bytes", "rtt"])
    pq.write_table(zeek.slice(0, 1000), logs / "part-0.parquet")
    pq.write_table(zeek.slice(0, 0), logs / "part-1.parquet")
    code = _readme_block("classify_dask")
    for written, here in (("s3://logs/dns/", str(logs)), ("s3://out/classified/", str(out))):
        assert written in code
        code = code.replace(written, here)
    code = code.replace('Client("tcp://scheduler:8786")', f"Client({dask_client.scheduler.address!r})")
    namespace: dict[str, Any] = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        if "client" in namespace:
            namespace["client"].close()  # the recipe's own client, beside the fixture's
    written = pq.read_table(out)
    assert written.num_rows > 0 and written.column("app").null_count == 0
