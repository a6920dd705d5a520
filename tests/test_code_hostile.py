"""Hostile input for the code scanner: every text extractor, parser and container reader, fed input built to
make it backtrack, recurse, expand or loop. Each case must end with findings or a warning naming what was
skipped, never a traceback and never a hang.

All cases run in one child process, so that a regression that hangs fails the run (the parent waits with a
generous timeout and names the case that did not finish) instead of hanging CI. The inputs that made the
old patterns quadratic or worse (a 300 KB manifest, pom or plugin.xml of unclosed tags, a podspec line of
spaces) took between one and many minutes each; now the whole set takes a few seconds.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from appban.code import budget
from appban.code.binary import ar_members, read_dex, read_macho, read_manifest, signing_block_certificates
from appban.code.budget import OutOfTime
from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, MAX_TEXT_BYTES, QuotedTokens, lines
from tests import test_binary_readers as binary
from tests.test_code_safety import zip_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = 300_000  # each hostile text is at least this large
# For the whole set of cases; they take a few seconds. The old extractors needed minutes for single cases.
CHILD_TIMEOUT = 90


def repeat(unit: str, size: int = SIZE) -> str:
    return unit * (size // len(unit) + 1)


@dataclass(frozen=True)
class Case:
    """Files to write into an empty directory; what scanning it must find and warn about."""

    files: Callable[[], dict[str, bytes]]
    findings: set[tuple[str, int | None]] = field(default_factory=set)  # (signature, line of first sight)
    warnings: tuple[str, ...] = ()  # each must occur in some warning
    limits: dict[str, Any] = field(default_factory=dict)


# --- text: patterns that used to backtrack -----------------------------------------------------------


def manifest_unclosed() -> dict[str, bytes]:
    head = '<manifest>\n<queries><package android:name="com.tencent.mm"/></queries>\n'
    junk = repeat("<data android:scheme=x <package android:name <activity android:name=\n<provider\t")
    return {"AndroidManifest.xml": (head + junk).encode()}


def manifest_attribute_run() -> dict[str, bytes]:
    head = '<manifest>\n<queries><package android:name="com.tencent.mm"/></queries>\n<activity '
    return {"AndroidManifest.xml": (head + repeat('a="b" android:name= ')).encode()}


def manifest_billion_laughs() -> dict[str, bytes]:
    entities = '<!ENTITY lol "lol">' + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    text = f'<?xml version="1.0"?><!DOCTYPE manifest [{entities.replace("&lol0;", "&lol;")}]>\n'
    text += '<manifest><queries><package android:name="&lol9;"/></queries></manifest>\n'
    return {"AndroidManifest.xml": text.encode()}


def pom_unclosed() -> dict[str, bytes]:
    head = (
        "<project>\n<dependency><groupId>com.tencent.mm.opensdk</groupId>"
        "<artifactId>wechat-sdk-android</artifactId></dependency>\n"
    )
    return {"pom.xml": (head + repeat("<dependency>\n<plugin>x<parent><groupId> ")).encode()}


def plugin_xml_nested() -> dict[str, bytes]:
    head = '<plugin>\n<framework src="com.tencent.mm.opensdk:wechat-sdk-android:6.8.0"/>\n'
    junk = repeat('<config-file parent="LSApplicationQueriesSchemes" <framework <pod name= ')
    return {"plugin.xml": (head + junk).encode()}


def podspec_runs() -> dict[str, bytes]:
    text = "s.dependency 'WechatOpenSDK'\n"
    text += "s.dependency" + " " * SIZE + "x\n"
    text += "s.vendored_frameworks = '" + "a" * SIZE + "\n"
    text += "s.name = " + repeat("'") + "\n"
    return {"X.podspec": text.encode(), "X.podspec.json": ('{"dependencies": ' + repeat('"a/') + "\n").encode()}


def gradle_runs() -> dict[str, bytes]:
    text = 'implementation "com.tencent.mm.opensdk:wechat-sdk-android:6.8.0"\n'
    text += repeat('"a:') + "\n" + repeat("group: 'a', ") + "\n" + repeat("module = 'a:") + "\n"
    return {"build.gradle": text.encode(), "libs.versions.toml": repeat("x = { module = ").encode()}


def gomod_runs() -> dict[str, bytes]:
    text = "module x\nrequire github.com/wechatpay-apiv3/wechatpay-go v0.2.18\n"
    text += repeat("a.") + "\n" + "a.bb/" + "x" * SIZE + " " * SIZE + "y\n"
    return {"go.mod": text.encode()}


def source_runs() -> dict[str, bytes]:
    long = {
        "A.java": repeat("import a.") + "\n" + repeat("com.a") + "\n" + "'com.x" + repeat(".y") + "\n",
        "a.js": 'from "' + "a" * SIZE + "\n" + repeat("require(") + "\n" + repeat("import(  ") + "\n",
        "a.swift": "import " + " " * SIZE + "\n" + repeat("@testable import class ") + "\n",
        "a.m": "#import <" + "a" * SIZE + "\n" + repeat("[ ") + "\n" + "[A" + "b" * SIZE + "\n",
        "a.py": "from a" + "." * SIZE + " " * SIZE + "x\n" + repeat("import ") + "\n",
        "a.dart": "import 'package:" + "a" * SIZE + "\n",
        "page.html": repeat("https://api.mch.weixin.qq.com/ ") + "\n",
    }
    return {"Main.java": b"import com.tencent.mm.opensdk.openapi.WXAPIFactory;\n"} | {
        name: text.encode() for name, text in long.items()
    }


# --- structured text: nesting, wrong shapes, entities ----------------------------------------------


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def json_nesting() -> dict[str, bytes]:
    escaped = ", ".join(f'"\\u0061{i}": "1"' for i in range(30_000))  # names text.find would never find
    return {
        "deep/package.json": ('{"dependencies": {"x": ' + deep(100_000) + "}}").encode(),
        "shallow/package-lock.json": ('{"packages": ' + deep(70) + "}").encode(),
        "names/package.json": ('{\n"dependencies": {' + escaped + ',\n"weixin-js-sdk": "1"}}').encode(),
        "Pipfile.lock": ('{"default": ' + deep(100_000) + "}").encode(),
        "Package.resolved": ('{"pins": ' + deep(100_000) + "}").encode(),
        "list/Package.resolved": b"[1, 2, 3]",
        "shapes/Pipfile.lock": b'{"default": [1, {"a": 2}], "develop": "wechatpy"}',
    }


def toml_nesting() -> dict[str, bytes]:
    return {
        "pyproject.toml": ("a = " + deep(50_000) + "\n").encode(),
        "inline/pyproject.toml": ("a = " + "{b = " * 50_000 + "1" + "}" * 50_000 + "\n").encode(),
        "shapes/pyproject.toml": b'project = 5\n[tool]\npoetry = "x"\n',
        "requirements.txt": b"wechatpy==1\n" + repeat("a-").encode() + b"\n",
        "uv.lock": repeat('name = "').encode(),
    }


def plists() -> dict[str, bytes]:
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    laughs = (
        f"<?xml version='1.0'?><!DOCTYPE plist [{entities.replace('&a0;', '&a;')}]><plist><string>&a9;</string></plist>"
    )
    info = {"CFBundleURLTypes": [{"CFBundleURLSchemes": ["weixin"]}], "CFBundleIdentifier": "com.example"}
    return {
        "laughs/Info.plist": laughs.encode(),
        "external/Info.plist": b'<?xml version="1.0"?><!DOCTYPE plist SYSTEM "file:///etc/passwd"><plist>&x;</plist>',
        "deep/Info.plist": b"<plist>" + b"<array>" * 20_000 + b"</array>" * 20_000 + b"</plist>",
        "shapes/Info.plist": plistlib_dumps({"CFBundleURLTypes": 5, "LSApplicationQueriesSchemes": "weixin"}),
        "real/Info.plist": plistlib_dumps(info),  # with the DOCTYPE every Info.plist has
    }


def plistlib_dumps(value: dict[str, Any]) -> bytes:
    import plistlib

    return plistlib.dumps(value)


# --- containers and binaries -----------------------------------------------------------------------


def with_sizes(data: bytes, member: bytes, compressed: int | None, size: int | None) -> bytes:
    """A zip whose local and central headers for `member` claim other sizes."""
    patched = bytearray(data)
    for signature, sizes_at, name_at in ((b"PK\x03\x04", 18, 30), (b"PK\x01\x02", 20, 46)):
        at = patched.find(signature)
        while at >= 0 and patched[at + name_at : at + name_at + len(member)] != member:
            at = patched.find(signature, at + 1)
        if compressed is not None:
            struct.pack_into("<I", patched, at + sizes_at, compressed)
        if size is not None:
            struct.pack_into("<I", patched, at + sizes_at + 4, size)
    return bytes(patched)


def zips() -> dict[str, bytes]:
    podfile = b"pod 'WechatOpenSDK'\n" + b"#" * 5000
    plain = zip_bytes({"Podfile": podfile})
    return {
        "short.zip": with_sizes(plain, b"Podfile", None, 20),  # claims fewer bytes than it holds
        "huge.zip": with_sizes(plain, b"Podfile", None, 0xFFFFFFF0),
        "ratio.zip": with_sizes(zip_bytes({"Podfile": b"\0" * (2 << 20)}), b"Podfile", 10, None),
        "flood.zip": zip_bytes({"junk.bin": b"PK\x01\x02" * 200}, zipfile.ZIP_STORED),
    }


def tar_bytes(members: dict[str, bytes], sizes: dict[str, int] | None = None, mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    for name, size in (sizes or {}).items():  # rewrite a header's size field (and its checksum)
        at = raw.index(name.encode())
        header = bytearray(raw[at : at + 512])
        header[124:136] = b"%011o\0" % size
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        raw = raw[:at] + bytes(header) + raw[at + 512 :]
    return raw


def bombs() -> dict[str, bytes]:
    zeros = b"\0" * (2 << 20)  # over the 1 MB that any ratio may expand to
    return {
        "bomb.gz": gzip.compress(zeros),
        "bomb.tgz": tar_bytes({"zeros.bin": zeros, "Podfile": b"pod 'WechatOpenSDK'\n"}, mode="w:gz"),
        "bomb.tar.bz2": tar_bytes({"zeros.bin": zeros}, mode="w:bz2"),
        "bomb.tar.xz": tar_bytes({"zeros.bin": zeros}, mode="w:xz"),
        "huge.tar": tar_bytes({"Podfile": b"pod 'X'\n"}, {"Podfile": 600 << 20}),
        "cut.tar": tar_bytes({"Podfile": b"pod 'X'\n" * 100}, {"Podfile": 10 << 20}),
        "sparse-like.tar": tar_bytes({"Podfile": b"pod 'X'\n"}, {"Podfile": 40 << 20}),
    }


def nested() -> dict[str, bytes]:
    data = b"pod 'WechatOpenSDK'\n"
    name = "Podfile"
    for level in range(9):
        if level % 3 == 0:
            data, name = zip_bytes({name: data}), f"l{level}.zip"
        elif level % 3 == 1:
            data, name = tar_bytes({name: data}, mode="w:gz"), f"l{level}.tgz"
        else:
            data, name = gzip.compress(tar_bytes({name: data})), f"l{level}.tar.gz"
    return {name: data}


def lying_binaries() -> dict[str, bytes]:
    dex = bytearray(binary.DEX)
    struct.pack_into("<I", dex, 56, 0xFFFFFFFF)  # string_ids_size
    many = binary.build_dex(["Lx/A;"], [0] * 65_535)  # the most types a DEX can hold
    # Every type names the one descriptor, which never ends.
    unterminated = binary.build_dex(["Lcom/tencent/mm/opensdk/A;"], [0] * 65_535)[:-1] + b"A" * SIZE
    macho = bytearray(binary.MACHO)
    struct.pack_into("<I", macho, 16, 0xFFFFFFFF)  # ncmds
    macho_many = bytearray(binary.MACHO)
    struct.pack_into("<II", macho_many, 16, 100_000, 0xFFFFFFF0)  # ncmds, sizeofcmds
    fat = bytearray(binary.build_fat([(binary.CPU_ARM64, 0, binary.MACHO)]))
    struct.pack_into(">I", fat, 4, 31)  # architectures the table does not hold
    axml = bytearray(binary.build_axml())
    struct.pack_into("<I", axml, 12, 0xFFFFFFFF)  # the string pool's chunk size
    axml_pool = bytearray(binary.build_axml())
    struct.pack_into("<I", axml_pool, 16, 0xFFFFFF)  # string count
    ar = b"!<arch>\n" + b"a.o/".ljust(48) + b"9999999999" + b"`\n"
    ar_bsd = binary.build_bsd_ar([("a" * 40 + ".o", binary.MACHO)]).replace(b"#1/44", b"#1/99")
    return {
        "counts.dex": bytes(dex),
        "many.dex": many,
        "unterminated.dex": unterminated,
        "ncmds/App": bytes(macho),
        "sizeofcmds/App": bytes(macho_many),
        "fat/App": bytes(fat),
        "chunk/AndroidManifest.xml": bytes(axml),
        "pool/AndroidManifest.xml": bytes(axml_pool),
        "libA.a": ar,
        "libB.a": ar_bsd,
    }


def mutants() -> dict[str, bytes]:
    """Truncated and byte-flipped copies of every binary format, from a fixed seed."""
    rng = random.Random(14)
    apk = zip_bytes({"classes.dex": binary.DEX, "AndroidManifest.xml": binary.build_axml()})
    originals = {
        "classes.dex": binary.DEX,
        "App": binary.MACHO,
        "Fat": binary.build_fat([(binary.CPU_ARM64, 0, binary.MACHO), (binary.CPU_ARM, 9, binary.MACHO)]),
        "AndroidManifest.xml": binary.build_axml(utf8=True),
        "libW.a": binary.build_gnu_ar(binary.AR_MEMBERS),
        "app.apk": apk,
        "pkg.tgz": tar_bytes({"package/app.apk": apk}, mode="w:gz"),
    }
    files: dict[str, bytes] = {}
    for name, data in originals.items():
        for index in range(12):
            mutated = bytearray(data[: rng.randrange(len(data) // 2, len(data) + 1)])
            for _ in range(rng.randrange(0, 6)):
                if mutated:
                    mutated[rng.randrange(len(mutated))] = rng.choice((0, 0xFF, 0x7F, rng.randrange(256)))
            files[f"m{index}/{name}"] = bytes(mutated)
    return files


CASES: dict[str, Case] = {
    "manifest-unclosed-tags": Case(manifest_unclosed, {("wechat-app-queries", 2)}),
    "manifest-attribute-run": Case(manifest_attribute_run, {("wechat-app-queries", 2)}),
    "manifest-billion-laughs": Case(manifest_billion_laughs),
    "pom-unclosed-blocks": Case(pom_unclosed, {("wechat-opensdk-android", 2)}),
    "plugin-xml-nested-config-file": Case(plugin_xml_nested, {("wechat-opensdk-android", 2)}),
    "podspec-runs": Case(podspec_runs, {("wechat-opensdk-ios", 1)}),
    "gradle-runs": Case(gradle_runs, {("wechat-opensdk-android", 1)}),
    "go-mod-runs": Case(gomod_runs, {("wechat-service-clients", 2)}),
    "source-runs": Case(source_runs, {("wechat-opensdk-android", 1), ("wechatpay-api-endpoints", 1)}),
    "json-nesting-and-shapes": Case(
        json_nesting, {("wechat-jssdk", 3)}, ("nested more than 64 levels deep", "npm:", "python:", "swiftpm:")
    ),
    "toml-nesting-and-shapes": Case(
        toml_nesting, {("wechat-service-clients", 1)}, ("TOML nested too deeply to parse; skipped",)
    ),
    "plist-entities-and-shapes": Case(
        plists, {("wechat-url-schemes", None)}, ("XML with entity declarations is refused; skipped",)
    ),
    "zip-lying-sizes": Case(
        zips,
        set(),
        ("Bad CRC-32", "over the member limit", "compression ratio over", "central directory entries"),
        {"max_members": 100},
    ),
    "decompression-bombs": Case(
        bombs,
        set(),
        ("gzip bomb", "compressed data expands past", "over the member limit", "not a readable tar archive"),
    ),
    "nested-archives": Case(nested, set(), ("nested deeper than 5 levels",)),
    "lying-binaries": Case(
        lying_binaries,
        set(),
        (
            "implausibly large",
            "overlong type descriptor",
            "bad Mach-O load command",
            "ar member data outside",
            "android-manifest: malformed input",
        ),
    ),
    "mutated-binaries": Case(mutants),
    "oversized-manifest": Case(
        lambda: {"pom.xml": b" " * (MAX_MANIFEST_BYTES + 1)}, set(), ("maven: 8,388,609 bytes of text is over the",)
    ),
}


# --- the child process ---------------------------------------------------------------------------------


def run_cases(root: str) -> None:
    """Runs in the child: each case's directory is scanned and one JSON line reported, at once."""
    import datetime as dt
    import traceback

    from appban import load_rulebook
    from appban.code.model import Limits
    from appban.code.scan import scan

    book = load_rulebook()
    for name, case in CASES.items():
        folder = Path(root, name)
        report: dict[str, Any] = {"case": name}
        try:
            for relative, data in case.files().items():
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                (folder / relative).write_bytes(data)
            result = scan([folder], at=dt.datetime(2020, 11, 20, tzinfo=dt.UTC), rulebook=book,
                          limits=Limits(**case.limits))  # fmt: skip
            report["findings"] = [[f.signature.id, f.line, f.matched] for f in result.findings]
            report["warnings"] = [str(w) for w in result.warnings]
        except BaseException:
            report["error"] = traceback.format_exc()
        print(json.dumps(report), flush=True)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("hostile")
    script = f"from tests.test_code_hostile import run_cases; run_cases({str(root)!r})"
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT, check=False)  # fmt: skip
        output, errors = done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        errors = f"the child did not finish within {CHILD_TIMEOUT} s"
    reports = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    found = {report["case"]: report for report in reports}
    for name in CASES:
        found.setdefault(name, {"case": name, "error": f"did not finish (hung?); child said: {errors[-2000:]}"})
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_ends_in_findings_or_reported_skips(outcomes: dict[str, dict[str, Any]], name: str) -> None:
    report, case = outcomes[name], CASES[name]
    assert "error" not in report, report["error"]
    seen = {(signature, line) for signature, line, _ in report["findings"]}
    assert case.findings <= seen, (seen, report["warnings"])
    for expected in case.warnings:
        assert any(expected in warning for warning in report["warnings"]), (expected, report["warnings"])
    assert not any("lollollol" in matched or "aaaaaaaaaaaaaaaaaaaa" in matched for *_, matched in report["findings"])


def test_every_warning_names_the_file_it_is_about(outcomes: dict[str, dict[str, Any]]) -> None:
    for name, report in outcomes.items():
        for warning in report.get("warnings", []):
            assert f"/{name}/" in warning, warning


# --- the time budget is checked inside the readers ------------------------------------------------------


def test_text_over_the_cap_is_reported_as_skipped(tmp_path: Path) -> None:
    from appban.code.extractors.npm import Npm

    with pytest.raises(ValueError, match=r"over the .*-byte limit for this kind of file"):
        list(Npm().extract(b" " * (MAX_TEXT_BYTES + 1), "yarn.lock"))


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda: read_dex(binary.build_dex(["Lx;"] * 5000, [0])), id="dex strings"),
        pytest.param(lambda: read_macho(binary.MACHO), id="mach-o load commands"),
        pytest.param(lambda: list(ar_members(binary.build_gnu_ar(binary.AR_MEMBERS))), id="ar members"),
        pytest.param(lambda: read_manifest(_axml_with(5000)), id="axml chunks"),
        pytest.param(lambda: list(lines(b"x\n" * 5000)), id="text lines"),
        pytest.param(lambda: QuotedTokens('"a"' * 5000), id="json names"),
        pytest.param(lambda: linear("a").findall("a" * 10), id="pattern matches"),
        pytest.param(lambda: signing_block_certificates(_signed_apk()), id="apk signing block"),
    ],
)
def test_readers_stop_when_the_time_budget_is_used_up(read: Callable[[], object]) -> None:
    read()  # with no deadline, the reader finishes
    with budget.deadline(-1.0), pytest.raises(OutOfTime):
        read()


def _signed_apk() -> bytes:
    return binary.build_apk([(0x7109871A, binary.lp(binary.lp(binary.v2_signer(binary.CERT))))])


def _axml_with(elements: int) -> bytes:
    builder = binary.AxmlBuilder()
    builder.start("manifest", package="com.example")
    for _ in range(elements):
        builder.start("data", scheme="x").end("data")
    return builder.end("manifest").build(utf8=True)


def test_json_name_lines_are_what_a_search_from_the_start_gives() -> None:
    text = textwrap.dedent("""\
        {"name": "x", "a\\"b": {"\\"c\\"": 1},
         "dependencies": {"c": "1", "react": "2", "d\\u0065p": "3"},
         "say": "\\"react\\" and \\"c"}
    """)
    tokens = QuotedTokens(text)
    for name in ["name", "c", "react", "dep", "a", "b", 'a"b', "missing", "", "1"]:
        found = text.find(f'"{name}"')
        assert tokens.line(name) == (text.count("\n", 0, found) + 1 if found >= 0 else None), name


def test_a_text_manifest_after_a_newline_is_not_taken_for_a_bundle_manifest() -> None:
    from appban.code.extractors.android_manifest import AndroidManifest

    text = b'\n<manifest>\n<queries><package android:name="com.tencent.mm"/></queries></manifest>\n'
    [observation] = AndroidManifest().extract(text, "androidmanifest.xml")
    assert (observation.value, observation.line) == ("com.tencent.mm", 3)
    with pytest.raises(ValueError, match="wire type"):
        list(AndroidManifest().extract(b"\x0a\x02\x0f\x00 not text", "androidmanifest.xml"))


# --- zip members zipfile cannot read: each one warning naming it, and the other members still scanned -----


def _patched(data: bytes, member: bytes, edits: dict[str, dict[int, int]]) -> bytes:
    """The zip with bytes of `member`'s local ("local") and central ("central") headers set: {offset: byte}."""
    patched = bytearray(data)
    for header, signature, name_at in (("local", b"PK\x03\x04", 30), ("central", b"PK\x01\x02", 46)):
        at = patched.find(signature)
        while patched[at + name_at : at + name_at + len(member)] != member:
            at = patched.find(signature, at + 1)
        for offset, value in edits.get(header, {}).items():
            patched[at + offset] = value
    return bytes(patched)


def _corrupt_data(data: bytes, member: bytes) -> bytes:
    """The zip with the first 16 bytes of `member`'s compressed data overwritten (its headers left alone)."""
    at = data.find(b"PK\x03\x04")
    while data[at + 30 : at + 30 + len(member)] != member:
        at = data.find(b"PK\x03\x04", at + 1)
    start = at + 30 + len(member) + int.from_bytes(data[at + 28 : at + 30], "little")
    return data[:start] + bytes(range(0xF0, 0x100)) + data[start + 16 :]


def _with_member(compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Podfile", b"pod 'WechatOpenSDK'\n", zipfile.ZIP_DEFLATED)
        archive.writestr("classes.dex", binary.DEX * 4, compression)
        archive.writestr("Z", b"")
        archive.writestr("after/Podfile", b"pod 'WechatOpenSDK'\n", zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


HOSTILE_MEMBERS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (the archive, the member the warning names, what the warning says)
    "empty name": (lambda: _patched(_with_member(), b"Z", {"local": {30: 0}, "central": {46: 0}}), "", "no name"),
    "only a slash": (lambda: _patched(_with_member(), b"Z", {"local": {30: 47}, "central": {46: 47}}), "/", "no name"),
    "version 14.8": (lambda: _patched(_with_member(), b"classes.dex", {"central": {6: 148}}), "classes.dex", "14.8"),
    "unknown method": (
        lambda: _patched(_with_member(), b"classes.dex", {"local": {8: 99}, "central": {10: 99}}),
        "classes.dex",
        "compression method",
    ),
    "encrypted": (lambda: _patched(_with_member(), b"classes.dex", {"central": {8: 1}}), "classes.dex", "encrypted"),
    "strong encryption": (
        lambda: _patched(_with_member(), b"classes.dex", {"central": {8: 0x40}}),
        "classes.dex",
        "strong encryption",
    ),
    "patched data": (
        lambda: _patched(_with_member(), b"classes.dex", {"central": {8: 0x20}}),
        "classes.dex",
        "compressed patched data",
    ),
    "truncated data": (
        lambda: with_sizes(_with_member(), b"classes.dex", 3, None),
        "classes.dex",
        "cannot read member",
    ),
    "corrupt deflate": (lambda: _corrupt_data(_with_member(), b"classes.dex"), "classes.dex", "cannot read member"),
    "corrupt bzip2": (
        lambda: _corrupt_data(_with_member(zipfile.ZIP_BZIP2), b"classes.dex"),
        "classes.dex",
        "cannot read member",
    ),
    "corrupt xz": (
        lambda: _corrupt_data(_with_member(zipfile.ZIP_LZMA), b"classes.dex"),
        "classes.dex",
        "cannot read member",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_MEMBERS))
def test_a_zip_member_zipfile_cannot_read_is_a_warning_and_the_others_are_scanned(tmp_path: Path, case: str) -> None:
    import datetime as dt

    from appban import load_rulebook
    from appban.code.scan import scan

    build, member, expected = HOSTILE_MEMBERS[case]
    (tmp_path / "app.apk").write_bytes(build())
    result = scan([tmp_path], at=dt.datetime(2020, 11, 20, tzinfo=dt.UTC), rulebook=load_rulebook())
    named = [str(w) for w in result.warnings if str(w).startswith(f"{tmp_path / 'app.apk'}!/{member}:")]
    assert any(expected in warning for warning in named), [str(w) for w in result.warnings]
    found = {(f.signature.id, f.member) for f in result.findings}
    assert {("wechat-opensdk-ios", "Podfile"), ("wechat-opensdk-ios", "after/Podfile")} <= found, found
