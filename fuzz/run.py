"""Run a fuzz campaign: `python -m fuzz.run --inputs 1000 [--targets decide,code] [--seed 1] [--summary F]`.

Per target: replay the corpus, then generated inputs (deterministic from the seed), on a pool of workers.
New failures go to the corpus (at most a few per failure signature), crashes minimised by halving first.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz import corpus
from fuzz.pool import CRASH, FAILURES, Outcome, Pool

KEEP_PER_SIGNATURE = 2


@dataclass
class Stats:
    target: str
    inputs: int = 0
    replayed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)  # signature -> first detail, count, file
    peak_rss_kb: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    slowest_input: str = ""

    def failed(self) -> int:
        return sum(self.outcomes[k] for k in FAILURES)


def case_for(target: str, seed: int, index: int) -> tuple[str, bytes]:
    from fuzz.catalog import GENERATORS

    # A generator may refuse its own random draw (plistlib will not write a control character, say):
    # draw again, still deterministically.
    for attempt in range(20):
        try:
            case = GENERATORS[target](random.Random(f"{seed}:{target}:{index}" + (f":{attempt}" if attempt else "")))
        except (ValueError, TypeError, OverflowError, MemoryError):
            continue
        return case.name, case.data
    raise RuntimeError(f"the {target} generator failed 20 times for input {index}")


def _minimise(pool: Pool, target: str, name: str, data: bytes, signature: str, attempts: int = 12) -> bytes:
    """Cut the input while the same failure still happens: keep a half, else three quarters."""
    for _ in range(attempts):
        shorter = None
        for size in (len(data) // 2, len(data) * 3 // 4):
            if 0 < size < len(data):
                (_, outcome), *_ = list(pool.run([(None, target, name, data[:size])]))
                if outcome.signature == signature:
                    shorter = data[:size]
                    break
        if shorter is None:
            return data
        data = shorter
    return data


def fuzz_target(
    pool: Pool,
    target: str,
    inputs: int,
    seed: int,
    *,
    corpus_root: Path = corpus.ROOT,
    save: bool = True,
    minimise: bool = True,
    log: Any = None,
) -> Stats:
    stats = Stats(target)
    started = time.monotonic()
    in_flight: dict[Any, tuple[str, bytes]] = {}
    kept = Counter[str]()
    old = corpus.entries(target, corpus_root)

    def jobs() -> Iterator[tuple[Any, str, str, bytes]]:
        for file, name in old:
            in_flight[("corpus", file)] = (name, file.read_bytes())
            yield ("corpus", file), target, name, in_flight[("corpus", file)][1]
        for index in range(inputs):
            name, data = case_for(target, seed, index)
            in_flight[("gen", index)] = (name, data)
            yield ("gen", index), target, name, data

    found: list[tuple[str, str, bytes, Outcome, Any]] = []
    for token, outcome in pool.run(jobs()):
        name, data = in_flight.pop(token)
        stats.inputs += 1
        stats.outcomes[outcome.kind] += 1
        stats.peak_rss_kb = max(stats.peak_rss_kb, outcome.rss_kb)
        if outcome.seconds > stats.slowest:
            stats.slowest, stats.slowest_input = outcome.seconds, f"{name} ({len(data):,} bytes, {token[0]} {token[1]})"
        if token[0] == "corpus":
            stats.replayed += 1
            if save:
                corpus.note_replay(target, token[1], outcome.kind, corpus_root)
        if outcome.kind not in FAILURES:
            continue
        entry = stats.failures.setdefault(
            outcome.signature, {"kind": outcome.kind, "detail": outcome.detail, "count": 0, "files": []}
        )
        entry["count"] += 1
        if token[0] == "corpus":
            entry["files"].append(str(token[1].relative_to(corpus_root.parent.parent)))
            kept[outcome.signature] = KEEP_PER_SIGNATURE  # the corpus already holds this failure
        elif kept[outcome.signature] < KEEP_PER_SIGNATURE:
            kept[outcome.signature] += 1
            found.append((name, outcome.signature, data, outcome, token))
        if log is not None:
            print(
                f"  {target} {outcome.kind}: {outcome.detail[:160]} ({name}, {len(data)} bytes)", file=log, flush=True
            )
    known = {sig for sig, entry in stats.failures.items() if entry["files"]}
    for name, signature, data, outcome, token in found:
        if not save:
            continue
        if minimise and signature not in known:
            # A hang costs the time limit per attempt: fewer tries.
            data = _minimise(pool, target, name, data, signature, 12 if outcome.kind == CRASH else 3)
        note = {"kind": outcome.kind, "signature": signature, "detail": outcome.detail, "seed": seed, "index": token[1]}
        path = corpus.save(target, name, data, note, corpus_root)
        stats.failures[signature]["files"].append(str(path.relative_to(corpus_root.parent.parent)))
    stats.peak_rss_kb = max(stats.peak_rss_kb, pool.peak_rss_kb if not stats.inputs else 0)
    stats.seconds = time.monotonic() - started
    return stats


def table(all_stats: list[Stats]) -> str:
    rows = ["| target | inputs (corpus replayed) | ok | reported | crashes | hangs | oom | distinct failures "
            "| peak RSS (MB) | slowest input (s) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for s in all_stats:
        o = s.outcomes
        rows.append(
            f"| {s.target} | {s.inputs:,} ({s.replayed}) | {o['ok']:,} | {o['reported']:,} | {o['crash']} | {o['hang']}"
            f" | {o['oom']} | {len(s.failures)} | {s.peak_rss_kb / 1024:.0f} | {s.slowest:.1f} |"
        )
    total = sum(s.inputs for s in all_stats)
    failed = {k: sum(s.outcomes[k] for s in all_stats) for k in FAILURES}
    rows.append(f"| **all** | **{total:,}** | | | **{failed['crash']}** | **{failed['hang']}** | **{failed['oom']}** "
                f"| | **{max((s.peak_rss_kb for s in all_stats), default=0) / 1024:.0f}** | |")  # fmt: skip
    return "\n".join(rows)


def failures_text(all_stats: list[Stats]) -> str:
    lines = []
    for s in all_stats:
        for entry in sorted(s.failures.values(), key=lambda e: -e["count"]):
            files = ", ".join(f"`{f}`" for f in entry["files"][:2]) or "(not kept)"
            lines.append(f"- **{s.target}** {entry['kind']} x{entry['count']}: `{entry['detail'][:220]}` — {files}")
    return "\n".join(lines) or "(none)"


def _limit_own_memory(extra_mb: int = 4096) -> None:
    """A generator gone wrong must fail with MemoryError here, not take the machine down."""
    import resource

    with open("/proc/self/status", encoding="ascii") as status:
        size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = (size_kb << 10) + (extra_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def main(argv: list[str] | None = None) -> int:
    from fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    parser.add_argument("--inputs", type=int, default=1000, help="generated inputs per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input before it is a hang")
    parser.add_argument("--memory-mb", type=int, default=1536, help="address space an input may add to a worker")
    parser.add_argument("--summary", type=Path, help="write the Markdown results here too")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--no-save", action="store_true", help="leave the corpus as it is")
    args = parser.parse_args(argv)
    names = [t for t in args.targets.split(",") if t]
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    _limit_own_memory()
    all_stats = []
    for target in names:
        # A fresh pool per target: ru_maxrss is per process, so each target's peak is its own.
        with Pool(args.workers, args.memory_mb, args.timeout) as pool:
            print(f"{target}: {args.inputs} inputs + corpus", file=sys.stderr, flush=True)
            stats = fuzz_target(pool, target, args.inputs, args.seed, save=not args.no_save, log=sys.stderr)
            print(f"{target}: {dict(stats.outcomes)} in {stats.seconds:.0f} s, peak RSS {stats.peak_rss_kb >> 10} MB,"
                  f" slowest {stats.slowest_input}", file=sys.stderr, flush=True)  # fmt: skip
        all_stats.append(stats)
    command = "python -m fuzz.run " + " ".join(argv if argv is not None else sys.argv[1:])
    text = f"Command: `{command}` (seed {args.seed}, timeout {args.timeout:g} s, +{args.memory_mb} MB per worker)\n\n"
    text += table(all_stats) + "\n\nFailures (type at innermost project frame; reproducer in the corpus):\n\n"
    text += failures_text(all_stats) + "\n"
    print(text)
    if args.summary:
        args.summary.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps([{**vars(s), "outcomes": dict(s.outcomes)} for s in all_stats], indent=1))
    return 1 if any(s.failed() for s in all_stats) else 0


if __name__ == "__main__":
    sys.exit(main())
