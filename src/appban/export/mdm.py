"""The blocked-app list that follows from the rulebook at an instant, in the shapes MDM systems import.

- intune: a Graph device-configuration body (iOS or Android) whose compliantAppsList lists the apps
  with compliantAppListType "appsNotInListCompliant"; citations go in the profile's description.
- jamf: a configuration profile (.mobileconfig) with a com.apple.applicationaccess payload whose
  blockedAppBundleIDs lists the bundle IDs, each preceded by an XML comment with its citation.
- android: an Android Management API policy whose applications have installType BLOCKED. The policy
  format has no comment or description field, so the citations are returned separately.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from appban.engine.decide import Decision, evaluate
from appban.engine.instants import iso
from appban.engine.law import resolve
from appban.identity.registry import RegistryFile
from appban.rulebook.loader import Rulebook
from appban.vocabulary import Category, Verdict


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
    def citation(self) -> str:
        cites = "; ".join(c.cite for c in self.decision.citations)
        return f"{self.name}: {self.decision.verdict.value} at {self.decision.at} ({cites})"


def blocked_apps(
    rulebook: Rulebook,
    registry: RegistryFile,
    where: str,
    at: dt.datetime,
    category: Category,
    include_enjoined: bool = False,
) -> list[BlockedApp]:
    """Every registry app the law prohibits (optionally: or enjoins) for `category` in `where` at `at`."""
    law = resolve(rulebook)
    wanted = {Verdict.PROHIBITED} | ({Verdict.ENJOINED} if include_enjoined else set())
    out: list[BlockedApp] = []
    for app, identity in registry.apps.items():
        decision = evaluate(law, app, category, where, at, {}, later=False)  # an export is a snapshot at `at`
        if decision.verdict not in wanted:
            continue
        company = rulebook.company_of(app)
        publishers = registry.publishers.get(company, [])
        out.append(
            BlockedApp(
                app=app,
                name=rulebook.subjects.subjects[app].name,
                decision=decision,
                android_packages=[i.value for i in identity.android_package],
                ios_bundles=[i.value for i in identity.ios_bundle],
                app_store_ids=[i.value for i in identity.app_store_id],
                publisher=publishers[0].value if publishers else rulebook.subjects.companies[company].name,
            )
        )
    return out


def _header(apps: list[BlockedApp], where: str, at: dt.datetime, category: Category, version: str) -> str:
    return f"appban blocked apps for {category.value} in {where} at {iso(at)} (rulebook {version}). " + " | ".join(
        app.citation for app in apps
    )


def intune(apps: list[BlockedApp], where: str, at: dt.datetime, category: Category, version: str, platform: str) -> str:
    if platform == "ios":
        items = [
            {
                "@odata.type": "#microsoft.graph.appleAppListItem",
                "name": app.name,
                "publisher": app.publisher,
                "appStoreUrl": f"https://apps.apple.com/app/id{store_id}",
                "appId": app.ios_bundles[0] if app.ios_bundles else None,
            }
            for app in apps
            for store_id in app.app_store_ids
        ]
        kind = "#microsoft.graph.iosGeneralDeviceConfiguration"
    else:
        items = [
            {
                "@odata.type": "#microsoft.graph.appListItem",
                "name": app.name,
                "publisher": app.publisher,
                "appStoreUrl": f"https://play.google.com/store/apps/details?id={package}",
                "appId": package,
            }
            for app in apps
            for package in app.android_packages
        ]
        kind = "#microsoft.graph.androidGeneralDeviceConfiguration"
    body = {
        "@odata.type": kind,
        "displayName": f"appban: blocked apps ({category.value}, {where}, {at.date().isoformat()})",
        "description": _header(apps, where, at, category, version),
        "compliantAppListType": "appsNotInListCompliant",
        "compliantAppsList": items,
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def jamf(apps: list[BlockedApp], where: str, at: dt.datetime, category: Category, version: str) -> str:
    entries = []
    for app in apps:
        for bundle in app.ios_bundles:
            entries.append(f"\t\t\t\t<!-- {_comment(app.citation)} -->\n\t\t\t\t<string>{escape(bundle)}</string>\n")
    # Stable UUIDs: the same law, place and instant give the same profile, so re-imports replace it.
    seed = f"appban:{version}:{category.value}:{where}:{iso(at)}"
    profile_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
    payload_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, seed + ":restrictions"))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- {_comment(_header(apps, where, at, category, version))} -->
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
\t<key>PayloadDisplayName</key>
\t<string>{escape(f"appban: blocked apps ({category.value}, {where}, {at.date().isoformat()})")}</string>
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


def android(apps: list[BlockedApp]) -> tuple[str, list[dict[str, str]]]:
    """The policy JSON and, beside it, one citation per blocked package."""
    applications = [{"packageName": p, "installType": "BLOCKED"} for app in apps for p in app.android_packages]
    citations = [{"packageName": p, "citation": app.citation} for app in apps for p in app.android_packages]
    return json.dumps({"applications": applications}, indent=2) + "\n", citations


def _comment(text: str) -> str:
    # "--" may not appear inside an XML comment.
    return escape(text).replace("--", "- -")
