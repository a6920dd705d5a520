"""Untrusted inputs: bombs, traversal, links, truncation, depth and time budgets give warnings, not crashes."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban import load_rulebook
from appban.code.model import Limits
from appban.code.scan import scan

BOOK = load_rulebook()
AT = dt.datetime(2020, 11, 20, tzinfo=dt.UTC)
WECHAT_CLASS = "com/tencent/mm/opensdk/openapi/WXAPIFactory.class"


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tgz_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def run(tmp_path: Path, limits: Limits | None = None):  # type: ignore[no-untyped-def]
    return scan([tmp_path], at=AT, rulebook=BOOK, limits=limits)


def test_nested_aar_inside_npm_tarball_inside_a_directory(tmp_path: Path) -> None:
    jar = zip_bytes({WECHAT_CLASS: b"\xca\xfe\xba\xbe", "com/example/Other.class": b"\xca\xfe\xba\xbe"})
    aar = zip_bytes({"classes.jar": jar, "AndroidManifest.xml": b"<manifest/>"})
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "wechat-wrapper-1.0.0.tgz").write_bytes(tgz_bytes({"package/android/libs/wechat.aar": aar}))
    result = run(tmp_path)
    [finding] = [f for f in result.findings if f.signature.id == "wechat-opensdk-android"]
    assert finding.file.endswith("wechat-wrapper-1.0.0.tgz")
    assert finding.member == "package/android/libs/wechat.aar!/classes.jar"
    assert finding.matched == "com.tencent.mm.opensdk.openapi.WXAPIFactory"
    assert not result.warnings


def test_zip_bomb_member_is_skipped_with_a_warning(tmp_path: Path) -> None:
    bomb = zip_bytes({"AndroidManifest.xml": b"\0" * (8 << 20)})
    (tmp_path / "bomb.zip").write_bytes(bomb)
    result = run(tmp_path, Limits(max_member=64 << 20, max_ratio=100))
    assert any("compression ratio" in w.message for w in result.warnings)
    too_big = run(tmp_path, Limits(max_member=1 << 20))
    assert any("over the member limit" in w.message for w in too_big.warnings)


def test_gzip_bomb_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "huge.json.gz").write_bytes(gzip.compress(b" " * (4 << 20)))
    result = run(tmp_path, Limits(max_member=1 << 20))
    assert any("gzip bomb" in w.message for w in result.warnings)


def test_path_traversal_and_absolute_names_are_refused(tmp_path: Path) -> None:
    podfile = b"pod 'WechatOpenSDK'\n"
    (tmp_path / "evil.zip").write_bytes(zip_bytes({"../../Podfile": podfile, "/etc/Podfile": podfile}))
    (tmp_path / "evil.tgz").write_bytes(tgz_bytes({"../Podfile": podfile}))
    result = run(tmp_path)
    assert result.findings == []
    assert sum("unsafe member name" in w.message for w in result.warnings) == 3


def test_symlink_loops_and_links_out_of_the_tree_are_not_followed(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    os.symlink(tree, tree / "loop")
    outside = tmp_path / "outside.gradle"
    outside.write_text("implementation 'com.tencent.mm.opensdk:wechat-sdk-android:6.8.0'\n")
    os.symlink(outside, tree / "linked.gradle")
    result = scan([tree], at=AT, rulebook=BOOK)
    assert result.findings == []
    assert any("outside the scanned tree" in w.message for w in result.warnings)


def test_link_members_in_tar_are_not_followed(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("package/Podfile")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    (tmp_path / "links.tgz").write_bytes(buffer.getvalue())
    assert any("link inside archive" in w.message for w in run(tmp_path).warnings)


def test_truncated_archives_give_warnings(tmp_path: Path) -> None:
    whole = zip_bytes({WECHAT_CLASS: b"x" * 1000, "Podfile": b"pod 'WechatOpenSDK'\n"})
    (tmp_path / "cut.jar").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "cut.tgz").write_bytes(tgz_bytes({"package/Podfile": b"pod 'X'\n" * 100})[:40])
    result = run(tmp_path)
    messages = " ".join(w.message for w in result.warnings)
    assert "not a readable zip archive" in messages and "not a readable tar archive" in messages


def test_nesting_depth_is_bounded(tmp_path: Path) -> None:
    data = zip_bytes({WECHAT_CLASS: b"x"})
    for level in range(7):
        data = zip_bytes({f"level{level}.zip": data})
    (tmp_path / "deep.zip").write_bytes(data)
    result = run(tmp_path, Limits(max_depth=4))
    assert result.findings == []
    assert any("nested deeper" in w.message for w in result.warnings)


def test_huge_files_and_time_budget(tmp_path: Path) -> None:
    (tmp_path / "Podfile").write_text("pod 'WechatOpenSDK'\n" * 200)
    assert any("over the 1,000-byte limit" in w.message for w in run(tmp_path, Limits(max_file=1000)).warnings)
    (tmp_path / "Podfile").unlink()
    (tmp_path / "many.zip").write_bytes(zip_bytes({f"d{i}/Podfile": b"pod 'X'\n" for i in range(50)}))
    assert any("time budget" in w.message for w in run(tmp_path, Limits(seconds_per_file=-1)).warnings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.binary(max_size=4096),
    st.sampled_from(
        [
            "x.zip",
            "x.jar",
            "x.tgz",
            "x.gz",
            "package.json",
            "Info.plist",
            "AndroidManifest.xml",
            "Podfile.lock",
            "pom.xml",
            "Package.resolved",
        ]
    ),
)
def test_garbage_never_crashes_the_walk(tmp_path: Path, data: bytes, name: str) -> None:
    target = tmp_path / "fuzz"
    target.mkdir(exist_ok=True)
    (target / name).write_bytes(data)
    result = scan([target], at=AT, rulebook=BOOK)
    assert isinstance(result.findings, list)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_archives_never_crash_the_walk(tmp_path: Path, data: st.DataObject) -> None:
    original = zip_bytes(
        {WECHAT_CLASS: b"x" * 50, "Podfile": b"pod 'WechatOpenSDK'\n", "inner.jar": zip_bytes({"a": b"b"})}
    )
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(mutated) // 2, len(mutated)))
    target = tmp_path / "mut"
    target.mkdir(exist_ok=True)
    (target / "m.jar").write_bytes(bytes(mutated[:cut]))
    scan([target], at=AT, rulebook=BOOK)
