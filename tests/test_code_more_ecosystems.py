"""More ecosystems as users bring them: Composer (PHP), RubyGems/Bundler (Ruby), credentials in YAML and
.properties configuration, PEP 440 epochs, and SARIF paths relative to the source root.

Inputs are built from the formats' documentation:
- Composer: getcomposer.org/doc/04-schema.md (`name`, `require`, `require-dev`, platform packages `php` and
  `ext-*`), 01-basic-usage.md (composer.lock's `packages` / `packages-dev` with the installed `version`);
  vendor/composer/installed.json is a list in Composer 1 and `{"packages": [...]}` in Composer 2;
- Bundler: bundler.io/guides/gemfile.html and bundler.io/man/gemfile.5 (`gem "name", "constraint"`), the
  Gemfile.lock layout (GEM, `  specs:`, `    name (version)`, six-space dependencies, PLATFORMS,
  DEPENDENCIES, BUNDLED WITH); guides.rubygems.org/specification-reference (gemspec; a .gem is a tar holding
  metadata.gz, the specification as YAML);
- WxJava's Spring Boot starters (binarywang/WxJava spring-boot-starters/*/README.md): `wx.mp.app-id` and
  `wx.mp.secret`, `wx.pay.configs.<key>.apiV3Key`, `wx.cp.corp-secret`; Spring Security's
  `spring.security.oauth2.client.registration.<id>.client-secret`; the wechat gem's config/wechat.yml
  (rubydoc.info/gems/wechat: `appid`, `secret` per environment, `default: &default`);
- PEP 440 "Version epochs" (`1!2.0`) and purl-spec (a version is percent-encoded: `1%212.0`);
- docs.github.com "SARIF support for code scanning": relative URIs are read from the repository root, and
  `invocations[0].workingDirectory` gives the source root.
Package names are each cited in src/appban/code/data/signatures.yaml (Packagist and RubyGems pages).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from hypothesis import given, settings
from hypothesis import strategies as st

from appban import load_rulebook
from appban.code.extractors.config_credentials import config_credentials
from appban.code.model import Package
from appban.code.scan import CodeFinding, ScanResult, scan
from appban.report.cyclonedx import purl_of, to_cyclonedx
from appban.report.sarif import SRCROOT, to_sarif

BOOK = load_rulebook()
AT = dt.datetime(2024, 1, 19, tzinfo=dt.UTC)


def run(*paths: Path) -> ScanResult:
    result = scan(list(paths), at=AT, rulebook=BOOK)
    assert not result.warnings, result.warnings
    return result


def found(*paths: Path) -> list[CodeFinding]:
    return run(*paths).findings


def packages(findings: list[CodeFinding]) -> set[tuple[str, str, str | None, str]]:
    return {(p.ecosystem, p.name, p.version, f.signature.id) for f in findings for p in f.packages}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# ---- Composer -------------------------------------------------------------------------------------------

COMPOSER_JSON = """{
    "name": "acme/shop",
    "type": "project",
    "require": {
        "php": ">=8.1",
        "ext-openssl": "*",
        "laravel/framework": "^10.0",
        "w7corp/easywechat": "^6.7",
        "wechatpay/wechatpay": "^1.4",
        "yansongda/pay": "~3.7.0",
        "gimucco/tiktok-loginkit": "0.6.6"
    },
    "require-dev": {
        "phpunit/phpunit": "^10.0"
    }
}
"""
COMPOSER_LOCK = """{
    "_readme": [
        "This file locks the dependencies of your project to a known state",
        "This file is @generated automatically"
    ],
    "content-hash": "5a1c0b2e8f7d6c3b4a59687766554433",
    "packages": [
        {
            "name": "laravel/framework",
            "version": "v10.48.4",
            "source": {"type": "git", "url": "https://github.com/laravel/framework.git", "reference": "7e0701b"}
        },
        {"name": "w7corp/easywechat", "version": "6.15.0", "type": "library"},
        {"name": "wechatpay/wechatpay", "version": "1.4.10", "type": "library"},
        {"name": "yansongda/pay", "version": "v3.7.3", "type": "library"},
        {"name": "gimucco/tiktok-loginkit", "version": "v0.6.6", "type": "library"}
    ],
    "packages-dev": [
        {"name": "phpunit/phpunit", "version": "10.5.11"}
    ],
    "platform": {"php": ">=8.1"}
}
"""


def test_composer_manifest_and_lock_give_packages_with_versions(tmp_path: Path) -> None:
    write(tmp_path, {"composer.json": COMPOSER_JSON, "composer.lock": COMPOSER_LOCK})
    findings = found(tmp_path)
    assert packages(findings) == {
        ("composer", "w7corp/easywechat", None, "wechat-service-clients"),  # "^6.7" is a range
        ("composer", "wechatpay/wechatpay", None, "wechat-service-clients"),
        ("composer", "yansongda/pay", None, "wechat-pay-multi-provider"),
        ("composer", "gimucco/tiktok-loginkit", "0.6.6", "tiktok-login-connectors"),  # an exact constraint
        ("composer", "w7corp/easywechat", "6.15.0", "wechat-service-clients"),
        ("composer", "wechatpay/wechatpay", "1.4.10", "wechat-service-clients"),
        ("composer", "yansongda/pay", "v3.7.3", "wechat-pay-multi-provider"),
        ("composer", "gimucco/tiktok-loginkit", "v0.6.6", "tiktok-login-connectors"),
    }
    lock = next(f for f in findings if f.file.endswith("composer.lock") and f.signature.id == "wechat-service-clients")
    assert lock.line == COMPOSER_LOCK.splitlines().index('        {"name": "w7corp/easywechat", "version": "6.15.0", '
                                                         '"type": "library"},') + 1  # fmt: skip
    # A package serving other wallets too is a weaker sign than a WeChat-only client.
    multi = next(f for f in findings if f.signature.id == "wechat-pay-multi-provider")
    assert multi.signature.app == "wechat" and multi.signature.confidence < 0.7


def test_composer_purls_and_cyclonedx_components(tmp_path: Path) -> None:
    write(tmp_path, {"composer.json": COMPOSER_JSON, "composer.lock": COMPOSER_LOCK})
    bom = json.loads(to_cyclonedx(run(tmp_path)))
    assert not JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom))
    purls = {c.get("purl") for c in bom["components"]} | {
        part.get("purl") for c in bom["components"] for part in c.get("components", [])
    }
    assert {
        "pkg:composer/w7corp/easywechat@6.15.0",
        "pkg:composer/wechatpay/wechatpay@1.4.10",
        "pkg:composer/yansongda/pay@v3.7.3",
    } <= purls
    # The manifest's "0.6.6" and the lock's "v0.6.6" are Composer's two spellings; both are kept as written.
    assert purl_of(Package("composer", "W7Corp/EasyWeChat", "6.15.0", 1)).to_string() == (  # type: ignore[union-attr]
        "pkg:composer/w7corp/easywechat@6.15.0"
    )
    assert purl_of(Package("composer", "no-vendor", None, 1)) is None


@pytest.mark.parametrize(
    "document",
    [
        # Composer 2: {"packages": [...], "dev": true, "dev-package-names": [...]}
        {"packages": [{"name": "overtrue/wechat", "version": "5.36.2"}], "dev": True, "dev-package-names": []},
        # Composer 1: a plain list
        [{"name": "overtrue/wechat", "version": "5.36.2"}],
    ],
)
def test_installed_json_in_both_composer_forms(tmp_path: Path, document: Any) -> None:
    write(tmp_path, {"vendor/composer/installed.json": json.dumps(document, indent=4)})
    assert packages(found(tmp_path)) == {("composer", "overtrue/wechat", "5.36.2", "wechat-service-clients")}


def test_composer_without_wechat_or_tiktok_and_branches_are_no_version(tmp_path: Path) -> None:
    write(
        tmp_path / "other",
        {
            "composer.json": json.dumps(
                {"require": {"php": "^8.2", "laravel/socialite": "^5.12", "socialiteproviders/manager": "^4.5"}}
            )
        },
    )
    assert found(tmp_path / "other") == []  # a social-login manager offering many providers is no finding
    write(tmp_path / "dev", {"composer.json": json.dumps({"require": {"overtrue/wechat": "dev-master"}})})
    assert packages(found(tmp_path / "dev")) == {("composer", "overtrue/wechat", None, "wechat-service-clients")}


# ---- RubyGems / Bundler -----------------------------------------------------------------------------------

GEMFILE = """source "https://rubygems.org"

ruby "3.2.2"

gem "rails", "~> 7.1.3"
gem "wechat"
gem 'wx_pay', '0.21.0'
gem "omniauth-wechat-oauth2"
gem "omniauth-tiktok-oauth2", "~> 1.0"

group :development, :test do
  gem "rspec-rails"
end
"""
GEMFILE_LOCK = """GEM
  remote: https://rubygems.org/
  specs:
    activesupport (7.1.3)
      concurrent-ruby (~> 1.0, >= 1.0.2)
    nokogiri (1.15.4-x86_64-linux)
      racc (~> 1.4)
    omniauth-tiktok-oauth2 (1.0.1)
      oauth2 (>= 2.0.7)
    omniauth-wechat-oauth2 (0.2.3)
      omniauth-oauth2 (>= 1.7.3)
    wechat (0.17.3)
      activesupport (>= 6.0, < 9)
      http (>= 1.0.4, < 6)
    wx_pay (0.21.0)
      activesupport (>= 3.2)
      rest-client (>= 2.0.0)

PLATFORMS
  x86_64-linux

DEPENDENCIES
  omniauth-tiktok-oauth2 (~> 1.0)
  omniauth-wechat-oauth2
  rails (~> 7.1.3)
  wechat
  wx_pay (= 0.21.0)

BUNDLED WITH
   2.4.22
"""


def test_gemfile_and_lock_give_gems_with_versions(tmp_path: Path) -> None:
    write(tmp_path, {"Gemfile": GEMFILE, "Gemfile.lock": GEMFILE_LOCK})
    findings = found(tmp_path)
    assert packages(findings) == {
        ("gem", "wechat", None, "wechat-service-clients"),
        ("gem", "wx_pay", "0.21.0", "wechat-service-clients"),
        ("gem", "omniauth-wechat-oauth2", None, "wechat-login"),
        ("gem", "omniauth-tiktok-oauth2", None, "tiktok-login-connectors"),
        ("gem", "wechat", "0.17.3", "wechat-service-clients"),
        ("gem", "omniauth-wechat-oauth2", "0.2.3", "wechat-login"),
        ("gem", "omniauth-tiktok-oauth2", "1.0.1", "tiktok-login-connectors"),
    }
    lock = next(f for f in findings if f.file.endswith("Gemfile.lock") and f.signature.id == "wechat-login")
    assert lock.line == GEMFILE_LOCK.splitlines().index("    omniauth-wechat-oauth2 (0.2.3)") + 1
    bom = json.loads(to_cyclonedx(run(tmp_path)))
    assert not JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom))
    purls = {c.get("purl") for c in bom["components"]} | {
        part.get("purl") for c in bom["components"] for part in c.get("components", [])
    }
    assert {"pkg:gem/wechat@0.17.3", "pkg:gem/wx_pay@0.21.0", "pkg:gem/omniauth-wechat-oauth2@0.2.3"} <= purls


def test_a_gemspec_depending_on_a_client_and_a_built_gems_metadata(tmp_path: Path) -> None:
    gemspec = (
        'Gem::Specification.new do |spec|\n  spec.name = "shop_pay"\n  spec.version = "1.2.0"\n'
        '  spec.add_dependency "wx_pay", ">= 0.20"\n  spec.add_development_dependency "rspec"\nend\n'
    )
    # As RubyGems writes an installed specification (specifications/*.gemspec): %q<name>.freeze.
    installed = (
        '  s.name = "shop-login".freeze\n  s.version = "0.3.0"\n'
        '    s.add_runtime_dependency(%q<omniauth-wechat-oauth2>.freeze, ["~> 0.2"])\n'
    )
    write(tmp_path / "src", {"shop_pay.gemspec": gemspec, "specifications/shop-login-0.3.0.gemspec": installed})
    assert packages(found(tmp_path / "src")) == {
        ("gem", "wx_pay", None, "wechat-service-clients"),
        ("gem", "omniauth-wechat-oauth2", None, "wechat-login"),
    }
    # A .gem: a tar of metadata.gz (the specification in YAML), data.tar.gz and checksums.yaml.gz.
    metadata = (
        b"--- !ruby/object:Gem::Specification\nname: wechat\nversion: !ruby/object:Gem::Version\n"
        b"  version: 0.17.3\nplatform: ruby\nauthors:\n- Eric Guo\n"
    )
    code = io.BytesIO()
    with tarfile.open(fileobj=code, mode="w:gz") as archive:
        source = b"module WeChat; end\n"
        info = tarfile.TarInfo("lib/wechat.rb")
        info.size = len(source)
        archive.addfile(info, io.BytesIO(source))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in {"metadata.gz": gzip.compress(metadata), "data.tar.gz": code.getvalue()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (tmp_path / "gems").mkdir()
    (tmp_path / "gems" / "wechat-0.17.3.gem").write_bytes(buffer.getvalue())
    findings = found(tmp_path / "gems")
    assert packages(findings) == {("gem", "wechat", "0.17.3", "wechat-service-clients")}
    assert findings[0].path.endswith("wechat-0.17.3.gem!/metadata.gz!/metadata")


def test_gems_of_other_apps_are_not_findings(tmp_path: Path) -> None:
    write(tmp_path, {"Gemfile": 'gem "omniauth-github"\ngem "wechat_work"\ngem "tiktok_pixel_helper"\n'})
    assert found(tmp_path) == []


# ---- credentials in YAML and .properties --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        # WxJava's mp starter, YAML block style with Spring's relaxed names and an environment placeholder.
        (
            "src/main/resources/application.yml",
            "spring:\n  application:\n    name: shop\nwx:\n  mp:\n    app-id: wx1234567890abcdef\n"
            "    secret: ${WX_MP_SECRET}\n    token: shop\n",
            {("wechat-service-clients", 7)},
        ),
        # Its pay starter, several accounts under wx.pay.configs, V3 key.
        (
            "application.yaml",
            "wx:\n  pay:\n    configs:\n      main:\n        appId: wx1234567890abcdef\n        mchId: 1234567890\n"
            "        apiV3Key: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
            {("wechat-service-clients", 7)},
        ),
        # The same as .properties, and the mini-program starter's dotted key written in YAML.
        ("application.properties", "wx.pay.configs.a1.mch-key=abc\n", {("wechat-service-clients", 1)}),
        ("application.yml", "wx.miniapp:\n  appid: wx1\n  secret: s3cr3t\n", {("wechat-service-clients", 3)}),
        # WeCom's starter is WeCom's (another app), not WeChat's.
        ("application.properties", "wx.cp.corp-id=ww01\nwx.cp.corp-secret=abc\n", {("wecom-api", 2)}),
        # Spring Security's OAuth client registrations.
        (
            "application.properties",
            "spring.security.oauth2.client.registration.tiktok.client-id=aw1\n"
            "spring.security.oauth2.client.registration.tiktok.client-secret=xyz\n",
            {("tiktok-login-connectors", 2)},
        ),
        # An app's section under an auth section.
        (
            "config/omniauth.yml",
            "omniauth:\n  providers:\n    github:\n      key: a\n      secret: b\n    wechat:\n      app_id: wx1\n"
            "      secret: \"<%= ENV['WECHAT_SECRET'] %>\"\n",
            {("wechat-login", 8)},
        ),
        # The wechat gem's config/wechat.yml: no app name inside, the file is named after it.
        (
            "config/wechat.yml",
            'default: &default\n  appid: "my_appid"\n  secret: "my_secret"\n  token: "my_token"\n\n'
            "production:\n  <<: *default\n",
            {("wechat-service-clients", 3)},
        ),
    ],
)
def test_a_provider_given_a_credential_in_configuration(
    tmp_path: Path, name: str, text: str, expected: set[tuple[str, int]]
) -> None:
    write(tmp_path, {name: text})
    findings = found(tmp_path)
    assert {(f.signature.id, f.line) for f in findings} == expected
    assert {f.observation for f in findings} == {"configured_providers"}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("application.properties", "wx.mp.app-id=\nwx.mp.secret=\n"),  # a template: nothing configured
        ("application.yml", "wx:\n  mp:\n    app-id: wx123\n    token: abc\n"),  # no secret
        ("application.yml", "wx:\n  mp:\n    secret: ''\n    aes-key: ~\n"),  # empty values
        ("application.yml", "# wx:\n#   mp:\n#     secret: abc\n"),  # commented out
        ("application.yml", "share:\n  wechat:\n    icon: wechat.svg\n    label: WeChat\n"),  # a share button
        ("application.yml", "wechat:\n  enabled: false\nsecret: top\n"),  # the secret is not the app's
        ("application.properties", "social.providers=wechat,tiktok,github\nsocial.github.secret=x\n"),
        ("i18n/messages.properties", "login.wechat.secret-hint=Enter the secret\nlogin.wechat.secret.label=Secret\n"),
    ],
)
def test_naming_the_app_without_a_credential_is_not_a_finding(tmp_path: Path, name: str, text: str) -> None:
    write(tmp_path, {name: text})
    assert found(tmp_path) == []


_SECRET_SPELLINGS = st.sampled_from(["secret", "app-secret", "appSecret", "app_secret", "APP_SECRET", "mch-key",
                                     "mchKey", "api-v3-key", "apiV3Key", "private-key-path"])  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    spelling=_SECRET_SPELLINGS,
    indent=st.integers(min_value=1, max_value=6),
    product=st.sampled_from(["mp", "miniapp", "open", "channel", "pay"]),
    before=st.lists(st.sampled_from(["token: t", "app-id: wx1", "aes-key: k", "# note"]), max_size=3),
)
def test_wxjava_credentials_in_any_spelling_and_indentation(
    spelling: str, indent: int, product: str, before: list[str]
) -> None:
    pad = " " * indent
    lines = ["wx:", f"{pad}{product}:"] + [f"{pad * 2}{line}" for line in before] + [f"{pad * 2}{spelling}: v"]
    text = "\n".join(lines) + "\n"
    [observation] = list(config_credentials(text, "application.yml"))
    assert (observation.value, observation.line) == ("wechat-config", len(lines))
    # The same key as a sibling of wx (not under it) is nobody's credential.
    sibling = f"wx:\n{pad}{product}: x\n{spelling}: v\n"
    assert list(config_credentials(sibling, "application.yml")) == []


def test_deeply_nested_or_huge_configuration_is_read_in_one_pass(tmp_path: Path) -> None:
    # 3,000 nested keys (the stack of parents is capped, the indentation still followed) and a 4 MB line: read
    # in one pass; the secret deep under "wechat" is still that section's, the long value is no credential.
    nested = "".join(" " * i + f"k{i}:\n" for i in range(1, 3_000)) + " " * 3_000 + "secret: x\n"
    write(tmp_path, {"deep.yml": "wechat:\n" + nested, "long.properties": "wx.mp.x=" + "a" * (4 << 20) + "\n"})
    assert [(f.file.rsplit("/", 1)[-1], f.signature.id, f.line) for f in found(tmp_path)] == [
        ("deep.yml", "wechat-login", 3_001)
    ]


# ---- PEP 440 epochs ------------------------------------------------------------------------------------------


def test_a_python_epoch_is_kept_in_the_version_and_encoded_in_the_purl(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "wechatpy==1!2.0.1\nrequests>=2\n"})
    findings = found(tmp_path)
    assert packages(findings) == {("pypi", "wechatpy", "1!2.0.1", "wechat-service-clients")}
    [component] = json.loads(to_cyclonedx(run(tmp_path)))["components"]
    assert component["purl"] == "pkg:pypi/wechatpy@1%212.0.1" and component["version"] == "1!2.0.1"
    metadata = "Metadata-Version: 2.1\nName: WeChatPy\nVersion: 2!1.8.18\n\nbody\n"
    write(tmp_path / "site", {"wechatpy-2!1.8.18.dist-info/METADATA": metadata})
    assert packages(found(tmp_path / "site")) == {("pypi", "wechatpy", "2!1.8.18", "wechat-service-clients")}


# ---- SARIF paths -------------------------------------------------------------------------------------------


def _uris(document: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["artifactLocation"].get("uriBaseId"),
        )
        for r in document["runs"][0]["results"]
    }


def test_sarif_uris_are_relative_to_the_source_root(tmp_path: Path) -> None:
    repo = write(tmp_path / "checkout", {"server/composer.json": COMPOSER_JSON, "Gemfile": GEMFILE})
    result = run(repo / "server", repo / "Gemfile")
    # Run from the checkout (as in CI): paths from the repository root, the checkout as %SRCROOT%.
    document = to_sarif(result, repo, {})
    assert _uris(document) == {("server/composer.json", SRCROOT), ("Gemfile", SRCROOT)}
    run_ = document["runs"][0]
    assert run_["originalUriBaseIds"] == {SRCROOT: {"uri": repo.as_uri() + "/"}}
    assert run_["invocations"][0]["workingDirectory"] == {"uri": repo.as_uri() + "/"}
    for artifact in run_["artifacts"]:
        assert artifact["location"]["uriBaseId"] == SRCROOT
    # Run from somewhere else: relative to the scan root, never this machine's absolute paths.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    document = to_sarif(result, elsewhere, {})
    assert _uris(document) == {("server/composer.json", SRCROOT), ("Gemfile", SRCROOT)}
    assert document["runs"][0]["originalUriBaseIds"][SRCROOT]["uri"] == repo.as_uri() + "/"
