"""Screen app-store catalogs and device inventories: identify covered apps, then let the engine judge.

Each row is resolved to a known app (exact identifier, name and publisher, or look-alike), given the
transaction category its kind implies (listing -> app_store_distribution, listing update ->
app_store_update, government-managed device -> government_device, other devices -> user_personal_use)
and decided at its own instant and storefront. A vectorised pre-filter discards the rows that cannot
match any known identifier, name block or publisher before any per-row Python work.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban import safejson
from appban.engine.batch import decide_table
from appban.engine.decide import default_rulebook
from appban.engine.instants import InstantError, parse_instant
from appban.identity.normalize import SUFFIXES
from appban.identity.registry import ID_FIELDS
from appban.identity.resolve import Match, Record, Resolver, key_prefixes
from appban.rulebook.loader import Rulebook, valid_place_code
from appban.screen.columns import ColumnMap, detect, normalise_header
from appban.tablereader import READ_ERROR_COLUMN
from appban.vocabulary import Category

Fleet = Literal["government", "corporate", "personal"]
_LEET_ASCII = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s", "@": "a", "!": "i"}
# The resolver drops trailing marketing words ("Pro", "Lite 2") from a name of several words.
_TRAILING_SUFFIXES = r"(?:[^a-z0-9]+(?:" + "|".join(sorted(SUFFIXES)) + r"))+[^a-z0-9]*$"
# What the resolver cuts off a name (ASCII rows; other rows all go to the resolver): a subtitle after
# " - " (a dash between spaces), ":" or "|" (normalize.split_title), and every word after the first
# (at the ASCII characters str.split() takes for whitespace).
_TITLE_SUBTITLE = r"(?s)(?: - |[:|]).*$"
_LATER_WORDS = r"(?s)[\t\n\x0b\x0c\r\x1c-\x1f ].*$"
_UPDATE_KINDS = {"update", "updated", "listingupdate", "appupdate", "version"}
# Device records that hold their apps as a list: one row per app. Graph managedDevices?$expand=detectedApps
# (https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-manageddevice); Jamf Pro API computer
# and mobile-device inventory, "applications" (GET /api/v1/computers-inventory?section=APPLICATIONS,
# GET /api/v2/mobile-devices/{id}/detail; https://developer.jamf.com/jamf-pro/reference); Kandji's device apps,
# "apps" (GET /api/v1/devices/{device_id}/apps; https://api-docs.kandji.io); Workspace ONE UEM's device apps,
# "DeviceApps" (GET /API/mdm/devices/{id}/apps). Compared as normalised headers.
NESTED_APPS = frozenset({"detectedapps", "applications", "apps", "deviceapps"})
MAX_NESTED_APPS = 1_000_000  # rows an unnested file may grow to
_MATCHED_NAME = "appban:matched name"
_BUNDLE_SUFFIX = r"(?i)\.app\s*$"


@dataclass(frozen=True)
class InventoryOptions:
    where: str = "US"  # storefront or fleet location when the file has no such column
    at: str | None = None  # one instant for every row (otherwise the row's own, or now)
    at_column: str | None = None
    tz: str | None = None
    fleet: Fleet = "corporate"
    mapping: dict[str, str] = field(default_factory=dict)
    kind: str | None = None  # force "catalog" or "devices"


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    column: str
    value: str | None
    message: str

    def __str__(self) -> str:
        shown = f" {self.value!r}" if self.value is not None else ""
        if self.column == "-":  # the whole line, not one field
            return f"{self.file}:{self.line}: {self.message}"
        return f"{self.file}:{self.line}: {self.column}:{shown} {self.message}"


@dataclass
class ScreenResult:
    findings: pa.Table
    errors: list[RowError]
    rows: int
    columns: ColumnMap


FINDING_COLUMNS = (
    "file", "line", "record_name", "record_publisher", "record_id", "listing_or_device", "app", "app_name", "match",
    "confidence", "matched_field", "reason", "source", "transaction", "where", "at",
)  # fmt: skip


_FINDINGS_SCHEMA = (
    pa.schema([(name, pa.string()) for name in FINDING_COLUMNS] + [("facts", pa.string())])
    .set(FINDING_COLUMNS.index("line"), pa.field("line", pa.int64()))
    .set(FINDING_COLUMNS.index("confidence"), pa.field("confidence", pa.float64()))
    .set(FINDING_COLUMNS.index("at"), pa.field("at", pa.timestamp("s", tz="UTC")))
)


class Screener:
    """Screens tables against one rulebook and registry; reuse it across files of one run."""

    def __init__(self, rulebook: Rulebook | None = None, options: InventoryOptions | None = None):
        self.rulebook = rulebook or default_rulebook()
        self.options = options or InventoryOptions()
        self.resolvers: dict[str, Resolver] = {}
        base = self.resolver(self.options.where.upper())
        keys = base.blocking_keys()
        self._id_keys = pa.array(sorted(keys.identifiers))
        self._all_keys = pa.array(sorted(keys.name_keys))
        self._fuzzy_tokens = pa.array(sorted(keys.fuzzy_tokens))
        self._short = keys.short_keys
        self._head_prefixes = {length: pa.array(sorted(cut)) for length, cut in keys.head_prefixes.items()}
        self._head_short = keys.head_short
        self._careful_keys = pa.array(sorted(keys.careful_keys))
        # A publisher's key (legal forms dropped) starts its squashed text: rows are kept by the first
        # characters of their publisher, as names are by head_prefixes (the resolver then compares keys whole).
        self._publisher_prefixes = {
            length: pa.array(sorted(cut)) for length, cut in key_prefixes(keys.publisher_keys).items()
        }

    def resolver(self, where: str) -> Resolver:
        found = self.resolvers.get(where)
        if found is None:
            first = next(iter(self.resolvers.values()), None)
            found = first.at(where) if first else Resolver(self.rulebook, where=where)
            self.resolvers[where] = found
        return found

    # --- the vectorised pre-filter --------------------------------------------------------------

    def candidates(self, table: pa.Table, roles: dict[str, str]) -> np.ndarray:
        """Rows that might match: a known identifier, a name sharing a block with an alias, a known
        publisher, or anything non-ASCII (left to the full normaliser)."""
        n = table.num_rows
        mask = np.zeros(n, dtype=bool)

        def text(role: str) -> pa.Array | None:
            column = roles.get(role)
            if column is None:
                return None
            values = table.column(column).combine_chunks()
            return values if pa.types.is_string(values.type) else values.cast(pa.string())

        def add(flags: pa.Array) -> None:
            nonlocal mask
            mask |= pc.fill_null(flags, False).to_numpy(zero_copy_only=False)

        for role in (*ID_FIELDS, "id"):
            values = text(role)
            if values is not None:
                add(pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(values)), value_set=self._id_keys))
        for role in ("name", "publisher"):
            values = text(role)
            if values is None:
                continue
            add(pc.invert(pc.string_is_ascii(values)))
            key = pc.ascii_lower(values)
            if role == "name":
                for old, new in _LEET_ASCII.items():
                    key = pc.replace_substring(key, old, new)
            words = key
            key = pc.replace_substring_regex(words, r"[^a-z0-9]", "")
            if role == "name":
                add(pc.is_in(key, value_set=self._all_keys))
                mask |= self._heads(values, words, key, mask)
                stripped = pc.replace_substring_regex(words, _TRAILING_SUFFIXES, "")
                add(pc.is_in(pc.replace_substring_regex(stripped, r"[^a-z0-9]", ""), value_set=self._all_keys))
                length = pc.cast(pc.utf8_length(key), pa.string())
                for block in (pc.utf8_slice_codeunits(key, 0, 3), pc.utf8_slice_codeunits(key, -3)):
                    token = pc.binary_join_element_wise(block, length, ":")
                    add(pc.is_in(token, value_set=self._fuzzy_tokens))
                for short in self._short:
                    add(pc.starts_with(key, short))
            else:
                for length, cut in self._publisher_prefixes.items():
                    add(pc.is_in(pc.utf8_slice_codeunits(key, 0, length), value_set=cut))
        return mask

    def _heads(self, values: pa.Array, words: pa.Array, key: pa.Array, kept: np.ndarray) -> np.ndarray:
        """Rows whose name before a store subtitle, or whose first word, is a known name.

        Such a head's key starts the row's key, so only rows whose key starts like an alias key (and the
        few with "$", "@" or "!", which the careful key drops but the pre-filter reads as letters) are cut:
        the regular expressions run on a few rows, not all. Rows starting with a short key are kept
        already (short_keys)."""
        maybe = pa.repeat(False, len(key))
        for length, cut in self._head_prefixes.items():
            maybe = pc.or_(maybe, pc.is_in(pc.utf8_slice_codeunits(key, 0, length), value_set=cut))
        for short in self._head_short:
            maybe = pc.or_(maybe, pc.starts_with(key, short))
        for mark in "$@!":
            maybe = pc.or_(maybe, pc.match_substring(values, mark))
        rows = np.flatnonzero(pc.fill_null(maybe, False).to_numpy(zero_copy_only=False) & ~kept)
        found = np.zeros(len(kept), dtype=bool)
        if not len(rows):
            return found
        picked = pa.array(rows, pa.int64())
        hit = np.zeros(len(rows), dtype=bool)
        # Digits read as letters against disguise keys; as written against careful keys.
        for lowered, known in (
            (words.take(picked), self._all_keys),
            (pc.ascii_lower(values.take(picked)), self._careful_keys),
        ):
            for part in (_TITLE_SUBTITLE, _LATER_WORDS):
                head = pc.replace_substring_regex(lowered, part, "")
                head_key = pc.replace_substring_regex(head, r"[^a-z0-9]", "")
                hit |= pc.fill_null(pc.is_in(head_key, value_set=known), False).to_numpy(zero_copy_only=False)
        found[rows[hit]] = True
        return found

    # --- screening --------------------------------------------------------------------------------

    def screen(
        self, table: pa.Table, file: str = "-", line_of: Callable[[int], int] = lambda row: row + 2
    ) -> ScreenResult:
        options = self.options
        errors: list[RowError] = []
        if READ_ERROR_COLUMN in table.column_names:
            # Lines the reader could not read: reported here, and only the readable rows screened.
            table, line_of, errors = _unreadable(table, file, line_of)
            if table.num_columns == 0:  # not one line read: no columns to screen, only the lines to show
                shown = "\n".join(f"  {e.file}:{e.line}: {e.message}" for e in errors[:20])
                more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
                raise ValueError(f"no line could be read:\n{shown}{more}")
        if table.num_columns == 0:  # an empty page ({"value": []}): nothing to screen, and nothing wrong
            table = pa.table({"name": pa.array([], pa.string())})
        table, line_of = _unnest_apps(table, file, line_of, errors)
        columns = detect(table.column_names, options.mapping, options.kind)
        roles = dict(columns.roles)
        if options.at_column:
            if options.at_column not in table.column_names:
                raise ValueError(f"--at-column {options.at_column!r}: no such column")
            roles["at"] = options.at_column
        if options.at:
            roles.pop("at", None)
        fixed_at = parse_instant(options.at, options.tz) if options.at else None
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)

        matched_roles = dict(roles)
        if "name" in roles:
            # Names are matched without a macOS bundle's ".app" ("WeChat.app", as Jamf Pro lists a Mac's
            # applications: "Safari.app" in https://developer.jamf.com/jamf-pro/reference/findcomputerapplicationsbynameinventory).
            names = table.column(roles["name"])
            if not pa.types.is_string(names.type):
                names = names.cast(pa.string())
            table = table.append_column(_MATCHED_NAME, pc.replace_substring_regex(names, _BUNDLE_SUFFIX, ""))
            matched_roles["name"] = _MATCHED_NAME
        candidate_rows = np.flatnonzero(self.candidates(table, matched_roles))
        picked = table.take(pa.array(candidate_rows, pa.int64())) if len(candidate_rows) else table.slice(0, 0)
        values = {role: picked.column(column).to_pylist() for role, column in matched_roles.items()}
        written = picked.column(roles["name"]).to_pylist() if "name" in roles else None

        def cell(role: str, i: int) -> str | None:
            column = values.get(role)
            raw = column[i] if column is not None else None
            if raw is None:
                return None
            text = str(raw).strip()
            return text or None

        out: dict[str, list[object]] = {name: [] for name in FINDING_COLUMNS}
        facts: list[str | None] = []
        for i, row in enumerate(candidate_rows.tolist()):
            line = line_of(row)
            where_text = cell("where", i)
            where = (where_text or options.where).upper()
            if not valid_place_code(where):
                errors.append(RowError(file, line, roles.get("where", "--where"), where_text, "not an ISO 3166 code"))
                continue
            record = Record(
                name=cell("name", i),
                publisher=cell("publisher", i),
                android_package=cell("android_package", i),
                ios_bundle=cell("ios_bundle", i),
                app_store_id=cell("app_store_id", i),
                id=cell("id", i),
            )
            resolver = self.resolver(where)
            if not resolver.resolve(record):
                continue
            at = fixed_at
            if at is None:
                raw_at = cell("at", i)
                if raw_at is None:
                    at = now
                else:
                    try:
                        at = parse_instant(raw_at, options.tz)
                    except InstantError as exc:
                        errors.append(RowError(file, line, roles["at"], raw_at, str(exc)))
                        continue
            # The class follows the row's instant: an app the law reached only later is not covered yet.
            best: Match = resolver.resolve(record, at)[0]
            out["file"].append(file)
            out["line"].append(line)
            as_written = None if written is None or written[i] is None else str(written[i]).strip()
            out["record_name"].append(as_written or None)
            out["record_publisher"].append(record.publisher)
            out["record_id"].append(record.android_package or record.ios_bundle or record.app_store_id or record.id)
            out["listing_or_device"].append(cell("listing_id", i) or cell("device", i))
            out["app"].append(best.app)
            out["app_name"].append(best.app_name)
            out["match"].append(best.kind.value)
            out["confidence"].append(best.confidence)
            out["matched_field"].append(best.field)
            out["reason"].append(best.reason)
            out["source"].append(best.source)
            out["transaction"].append(self.category(columns.kind, cell("kind", i)).value)
            out["where"].append(where)
            out["at"].append(at)
            personal = self.options.fleet == "personal" or (cell("ownership", i) or "").casefold() == "personal"
            facts.append(json.dumps({"personally_owned_device": True}) if personal else None)
        errors.extend(self._missing_identity(table, roles, file, line_of))
        findings = pa.table({**out, "at": out["at"], "facts": facts}, schema=_FINDINGS_SCHEMA)
        decided = decide_table(findings, rulebook=self.rulebook)
        errors.sort(key=lambda e: (e.file, e.line))
        return ScreenResult(decided.drop_columns(["facts"]), errors, table.num_rows, columns)

    def category(self, kind: str, row_kind: str | None) -> Category:
        if kind == "catalog":
            if row_kind and "".join(ch for ch in row_kind.casefold() if ch.isalnum()) in _UPDATE_KINDS:
                return Category.APP_STORE_UPDATE
            return Category.APP_STORE_DISTRIBUTION
        if self.options.fleet == "government":
            return Category.GOVERNMENT_DEVICE
        return Category.USER_PERSONAL_USE

    @staticmethod
    def _missing_identity(
        table: pa.Table, roles: dict[str, str], file: str, line_of: Callable[[int], int]
    ) -> list[RowError]:
        """Rows with neither a name nor an identifier cannot be screened at all."""
        present = [roles[r] for r in ("name", *ID_FIELDS, "id") if r in roles]
        empty = np.ones(table.num_rows, dtype=bool)
        for column in present:
            values = table.column(column)
            if not pa.types.is_string(values.type):
                values = values.cast(pa.string())
            filled = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0), False)
            empty &= ~filled.to_numpy(zero_copy_only=False)
        return [
            RowError(file, line_of(int(row)), "/".join(present), None, "no app name or identifier in this row")
            for row in np.flatnonzero(empty)
        ]


def _nested_apps_column(table: pa.Table) -> str | None:
    """The column holding each record's apps as a JSON array: one named as an app list (NESTED_APPS) with
    some cell that starts like an array. A column of plain text of that name (a CSV's "Apps" holding one
    title) is not one."""
    for name in table.column_names:
        if normalise_header(name) not in NESTED_APPS:
            continue
        values = table.column(name)
        if not pa.types.is_string(values.type):
            continue
        opens = pc.starts_with(pc.utf8_ltrim_whitespace(values), "[")
        if pc.any(opens).as_py():
            return str(name)
    return None


def _unnest_apps(
    table: pa.Table, file: str, line_of: Callable[[int], int], errors: list[RowError]
) -> tuple[pa.Table, Callable[[int], int]]:
    """Device records holding their apps as a list (a JSON array of objects in a column NESTED_APPS names):
    one row per app, with the device's other fields beside it and the device's line. A device's field that
    is an object (Jamf's "general") is spread into one column per field ("general.name"). A device's field of
    the same name as an app's ("id") gives way to the app's. Other tables are returned as they are."""
    nested = _nested_apps_column(table)
    if nested is None:
        return table, line_of
    device_columns = [c for c in table.column_names if c != nested]
    devices = [_spread(device) for device in table.select(device_columns).to_pylist()]
    rows: list[dict[str, Any]] = []
    origin: list[int] = []
    for row, cell in enumerate(table.column(nested).to_pylist()):
        if cell is None or cell == "":
            continue
        try:
            apps = safejson.loads(cell) if isinstance(cell, str) else cell
        except safejson.UnsafeJSON as exc:
            errors.append(RowError(file, line_of(row), nested, None, f"not JSON: {exc}"))
            continue
        if not isinstance(apps, list) or not all(isinstance(app, dict) for app in apps):
            errors.append(RowError(file, line_of(row), nested, None, "not a list of app objects"))
            continue
        if len(rows) + len(apps) > MAX_NESTED_APPS:
            raise ValueError(f"{file}: more than {MAX_NESTED_APPS} apps in {nested!r} lists")
        for app in apps:
            rows.append({**devices[row], **app})
            origin.append(row)
    names = list(dict.fromkeys([*(key for device in devices for key in device), *(key for row in rows for key in row)]))
    if not rows and "name" not in names:
        names.append("name")  # every list empty: no apps to screen, which is no error in the file's columns
    columns = {
        name: pa.array(
            [None if (v := r.get(name)) is None else v if isinstance(v, str) else json.dumps(v) for r in rows],
            pa.string(),
        )
        for name in names
    }
    return pa.table(columns), lambda row: line_of(origin[row])


def _spread(device: dict[str, Any]) -> dict[str, Any]:
    """A device's fields, each object among them (JSON text of one) spread one level into "field.key"
    columns beside the object's own. Cells that are not JSON objects stay as they are."""
    out = dict(device)
    for name, value in device.items():
        if not (isinstance(value, str) and value.startswith("{")):
            continue
        try:
            fields = safejson.loads(value)
        except safejson.UnsafeJSON:
            continue
        if isinstance(fields, dict):
            for key, item in fields.items():
                if item is not None and not isinstance(item, dict | list):
                    out.setdefault(f"{name}.{key}", item)
    return out


def _unreadable(
    table: pa.Table, file: str, line_of: Callable[[int], int]
) -> tuple[pa.Table, Callable[[int], int], list[RowError]]:
    """The readable rows, the line of each of them, and an error for each unreadable row."""
    unreadable = pc.is_valid(table.column(READ_ERROR_COLUMN)).to_numpy(zero_copy_only=False)
    messages = table.column(READ_ERROR_COLUMN).to_pylist()
    errors = [RowError(file, line_of(row), "-", None, messages[row]) for row in np.flatnonzero(unreadable).tolist()]
    kept = np.flatnonzero(~unreadable)
    readable = table.drop_columns([READ_ERROR_COLUMN]).take(pa.array(kept, pa.int64()))
    return readable, lambda row: line_of(int(kept[row])), errors


def inventory_summary(findings: pa.Table) -> dict[str, Any]:
    """Counts by app and verdict, by match kind, and by storefront."""
    by_app: dict[str, dict[str, int]] = {}
    by_match: dict[str, int] = {}
    by_where: dict[str, int] = {}
    for row in findings.select(["app_name", "verdict", "match", "where"]).to_pylist():
        counts = by_app.setdefault(row["app_name"], {})
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
        by_match[row["match"]] = by_match.get(row["match"], 0) + 1
        by_where[row["where"]] = by_where.get(row["where"], 0) + 1
    return {"by_app": dict(sorted(by_app.items())), "by_match": by_match, "by_where": dict(sorted(by_where.items()))}
