"""How every benchmark prints its figures: aligned text, and a markdown table for bench/RESULTS.md."""

from __future__ import annotations


def print_report(rows: list[tuple[str, str]], markdown: bool) -> None:
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if markdown:
        print("\n| measure | value |\n|---|---|")
        for key, value in rows:
            print(f"| {key} | {value} |")
