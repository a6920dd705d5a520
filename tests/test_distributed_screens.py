"""Inventory, payment and code screening on Spark and Dask agree row for row with the in-process screens.

The in-process reference is what the CLI runs: `Screener.screen` per inventory file, `screen_payments` over
the payment files, `appban.code.scan.scan` per artefact. Inputs: the bundled examples (every inventory
layout, every payment format), files with bad rows, empty files, files that are no payment file at all,
and real artefacts (a wheel, npm tarballs, a JAR out of one, an APK built by the Android tools, an IPA).

The test run's one Spark session (`local[2]`, tests/spark_session.py) and two Dask clusters for the module:
one in threads for most tests, one with two worker processes. Without pyspark or dask these tests skip,
except under CI, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from appban.code.scan import scan
from appban.distributed import core
from appban.distributed.code import ContentFactory, PathFactory, result_rows, split_warnings
from appban.distributed.inventory import (
    OUTPUT_SCHEMA as INVENTORY_OUTPUT,
)
from appban.distributed.inventory import (
    InventoryFiles,
    InventoryParams,
    inventory_rows,
    split_errors,
)
from appban.distributed.payments import ORDER, FileFactory, TableFactory, split_payments
from appban.engine.instants import parse_instant
from appban.screen.inventory import InventoryOptions, Screener
from appban.screen.payments import PaymentOptions, read_payments, screen_payments
from appban.tablereader import line_mapper, read_table
from tests import material

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AT = "2025-06-01T00:00:00Z"
# Every row decided at one instant (rows without their own would be decided "now", which moves).
FIXED = InventoryOptions(at=AT)
# Each row at its own instant (the catalog's last_updated), so that a bad instant is a row error.
OWN_TIME = InventoryOptions(at_column="last_updated")

# The example catalog's layout; line 3: a storefront that is no country, 4: an instant that is none, 5: no
# name nor identifier, 6: a field too many (unreadable), 7: fine.
BAD_CATALOG = """listing_id,kind,store,store_app_id,package_id,name,publisher,storefront,version,last_updated
l-1,listing,app_store,835599320,,TikTok,TikTok Pte. Ltd.,US,1.0,2020-09-27T23:58:59-04:00
l-2,listing,play,,com.tencent.mm,WeChat,Tencent,ZZ,1.0,2020-09-21T00:00:00Z
l-3,update,play,,com.tencent.mm,WeChat,Tencent,US,1.1,not a date
l-4,listing,play,,,,,US,1.0,2020-09-21T00:00:00Z
l-5,listing,play,,com.zhiliaoapp.musically,TikTok,TikTok Pte. Ltd.,US,1.0,2020-09-28T00:00:00Z,a field too many
l-6,update,play,,com.tencent.mm,WeChat,Tencent,US,1.2,2021-06-09T04:00:00Z
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require(module: str) -> Any:
    try:
        return pytest.importorskip(module)
    except pytest.skip.Exception:
        if _in_ci():
            pytest.fail(f"{module} is not installed (CI is set, so this fails instead of skipping)", pytrace=False)
        raise


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in an order of their own: the engines give them in any (a file's rows may share a line)."""
    return sorted(rows, key=repr)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows without the knowledge stamp, in a fixed order, types as declared by the screener."""
    names = [name for name in table.column_names if name not in core.KNOWLEDGE_NAMES]
    return table.select(names).to_pylist()


# ---- material ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inventory_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Files screened at a fixed instant (every example layout, an empty catalog) and at their own (a
    catalog with bad rows and the example catalog: one layout, as a table of rows needs)."""
    folder = tmp_path_factory.mktemp("inventory")
    (folder / "bad-catalog.csv").write_text(BAD_CATALOG)
    (folder / "empty-catalog.csv").write_text(BAD_CATALOG.splitlines()[0] + "\n")
    examples = sorted(p for p in (EXAMPLES / "inventory").iterdir() if p.suffix in (".csv", ".json"))
    assert len(examples) >= 5
    catalog = EXAMPLES / "inventory" / "app-store-catalog.csv"
    return {"fixed": [*examples, folder / "empty-catalog.csv"], "own": [folder / "bad-catalog.csv", catalog]}


def _inventory_expected(files: list[Path], options: InventoryOptions) -> tuple[list[dict[str, Any]], list[Any]]:
    screener = Screener(None, options)
    findings, errors = [], []
    for file in files:
        result = screener.screen(read_table(file, all_text=True), str(file), line_mapper(file))
        findings += result.findings.to_pylist()
        errors += result.errors
    errors.sort(key=lambda e: (e.file, e.line))
    return findings, errors


def _inventory_input(files: list[Path]) -> pa.Table:
    """All files' rows in one table (file and line columns), columns the union of theirs."""
    return pa.concat_tables([inventory_rows(file) for file in files], promote_options="default")


@pytest.fixture(scope="module")
def payment_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every example format, an export holding only its header, and three files that are none at all."""
    folder = tmp_path_factory.mktemp("payments")
    examples = sorted((EXAMPLES / "payments").iterdir())
    header = examples[[p.name for p in examples].index("processor-export.csv")].read_text().splitlines()[0]
    (folder / "header-only.csv").write_text(header + "\n")
    (folder / "empty.xml").write_bytes(b"")
    (folder / "notes.csv").write_text("hello world\n")
    return [*examples, folder / "header-only.csv", folder / "empty.xml", folder / "notes.csv"]


@pytest.fixture(scope="module")
def payments_expected(payment_files: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    result = screen_payments(payment_files, PaymentOptions())
    assert result.payments.num_rows and result.apart.num_rows and result.errors and result.file_errors
    return (
        result.payments.sort_by(ORDER).to_pylist(),
        result.apart.sort_by(ORDER).to_pylist(),
        sorted(result.errors + result.file_errors),
    )


def _payment_records(files: list[Path]) -> pa.Table:
    """The readable files' records as the readers give them, with their file."""
    tables = []
    for file in files:
        try:
            batches, _ = read_payments(file, PaymentOptions())
            table = pa.Table.from_batches(list(batches))
        except ValueError:
            continue
        tables.append(table.append_column("file", pa.repeat(pa.scalar(str(file)), table.num_rows)))
    return pa.concat_tables(tables)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A wheel, npm tarballs, a JAR, an APK and an IPA; an empty file and a broken archive."""
    folder = tmp_path_factory.mktemp("artifacts")
    tarball = material.require(material.WECHAT_LIB)
    jar = material.extract_member(tarball, material.WECHAT_LIB_JAR, folder)
    for tool in ("smali", "aapt", "zipalign", "apksigner", "keytool"):
        material.require_tool(tool)
    apk = material.build_apk(
        "com.example.shop", material.smali_classes("com/tencent/mm/opensdk/openapi/WXAPIFactory"), folder / "apk",
        queries=["com.tencent.mm"],
    )  # fmt: skip
    executable = folder / "Shop"
    executable.write_bytes(b"\0" * 64)
    ipa = material.build_ipa(executable, "com.example.shop", ["wx1234567890abcdef"], ["weixin"], folder / "shop.ipa")
    (folder / "empty.whl").write_bytes(b"")
    (folder / "broken.apk").write_bytes(b"PK\x03\x04 not really a zip")
    return [
        material.require(material.WECHATPY),
        material.require(material.TIKTOK_PIXEL),
        tarball,
        jar,
        apk,
        ipa,
        folder / "empty.whl",
        folder / "broken.apk",
    ]


@pytest.fixture(scope="module")
def scan_expected(artifacts: list[Path]) -> tuple[list[dict[str, Any]], list[Any]]:
    rows = pa.concat_tables([result_rows(scan([path], at=parse_instant(AT)), str(path)) for path in artifacts])
    findings, warnings = split_warnings(rows)
    assert findings.num_rows > 20 and warnings
    assert {Path(p).suffix for p in findings.column("file").to_pylist()} >= {".whl", ".tgz", ".jar", ".apk", ".ipa"}
    return findings.to_pylist(), warnings


# ---- in process: the screeners batch by batch ----------------------------------------------------------


def test_inventory_screener_equals_the_screen_batch_by_batch(inventory_files: dict[str, list[Path]]) -> None:
    for key, options in (("fixed", FIXED), ("own", OWN_TIME)):
        screener = InventoryParams.of(options)()
        files = inventory_files[key]
        # Each layout a table of its own (the own-time files share one); batches of 7 rows cut files apart.
        tables = [_inventory_input(files)] if key == "own" else [inventory_rows(file) for file in files]
        batches = [screener.screen_batch(b) for table in tables for b in table.to_batches(max_chunksize=7)]
        findings, errors = split_errors(pa.Table.from_batches(batches, INVENTORY_OUTPUT))
        assert (_rows(findings), errors) == _inventory_expected(files, options)
        out = core.screen_table(tables[0].slice(0, 0), InventoryParams.of(options))
        assert out.num_rows == 0 and out.schema.names == [*INVENTORY_OUTPUT.names, *core.KNOWLEDGE_NAMES]
    # The bad rows, each with its file, line and column as the CLI reports them.
    assert [(Path(e.file).name, e.line, e.column) for e in errors] == [
        ("bad-catalog.csv", 3, "storefront"),
        ("bad-catalog.csv", 4, "last_updated"),
        ("bad-catalog.csv", 5, "name/store_app_id/package_id"),  # neither a name nor an identifier
        ("bad-catalog.csv", 6, "-"),  # the whole line: a field too many
    ]


def test_inventory_file_screener_equals_the_screen(inventory_files: dict[str, list[Path]], tmp_path: Path) -> None:
    files = inventory_files["fixed"]
    screener = InventoryFiles.of(FIXED)()
    out = pa.concat_tables([screener.screen_path(str(file)) for file in files])
    assert split_errors(out) == (pa.Table.from_pylist(_inventory_expected(files, FIXED)[0]), [])
    (tmp_path / "notes.txt").write_text("not an inventory")
    (_, [error]) = split_errors(screener.screen_path(str(tmp_path / "notes.txt")))
    assert error.file == str(tmp_path / "notes.txt") and error.line == -1 and "unknown input format" in error.message


def test_inventory_checks_columns_on_the_driver() -> None:
    with pytest.raises(ValueError, match="no column names the app"):
        core.table_schema(InventoryParams.of(FIXED), pa.schema([("version", pa.string())]))
    with pytest.raises(ValueError, match="--at-column 'when'"):
        core.table_schema(InventoryParams(at_column="when"), pa.schema([("name", pa.string())]))


def test_payment_screeners_equal_screen_payments(payment_files: list[Path], payments_expected: Any) -> None:
    expected_payments, expected_apart, _ = payments_expected
    files = FileFactory()()
    out = pa.concat_tables([files.screen_path(str(path)) for path in payment_files])
    payments, apart, errors = split_payments(out)
    assert (payments.to_pylist(), apart.to_pylist(), sorted(errors)) == payments_expected
    # Records after the readers, in batches of 4 that cut files apart: the same payments and set-aside rows
    # (read errors stay with the readers, which report them before the records get here).
    table = TableFactory()()
    records = _payment_records(payment_files)
    out = pa.Table.from_batches([table.screen_batch(b) for b in records.to_batches(max_chunksize=4)])
    payments, apart, errors = split_payments(out)
    assert (payments.to_pylist(), apart.to_pylist(), errors) == (expected_payments, expected_apart, [])
    with pytest.raises(ValueError, match=r"missing: .*amount"):
        core.table_schema(TableFactory(), records.drop_columns(["amount"]).schema)


def test_code_screeners_equal_scan(artifacts: list[Path], scan_expected: Any) -> None:
    expected_findings, expected_warnings = scan_expected
    screener = PathFactory(AT)()
    findings, warnings = split_warnings(pa.concat_tables([screener.screen_path(str(p)) for p in artifacts]))
    assert (findings.to_pylist(), warnings) == scan_expected
    # Bytes beside a name: the same findings, named by the name rather than a temporary file.
    content = ContentFactory(AT)()
    batch = pa.record_batch({"name": [str(p) for p in artifacts], "content": [p.read_bytes() for p in artifacts]})
    findings, warnings = split_warnings(pa.Table.from_batches([content.screen_batch(batch)]))
    assert findings.to_pylist() == expected_findings
    assert [w.path for w in warnings] == [w.path for w in expected_warnings]
    with pytest.raises(ValueError, match="not an ISO 3166 code"):
        PathFactory(AT, "XX")


# ---- Spark ---------------------------------------------------------------------------------------------


def test_spark_inventory(spark: Any, inventory_files: dict[str, list[Path]]) -> None:
    from appban.distributed.inventory import screen_inventory_files_spark, screen_inventory_spark

    # Rows of one layout, repartitioned: files cut across tasks in any order.
    expected_findings, expected_errors = _inventory_expected(inventory_files["own"], OWN_TIME)
    df = spark.createDataFrame(_inventory_input(inventory_files["own"])).repartition(3)
    out = screen_inventory_spark(df, OWN_TIME).toArrow()
    assert set(out.column("rulebook_version").to_pylist()) == {Screener(None, FIXED).rulebook.version}
    findings, errors = split_errors(out)
    assert (_sorted(_rows(findings)), errors) == (_sorted(expected_findings), expected_errors)
    # No rows at all, and partitions that exist but hold none.
    assert screen_inventory_spark(df.where("line < 0"), OWN_TIME).toArrow().num_rows == 0
    # Files of every layout and format, one per task.
    files = inventory_files["fixed"]
    paths = spark.createDataFrame([(str(p),) for p in files], ["path"]).repartition(3)
    findings, errors = split_errors(screen_inventory_files_spark(paths, FIXED).toArrow())
    assert (_sorted(_rows(findings)), errors) == (_sorted(_inventory_expected(files, FIXED)[0]), [])


def test_spark_payments(spark: Any, payment_files: list[Path], payments_expected: Any) -> None:
    from appban.distributed.payments import screen_iso20022_files_spark, screen_payments_spark

    expected_payments, expected_apart, _ = payments_expected
    # One file per task, formats mixed (ISO 20022, three exports, files that are none).
    paths = spark.createDataFrame([(str(p),) for p in payment_files], ["path"]).repartition(len(payment_files))
    payments, apart, errors = split_payments(screen_iso20022_files_spark(paths).toArrow())
    assert (_rows(payments), _rows(apart), sorted(errors)) == payments_expected
    records = spark.createDataFrame(_payment_records(payment_files)).repartition(3)
    payments, apart, errors = split_payments(screen_payments_spark(records).toArrow())
    assert (_rows(payments), _rows(apart), errors) == (expected_payments, expected_apart, [])


def test_spark_code(spark: Any, artifacts: list[Path], scan_expected: Any) -> None:
    from appban.distributed.code import scan_artifacts_spark

    expected_findings, expected_warnings = scan_expected
    paths = spark.createDataFrame([(str(p),) for p in artifacts], ["path"]).repartition(4)
    findings, warnings = split_warnings(scan_artifacts_spark(paths, AT).toArrow())
    assert (_rows(findings), warnings) == (expected_findings, expected_warnings)
    # Spark's own binary file source: path and content columns; the findings name the artefacts by path.
    files = spark.read.format("binaryFile").load([p.as_uri() for p in artifacts])
    named = files.selectExpr("regexp_replace(path, '^file:', '') AS name", "content")
    findings, _ = split_warnings(scan_artifacts_spark(named, AT).toArrow())
    assert _rows(findings) == expected_findings


# ---- Dask ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_threads() -> Iterator[Any]:
    _require("dask.dataframe")
    distributed = _require("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _frame(table: pa.Table, partitions: int) -> Any:
    import dask.dataframe as dd
    import pandas as pd

    return dd.from_pandas(table.to_pandas(types_mapper=pd.ArrowDtype), npartitions=partitions, sort=False)


def _computed(client: Any, ddf: Any) -> pa.Table:
    return pa.Table.from_pandas(client.compute(ddf).result(), preserve_index=False)


def test_dask_inventory(dask_threads: Any, inventory_files: dict[str, list[Path]], tmp_path: Path) -> None:
    import dask.bag as db
    import dask.dataframe as dd

    from appban.distributed.inventory import screen_inventory_dask, screen_inventory_files_dask

    files = inventory_files["own"]
    expected_findings, expected_errors = _inventory_expected(files, OWN_TIME)
    table = _inventory_input(files)
    # A directory as Spark jobs write one: a part with the rows and an empty part (zero-chunk columns).
    pq.write_table(table, tmp_path / "part-0.parquet")
    pq.write_table(table.slice(0, 0), tmp_path / "part-1.parquet")
    ddf = dd.read_parquet(str(tmp_path), dtype_backend="pyarrow")
    findings, errors = split_errors(_computed(dask_threads, screen_inventory_dask(ddf, OWN_TIME)))
    assert (_rows(findings), errors) == (expected_findings, expected_errors)
    # Files of every layout and format, a bag of paths.
    files = inventory_files["fixed"]
    paths = db.from_sequence([str(p) for p in files], npartitions=3)
    findings, errors = split_errors(_computed(dask_threads, screen_inventory_files_dask(paths, FIXED)))
    assert (_rows(findings), errors) == (_inventory_expected(files, FIXED)[0], [])


def test_dask_payments(dask_threads: Any, payment_files: list[Path], payments_expected: Any) -> None:
    import dask.bag as db

    from appban.distributed.payments import screen_iso20022_files_dask, screen_payments_dask

    expected_payments, expected_apart, _ = payments_expected
    paths = db.from_sequence([str(p) for p in payment_files], npartitions=3)
    payments, apart, errors = split_payments(_computed(dask_threads, screen_iso20022_files_dask(paths)))
    assert (_rows(payments), _rows(apart), sorted(errors)) == payments_expected
    records = _frame(_payment_records(payment_files), 3)
    payments, apart, errors = split_payments(_computed(dask_threads, screen_payments_dask(records)))
    assert (_rows(payments), _rows(apart), errors) == (expected_payments, expected_apart, [])


# ---- Dask with worker processes: each builds its own screener ------------------------------------------


@pytest.fixture(scope="module")
def dask_processes() -> Iterator[Any]:
    _require("dask.dataframe")
    distributed = _require("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit="1GiB"
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_dask_processes_inventory_and_code(
    dask_processes: Any, inventory_files: dict[str, list[Path]], artifacts: list[Path], scan_expected: Any
) -> None:
    import dask.bag as db

    from appban.distributed.code import scan_artifacts_dask
    from appban.distributed.inventory import screen_inventory_dask

    expected = _inventory_expected(inventory_files["own"], OWN_TIME)
    ddf = _frame(_inventory_input(inventory_files["own"]), 6)
    findings, errors = split_errors(_computed(dask_processes, screen_inventory_dask(ddf, OWN_TIME)))
    assert (_rows(findings), errors) == expected
    paths = db.from_sequence([str(p) for p in artifacts], npartitions=4)
    findings, warnings = split_warnings(_computed(dask_processes, scan_artifacts_dask(paths, AT)))
    assert (_rows(findings), warnings) == scan_expected
    # Built once per worker process and kept, however many partitions each screened.
    built = dask_processes.run(lambda: (core.builds("inventory"), core.builds("code")))
    assert all(inventory <= 1 and code <= 1 for inventory, code in built.values()), built
    assert sum(inventory for inventory, _ in built.values()) >= 1
