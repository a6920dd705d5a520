"""Benchmark: constituent-code scanning of a TikTok-scale APK and of a large source tree.

(a) A generated APK of TikTok scale: several classes*.dex holding --classes classes in all (a few
    hundred of them from the WeChat and TikTok SDKs and from Pangle), plus stored assets that bring it
    to --apk-mb megabytes. appban scans it end to end in a child process, whose wall time and peak RSS
    are reported.
(b) The same APK through androguard (DEX parsing + class names + the same package prefixes), in the
    same run: the ratio is androguard's time over appban's, and both must find the same signatures.
(c) A generated source tree of --source-files files (Java, Kotlin, Swift, JS, Python; 1% import a
    covered SDK), scanned by appban, against `grep -rF` over the signatures' strings as the floor.

    .venv/bin/python bench/code.py [--classes N] [--dex-files N] [--apk-mb N] [--source-files N] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dexgen import dex_with_classes
from report import print_report

from appban import load_rulebook
from appban.code.signatures import default_signatures

SDK_CLASSES = {
    "wechat-opensdk-android": "com.tencent.mm.opensdk.modelmsg.Msg{}",
    "tiktok-opensdk-android": "com.tiktok.open.sdk.share.Share{}",
    "bytedance-pangle": "com.bytedance.sdk.openadsdk.Ad{}",
}
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "feed",
    "video",
    "music",
    "camera",
    "player",
    "editor",
    "share",
    "login",
    "user",
    "store",
    "cart",
    "pay",
]

SCAN_CHILD = """
import json, sys, time, datetime as dt
from pathlib import Path
from appban.code.scan import scan
start = time.perf_counter()
result = scan([Path(sys.argv[1])], at=dt.datetime(2020, 11, 20, tzinfo=dt.UTC))
elapsed = time.perf_counter() - start
found = sorted({f.signature.id for f in result.findings})
print(json.dumps({"seconds": elapsed, "files": result.files, "signatures": found,
                  "findings": len(result.findings), "warnings": [str(w) for w in result.warnings]}))
"""


SMALI = """.class public L{name};
.super Ljava/lang/Object;

.method public constructor <init>()V
    .registers 1
    invoke-direct {{p0}}, Ljava/lang/Object;-><init>()V
    return-void
.end method
"""


def dex_bytes(names: list[str], work: Path, use_smali: bool) -> bytes:
    """A DEX of these classes: assembled by smali (real constructors with code, as in an app) when the
    tool is installed, else written directly (type and class tables only)."""
    if not use_smali:
        return dex_with_classes(names)
    source = work / "smali"
    shutil.rmtree(source, ignore_errors=True)
    for name in names:
        path = source / (name.replace(".", "/") + ".smali")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SMALI.format(name=name.replace(".", "/")))
    out = work / "out.dex"
    subprocess.run(["smali", "a", "-o", str(out), str(source)], check=True, capture_output=True)
    return out.read_bytes()


def build_apk(path: Path, classes: int, dex_files: int, apk_mb: int, rng: random.Random, use_smali: bool) -> None:
    names = [
        f"com.{rng.choice(WORDS)}{i % 997}.{rng.choice(WORDS)}.{rng.choice(WORDS).title()}{i}" for i in range(classes)
    ]
    for n, pattern in enumerate(SDK_CLASSES.values()):
        for k in range(200):
            names[(n * 200 + k) * 37 % classes] = pattern.format(k)
    per_dex = -(-classes // dex_files)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as apk:
        apk.writestr("AndroidManifest.xml", '<manifest package="com.example.big"/>')
        for i in range(dex_files):
            dex = dex_bytes(names[i * per_dex :][:per_dex], path.parent, use_smali)
            apk.writestr("classes.dex" if i == 0 else f"classes{i + 1}.dex", dex)
        remaining = apk_mb * (1 << 20) - path.stat().st_size if path.exists() else apk_mb * (1 << 20)
        chunk = 16 << 20
        index = 0
        while remaining > 0:
            size = min(chunk, remaining)
            apk.writestr(zipfile.ZipInfo(f"assets/blob{index}.bin"), os.urandom(size), compress_type=zipfile.ZIP_STORED)
            remaining -= size
            index += 1


def appban_scan(path: Path) -> tuple[dict[str, object], float, int]:
    """Scan in a child process; its own peak RSS comes from wait4, apart from any other children."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen([sys.executable, "-c", SCAN_CHILD, str(path)], stdout=out)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if child.returncode != 0:
            raise RuntimeError(f"scan failed with exit code {child.returncode}")
        out.seek(0)
        return json.loads(out.read()), wall, usage.ru_maxrss


def androguard_scan(path: Path, prefixes: dict[str, str]) -> tuple[set[str], float]:
    from loguru import logger

    logger.remove()  # androguard logs every table at DEBUG
    from androguard.core.dex import DEX

    start = time.perf_counter()
    found: set[str] = set()
    with zipfile.ZipFile(path) as apk:
        for name in apk.namelist():
            if name.startswith("classes") and name.endswith(".dex"):
                for descriptor in DEX(apk.read(name)).get_classes_names():
                    dotted = descriptor[1:-1].replace("/", ".")
                    parts = dotted.split(".")
                    for end in range(min(len(parts), 8), 1, -1):
                        hit = prefixes.get(".".join(parts[:end]))
                        if hit:
                            found.add(hit)
                            break
    return found, time.perf_counter() - start


def build_tree(root: Path, files: int, rng: random.Random) -> None:
    covered = [
        ("Login.java", "import com.tencent.mm.opensdk.openapi.WXAPIFactory;\n"),
        ("Share.kt", "import com.tiktok.open.sdk.share.ShareApi\n"),
        ("Auth.swift", "import TikTokOpenAuthSDK\n"),
        ("pay.js", "import wx from 'weixin-js-sdk';\n"),
        ("bot.py", "from wechatpy import WeChatClient\n"),
    ]
    plain = [
        ("Main.java", "import java.util.List;\nimport com.squareup.okhttp3.OkHttpClient;\n"),
        ("View.kt", "import androidx.compose.runtime.Composable\n"),
        ("App.swift", "import SwiftUI\nimport Alamofire\n"),
        ("index.js", "import React from 'react';\nconst x = require('lodash');\n"),
        ("tool.py", "import json\nfrom pathlib import Path\n"),
    ]
    filler = "".join(f"// line {i} of ordinary code doing ordinary things\n" for i in range(20))
    for i in range(files):
        folder = root / f"module{i // 1000}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        name, head = covered[i % len(covered)] if i % 100 == 0 else plain[i % len(plain)]
        (folder / f"{i}_{name}").write_text(head + filler)


def grep_floor(root: Path, needles: list[str]) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(needles) + "\n")
    start = time.perf_counter()
    subprocess.run(["grep", "-rFl", "-f", handle.name, str(root)], capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    os.unlink(handle.name)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=150_000)
    parser.add_argument("--dex-files", type=int, default=4)
    parser.add_argument("--apk-mb", type=int, default=200)
    parser.add_argument("--source-files", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--synthetic-dex", action="store_true", help="write DEX tables directly instead of smali")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    signatures = default_signatures(load_rulebook())
    prefixes = {p: s.id for s in signatures.signatures for p in s.match.java}
    report: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        apk = Path(folder) / "big.apk"
        start = time.perf_counter()
        use_smali = shutil.which("smali") is not None and not args.synthetic_dex
        build_apk(apk, args.classes, args.dex_files, args.apk_mb, rng, use_smali)
        built = time.perf_counter() - start
        result, wall, peak_kib = appban_scan(apk)
        guard_found, guard_seconds = androguard_scan(apk, prefixes)
        ours = {s for s in result["signatures"] if s in prefixes.values()}  # type: ignore[union-attr]
        report += [
            ("(a) APK", f"{apk.stat().st_size / (1 << 20):.0f} MB, {args.classes:,} classes in {args.dex_files} dex "
                        f"({'smali' if use_smali else 'synthetic'} DEX, built in {built:.0f} s)"),
            ("(a) appban scan, wall (child process)", f"{wall:.1f} s (scan itself {result['seconds']:.1f} s)"),
            ("(a) appban peak RSS", f"{peak_kib / 1024:.0f} MB"),
            ("(a) signatures found", ", ".join(sorted(ours))),
            ("(b) androguard, same APK and prefixes", f"{guard_seconds:.1f} s"),
            ("(b) androguard / appban", f"{guard_seconds / float(result['seconds']):.1f}x"),  # type: ignore[arg-type]
            ("(b) same signatures", str(guard_found == ours)),
        ]  # fmt: skip
        tree = Path(folder) / "tree"
        build_tree(tree, args.source_files, rng)
        start = time.perf_counter()
        tree_result, _tree_wall, _ = appban_scan(tree)
        needles = sorted({v for s in signatures.signatures for v in (*s.match.java, *s.match.npm, *s.match.pypi,
                                                                      *s.match.modules)})  # fmt: skip
        grep_seconds = grep_floor(tree, needles)
        files = args.source_files
        report += [
            ("(c) source tree", f"{files:,} files, {tree_result['findings']} findings"),
            ("(c) appban", f"{files / float(tree_result['seconds']):,.0f} files/s ({tree_result['seconds']:.1f} s)"),  # type: ignore[arg-type]
            ("(c) grep -rF floor", f"{files / grep_seconds:,.0f} files/s ({grep_seconds:.1f} s)"),
            ("(c) appban / grep", f"{grep_seconds / float(tree_result['seconds']):.2f}x"),  # type: ignore[arg-type]
        ]
    report.append(("python / platform", f"{platform.python_version()} / {platform.machine()} / nproc {os.cpu_count()}"))
    print_report(report, args.markdown)


if __name__ == "__main__":
    main()
