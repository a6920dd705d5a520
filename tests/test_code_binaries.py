"""Real APKs, DEX files and IPAs, built by the tests with smali/aapt/apksigner and clang/lld."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appban import load_rulebook
from appban.code.scan import CodeFinding, scan
from tests import material

BOOK = load_rulebook()
AT = dt.datetime(2020, 11, 20, tzinfo=dt.UTC)


def found(path: Path) -> list[CodeFinding]:
    result = scan([path], at=AT, rulebook=BOOK)
    assert not result.warnings, result.warnings
    return result.findings


def by_id(findings: list[CodeFinding]) -> dict[str, CodeFinding]:
    return {f.signature.id: f for f in findings}


@pytest.fixture(scope="module")
def apks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for tool in ("smali", "aapt", "zipalign", "apksigner", "keytool"):
        material.require_tool(tool)
    out = tmp_path_factory.mktemp("apks")
    wechat = material.smali_classes(
        "com/tencent/mm/opensdk/openapi/WXAPIFactory",
        "com/tencent/mm/opensdk/modelmsg/SendAuth",
        "com/example/shop/Main",
    )
    tiktok_in_second_dex = material.smali_classes("com/tiktok/open/sdk/auth/AuthApi")
    return {
        "wechat": material.build_apk(
            "com.example.shop", wechat, out, extra_dex=[tiktok_in_second_dex], queries=["com.tencent.mm"],
            schemes=["wx1234567890abcdef"],
        ),
        # The TikTok app's own code re-shipped under another app's name: the renamed-app case.
        "lookalike": material.build_apk(
            "com.funvideo.player",
            material.smali_classes(
                "com/zhiliaoapp/musically/MainActivity", "com/zhiliaoapp/musically/feed/FeedFragment"
            ),
            out,
        ),
        "clean": material.build_apk("com.example.clean", material.smali_classes("com/example/clean/Main"), out),
    }  # fmt: skip


def test_apk_classes_in_every_dex_and_the_binary_manifest(apks: dict[str, Path]) -> None:
    findings = by_id(found(apks["wechat"]))
    assert set(findings) == {"wechat-opensdk-android", "tiktok-opensdk-android", "wechat-app-queries"}
    assert findings["wechat-opensdk-android"].member == "classes.dex"
    assert set(findings["wechat-opensdk-android"].examples) == {
        "com.tencent.mm.opensdk.openapi.WXAPIFactory",
        "com.tencent.mm.opensdk.modelmsg.SendAuth",
    }
    assert findings["tiktok-opensdk-android"].member == "classes2.dex"
    assert findings["wechat-app-queries"].member == "AndroidManifest.xml"
    assert findings["wechat-opensdk-android"].decisions["constituent_code_use"].verdict.value == "enjoined"


def test_app_code_under_another_package_name_is_the_lookalike_case(apks: dict[str, Path]) -> None:
    [finding] = found(apks["lookalike"])
    assert (finding.signature.id, finding.signature.kind, finding.count) == ("tiktok-app-code", "app_code", 2)
    assert set(finding.decisions) == {"constituent_code_use", "app_store_distribution"}
    assert finding.decisions["app_store_distribution"].verdict.value == "enjoined"


def test_clean_apk_gives_no_findings(apks: dict[str, Path]) -> None:
    assert found(apks["clean"]) == []


def test_signing_certificate_and_manifest_package_are_read(apks: dict[str, Path]) -> None:
    from appban.code.extractors import all_extractors
    from appban.code.model import Observation
    from appban.code.signatures import default_signatures
    from appban.code.walk import Walker

    seen: list[Observation] = []
    walker = Walker(all_extractors(default_signatures(BOOK)), lambda path, o: seen.append(o), lambda w: None)
    walker.scan(apks["clean"])
    kinds = {o.kind: o for o in seen}
    assert kinds["manifest_package"].value == "com.example.clean"
    assert len(kinds["signing_cert"].value) == 64 and "appban test material" in (kinds["signing_cert"].detail or "")


def test_a_dex_file_on_its_own(tmp_path: Path) -> None:
    material.require_tool("smali")
    dex = material.build_dex(material.smali_classes("com/bytedance/sdk/open/tiktok/TikTokOpenApiFactory"), tmp_path)
    assert [f.signature.id for f in found(dex)] == ["tiktok-opensdk-android-legacy"]


@pytest.fixture(scope="module")
def ipas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    material.require_tool("clang")
    out = tmp_path_factory.mktemp("ipas")
    wechat_lib = material.extract_member(material.require(material.WECHAT_LIB), material.WECHAT_LIB_STATIC, out)
    tiktok_lib = material.extract_member(
        material.require(material.TIKTOK_RN_OLD), material.TIKTOK_FRAMEWORK_BINARY, out
    )
    wechat_exe = material.build_ios_executable(wechat_lib, out / "WeChatShop", ["WXApi", "SendAuthReq"])
    tiktok_exe = material.build_ios_executable(tiktok_lib, out / "TikTokShop", ["TikTokOpenSDKApplicationDelegate"])
    return {
        "wechat": material.build_ipa(wechat_exe, "com.example.wechatshop", ["wx1234567890abcdef"],
                                     ["weixin", "weixinULAPI"], out / "wechat.ipa"),
        "tiktok": material.build_ipa(tiktok_exe, "com.example.tiktokshop", [], ["tiktokopensdk", "snssdk1233"],
                                     out / "tiktok.ipa", binary_plist=True),
        "lib": wechat_lib,
    }  # fmt: skip


def test_ipa_with_the_real_wechat_sdk_linked_in(ipas: dict[str, Path]) -> None:
    findings = by_id(found(ipas["wechat"]))
    # wechat-login: the OpenSDK's own QR-connect fallback URL (open.weixin.qq.com/connect), linked in with it.
    assert set(findings) == {"wechat-opensdk-ios", "wechat-url-schemes", "wechat-login"}
    assert findings["wechat-opensdk-ios"].member == "Payload/App.app/App"
    assert {"WXApi", "SendAuthReq"} <= set(findings["wechat-opensdk-ios"].examples) | {
        findings["wechat-opensdk-ios"].matched
    }
    assert findings["wechat-url-schemes"].member in {"Payload/App.app/Info.plist", "Payload/App.app/App"}


def test_ipa_with_the_real_tiktok_sdk_and_a_binary_plist(ipas: dict[str, Path]) -> None:
    findings = by_id(found(ipas["tiktok"]))
    assert {"tiktok-opensdk-ios", "tiktok-url-schemes"} <= set(findings)
    assert findings["tiktok-url-schemes"].member == "Payload/App.app/Info.plist"


def test_the_real_fat_static_library_on_its_own(ipas: dict[str, Path]) -> None:
    findings = by_id(found(ipas["lib"]))
    assert findings["wechat-opensdk-ios"].observation in {"static_libraries", "objc_classes"}
    classes = set(findings["wechat-opensdk-ios"].examples) | {findings["wechat-opensdk-ios"].matched}
    assert "WXApi" in classes or findings["wechat-opensdk-ios"].count > 3
    assert "wechat-url-schemes" in findings  # weixin:// among the C strings


def _proto_field(number: int, payload: bytes) -> bytes:
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
            value >>= 7
            if not value:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _proto_element(name: str, attributes: dict[str, str], children: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    body = _proto_field(3, name.encode())
    for key, value in attributes.items():
        body += _proto_field(4, _proto_field(2, key.encode()) + _proto_field(3, value.encode()))
    for child in children:
        body += _proto_field(5, _proto_field(1, child))
    return body


def test_app_bundle_protobuf_manifest_and_dex(tmp_path: Path) -> None:
    """An .aab keeps its manifest as protobuf XML and its code under base/dex/."""
    import zipfile

    material.require_tool("smali")
    queries = _proto_element("queries", {}, [_proto_element("package", {"name": "com.tencent.mm"})])
    manifest = _proto_field(1, _proto_element("manifest", {"package": "com.zhiliaoapp.musically"}, [queries]))
    dex = material.build_dex(material.smali_classes("com/tencent/mm/opensdk/openapi/WXAPIFactory"), tmp_path)
    bundle = tmp_path / "app.aab"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("base/manifest/AndroidManifest.xml", manifest)
        archive.writestr("base/dex/classes.dex", dex.read_bytes())
    findings = by_id(found(bundle))
    assert set(findings) == {"tiktok-app-code", "wechat-app-queries", "wechat-opensdk-android"}
    assert findings["tiktok-app-code"].observation == "manifest_package"
    assert findings["wechat-opensdk-android"].member == "base/dex/classes.dex"


def test_protobuf_manifest_reader_never_crashes_on_garbage() -> None:
    from appban.code.binary import MalformedBinary
    from appban.code.binary.protoxml import read_proto_manifest

    valid = _proto_field(1, _proto_element("manifest", {"package": "x"}, [_proto_element("queries", {})]))
    mutated = st.builds(
        lambda cut, flip: valid[:cut] + bytes([flip]) + valid[cut + 1 :],
        st.integers(0, len(valid) - 1),
        st.integers(0, 255),
    )

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.binary(max_size=512), mutated))
    def check(data: bytes) -> None:
        with contextlib.suppress(MalformedBinary):
            read_proto_manifest(data)

    check()
