"""The code scanner's SBOM (CycloneDX 1.6) and code-scanning (SARIF 2.1.0) outputs, from real scans.

One project is built here as users bring them: a Maven pom pinning the WeChat OpenSDK, a signed APK whose
dex files carry WeChat and TikTok classes (smali, aapt, apksigner), a Podfile with its Podfile.lock, a
SwiftPM Package.resolved, a go.mod, and an npm tarball holding a package.json and an AAR with a classes.jar.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from typer.testing import CliRunner

from appban import load_rulebook
from appban.cli import app
from appban.code.model import Observation, Package
from appban.code.scan import ScanResult, pinned_version, scan
from appban.report.cyclonedx import purl_of, to_cyclonedx
from appban.report.sarif import to_sarif
from tests import material
from tests.test_code_safety import zip_bytes

BOOK = load_rulebook()
AT = dt.datetime(2020, 11, 20, tzinfo=dt.UTC)
runner = CliRunner()

# Maven POM reference (maven.apache.org/pom.html): dependencies with groupId, artifactId and version; a
# version may be a property reference, which names no version until the build resolves it.
POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>shop</artifactId>
  <version>1.0</version>
  <dependencies>
    <dependency>
      <groupId>com.tencent.mm.opensdk</groupId>
      <artifactId>wechat-sdk-android</artifactId>
      <version>6.8.0</version>
    </dependency>
    <dependency>
      <groupId>com.tiktok.open.sdk</groupId>
      <artifactId>tiktok-open-sdk-core</artifactId>
      <version>${tiktok.version}</version>
    </dependency>
    <dependency>
      <groupId>com.tiktok.open.sdk</groupId>
      <artifactId>tiktok-open-sdk-share</artifactId>
      <version>2.3.0</version>
    </dependency>
  </dependencies>
</project>
"""
# CocoaPods guides, "Using pod install vs. pod update" and the Podfile syntax: the Podfile names a pod
# (optionally with a requirement), Podfile.lock records the version installed under PODS.
PODFILE = "platform :ios, '12.0'\ntarget 'Shop' do\n  pod 'TikTokOpenSDKCore', '~> 2.2'\nend\n"
PODFILE_LOCK = """PODS:
  - TikTokOpenSDKCore (2.2.0)

DEPENDENCIES:
  - TikTokOpenSDKCore (~> 2.2)

SPEC REPOS:
  trunk:
    - TikTokOpenSDKCore

COCOAPODS: 1.15.2
"""
# SwiftPM's Package.resolved (version 2): each pin's location and the version it resolved to.
PACKAGE_RESOLVED = {
    "pins": [
        {
            "identity": "tiktok-opensdk-ios",
            "kind": "remoteSourceControl",
            "location": "https://github.com/tiktok/tiktok-opensdk-ios.git",
            "state": {"revision": "cb0cdc785b653c3be116fd1302ec280fbcfac695", "version": "2.2.0"},
        }
    ],
    "version": 2,
}
# Go modules reference (go.dev/ref/mod#go-mod-file-require): a module path and its version.
GO_MOD = "module example.com/shop\n\ngo 1.21\n\nrequire github.com/wechatpay-apiv3/wechatpay-go v0.2.20\n"
# npm's package.json: the package's own name and version, and dependencies as semver ranges.
PACKAGE_JSON = """{
  "name": "react-native-wechat-lib",
  "version": "1.1.27",
  "dependencies": {
    "weixin-js-sdk": "^1.6.5"
  }
}
"""
TARBALL = "web/vendor/react-native-wechat-lib-1.1.27.tgz"
AAR_MEMBER = "package/android/libs/wechat-sdk.aar"


def _tgz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)  # npm pack puts every file under package/
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("smali", "aapt", "zipalign", "apksigner", "keytool"):
        material.require_tool(tool)
    root = tmp_path_factory.mktemp("project")
    (root / "android").mkdir()
    (root / "android" / "pom.xml").write_text(POM)
    apk = material.build_apk(
        "com.example.shop",
        material.smali_classes("com/tencent/mm/opensdk/openapi/WXAPIFactory", "com/example/shop/Main"),
        tmp_path_factory.mktemp("apk"),
        extra_dex=[material.smali_classes("com/tiktok/open/sdk/auth/AuthApi")],
    )
    (root / "app-release.apk").write_bytes(apk.read_bytes())
    (root / "ios").mkdir()
    (root / "ios" / "Podfile").write_text(PODFILE)
    (root / "ios" / "Podfile.lock").write_text(PODFILE_LOCK)
    (root / "ios" / "Package.resolved").write_text(json.dumps(PACKAGE_RESOLVED, indent=2))
    (root / "server").mkdir()
    (root / "server" / "go.mod").write_text(GO_MOD)
    classes_jar = zip_bytes({"com/tencent/mm/opensdk/modelmsg/SendAuth.class": b"\xca\xfe\xba\xbe"})
    aar = zip_bytes({"AndroidManifest.xml": b'<manifest package="com.example.lib"/>', "classes.jar": classes_jar})
    tarball = root / TARBALL
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(_tgz({"package/package.json": PACKAGE_JSON.encode(), AAR_MEMBER: aar}))
    return root


@pytest.fixture(scope="module")
def result(project: Path) -> ScanResult:
    found = scan([project], at=AT, rulebook=BOOK)
    assert not found.warnings, found.warnings
    return found


# ---- versions and package URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "detail", "expected"),
    [
        ("maven", "6.8.0", "6.8.0"),
        ("maven", "${tiktok.version}", None),  # a property the build resolves
        ("maven", "1.+", None),  # a Gradle dynamic version
        ("maven", "[1.0,2.0)", None),  # a Maven version range
        ("maven", "latest.release", None),
        ("maven", "com.tencent.mm.opensdk:wechat-sdk-android:6.8.0", "6.8.0"),  # Cordova's framework src
        ("npm", "^1.6.5", None),
        ("npm", "1.6.5", "1.6.5"),
        ("npm", "package", None),
        ("cocoapods", "2.2.0", "2.2.0"),
        ("cocoapods", "~> 2.2", None),
        ("cocoapods", "podspec name", None),
        ("go", "v0.2.20", "v0.2.20"),
        ("swiftpm", "https://github.com/tiktok/tiktok-opensdk-ios.git", None),
    ],
)
def test_only_an_exact_version_is_a_version(kind: str, detail: str, expected: str | None) -> None:
    assert pinned_version(Observation(kind, "x", 1, detail)) == expected


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        # purl-spec PURL-TYPES: the namespace and name rules of each type.
        (Package("maven", "com.tencent.mm.opensdk:wechat-sdk-android", "6.8.0", 1),
         "pkg:maven/com.tencent.mm.opensdk/wechat-sdk-android@6.8.0"),
        (Package("npm", "@capgo/capacitor-wechat", "8.0.38", 1), "pkg:npm/%40capgo/capacitor-wechat@8.0.38"),
        (Package("pypi", "WeChat_Py", None, 1), "pkg:pypi/wechat-py"),
        (Package("go", "github.com/WeChatPay-APIv3/wechatpay-go", "v0.2.20", 1),
         "pkg:golang/github.com/wechatpay-apiv3/wechatpay-go@v0.2.20"),
        (Package("cocoapods", "TikTokOpenSDKCore", "2.2.0", 1), "pkg:cocoapods/TikTokOpenSDKCore@2.2.0"),
        (Package("swiftpm", "tiktok-opensdk-ios", "2.2.0", 1, "https://github.com/tiktok/tiktok-opensdk-ios.git"),
         "pkg:swift/github.com/tiktok/tiktok-opensdk-ios@2.2.0"),
        # A Swift package URL needs the repository and the version: a name alone makes none.
        (Package("swiftpm", "WechatOpenSDK", None, 1, None), None),
        (Package("swiftpm", "tiktok-opensdk-ios", None, 1, "https://github.com/tiktok/tiktok-opensdk-ios"), None),
        (Package("pub", "TikTok_SDK_v2", None, 1), "pkg:pub/tiktok_sdk_v2"),
    ],
)  # fmt: skip
def test_package_urls_follow_each_type(package: Package, expected: str | None) -> None:
    purl = purl_of(package)
    assert (purl.to_string() if purl is not None else None) == expected


# ---- CycloneDX --------------------------------------------------------------------------------------------


def _bom(result: ScanResult) -> dict[str, Any]:
    text = to_cyclonedx(result)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    return dict(json.loads(text))


def _signature(component: dict[str, Any]) -> str:
    return str(next(p["value"] for p in component["properties"] if p["name"] == "appban:signature"))


def test_one_component_per_sdk_valid_against_the_cyclonedx_1_6_schema(result: ScanResult) -> None:
    bom = _bom(result)
    sdks = {f.signature.id for f in result.findings}
    assert {
        "wechat-opensdk-android", "tiktok-opensdk-android", "tiktok-opensdk-ios", "wechat-sdk-wrappers",
        "wechat-jssdk", "wechat-service-clients",
    } <= sdks  # fmt: skip
    assert len(bom["components"]) == len(sdks) < len(result.findings)
    assert sorted(_signature(c) for c in bom["components"]) == sorted(sdks)
    refs = [c["bom-ref"] for top in bom["components"] for c in [top, *top.get("components", [])]]
    assert len(refs) == len(set(refs))


def test_a_pinned_package_is_the_component_with_every_file_and_class_as_occurrences(result: ScanResult) -> None:
    components = {_signature(c): c for c in _bom(result)["components"]}
    wechat = components["wechat-opensdk-android"]
    assert wechat["purl"] == "pkg:maven/com.tencent.mm.opensdk/wechat-sdk-android@6.8.0"
    assert (wechat["group"], wechat["name"], wechat["version"]) == (
        "com.tencent.mm.opensdk", "wechat-sdk-android", "6.8.0",
    )  # fmt: skip
    occurrences = wechat["evidence"]["occurrences"]
    pom = [o for o in occurrences if o["location"].endswith("android/pom.xml")]
    assert [o["line"] for o in pom] == [_line_of(POM, "<dependency>")]
    dex = [o for o in occurrences if o["location"].endswith("app-release.apk!/classes.dex")]
    assert [o["symbol"] for o in dex] == ["com.tencent.mm.opensdk.openapi.WXAPIFactory"]
    jar = [o for o in occurrences if o["location"].endswith(f"{AAR_MEMBER}!/classes.jar")]
    assert [o["symbol"] for o in jar] == ["com.tencent.mm.opensdk.modelmsg.SendAuth"]
    [identity] = wechat["evidence"]["identity"]
    assert (identity["field"], identity["concludedValue"]) == ("purl", wechat["purl"])
    techniques = {m["technique"] for m in identity["methods"]}
    assert techniques == {"manifest-analysis", "binary-analysis", "filename"}  # pom; dex; class file names
    props = {(p["name"], p["value"]) for p in wechat["properties"]}
    assert {("appban:app", "wechat"), ("appban:kind", "sdk"), ("appban:verdict", "enjoined")} <= props
    assert len(props) == len(wechat["properties"])  # deduplicated


def test_versions_from_lock_files_and_manifests(result: ScanResult) -> None:
    components = {_signature(c): c for c in _bom(result)["components"]}
    assert components["wechat-sdk-wrappers"]["purl"] == "pkg:npm/react-native-wechat-lib@1.1.27"
    assert components["wechat-jssdk"]["purl"] == "pkg:npm/weixin-js-sdk"  # only a range: ^1.6.5
    assert "version" not in components["wechat-jssdk"]
    go = components["wechat-service-clients"]
    assert go["purl"] == "pkg:golang/github.com/wechatpay-apiv3/wechatpay-go@v0.2.20"
    assert [o["line"] for o in go["evidence"]["occurrences"]] == [_line_of(GO_MOD, "require")]


def test_an_sdk_with_several_packages_holds_them_as_components(result: ScanResult) -> None:
    components = {_signature(c): c for c in _bom(result)["components"]}
    ios = components["tiktok-opensdk-ios"]
    assert "purl" not in ios
    parts = {c["purl"]: c for c in ios["components"]}
    assert set(parts) == {
        "pkg:cocoapods/TikTokOpenSDKCore@2.2.0",
        "pkg:swift/github.com/tiktok/tiktok-opensdk-ios@2.2.0",
    }
    # The Podfile names the pod, the lock file pins it: one dependency, both files as its evidence.
    pod = parts["pkg:cocoapods/TikTokOpenSDKCore@2.2.0"]["evidence"]["occurrences"]
    assert {(Path(o["location"]).name, o.get("line")) for o in pod} >= {
        ("Podfile", _line_of(PODFILE, "pod ")), ("Podfile.lock", _line_of(PODFILE_LOCK, "(2.2.0)")),
    }  # fmt: skip
    android = components["tiktok-opensdk-android"]
    purls = {c["purl"] for c in android["components"]}
    assert purls == {
        "pkg:maven/com.tiktok.open.sdk/tiktok-open-sdk-core",  # ${tiktok.version} is no version
        "pkg:maven/com.tiktok.open.sdk/tiktok-open-sdk-share@2.3.0",
    }
    # A class in the APK names no package: it stays with the SDK, not with one of its artifacts.
    [occurrence] = android["evidence"]["occurrences"]
    assert occurrence["location"].endswith("app-release.apk!/classes2.dex")
    assert occurrence["symbol"] == "com.tiktok.open.sdk.auth.AuthApi"


# ---- SARIF ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif(result: ScanResult, project: Path) -> dict[str, Any]:
    return to_sarif(result, project, {})


def _result(document: dict[str, Any], rule: str, member_suffix: str) -> dict[str, Any]:
    [found] = [
        r
        for r in document["runs"][0]["results"]
        if r["ruleId"] == rule and (r["properties"]["member"] or r["properties"]["path"]).endswith(member_suffix)
    ]
    return dict(found)


def test_sarif_validates_against_the_sarif_2_1_0_schema(sarif: dict[str, Any], tmp_path: Path) -> None:
    schema_path = material.extract_member(
        material.require("microsoft-jest-sarif-1.0.0-beta.0.tgz"),
        "package/lib/schemas/sarif-2.1.0-rtm.5.json",
        tmp_path,
    )
    jsonschema.validate(sarif, json.loads(schema_path.read_text()))


def test_every_result_has_what_github_code_scanning_requires(sarif: dict[str, Any]) -> None:
    # docs.github.com "SARIF support for code scanning": a rule's id, short and full descriptions and help
    # text; a result's message, its first location's artifact URI relative to the repository root and a
    # region with startLine (the sarif-sdk GH1003 rule: at minimum region.startLine).
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "appban"
    for rule in run["tool"]["driver"]["rules"]:
        assert rule["id"] and rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"]
    assert len(run["results"]) == len({(r["properties"]["path"], r["ruleId"]) for r in run["results"]}) > 5
    for entry in run["results"]:
        assert entry["message"]["text"] and entry["partialFingerprints"]
        physical = entry["locations"][0]["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        assert ":" not in uri and not uri.startswith(("/", "..")) and "!/" not in uri
        assert physical["region"]["startLine"] >= 1
        assert run["artifacts"][physical["artifactLocation"]["index"]]["location"]["uri"] == uri


def test_a_text_member_of_an_archive_gives_its_line_inside_the_member(sarif: dict[str, Any]) -> None:
    artifacts = sarif["runs"][0]["artifacts"]
    entry = _result(sarif, "wechat-sdk-wrappers", "package/package.json")
    location = entry["locations"][0]
    physical = location["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == TARBALL
    assert physical["region"] == {"startLine": 1, "properties": {"lineKnown": False}}  # no line of a tarball
    [logical] = location["logicalLocations"]
    assert logical == {
        "name": "package.json",
        "fullyQualifiedName": f"{TARBALL}!/package/package.json",
        "kind": "module",
    }
    [related] = entry["relatedLocations"]
    inner = related["physicalLocation"]
    line = _line_of(PACKAGE_JSON, '"name"')
    assert inner["region"] == {"startLine": line}
    nested = artifacts[inner["artifactLocation"]["index"]]
    assert nested["location"]["uri"] == inner["artifactLocation"]["uri"] == "/package/package.json"
    assert artifacts[nested["parentIndex"]]["location"]["uri"] == TARBALL
    assert f"archive member package/package.json (line {line})" in entry["message"]["text"]


def test_binary_members_and_nested_archives_are_logical_locations_and_artifact_chains(sarif: dict[str, Any]) -> None:
    artifacts = sarif["runs"][0]["artifacts"]
    dex = _result(sarif, "wechat-opensdk-android", "classes.dex")
    location = dex["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "app-release.apk"
    assert location["physicalLocation"]["region"]["properties"] == {"lineKnown": False}
    assert "relatedLocations" not in dex  # no line is known inside a dex
    assert [(lg["fullyQualifiedName"], lg["kind"]) for lg in location["logicalLocations"]] == [
        ("app-release.apk!/classes.dex", "module"),
        ("com.tencent.mm.opensdk.openapi.WXAPIFactory", "type"),
    ]
    # A JAR inside an AAR inside the tarball: the member chain walks back to the tarball.
    jar = _result(sarif, "wechat-opensdk-android", f"{AAR_MEMBER}!/classes.jar")
    assert jar["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == TARBALL
    chain = []
    index = next(i for i, a in enumerate(artifacts) if a["location"]["uri"] == "/classes.jar")
    while index is not None:
        chain.append(artifacts[index]["location"]["uri"])
        index = artifacts[index].get("parentIndex")
    assert chain == ["/classes.jar", f"/{AAR_MEMBER}", TARBALL]


def test_a_plain_file_keeps_its_own_line(sarif: dict[str, Any]) -> None:
    pom = _result(sarif, "wechat-opensdk-android", "android/pom.xml")
    location = pom["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "android/pom.xml"
    assert location["physicalLocation"]["region"] == {"startLine": _line_of(POM, "<dependency>")}
    assert "logicalLocations" not in location and "relatedLocations" not in pom


def test_uris_are_percent_encoded_and_the_cli_writes_both_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "build files#1"
    folder.mkdir()
    (folder / "go.mod").write_text(GO_MOD)
    monkeypatch.chdir(tmp_path)
    out = runner.invoke(app, ["scan", ".", "--at", "2020-11-20T00:00:00Z", "--format", "sarif"])
    assert out.exit_code == 0, out.output
    [entry] = json.loads(out.stdout)["runs"][0]["results"]
    assert entry["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "build%20files%231/go.mod"
    out = runner.invoke(app, ["scan", ".", "--at", "2020-11-20T00:00:00Z", "--format", "cyclonedx"])
    assert out.exit_code == 0, out.output
    [component] = json.loads(out.stdout)["components"]
    assert component["purl"] == "pkg:golang/github.com/wechatpay-apiv3/wechatpay-go@v0.2.20"
