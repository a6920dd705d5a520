"""Clients of WeChat's and TikTok's services, and the apps' own code under another name.

Real registry packages (downloaded by scripts/setup-test-material.sh at pinned versions and hashes) are
scanned as users bring them: login connectors, official-account frameworks, unofficial web-API clients,
the mini-program cloud SDK, and multi-provider login libraries that merely offer WeChat or TikTok.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tarfile
import zipfile
from pathlib import Path

import pytest

from appban import load_rulebook
from appban.code.scan import CodeFinding, scan
from appban.code.signatures import default_signatures
from tests import material

BOOK = load_rulebook()
AT = dt.datetime(2020, 11, 20, tzinfo=dt.UTC)


def found(*paths: Path) -> list[CodeFinding]:
    result = scan(list(paths), at=AT, rulebook=BOOK)
    assert not result.warnings, result.warnings
    return result.findings


def kinds(findings: list[CodeFinding]) -> set[tuple[str, str, str]]:
    return {(f.signature.id, f.signature.app, f.signature.kind) for f in findings}


# ---- real clients of the services ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Depends on wechat-oauth, which makes the calls.
        (material.PASSPORT_WECHAT, {("wechat-service-clients", "wechat", "service_client")}),
        (
            material.WECHAT_OAUTH,
            {
                ("wechat-service-clients", "wechat", "service_client"),
                ("wechat-login", "wechat", "service_client"),  # open.weixin.qq.com/connect/oauth2/authorize
                ("wechat-server-api", "wechat", "service_client"),  # api.weixin.qq.com/sns/oauth2/access_token
            },
        ),
        (
            material.WECHAT_API,
            {
                ("wechat-service-clients", "wechat", "service_client"),
                ("wechat-server-api", "wechat", "service_client"),  # api.weixin.qq.com/cgi-bin/...
            },
        ),
        # The official-account message middleware answers WeChat's servers; it names itself.
        (material.WECHAT_MIDDLEWARE, {("wechat-service-clients", "wechat", "service_client")}),
        # The cloud SDK calls its services by function name: the package is the evidence.
        (material.WX_SERVER_SDK, {("wechat-cloud", "wechat", "service_client")}),
        (
            material.PASSPORT_TIKTOK,
            {
                ("tiktok-login-connectors", "tiktok", "service_client"),
                ("tiktok-login-api", "tiktok", "service_client"),  # open.tiktokapis.com, open-api.tiktok.com
            },
        ),
        (material.TIKTOK_SCRAPER, {("tiktok-web-api-clients", "tiktok", "service_client")}),
        (material.TIKTOK_LIVE_CONNECTOR, {("tiktok-web-api-clients", "tiktok", "service_client")}),
        (material.TIKTOKAPI, {("tiktok-web-api-clients", "tiktok", "service_client")}),
        (material.TIKTOKLIVE, {("tiktok-web-api-clients", "tiktok", "service_client")}),
    ],
)
def test_real_service_clients_are_found(name: str, expected: set[tuple[str, str, str]]) -> None:
    findings = found(material.require(name))
    assert kinds(findings) == expected
    assert all(f.decisions["constituent_code_use"].verdict.value == "enjoined" for f in findings)


@pytest.mark.parametrize(
    ("name", "member", "host"),
    [
        (material.TIKTOKAPI, "TikTokApi/api/user.py", "www.tiktok.com/api/"),
        (material.TIKTOKLIVE, "TikTokLive/client/web/web_settings.py", "webcast.tiktok.com"),
        # A bare host in a minified bundle's constants table.
        (material.TIKTOK_LIVE_CONNECTOR, "package/dist/", "webcast.tiktok.com"),
        (material.TIKTOK_SCRAPER, "package/build/core/TikTok.js", "www.tiktok.com/node/share/"),
        (material.PASSPORT_TIKTOK, "package/", "open.tiktokapis.com"),
    ],
)
def test_the_endpoint_is_found_where_the_client_calls_it(name: str, member: str, host: str) -> None:
    urls = [f for f in found(material.require(name)) if f.observation == "url"]
    at = [f for f in urls if (f.member or "").startswith(member)]
    assert at, [(f.member, f.matched) for f in urls]
    assert any(host in seen.casefold() for f in at for seen in f.examples)
    assert all(f.line is not None for f in at)


# ---- multi-provider login libraries -----------------------------------------------------------------


CATALOGS = [material.GRANT, material.AUTH_CORE, material.SOCIAL_AUTH_CORE, material.DJANGO_ALLAUTH]


@pytest.mark.parametrize("name", CATALOGS)
def test_a_library_offering_many_providers_is_not_a_finding(name: str) -> None:
    path = material.require(name)
    assert found(path) == []
    # The library's own files do hold WeChat's or TikTok's endpoints: only the rule sets them aside.
    without_rule = dataclasses.replace(default_signatures(BOOK), catalogs=[])
    offered = scan([path], at=AT, rulebook=BOOK, signatures=without_rule).findings
    assert {f.signature.app for f in offered} & {"wechat", "tiktok"}


def _unpack_npm(tarball: Path, into: Path) -> None:
    """An npm tarball's package/ laid out as `npm install` leaves it, under node_modules/<name>/."""
    with tarfile.open(tarball) as archive:
        for info in archive.getmembers():
            if info.isfile() and info.name.startswith("package/"):
                target = into / info.name.removeprefix("package/")
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = archive.extractfile(info)
                assert handle is not None
                target.write_bytes(handle.read())


@pytest.fixture()
def next_app(tmp_path: Path) -> Path:
    """A Next.js project with @auth/core installed, configured with GitHub login only."""
    _unpack_npm(material.require(material.AUTH_CORE), tmp_path / "node_modules" / "@auth" / "core")
    (tmp_path / "package.json").write_text('{"name": "shop", "dependencies": {"@auth/core": "0.41.3"}}\n')
    (tmp_path / "auth.ts").write_text(
        'import { Auth } from "@auth/core"\nimport GitHub from "@auth/core/providers/github"\n\n'
        "export const config = { providers: [GitHub({ clientId: process.env.GITHUB_ID })] }\n"
    )
    return tmp_path


def test_an_installed_library_with_other_providers_configured_is_not_a_finding(next_app: Path) -> None:
    assert found(next_app) == []


def test_the_users_code_choosing_the_wechat_provider_is_a_finding(next_app: Path) -> None:
    # As Auth.js documents the WeChat provider's configuration.
    (next_app / "auth.ts").write_text(
        'import { Auth } from "@auth/core"\nimport WeChat from "@auth/core/providers/wechat"\n\n'
        "export const config = {\n  providers: [WeChat({ clientId: process.env.AUTH_WECHAT_APP_ID,\n"
        '    clientSecret: process.env.AUTH_WECHAT_APP_SECRET, platformType: "OfficialAccount" })],\n}\n'
    )
    [finding] = found(next_app)
    assert (finding.path, finding.line) == (str(next_app / "auth.ts"), 2)
    assert (finding.signature.id, finding.signature.app, finding.observation) == (
        "wechat-login",
        "wechat",
        "npm_modules",
    )


def test_django_settings_naming_the_weixin_provider_is_a_finding(tmp_path: Path) -> None:
    allauth = material.require(material.DJANGO_ALLAUTH)
    with zipfile.ZipFile(allauth) as wheel:
        for member in wheel.namelist():
            if member.startswith("allauth/socialaccount/providers/"):
                target = tmp_path / "site-packages" / member
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(member))
    settings = tmp_path / "shop" / "settings.py"
    settings.parent.mkdir()
    settings.write_text(
        'INSTALLED_APPS = [\n    "allauth",\n    "allauth.socialaccount",\n'
        '    "allauth.socialaccount.providers.google",\n]\n'
    )
    assert found(tmp_path) == []
    settings.write_text(settings.read_text().replace("providers.google", "providers.weixin"))
    [finding] = found(tmp_path)
    assert (finding.path, finding.line, finding.signature.id) == (str(settings), 4, "wechat-login")


def test_a_social_core_backend_listed_in_settings_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text(
        "AUTHENTICATION_BACKENDS = (\n    'social_core.backends.weixin.WeixinOAuth2',\n"
        "    'django.contrib.auth.backends.ModelBackend',\n)\n"
    )
    [finding] = found(tmp_path)
    assert (finding.line, finding.signature.id, finding.matched) == (
        2,
        "wechat-login",
        "social_core.backends.weixin.WeixinOAuth2",
    )


# ---- endpoints in source of any language --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("token.go", 'const tokenURL = "https://api.weixin.qq.com/cgi-bin/token"\n', "wechat-server-api"),
        ("login.rb", "redirect_to 'https://open.weixin.qq.com/connect/qrconnect?appid=' + id\n", "wechat-login"),
        ("Tiktok.cs", 'var url = "https://open.tiktokapis.com/v2/user/info/";\n', "tiktok-login-api"),
        ("application.yaml", "wechat:\n  api-base: https://sh.api.weixin.qq.com\n", "wechat-server-api"),
        ("auth.py", 'AUTHORIZE = "https://www.tiktok.com/v2/auth/authorize/"\n', "tiktok-login-api"),
        # A mini program calling its cloud function by name: no URL at all.
        ("pages/index/index.js", "wx.cloud.init()\nwx.cloud.callFunction({ name: 'login' })\n", "wechat-cloud"),
    ],
)
def test_service_endpoints_and_calls_in_source(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    assert {f.signature.id for f in found(tmp_path)} == {expected}


@pytest.mark.parametrize(
    "text",
    [
        'url = "https://api.weixin.qq.com.example.net/cgi-bin/token"',  # someone else's host
        "docs: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html",
        "see https://developers.tiktok.com/doc/login-kit-web and https://mp.weixin.qq.com/wiki",
        'profile = "https://www.tiktok.com/@shop"',  # a link to a profile calls no API
        "mywx.cloud.callFunction({ name: 'x' })",  # not the wx object
    ],
)
def test_look_alike_hosts_and_documentation_links_are_not_findings(tmp_path: Path, text: str) -> None:
    # WeCom's API (qyapi.weixin.qq.com) is found as WeCom's, another app: test_code_real_packages.
    (tmp_path / "client.js").write_text(text + "\n")
    assert found(tmp_path) == []


# ---- the apps' own code under another name -------------------------------------------------------------


@pytest.fixture(scope="module")
def lookalike_apks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for tool in ("smali", "aapt", "zipalign", "apksigner", "keytool"):
        material.require_tool(tool)
    out = tmp_path_factory.mktemp("lookalikes")
    return {
        # Classes of the code base TikTok shares with Douyin, with neither app's R class nor package name.
        "aweme": material.build_apk(
            "com.funclips.player",
            material.smali_classes(
                "com/ss/android/ugc/aweme/feed/model/VideoControl",
                "com/ss/android/ugc/aweme/app/host/AwemeHostApplication",
                "com/funclips/player/Main",
            ),
            out,
        ),
        "tiktok": material.build_apk(
            "com.funclips.lite",
            material.smali_classes("com/ss/android/ugc/tiktok/security/SecLink", "com/funclips/lite/Main"),
            out,
        ),
        # Sibling names are other code: the namespaces match whole segments only.
        "near": material.build_apk(
            "com.funclips.near",
            material.smali_classes("com/ss/android/ugc/awemex/Feed", "com/ss/android/ugc/effect/Filter"),
            out,
        ),
    }


def test_the_shared_code_base_is_both_apps_code(lookalike_apks: dict[str, Path]) -> None:
    findings = found(lookalike_apks["aweme"])
    assert kinds(findings) == {
        ("tiktok-shared-app-code", "tiktok", "app_code"),
        ("douyin-shared-app-code", "douyin", "app_code"),
    }
    for finding in findings:
        assert (finding.member, finding.count) == ("classes.dex", 2)
        assert set(finding.decisions) == {"constituent_code_use", "app_store_distribution"}
    by_app = {f.signature.app: f for f in findings}
    # The same code, judged for each app under its own law.
    assert by_app["tiktok"].decisions["app_store_distribution"].verdict.value == "enjoined"
    assert by_app["douyin"].decisions["app_store_distribution"].verdict.value == "not_prohibited"


def test_tiktoks_own_namespace_is_tiktoks_code(lookalike_apks: dict[str, Path]) -> None:
    [finding] = found(lookalike_apks["tiktok"])
    assert (finding.signature.id, finding.signature.kind, finding.matched) == (
        "tiktok-app-code",
        "app_code",
        "com.ss.android.ugc.tiktok.security.SecLink",
    )


def test_neighbouring_namespaces_are_not_the_apps_code(lookalike_apks: dict[str, Path]) -> None:
    assert found(lookalike_apks["near"]) == []


def test_the_shared_code_in_java_source_names_both_apps(tmp_path: Path) -> None:
    (tmp_path / "Player.java").write_text(
        "import com.ss.android.ugc.aweme.feed.model.Aweme;\n"
        'String douyin = "com.ss.android.ugc.aweme";  // a package-name string is a query, not code\n'
    )
    findings = found(tmp_path)
    assert {(f.signature.app, f.line) for f in findings} == {("tiktok", 1), ("douyin", 1)}
