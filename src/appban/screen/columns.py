"""Which input column plays which role: named export formats first, then header synonyms, then --map."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = (
    "name",
    "publisher",
    "android_package",
    "ios_bundle",
    "app_store_id",
    "id",
    "where",
    "at",
    "kind",
    "device",
    "ownership",
    "listing_id",
    "platform",
)

# Header synonyms, compared after lower-casing and dropping everything but letters and digits.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("name", "appname", "applicationname", "title", "app", "application", "listingname", "appdisplayname"),
    "publisher": ("publisher", "applicationpublisher", "developer", "developername", "seller", "vendor", "artistname"),
    "android_package": ("packagename", "package", "androidpackage", "packageid", "androidpackagename"),
    "ios_bundle": ("bundleid", "bundleidentifier", "iosbundleid", "cfbundleidentifier"),
    "app_store_id": ("appstoreid", "trackid", "adamid", "itunesid", "appleid"),
    "id": ("appidentifier", "identifier", "applicationidentifier", "packageorbundleid", "appid"),
    "where": ("storefront", "storefrontcountry", "country", "where", "market", "countrycode"),
    # Jamf Pro API mobile-device inventory: general.lastInventoryUpdateDate once spread.
    "at": (
        "lastupdated",
        "lastupdate",
        "lastupdatetime",
        "updatedat",
        "at",
        "timestamp",
        "lastinventoryupdate",
        "generallastinventoryupdatedate",
    ),
    "kind": ("kind", "listingkind", "eventtype", "event"),
    # Jamf Pro API inventory's "general" object ("general.name" for computers, "general.displayName" for mobile
    # devices, once spread), Kandji's device_id and Workspace ONE's DeviceFriendlyName.
    "device": (
        "devicename",
        "devicefriendlyname",
        "generalname",
        "generaldisplayname",
        "serialnumber",
        "device",
        "deviceid",
    ),
    "ownership": ("ownership", "ownertype", "deviceownership"),
    "listing_id": ("listingid", "listing"),
    "platform": ("platform", "os"),
}


@dataclass(frozen=True)
class NamedFormat:
    name: str
    kind: str  # "catalog" (store listings) or "devices" (installed apps)
    signature: tuple[str, ...]  # normalised headers that must all be present
    roles: dict[str, str] = field(default_factory=dict)  # role -> normalised header


NAMED_FORMATS = (
    # Intune admin center > Apps > Monitor > Discovered apps > Export (reports AppInvAggregate and
    # AppInvRawData): name and publisher only, no bundle IDs.
    NamedFormat(
        "intune-discovered-apps",
        "devices",
        ("applicationname", "applicationpublisher", "applicationkey"),
        {
            "name": "applicationname",
            "publisher": "applicationpublisher",
            "platform": "platform",
            "device": "devicename",
        },
    ),
    # Microsoft Graph detectedApp collections (GET /deviceManagement/detectedApps, a managed device's
    # detectedApps, or managedDevices?$expand=detectedApps once unnested): displayName, version, sizeInByte,
    # deviceCount, publisher, platform, and an opaque Intune id that is no store identifier
    # (https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-detectedapp).
    *(
        NamedFormat(
            "intune-graph-detected-apps",
            "devices",
            ("displayname", marker),
            {"name": "displayname", "publisher": "publisher", "platform": "platform", "device": "devicename"},
        )
        for marker in ("sizeinbyte", "devicecount")
    ),
    # Jamf Pro mobile device search export with the Applications fields: one row per device and app.
    NamedFormat(
        "jamf-pro-inventory",
        "devices",
        ("appname", "appidentifier", "serialnumber"),
        {"name": "appname", "id": "appidentifier", "device": "displayname", "at": "lastinventoryupdate"},
    ),
    # An app-store catalog: one row per storefront listing, or per listing update.
    NamedFormat(
        "app-store-catalog",
        "catalog",
        ("listingid", "name", "storefront"),
        {
            "listing_id": "listingid",
            "kind": "kind",
            "name": "name",
            "publisher": "publisher",
            "id": "packageid",
            "app_store_id": "storeappid",
            "where": "storefront",
            "at": "lastupdated",
        },
    ),
)


def normalise_header(header: str) -> str:
    return "".join(ch for ch in header.casefold() if ch.isalnum())


@dataclass(frozen=True)
class ColumnMap:
    roles: dict[str, str]  # role -> actual column name
    format: str  # the named format, or "generic"
    kind: str  # "catalog" or "devices"


class ColumnMapError(ValueError):
    pass


def detect(headers: list[str], overrides: dict[str, str] | None = None, kind: str | None = None) -> ColumnMap:
    """Roles for the given headers. Overrides (role -> column) win; unknown roles or columns are errors."""
    by_key = {normalise_header(h): h for h in headers}
    roles: dict[str, str] = {}
    fmt, found_kind = "generic", None
    for named in NAMED_FORMATS:
        if all(key in by_key for key in named.signature):
            fmt, found_kind = named.name, named.kind
            roles = {role: by_key[key] for role, key in named.roles.items() if key in by_key}
            break
    else:
        for role, synonyms in SYNONYMS.items():
            for synonym in synonyms:
                if synonym in by_key and by_key[synonym] not in roles.values():
                    roles[role] = by_key[synonym]
                    break
    for role, column in (overrides or {}).items():
        if role not in ROLES:
            raise ColumnMapError(f"--map: unknown role {role!r} (roles: {', '.join(ROLES)})")
        if column not in headers:
            raise ColumnMapError(f"--map {role}={column}: no column {column!r} (columns: {', '.join(headers)})")
        roles[role] = column
    if not any(role in roles for role in ("name", "android_package", "ios_bundle", "app_store_id", "id")):
        raise ColumnMapError(
            "no column names the app (name, package, bundle ID or App Store ID); use --map name=COLUMN"
        )
    if found_kind is None:
        found_kind = "catalog" if "where" in roles or "listing_id" in roles else "devices"
    return ColumnMap(roles, fmt, kind or found_kind)


def parse_map(text: str | None) -> dict[str, str]:
    """--map name=AppName,id=BundleId"""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        role, sep, column = part.partition("=")
        if not sep:
            raise ColumnMapError(f"--map: {part!r} is not ROLE=COLUMN")
        out[role.strip()] = column.strip()
    return out
