"""Every report names the knowledge bundle beside the rulebook version (issue #17).

One bundle of the packaged knowledge is made and installed for the module; the tests that answer under it
point XDG_* at that home, the others run under the package's own data (the session's empty data home). Each
command and format runs through the CLI on the bundled examples. The rule checked: wherever a report states
the rulebook version, the bundle id stands beside it (as often as the version does in text outputs); with
nothing installed, `bundle` is null in JSON and left out of text, metadata and properties.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from appban.cli import app
from tests.test_baseline import WECHAT
from tests.test_cli_conventions import BIND_LINE
from tests.test_knowledge_bundles import Home, make

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
INVENTORY = EXAMPLES / "inventory" / "app-store-catalog.csv"
PAYMENTS = EXAMPLES / "payments" / "processor-export.csv"
TRANSACTIONS = EXAMPLES / "transactions.csv"
AT = "2020-11-20T00:00:00Z"
VERSION = "2027.01.01-1"
XDG = ("config", "data", "cache")

runner = CliRunner()


@dataclass(frozen=True)
class Installed:
    home: Home
    bundle: str  # "2027.01.01-1 sha256:…"
    rulebook_version: str


def run(*args: str | Path, code: int | None = 0) -> str:
    """Standard output of the command, wide enough that no footer line is folded."""
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})
    if code is not None:
        assert result.exit_code == code, result.output
    return result.stdout


@pytest.fixture(scope="module")
def bundle_home(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A home with its own trusted key and one installed bundle of the packaged knowledge (made once)."""
    base = tmp_path_factory.mktemp("bundle-home")
    env = dict(os.environ)
    with pytest.MonkeyPatch.context() as patch:
        for name in XDG:
            (base / name).mkdir()
            patch.setenv(f"XDG_{name.upper()}_HOME", str(base / name))
            env[f"XDG_{name.upper()}_HOME"] = str(base / name)
        patch.delenv("APPBAN_CACHE_DIR", raising=False)
        run("keys", "generate", "-o", base / "keys")
        public = (base / "keys" / "appban-bundle-key.pub").read_text().strip()
        run("keys", "trust", public)
        home = Home(base, env, base / "keys" / "appban-bundle-key.pem", public)
        run("rules", "update", make(home, base / "b.tar.gz", VERSION))
        rows = json.loads(run("rules", "versions", "--json"))["versions"]
        row = next(r for r in rows if r["version"] == VERSION)
    return Installed(home, row["bundle"], row["rulebook_version"])  # the XDG_* variables are as they were


@pytest.fixture
def installed(bundle_home: Installed, monkeypatch: pytest.MonkeyPatch) -> Installed:
    """Answers under the module's installed bundle, for this test only."""
    for name in XDG:
        monkeypatch.setenv(f"XDG_{name.upper()}_HOME", str(bundle_home.home.base / name))
    monkeypatch.delenv("APPBAN_CACHE_DIR", raising=False)
    return bundle_home


@pytest.fixture(scope="module")
def dns_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logs") / "dns.log"
    path.write_text(BIND_LINE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    (root / "src").mkdir()
    (root / "src" / "Share.java").write_text(WECHAT, encoding="utf-8")
    return root


def besides(text: str, knowledge: Installed) -> None:
    """The bundle id is in the text exactly as often as the rulebook version, and at least once."""
    assert knowledge.rulebook_version in text
    assert text.count(knowledge.bundle) == text.count(knowledge.rulebook_version), text


def screen_inventory(*args: str | Path, code: int | None = None) -> str:
    return run("screen", "inventory", INVENTORY, *args, code=code)


def screen_network(log: Path, *args: str | Path) -> str:
    return run("screen", "network", log, "--role", "hosting", *args, code=None)


def screen_payments(*args: str | Path) -> str:
    return run("screen", "payments", PAYMENTS, *args, code=None)


def scan(repo: Path, *args: str | Path) -> str:
    return run("scan", repo, "--at", AT, *args, code=None)


# --- JSON: `bundle` beside `rulebook_version` -------------------------------------------------------------------


def test_json_documents_name_the_bundle(installed: Installed, dns_log: Path, repo: Path) -> None:
    documents = {
        "screen inventory": json.loads(screen_inventory("--json")),
        "screen network": json.loads(screen_network(dns_log, "--json")),
        "screen payments": json.loads(screen_payments("--json")),
        "scan": json.loads(scan(repo, "--json")),
        "decide": json.loads(run("decide", TRANSACTIONS, "--json")),
    }
    for command, document in documents.items():
        keys = list(document)
        assert document["rulebook_version"] == installed.rulebook_version, command
        assert document["bundle"] == installed.bundle, command
        assert keys.index("bundle") == keys.index("rulebook_version") + 1, command  # side by side


def test_json_documents_say_null_under_the_packaged_data(dns_log: Path, repo: Path) -> None:
    for document in (json.loads(screen_inventory("--json")), json.loads(screen_network(dns_log, "--json")),
                     json.loads(screen_payments("--json")), json.loads(scan(repo, "--json"))):  # fmt: skip
        assert document["rulebook_version"] and document["bundle"] is None


# --- Markdown, HTML and the terminal footer ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["markdown", "html", "table"])
def test_screens_name_the_bundle_in_every_human_format(
    fmt: str, installed: Installed, dns_log: Path, tmp_path: Path
) -> None:
    for name, screen in (("inventory", screen_inventory), ("payments", screen_payments),
                         ("network", lambda *a: screen_network(dns_log, *a))):  # fmt: skip
        if fmt == "html":
            screen("--format", "html", "-o", tmp_path / f"{name}.html")
            text = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
            assert f"bundle: {installed.bundle}" in text, name
        else:
            text = screen("--format", fmt)
            assert f", bundle {'`' if fmt == 'markdown' else ''}{installed.bundle}" in text, name
        besides(text, installed)


@pytest.mark.parametrize("fmt", ["markdown", "table"])
def test_scan_and_decide_name_the_bundle_in_markdown_and_the_footer(fmt: str, installed: Installed, repo: Path) -> None:
    for text in (scan(repo, "--format", fmt), run("decide", TRANSACTIONS, "--format", fmt)):
        besides(text, installed)


@pytest.mark.parametrize("fmt", ["markdown", "table"])
def test_human_formats_name_no_bundle_under_the_packaged_data(fmt: str, dns_log: Path, repo: Path) -> None:
    for text in (screen_inventory("--format", fmt), screen_network(dns_log, "--format", fmt),
                 screen_payments("--format", fmt), scan(repo, "--format", fmt),
                 run("decide", TRANSACTIONS, "--format", fmt)):  # fmt: skip
        assert "rulebook" in text and "bundle" not in text


# --- SARIF and CycloneDX ----------------------------------------------------------------------------------------


def test_sarif_and_cyclonedx_name_the_bundle(installed: Installed, repo: Path) -> None:
    sarif = json.loads(scan(repo, "--format", "sarif"))
    properties = sarif["runs"][0]["properties"]
    assert properties["rulebookVersion"] == installed.rulebook_version
    assert properties["bundle"] == installed.bundle
    bom = json.loads(scan(repo, "--format", "cyclonedx"))
    named = {p["name"]: p["value"] for p in bom["metadata"]["properties"]}
    assert named["appban:rulebook-version"] == installed.rulebook_version
    assert named["appban:knowledge-bundle"] == installed.bundle


def test_sarif_and_cyclonedx_under_the_packaged_data(repo: Path) -> None:
    assert json.loads(scan(repo, "--format", "sarif"))["runs"][0]["properties"]["bundle"] is None
    named = [p["name"] for p in json.loads(scan(repo, "--format", "cyclonedx"))["metadata"]["properties"]]
    assert "appban:rulebook-version" in named and "appban:knowledge-bundle" not in named


# --- Parquet metadata -------------------------------------------------------------------------------------------


def test_parquet_metadata_names_the_bundle_beside_the_version(installed: Installed, tmp_path: Path) -> None:
    screen_inventory("--format", "parquet", "-o", tmp_path / "inventory.parquet")
    run("decide", TRANSACTIONS, "--format", "parquet", "-o", tmp_path / "decided.parquet")
    for name in ("inventory.parquet", "decided.parquet"):
        metadata = pq.read_schema(tmp_path / name).metadata
        assert metadata[b"appban.rulebook_version"].decode() == installed.rulebook_version, name
        assert metadata[b"appban.bundle"].decode() == installed.bundle, name


def test_parquet_metadata_has_no_bundle_under_the_packaged_data(tmp_path: Path) -> None:
    run("decide", TRANSACTIONS, "--format", "parquet", "-o", tmp_path / "decided.parquet")
    metadata = pq.read_schema(tmp_path / "decided.parquet").metadata
    assert b"appban.rulebook_version" in metadata and b"appban.bundle" not in metadata


# --- blocklists and MDM exports ---------------------------------------------------------------------------------

EXPORT = ("--where", "US", "--at", AT)


@pytest.mark.parametrize("fmt", ["hosts", "rpz", "suricata"])
def test_blocklist_headers_name_the_bundle(fmt: str, installed: Installed) -> None:
    text = run("export", "blocklist", *EXPORT, "--format", fmt)
    lines = text.splitlines()
    at = next(n for n, line in enumerate(lines) if line.endswith(f"rulebook: {installed.rulebook_version}"))
    mark = lines[at].removesuffix(f"rulebook: {installed.rulebook_version}")  # the format's comment mark
    assert lines[at + 1] == f"{mark}bundle: {installed.bundle}"  # on the next header line
    besides(text, installed)


def test_blocklist_header_has_no_bundle_line_under_the_packaged_data() -> None:
    text = run("export", "blocklist", *EXPORT, "--format", "hosts")
    assert "# rulebook: " in text and "bundle" not in text


@pytest.mark.parametrize("shape", [["intune"], ["intune", "--intune-mode", "report"], ["intune", "--platform",
                                   "android"], ["jamf"]])  # fmt: skip
def test_mdm_exports_name_the_bundle(shape: list[str], installed: Installed) -> None:
    text = run("export", "mdm", *EXPORT, "--format", *shape)
    assert f"(rulebook {installed.rulebook_version}, bundle {installed.bundle})" in text
    besides(text, installed)


def test_android_policy_citations_name_the_bundle(installed: Installed, tmp_path: Path) -> None:
    run("export", "mdm", *EXPORT, "--format", "android", "-o", tmp_path / "policy.json")
    side = json.loads((tmp_path / "policy.citations.json").read_text(encoding="utf-8"))
    assert (side["rulebook_version"], side["bundle"]) == (installed.rulebook_version, installed.bundle)
    assert f"(rulebook {installed.rulebook_version}, bundle {installed.bundle})" in side["summary"]


def test_mdm_exports_under_the_packaged_data(tmp_path: Path) -> None:
    assert "bundle" not in run("export", "mdm", *EXPORT, "--format", "jamf").replace("BundleIDs", "")
    run("export", "mdm", *EXPORT, "--format", "android", "-o", tmp_path / "policy.json")
    side = json.loads((tmp_path / "policy.citations.json").read_text(encoding="utf-8"))
    assert side["rulebook_version"] and side["bundle"] is None


# --- baselines and fingerprints ---------------------------------------------------------------------------------


def test_a_baseline_made_under_the_packaged_data_still_holds_under_a_bundle(
    bundle_home: Installed, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = json.loads(scan(repo, "--json"))
    inventory_before = screen_inventory("--json")
    (tmp_path / "scan.json").write_text(json.dumps(before), encoding="utf-8")
    (tmp_path / "inventory.json").write_text(inventory_before, encoding="utf-8")
    assert before["bundle"] is None and before["findings"]
    for name in XDG:
        monkeypatch.setenv(f"XDG_{name.upper()}_HOME", str(bundle_home.home.base / name))
    after = json.loads(scan(repo, "--json"))
    assert after["bundle"] == bundle_home.bundle
    assert [f["fingerprint"] for f in after["findings"]] == [f["fingerprint"] for f in before["findings"]]
    gated = json.loads(run("scan", repo, "--at", AT, "--json", "--fail-on", "any", "--baseline",
                           tmp_path / "scan.json"))  # fmt: skip
    assert gated["findings"] == [] and gated["baseline"]["unchanged"] == len(before["findings"])
    inventory = json.loads(screen_inventory("--json", "--baseline", tmp_path / "inventory.json", "--fail-on", "any",
                                            code=0))  # fmt: skip
    assert inventory["findings"] == [] and inventory["bundle"] == bundle_home.bundle
