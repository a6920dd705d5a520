"""Benchmark: inventory screening of a generated catalog, against per-row fuzzy matching.

A catalog of N rows is generated with a realistic mix: most rows are unrelated apps, and some carry
covered apps' exact identifiers, their names from their own publishers, look-alike names, or
near-miss names ("Tick Tock Clock"). Two ways of finding the covered apps are timed on one core:

* baseline - rapidfuzz against every alias for every row (`process.extractOne` per row), the obvious
  approach, timed on a sample and reported as rows/second;
* appban    - `Screener.screen()`: exact-identifier hash join, vectorised blocking on normalised name
  keys, then per-candidate resolution and the engine's decisions; timed end to end from the CSV file
  (read + screen) and for screening alone.

    .venv/bin/python bench/inventory.py [--rows N] [--baseline-rows N] [--seed S] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from rapidfuzz import fuzz, process
from report import pin_to_one_cpu, print_report

import appban
from appban.identity.normalize import disguise_key
from appban.screen.inventory import InventoryOptions, Screener
from appban.tables import line_mapper, read_table

WORDS = [
    "photo",
    "video",
    "music",
    "super",
    "fast",
    "smart",
    "easy",
    "pocket",
    "daily",
    "cloud",
    "secure",
    "simple",
    "magic",
    "happy",
    "quick",
    "mini",
    "scanner",
    "editor",
    "player",
    "notes",
    "weather",
    "calendar",
    "fitness",
    "recipe",
    "budget",
    "translator",
    "keyboard",
    "camera",
    "clock",
    "puzzle",
    "chess",
    "radio",
    "maps",
    "wallet",
    "reader",
    "diary",
    "habit",
    "timer",
    "sleep",
    "yoga",
]
COVERED = [  # (name, publisher, package) of covered or related apps, as real listings show them
    ("TikTok", "TikTok Pte. Ltd.", "com.zhiliaoapp.musically"),
    ("WeChat", "Tencent Technology (Shenzhen) Company Limited", "com.tencent.mm"),
    ("CapCut", "ByteDance", "com.lemon.lvoverseas"),
    ("Lemon8", "ByteDance", "com.bd.nproject"),
    ("QQ", "Tencent", "com.tencent.mobileqq"),
    ("Alipay", "Ant Group", "com.eg.android.AlipayGphone"),
]
LOOKALIKES = ["TіkTok Pro", "T1kTok Lite", "TikTokk", "WeChat Plus", "$hareit", "ＷｅＣｈａｔ"]
NEAR_MISSES = ["Tick Tock Clock", "WeChat Translator Keyboard", "Tik Tac Toe Classic", "Cap Cut Templates"]
STOREFRONTS = ["US", "US", "US", "GB", "DE", "IN", "PR", "JP"]


def generate(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, size=rows, p=[0.97, 0.015, 0.01, 0.005])  # unrelated, covered, look-alike, near miss
    w1, w2, w3 = (rng.integers(0, len(WORDS), rows) for _ in range(3))
    serial = rng.integers(0, 10**7, rows)
    names, publishers, packages = [], [], []
    for i in range(rows):
        k = kind[i]
        if k == 1:
            name, publisher, package = COVERED[serial[i] % len(COVERED)]
            if serial[i] % 3 == 0:
                package = ""  # name and publisher only, as in an Intune export
        elif k == 2:
            name, publisher = LOOKALIKES[serial[i] % len(LOOKALIKES)], "Fun Apps LLC"
            package = f"com.fun.app{serial[i]}"
        elif k == 3:
            name, publisher = NEAR_MISSES[serial[i] % len(NEAR_MISSES)], "Utility Co"
            package = f"com.util.app{serial[i]}"
        else:
            name = f"{WORDS[w1[i]].title()} {WORDS[w2[i]].title()} {WORDS[w3[i]]} {serial[i]}"
            publisher = f"{WORDS[w3[i]].title()} Labs {serial[i] % 5000}"
            package = f"com.{WORDS[w1[i]]}{serial[i] % 5000}.{WORDS[w2[i]]}"
        names.append(name)
        publishers.append(publisher)
        packages.append(package)
    seconds = rng.integers(int(dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()),
                           int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()), rows)  # fmt: skip
    stamps = [dt.datetime.fromtimestamp(int(s), dt.UTC).isoformat() for s in seconds]
    return pa.table(
        {
            "listing_id": [f"L{i}" for i in range(rows)],
            "kind": np.where(rng.random(rows) < 0.7, "listing", "update").tolist(),
            "package_id": packages,
            "name": names,
            "publisher": publishers,
            "storefront": [STOREFRONTS[j] for j in rng.integers(0, len(STOREFRONTS), rows)],
            "last_updated": stamps,
        }
    )


def baseline(table: pa.Table, rows: int) -> tuple[float, int]:
    """Rapidfuzz against every alias, for every row: the approach without keys or blocking."""
    registry = appban.load_rulebook()
    aliases = sorted({disguise_key(a) for s in registry.subjects.subjects.values() for a in (s.name, *s.aliases)})
    names = table.column("name").to_pylist()[:rows]
    start = time.perf_counter()
    hits = 0
    for name in names:
        if process.extractOne(disguise_key(name), aliases, scorer=fuzz.ratio, score_cutoff=88) is not None:
            hits += 1
    return rows / (time.perf_counter() - start), hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    cpu = pin_to_one_cpu()

    t0 = time.perf_counter()
    table = generate(args.rows, args.seed)
    generated = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.csv"
        pacsv.write_csv(table, path)
        screener = Screener(appban.load_rulebook(), InventoryOptions(where="US"))
        screener.screen(table.slice(0, 1000), "warm-up")  # build resolvers and compile the law once
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            loaded = read_table(path, all_text=True)
            result = screener.screen(loaded, str(path), line_mapper(path))
            timings.append(time.perf_counter() - start)
        start = time.perf_counter()
        screen_only = screener.screen(loaded, str(path), line_mapper(path))
        screen_time = time.perf_counter() - start
    base_rate, base_hits = baseline(table, min(args.baseline_rows, args.rows))
    end_to_end = args.rows / min(timings)
    matches = {}
    for kind in result.findings.column("match").to_pylist():
        matches[kind] = matches.get(kind, 0) + 1
    report = [
        ("rows", f"{args.rows:,} (generated in {generated:.1f} s)"),
        ("findings", f"{result.findings.num_rows:,} {dict(sorted(matches.items()))}"),
        ("row errors", f"{len(result.errors)}"),
        ("baseline: rapidfuzz extractOne per row", f"{base_rate:,.0f} rows/s ({base_hits} hits in the sample)"),
        ("appban: read CSV + screen, best of 3", f"{end_to_end:,.0f} rows/s ({min(timings):.2f} s)"),
        ("appban: screen only", f"{args.rows / screen_time:,.0f} rows/s ({screen_time:.2f} s)"),
        ("end to end / baseline", f"{end_to_end / base_rate:,.0f}x"),
        ("findings equal across runs", str(screen_only.findings.num_rows == result.findings.num_rows)),
        ("python / pyarrow / numpy", f"{platform.python_version()} / {pa.__version__} / {np.__version__}"),
        ("pinned", f"cpu {cpu} (os.sched_setaffinity), pyarrow cpu and io threads 1"),
    ]
    print_report(report, args.markdown)


if __name__ == "__main__":
    main()
