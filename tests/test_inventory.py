"""Screening catalogs and device inventories, end to end."""

from __future__ import annotations

import csv
import json
import plistlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from appban import load_rulebook
from appban.cli import app
from appban.identity.resolve import Record
from appban.screen.columns import ColumnMapError, detect
from appban.screen.inventory import InventoryOptions, Screener
from appban.tables import line_mapper, read_table

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "inventory"
BOOK = load_rulebook()
runner = CliRunner()


def screen(path: Path, **options: object):  # type: ignore[no-untyped-def]
    return Screener(BOOK, InventoryOptions(**options)).screen(
        read_table(path, all_text=True), str(path), line_mapper(path)
    )


def rows(result) -> dict[int, dict]:  # type: ignore[no-untyped-def]
    return {row["line"]: row for row in result.findings.to_pylist()}


def write_csv(path: Path, header: list[str], data: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(data)
    return path


# --- named formats ---------------------------------------------------------------------------------


def test_intune_discovered_apps_export_is_recognised_by_its_headers() -> None:
    result = screen(SAMPLES / "intune-discovered-apps.csv", at="2025-02-01T00:00:00Z")
    assert (result.columns.format, result.columns.kind) == ("intune-discovered-apps", "devices")
    assert result.columns.roles["name"] == "ApplicationName" and "id" not in result.columns.roles
    found = rows(result)
    tiktok = [r for r in found.values() if r["record_name"] == "TikTok"]
    assert tiktok and all(r["app"] == "tiktok" and r["match"] == "strong" for r in tiktok)
    assert {r["transaction"] for r in found.values()} == {"user_personal_use"}
    names = {r["record_name"] for r in found.values()}
    assert "Tick Tock Clock" not in names and "WeChat Translator Keyboard" not in names
    assert any(r["match"] == "lookalike" for r in found.values())
    assert not result.errors


def test_jamf_inventory_on_government_devices() -> None:
    result = screen(SAMPLES / "jamf-mobile-device-apps.csv", fleet="government", at="2024-06-01T00:00:00Z")
    assert (result.columns.format, result.columns.roles["id"]) == ("jamf-pro-inventory", "App Identifier")
    found = rows(result)
    tiktok = [r for r in found.values() if r["record_id"] == "com.zhiliaoapp.musically"]
    assert tiktok and all(
        (r["match"], r["transaction"], r["verdict"]) == ("exact", "government_device", "prohibited") for r in tiktok
    )
    assert all(r["listing_or_device"] for r in found.values())  # the device is named
    wechat = [r for r in found.values() if r["app"] == "wechat"]
    assert wechat and {r["verdict"] for r in wechat} == {"not_prohibited"}


def test_personal_devices_are_excepted_on_government_fleets() -> None:
    result = screen(SAMPLES / "jamf-mobile-device-apps.csv", fleet="personal", at="2024-06-01T00:00:00Z")
    assert {r["verdict"] for r in result.findings.to_pylist() if r["app"] == "tiktok"} == {"not_prohibited"}


def test_app_store_catalog_rows_are_decided_at_their_own_instant_and_storefront() -> None:
    result = screen(SAMPLES / "app-store-catalog.csv")
    assert (result.columns.format, result.columns.kind) == ("app-store-catalog", "catalog")
    found = rows(result)
    # line 2: TikTok listing on 6 Aug 2020 (no order made yet); line 4: update one second before the delayed
    # start; line 5: update at the start (enjoined); line 6: Puerto Rico update in October 2020.
    assert (found[2]["transaction"], found[2]["verdict"]) == ("app_store_distribution", "not_prohibited")
    assert (found[4]["transaction"], found[4]["verdict"]) == ("app_store_update", "not_yet_effective")
    assert (found[5]["verdict"], found[5]["as_written"]) == ("enjoined", "prohibited")
    assert (found[6]["where"], found[6]["verdict"]) == ("PR", "enjoined")
    german = [r for r in found.values() if r["where"] == "DE"]
    assert german and all(r["verdict"] == "not_prohibited" for r in german)


def test_fixed_instant_overrides_the_rows_own() -> None:
    result = screen(SAMPLES / "app-store-catalog.csv", at="2021-07-01T00:00:00Z")
    us_tiktok = [r for r in result.findings.to_pylist() if r["app"] == "tiktok" and r["where"] == "US"]
    # the 2020 item is revoked by then, and PAFACA (2024) did not exist yet
    assert us_tiktok and {r["verdict"] for r in us_tiktok} == {"revoked"}
    assert {str(r["at"])[:10] for r in us_tiktok} == {"2021-07-01"}


def test_generic_headers_and_explicit_map(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "custom.csv",
        ["Title", "Vendor", "Bundle", "Market", "Seen"],
        [
            ["WeChat", "Tencent", "com.tencent.xin", "US", "2020-09-21T12:00:00-04:00"],
            ["Notes", "Apple", "com.apple.mobilenotes", "US", "2020-09-21T12:00:00-04:00"],
        ],
    )
    with pytest.raises(ColumnMapError, match="no column names the app"):
        detect(["Vendor", "Seen"])
    result = screen(path, mapping={"ios_bundle": "Bundle", "where": "Market", "at": "Seen"}, kind="catalog")
    assert [(r["app"], r["match"], r["verdict"]) for r in result.findings.to_pylist()] == [
        ("wechat", "exact", "enjoined")
    ]
    with pytest.raises(ColumnMapError, match="no column 'Nope'"):
        screen(path, mapping={"name": "Nope"})


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_json_jsonl_and_parquet_inputs(tmp_path: Path, suffix: str) -> None:
    records = [
        {"listing_id": "1", "name": "TikTok", "publisher": "TikTok Pte. Ltd.", "package_id": "com.zhiliaoapp.musically",
         "storefront": "US", "kind": "listing", "last_updated": "2025-03-01T00:00:00-05:00"},
        {"listing_id": "2", "name": "Notes", "publisher": "Apple", "package_id": "com.apple.mobilenotes",
         "storefront": "NA", "kind": "listing", "last_updated": "2025-03-01T00:00:00-05:00"},
    ]  # fmt: skip
    path = tmp_path / f"catalog{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"value": records}))
    elif suffix == ".jsonl":
        path.write_text("\n\n".join(json.dumps(r) for r in records))
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    result = screen(path)
    assert result.columns.format == "app-store-catalog"
    [finding] = result.findings.to_pylist()
    assert (finding["app"], finding["verdict"], finding["enforcement"]) == ("tiktok", "prohibited", "suspended")
    assert finding["line"] == 1


# --- bad rows --------------------------------------------------------------------------------------


def test_bad_rows_are_reported_by_line_and_the_rest_is_screened(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "catalog.csv",
        ["listing_id", "kind", "package_id", "name", "publisher", "storefront", "last_updated"],
        [
            ["a", "listing", "com.zhiliaoapp.musically", "TikTok", "TikTok Pte. Ltd.", "ZZ", "2025-03-01T00:00:00Z"],
            ["b", "listing", "com.tencent.mm", "WeChat", "Tencent", "US", "yesterday"],
            ["c", "listing", "", "", "Nobody", "US", "2025-03-01T00:00:00Z"],
            ["d", "update", "com.lemon.lvoverseas", "CapCut", "ByteDance", "US", "2025-03-01T00:00:00-05:00"],
            ["e", "listing", "com.tencent.mm", "WeChat", "Tencent", "US", "2021-01-01T00:00:00"],
        ],
    )
    result = screen(path)
    messages = {(e.line, e.column): e.message for e in result.errors}
    assert "not an ISO 3166 code" in messages[(2, "storefront")]
    assert "not an ISO 8601 instant" in messages[(3, "last_updated")]
    assert "no app name or identifier" in messages[(4, "name/package_id")]
    assert "no UTC offset" in messages[(6, "last_updated")]
    assert [(r["line"], r["app"], r["transaction"]) for r in result.findings.to_pylist()] == [
        (5, "capcut", "app_store_update")
    ]


def test_cli_exit_code_says_whether_any_row_failed(tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", ["name", "publisher"], [["TikTok", "TikTok Pte. Ltd."]])
    bad = write_csv(tmp_path / "bad.csv", ["name", "storefront"], [["TikTok", "XX"], ["WeChat", "US"]])
    ok = runner.invoke(app, ["screen", "inventory", str(good), "--at", "2025-02-01T00:00:00Z", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    failed = runner.invoke(app, ["screen", "inventory", str(bad), "--at", "2020-10-01T00:00:00Z", "--format", "json"])
    assert failed.exit_code == 1
    assert f"{bad}:2: storefront: 'XX' not an ISO 3166 code" in failed.stderr
    data = json.loads(failed.stdout)
    assert [f["app"] for f in data["findings"]] == ["wechat"] and data["errors"][0]["line"] == 2
    missing = runner.invoke(app, ["screen", "inventory", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2


# --- outputs ---------------------------------------------------------------------------------------


def test_cli_outputs_table_csv_html(tmp_path: Path) -> None:
    catalog = str(SAMPLES / "app-store-catalog.csv")
    table = runner.invoke(app, ["screen", "inventory", catalog])
    assert table.exit_code == 0 and "Summary by app" in table.stdout and "by storefront" in table.stdout
    out_csv = tmp_path / "f.csv"
    assert runner.invoke(app, ["screen", "inventory", catalog, "--format", "csv", "-o", str(out_csv)]).exit_code == 0
    header = out_csv.read_text().splitlines()[0]
    assert "verdict" in header and "match" in header
    out_html = tmp_path / "f.html"
    assert runner.invoke(app, ["screen", "inventory", catalog, "--format", "html", "-o", str(out_html)]).exit_code == 0
    page = out_html.read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert "Summary by storefront" in page and "TіkTok Pro" in page


def test_json_summary_by_app_verdict_and_storefront() -> None:
    result = runner.invoke(
        app, ["screen", "inventory", str(SAMPLES / "app-store-catalog.csv"),
              str(SAMPLES / "intune-discovered-apps.csv"), "--format", "json"],
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert [f["format"] for f in data["files"]] == ["app-store-catalog", "intune-discovered-apps"]
    assert sum(data["summary"]["by_match"].values()) == len(data["findings"])
    assert sum(sum(c.values()) for c in data["summary"]["by_app"].values()) == len(data["findings"])
    assert set(data["summary"]["by_where"]) >= {"US", "DE", "IN", "GB", "PR"}


# --- file equals its rows one by one ------------------------------------------------------------------

NAMES = ["TikTok", "TіkTok", "T1kTok Lite", "Tick Tock Clock", "WeChat", "微信", "Notes", "CapCut", "QQ", "Lark", ""]
PUBLISHERS = ["TikTok Pte. Ltd.", "Tencent", "ByteDance", "Fun Apps LLC", "Apple", ""]
IDS = ["com.zhiliaoapp.musically", "com.tencent.xin", "com.apple.mobilenotes", "1500855883", "com.tencent.ww", ""]
WHERE = ["US", "IN", "DE", "PR", "ZZ", ""]
AT = ["2020-09-28T00:00:00-04:00", "2025-02-01T00:00:00Z", "2026-03-01T00:00:00+01:00", "2021-01-01", "bad"]
rows_strategy = st.lists(
    st.tuples(*(st.sampled_from(pool) for pool in (NAMES, PUBLISHERS, IDS, WHERE, AT))), min_size=1, max_size=25
)


@settings(max_examples=40, deadline=None)
@given(rows_strategy)
def test_screening_a_file_equals_screening_its_rows_one_by_one(data: list[tuple[str, ...]]) -> None:
    header = ["name", "publisher", "package_id", "storefront", "last_updated", "listing_id"]
    table = pa.table({h: [r[i] if i < 5 else str(n) for n, r in enumerate(data)] for i, h in enumerate(header)})
    screener = Screener(BOOK, InventoryOptions(where="US"))
    whole = screener.screen(table, "f", lambda row: row + 2)
    pieces = [screener.screen(table.slice(n, 1), "f", lambda row, n=n: n + 2) for n in range(table.num_rows)]

    def key(result) -> tuple:  # type: ignore[no-untyped-def]
        return (
            [tuple(r.values()) for r in result.findings.to_pylist()],
            [str(e) for e in result.errors],
        )

    merged_findings = [f for p in pieces for f in key(p)[0]]
    merged_errors = [e for p in pieces for e in key(p)[1]]
    assert key(whole) == (merged_findings, merged_errors)


# --- MDM export ------------------------------------------------------------------------------------


def test_export_jamf_profile_parses_and_cites_each_entry(tmp_path: Path) -> None:
    out = tmp_path / "blocked.mobileconfig"
    result = runner.invoke(
        app, ["export", "mdm", "--where", "US", "--at", "2024-01-01T00:00:00Z", "--format", "jamf", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    profile = plistlib.loads(out.read_bytes())
    payload = profile["PayloadContent"][0]
    assert payload["PayloadType"] == "com.apple.applicationaccess"
    assert payload["blockedAppBundleIDs"] == ["com.zhiliaoapp.musically"]
    text = out.read_text()
    assert "<!-- TikTok: prohibited at 2024-01-01T00:00:00Z (OMB Memorandum M-23-13" in text


def test_export_intune_and_android(tmp_path: Path) -> None:
    intune = runner.invoke(
        app, ["export", "mdm", "--where", "US", "--at", "2024-01-01T00:00:00Z", "--format", "intune",
              "--intune-mode", "report"],
    )  # fmt: skip
    body = json.loads(intune.stdout)
    assert body["compliantAppListType"] == "appsNotInListCompliant"
    # TikTok has two App Store IDs and one bundle ID: one entry, not two with the same appId.
    assert [(i["appId"], i["appStoreUrl"]) for i in body["compliantAppsList"]] == [
        ("com.zhiliaoapp.musically", "https://apps.apple.com/app/id835599320")
    ]
    assert "M-23-13" in body["description"] and "REPORT-ONLY" in body["description"]
    out = tmp_path / "policy.json"
    android = runner.invoke(
        app, ["export", "mdm", "--where", "US", "--at", "2025-02-01T00:00:00Z", "--format", "android",
              "--transaction", "app_store_distribution", "-o", str(out)],
    )  # fmt: skip
    assert android.exit_code == 0, android.output
    policy = json.loads(out.read_text())
    packages = {a["packageName"] for a in policy["applications"]}
    assert {"com.zhiliaoapp.musically", "com.lemon.lvoverseas", "com.bd.nproject"} <= packages
    assert "com.tencent.mm" not in packages
    assert {a["installType"] for a in policy["applications"]} == {"BLOCKED"}
    side = json.loads((tmp_path / "policy.citations.json").read_text())
    assert {c["packageName"] for c in side["citations"]} == packages
    assert all("Pub. L. 118-50" in c["citation"] for c in side["citations"])


def test_export_after_the_divestiture_drops_the_joint_venture_apps() -> None:
    result = runner.invoke(
        app, ["export", "mdm", "--where", "US", "--at", "2026-03-01T00:00:00Z", "--format", "android",
              "--transaction", "app_store_distribution"],
    )  # fmt: skip
    packages = {a["packageName"] for a in json.loads(result.stdout)["applications"]}
    assert "com.zhiliaoapp.musically" not in packages and "com.lemon.lvoverseas" not in packages
    assert "com.ss.android.ugc.aweme" in packages  # Douyin: ByteDance, outside the joint venture


def test_export_bad_input_exits_2() -> None:
    result = runner.invoke(app, ["export", "mdm", "--where", "USA", "--at", "2024-01-01T00:00:00Z", "--format", "jamf"])
    assert result.exit_code == 2 and "where" in result.stderr


# --- the pre-filter never drops a row the resolver would match ----------------------------------------

ALIASES = ["TikTok", "WeChat", "CapCut", "Lemon8", "Douyin", "QQ", "Alipay", "SHAREit", "Musical.ly", "WeRead"]
MUTATIONS = st.lists(
    st.sampled_from(["upper", "lower", "space", "dash", "leet", "suffix", "prefix", "typo", "homoglyph", "dup"]),
    max_size=4,
)


def mutate(name: str, steps: list[str], seed: int) -> str:
    for i, step in enumerate(steps):
        if step == "upper":
            name = name.upper()
        elif step == "lower":
            name = name.lower()
        elif step == "space":
            name = name[: len(name) // 2] + " " + name[len(name) // 2 :]
        elif step == "dash":
            name = name.replace("a", "-a", 1)
        elif step == "leet":
            name = name.replace("i", "1").replace("e", "3").replace("o", "0").replace("s", "$")
        elif step == "suffix":
            name += [" Pro", " Lite 2", " HD", " App", " Video"][seed % 5]
        elif step == "prefix":
            name = ["My ", "4 ", "The "][seed % 3] + name
        elif step == "typo" and len(name) > 3:
            pos = (seed + i) % (len(name) - 1)
            name = name[:pos] + name[pos + 1 :]
        elif step == "homoglyph":
            name = name.replace("i", "і").replace("o", "о")
        elif step == "dup" and name:
            name = name + name[-1]
    return name


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ALIASES), MUTATIONS, st.integers(0, 100)), min_size=1, max_size=30))
def test_prefilter_keeps_every_row_the_resolver_matches(cases: list[tuple[str, list[str], int]]) -> None:
    names = [mutate(alias, steps, seed) for alias, steps, seed in cases]
    table = pa.table({"name": names, "publisher": ["Fun Apps LLC"] * len(names)})
    screener = Screener(BOOK, InventoryOptions(where="US"))
    flagged = screener.candidates(table, {"name": "name", "publisher": "publisher"})
    resolver = screener.resolver("US")
    for name, keep in zip(names, flagged, strict=True):
        if resolver.resolve(Record(name=name, publisher="Fun Apps LLC")):
            assert keep, f"the pre-filter dropped {name!r}, which the resolver matches"
