"""Benchmark: `appban scan` over a 100,000-file source tree against `grep -rFl -f` over the same needles.

Builds a tree deterministically (--seed): Java, Kotlin, Swift, Objective-C, JS/TS, Python, Go, YAML and
properties files of a few dozen lines, --covered percent of them naming a covered SDK (an import, a service
URL, a configured login provider) at a random line. Then, page cache warmed by one untimed pass, --runs
times each:
- the floor: `grep -rFl -f NEEDLES` with the needles appban's prefilter looks for (code/prefilter.py);
- appban's scan() now, in a child process (the time of the scan itself, rulebook loaded before);
- with --baseline-src DIR, the same scan from another tree's src/ (an earlier commit, e.g. from
  `git archive <commit> src | tar -x -C DIR`), side by side, and whether both report the same findings.
Best and median of wall time, and the CPU time (user + system) of the best, for each; the ratios are
files/s against grep's. --profile prints the top of a cProfile of one scan (now, and baseline if given).

    .venv/bin/python bench/source_tree.py [--files N] [--runs N] [--baseline-src DIR] [--profile] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import print_report

SCAN_CHILD = """
import cProfile, io, json, pstats, sys, time, datetime as dt
from pathlib import Path
from appban import load_rulebook
from appban.code.scan import scan
from appban.code.signatures import default_signatures
book = load_rulebook()
default_signatures(book)
args = dict(at=dt.datetime(2024, 6, 1, tzinfo=dt.UTC), rulebook=book)
profile = cProfile.Profile() if sys.argv[3] == "profile" else None
wall, cpu = time.perf_counter(), time.process_time()
if profile:
    profile.enable()
result = scan([Path(sys.argv[1])], **args)
if profile:
    profile.disable()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
data = result.to_json_dict()
data.pop("at")
Path(sys.argv[2]).write_text(json.dumps(data, sort_keys=True))
top = ""
if profile:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
    top = out.getvalue()
print(json.dumps({"wall": wall, "cpu": cpu, "files": result.files, "findings": len(result.findings), "profile": top}))
"""

FILLER = [
    "    for (int i = 0; i < items.size(); i++) { total += items.get(i).price(); }\n",
    "    // keep the cache warm between two requests of the same user\n",
    "    const result = await fetch(endpoint, { method: 'POST', body: JSON.stringify(payload) });\n",
    "    if value is None:\n        return default\n",
    "    let view = UIView(frame: .zero)\n",
    "    [self.delegate didFinishLoading:self];\n",
    '    log.info("request done in %d ms", elapsed)\n',
]
PLAIN = {
    ".java": "import java.util.List;\nimport com.squareup.okhttp3.OkHttpClient;\n",
    ".kt": "import androidx.compose.runtime.Composable\n",
    ".swift": "import SwiftUI\nimport Alamofire\n",
    ".m": '#import <UIKit/UIKit.h>\n#import "AFNetworking.h"\n',
    ".js": "import React from 'react';\nconst _ = require('lodash');\n",
    ".ts": "import { Injectable } from '@angular/core';\n",
    ".py": "import json\nfrom pathlib import Path\n",
    ".go": 'import "net/http"\n',
    ".yml": "server:\n  port: 8080\n",
    ".properties": "spring.datasource.url=jdbc:postgresql://db/app\n",
}
COVERED = {
    ".java": "import com.tencent.mm.opensdk.openapi.WXAPIFactory;\n",
    ".kt": "import com.tiktok.open.sdk.share.ShareApi\n",
    ".swift": "import TikTokOpenAuthSDK\n",
    ".m": "#import <WechatOpenSDK/WXApi.h>\n",
    ".js": "import wx from 'weixin-js-sdk';\n",
    ".ts": "const r = await fetch('https://api.weixin.qq.com/sns/oauth2/access_token');\n",
    ".py": "from wechatpy import WeChatClient\n",
    ".go": 'const token = "https://api.weixin.qq.com/cgi-bin/token"\n',
    ".yml": "wx:\n  mp:\n    app-id: wx123\n    secret: ${WX_MP_SECRET}\n",
    ".properties": "wx.mp.secret=${WX_MP_SECRET}\n",
}


def build_tree(root: Path, files: int, covered_percent: float, rng: random.Random) -> int:
    """Writes the tree; returns how many files name a covered SDK."""
    suffixes = list(PLAIN)
    covered = 0
    for i in range(files):
        folder = root / f"pkg{i // 2000}" / f"mod{(i // 100) % 20}"
        if i % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        suffix = suffixes[i % len(suffixes)]
        lines = [PLAIN[suffix]] + [rng.choice(FILLER) for _ in range(rng.randint(10, 40))]
        if rng.random() * 100 < covered_percent:
            lines.insert(rng.randint(0, len(lines)), COVERED[suffix])
            covered += 1
        (folder / f"file{i}{suffix}").write_text("".join(lines))
    return covered


def grep_floor(root: Path, needles: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one grep over the tree."""
    start = time.perf_counter()
    child = subprocess.Popen(["grep", "-rFl", "-f", str(needles), str(root)], stdout=subprocess.DEVNULL)
    _, _, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def appban_scan(root: Path, src: Path | None, out: Path, profile: bool = False) -> dict[str, object]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    args = [sys.executable, "-c", SCAN_CHILD, str(root), str(out), "profile" if profile else "-"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def summary(name: str, walls: list[float], cpus: list[float], files: int) -> list[tuple[str, str]]:
    best = min(range(len(walls)), key=walls.__getitem__)
    return [
        (f"{name}, wall best / median", f"{walls[best]:.2f} s / {statistics.median(walls):.2f} s"),
        (f"{name}, CPU of the best run", f"{cpus[best]:.2f} s"),
        (f"{name}, files/s (best)", f"{files / walls[best]:,.0f}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--covered", type=float, default=3.0, help="percent of files naming a covered SDK")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--baseline-src", type=Path, help="another tree's src/ directory, run side by side")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    from appban import load_rulebook
    from appban.code.extractors import all_extractors
    from appban.code.extractors.source import Source
    from appban.code.prefilter import Prefilter
    from appban.code.signatures import default_signatures

    signatures = default_signatures(load_rulebook())
    reader = next(e for e in all_extractors(signatures) if isinstance(e, Source))
    needles = Prefilter(signatures, reader).needles
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        root, work = Path(folder) / "tree", Path(folder)
        started = time.perf_counter()
        covered = build_tree(root, args.files, args.covered, random.Random(args.seed))
        needle_file = work / "needles.txt"
        needle_file.write_bytes(b"\n".join(needles) + b"\n")
        rows += [("tree", f"{args.files:,} files, {covered:,} naming a covered SDK "
                          f"(built in {time.perf_counter() - started:.0f} s)"),
                 ("needles", f"{len(needles)} (the prefilter's, given to grep -F as they are)")]  # fmt: skip
        grep_floor(root, needle_file)  # warms the page cache for all that follows
        cases: dict[str, tuple[list[float], list[float]]] = {"grep": ([], []), "now": ([], []), "baseline": ([], [])}
        results: dict[str, dict[str, object]] = {}
        for _ in range(args.runs):  # interleaved, so that a change of load on a shared machine hits all alike
            wall, cpu = grep_floor(root, needle_file)
            cases["grep"][0].append(wall)
            cases["grep"][1].append(cpu)
            for name, src in (("now", None), ("baseline", args.baseline_src)):
                if name == "baseline" and src is None:
                    continue
                results[name] = appban_scan(root, src, work / f"{name}.json")
                cases[name][0].append(float(results[name]["wall"]))  # type: ignore[arg-type]
                cases[name][1].append(float(results[name]["cpu"]))  # type: ignore[arg-type]
        rows += summary("grep -rFl -f (floor)", *cases["grep"], args.files)
        rows += summary("appban now", *cases["now"], args.files)
        rows.append(("appban now, findings", str(results["now"]["findings"])))
        grep_best = min(cases["grep"][0])
        rows.append(("appban now / grep (files/s, best)", f"{grep_best / min(cases['now'][0]):.2f}x"))
        if args.baseline_src:
            rows += summary("appban baseline", *cases["baseline"], args.files)
            rows.append(("appban baseline / grep (files/s, best)", f"{grep_best / min(cases['baseline'][0]):.2f}x"))
            rows.append(("now / baseline (files/s, best)", f"{min(cases['baseline'][0]) / min(cases['now'][0]):.1f}x"))
            same = (work / "now.json").read_text() == (work / "baseline.json").read_text()
            rows.append(("same findings and warnings as baseline", str(same)))
        if args.profile:
            for name, src in (("now", None), ("baseline", args.baseline_src)):
                if name == "now" or src is not None:
                    print(f"--- profile, {name} ---\n{appban_scan(root, src, work / 'p.json', True)['profile']}")
    rows.append(("python / platform", f"{platform.python_version()} / {platform.machine()} / nproc {os.cpu_count()}"))
    print_report(rows, args.markdown)


if __name__ == "__main__":
    main()
