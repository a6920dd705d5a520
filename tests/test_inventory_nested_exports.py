"""MDM API answers that nest each device's apps in the device's record, read as one row per app on the
device's line (a JSON document's record number, a JSON Lines file's line).

Shapes follow the vendors' documentation and clients (values here are made up; app identifiers are the
registry's):
- Jamf Pro API computer inventory, GET /api/v1/computers-inventory?section=APPLICATIONS: a page
  {"totalCount", "results": [{"id", "general": {"name", ...}, "applications": [{"name", "path", "version",
  "bundleId", "macAppStore", "sizeMegabytes", "updateAvailable", "externalVersionId"}]}]}
  (https://developer.jamf.com/jamf-pro/changelog/11230-additions for the application fields; the page's
  totalCount/results and general.name as Jamf Pro clients read them). A Mac's application is named as its
  bundle, "Safari.app" (https://developer.jamf.com/jamf-pro/reference/findcomputerapplicationsbynameinventory).
- Jamf Pro API mobile device, GET /api/v2/mobile-devices/{id}/detail: one object {"mobileDeviceId",
  "deviceType", "general": {"displayName", "lastInventoryUpdateDate", ...}, "applications": [{"identifier",
  "name", "version", "shortVersion", "managementStatus", "validationStatus", "bundleSize", "dynamicSize"}],
  "profiles": [...], ...} (Jamf Software's own Go client, InventoryMobileDevice and
  InventoryMobileDeviceApplication; https://developer.jamf.com/jamf-pro/reference).
- Kandji, GET /api/v1/devices/{device_id}/apps: {"device_id", "apps": [{"app_name", "bundle_id", "version",
  ...}]} (kandji-inc/support api-tools/installed-apps/installed_apps.py; https://api-docs.kandji.io).
- Workspace ONE UEM, GET /API/mdm/devices/{id}/apps: {"DeviceApps": [{"ApplicationName", "Version",
  "BuildVersion", "Status", "Size", "ApplicationIdentifier", "Type", "IsManaged"}], "Page", "PageSize",
  "Total"}; device searches page under "Devices" with "DeviceFriendlyName" (third-party clients of the API).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban import load_rulebook
from appban.screen import inventory
from appban.screen.inventory import InventoryOptions, Screener, ScreenResult
from appban.tables import TableReadError, line_mapper, read_table

BOOK = load_rulebook()
AT = "2025-08-08T00:00:00Z"
PROBE = Path(__file__).with_name("inventory_probe_apps.csv")


def screen(path: Path, where: str = "US", at: str | None = AT) -> ScreenResult:
    screener = Screener(BOOK, InventoryOptions(where=where, at=at))
    return screener.screen(read_table(path, all_text=True), str(path), line_mapper(path))


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def findings(result: ScreenResult) -> list[tuple[int, str, str, str | None]]:
    return [(r["line"], r["app"], r["match"], r["listing_or_device"]) for r in result.findings.to_pylist()]


def mac_app(name: str, bundle: str, version: str = "1.0") -> dict[str, Any]:
    return {"name": name, "path": f"/Applications/{name}", "version": version, "macAppStore": False,
            "sizeMegabytes": 120, "bundleId": bundle, "updateAvailable": False, "externalVersionId": "0"}  # fmt: skip


def test_jamf_pro_computer_inventory_page(tmp_path: Path) -> None:
    page = {
        "totalCount": 3,
        "results": [
            {"id": "1", "udid": "0F3C", "general": {"name": "AGENCY-MBP-0001", "platform": "Mac"},
             "applications": [mac_app("Slack.app", "com.tinyspeck.slackmacgap"),
                              mac_app("WeChat.app", "com.example.mac")]},
            {"id": "2", "udid": "1A2B", "general": {"name": "AGENCY-MBP-0002"}, "applications": []},
            {"id": "3", "udid": "77EE", "general": {"name": "AGENCY-MBP-0003"},
             "applications": [mac_app("CapCut.app", "com.lemon.lvoverseas"),
                              mac_app("Safari.app", "com.apple.Safari")]},
        ],
    }  # fmt: skip
    result = screen(write_json(tmp_path / "computers-inventory.json", page))
    # Missed before: the page was refused ("expected a JSON array of objects").
    assert findings(result) == [
        (1, "wechat", "strong", "AGENCY-MBP-0001"),  # by name, without the bundle's ".app"
        (3, "capcut", "exact", "AGENCY-MBP-0003"),  # by bundle ID
    ]
    assert result.rows == 4 and not result.errors
    assert result.findings.column("record_name").to_pylist() == ["WeChat.app", "CapCut.app"]  # as written


def test_jamf_pro_mobile_device_detail_is_one_device(tmp_path: Path) -> None:
    detail = {
        "mobileDeviceId": "7", "deviceType": "iOS",
        "general": {"displayName": "AGENCY-IPH-0007", "lastInventoryUpdateDate": "2025-03-01T12:00:00Z",
                    "managed": True, "supervised": True},
        "applications": [
            {"identifier": "com.zhiliaoapp.musically", "name": "TikTok", "version": "40.1.0", "shortVersion": "40.1",
             "managementStatus": "UNMANAGED", "validationStatus": True, "bundleSize": "100", "dynamicSize": "10"},
            {"identifier": "com.microsoft.Office.Outlook", "name": "Microsoft Outlook", "version": "4.2",
             "shortVersion": "4.2",
             "managementStatus": "MANAGED", "validationStatus": True, "bundleSize": "100", "dynamicSize": "10"},
        ],
        "profiles": [{"displayName": "Wi-Fi", "identifier": "org.example.wifi", "removable": False}],
        "certificates": [{"commonName": "Agency CA", "identity": False}],
    }  # fmt: skip
    result = screen(write_json(tmp_path / "mobile-device-7.json", detail), at=None)
    assert findings(result) == [(1, "tiktok", "exact", "AGENCY-IPH-0007")]
    # decided at the device's inventory time, its general.lastInventoryUpdateDate
    assert [str(at) for at in result.findings.column("at").to_pylist()] == ["2025-03-01 12:00:00+00:00"]


def test_kandji_device_apps(tmp_path: Path) -> None:
    answer = {
        "device_id": "5c1b-44f0",
        "apps": [
            {"app_name": "TikTok", "bundle_id": "com.zhiliaoapp.musically", "version": "40.1", "source": "App Store"},
            {"app_name": "Numbers", "bundle_id": "com.apple.iWork.Numbers", "version": "14.1", "source": "Apple"},
            {"app_name": "Lemon8", "bundle_id": "com.example.unknown", "version": "1.0", "source": "App Store"},
        ],
    }
    result = screen(write_json(tmp_path / "kandji-apps.json", answer))
    assert [(line, app, device) for line, app, _, device in findings(result)] == [
        (1, "tiktok", "5c1b-44f0"),
        (1, "lemon8", "5c1b-44f0"),
    ]


def ws1_app(name: str, identifier: str) -> dict[str, Any]:
    return {"ApplicationName": name, "Version": "1.0", "BuildVersion": "", "Status": "Installed", "Size": "2048",
            "ApplicationIdentifier": identifier, "Type": "Public", "IsManaged": False}  # fmt: skip


def test_workspace_one_device_apps_and_device_search_with_apps(tmp_path: Path) -> None:
    one = {"DeviceApps": [ws1_app("WeChat", "com.tencent.xin"), ws1_app("Zoom", "us.zoom.videomeetings")],
           "Page": 0, "PageSize": 500, "Total": 2}  # fmt: skip
    assert findings(screen(write_json(tmp_path / "apps.json", one))) == [(1, "wechat", "exact", None)]
    search = {
        "Devices": [
            {"Id": {"Value": 101}, "DeviceFriendlyName": "AGENCY-AND-101", "SerialNumber": "R58M",
             "DeviceApps": [ws1_app("Chrome", "com.android.chrome")]},
            {"Id": {"Value": 102}, "DeviceFriendlyName": "AGENCY-AND-102", "SerialNumber": "R58N",
             "DeviceApps": [ws1_app("TikTok", "com.zhiliaoapp.musically")]},
        ],
        "Page": 0, "PageSize": 500, "Total": 2,
    }  # fmt: skip
    assert findings(screen(write_json(tmp_path / "search.json", search))) == [(2, "tiktok", "exact", "AGENCY-AND-102")]


def test_json_lines_keep_each_devices_own_line(tmp_path: Path) -> None:
    records = [
        {"id": "1", "general": {"name": "MBP-1"}, "applications": [mac_app("Slack.app", "com.tinyspeck.slackmacgap")]},
        {"id": "2", "general": {"name": "MBP-2"}, "applications": [mac_app("TikTok.app", "com.example.tt")]},
    ]
    path = tmp_path / "computers.jsonl"
    path.write_text("\n\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    assert findings(screen(path)) == [(3, "tiktok", "strong", "MBP-2")]


def test_a_column_of_plain_titles_named_apps_is_not_unnested(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["DeviceName", "AppName", "Apps"], ["IPH-1", "TikTok", "TikTok"]])
    result = screen(path)
    assert findings(result) == [(2, "tiktok", "strong", "IPH-1")] and not result.errors


def test_bad_app_lists_are_reported_on_their_devices_line(tmp_path: Path) -> None:
    page = {
        "results": [
            {"id": "1", "general": {"name": "A"}, "applications": [mac_app("TikTok.app", "x")]},
            {"id": "2", "general": {"name": "B"}, "applications": ["TikTok"]},
            {"id": "3", "general": {"name": "C"}, "applications": {"name": "TikTok"}},
            {"id": "4", "general": {"name": "D"}, "applications": None},
        ]
    }
    result = screen(write_json(tmp_path / "page.json", page))
    assert findings(result) == [(1, "tiktok", "strong", "A")]
    assert [(e.line, e.column, e.message) for e in result.errors] == [
        (2, "applications", "not a list of app objects"),
        (3, "applications", "not a list of app objects"),
    ]


def test_every_list_empty_is_no_finding_and_no_error(tmp_path: Path) -> None:
    page = {"totalCount": 1, "results": [{"id": "1", "general": {"name": "A"}, "applications": []}]}
    result = screen(write_json(tmp_path / "page.json", page))
    assert result.rows == 0 and result.findings.num_rows == 0 and not result.errors


def test_unnested_rows_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory, "MAX_NESTED_APPS", 3)
    page = {"results": [{"general": {"name": f"D{n}"}, "apps": [{"app_name": "X"}] * 2} for n in range(2)]}
    with pytest.raises(ValueError, match=r"page\.json: more than 3 apps in 'apps' lists"):
        screen(write_json(tmp_path / "page.json", page))


def test_documents_that_are_no_table_name_what_they_hold(tmp_path: Path) -> None:
    with pytest.raises(TableReadError, match=r"x\.json: expected a JSON object or an array of objects, found str"):
        read_table(write_json(tmp_path / "x.json", "TikTok"), all_text=True)
    with pytest.raises(TableReadError, match=r"y\.json: record 2: not a JSON object"):
        read_table(write_json(tmp_path / "y.json", {"results": [{"a": 1}, 7]}), all_text=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(["Slack", "TikTok", "Zoom", "WeChat", "Notes.app"]), max_size=4), max_size=6))
def test_one_row_per_app_on_its_devices_record(tmp_path: Path, fleet: list[list[str]]) -> None:
    page = {"results": [{"id": str(n), "general": {"name": f"D{n}"}, "applications": [{"name": a} for a in apps]}
                        for n, apps in enumerate(fleet)]}  # fmt: skip
    result = screen(write_json(tmp_path / "page.json", page))
    assert result.rows == sum(map(len, fleet))
    expected = [(n + 1, f"D{n}") for n, apps in enumerate(fleet) for a in apps if a in ("TikTok", "WeChat")]
    assert [(line, device) for line, _, _, device in findings(result)] == expected


def test_probe_titles_as_kandji_apps_flag_only_the_named_companies(tmp_path: Path) -> None:
    """The 310-title false-flag probe (sources in its header) as one Kandji device's apps, names only."""
    with PROBE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    answer = {"device_id": "probe", "apps": [{"app_name": row["title"], "bundle_id": None} for row in rows]}
    result = screen(write_json(tmp_path / "kandji.json", answer))
    assert result.rows == len(rows)
    flagged = set(result.findings.column("record_name").to_pylist())
    assert flagged == {row["title"] for row in rows if row["owner"]}


def test_the_example_page() -> None:
    path = Path(__file__).parents[1] / "examples" / "inventory" / "jamf-pro-computers-inventory.json"
    result = screen(path)
    assert findings(result) == [(1, "wechat", "strong", "AGENCY-MBP-0001"), (2, "capcut", "exact", "AGENCY-MBP-0002")]
    assert result.rows == 5 and not result.errors
