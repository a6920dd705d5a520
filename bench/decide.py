"""Benchmark: scalar decide() against the batched decide_table().

Three ways of answering the same random questions (app, transaction, where, at):

* baseline - re-evaluate every rule for each row: `evaluate()` per row on validated inputs;
* scalar   - the public `appban.decide()` per row (validation, evaluation, rule trail);
* batched  - `appban.decide_table()` over a pyarrow table of all rows.

The run is pinned to one CPU and pyarrow is limited to one thread, so the figures compare the
algorithms, not the machine's core count. A sample of rows is checked: the batch answer must equal
the scalar one, or the script exits non-zero.

`--baseline-src DIR` also times decide_table() from another source tree (for example `git archive` of an
earlier commit unpacked, its `src/`), on the same generated rows, in a child process pinned the same way:
the two are timed in alternating rounds, so a busy moment of the machine falls on both alike. Each is given
as best and median wall time and best CPU time (the process's user + system time, which other processes on
the machine disturb less).

    .venv/bin/python bench/decide.py [--rows N] [--baseline-rows N] [--scalar-rows N] [--seed S]
                                     [--baseline-src DIR] [--rounds N] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import pin_to_one_cpu, print_report

import appban
from appban.engine.decide import evaluate
from appban.engine.law import resolve
from appban.vocabulary import Category

PLACES = ["US", "US-MT", "US-CA", "PR", "IN", "DE", "CN", "GB"]
START = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
AGREEMENT_SAMPLE = 2_000
WARMUP_ROWS = 1_000
REPEATS = 3


@dataclass(frozen=True)
class Row:
    app: str
    transaction: Category
    where: str
    at: dt.datetime


@dataclass(frozen=True)
class Workload:
    table: pa.Table
    app: np.ndarray  # index into subjects
    transaction: np.ndarray  # index into categories
    where: np.ndarray  # index into PLACES
    seconds: np.ndarray  # int64 UTC seconds
    subjects: list[str]
    categories: list[Category]

    def row(self, i: int) -> Row:
        at = dt.datetime.fromtimestamp(int(self.seconds[i]), tz=dt.UTC)
        return Row(self.subjects[self.app[i]], self.categories[self.transaction[i]], PLACES[self.where[i]], at)

    def rows(self, count: int) -> list[Row]:
        return [self.row(i) for i in range(min(count, self.table.num_rows))]


@dataclass
class Warm:
    """Warm decide_table() runs over the same table: wall and CPU seconds of each."""

    rows: int
    walls: list[float]
    cpus: list[float]

    def describe(self) -> str:
        best, median, cpu = min(self.walls), statistics.median(self.walls), min(self.cpus)
        return (
            f"{rate(self.rows / cpu)} by CPU ({cpu:.3f} s); wall best {best:.3f} s ({rate(self.rows / best)}), "
            f"median {median:.3f} s, {len(self.walls)} runs"
        )


@dataclass(frozen=True)
class Measure:
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def environment() -> dict[str, str]:
    """Versions and the CPUs available before pinning (what `nproc` prints)."""
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
        "nproc": nproc,
        "cpu": model,
    }


def generate(rows: int, seed: int, rulebook: appban.Rulebook) -> Workload:
    rng = np.random.default_rng(seed)
    subjects = sorted(rulebook.subjects.subjects)
    categories = list(Category)
    app = rng.integers(0, len(subjects), rows)
    transaction = rng.integers(0, len(categories), rows)
    where = rng.integers(0, len(PLACES), rows)
    seconds = rng.integers(int(START.timestamp()), int(END.timestamp()), rows, dtype=np.int64)

    def strings(values: list[str], codes: np.ndarray) -> pa.Array:
        return pc.take(pa.array(values, pa.string()), pa.array(codes))

    table = pa.table(
        {
            "app": strings(subjects, app),
            "transaction": strings([c.value for c in categories], transaction),
            "where": strings(PLACES, where),
            "at": pa.array(seconds, pa.timestamp("s", tz="UTC")),
        }
    )
    return Workload(table, app, transaction, where, seconds, subjects, categories)


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def baseline(rows: list[Row], rulebook: appban.Rulebook) -> Measure:
    law = resolve(rulebook)

    def run() -> None:
        for row in rows:
            evaluate(law, row.app, row.transaction, row.where, row.at, {})

    return Measure(len(rows), timed(run))


def scalar(rows: list[Row], rulebook: appban.Rulebook) -> Measure:
    def run() -> None:
        for row in rows:
            appban.decide(row.app, row.transaction.value, row.where, row.at, rulebook=rulebook)

    return Measure(len(rows), timed(run))


def batched(table: pa.Table, rulebook: appban.Rulebook, into: Warm) -> pa.Table:
    """REPEATS warm runs added to `into`, and the output of the last one (for the agreement check)."""
    appban.decide_table(table.slice(0, WARMUP_ROWS), rulebook=rulebook)
    out = table
    for _ in range(REPEATS):
        cpu, start = time.process_time(), time.perf_counter()
        out = appban.decide_table(table, rulebook=rulebook)
        into.walls.append(time.perf_counter() - start)
        into.cpus.append(time.process_time() - cpu)
    return out


def measure_only(rows: int, seed: int) -> None:
    """The child's part with --baseline-src: warm runs of whatever appban is first on the path, as JSON."""
    pin_to_one_cpu()
    rulebook = appban.load_rulebook()
    warm = Warm(rows, [], [])
    batched(generate(rows, seed, rulebook).table, rulebook, warm)
    print(json.dumps({"walls": warm.walls, "cpus": warm.cpus}))


def baseline_round(source: Path, rows: int, seed: int, into: Warm) -> None:
    env = {**os.environ, "PYTHONPATH": str(source)}
    argv = [sys.executable, __file__, "--measure-only", "--rows", str(rows), "--seed", str(seed)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the baseline in {source} failed:\n{done.stderr}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    into.walls.extend(found["walls"])
    into.cpus.extend(found["cpus"])


def agreement(work: Workload, decided: pa.Table, rulebook: appban.Rulebook, seed: int) -> tuple[int, int, list[str]]:
    """Compare the full-table batch answer with decide() on a random sample of its rows."""
    rng = np.random.default_rng(seed + 1)
    count = min(AGREEMENT_SAMPLE, work.table.num_rows)
    sample = np.sort(rng.choice(work.table.num_rows, size=count, replace=False))
    out = decided.take(pa.array(sample))
    columns = {name: out.column(name).to_pylist() for name in ("verdict", "as_written", "enforcement", "rule_ids")}
    mismatches: list[str] = []
    for j, i in enumerate(sample.tolist()):
        row = work.row(i)
        d = appban.decide(row.app, row.transaction.value, row.where, row.at, rulebook=rulebook)
        want = {
            "verdict": d.verdict.value,
            "as_written": d.as_written.value,
            "enforcement": d.enforcement.value,
            "rule_ids": list(d.rule_ids),
        }
        got = {name: values[j] for name, values in columns.items()}
        if got != want:
            mismatches.append(f"row {i} {row}: batch {got} != scalar {want}")
    return count - len(mismatches), count, mismatches


def rate(value: float) -> str:
    return f"{value:,.0f} rows/s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the batched run")
    parser.add_argument("--baseline-rows", type=int, default=20_000, help="rows for the per-row evaluate() baseline")
    parser.add_argument("--scalar-rows", type=int, default=20_000, help="rows for the per-row decide() run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline-src", type=Path, help="another tree's src/ directory, timed side by side")
    parser.add_argument("--rounds", type=int, default=2, help=f"alternating rounds of {REPEATS} warm runs each")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--markdown", action="store_true", help="also print the report as a markdown table")
    args = parser.parse_args(argv)
    if args.measure_only:
        measure_only(args.rows, args.seed)
        return 0

    env = environment()
    cpu = pin_to_one_cpu()

    rulebook = appban.load_rulebook()
    work = generate(args.rows, args.seed, rulebook)

    # Cold: the first call on a rulebook nobody has used, so it pays for resolving the law and
    # compiling every (app, category, place) key it meets.
    load_start = time.perf_counter()
    fresh = appban.load_rulebook()
    load_seconds = time.perf_counter() - load_start
    cold = Measure(work.table.num_rows, timed(lambda: appban.decide_table(work.table, rulebook=fresh)))

    base = baseline(work.rows(args.baseline_rows), rulebook)
    one = scalar(work.rows(args.scalar_rows), rulebook)
    batch = Warm(work.table.num_rows, [], [])
    before = Warm(work.table.num_rows, [], [])
    decided = work.table
    for _ in range(max(args.rounds, 1)):
        decided = batched(work.table, rulebook, batch)
        if args.baseline_src:
            baseline_round(args.baseline_src.resolve(), args.rows, args.seed, before)
    agreed, checked, mismatches = agreement(work, decided, rulebook, args.seed)

    lines = [
        ("rows (batched)", f"{work.table.num_rows:,}"),
        ("baseline: evaluate() per row", f"{rate(base.rate)} ({base.rows:,} rows in {base.seconds:.2f} s)"),
        ("scalar: decide() per row", f"{rate(one.rate)} ({one.rows:,} rows in {one.seconds:.2f} s)"),
        ("batched: decide_table(), warm", batch.describe()),
        *(
            [
                (f"baseline tree: decide_table(), warm ({args.baseline_src})", before.describe()),
                ("now / baseline tree, by CPU", f"{min(before.cpus) / min(batch.cpus):.2f}x"),
                ("now / baseline tree, by best wall", f"{min(before.walls) / min(batch.walls):.2f}x"),
            ]
            if args.baseline_src
            else []
        ),
        (
            "batched: decide_table(), cold first call",
            f"{rate(cold.rate)} ({cold.rows:,} rows in {cold.seconds:.3f} s; load_rulebook() {load_seconds:.3f} s)",
        ),
        ("batched / baseline", f"{base.seconds / base.rows * batch.rows / min(batch.walls):,.0f}x"),
        ("batched / scalar", f"{one.seconds / one.rows * batch.rows / min(batch.walls):,.0f}x"),
        ("agreement", f"{agreed}/{checked}"),
        ("python / pyarrow / numpy", f"{env['python']} / {env['pyarrow']} / {env['numpy']}"),
        ("nproc", env["nproc"]),
        ("cpu", env["cpu"]),
        ("pinned", f"cpu {cpu} (os.sched_setaffinity), pyarrow cpu and io threads 1"),
        ("seed", str(args.seed)),
    ]
    print_report(lines, args.markdown)
    for mismatch in mismatches[:20]:
        print(mismatch, file=sys.stderr)
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
