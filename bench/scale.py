"""Benchmark: parallel efficiency of the screeners on a cluster, 1 worker against 2.

What `appban screen payments|inventory|network --engine dask` and `appban decide --engine dask` run
(`appban.cli.engine`: one input file per task, screened by the in-process readers and screeners, written as a
Parquet dataset partitioned by app and verdict, summarised), on a Dask LocalCluster of worker processes with
one thread each: once with 1 worker, once with 2, on the same generated files. Parallel efficiency is
T1 / (2 x T2); 1.0 is perfect scaling, the target is at least 0.8.

Each worker's pyarrow runs on one thread (`_one_thread`), so that one worker is one CPU. The baseline is the
1-worker run, measured side by side: configurations alternate round by round, so a busy
moment of the (shared) machine falls on both alike. Each is reported as best and median wall time of the job
(the cluster started beforehand, as a long-lived cluster is; the workers' screener set-up is inside the
job), and as the workers' CPU time (user + system, summed over the workers), which other processes disturb
less. Every run's summary (rows by verdict) must equal the others', or the script exits non-zero.

With --spark, Spark local[1] against local[2] as well (the session started beforehand, the same job).

    .venv/bin/python bench/scale.py [--screeners payments,inventory,decide,network] [--files N] [--rows N]
                                    [--rounds N] [--spark] [--warm] [--markdown]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import print_report

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AT = "2025-06-01T00:00:00Z"


# ---- generated input: the examples' rows, repeated with fresh identifiers ---------------------------------


Vary = Callable[[list[str], int], list[str]]


def _repeat_csv(example: Path, folder: Path, files: int, rows: int, vary: Vary) -> None:
    with example.open(newline="") as source:
        header, *body = list(csv.reader(source))
    for number in range(files):
        with (folder / f"part-{number:03d}.csv").open("w", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow(header)
            for row in range(rows):
                writer.writerow(vary(body[row % len(body)], number * rows + row))


def payments(folder: Path, files: int, rows: int) -> None:
    # The processor export: every row a payment, some through covered wallets; ids kept distinct.
    _repeat_csv(EXAMPLES / "payments" / "processor-export.csv", folder, files, rows,
                lambda row, n: [f"ch_{n:010d}", *row[1:]])  # fmt: skip


def inventory(folder: Path, files: int, rows: int) -> None:
    _repeat_csv(EXAMPLES / "inventory" / "app-store-catalog.csv", folder, files, rows,
                lambda row, n: [f"{row[0]}-{n}", *row[1:]])  # fmt: skip


APPS = ["tiktok", "wechat", "wechat_pay", "capcut", "lemon8", "douyin", "alipay", "qq"]
TRANSACTIONS = ["app_store_distribution", "app_store_update", "internet_hosting", "cdn", "user_personal_use",
                "payment_processing", "funds_transfer"]  # fmt: skip
PLACES = ["US", "US-PR", "GB", "IN", "CA"]


def decide(folder: Path, files: int, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    chance = np.random.default_rng(7)
    start = np.datetime64("2020-01-01T00:00:00", "s").astype(np.int64)
    span = np.datetime64("2027-01-01T00:00:00", "s").astype(np.int64) - start
    for number in range(files):
        seconds = start + chance.integers(0, span, rows)
        at = pa.array(seconds.astype("datetime64[s]")).cast(pa.string())  # "2021-03-04 05:06:07"
        table = pa.table({
            "app": pa.array(np.array(APPS)[chance.integers(0, len(APPS), rows)]),
            "transaction": pa.array(np.array(TRANSACTIONS)[chance.integers(0, len(TRANSACTIONS), rows)]),
            "where": pa.array(np.array(PLACES)[chance.integers(0, len(PLACES), rows)]),
            "at": pa.compute.utf8_replace_slice(at, 10, 11, "T"),
        })  # fmt: skip
        table = table.set_column(3, "at", pa.compute.binary_join_element_wise(table.column("at"), "Z", ""))
        pacsv.write_csv(table, folder / f"part-{number:03d}.csv")


def network(folder: Path, files: int, rows: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.test_network_screen import HEADER

    hosts = ["www.tiktok.com", "v16m.tiktokcdn-us.com", "example.com", "mp.weixin.qq.com", "cdn.example.net",
             "www.douyin.com", "static.example.org", "api.example.com"]  # fmt: skip
    start = dt.datetime(2020, 11, 1, tzinfo=dt.UTC).timestamp()
    for number in range(files):
        with (folder / f"part-{number:03d}.log").open("w") as sink:
            sink.write(HEADER)
            for row in range(rows):
                client = f"10.0.{row % 200}.{row % 250 + 1}"
                sink.write(f"{start + row:.3f}\tC{row}\t{client}\t5353\t198.51.100.53\t53\tudp\t{row}\t"
                           f"{hosts[row % len(hosts)]}\t1\tC_INTERNET\t1\tA\n")  # fmt: skip


def job(name: str) -> Any:
    from appban.cli.engine import EngineJob
    from appban.distributed.decide_files import DecideFiles
    from appban.distributed.inventory import InventoryFiles
    from appban.distributed.network_files import NetworkFiles
    from appban.distributed.payments import FileFactory
    from appban.screen.inventory import InventoryOptions
    from appban.screen.network import NetworkOptions
    from appban.screen.payments import PaymentOptions

    if name == "payments":
        return EngineJob("payments", "screen payments", FileFactory.of(PaymentOptions()), app_column="service")
    if name == "inventory":
        return EngineJob("inventory", "screen inventory", InventoryFiles.of(InventoryOptions(at=AT)))
    if name == "decide":
        return EngineJob("decide", "decide", DecideFiles())
    return EngineJob("network", "screen network", NetworkFiles.of(NetworkOptions()))


GENERATORS = {"payments": payments, "inventory": inventory, "decide": decide, "network": network}
# Rows per file: 20 to 30 seconds of one worker's time over the default 8 files.
ROWS = {"payments": 400_000, "inventory": 200_000, "decide": 1_500_000, "network": 1_000_000}


# ---- runs ----------------------------------------------------------------------------------------------


def _worker_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one_thread() -> None:
    """A worker's pyarrow on one thread, as bench/report.py pins a process: one worker is then one CPU, and
    the comparison is of workers, not of pyarrow's thread pools (which would give the 1-worker run both CPUs
    while reading a CSV file)."""
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _warm(factory: Any) -> None:
    """On a worker: import the screener's modules and build it into the worker's cache, as a long-lived
    cluster that has screened before has it."""
    from appban.distributed.core import Knowledge, cached

    cached(factory, Knowledge.current())


def run_dask(
    name: str, files: list[str], workers: int, scratch: Path, warm: bool = False
) -> tuple[float, float, dict[str, int]]:
    import distributed

    from appban.cli.engine import _on_dask

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  memory_limit="3GiB") as cluster, distributed.Client(cluster) as client:  # fmt: skip
        client.wait_for_workers(workers)
        client.run(_one_thread)
        if warm:
            client.run(_warm, job(name).factory)
        before = sum(client.run(_worker_cpu).values())
        out = scratch / f"{name}-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        summary = _on_dask(job(name), files, cluster.scheduler_address, str(out))
        wall = time.perf_counter() - started
        cpu = sum(client.run(_worker_cpu).values()) - before
    shutil.rmtree(out, ignore_errors=True)
    return wall, cpu, summary.by_verdict()


def run_spark(name: str, files: list[str], cores: int, scratch: Path) -> tuple[float, float, dict[str, int]]:
    from pyspark.sql import SparkSession

    from appban.cli.engine import _on_spark

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master(f"local[{cores}]").appName("appban-bench-scale")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "2g").config("spark.sql.session.timeZone", "UTC").getOrCreate()
    )  # fmt: skip
    session.sparkContext.setLogLevel("ERROR")
    try:
        out = scratch / f"{name}-spark-{cores}"
        shutil.rmtree(out, ignore_errors=True)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        summary = _on_spark(job(name), files, session, str(out))
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # Python workers are the JVM's children and outlive the job: their CPU time is not counted here.
        cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    finally:
        session.stop()
    shutil.rmtree(out, ignore_errors=True)
    return wall, cpu, summary.by_verdict()


def _figures(name: str, engine: str, times: dict[int, list[tuple[float, float]]], one: int, two: int) -> list[Any]:
    """Best and median wall, workers' CPU time, and the efficiency from the best walls."""
    figures = []
    for workers in (one, two):
        walls = [wall for wall, _ in times[workers]]
        label = f"{workers} worker{'s' if workers > 1 else ''}" if engine.startswith("dask") else f"local[{workers}]"
        cpu = f", workers' CPU {min(cpu for _, cpu in times[workers]):.1f} s" if engine.startswith("dask") else ""
        figures.append(
            (f"{name}: {engine} {label}", f"best {min(walls):.1f} s, median {statistics.median(walls):.1f} s{cpu}")
        )
    t1 = min(wall for wall, _ in times[one])
    t2 = min(wall for wall, _ in times[two])
    figures.append((f"{name}: {engine} parallel efficiency", f"{t1 / (2 * t2):.2f} (T1 / (2 x T2), best walls)"))
    if engine.startswith("dask"):  # the work added by a second worker (its set-up, the scheduling), whatever the load
        c1 = min(cpu for _, cpu in times[one])
        c2 = min(cpu for _, cpu in times[two])
        figures.append((f"{name}: {engine} CPU-time efficiency", f"{c1 / c2:.2f} (workers' CPU at 1 / at 2)"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screeners", default="payments,inventory,decide,network")
    parser.add_argument("--files", type=int, default=8, help="input files per screener (tasks)")
    parser.add_argument("--rows", type=int, default=None, help="rows per file (default: per screener)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spark", action="store_true", help="also Spark local[1] against local[2]")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="also Dask with warm workers: each has imported and built its screener before the job (a "
        "long-lived cluster that has screened before), so the job holds only the screening",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    rows: list[tuple[str, str]] = [
        ("machine", f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start"),
        ("python", platform.python_version()),
    ]
    failed = False
    with tempfile.TemporaryDirectory(prefix="appban-bench-scale-") as temporary:
        scratch = Path(temporary)
        for name in args.screeners.split(","):
            folder = scratch / f"{name}-input"
            folder.mkdir()
            per_file = args.rows or ROWS[name]
            GENERATORS[name](folder, args.files, per_file)
            files = sorted(str(p) for p in folder.iterdir())
            size = sum(os.path.getsize(f) for f in files) / 1e6
            rows.append((f"{name}: input", f"{args.files} files x {per_file:,} rows ({size:,.0f} MB)"))
            engines: list[tuple[str, Callable[..., tuple[float, float, dict[str, int]]], tuple[int, int]]] = [
                ("dask", run_dask, (1, 2))
            ]
            if args.warm:
                engines.append(("dask, warm workers", functools.partial(run_dask, warm=True), (1, 2)))
            if args.spark:
                engines.append(("spark", run_spark, (1, 2)))
            for engine, run, (one, two) in engines:
                times: dict[int, list[tuple[float, float]]] = {one: [], two: []}
                answers = set()
                loads: list[float] = []
                for _ in range(args.rounds):
                    for workers in (one, two):
                        wall, cpu, by_verdict = run(name, files, workers, scratch)
                        times[workers].append((wall, cpu))
                        loads.append(os.getloadavg()[0])
                        answers.add(tuple(sorted(by_verdict.items())))
                if len(answers) != 1:
                    print(f"{name} on {engine}: the runs disagree: {answers}", file=sys.stderr)
                    failed = True
                rows += _figures(name, engine, times, one, two)
                rows.append(
                    (f"{name}: {engine} load", f"1-minute load average after each run: {max(loads):.1f} at most")
                )
            rows.append((f"{name}: rows by verdict", ", ".join(f"{k} {v:,}" for k, v in sorted(answers.pop()))))
            shutil.rmtree(folder)
    rows.append(("load at end", f"{os.getloadavg()[0]:.2f}"))
    print_report(rows, args.markdown)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
