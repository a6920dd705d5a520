"""`--engine spark|dask`: a screening command run on a cluster, one input file per task.

The commands that take it (`screen inventory|payments|network`, `decide`, `scan`) build their options as they
do in process and hand them here as a factory of `appban.distributed` (a PathScreener: each task reads and
screens one file exactly as the in-process command does). This module lists the input files, runs them on
the engine, writes the rows as a Parquet dataset partitioned hive-style by app and verdict under `-o DIR`,
prints a summary (counts by verdict and app, bad rows with their file and line, the rulebook version and
knowledge bundle), and records the run in the audit store.

Nothing here imports pyspark, dask or pandas before a command asks for an engine: `appban --help` and the
quick commands load none of them (tests/test_startup.py).
"""

from __future__ import annotations

import glob
import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from appban.cli.common import err, fail, out
from appban.cli.conventions import dumps
from appban.cli.given import given as given_text

if TYPE_CHECKING:
    import pyarrow as pa

    from appban.distributed.core import Factory


class Engine(StrEnum):
    spark = "spark"
    dask = "dask"


EngineOption = Annotated[
    Engine | None,
    typer.Option(
        "--engine",
        case_sensitive=False,
        help="Run on Spark or Dask, one input file per task, writing a Parquet dataset to -o DIR "
        "(default: in this process).",
        show_default=False,
    ),
]
MasterOption = Annotated[
    str | None,
    typer.Option("--master", metavar="URL", help="With --engine spark: the Spark master (default local[*]).",
                 show_default=False),
]  # fmt: skip
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        help="With --engine dask: the scheduler's address (default: a local cluster of worker processes).",
        show_default=False,
    ),
]
EngineDbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="With --engine: the audit database the run is recorded in (default: $APPBAN_DB, else ./appban-audit.db).",
        show_default=False,
    ),
]

PARTITIONS = ("app", "verdict")
_EXTRAS = {Engine.spark: (("pyspark.sql",), "spark"), Engine.dask: (("dask.dataframe", "distributed"), "dask")}
_SHOWN_ERRORS = 100


@dataclass
class EngineJob:
    """One command's work on an engine: what the audit store calls it, the factory each task builds, and
    where its rows keep their app, verdict and location."""

    kind: str  # the run kind in the audit store
    command: str  # as the user typed it, for messages
    factory: Factory
    options: dict[str, Any] = field(default_factory=dict)  # recorded with the run
    app_column: str = "app"
    verdict_column: str = "verdict"
    file_column: str = "file"
    line_column: str | None = "line"
    entries: bool = False  # scan: each entry of a directory named is one artefact (a file or a folder)


@dataclass
class EngineSummary:
    rows: int = 0  # rows written but errors: findings, records, decisions (and payments set aside)
    by_app: dict[str, dict[str, int]] = field(default_factory=dict)  # app -> verdict -> rows; "-" for none
    errors: int = 0
    bad_rows: list[dict[str, Any]] = field(default_factory=list)  # file, line, error; the first hundred

    def by_verdict(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for verdicts in self.by_app.values():
            for verdict, count in verdicts.items():
                totals[verdict] = totals.get(verdict, 0) + count
        return dict(sorted(totals.items()))

    def add(self, app: str | None, verdict: str | None, count: int) -> None:
        verdicts = self.by_app.setdefault(app or "-", {})
        verdicts[verdict or "-"] = verdicts.get(verdict or "-", 0) + count
        self.rows += count


def engine_output(
    engine: Engine | None,
    master: str | None,
    scheduler: str | None,
    db: str | None,
    fmt: str,
    output: Path | None,
    **refused: object,
) -> Path | None:
    """None when the command runs in process; with --engine, the output directory, after refusing what a run
    on an engine cannot do (the `refused` options given, by flag). --master, --scheduler and --db only mean
    something with --engine (and with the right one)."""
    if engine is None:
        given = [flag for flag, value in (("--master", master), ("--scheduler", scheduler), ("--db", db)) if value]
        if given:
            fail(f"{', '.join(given)} only apply with --engine spark|dask")
        return None
    if master is not None and engine is not Engine.spark:
        fail("--master is Spark's: give --engine spark, or --scheduler ADDRESS for Dask")
    if scheduler is not None and engine is not Engine.dask:
        fail("--scheduler is Dask's: give --engine dask, or --master URL for Spark")
    for flag, value in refused.items():
        if value not in (None, False, "none"):
            name = "--" + flag.replace("_", "-")
            fail(f"{name} is not supported with --engine: {_WHY.get(flag, 'run without --engine for it')}")
    if fmt not in ("table", "json"):
        fail(f"--format {fmt}: with --engine the rows go to a Parquet dataset in -o DIR; the summary is table or json")
    if output is None:
        fail("--engine writes a Parquet dataset partitioned by app and verdict: give -o DIR")
    from appban.distributed.locations import check_scheme, local_path

    local = local_path(given_text(output))
    if local is None:  # a URL: its filesystem is reached when the run starts (Spark's needs the session)
        if engine is Engine.dask:
            try:
                check_scheme(given_text(output), "-o")
            except ValueError as exc:  # LocationError: the scheme and the package it needs
                fail(str(exc))
        return output
    where = Path(local)
    if where.exists() and (not where.is_dir() or any(where.iterdir())):
        fail(f"-o {given_text(output)}: exists and is not an empty directory; the dataset goes into a new or empty one")
    return output


_WHY = {
    "baseline": "a baseline is reviewed against the whole result on one machine; review the dataset instead",
    "rulebook": "every worker screens under the knowledge in force where it runs; install a bundle with "
    "`appban rules update` (or `rules use`) on the driver and the workers",
    "markers": "every worker reads the markers of the knowledge in force",
}


def input_files(
    paths: list[Path], *, entries: bool = False, listed: Callable[[str], list[str]] | None = None
) -> list[str]:
    """The files named: a file as given; a directory's files (sorted; with `entries`, its entries, files and
    folders alike); a glob's matches. Names starting with _ or . inside a directory are left out. A URL is
    listed by `listed` (the engine's filesystem: appban.distributed.locations), a local path here."""
    from appban.distributed.locations import has_glob, scheme

    found: list[str] = []
    for path in paths:
        text = given_text(path)
        if scheme(text) is not None:
            if listed is None:
                fail(f"{text}: a URL is read with --engine spark|dask only")
            found += listed(text)
            continue
        if has_glob(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                fail(f"{text}: no file matches")
            found += [match for match in matches if entries or os.path.isfile(match)]
        elif path.is_dir():
            found += _directory(text, entries)
        elif os.path.lexists(path):
            found.append(text)
        else:
            fail(f"{text}: no such file or directory")
    unique = list(dict.fromkeys(found))
    if not unique:
        fail(f"no input files in {', '.join(str(p) for p in paths)}")
    return unique


def _directory(folder: str, entries: bool) -> list[str]:
    from appban.distributed.locations import HIDDEN

    if entries:
        names = sorted(name for name in os.listdir(folder) if not name.startswith(HIDDEN))
        return [os.path.join(folder, name) for name in names]
    files = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith(HIDDEN))
        files += [os.path.join(root, name) for name in sorted(names) if not name.startswith(HIDDEN)]
    return files


def run(
    job: EngineJob,
    paths: list[Path],
    engine: Engine,
    master: str | None,
    scheduler: str | None,
    output: Path,
    db: str | None,
    as_json: bool,
    fail_on: str = "none",
) -> None:
    """The job on the engine; the summary on standard output; the run in the audit store. Exit 1 when rows
    or files could not be read (or --fail-on is crossed), 2 when the run could not be made."""
    from appban.distributed.locations import scheme

    _say_unsuppressed(job.command)
    urls = any(scheme(given_text(path)) is not None for path in paths)
    files = [] if urls else input_files(paths, entries=job.entries)  # local names: refused before an engine starts
    _engine_modules(engine)  # before anything is recorded
    # As given when a URL (the audit run records it so); a local directory made absolute, as before.
    location = given_text(output) if scheme(given_text(output)) is not None else str(output.resolve())
    with _spark_session(engine, master, job) as session:
        try:
            if urls:
                files = input_files(paths, entries=job.entries, listed=_lister(engine, session, job.entries))
            _check_reach(engine, session, files, location)
        except ValueError as exc:  # LocationError: names the path or -o, and what to install
            fail(str(exc))
        _run(job, files, engine, master, scheduler, session, location, db, as_json, fail_on)


def _say_unsuppressed(command: str) -> None:
    """The configuration's ignore entries for this command are not applied on a cluster (the dataset keeps
    every row, and the counts and --fail-on see them all): said, so that nobody takes the run for a reviewed one."""
    from appban.cli.configure import loaded

    config = loaded()
    entries = [entry for entry in config.suppressions if entry.covers_command(command)] if config else []
    if config is not None and entries:
        err.print(
            Text(
                f"appban: {len(entries)} ignore entr{'y' if len(entries) == 1 else 'ies'} of {config.path} "
                "not applied: an --engine run keeps every row in its dataset, and its counts and --fail-on "
                "count them all"
            ),
            style="yellow",
        )


def _lister(engine: Engine, session: Any, entries: bool) -> Callable[[str], list[str]]:
    """How the driver lists a URL: Spark's Hadoop FileSystem, or fsspec for Dask."""
    from appban.distributed import locations

    if engine is Engine.spark:
        return lambda url: locations.list_hadoop(session, url, entries)
    return lambda url: locations.list_fsspec(url, entries, "input")


def _check_reach(engine: Engine, session: Any, files: list[str], location: str) -> None:
    """Before anything is recorded: a URL output is a new or empty directory, and the workers' filesystem
    layer (fsspec, here as on the workers) knows every URL scheme the tasks will open."""
    from appban.distributed import locations

    if locations.local_path(location) is None:
        if engine is Engine.spark:
            locations.check_output_hadoop(session, location)
        else:
            locations.check_output_fsspec(location)
    first_of_scheme: dict[str, str] = {}
    for file in files:
        kind = locations.scheme(file)
        if kind is not None:
            first_of_scheme.setdefault(kind, file)
    for first in first_of_scheme.values():
        locations.check_scheme(first, "input")


@contextmanager
def _spark_session(engine: Engine, master: str | None, job: EngineJob) -> Iterator[Any]:
    """The Spark session a run uses (a caller's active one, else one started here and stopped after), or
    None for Dask."""
    if engine is not Engine.spark:
        yield None
        return
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()  # a caller's session (a notebook, a test) is used, not stopped
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_DRIVER_PYTHON") or _python())
    session = existing or (
        SparkSession.builder.master(master or "local[*]")
        .appName(f"appban {job.command}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        if existing is None:
            session.stop()


def _run(
    job: EngineJob,
    files: list[str],
    engine: Engine,
    master: str | None,
    scheduler: str | None,
    session: Any,
    location: str,
    db: str | None,
    as_json: bool,
    fail_on: str,
) -> None:
    from appban.cli.audit import _store  # the audit commands' opener: a clean exit 2 when it cannot open
    from appban.distributed.core import Knowledge

    knowledge = Knowledge.current()
    where = {"master": master or "local[*]"} if engine is Engine.spark else {"scheduler": scheduler or "local"}
    recorded = {**job.options, "engine": engine.value, **where, "output": location, "inputs": len(files)}
    with _store(db, create=True) as store:
        run_id = _create_run(store, job, files, recorded, knowledge)
        try:
            with err.status(f"screening {len(files):,} file(s) on {engine.value}…"):
                if engine is Engine.spark:
                    summary = _on_spark(job, files, session, location)
                else:
                    summary = _on_dask(job, files, scheduler, location)
        except BaseException as exc:
            store.fail_run(run_id, f"{type(exc).__name__}: {exc}"[:2000])
            if isinstance(exc, KeyboardInterrupt | typer.Exit | SystemExit):
                raise
            fail(f"{job.command} on {engine.value}: {type(exc).__name__}: {exc}")
        document: dict[str, Any] = {
            "command": job.command,
            "engine": engine.value,
            **where,
            "run_id": run_id,
            "output": location,
            "partitioning": list(PARTITIONS),
            "rulebook_version": knowledge.rulebook_version,
            "bundle": knowledge.bundle,
            "inputs": len(files),
            "rows": summary.rows,
            "by_verdict": summary.by_verdict(),
            "by_app": summary.by_app,
            "errors": summary.errors,
            "bad_rows": summary.bad_rows,
        }
        store.finish_run(run_id, {key: value for key, value in document.items() if key != "run_id"})
    if as_json:
        print(dumps(document))
    else:
        _print(document)
    crossed = (fail_on == "any" and summary.rows > 0) or (
        fail_on == "prohibited" and document["by_verdict"].get("prohibited", 0) > 0
    )
    if crossed:
        err.print(Text(f"appban: --fail-on {fail_on} crossed", style="red"))
    if summary.errors or crossed:
        raise typer.Exit(1)


def _create_run(store: Any, job: EngineJob, files: list[str], options: dict[str, Any], knowledge: Any) -> str:
    from appban.store.audit import OWNER

    shown = ", ".join(files[:20]) + (f" and {len(files) - 20:,} more" if len(files) > 20 else "")
    run_id: str = store.create_run(
        kind=job.kind,
        filename=shown,
        caller="cli",
        rulebook_version=knowledge.rulebook_version,
        options=options,
        owner=OWNER,
        bundle=knowledge.bundle,
    )
    store.start_run(run_id)
    return run_id


def _engine_modules(engine: Engine) -> None:
    modules, extra = _EXTRAS[engine]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            fail(f"--engine {engine.value} needs {module.split('.')[0]}, which cannot be imported ({exc}): "
                 f"pip install 'appban[{extra}]'")  # fmt: skip


# ---- Spark ---------------------------------------------------------------------------------------------


def _on_spark(job: EngineJob, files: list[str], session: Any, location: str) -> EngineSummary:
    from pyspark.sql import functions as F

    from appban.distributed.spark import run_spark

    session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    # One file per task: as many partitions as files, up to a bound on the driver's task bookkeeping.
    rows = session.sparkContext.parallelize([(path,) for path in files], min(len(files), 10_000))
    paths = session.createDataFrame(rows, "path string")  # sliced on the driver: no shuffle
    screened = run_spark(paths, job.factory, path_column="path")
    screened = screened.withColumn("app", F.col(job.app_column)).withColumn("verdict", F.col(job.verdict_column))
    screened.write.mode("append").partitionBy(*PARTITIONS).parquet(location)
    return _spark_summary(session, job, location)


def _spark_summary(session: Any, job: EngineJob, location: str) -> EngineSummary:
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    summary = EngineSummary()
    try:
        back = session.read.parquet(location)
    except AnalysisException:  # no part file written: no row at all
        return summary
    counts = back.groupBy("app", "verdict", F.col("error").isNotNull().alias("bad")).count().collect()
    for row in counts:
        if row["bad"]:
            summary.errors += row["count"]
        else:
            summary.add(row["app"], row["verdict"], row["count"])
    if summary.errors:
        columns = [job.file_column, *([job.line_column] if job.line_column else []), "error"]
        bad = back.where(F.col("error").isNotNull()).select(*columns).orderBy(*columns[:-1]).limit(_SHOWN_ERRORS)
        summary.bad_rows = [_bad_row(row.asDict(), job) for row in bad.collect()]
    return summary


def _python() -> str:
    import sys

    return sys.executable


# ---- Dask ----------------------------------------------------------------------------------------------


def _on_dask(job: EngineJob, files: list[str], scheduler: str | None, location: str) -> EngineSummary:
    bag = importlib.import_module("dask.bag")  # through importlib: dask is optional and untyped
    distributed = importlib.import_module("distributed")

    from appban.distributed.dask import run_dask

    cluster = None if scheduler else distributed.LocalCluster(processes=True, dashboard_address=None)
    client = distributed.Client(scheduler or cluster, set_as_default=False)
    try:
        paths = bag.from_sequence(files, npartitions=min(len(files), 10_000))
        screened = run_dask(paths, job.factory)
        meta = _part_summary(_empty_output(job), job, location, None)
        parts = screened.map_partitions(_write_part, job, location, meta=meta)
        summaries = client.compute(parts).result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return _dask_summary(summaries, job)


def _empty_output(job: EngineJob) -> pa.Table:
    from appban.distributed.core import path_schema

    return path_schema(job.factory).empty_table()


def _write_part(frame: Any, job: EngineJob, location: str, partition_info: dict[str, Any] | None = None) -> Any:
    """One partition's rows into the dataset (part files named by the partition: a task run again writes
    the same files again), and what the summary needs of them."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from appban.distributed.locations import fsspec_filesystem, scheme

    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    number = 0 if partition_info is None else int(partition_info["number"])
    if table.num_rows:
        with_keys = table.append_column("app", table.column(job.app_column)) if job.app_column != "app" else table
        if job.verdict_column != "verdict":
            with_keys = with_keys.append_column("verdict", table.column(job.verdict_column))
        root, filesystem = location, None
        if scheme(location) is not None:  # a URL: written through fsspec, as it was listed
            filesystem, root = fsspec_filesystem(location, "-o")
        ds.write_dataset(
            with_keys, root, filesystem=filesystem, format="parquet", partitioning=list(PARTITIONS),
            partitioning_flavor="hive",
            basename_template=f"part-{number:05d}-{{i}}.parquet", existing_data_behavior="overwrite_or_ignore",
        )  # fmt: skip
    return _part_summary(table, job, location, number)


def _part_summary(table: pa.Table, job: EngineJob, location: str, number: int | None) -> Any:
    """Rows by app, verdict and whether they are errors, then the first error rows, as a small frame."""
    import pyarrow.compute as pc

    pd = importlib.import_module("pandas")

    counts: dict[tuple[Any, Any, bool], int] = {}
    if table.num_rows:
        bad = pc.is_valid(table.column("error")).to_pylist()
        for key in zip(table.column(job.app_column).to_pylist(), table.column(job.verdict_column).to_pylist(), bad,
                       strict=True):  # fmt: skip
            counts[key] = counts.get(key, 0) + 1
    rows: list[dict[str, Any]] = [
        {"app": app, "verdict": verdict, "bad": bad, "count": count, "file": None, "line": None, "error": None}
        for (app, verdict, bad), count in counts.items()
    ]
    if table.num_rows:
        errors = table.filter(pc.is_valid(table.column("error"))).slice(0, _SHOWN_ERRORS).to_pylist()
        for error in errors:
            row = _bad_row(error, job)
            rows.append({"app": None, "verdict": None, "bad": True, "count": 0, **row})
    types = {"app": "string", "verdict": "string", "bad": "bool", "count": "int64", "file": "string",
             "line": "Int64", "error": "string"}  # fmt: skip
    return pd.DataFrame(rows, columns=list(types)).astype(types)


def _dask_summary(frame: Any, job: EngineJob) -> EngineSummary:
    summary = EngineSummary()
    bad_rows = []
    for row in frame.to_dict("records"):
        if row["count"]:
            if row["bad"]:
                summary.errors += int(row["count"])
            else:
                summary.add(_text(row["app"]), _text(row["verdict"]), int(row["count"]))
        elif row["error"] is not None and row["error"] == row["error"]:
            line = row["line"]
            bad_rows.append({"file": _text(row["file"]), "line": None if _missing(line) else int(line),
                             "error": row["error"]})  # fmt: skip
    bad_rows.sort(key=lambda row: (row["file"] or "", row["line"] or 0))
    summary.bad_rows = bad_rows[:_SHOWN_ERRORS]
    return summary


def _missing(value: Any) -> bool:
    return bool(importlib.import_module("pandas").isna(value))


def _text(value: Any) -> str | None:
    return None if value is None or _missing(value) else str(value)


def _bad_row(row: dict[str, Any], job: EngineJob) -> dict[str, Any]:
    line = row.get(job.line_column) if job.line_column else None
    return {"file": row.get(job.file_column), "line": line, "error": row.get("error")}


# ---- the summary on a terminal -------------------------------------------------------------------------


def _print(document: dict[str, Any]) -> None:
    from appban.vocabulary import Verdict

    out.print(
        f"[bold]{document['command']}[/bold] on {document['engine']}: {document['inputs']:,} input(s), "
        f"{document['rows']:,} row(s) written to {document['output']} (partitioned by app and verdict)"
    )
    grid = Table(title="Rows by app and verdict", title_justify="left")
    verdicts = list(document["by_verdict"])
    grid.add_column("app")
    for verdict in verdicts:
        style = _style(verdict, Verdict)
        grid.add_column(Text(verdict, style=style), justify="right")
    for app, counts in sorted(document["by_app"].items()):
        grid.add_row(app, *(f"{counts.get(verdict, 0):,}" for verdict in verdicts))
    out.print(grid)
    if document["errors"]:
        out.print(Text(f"{document['errors']:,} row(s) or file(s) could not be read:", style="yellow"))
        for row in document["bad_rows"][:20]:
            where = f"{row['file']}:{row['line']}" if row["line"] is not None else str(row["file"])
            said = str(row["error"])
            out.print(Text(f"  {said}" if said.startswith(where) else f"  {where}: {said}", style="yellow"))
    bundle = f", bundle {document['bundle']}" if document["bundle"] else ""
    out.print(f"rulebook {document['rulebook_version']}{bundle}; run {document['run_id']} in the audit store")


def _style(verdict: str, kinds: Any) -> str:
    from appban.cli.common import verdict_style

    return verdict_style(kinds(verdict)) if verdict in {v.value for v in kinds} else ""
