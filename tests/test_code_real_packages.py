"""Real packages and real configuration shapes, both ways: what only names WeChat or TikTok is no finding,
what calls them is one, with the version and package URL the package's own metadata gives.

The registry packages are pinned (version and SHA-256) in scripts/setup-test-material.sh. Configuration
shapes follow the libraries' documentation: grant's README ("Configuration: Basics", a provider key with
`key` and `secret`), better-auth's TikTok page (`socialProviders.tiktok` with `clientKey` and
`clientSecret`), django-allauth's SOCIALACCOUNT_PROVIDERS (`APP` with `client_id` and `secret`),
python-social-auth's backend settings (SOCIAL_AUTH_<BACKEND>_KEY / _SECRET) and Auth.js's provider pages
(AUTH_TIKTOK_ID / AUTH_TIKTOK_SECRET). Metadata files follow the Core metadata specification (Name, Version
headers in METADATA and PKG-INFO) and the CocoaPods podspec reference (`spec.name`, `spec.version`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from appban import load_rulebook
from appban.code.scan import CodeFinding, ScanResult, scan
from appban.code.signatures import default_signatures
from appban.report.cyclonedx import relative_location, to_cyclonedx
from tests import material
from tests.test_code_services import _unpack_npm

BOOK = load_rulebook()
AT = dt.datetime(2020, 11, 20, tzinfo=dt.UTC)

# File names the setup script downloads.
WECHATY = "wechaty-1.20.2.tgz"
BETTER_AUTH_CORE = "better-auth-core-1.7.25.tgz"
SIMPLE_ICONS = "simple-icons-16.37.0.tgz"
FA_BRANDS = "fortawesome-free-brands-svg-icons-7.3.1.tgz"
REACT_SHARE = "react-share-5.3.0.tgz"
UA_PARSER_JS = "ua-parser-js-2.0.10.tgz"
EMOJI = "emoji-2.16.0-py3-none-any.whl"
SOCIAL_AUTH_APP_DJANGO = "social_auth_app_django-8.0.0-py3-none-any.whl"
USER_AGENTS = "user_agents-2.2.0-py3-none-any.whl"
UA_PARSER = "ua_parser-1.0.2-py3-none-any.whl"


def run(*paths: Path) -> ScanResult:
    result = scan(list(paths), at=AT, rulebook=BOOK)
    assert not result.warnings, result.warnings
    return result


def found(*paths: Path) -> list[CodeFinding]:
    return run(*paths).findings


def kinds(findings: list[CodeFinding]) -> set[tuple[str, str, str]]:
    return {(f.signature.id, f.signature.app, f.signature.kind) for f in findings}


def bom(result: ScanResult) -> dict[str, Any]:
    text = to_cyclonedx(result)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    return dict(json.loads(text))


def signature_of(component: dict[str, Any]) -> str:
    return str(next(p["value"] for p in component["properties"] if p["name"] == "appban:signature"))


# ---- packages that name the apps without calling them ---------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        SIMPLE_ICONS,  # SVG icons and brand data for TikTok and WeChat
        FA_BRANDS,  # Font Awesome's faTiktok and faWeixin icons
        REACT_SHARE,  # share buttons (a WeChat-less list, but Weibo and others)
        UA_PARSER_JS,  # user-agent rules that recognise the WeChat and TikTok in-app browsers
        EMOJI,  # emoji names and aliases
        SOCIAL_AUTH_APP_DJANGO,  # the Django app of python-social-auth: backends come from social-core
        USER_AGENTS,
        UA_PARSER,
    ],
)
def test_packages_that_only_name_the_apps_are_not_findings(name: str) -> None:
    assert found(material.require(name)) == []


def test_better_auths_provider_table_is_an_offer_not_a_use() -> None:
    path = material.require(BETTER_AUTH_CORE)
    assert found(path) == []
    # Its WeChat and TikTok providers do hold the services' endpoints: the catalog rule sets them aside.
    without_rule = dataclasses.replace(default_signatures(BOOK), catalogs=[])
    offered = scan([path], at=AT, rulebook=BOOK, signatures=without_rule).findings
    assert {f.signature.app for f in offered} == {"wechat", "tiktok"}
    assert {(f.member or "").split("/")[-1] for f in offered} >= {"wechat.mjs", "tiktok.mjs"}


# ---- real clients -----------------------------------------------------------------------------------------


def test_wechaty_is_found_through_its_default_wechat_puppet() -> None:
    [finding] = found(material.require(WECHATY))
    assert (finding.signature.id, finding.signature.app, finding.signature.kind) == (
        "wechat-service-clients",
        "wechat",
        "service_client",
    )
    assert (finding.member, finding.matched) == ("package/package.json", "wechaty-puppet-wechat4u")
    assert finding.decisions["constituent_code_use"].verdict.value == "enjoined"


@pytest.mark.parametrize(
    ("name", "signature", "purl"),
    [
        (material.TIKTOKAPI, "tiktok-web-api-clients", "pkg:pypi/tiktokapi@7.3.3"),
        (material.TIKTOKLIVE, "tiktok-web-api-clients", "pkg:pypi/tiktoklive@7.0.1"),
        (material.WECHATPY, "wechat-service-clients", "pkg:pypi/wechatpy@1.8.18"),
    ],
)
def test_a_wheels_metadata_gives_the_version_and_package_url(name: str, signature: str, purl: str) -> None:
    result = run(material.require(name))
    [metadata] = [f for f in result.findings if (f.member or "").endswith(".dist-info/METADATA")]
    assert metadata.signature.id == signature
    [package] = metadata.packages
    assert (package.ecosystem, package.line) == ("pypi", 2)  # Name: is the second header, after Metadata-Version
    components = {signature_of(c): c for c in bom(result)["components"]}
    assert components[signature]["purl"] == purl
    assert components[signature]["version"] == purl.rsplit("@", 1)[1]


def _sdist(name: str, version: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A source distribution as `python -m build --sdist` lays it out: <name>-<version>/PKG-INFO."""
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\nLong description\n"
    members = {f"{name}-{version}/PKG-INFO": pkg_info.encode(), **(extra or {})}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_an_sdists_pkg_info_gives_the_version(tmp_path: Path) -> None:
    (tmp_path / "WeRoBot-1.13.1.tar.gz").write_bytes(_sdist("WeRoBot", "1.13.1"))
    [finding] = found(tmp_path)
    assert (finding.signature.id, finding.member) == ("wechat-service-clients", "WeRoBot-1.13.1/PKG-INFO")
    assert [(p.name, p.version) for p in finding.packages] == [("werobot", "1.13.1")]


@pytest.mark.parametrize(
    ("file", "text", "version"),
    [
        # pip's requirements format: == pins one release; a range or a wildcard pins none.
        ("requirements.txt", "wechatpy==1.8.18\n", "1.8.18"),
        ("requirements.txt", "wechatpy[cryptography] == 1.8.18 ; python_version >= '3.8'\n", "1.8.18"),
        ("requirements.txt", "wechatpy>=1.8,<2\n", None),
        ("requirements.txt", "wechatpy==1.8.*\n", None),
        # poetry.lock and uv.lock: each [[package]] with its resolved version.
        ("poetry.lock", '[[package]]\nname = "wechatpy"\nversion = "1.8.18"\ndescription = "x"\n', "1.8.18"),
        ("uv.lock", 'version = 1\n\n[[package]]\nname = "wechatpy"\nversion = "1.8.18"\n', "1.8.18"),
        # Pipfile.lock: "version": "==1.8.18".
        ("Pipfile.lock", '{"default": {"wechatpy": {"version": "==1.8.18"}}, "develop": {}}', "1.8.18"),
    ],
)
def test_python_pins_and_locks_give_versions(tmp_path: Path, file: str, text: str, version: str | None) -> None:
    (tmp_path / file).write_text(text)
    [finding] = found(tmp_path)
    assert [(p.name, p.version) for p in finding.packages] == [("wechatpy", version)]


# CocoaPods podspec reference: spec.name and spec.version (a Ruby podspec), or the JSON form trunk stores.
PODSPEC = """Pod::Spec.new do |s|
  s.name         = 'TikTokOpenSDKCore'
  s.version      = '2.2.0'
  s.summary      = 'TikTok OpenSDK core'
  s.source       = { :git => 'https://github.com/tiktok/tiktok-opensdk-ios.git', :tag => s.version.to_s }
end
"""
PODSPEC_JSON = {"name": "WechatOpenSDK", "version": "2.0.4", "platforms": {"ios": "12.0"}}


def test_podspecs_give_the_pods_version(tmp_path: Path) -> None:
    (tmp_path / "TikTokOpenSDKCore.podspec").write_text(PODSPEC)
    (tmp_path / "WechatOpenSDK.podspec.json").write_text(json.dumps(PODSPEC_JSON, indent=2))
    (tmp_path / "react-native-share-kit.podspec").write_text(  # a version read from package.json is none here
        "package = JSON.parse(File.read('package.json'))\nPod::Spec.new do |s|\n  s.name = 'TikTokOpenShareSDK'\n"
        "  s.version = package['version']\nend\n"
    )
    result = run(tmp_path)
    pins = {(p.name, p.version, p.line) for f in result.findings for p in f.packages}
    assert pins == {("TikTokOpenSDKCore", "2.2.0", 2), ("WechatOpenSDK", "2.0.4", 2), ("TikTokOpenShareSDK", None, 3)}
    purls = {c.get("purl") for top in bom(result)["components"] for c in [top, *top.get("components", [])]}
    assert {"pkg:cocoapods/TikTokOpenSDKCore@2.2.0", "pkg:cocoapods/WechatOpenSDK@2.0.4"} <= purls


# ---- login providers given their credentials -----------------------------------------------------------------


@pytest.fixture()
def grant_app(tmp_path: Path) -> Path:
    """An Express app with grant installed (its 200-provider oauth.json) and a config for Google only."""
    _unpack_npm(material.require(material.GRANT), tmp_path / "node_modules" / "grant")
    (tmp_path / "package.json").write_text('{"name": "shop", "dependencies": {"grant": "5.4.24"}}\n')
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "defaults": {"origin": "https://shop.example", "transport": "session"},
                "google": {"key": "g-key", "secret": "g-secret", "scope": ["openid"]},
            },
            indent=2,
        )
    )
    return tmp_path


def test_grant_with_other_providers_configured_is_not_a_finding(grant_app: Path) -> None:
    assert found(grant_app) == []


def test_grant_configured_for_wechat_is_a_finding(grant_app: Path) -> None:
    config = json.loads((grant_app / "config.json").read_text())
    config["wechat"] = {"key": "wx123", "secret": "s3cret", "callback": "/wechat/done"}
    (grant_app / "config.json").write_text(json.dumps(config, indent=2))
    [finding] = found(grant_app)
    assert (finding.path, finding.observation, finding.matched) == (
        str(grant_app / "config.json"),
        "configured_providers",
        "wechat",
    )
    assert (finding.signature.id, finding.signature.kind) == ("wechat-login", "service_client")
    assert finding.line == (grant_app / "config.json").read_text().splitlines().index('  "wechat": {') + 1


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        (
            "auth.ts",
            'import { betterAuth } from "better-auth"\n\nexport const auth = betterAuth({\n  socialProviders: {\n'
            "    tiktok: {\n      clientSecret: process.env.TIKTOK_CLIENT_SECRET as string,\n"
            "      clientKey: process.env.TIKTOK_CLIENT_KEY as string,\n    },\n  },\n})\n",
            ("tiktok-login-connectors", 5),
        ),
        (
            "auth.ts",
            'import { betterAuth } from "better-auth"\nexport const auth = betterAuth({ socialProviders: {\n'
            "  wechat: { clientId: process.env.WECHAT_APP_ID!, clientSecret: process.env.WECHAT_APP_SECRET! },\n"
            "} })\n",
            ("wechat-login", 3),
        ),
        (
            "settings.py",
            'SOCIALACCOUNT_PROVIDERS = {\n    "weixin": {\n        "APP": {"client_id": "wx1", "secret": "s"},\n'
            '        "SCOPE": ["snsapi_login"],\n    }\n}\n',
            ("wechat-login", 2),
        ),
        ("settings.py", "SOCIAL_AUTH_WEIXIN_KEY = 'wx1'\nSOCIAL_AUTH_WEIXIN_SECRET = 's'\n", ("wechat-login", 1)),
        (".env", "AUTH_SECRET=x\nAUTH_TIKTOK_ID=aw1\nAUTH_TIKTOK_SECRET=s\n", ("tiktok-login-connectors", 2)),
    ],
)
def test_a_provider_given_its_credentials_is_a_finding(
    tmp_path: Path, file: str, text: str, expected: tuple[str, int]
) -> None:
    (tmp_path / file).write_text(text)
    [finding] = found(tmp_path)
    assert (finding.signature.id, finding.line) == expected
    assert finding.observation == "configured_providers"


@pytest.mark.parametrize(
    "text",
    [
        # An icon table, share buttons and labels name the apps without a credential.
        "export const icons = { wechat: { path: 'M0 0h24v24H0z', hex: '07C160' }, tiktok: { hex: '000000' } }\n",
        "share({ wechat: { title: 'Scan to share' } })\nconst secret = loadSecret()\n",
        "const mywechat = { secret: 1 }\nconst tiktokish = 2\n",
        "providers: [GitHub({ clientId: id, clientSecret: secret })] // WeChat and TikTok later\n",
    ],
)
def test_names_without_credentials_are_not_findings(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.js").write_text(text)
    assert found(tmp_path) == []


# ---- WeCom, the official-accounts platform and WeChat Pay -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "signature", "app", "verdict"),
    [
        # WeCom (WeChat Work) is Tencent's enterprise app: the rulebook's wecom, which the U.S. orders leave alone.
        ('TOKEN = "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ID&corpsecret=SECRET"', "wecom-api", "wecom",
         "not_prohibited"),
        ('LOGIN = "https://open.work.weixin.qq.com/wwopen/sso/qrConnect?appid=CORPID&agentid=1"', "wecom-api",
         "wecom", "not_prohibited"),
        # The official-account platform's QR-code exchange is WeChat's API.
        ('QR = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=" + ticket', "wechat-server-api", "wechat",
         "enjoined"),
        # WeChat Pay's merchant API is a service of the WeChat app (the identification's constituent-code item).
        ('PAY = "https://api.mch.weixin.qq.com/v3/pay/transactions/jsapi"', "wechatpay-api-endpoints", "wechat",
         "enjoined"),
    ],
)  # fmt: skip
def test_tencent_hosts_map_to_their_app(tmp_path: Path, text: str, signature: str, app: str, verdict: str) -> None:
    (tmp_path / "client.py").write_text(text + "\n")
    [finding] = found(tmp_path)
    assert (finding.signature.id, finding.signature.app, finding.signature.kind) == (signature, app, "service_client")
    assert finding.decisions["constituent_code_use"].verdict.value == verdict
    assert BOOK.subjects.subjects[app].company == "tencent"


@pytest.mark.parametrize(
    "text",
    [
        "read https://mp.weixin.qq.com/s/wM_UlMsDm3IZ1CPPDvcvQw for the release notes",  # an article
        "admin console: https://mp.weixin.qq.com/",
        "docs: https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter3_1_1.shtml",  # the merchant portal's docs
    ],
)
def test_platform_pages_and_docs_are_not_findings(tmp_path: Path, text: str) -> None:
    (tmp_path / "notes.py").write_text(f"# {text}\n")
    assert found(tmp_path) == []


# WxJava's README: groupId com.github.binarywang, one artifact per product (weixin-java-cp is WeCom's).
WXJAVA_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>shop</artifactId>
  <version>1.0</version>
  <dependencies>
    <dependency>
      <groupId>com.github.binarywang</groupId>
      <artifactId>weixin-java-mp</artifactId>
      <version>4.7.0</version>
    </dependency>
    <dependency>
      <groupId>com.github.binarywang</groupId>
      <artifactId>weixin-java-cp</artifactId>
      <version>4.7.0</version>
    </dependency>
  </dependencies>
</project>
"""


def test_wxjava_modules_are_wechats_or_wecoms(tmp_path: Path) -> None:
    (tmp_path / "pom.xml").write_text(WXJAVA_POM)
    (tmp_path / "Notify.java").write_text(
        "import me.chanjar.weixin.mp.api.WxMpService;\nimport me.chanjar.weixin.cp.api.WxCpService;\n"
    )
    result = run(tmp_path)
    assert kinds(result.findings) == {
        ("wechat-wxjava", "wechat", "service_client"),
        ("wecom-api", "wecom", "service_client"),
    }
    purls = {signature_of(c): c.get("purl") for c in bom(result)["components"]}
    assert purls == {
        "wechat-wxjava": "pkg:maven/com.github.binarywang/weixin-java-mp@4.7.0",
        "wecom-api": "pkg:maven/com.github.binarywang/weixin-java-cp@4.7.0",
    }


# ---- CycloneDX occurrence locations ---------------------------------------------------------------------------


def _tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_occurrence_locations_are_relative_to_the_scan_root(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    (root / "android").mkdir(parents=True)
    (root / "android" / "pom.xml").write_text(WXJAVA_POM)
    (root / "vendor").mkdir()
    package = b'{"name": "wechat-api", "version": "1.35.1"}'
    (root / "vendor" / "wechat-api-1.35.1.tgz").write_bytes(_tarball({"package/package.json": package}))
    result = run(root.resolve())  # an absolute path, as a CI job passes its checkout
    locations = {
        o["location"]
        for component in bom(result)["components"]
        for part in [component, *component.get("components", [])]
        for o in part["evidence"]["occurrences"]
    }
    assert locations == {"android/pom.xml", "vendor/wechat-api-1.35.1.tgz!/package/package.json"}
    # Each file scanned on its own: the nearest common folder.
    result = run(root / "android" / "pom.xml", root / "vendor" / "wechat-api-1.35.1.tgz")
    assert {o["location"] for c in bom(result)["components"] for o in c["evidence"]["occurrences"]} == locations


def test_a_location_outside_the_root_is_kept(tmp_path: Path) -> None:
    assert (
        relative_location(str(tmp_path / "a" / "x.apk") + "!/classes.dex", str(tmp_path / "a")) == "x.apk!/classes.dex"
    )
    assert relative_location("/elsewhere/pom.xml", str(tmp_path)) == "/elsewhere/pom.xml"
    assert relative_location("pom.xml", None) == "pom.xml"
