"""What every benchmark shares: running on one CPU, and printing its figures (aligned text, and a markdown
table for bench/RESULTS.md)."""

from __future__ import annotations

import os


def pin_to_one_cpu() -> int:
    """Run this process, and pyarrow's thread pools, on one CPU; returns which."""
    import pyarrow as pa  # here, not at the top: bench/startup.py prints with this module and must stay small

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    return cpu


def print_report(rows: list[tuple[str, str]], markdown: bool) -> None:
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if markdown:
        print("\n| measure | value |\n|---|---|")
        for key, value in rows:
            print(f"| {key} | {value} |")
