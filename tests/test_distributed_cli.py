"""`--engine spark|dask` on the screening commands: the Parquet dataset a run writes, read back, holds the
in-process command's JSON rows row for row; its partitions are app=.../verdict=...; the audit store holds the
run with its counts and its output; a missing engine package is exit 2 naming the extra to install.

Dask runs on a LocalCluster in threads (one test on worker processes); Spark on the test run's one `local[2]`
session (tests/spark_session.py), which the command uses rather than starting its own. Without pyspark or
dask these tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from appban.cli import app
from appban.distributed import core
from appban.store.audit import AuditStore
from tests.test_network_screen import CUSTOMERS, ROWS, dns_log

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AT = "2025-06-01T00:00:00Z"
runner = CliRunner()
# Line 3: a storefront that is no country; 4: an instant that is none; 6: a field too many.
BAD_CATALOG = """listing_id,kind,store,store_app_id,package_id,name,publisher,storefront,version,last_updated
l-1,listing,app_store,835599320,,TikTok,TikTok Pte. Ltd.,US,1.0,2020-09-27T23:58:59-04:00
l-2,listing,play,,com.tencent.mm,WeChat,Tencent,ZZ,1.0,2020-09-21T00:00:00Z
l-3,update,play,,com.tencent.mm,WeChat,Tencent,US,1.1,not a date
l-4,listing,play,,com.zhiliaoapp.musically,TikTok,TikTok Pte. Ltd.,US,1.0,2020-09-28T00:00:00Z
l-5,listing,play,,com.zhiliaoapp.musically,TikTok,TikTok Pte. Ltd.,US,1.0,2020-09-28T00:00:00Z,a field too many
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


# ---- material and engines ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    inventory = folder / "inventory"
    inventory.mkdir()
    for example in (EXAMPLES / "inventory").iterdir():
        if example.suffix in (".csv", ".json"):
            (inventory / example.name).write_bytes(example.read_bytes())
    (inventory / "bad-catalog.csv").write_text(BAD_CATALOG)
    (inventory / "empty-catalog.csv").write_text(BAD_CATALOG.splitlines()[0] + "\n")
    (inventory / "_SUCCESS").write_bytes(b"")  # what a Spark job leaves: not an input
    payments = folder / "payments"
    payments.mkdir()
    for example in (EXAMPLES / "payments").iterdir():
        (payments / example.name).write_bytes(example.read_bytes())
    (payments / "notes.csv").write_text("hello world\n")
    network = folder / "network"
    network.mkdir()
    dns_log(network / "dns.log", ROWS)
    dns_log(network / "more.log", ROWS[:3])
    (network / "broken.log").write_text(dns_log(folder / "x.log", ROWS[:2]).read_text() + "1605243600.0\tshort\n")
    (folder / "customers.csv").write_text("\n".join(CUSTOMERS) + "\n")
    decide = folder / "decide"
    decide.mkdir()
    (decide / "transactions.csv").write_bytes((EXAMPLES / "transactions.csv").read_bytes())
    (decide / "bad.csv").write_text(
        "app,transaction,where,at\ntiktok,app_store_distribution,US,2021-01-01T00:00:00Z\n"
        "tiktok,no_such_thing,US,2021-01-01T00:00:00Z\nwechat,app_store_distribution,US,not a date\n"
    )
    return {"inventory": inventory, "payments": payments, "network": network, "decide": decide,
            "customers": folder / "customers.csv"}  # fmt: skip


@pytest.fixture(scope="module")
def dask_threads() -> Iterator[str]:
    _require("dask.dataframe")
    distributed = _require("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


# ---- helpers -------------------------------------------------------------------------------------------


def _invoke(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _in_process(args: list[str]) -> dict[str, Any]:
    code, stdout, stderr = _invoke([*args, "--format", "json"])
    assert code in (0, 1), stderr
    document: dict[str, Any] = json.loads(stdout)
    return document


def _on_engine(args: list[str], engine: list[str], out: Path, db: Path) -> tuple[int, dict[str, Any]]:
    code, stdout, stderr = _invoke([*args, *engine, "-o", str(out), "--db", f"sqlite:///{db}", "--json"])
    assert code in (0, 1), stderr + stdout
    document: dict[str, Any] = json.loads(stdout)
    return code, document


def _read_back(out: Path, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The dataset's rows, as JSON would give them, without the knowledge stamp and the added columns."""
    from appban.tables import to_records

    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    names = [n for n in table.column_names if n not in (*core.KNOWLEDGE_NAMES, *drop)]
    table = table.select(names)
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return to_records(pa.table(columns, names=names))


def _partitions(out: Path) -> set[tuple[str, str]]:
    found = set()
    for leaf in out.glob("app=*/verdict=*"):
        assert any(leaf.glob("*.parquet")), leaf
        found.add((leaf.parent.name.removeprefix("app="), leaf.name.removeprefix("verdict=")))
    return found


def _key(row: dict[str, Any]) -> str:
    # Floats to 6 places: a float32 confidence reads back as 0.949999988, which JSON writes as 0.95.
    shown = {name: round(value, 6) if isinstance(value, float) else value for name, value in row.items()}
    return json.dumps(shown, sort_keys=True, default=str)


def _same_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]], columns: list[str]) -> None:
    # Not the in-process review's columns (suppressions, fingerprints): a run on an engine applies none.
    columns = [name for name in columns if name != "fingerprint" and not name.startswith("suppress")]
    shown = [{name: row.get(name) for name in columns} for row in got]
    wanted = [{name: row.get(name) for name in columns} for row in expected]
    assert sorted(map(_key, shown)) == sorted(map(_key, wanted))


def _the_run(db: Path, kind: str) -> Any:
    store = AuditStore(f"sqlite:///{db}")
    try:
        runs = store.runs()
    finally:
        store.close()
    assert len(runs) == 1
    run = runs[0]
    assert (run.kind, run.status) == (kind, "done")
    return run


# ---- Dask: every command -------------------------------------------------------------------------------


def test_inventory_on_dask(dask_threads: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    folder = inputs["inventory"]
    files = sorted(str(p) for p in folder.iterdir() if not p.name.startswith("_"))
    good = [f for f in files if "bad" not in f]
    expected = _in_process(["screen", "inventory", *good, "--at", AT])["findings"]
    bad = _in_process(["screen", "inventory", str(folder / "bad-catalog.csv"), "--at", AT])
    code, summary = _on_engine(["screen", "inventory", str(folder), "--at", AT], ["--engine", "dask", "--scheduler",
                               dask_threads], tmp_path / "out", tmp_path / "audit.db")  # fmt: skip
    assert code == 1  # the bad catalog's rows
    rows = _read_back(tmp_path / "out", ("error", "error_column", "error_value"))
    findings = [row for row in rows if row["app"] is not None or row["verdict"] is not None]
    columns = [name for name in expected[0] if name != "facts"]
    _same_rows(findings, expected + bad["findings"], columns)
    # Bad rows: the in-process errors, with their file and line.
    wanted = sorted((e["file"], e["line"], e["message"]) for e in bad["errors"])
    assert sorted((r["file"], r["line"], r["error"]) for r in summary["bad_rows"]) == wanted
    assert summary["errors"] == len(wanted)
    assert _partitions(tmp_path / "out") >= {("tiktok", "prohibited"), ("wechat", "not_prohibited")}
    assert summary["rows"] == len(expected) + len(bad["findings"]) == sum(summary["by_verdict"].values())
    assert summary["inputs"] == len(files)  # _SUCCESS is no input
    run = _the_run(tmp_path / "audit.db", "inventory")
    assert run.summary["output"] == str((tmp_path / "out").resolve()) == run.options["output"]
    assert run.summary["by_verdict"] == summary["by_verdict"] and run.summary["errors"] == summary["errors"]
    assert run.rulebook_version == summary["rulebook_version"]


def test_payments_on_dask(dask_threads: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    files = sorted(str(p) for p in inputs["payments"].iterdir())
    expected = _in_process(["screen", "payments", *files])
    code, summary = _on_engine(["screen", "payments", str(inputs["payments"])],
                               ["--engine", "dask", "--scheduler", dask_threads], tmp_path / "out",
                               tmp_path / "audit.db")  # fmt: skip
    assert code == 1  # notes.csv is no payment file
    rows = _read_back(tmp_path / "out", ("app",))
    payments = [row for row in rows if row["error"] is None and row["reason"] is None]
    _same_rows(payments, expected["payments"], list(expected["payments"][0]))
    apart = [row for row in rows if row["reason"] is not None]
    _same_rows(apart, expected["apart"], list(expected["apart"][0]))
    assert sorted(r["error"] for r in summary["bad_rows"]) == sorted(expected["errors"] + expected["files_not_read"])
    services = {row["service"] for row in expected["payments"]}
    assert {app for app, _ in _partitions(tmp_path / "out")} >= services
    assert _the_run(tmp_path / "audit.db", "payments").summary["rows"] == len(payments) + len(apart)


def test_network_on_dask(dask_threads: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    files = sorted(str(p) for p in inputs["network"].iterdir())
    options = ["--role", "hosting", "--customer-table", str(inputs["customers"])]
    expected = _in_process(["screen", "network", *files, *options])
    assert expected["malformed"]
    # Ignore entries are not applied on a cluster: the run says so for those of its command, not the others'.
    config = tmp_path / "appban.toml"
    config.write_text(
        '[[ignore]]\ncommand = "screen.network"\napp = "tiktok"\nreason = "reviewed"\nuntil = 2999-12-31\n\n'
        '[[ignore]]\ncommand = "scan"\napp = "wechat"\nreason = "reviewed"\nuntil = 2999-12-31\n',
        encoding="utf-8",
    )
    engine = ["--engine", "dask", "--scheduler", dask_threads, "-o", str(tmp_path / "out")]
    code, stdout, stderr = _invoke(["--config", str(config), "screen", "network", str(inputs["network"]), *options,
                                    *engine, "--db", f"sqlite:///{tmp_path / 'audit.db'}", "--json"])  # fmt: skip
    summary = json.loads(stdout)
    assert code == 1  # a malformed line
    assert f"1 ignore entry of {config} not applied" in " ".join(stderr.split()), stderr
    rows = [row for row in _read_back(tmp_path / "out") if row["error"] is None]
    _same_rows(rows, expected["records"], list(expected["records"][0]))
    assert sorted(r["error"] for r in summary["bad_rows"]) == sorted(expected["errors"])
    assert all(r["line"] for r in summary["bad_rows"])
    # Error rows have neither app nor verdict: Hive's partition for a null value.
    assert _partitions(tmp_path / "out") >= {("tiktok", "enjoined"), ("__HIVE_DEFAULT_PARTITION__",) * 2}
    _the_run(tmp_path / "audit.db", "network")


def test_decide_on_dask(dask_threads: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    good = inputs["decide"] / "transactions.csv"
    expected = _in_process(["decide", str(good)])["rows"]
    code, summary = _on_engine(["decide", str(inputs["decide"])], ["--engine", "dask", "--scheduler", dask_threads],
                               tmp_path / "out", tmp_path / "audit.db")  # fmt: skip
    assert code == 1
    rows = _read_back(tmp_path / "out")
    decided = [row for row in rows if row["file"] == str(good)]
    assert [row["line"] for row in sorted(decided, key=lambda r: r["line"])] == list(range(2, len(expected) + 2))
    _same_rows(decided, expected, ["app", "transaction", "where", "at", "verdict", "as_written", "enforcement",
                                   "rule_ids"])  # fmt: skip
    # The bad file: its good row decided, its bad rows named by file and line, as `appban decide` names them.
    refused = _invoke(["decide", str(inputs["decide"] / "bad.csv")])
    assert refused[0] == 2
    bad = {(row["line"], row["error"].split(":")[0]) for row in summary["bad_rows"]}
    assert bad == {(3, "transaction"), (4, "at")}
    assert "bad.csv:3: transaction:" in refused[2].replace("\n", "")
    assert _partitions(tmp_path / "out") >= {("tiktok", "prohibited"), ("tiktok", "enjoined")}
    run = _the_run(tmp_path / "audit.db", "decide")
    assert run.summary["rows"] == len(expected) + 1


def test_scan_on_dask(dask_threads: str, tmp_path: Path) -> None:
    from tests import material

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    for source in (material.require(material.WECHATPY), material.require(material.TIKTOK_PIXEL)):
        (artifacts / source.name).write_bytes(source.read_bytes())
    (artifacts / "broken.apk").write_bytes(b"PK\x03\x04 not really a zip")
    files = sorted(str(p) for p in artifacts.iterdir())
    expected = _in_process(["scan", *files, "--at", AT])
    code, summary = _on_engine(["scan", str(artifacts), "--at", AT], ["--engine", "dask", "--scheduler", dask_threads],
                               tmp_path / "out", tmp_path / "audit.db")  # fmt: skip
    assert code == 1  # the broken archive is a warning, as in process
    rows = [row for row in _read_back(tmp_path / "out", ("verdict",)) if row["error"] is None]
    assert sorted((r["path"], r["line"], r["signature"]) for r in rows) == sorted(
        (f["path"], f["line"], f["signature"]) for f in expected["findings"]
    )
    assert summary["errors"] == len(expected["warnings"]) > 0
    assert _partitions(tmp_path / "out")
    _the_run(tmp_path / "audit.db", "code")


def test_dask_worker_processes(inputs: dict[str, Path], tmp_path: Path) -> None:
    """Real worker processes, started by the command itself (no --scheduler: a LocalCluster of its own)."""
    _require("distributed")
    good = inputs["decide"] / "transactions.csv"
    expected = _in_process(["decide", str(good)])["rows"]
    code, summary = _on_engine(["decide", str(good)], ["--engine", "dask"], tmp_path / "out", tmp_path / "audit.db")
    assert code == 0 and summary["scheduler"] == "local"
    _same_rows(_read_back(tmp_path / "out"), expected, ["app", "transaction", "where", "at", "verdict"])


# ---- Spark ---------------------------------------------------------------------------------------------


def test_spark_inventory(spark: Any, inputs: dict[str, Path], tmp_path: Path) -> None:
    folder = inputs["inventory"]
    files = sorted(str(p) for p in folder.iterdir() if not p.name.startswith("_"))
    expected = _in_process(["screen", "inventory", *[f for f in files if "bad" not in f], "--at", AT])["findings"]
    bad = _in_process(["screen", "inventory", str(folder / "bad-catalog.csv"), "--at", AT])
    engine = ["--engine", "spark", "--master", "local[2]"]
    code, summary = _on_engine(["screen", "inventory", str(folder), "--at", AT], engine, tmp_path / "inv",
                               tmp_path / "inv.db")  # fmt: skip
    assert code == 1 and summary["master"] == "local[2]"
    rows = _read_back(tmp_path / "inv", ("error", "error_column", "error_value"))
    findings = [row for row in rows if row["app"] is not None or row["verdict"] is not None]
    _same_rows(findings, expected + bad["findings"], [name for name in expected[0] if name != "facts"])
    wanted = sorted((e["file"], e["line"], e["message"]) for e in bad["errors"])
    assert sorted((r["file"], r["line"], r["error"]) for r in summary["bad_rows"]) == wanted
    assert _partitions(tmp_path / "inv") >= {("tiktok", "prohibited"), ("wechat", "not_prohibited")}
    assert _the_run(tmp_path / "inv.db", "inventory").summary["by_verdict"] == summary["by_verdict"]
    assert spark.sparkContext._jsc is not None  # the command used the session, and left it running


# ---- refusals ------------------------------------------------------------------------------------------


def test_refusals(inputs: dict[str, Path], tmp_path: Path) -> None:
    good = str(inputs["decide"] / "transactions.csv")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    for args, said in (
        (["decide", good, "--engine", "dask"], "-o DIR"),
        (["decide", good, "--engine", "dask", "-o", str(tmp_path / "full")], "not an empty directory"),
        (["decide", good, "--master", "local[2]"], "only apply with --engine"),
        (["decide", good, "--engine", "dask", "--master", "local[2]", "-o", str(tmp_path / "o")], "Spark's"),
        (["decide", good, "--engine", "dask", "--format", "csv", "-o", str(tmp_path / "o")], "--format csv"),
        (["screen", "payments", good, "--engine", "dask", "--baseline", good, "-o", str(tmp_path / "o")],
         "--baseline is not supported"),
        (["scan", good, "--engine", "spark", "--rulebook", str(tmp_path), "-o", str(tmp_path / "o")],
         "--rulebook is not supported"),
        (["screen", "inventory", str(tmp_path / "nothing*.csv"), "--engine", "dask", "-o", str(tmp_path / "o")],
         "no file matches"),
    ):  # fmt: skip
        code, _, stderr = _invoke(args)
        assert code == 2, args
        assert said in stderr.replace("\n", ""), (args, stderr)


MISSING_ENGINE = textwrap.dedent(
    """
    import sys

    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pyspark", "distributed", "dask"):
                raise ImportError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Missing())
    sys.argv = ["appban", *sys.argv[1:]]
    from appban.cli import main
    main()
    """
)


@pytest.mark.parametrize(("engine", "extra"), [("spark", "appban[spark]"), ("dask", "appban[dask]")])
def test_a_missing_engine_is_exit_2_naming_the_extra(engine: str, extra: str, tmp_path: Path) -> None:
    args = ["decide", str(EXAMPLES / "transactions.csv"), "--engine", engine, "-o", str(tmp_path / "out"),
            "--db", f"sqlite:///{tmp_path / 'audit.db'}"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", MISSING_ENGINE, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"pip install '{extra}'" in done.stderr.replace("\n", "")
    assert "Traceback" not in done.stderr
