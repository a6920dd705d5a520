"""Benchmark: how long `appban` takes to start and answer, as a user runs it (one process per command).

Each case is a fresh `appban ...` process (the installed script's entry point, run by this interpreter); its
wall time (spawn to exit) and peak memory (the child's maximum resident set size) are measured. The floor is
`python -c pass` with the same interpreter. The cases are run round-robin, so a busy moment of the machine
falls on all of them alike, after warm-up runs that also fill the compiled rulebook cache (in a temporary
directory, so the user's own cache plays no part).

Cases: `check`, `timeline` and `rules list` (the target: at most 300 ms wall median each), `--help`, and
`check` with the compiled rulebook cache turned off (APPBAN_NO_CACHE=1), which reads the YAML every time.
`--baseline-src DIR` adds the same cases run from another source tree (for example a `git worktree` of an
earlier commit), side by side with this one.

    .venv/bin/python bench/startup.py [--runs N] [--baseline-src DIR] [--instructions] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# report.py imports pyarrow only to pin threads: a child forked from a large parent would report the parent's
# resident size as its own peak, so this benchmark stays small.
from report import print_report

SOURCE = Path(__file__).resolve().parent.parent / "src"
CHECK = ["check", "--app", "tiktok", "--transaction", "internet_hosting", "--where", "US",
         "--at", "2020-11-12T23:59:00-05:00"]  # fmt: skip
COMMANDS: list[tuple[str, list[str], dict[str, str]]] = [
    ("check", CHECK, {}),
    ("timeline", ["timeline", "--app", "tiktok", "--where", "US"], {}),
    ("rules list", ["rules", "list"], {}),
    ("--help", ["--help"], {}),
    ("check, cache off", CHECK, {"APPBAN_NO_CACHE": "1"}),
]
# What the installed `appban` script runs (the console entry point pip writes: import main, call it), with this
# interpreter and whichever source tree PYTHONPATH names; `python -m appban` would add runpy's own start-up.
ENTRY_POINT = "import sys; from appban.cli import main; sys.argv[0] = 'appban'; sys.exit(main())"
TARGET_MS = 300.0
TARGETED = {"check", "timeline", "rules list"}


@dataclass
class Case:
    name: str
    argv: list[str]
    env: dict[str, str]
    walls: list[float] = field(default_factory=list)
    peaks_kb: list[int] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    def run(self) -> None:
        started = time.perf_counter()
        child = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        problem = child.stderr.read().decode(errors="replace") if child.stderr else ""
        if child.stderr:
            child.stderr.close()
        if child.returncode != 0:
            raise SystemExit(f"{self.name}: exit code {child.returncode}\n{problem}")
        self.walls.append(wall)
        self.peaks_kb.append(usage.ru_maxrss)  # kilobytes on Linux
        self.cpus.append(usage.ru_utime + usage.ru_stime)

    def instructions(self) -> int:
        """The instructions the process executes, counted by valgrind's callgrind: unlike wall or CPU time it
        does not move with the machine's load, so two trees can be compared on a busy machine."""
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *self.argv],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise SystemExit(f"{self.name}: callgrind reported no instruction count\n{done.stderr[-2000:]}")
        return int(found[1])

    @property
    def median_ms(self) -> float:
        return statistics.median(self.walls) * 1000

    @property
    def best_ms(self) -> float:
        return min(self.walls) * 1000

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpus) * 1000

    def describe(self, floor: Case | None) -> str:
        ratio = f", {self.median_ms / floor.median_ms:.1f}x the floor" if floor is not None else ""
        return (
            f"{self.median_ms:.0f} ms median (best {self.best_ms:.0f} ms){ratio}; CPU {self.cpu_ms:.0f} ms median; "
            f"{max(self.peaks_kb) / 1024:.0f} MB"
        )


def cases(source: Path, label: str, cache_dir: str) -> list[Case]:
    env = {**os.environ, "PYTHONPATH": str(source), "APPBAN_CACHE_DIR": cache_dir}
    env.pop("APPBAN_NO_CACHE", None)
    # An installed appban has its bytecode compiled (pip does it, or the first run writes __pycache__); without
    # it every run would compile appban's sources again, which is not what a user waits for.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return [
        Case(f"{label}{name}", [sys.executable, "-c", ENTRY_POINT, *argv], {**env, **extra})
        for name, argv, extra in COMMANDS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21, help="measured runs of each case")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs of each case first")
    parser.add_argument("--baseline-src", type=Path, help="another tree's src/ directory, run side by side")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each case's instructions once under valgrind (callgrind), which load does not move",
    )
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (Debian: apt-get install valgrind)")

    with tempfile.TemporaryDirectory(prefix="appban-bench-cache-") as cache_dir:
        floor = Case("python -c pass (floor)", [sys.executable, "-c", "pass"], dict(os.environ))
        current = cases(SOURCE, "", cache_dir)
        baseline = cases(args.baseline_src.resolve(), "baseline: ", cache_dir) if args.baseline_src else []
        everything = [floor, *current, *baseline]
        for _ in range(args.warmup):
            for case in everything:
                case.run()
        for case in everything:
            case.walls.clear()
            case.peaks_kb.clear()
            case.cpus.clear()
        for _ in range(args.runs):
            for case in everything:
                case.run()
        counted = {case.name: case.instructions() for case in everything} if args.instructions else {}

    rows = [
        ("runs per case", f"{args.runs} (round-robin, after {args.warmup} warm-up runs each)"),
        (floor.name, floor.describe(None)),
    ]
    for case in [*current, *baseline]:
        verdict = ""
        if case.name in TARGETED:
            verdict = "; within the 300 ms target" if case.median_ms <= TARGET_MS else "; OVER the 300 ms target"
        rows.append((case.name, case.describe(floor) + verdict))
    for case in baseline:
        mine = next(c for c in current if c.name == case.name.removeprefix("baseline: "))
        rows.append((f"{mine.name}: baseline / now", f"{case.median_ms / mine.median_ms:.1f}x"))
    for case in everything if args.instructions else []:
        rows.append((f"{case.name}: instructions", f"{counted[case.name] / 1e6:,.0f} M"))
    load = os.getloadavg()
    rows += [
        ("python", platform.python_version()),
        ("nproc", str(os.cpu_count())),
        ("load average at the end (1, 5, 15 min)", f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"),
    ]
    print_report(rows, args.markdown)


if __name__ == "__main__":
    main()
