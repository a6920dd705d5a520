"""`--engine` runs read inputs and write their dataset through the engine's filesystem layer: fsspec URLs on
Dask (memory://, file://), Hadoop URIs on Spark (file:), each run row for row equal to the in-process command
on local copies of the same files; the audit run keeps the output URL as given; an unknown scheme, or one
whose package is missing, is exit 2 naming the flag (and the package).

memory:// lives in the test process, so Dask runs on a LocalCluster of threads (processes=False), as the
other CLI tests do; Spark uses the test run's one session (tests/spark_session.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from appban.distributed import core
from tests.test_distributed_cli import (
    AT,
    EXAMPLES,
    _in_process,
    _invoke,
    _key,
    _require,
    _the_run,
    dask_threads,  # noqa: F401  (a fixture: a LocalCluster of threads)
    inputs,  # noqa: F401  (a fixture: the CLI tests' inputs, bad rows and empty files among them)
)

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")


@pytest.fixture
def memory() -> Iterator[Any]:
    """fsspec's memory filesystem, emptied after the test."""
    fsspec = _require("fsspec")
    fs = fsspec.filesystem("memory")
    try:
        yield fs
    finally:
        for top in ("/in", "/out"):
            if fs.exists(top):
                fs.rm(top, recursive=True)


def _engine(args: list[str], engine: list[str], out: str, db: Path) -> tuple[int, dict[str, Any], str]:
    import json

    code, stdout, stderr = _invoke([*args, *engine, "-o", out, "--db", f"sqlite:///{db}", "--json"])
    assert code in (0, 1), stderr + stdout
    return code, json.loads(stdout), stderr


def _rows(dataset: ds.Dataset, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    from appban.tables import to_records

    table = dataset.to_table()
    names = [n for n in table.column_names if n not in (*core.KNOWLEDGE_NAMES, *drop)]
    table = table.select(names)
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return to_records(pa.table(columns, names=names))


def _as_local(value: Any, url: str, local: str) -> Any:
    return value.replace(url, local) if isinstance(value, str) else value


def _same(got: list[dict[str, Any]], expected: list[dict[str, Any]], url: str, local: str) -> None:
    """Row for row, once the URL prefix in every text value is read as the local folder it copies."""
    # Not the in-process review's columns (suppressions, fingerprints): a run on an engine applies none.
    columns = [name for name in expected[0] if name != "fingerprint" and not name.startswith("suppress")]
    shown = [{name: _as_local(row.get(name), url, local) for name in columns} for row in got]
    wanted = [{name: row.get(name) for name in columns} for row in expected]
    assert sorted(map(_key, shown)) == sorted(map(_key, wanted))


# ---- Dask: memory:// and file:// ---------------------------------------------------------------------


def test_payments_from_and_to_memory(dask_threads: str, inputs: dict[str, Path], memory: Any, tmp_path: Path) -> None:  # noqa: F811
    """ISO 20022 files and exports (and a file that is neither) read from memory://, one per task, through
    fsspec; the dataset written to memory://; the same rows and errors as in process on the local files."""
    folder = inputs["payments"]
    for file in folder.iterdir():
        memory.pipe(f"/in/payments/{file.name}", file.read_bytes())
    memory.pipe("/in/payments/_SUCCESS", b"")  # left out, as in a local directory
    expected = _in_process(["screen", "payments", *sorted(str(p) for p in folder.iterdir())])
    code, summary, _ = _engine(["screen", "payments", "memory://in/payments"],
                               ["--engine", "dask", "--scheduler", dask_threads], "memory://out/payments",
                               tmp_path / "audit.db")  # fmt: skip
    assert code == 1  # notes.csv is no payment file, as in process
    assert summary["inputs"] == len(list(folder.iterdir()))
    url, local = "memory:///in/payments", str(folder)
    rows = _rows(ds.dataset("/out/payments", filesystem=memory, format="parquet", partitioning="hive"), ("app",))
    payments = [row for row in rows if row["error"] is None and row["reason"] is None]
    _same(payments, expected["payments"], url, local)
    _same([row for row in rows if row["reason"] is not None], expected["apart"], url, local)
    errors = sorted(_as_local(r["error"], url, local) for r in summary["bad_rows"])
    assert errors == sorted(expected["errors"] + expected["files_not_read"])
    assert all(r["file"].startswith(url) for r in summary["bad_rows"])
    assert memory.glob("/out/payments/app=*/verdict=*/*.parquet")
    run = _the_run(tmp_path / "audit.db", "payments")
    assert run.summary["output"] == "memory://out/payments" == run.options["output"]


def test_network_and_decide_from_file_urls(dask_threads: str, inputs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    """file:// URLs: a glob of logs (one with a malformed line) and a single table; the dataset written to a
    file:// URL and recorded as given."""
    folder = inputs["network"]
    options = ["--role", "hosting", "--customer-table", str(inputs["customers"])]
    expected = _in_process(["screen", "network", *sorted(str(p) for p in folder.glob("*.log")), *options])
    out = f"file://{tmp_path}/network"
    code, summary, _ = _engine(["screen", "network", f"file://{folder}/*.log", *options],
                               ["--engine", "dask", "--scheduler", dask_threads], out, tmp_path / "n.db")  # fmt: skip
    assert code == 1  # the malformed line
    url, local = f"file://{folder}", str(folder)
    rows = _rows(ds.dataset(tmp_path / "network", format="parquet", partitioning="hive"))
    _same([row for row in rows if row["error"] is None], expected["records"], url, local)
    assert sorted(_as_local(r["error"], url, local) for r in summary["bad_rows"]) == sorted(expected["errors"])
    assert _the_run(tmp_path / "n.db", "network").summary["output"] == out

    table = inputs["decide"] / "transactions.csv"
    decided = _in_process(["decide", str(table)])["rows"]
    code, summary, _ = _engine(["decide", f"file://{table}"], ["--engine", "dask", "--scheduler", dask_threads],
                               f"file://{tmp_path}/decide", tmp_path / "d.db")  # fmt: skip
    assert code == 0 and summary["inputs"] == 1
    rows = _rows(ds.dataset(tmp_path / "decide", format="parquet", partitioning="hive"))
    assert {row["file"] for row in rows} == {f"file://{table}"}
    columns = ["app", "transaction", "where", "at", "verdict", "as_written", "enforcement", "rule_ids"]
    _same(rows, [{name: row[name] for name in columns} for row in decided], "", "")


def test_scan_reads_an_artefact_folder_from_memory(dask_threads: str, memory: Any, tmp_path: Path) -> None:  # noqa: F811
    """scan: each entry of a memory:// directory is one artefact, a folder among them, copied whole."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"dependencies": {"tiktok-pixel": "^1.0.0"}}\n')
    memory.pipe("/in/artefacts/project/package.json", (project / "package.json").read_bytes())
    expected = _in_process(["scan", str(project), "--at", AT])
    code, summary, _ = _engine(["scan", "memory://in/artefacts", "--at", AT],
                               ["--engine", "dask", "--scheduler", dask_threads], "memory://out/scan",
                               tmp_path / "s.db")  # fmt: skip
    assert summary["inputs"] == 1
    rows = _rows(ds.dataset("/out/scan", filesystem=memory, format="parquet", partitioning="hive"))
    found = sorted((_as_local(r["path"], "memory:///in/artefacts/project", str(project)), r["signature"])
                   for r in rows if r["error"] is None)  # fmt: skip
    assert found == sorted((f["path"], f["signature"]) for f in expected["findings"])
    assert found and code == (1 if summary["errors"] else 0)


# ---- Spark: file: URIs through the session's Hadoop FileSystem ----------------------------------------


def test_spark_inventory_from_file_uris(spark: Any, inputs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    folder = inputs["inventory"]
    files = sorted(str(p) for p in folder.iterdir() if not p.name.startswith("_"))
    expected = _in_process(["screen", "inventory", *files, "--at", AT])
    out = f"file:{tmp_path}/inventory"
    code, summary, _ = _engine(["screen", "inventory", f"file:{folder}", "--at", AT],
                               ["--engine", "spark", "--master", "local[2]"], out, tmp_path / "i.db")  # fmt: skip
    assert code == 1 and summary["inputs"] == len(files)  # _SUCCESS is no input; the bad catalog's rows
    url, local = f"file:{folder}", str(folder)
    rows = _rows(ds.dataset(tmp_path / "inventory", format="parquet", partitioning="hive"),
                 ("error", "error_column", "error_value"))  # fmt: skip
    findings = [row for row in rows if row["app"] is not None or row["verdict"] is not None]
    wanted = [{name: value for name, value in row.items() if name != "facts"} for row in expected["findings"]]
    _same(findings, wanted, url, local)
    assert sorted((_as_local(r["file"], url, local), r["line"]) for r in summary["bad_rows"]) == sorted(
        (e["file"], e["line"]) for e in expected["errors"]
    )
    assert _the_run(tmp_path / "i.db", "inventory").summary["output"] == out


# ---- refusals ------------------------------------------------------------------------------------------


def test_unknown_and_missing_schemes_are_exit_2(tmp_path: Path) -> None:
    _require("distributed")
    table = str(EXAMPLES / "transactions.csv")
    db = f"sqlite:///{tmp_path / 'a.db'}"
    for args, said in (
        (["decide", "nosuch://bucket/t.csv", "-o", str(tmp_path / "o")], "unknown scheme nosuch://"),
        (["decide", table, "-o", "nosuch://bucket/out"], "-o nosuch://bucket/out: unknown scheme"),
        (["decide", "memory://in/none.csv", "-o", str(tmp_path / "o")], "no such file or directory"),
    ):
        code, stdout, stderr = _invoke([*args, "--engine", "dask", "--db", db])
        assert code == 2, stdout + stderr
        assert said in " ".join(stderr.split()), stderr
    try:
        import s3fs  # noqa: F401
    except ImportError:  # the usual case here: the message names the flag and the package
        code, _, stderr = _invoke(["decide", table, "--engine", "dask", "-o", "s3://bucket/out", "--db", db])
        assert code == 2 and "-o s3://bucket/out: the s3:// scheme needs s3fs" in " ".join(stderr.split())
    # Without --engine a URL is not read: the in-process commands read local files.
    code, _, stderr = _invoke(["decide", "memory://in/t.csv"])
    assert code == 2
