"""Enforcement outputs that enforce: Intune profiles that block (or say they only report), one entry per
identifier, the enforcement status in every header and summary, --exclude-suspended, and the Android
policy's citations file named as the README names it.

Instants: India in August 2020 (the Section 69A orders prohibit and nothing is suspended), the U.S. in
November 2020 (the Commerce TikTok items enjoined), and the U.S. on 1 February 2025 (PAFACA in force, its
enforcement suspended by EO 14166; the government-device ban enforced).
"""

from __future__ import annotations

import json
import plistlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from appban.cli import app
from appban.export.status import Listed, enforcement_line
from appban.network.blocklist import WRITERS

INDIA_2020 = ["--where", "IN", "--at", "2020-08-01T00:00:00Z"]
US_2020 = ["--where", "US", "--at", "2020-11-20T00:00:00Z"]
US_2025 = ["--where", "US", "--at", "2025-02-01T00:00:00Z"]
STORES = ["--transaction", "app_store_distribution"]

ENFORCEABLE = "prohibited and enforceable"
SUSPENDED = "executive enforcement suspended"

runner = CliRunner()


def run(*args: str) -> Result:
    result = runner.invoke(app, list(args), terminal_width=10_000)
    assert result.exit_code == 0, result.output
    return result


def said(result: Result) -> str:
    """Standard error as one line: rich wraps it at the console's width."""
    return " ".join(result.stderr.split())


def mdm(*args: str) -> Result:
    return run("export", "mdm", *args)


def intune(*args: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(mdm("--format", "intune", *args).stdout)
    return body


def blocked_bundles(body: dict[str, Any]) -> list[str]:
    """The bundle IDs a settings catalog body blocks, read along the path Graph reads them."""
    (setting,) = body["settings"]
    group = setting["settingInstance"]
    assert group["settingDefinitionId"] == "com.apple.applicationaccess_com.apple.applicationaccess"
    (child,) = group["groupSettingCollectionValue"][0]["children"]
    assert child["settingDefinitionId"] == "com.apple.applicationaccess_blockedappbundleids"
    values = child["simpleSettingCollectionValue"]
    assert {v["@odata.type"] for v in values} == {"#microsoft.graph.deviceManagementConfigurationStringSettingValue"}
    return [v["value"] for v in values]


# ---- Intune: block by default, report only on request, and each says which ------------------------------------


def test_intune_ios_blocks_by_bundle_id_through_the_settings_catalog() -> None:
    result = mdm("--format", "intune", *US_2025, *STORES)
    body = json.loads(result.stdout)
    assert body["platforms"] == "iOS" and "compliantAppListType" not in body
    bundles = blocked_bundles(body)
    assert {"com.zhiliaoapp.musically", "com.ss.iphone.ugc.Aweme"} <= set(bundles)
    assert "com.tencent.xin" not in bundles  # WeChat: not reached by PAFACA
    assert body["description"].startswith("appban blocking profile (settings catalog")
    assert body["name"].endswith("- block")
    assert "Intune blocking profile" in said(result) and "REPORT" not in said(result)
    # An app the registry knows no bundle ID of cannot be blocked by bundle ID: said, not hidden.
    assert "Not blockable here (no known iOS bundle ID): TikTok Lite" in body["description"]
    assert "not in this list (no known iOS bundle ID): TikTok Lite" in said(result)


def test_intune_ios_block_is_the_same_list_as_the_jamf_profile() -> None:
    body = intune(*US_2025, *STORES)
    profile = plistlib.loads(mdm("--format", "jamf", *US_2025, *STORES).stdout.encode())
    assert blocked_bundles(body) == profile["PayloadContent"][0]["blockedAppBundleIDs"]


def test_intune_android_blocks_the_packages_of_the_android_policy() -> None:
    body = intune("--platform", "android", *US_2025, *STORES)
    assert body["@odata.type"] == "#microsoft.graph.androidDeviceOwnerGeneralDeviceConfiguration"
    assert body["personalProfilePlayStoreMode"] == "blockedApps"
    listed = [item["appId"] for item in body["personalProfilePersonalApplications"]]
    policy = json.loads(mdm("--format", "android", *US_2025, *STORES).stdout)
    assert listed == [a["packageName"] for a in policy["applications"]]
    assert "appban blocking profile" in body["description"] and "managed Google Play" in body["description"]


@pytest.mark.parametrize("platform", ["ios", "android"])
def test_report_only_is_an_explicit_choice_and_says_so(platform: str) -> None:
    result = mdm("--format", "intune", "--intune-mode", "report", "--platform", platform, *US_2025, *STORES)
    body = json.loads(result.stdout)
    assert body["compliantAppListType"] == "appsNotInListCompliant" and body["compliantAppsList"]
    assert "REPORT-ONLY" in body["description"] and "nothing is blocked" in body["description"]
    assert body["displayName"].endswith("- report only")
    assert "Intune REPORT-ONLY profile" in said(result)


# ---- one entry per identifier ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["block", "report"])
@pytest.mark.parametrize("platform", ["ios", "android"])
@pytest.mark.parametrize("instant", [INDIA_2020, US_2025], ids=["IN-2020", "US-2025"])
def test_no_app_id_appears_twice(mode: str, platform: str, instant: list[str]) -> None:
    body = intune("--intune-mode", mode, "--platform", platform, *instant, *STORES)
    if mode == "report":
        ids = [i.get("appId") or i["appStoreUrl"] for i in body["compliantAppsList"]]
    elif platform == "ios":
        ids = blocked_bundles(body)
    else:
        ids = [i["appId"] for i in body["personalProfilePersonalApplications"]]
    assert ids and not [i for i, n in Counter(ids).items() if n > 1]


def test_an_app_with_two_store_ids_and_one_bundle_is_one_entry() -> None:
    # TikTok has App Store IDs 835599320 and 1235601864 but one bundle ID.
    items = intune("--intune-mode", "report", *US_2025, *STORES)["compliantAppsList"]
    tiktok = [i for i in items if i.get("appId") == "com.zhiliaoapp.musically"]
    assert tiktok == [
        {
            "@odata.type": "#microsoft.graph.appleAppListItem",
            "name": "TikTok",
            "publisher": tiktok[0]["publisher"],
            "appStoreUrl": "https://apps.apple.com/app/id835599320",
            "appId": "com.zhiliaoapp.musically",
        }
    ]


def test_jamf_and_android_policy_list_each_identifier_once() -> None:
    profile = plistlib.loads(mdm("--format", "jamf", *INDIA_2020, *STORES).stdout.encode())
    bundles = profile["PayloadContent"][0]["blockedAppBundleIDs"]
    packages = [
        a["packageName"] for a in json.loads(mdm("--format", "android", *INDIA_2020, *STORES).stdout)["applications"]
    ]
    assert len(bundles) == len(set(bundles)) > 0 and len(packages) == len(set(packages)) > 10


# ---- the enforcement status, and --exclude-suspended -----------------------------------------------------------


def _mdm_outputs(*args: str) -> dict[str, tuple[str, str]]:
    """(file text, standard error) of every MDM shape for the same law."""
    shapes = {
        "intune-ios": ["--format", "intune"],
        "intune-android": ["--format", "intune", "--platform", "android"],
        "intune-report": ["--format", "intune", "--intune-mode", "report"],
        "jamf": ["--format", "jamf"],
    }
    out = {}
    for name, shape in shapes.items():
        result = mdm(*shape, *args)
        out[name] = (result.stdout, said(result))
    return out


def test_2020_exports_state_enforceable_and_exclude_suspended_changes_nothing() -> None:
    plain = _mdm_outputs(*INDIA_2020, *STORES)
    excluded = _mdm_outputs(*INDIA_2020, *STORES, "--exclude-suspended")
    for name, (text, stderr) in plain.items():
        assert f"Enforcement: {ENFORCEABLE}: TikTok" in text, name
        assert SUSPENDED not in text and "left out on request" not in text, name
        assert f"enforcement: {ENFORCEABLE}: TikTok" in stderr, name
        assert excluded[name][0] == text, name  # nothing is suspended, so nothing is left out


def test_2025_exports_state_suspended_and_exclude_suspended_leaves_it_out() -> None:
    plain = _mdm_outputs(*US_2025, *STORES)
    excluded = _mdm_outputs(*US_2025, *STORES, "--exclude-suspended")
    for name, (text, stderr) in plain.items():
        assert f"prohibited, {SUSPENDED} (the prohibition is law): TikTok" in text, name
        assert ENFORCEABLE not in text, name
        assert f"enforcement: prohibited, {SUSPENDED}" in stderr, name
        left_text, left_stderr = excluded[name]
        assert "com.zhiliaoapp.musically" not in left_text, name
        assert "Enforcement: nothing listed; left out on request as not enforced by the executive: TikTok" in left_text
        assert "0 apps" in left_stderr and "left out on request" in left_stderr, name
    assert blocked_bundles(json.loads(plain["intune-ios"][0]))
    assert json.loads(excluded["intune-ios"][0])["settings"] == []


def test_2025_government_devices_stay_listed_when_suspended_ones_are_left_out() -> None:
    # The government-device ban is not under EO 14166: enforceable, so --exclude-suspended keeps it.
    result = mdm("--format", "jamf", *US_2025, "--exclude-suspended")
    profile = plistlib.loads(result.stdout.encode())
    assert profile["PayloadContent"][0]["blockedAppBundleIDs"] == ["com.zhiliaoapp.musically"]
    assert profile["PayloadDescription"] == f"Enforcement: {ENFORCEABLE}: TikTok, TikTok Lite"


def test_enjoined_apps_listed_on_request_are_said_to_be_enjoined() -> None:
    text = mdm("--format", "jamf", *US_2020, *STORES, "--include-enjoined").stdout
    assert "Enforcement: enjoined (a court bars enforcement; listed on request): TikTok" in text
    assert SUSPENDED not in text and ENFORCEABLE not in text


def _header(text: str, mark: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        if line.startswith("#!"):
            continue
        if not line.startswith(mark):
            break
        lines.append(line)
    return lines


_MARKS = {"rpz": ";", "adblock": "!"}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_every_blocklist_header_states_the_enforcement_status(fmt: str) -> None:
    mark = _MARKS.get(fmt, "#")
    india = run("export", "blocklist", *INDIA_2020, "--format", fmt)
    header = _header(india.stdout, mark)
    assert f"{mark} enforcement: {ENFORCEABLE}: tiktok, capcut, wechat" in header
    assert (
        run("export", "blocklist", *INDIA_2020, "--format", fmt, "--exclude-suspended").stdout.replace(
            " (prohibitions the executive does not enforce left out)", ""
        )
        == india.stdout
    )  # nothing suspended in 2020: the same entries

    us = run("export", "blocklist", *US_2025, "--format", fmt)
    header = _header(us.stdout, mark)
    assert any(line.startswith(f"{mark} enforcement: prohibited, {SUSPENDED}") for line in header), header
    assert f"enforcement: prohibited, {SUSPENDED}" in said(us)


def test_blocklist_exclude_suspended_is_empty_in_2025_and_says_why() -> None:
    result = run("export", "blocklist", *US_2025, "--format", "hosts", "--exclude-suspended")
    assert "0.0.0.0 " not in result.stdout
    header = "\n".join(_header(result.stdout, "#"))
    assert "verdicts listed: prohibited (prohibitions the executive does not enforce left out)" in header
    assert "enforcement: nothing listed; left out on request as not enforced by the executive: tiktok" in header
    assert "no prohibition the executive enforces covers hosting, CDN or transit" in header
    assert said(result).startswith("0 entries")


def test_blocklist_of_2020_with_enjoined_apps_says_they_are_enjoined() -> None:
    result = run("export", "blocklist", *US_2020, "--format", "rpz", "--include-enjoined")
    assert "; enforcement: enjoined (a court bars enforcement; listed on request): tiktok" in result.stdout
    assert SUSPENDED not in result.stdout


# ---- the Android policy's citations file ---------------------------------------------------------------------


def test_android_citations_go_to_policy_citations_json(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    result = mdm("--format", "android", *US_2025, *STORES, "-o", str(policy))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.citations.json", "policy.json"]
    assert f"in {tmp_path / 'policy.citations.json'}" in said(result)
    side = json.loads((tmp_path / "policy.citations.json").read_text())
    packages = [a["packageName"] for a in json.loads(policy.read_text())["applications"]]
    assert [c["packageName"] for c in side["citations"]] == packages
    assert side["enforcement"].startswith(f"prohibited, {SUSPENDED}")
    assert side["summary"].startswith("Android Management API policy")
    tiktok = next(c for c in side["citations"] if c["packageName"] == "com.zhiliaoapp.musically")
    assert tiktok["enforcement"].startswith(f"prohibited, {SUSPENDED}") and "Pub. L. 118-50" in tiktok["citation"]


def test_android_policy_on_standard_output_says_where_the_citations_are_not() -> None:
    result = mdm("--format", "android", *US_2025, *STORES)
    assert json.loads(result.stdout)["applications"]
    assert "citations not written: the policy goes to standard output" in said(result)


# ---- the wording --------------------------------------------------------------------------------------------


def test_enforcement_line_groups_each_status_once_in_a_fixed_order() -> None:
    listed = [
        Listed("b", "prohibited", "suspended"),
        Listed("a", "prohibited", "enforceable"),
        Listed("c", "enjoined", "not_applicable"),
        Listed("a", "prohibited", "enforceable"),
    ]
    assert enforcement_line(listed, ["d", "d"]) == (
        f"{ENFORCEABLE}: a; prohibited, {SUSPENDED} (the prohibition is law): b; "
        "enjoined (a court bars enforcement; listed on request): c; "
        "left out on request as not enforced by the executive: d"
    )
    assert enforcement_line([]) == "nothing listed"
