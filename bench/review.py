"""Suppressions and baselines over a screen's findings: appban.suppress.apply_to_table (rows alike in their
identity reviewed once) against reviewing every row on its own (table_facts and review() per row, as the
review did before), on matched network records.

    .venv/bin/python bench/review.py [--rows N] [--markdown]

The records: N rows over 500 customers, 2,000 client addresses, 50 hosts and 3 apps (75,000 distinct
findings, as a customer's clients are not part of a record's identity), with one suppression and a baseline
of half the findings, so that every row is matched against both. The per-row baseline runs on the first
100,000 rows; the ratio compares rows per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import pin_to_one_cpu, print_report

from appban.configschema import IgnoreEntry
from appban.suppress import Identity, Suppression, apply_to_table, review, table_facts

IDENTITY = Identity(("customer|client|src_ip", "host|dst_ip", "transaction"), by_file=False)
COMMAND = "screen network"
SAMPLE = 100_000


def records(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    customers = np.array([f"customer-{i}" for i in range(500)])
    clients = np.array([f"10.0.{i // 250}.{i % 250}" for i in range(2000)])
    hosts = np.array([f"edge{i}.tiktokcdn-us.com" for i in range(50)])
    return pa.table(
        {
            "file": pa.array(["logs/query.log"] * rows),
            "line": pa.array(np.arange(1, rows + 1)),
            "app": pa.array(np.array(["tiktok", "wechat", "douyin"])[rng.integers(0, 3, rows)]),
            "transaction": pa.array(["cdn"] * rows).dictionary_encode(),
            "customer": pa.array(customers[rng.integers(0, len(customers), rows)]),
            "client": pa.array(clients[rng.integers(0, len(clients), rows)]),
            "host": pa.array(hosts[rng.integers(0, len(hosts), rows)]),
            "dst_ip": pa.nulls(rows, pa.string()),
        }
    )


def per_row(table: pa.Table, suppressions: list[Suppression], known: set[str]) -> tuple[int, list[str]]:
    """Every row's facts and review on its own: the work grows with the rows."""
    rows = IDENTITY.columns(table).to_pylist()
    facts = [table_facts(COMMAND, row, IDENTITY, Path.cwd()) for row in rows]
    outcome = review(range(len(facts)), lambda index: facts[index], suppressions, known)
    return len(outcome.active), [f.fingerprint for f in facts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    cpu = pin_to_one_cpu()
    table = records(args.rows, args.seed)
    entry = IgnoreEntry(app="douyin", reason="bench", until=dt.date(2999, 1, 1))
    suppressions = [Suppression.from_entry(entry, "appban.toml:1", Path.cwd())]
    first = apply_to_table(COMMAND, table, IDENTITY, Path.cwd(), [], None)
    prints = first.active.column("fingerprint").unique().to_pylist()
    known = set(prints[::2])

    times = []
    for _ in range(3):
        start = time.perf_counter()
        grouped = apply_to_table(COMMAND, table, IDENTITY, Path.cwd(), suppressions, known)
        times.append(time.perf_counter() - start)
    best = min(times)
    sample = table.slice(0, SAMPLE)
    start = time.perf_counter()
    active, alone = per_row(sample, suppressions, known)
    baseline_time = time.perf_counter() - start
    together = apply_to_table(COMMAND, sample, IDENTITY, Path.cwd(), suppressions, known)
    plain = apply_to_table(COMMAND, sample, IDENTITY, Path.cwd(), [], None)
    agree = together.active.num_rows == active and plain.active.column("fingerprint").to_pylist() == alone
    rate = args.rows / best
    baseline_rate = SAMPLE / baseline_time
    split = f"{grouped.active.num_rows:,} / {grouped.suppressed.num_rows:,} / {grouped.unchanged:,}"
    per_row_rate = f"{baseline_rate:,.0f} rows/s ({SAMPLE:,} rows in {baseline_time:.2f} s)"
    print_report(
        [
            ("rows", f"{args.rows:,}"),
            ("distinct findings", f"{len(prints):,}"),
            ("reported / suppressed / in the baseline", split),
            ("baseline: table_facts + review() per row", per_row_rate),
            ("apply_to_table, best of 3", f"{rate:,.0f} rows/s ({args.rows:,} rows in {best:.2f} s)"),
            ("apply_to_table / baseline", f"{rate / baseline_rate:.0f}x"),
            ("agreement (first 100,000 rows: same rows, same fingerprints)", "yes" if agree else "NO"),
            ("python / pyarrow / numpy", f"{platform.python_version()} / {pa.__version__} / {np.__version__}"),
            ("pinned", f"cpu {cpu}, pyarrow cpu and io threads 1"),
            ("seed", str(args.seed)),
        ],
        args.markdown,
    )


if __name__ == "__main__":
    main()
