"""Inventories as users bring them: Microsoft Graph detectedApp collections (the whole tenant's, one
device's, or devices with their apps expanded), Intune's report exports in their column spellings, a
Kandji app table, sellers compared whole (never by prefix), localized names, and a false-flag probe over
300 real and near-name apps (tests/inventory_probe_apps.csv, sources in its header).

Shapes follow the vendors' documentation:
- detectedApp: https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-detectedapp (id,
  displayName, version, sizeInByte, deviceCount, publisher, platform; collections under "value" with
  "@odata.nextLink" when paged); a managedDevice's detectedApps relationship:
  https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-manageddevice
- Intune report exports AppInvAggregate / AppInvRawData (and the older DetectedAppsAggregate):
  https://learn.microsoft.com/en-us/intune/device-management/reports/ref-graph-available-reports
- Kandji device apps as Fivetran's connector schema lists them (device_app: app_name, bundle_id, version,
  device_id): https://fivetran.com/docs/connectors/applications/kandji/connector-schema
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from appban import load_rulebook
from appban.identity.normalize import publisher_key
from appban.identity.resolve import MatchKind, Record, Resolver
from appban.screen.inventory import InventoryOptions, Screener, ScreenResult
from appban.tables import line_mapper, read_table

BOOK = load_rulebook()
AT = "2025-08-08T00:00:00Z"
PROBE = Path(__file__).with_name("inventory_probe_apps.csv")


def screen(path: Path, where: str = "US") -> ScreenResult:
    screener = Screener(BOOK, InventoryOptions(where=where, at=AT))
    return screener.screen(read_table(path, all_text=True), str(path), line_mapper(path))


def found(result: ScreenResult) -> list[tuple[int, str, str]]:
    return [(row["line"], row["app"], row["match"]) for row in result.findings.to_pylist()]


def detected_app(n: int, name: str, publisher: str | None, platform: str = "ios") -> dict[str, object]:
    return {"id": f"{n:064x}", "displayName": name, "version": "1.0", "sizeInByte": 0, "deviceCount": 3,
            "publisher": publisher, "platform": platform}  # fmt: skip


def test_graph_detected_apps_page_is_recognised_without_a_map(tmp_path: Path) -> None:
    page = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/detectedApps",
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/deviceManagement/detectedApps?$skiptoken=abc",
        "value": [
            detected_app(1, "TikTok - Videos, Shop & LIVE", "TikTok Ltd."),
            detected_app(2, "Microsoft Teams", "Microsoft Corporation"),
            detected_app(3, "WeChat", None, "androidWorkProfile"),
            detected_app(4, "TikTok Downloader", "SaveClip Apps"),
            detected_app(5, "企业微信", "Tencent Technology (Shenzhen) Company Limited"),
        ],
    }
    path = tmp_path / "detectedApps.json"
    path.write_text(json.dumps(page, ensure_ascii=False), encoding="utf-8")
    result = screen(path)
    assert result.columns.format == "intune-graph-detected-apps" and result.columns.kind == "devices"
    assert "id" not in result.columns.roles  # Intune's own key, not a store identifier
    assert found(result) == [(1, "tiktok", "strong"), (3, "wechat", "strong"), (5, "wecom", "related_not_covered")]


def test_one_devices_detected_apps_without_counts_or_sizes(tmp_path: Path) -> None:
    # GET /deviceManagement/managedDevices/{id}/detectedApps?$select=displayName,version,publisher,platform,sizeInByte
    listed = [("Slack", "Slack Technologies, Inc."), ("CapCut", "Bytedance Pte. Ltd")]
    apps = [{k: v for k, v in detected_app(n, name, pub).items() if k != "deviceCount"} for n, (name, pub) in
            enumerate(listed)]  # fmt: skip
    path = tmp_path / "device-apps.json"
    path.write_text(json.dumps({"value": apps}), encoding="utf-8")
    result = screen(path)
    assert result.columns.format == "intune-graph-detected-apps"
    assert found(result) == [(2, "capcut", "strong")]


def test_managed_devices_with_expanded_detected_apps_give_one_row_per_app_on_the_devices_line(tmp_path: Path) -> None:
    # GET /deviceManagement/managedDevices?$expand=detectedApps
    devices = {
        "value": [
            {"id": "d1", "deviceName": "AGENCY-IPH-0001", "operatingSystem": "iOS",
             "detectedApps": [detected_app(1, "Microsoft Outlook", "Microsoft Corporation"),
                              detected_app(2, "TikTok", "TikTok Ltd.")]},
            {"id": "d2", "deviceName": "AGENCY-AND-0002", "operatingSystem": "Android", "detectedApps": []},
            {"id": "d3", "deviceName": "AGENCY-AND-0003", "operatingSystem": "Android",
             "detectedApps": [detected_app(3, "微信", None, "androidWorkProfile")]},
            {"id": "d4", "deviceName": "AGENCY-AND-0004", "operatingSystem": "Android", "detectedApps": "oops"},
        ]
    }  # fmt: skip
    path = tmp_path / "managedDevices.json"
    path.write_text(json.dumps(devices, ensure_ascii=False), encoding="utf-8")
    result = screen(path)
    rows = result.findings.to_pylist()
    assert [(r["line"], r["app"], r["listing_or_device"]) for r in rows] == [
        (1, "tiktok", "AGENCY-IPH-0001"),
        (3, "wechat", "AGENCY-AND-0003"),
    ]
    assert result.rows == 3  # apps, not devices
    assert [(e.line, e.column) for e in result.errors] == [(4, "detectedApps")]


@pytest.mark.parametrize(
    ("header", "row"),
    [
        # AppInvRawData: one row per device and app
        (["ApplicationKey", "ApplicationName", "ApplicationPublisher", "ApplicationShortVersion",
          "ApplicationVersion", "DeviceId", "DeviceName", "EmailAddress", "OSDescription", "OSVersion", "Platform",
          "UserId", "UserName"],
         ["k1", "TikTok - Videos, Shop & LIVE", "TikTok Ltd.", "42.1", "42.1", "d1", "IPH-1", "a@example.org", "iOS",
          "17.5", "IOS", "u1", "A"]),
        # The older DetectedAppsAggregate report: no publisher column at all
        (["ApplicationKey", "ApplicationName", "ApplicationVersion", "DeviceCount", "BundleSize"],
         ["k1", "TikTok - Videos, Shop & LIVE", "42.1", "3", "0"]),
        # The admin center's labels, with spaces
        (["Application Name", "Application Publisher", "Application Version", "Device Count", "Platform"],
         ["TikTok - Videos, Shop & LIVE", "TikTok Ltd.", "42.1", "3", "iOS"]),
    ],
)  # fmt: skip
def test_intune_report_exports_in_their_spellings(tmp_path: Path, header: list[str], row: list[str]) -> None:
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, row, [("Slack" if "Name" in h else "") for h in header]])
    result = screen(path)
    assert "name" in result.columns.roles and not result.errors
    assert found(result) == [(2, "tiktok", "strong")]


def test_kandji_device_apps_by_bundle_id(tmp_path: Path) -> None:
    path = tmp_path / "device_app.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [
                ["id", "device_id", "app_name", "bundle_id", "version", "path", "source"],
                ["1", "dev-1", "WeChat", "com.tencent.xin", "8.0.50", "/Applications/WeChat.app", "App Store"],
                ["2", "dev-1", "Keynote", "com.apple.iWork.Keynote", "14.1", "/Applications/Keynote.app", "App Store"],
            ]
        )
    result = screen(path)
    assert result.columns.roles["ios_bundle"] == "bundle_id"
    assert found(result) == [(2, "wechat", "exact")]


US = Resolver(BOOK, where="US")


@pytest.mark.parametrize(
    ("publisher", "company"),
    [
        ("TikTok Ltd.", "bytedance"),
        ("TikTok Ltd", "bytedance"),
        ("TikTok Limited", "bytedance"),
        ("TIKTOK PTE. LTD.", "bytedance"),
        ("Bytedance Pte. Ltd.", "bytedance"),  # as Google Play writes CapCut's developer
        ("Beijing Microlive Vision Technology Co.,Ltd.", "bytedance"),
        ("Beijing Microlive Vision Technology Company Limited", "bytedance"),
        ("ByteDance Ltd.", "bytedance"),
        ("Tencent Technology (Shenzhen) Co., Ltd.", "tencent"),
        ("Tencent Holdings Limited", "tencent"),
        # longer names that only start like an account are someone else
        ("TikTok Ltd. Something", None),
        ("TikTok Fans Club Ltd.", None),
        ("Tencent Technology (Shenzhen) Company Limited Fan Apps", None),
        ("ByteDancer Studio", None),
        ("WeChat Helper Studio", None),
        ("Ltd.", None),
    ],
)
def test_a_seller_is_an_account_only_when_equal_after_its_legal_form(publisher: str, company: str | None) -> None:
    assert US.company_of_publisher(publisher) == company


def test_an_unlisted_app_from_a_prefix_of_an_account_is_not_the_companys_other_app() -> None:
    at = dt.datetime(2025, 8, 8, tzinfo=dt.UTC)
    assert US.resolve(Record(name="Photo Frames HD", publisher="TikTok Ltd."), at)[0].app == "bytedance_other_app"
    assert US.resolve(Record(name="Photo Frames HD", publisher="TikTok Ltd. Something"), at) == []
    assert publisher_key("Co., Ltd") == "co"  # a name made only of legal words keeps its first


@pytest.mark.parametrize(
    ("name", "app", "kind"),
    [
        ("Douyin 抖音", "douyin", MatchKind.STRONG),
        ("WeChat 微信", "wechat", MatchKind.STRONG),
        ("微信", "wechat", MatchKind.STRONG),
        ("Weixin", "wechat", MatchKind.STRONG),
        # WeCom is Tencent's, but no US instrument names it: identified, not covered
        ("企业微信", "wecom", MatchKind.RELATED_NOT_COVERED),
        ("WeCom", "wecom", MatchKind.RELATED_NOT_COVERED),
        ("WeChat Work", "wecom", MatchKind.RELATED_NOT_COVERED),
        ("QQ", "qq", MatchKind.RELATED_NOT_COVERED),
    ],
)
def test_localized_and_company_names(name: str, app: str, kind: MatchKind) -> None:
    best = US.resolve(Record(name=name), dt.datetime(2025, 8, 8, tzinfo=dt.UTC))[0]
    assert (best.app, best.kind) == (app, kind)


def probe_rows() -> list[dict[str, str]]:
    with PROBE.open(encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def test_the_probe_list_is_large_and_sourced() -> None:
    rows = probe_rows()
    assert len(rows) >= 300
    assert {row["source"] for row in rows} == {"appbrain-us", "jp-play", "constructed"}
    assert sum(row["source"] != "constructed" for row in rows) >= 200


@pytest.mark.parametrize("where", ["US", "IN"])
def test_popular_and_near_name_apps_are_not_flagged_as_covered_apps(tmp_path: Path, where: str) -> None:
    """Every probe row as an Intune export row with its publisher, and again with none: only the rows of
    companies the rulebook names are found, and no other row is a strong, exact or look-alike match."""
    rows = probe_rows()
    path = tmp_path / "AppInvAggregate.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ApplicationId", "ApplicationKey", "ApplicationName", "ApplicationPublisher",
                         "ApplicationShortVersion", "ApplicationVersion", "DeviceCount", "Platform"])  # fmt: skip
        for n, row in enumerate(rows):
            for publisher in (row["publisher"], ""):
                writer.writerow(["", f"{n:044x}", row["title"], publisher, "1.0", "1.0", "2", "AndroidWorkProfile"])
    result = screen(path, where)
    assert result.columns.format == "intune-discovered-apps"
    flagged: dict[str, set[str]] = {}
    for finding in result.findings.to_pylist():
        row = rows[(finding["line"] - 2) // 2]
        flagged.setdefault(row["title"], set()).add(finding["match"])
        assert row["owner"], f"{row['title']!r} ({row['source']}) flagged as {finding['app']} {finding['match']}"
        assert BOOK.company_of(finding["app"]) == row["owner"]
    owned = {row["title"] for row in rows if row["owner"]}
    assert set(flagged) == owned  # every real listing of a named company is found, with or without its seller
    # the real listings are identified (covered there or not), never taken for look-alikes of themselves
    assert all(kinds <= {"strong", "exact", "related_not_covered"} for kinds in flagged.values()), flagged
