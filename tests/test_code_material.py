"""Real third-party packages as scan targets: every SDK they carry is found, with the right app and kind."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from appban import load_rulebook
from appban.cli import app
from appban.code.scan import CodeFinding, scan
from tests import material

BOOK = load_rulebook()
AT = dt.datetime(2020, 11, 20, tzinfo=dt.UTC)
runner = CliRunner()


def found(path: Path) -> list[CodeFinding]:
    return scan([path], at=AT, rulebook=BOOK).findings


def summary(findings: list[CodeFinding]) -> set[tuple[str, str, str]]:
    return {(f.signature.id, f.signature.app, f.signature.kind) for f in findings}


def at_member(findings: list[CodeFinding], suffix: str) -> list[CodeFinding]:
    return [f for f in findings if (f.member or "").endswith(suffix)]


def test_react_native_wechat_lib() -> None:
    findings = found(material.require(material.WECHAT_LIB))
    assert summary(findings) >= {
        ("wechat-opensdk-android", "wechat", "sdk"),
        ("wechat-opensdk-ios", "wechat", "sdk"),
        ("wechat-sdk-wrappers", "wechat", "sdk"),
    }
    [jar] = at_member(findings, material.WECHAT_LIB_JAR)
    assert jar.signature.id == "wechat-opensdk-android" and jar.count > 50  # the OpenSDK's classes
    assert any(example.startswith("com.tencent.mm.opensdk.") for example in jar.examples)
    # The static library is the OpenSDK, and it also calls WeChat Login's QR-connect endpoint itself.
    assert {f.signature.id for f in at_member(findings, material.WECHAT_LIB_STATIC)} >= {
        "wechat-opensdk-ios",
        "wechat-login",
    }
    gradle = [f for f in findings if (f.member or "").endswith("WeChatModule.java")]
    assert gradle and gradle[0].line is not None
    assert all(f.worst.verdict.value == "enjoined" for f in findings if f.signature.app == "wechat")


def test_the_real_opensdk_jar_on_its_own(tmp_path: Path) -> None:
    jar = material.extract_member(material.require(material.WECHAT_LIB), material.WECHAT_LIB_JAR, tmp_path)
    [finding] = found(jar)
    assert (finding.signature.id, finding.member) == ("wechat-opensdk-android", None)
    import zipfile

    with zipfile.ZipFile(jar) as archive:
        top_level = [n for n in archive.namelist() if n.endswith(".class") and "$" not in n]
    assert finding.count == len(top_level)  # every top-level class of the real SDK


def test_react_native_tiktok_1_1_2_framework_and_legacy_android_sdk() -> None:
    findings = found(material.require(material.TIKTOK_RN_OLD))
    assert summary(findings) >= {
        ("tiktok-opensdk-ios", "tiktok", "sdk"),
        ("tiktok-opensdk-android-legacy", "tiktok", "sdk"),
        ("tiktok-sdk-wrappers", "tiktok", "sdk"),
    }
    framework = [f for f in findings if f.observation == "frameworks"]
    assert [f.member for f in framework] == ["package/ios/Pods/TikTokOpenSDK/TikTokOpenSDK.framework"]


def test_react_native_tiktok_2_1_17_current_sdks_and_queries() -> None:
    findings = found(material.require(material.TIKTOK_RN_NEW))
    assert summary(findings) >= {
        ("tiktok-opensdk-android", "tiktok", "sdk"),
        ("tiktok-opensdk-ios", "tiktok", "sdk"),
        ("tiktok-app-queries", "tiktok", "sdk"),
    }
    gradle = at_member(findings, "package/android/build.gradle")
    assert gradle and gradle[0].observation == "maven" and gradle[0].line is not None


def test_capacitor_wechat_gradle_podspec_swiftpm_and_imports() -> None:
    findings = found(material.require(material.CAPACITOR_WECHAT))
    observed = {(f.signature.id, f.observation) for f in findings}
    assert observed >= {
        ("wechat-opensdk-android", "maven"),
        ("wechat-opensdk-android", "java"),
        ("wechat-opensdk-ios", "cocoapods"),
        ("wechat-opensdk-ios", "swiftpm"),
        ("wechat-opensdk-ios", "modules"),
        ("wechat-sdk-wrappers", "npm"),
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (material.WEIXIN_JS_SDK, {("wechat-jssdk", "service_client")}),
        (material.TIKTOK_PIXEL, {("tiktok-pixel", "service_client")}),
        # wechatpy names itself in its metadata and calls the WeChat Pay merchant API, the server API and
        # WeChat Login's hosts; its enterprise client calls WeCom's API (qyapi.weixin.qq.com), another app.
        (
            material.WECHATPY,
            {
                ("wechat-service-clients", "service_client"),
                ("wechatpay-api-endpoints", "service_client"),
                ("wechat-server-api", "service_client"),
                ("wechat-login", "service_client"),
                ("wecom-api", "service_client"),
            },
        ),
    ],
)
def test_web_and_server_libraries(name: str, expected: set[tuple[str, str]]) -> None:
    findings = found(material.require(name))
    assert {(f.signature.id, f.signature.kind) for f in findings} == expected


def test_pixel_loader_url_is_found_in_the_built_code() -> None:
    findings = found(material.require(material.TIKTOK_PIXEL))
    urls = [f for f in findings if f.observation == "url"]
    assert any((f.member or "").startswith("package/dist/") and "analytics.tiktok.com" in f.matched for f in urls)


def test_sarif_output_validates_against_the_sarif_2_1_0_schema(tmp_path: Path) -> None:
    schema_path = material.extract_member(
        material.require("microsoft-jest-sarif-1.0.0-beta.0.tgz"),
        "package/lib/schemas/sarif-2.1.0-rtm.5.json",
        tmp_path,
    )
    schema = json.loads(schema_path.read_text())
    out = tmp_path / "scan.sarif"
    target = material.require(material.WECHAT_LIB)
    result = runner.invoke(
        app, ["scan", str(target), "--at", "2020-11-20T00:00:00Z", "--format", "sarif", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    jsonschema.validate(document, schema)
    run = document["runs"][0]
    assert {r["ruleId"] for r in run["results"]} >= {"wechat-opensdk-android", "wechat-opensdk-ios"}
    assert all(r["level"] == "warning" for r in run["results"])  # enjoined in November 2020
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"])


def test_cyclonedx_output_validates_and_lists_the_sdk_components(tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    target = material.require(material.CAPACITOR_WECHAT)
    result = runner.invoke(app, ["scan", str(target), "--format", "cyclonedx"])
    assert result.exit_code == 0, result.output
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout) is None
    document = json.loads(result.stdout)
    # The iOS SDK is named both as a pod and as a Swift package: its packages are the SDK's own components.
    purls = {c.get("purl") for top in document["components"] for c in [top, *top.get("components", [])]}
    assert "pkg:maven/com.tencent.mm.opensdk/wechat-sdk-android-without-mta@6.8.0" in purls  # build.gradle
    assert "pkg:cocoapods/WechatOpenSDK" in purls


def test_fail_on_gates_the_exit_code(tmp_path: Path) -> None:
    target = str(material.require(material.TIKTOK_RN_NEW))
    assert (
        runner.invoke(app, ["scan", target, "--at", "2020-11-20T00:00:00Z", "--fail-on", "prohibited"]).exit_code == 0
    )
    assert runner.invoke(app, ["scan", target, "--at", "2020-11-20T00:00:00Z", "--fail-on", "any"]).exit_code == 1
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "Podfile").write_text("pod 'Alamofire'\n")
    assert runner.invoke(app, ["scan", str(clean), "--fail-on", "any"]).exit_code == 0
    bad = runner.invoke(app, ["scan", target, "--where", "USA"])
    assert bad.exit_code == 2
