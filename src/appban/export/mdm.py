"""The blocked-app list that follows from the rulebook at an instant, in the shapes MDM systems import.

- intune, mode "block" (the default):
  - iOS/iPadOS: a settings catalog policy (Graph `deviceManagement/configurationPolicies`, beta) whose
    Restrictions group sets `com.apple.applicationaccess_blockedappbundleids`, the settings catalog's
    "Blocked App Bundle IDs": supervised devices neither show nor launch the listed bundle IDs.
  - Android Enterprise: an `androidDeviceOwnerGeneralDeviceConfiguration` (beta) whose personal profile
    play-store mode is `blockedApps` with the listed packages: corporate-owned devices with a work profile
    block them in the personal profile. Intune blocks apps on fully managed devices through app
    assignments, not through a profile, so there the list says what not to approve in managed Google
    Play (or to assign as "Uninstall").
- intune, mode "report": the device-restrictions "Restricted apps" body (`compliantAppsList` with
  `compliantAppListType: appsNotInListCompliant`), which only marks a device non-compliant and blocks
  nothing.
  Either way the profile's description states which of the two it is, the enforcement status, and the
  citations.
- jamf: a configuration profile (.mobileconfig) with a com.apple.applicationaccess payload whose
  blockedAppBundleIDs lists the bundle IDs, each preceded by an XML comment with its citation.
- android: an Android Management API policy whose applications have installType BLOCKED. The policy
  format has no comment or description field, so the citations (and the enforcement status) are
  returned separately.

Every identifier appears once per output: an app listed under two store IDs, or a package two registry
apps share, would otherwise give duplicate entries with one appId.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from xml.sax.saxutils import escape

from appban.engine.decide import Decision, evaluate
from appban.engine.instants import iso
from appban.engine.law import resolve
from appban.export.status import Listed, enforcement_line, status_of, wording
from appban.identity.registry import AppIdentity, RegistryFile
from appban.knowledge.install import bundle_of
from appban.rulebook.loader import Rulebook
from appban.vocabulary import Category, Enforcement, Verdict

IntuneMode = Literal["block", "report"]

# Graph's documented collection caps: the personal-profile app list holds at most 500 items, an
# appListItem compliance list at most 10,000 (intune-deviceconfig-androiddeviceownergeneraldeviceconfiguration,
# intune-deviceconfig-iosgeneraldeviceconfiguration).
_PERSONAL_PROFILE_CAP = 500
_COMPLIANT_LIST_CAP = 10_000


@dataclass(frozen=True)
class BlockedApp:
    app: str
    name: str
    decision: Decision
    android_packages: list[str]
    ios_bundles: list[str]
    app_store_ids: list[str]
    publisher: str

    @property
    def listed(self) -> Listed:
        return Listed(self.name, self.decision.verdict.value, self.decision.enforcement.value)

    @property
    def citation(self) -> str:
        cites = "; ".join(c.cite for c in self.decision.citations)
        suspended = self.decision.enforcement is Enforcement.SUSPENDED
        note = "; executive enforcement suspended" if suspended else ""
        return f"{self.name}: {self.decision.verdict.value} at {self.decision.at}{note} ({cites})"


@dataclass(frozen=True)
class Selection:
    """The apps an export lists, what --exclude-suspended left out, and what it was computed for."""

    apps: list[BlockedApp]
    where: str
    at: dt.datetime
    category: Category
    rulebook_version: str
    left_out_suspended: list[BlockedApp] = field(default_factory=list)
    left_out_enjoined: list[str] = field(default_factory=list)  # names of apps enjoined and not asked for
    bundle: str | None = None  # the knowledge bundle the rulebook came from; None for the package's own data

    @property
    def enforcement(self) -> str:
        line = enforcement_line([a.listed for a in self.apps], [a.name for a in self.left_out_suspended])
        if self.left_out_enjoined:
            # As the blocklists do: an empty list at a time of injunctions says which apps a court kept out.
            line += f"; enjoined, not listed (--include-enjoined lists them): {', '.join(self.left_out_enjoined)}"
        return line

    @property
    def title(self) -> str:
        return f"appban: blocked apps ({self.category.value}, {self.where}, {self.at.date().isoformat()})"

    @property
    def from_bundle(self) -> str:
        return f", bundle {self.bundle}" if self.bundle else ""

    def header(self, what: str, gaps: str = "") -> str:
        """One paragraph: what the file does (and cannot), for which law, its enforcement status, the citations."""
        cites = " | ".join(app.citation for app in self.apps)
        return (
            f"{what}.{gaps} Apps {self.category.value} in {self.where} at {iso(self.at)} "
            f"(rulebook {self.rulebook_version}{self.from_bundle}). Enforcement: {self.enforcement}."
            + (f" {cites}" if cites else "")
        )


def select(
    rulebook: Rulebook,
    registry: RegistryFile,
    where: str,
    at: dt.datetime,
    category: Category,
    include_enjoined: bool = False,
    exclude_suspended: bool = False,
) -> Selection:
    """Every registry app the law prohibits (optionally: or enjoins) for `category` in `where` at `at`.

    With `exclude_suspended`, an app whose prohibition the executive does not enforce is left out of the
    list and named in `left_out_suspended`.
    """
    law = resolve(rulebook)
    wanted = {Verdict.PROHIBITED} | ({Verdict.ENJOINED} if include_enjoined else set())
    apps: list[BlockedApp] = []
    left_out: list[BlockedApp] = []
    enjoined: list[str] = []
    for app, identity in registry.apps.items():
        decision = evaluate(law, app, category, where, at, {}, later=False)  # an export is a snapshot at `at`
        if decision.verdict not in wanted:
            if decision.verdict is Verdict.ENJOINED:
                enjoined.append(rulebook.subjects.subjects[app].name)
            continue
        blocked = BlockedApp(
            app=app,
            name=rulebook.subjects.subjects[app].name,
            decision=decision,
            android_packages=[i.value for i in identity.android_package],
            ios_bundles=[i.value for i in identity.ios_bundle],
            app_store_ids=[i.value for i in identity.app_store_id],
            publisher=_publisher(rulebook, registry, app, identity),
        )
        suspended = status_of(decision.verdict.value, decision.enforcement.value) == "suspended"
        (left_out if exclude_suspended and suspended else apps).append(blocked)
    return Selection(apps, where, at, category, rulebook.version, left_out, enjoined, bundle_of(rulebook))


def _publisher(rulebook: Rulebook, registry: RegistryFile, app: str, identity: AppIdentity) -> str:
    """The developer account a store shows for `app`: a publisher of its company read from one of the app's
    own listings (the same source as one of its identifiers or titles), else the company's name. The registry
    lists a company's accounts, not which app each publishes, and one account is not every app's (Douyin and
    CapCut are not published by TikTok Pte. Ltd.)."""
    company = rulebook.company_of(app)
    own_sources = {
        entry.source
        for entries in (identity.android_package, identity.ios_bundle, identity.app_store_id, identity.titles)
        for entry in entries
    }
    for publisher in registry.publishers.get(company, []):
        if publisher.source in own_sources:
            return publisher.value
    return rulebook.subjects.companies[company].name


def blocked_apps(
    rulebook: Rulebook,
    registry: RegistryFile,
    where: str,
    at: dt.datetime,
    category: Category,
    include_enjoined: bool = False,
) -> list[BlockedApp]:
    """The listed apps of `select()`, for callers that need only them."""
    return select(rulebook, registry, where, at, category, include_enjoined).apps


# ---- identifiers, once each ----------------------------------------------------------------------------------


def _ios_entries(apps: list[BlockedApp]) -> Iterator[tuple[BlockedApp, str | None, str | None]]:
    """(app, bundle ID, App Store URL): one per bundle ID, and one per store ID of an app without a bundle ID.

    The registry does not say which of an app's store IDs goes with which bundle ID, so a bundle takes the
    app's first store ID for its URL; the other store IDs of the same app are the same app and add nothing.
    """
    seen: set[str] = set()
    for app in apps:
        urls = [f"https://apps.apple.com/app/id{store_id}" for store_id in app.app_store_ids]
        if app.ios_bundles:
            for bundle in app.ios_bundles:
                if bundle not in seen:
                    seen.add(bundle)
                    yield app, bundle, urls[0] if urls else None
        else:
            for url in urls:
                if url not in seen:
                    seen.add(url)
                    yield app, None, url


def _bundles(apps: list[BlockedApp]) -> list[tuple[BlockedApp, str]]:
    return [(app, bundle) for app, bundle, _ in _ios_entries(apps) if bundle is not None]


def _packages(apps: list[BlockedApp]) -> list[tuple[BlockedApp, str]]:
    seen: set[str] = set()
    out: list[tuple[BlockedApp, str]] = []
    for app in apps:
        for package in app.android_packages:
            if package not in seen:
                seen.add(package)
                out.append((app, package))
    return out


def _missing(apps: list[BlockedApp], kept: list[tuple[BlockedApp, str]]) -> list[str]:
    have = {app.app for app, _ in kept}
    return list(dict.fromkeys(app.name for app in apps if app.app not in have))


def _without(apps: list[BlockedApp], kept: list[tuple[BlockedApp, str]], what: str) -> str:
    """A sentence naming the listed apps that have no identifier of the kind this format blocks by."""
    missing = _missing(apps, kept)
    return f" Not blockable here (no known {what}): {', '.join(missing)}." if missing else ""


Identifiers = Literal["bundle", "package", "listing"]


def not_listable(selection: Selection, identifiers: Identifiers) -> list[str]:
    """The listed apps an output naming apps by `identifiers` cannot name, for want of a known identifier.

    "bundle": iOS bundle IDs (blocking profiles); "package": Android packages; "listing": an iOS bundle ID or
    App Store URL (Intune's report-only list takes either).
    """
    if identifiers == "listing":
        kept = [(app, url or bundle or "") for app, bundle, url in _ios_entries(selection.apps)]
    else:
        kept = _bundles(selection.apps) if identifiers == "bundle" else _packages(selection.apps)
    return _missing(selection.apps, kept)


# ---- Intune --------------------------------------------------------------------------------------------------

_BLOCK_IOS = (
    "appban blocking profile (settings catalog, Restrictions > Blocked App Bundle IDs): supervised iOS/iPadOS "
    "devices neither show nor launch the listed apps; it does not uninstall them"
)
_BLOCK_ANDROID = (
    "appban blocking profile (Android Enterprise device restrictions, personal profile: blocked apps): "
    "corporate-owned devices with a work profile block the listed apps in the personal profile; on fully "
    "managed devices do not approve them in managed Google Play (or assign them as Uninstall)"
)
_REPORT = (
    "appban REPORT-ONLY profile (device restrictions, Restricted apps: prohibited apps): a device with a "
    "listed app is reported non-compliant; nothing is blocked"
)


def intune(selection: Selection, platform: str, mode: IntuneMode = "block") -> str:
    """A Graph request body for Intune: a blocking profile, or with mode "report" the report-only one."""
    if mode not in ("block", "report"):
        raise ValueError(f"intune mode must be 'block' or 'report', not {mode!r}")
    if platform not in ("ios", "android"):
        raise ValueError(f"platform must be 'ios' or 'android', not {platform!r}")
    if mode == "report":
        body = _intune_report(selection, platform)
    elif platform == "ios":
        body = _intune_block_ios(selection)
    else:
        body = _intune_block_android(selection)
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def _intune_block_ios(selection: Selection) -> dict[str, Any]:
    bundles = _bundles(selection.apps)
    values = [
        {"@odata.type": "#microsoft.graph.deviceManagementConfigurationStringSettingValue", "value": bundle}
        for _, bundle in bundles
    ]
    restrictions = {
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationGroupSettingCollectionInstance",
        "settingDefinitionId": "com.apple.applicationaccess_com.apple.applicationaccess",
        "groupSettingCollectionValue": [
            {
                "children": [
                    {
                        "@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingCollectionInstance",
                        "settingDefinitionId": "com.apple.applicationaccess_blockedappbundleids",
                        "simpleSettingCollectionValue": values,
                    }
                ]
            }
        ],
    }
    # An empty collection is not a setting: with nothing to block the policy carries no setting at all.
    settings = [
        {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSetting", "settingInstance": restrictions}
    ]
    return {
        "name": f"{selection.title} - block",
        "description": selection.header(_BLOCK_IOS, _without(selection.apps, bundles, "iOS bundle ID")),
        "platforms": "iOS",
        "technologies": "mdm,appleRemoteManagement",
        "roleScopeTagIds": ["0"],
        "settings": settings if values else [],
    }


def _app_list_item(app: BlockedApp, app_id: str | None, url: str | None, apple: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.appleAppListItem" if apple else "#microsoft.graph.appListItem",
        "name": app.name,
        "publisher": app.publisher,
    }
    if url is not None:
        item["appStoreUrl"] = url
    if app_id is not None:
        item["appId"] = app_id
    return item


def _play_url(package: str) -> str:
    return f"https://play.google.com/store/apps/details?id={package}"


def _intune_block_android(selection: Selection) -> dict[str, Any]:
    packages = _packages(selection.apps)
    if len(packages) > _PERSONAL_PROFILE_CAP:
        raise ValueError(f"{len(packages)} packages: Intune's personal-profile app list holds at most 500")
    return {
        "@odata.type": "#microsoft.graph.androidDeviceOwnerGeneralDeviceConfiguration",
        "displayName": f"{selection.title} - block",
        "description": selection.header(_BLOCK_ANDROID, _without(selection.apps, packages, "Android package")),
        "personalProfilePlayStoreMode": "blockedApps",
        "personalProfilePersonalApplications": [
            _app_list_item(app, package, _play_url(package), apple=False) for app, package in packages
        ],
    }


def _intune_report(selection: Selection, platform: str) -> dict[str, Any]:
    if platform == "ios":
        items = [_app_list_item(app, bundle, url, apple=True) for app, bundle, url in _ios_entries(selection.apps)]
        kind = "#microsoft.graph.iosGeneralDeviceConfiguration"
    else:
        packages = _packages(selection.apps)
        items = [_app_list_item(app, package, _play_url(package), apple=False) for app, package in packages]
        kind = "#microsoft.graph.androidGeneralDeviceConfiguration"
    if len(items) > _COMPLIANT_LIST_CAP:
        raise ValueError(f"{len(items)} apps: Intune's restricted-apps list holds at most 10,000")
    return {
        "@odata.type": kind,
        "displayName": f"{selection.title} - report only",
        "description": selection.header(_REPORT),
        "compliantAppListType": "appsNotInListCompliant",
        "compliantAppsList": items,
    }


def intune_summary(mode: IntuneMode, platform: str) -> str:
    """The first words of the CLI's summary line: which of the Intune profiles was written."""
    if mode == "report":
        return "Intune REPORT-ONLY profile (Restricted apps: non-compliance is reported, nothing is blocked)"
    if platform == "ios":
        return "Intune blocking profile (settings catalog Blocked App Bundle IDs, supervised iOS/iPadOS)"
    return "Intune blocking profile (Android Enterprise personal profile blocked apps)"


# ---- Jamf ----------------------------------------------------------------------------------------------------

_JAMF = (
    "appban blocking profile (com.apple.applicationaccess blockedAppBundleIDs): supervised iOS/iPadOS devices "
    "neither show nor launch the listed apps; it does not uninstall them"
)


def jamf(selection: Selection) -> str:
    bundles = _bundles(selection.apps)
    entries = [
        f"\t\t\t\t<!-- {_comment(app.citation)} -->\n\t\t\t\t<string>{escape(bundle)}</string>\n"
        for app, bundle in bundles
    ]
    header = selection.header(_JAMF, _without(selection.apps, bundles, "iOS bundle ID"))
    # Stable UUIDs: the same law, place and instant give the same profile, so re-imports replace it.
    seed = f"appban:{selection.rulebook_version}:{selection.category.value}:{selection.where}:{iso(selection.at)}"
    profile_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
    payload_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, seed + ":restrictions"))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- {_comment(header)} -->
<plist version="1.0">
<dict>
\t<key>PayloadContent</key>
\t<array>
\t\t<dict>
\t\t\t<key>PayloadType</key>
\t\t\t<string>com.apple.applicationaccess</string>
\t\t\t<key>PayloadVersion</key>
\t\t\t<integer>1</integer>
\t\t\t<key>PayloadIdentifier</key>
\t\t\t<string>org.appban.restrictions.{payload_uuid}</string>
\t\t\t<key>PayloadUUID</key>
\t\t\t<string>{payload_uuid}</string>
\t\t\t<key>PayloadDisplayName</key>
\t\t\t<string>Blocked apps</string>
\t\t\t<key>blockedAppBundleIDs</key>
\t\t\t<array>
{"".join(entries)}\t\t\t</array>
\t\t</dict>
\t</array>
\t<key>PayloadDescription</key>
\t<string>{escape(f"Enforcement: {selection.enforcement}")}</string>
\t<key>PayloadDisplayName</key>
\t<string>{escape(selection.title)}</string>
\t<key>PayloadIdentifier</key>
\t<string>org.appban.blocked-apps.{profile_uuid}</string>
\t<key>PayloadType</key>
\t<string>Configuration</string>
\t<key>PayloadUUID</key>
\t<string>{profile_uuid}</string>
\t<key>PayloadVersion</key>
\t<integer>1</integer>
</dict>
</plist>
"""


# ---- Android Management API ----------------------------------------------------------------------------------

_ANDROID = "Android Management API policy (applications with installType BLOCKED)"


def android(selection: Selection) -> tuple[str, dict[str, Any]]:
    """The policy JSON and, for the file beside it, its header, enforcement status and one citation a package."""
    packages = _packages(selection.apps)
    applications = [{"packageName": p, "installType": "BLOCKED"} for _, p in packages]
    citations = {
        "summary": selection.header(_ANDROID, _without(selection.apps, packages, "Android package")),
        "enforcement": selection.enforcement,
        "rulebook_version": selection.rulebook_version,
        "bundle": selection.bundle,
        "citations": [
            {
                "packageName": p,
                "enforcement": wording(status_of(app.decision.verdict.value, app.decision.enforcement.value)),
                "citation": app.citation,
            }
            for app, p in packages
        ],
    }
    return json.dumps({"applications": applications}, indent=2) + "\n", citations


def _comment(text: str) -> str:
    # "--" may not appear inside an XML comment.
    return escape(text).replace("--", "- -")
