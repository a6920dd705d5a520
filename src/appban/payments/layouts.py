"""Known payment exports (layouts.yaml): which columns of a Stripe or Adyen report hold which record field,
the zone their times are written in, and which rows are not payments. A layout is recognised by its header,
so such a report needs neither --map nor --tz.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import re2  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from appban.payments.records import MAPPABLE
from appban.reading.stats import Mask
from appban.reading.values import check_zone, flags, to_text
from appban.rulebook.loader import Problem, RulebookError, parse_yaml

LAYOUTS_FILE = Path(__file__).with_name("layouts.yaml")
# A report holds one zone or two; a file with more distinct zone values than this is not one, and each value
# looked up may reach the zone database: the rest are reported as unknown.
MAX_ZONES = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Layout(_Strict):
    name: str
    title: str
    sources: list[HttpUrl] = Field(min_length=1)
    note: str | None = None
    # Each entry a column name, or a list of names any one of which will do.
    recognised_by: list[str | list[str]] = Field(min_length=1)
    columns: dict[str, list[str]]
    amount_debit: str | None = None
    zone: str | None = None
    zone_column: str | None = None
    # A column holding the time of day, for a `ts` column holding only the date (appban.payments.dates).
    time_column: str | None = None
    # Fields the export never holds, given for the whole file with --set (Square's transactions export has no
    # currency column).
    needs_set: list[str] = []
    constants: dict[str, str] = {}
    skip: dict[str, list[str]] = {}
    counted: dict[str, list[str]] = {}
    not_completed: dict[str, list[str]] = {}
    implied_method: dict[str, str] = {}


class Zones(_Strict):
    source: HttpUrl
    abbreviations: dict[str, str]
    # Zone names as Rails applications write them ("Pacific Time (US & Canada)"), to IANA zones.
    names_source: HttpUrl | None = None
    names: dict[str, str] = {}


class LayoutSet(_Strict):
    layouts: list[Layout]
    zones: Zones


def normalised(name: str) -> str:
    """A column name as headers are compared: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def load_layouts(path: Path = LAYOUTS_FILE) -> LayoutSet:
    """The layouts, checked: fields are record fields, zones and offsets are valid."""
    problems: list[Problem] = []
    layouts, source = parse_yaml(Path(path), LayoutSet, problems, str(path))
    if layouts is not None:
        for i, layout in enumerate(layouts.layouts):
            for field in (*layout.columns, *layout.constants):
                if field not in MAPPABLE:
                    problems.append(source.problem(("layouts", i, "columns"), f"{field!r} is not a record field"))
            for field in ("ts", "amount", "currency"):
                if field not in layout.columns and field not in layout.constants and field not in layout.needs_set:
                    problems.append(source.problem(("layouts", i, "columns"), f"no column for {field}"))
            if layout.zone is not None:
                _check(layout.zone, source, ("layouts", i, "zone"), problems)
            clash = set(layout.not_completed) & set(layout.skip)
            if clash:
                problems.append(source.problem(("layouts", i, "not_completed"), f"{sorted(clash)} also skipped"))
        for name, offset in layouts.zones.abbreviations.items():
            _check(offset, source, ("zones", "abbreviations", name), problems)
        for name, zone in layouts.zones.names.items():
            _check(zone, source, ("zones", "names", name), problems)
    if problems or layouts is None:
        raise RulebookError(problems)
    return layouts


def _check(zone: str, source: Any, loc: tuple[int | str, ...], problems: list[Problem]) -> None:
    try:
        check_zone(zone)
    except ValueError as exc:
        problems.append(source.problem(loc, str(exc)))


@cache
def default_layouts() -> LayoutSet:
    return load_layouts()


def recognise(columns: list[str], layouts: LayoutSet | None = None) -> Layout | None:
    """The layout whose header the columns hold (the one needing most columns, when several do)."""
    present = {normalised(column) for column in columns}

    def holds(entry: str | list[str]) -> bool:
        names = [entry] if isinstance(entry, str) else entry
        return any(normalised(name) in present for name in names)

    fitting = [layout for layout in (layouts or default_layouts()).layouts if all(map(holds, layout.recognised_by))]
    return max(fitting, key=lambda layout: len(layout.recognised_by), default=None)


# A time column's name that states its zone: "Created (UTC)", created_utc, createdUtc, "Date in GMT", "UTCTime",
# "Time (UTC+8)", "Booking Date UTC-05:00". Written words are split at case changes first, so "outcome" or
# "Cutoff" never reads as UTC. Column names come from the file: RE2, linear in the name.
_CASE_CHANGE = re2.compile(r"([a-z0-9])([A-Z])")
_ACRONYM_END = re2.compile(r"([A-Z]+)([A-Z][a-z])")
_ZONE_WORD = re2.compile(
    r"(?i)(?:^|[^a-z0-9])(?:(?:in|at)\s+)?(?:utc|gmt)"  # the zone word, after "in" or "at" if written so
    r"(?:\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?)?(?:$|[^a-z0-9])"  # an offset from it: +8, -05:00, +0530
)
_MAX_NAME = 200


def _zone_match(name: str) -> tuple[str, Any] | None:
    spaced = _ACRONYM_END.sub(r"\1 \2", _CASE_CHANGE.sub(r"\1 \2", name[:_MAX_NAME]))
    found = _ZONE_WORD.search(spaced)
    return None if found is None else (spaced, found)


def zone_in_name(name: str) -> str | None:
    """The zone a column's own name states for its times: "UTC", or an offset ("+08:00") for "Time (UTC+8)";
    None when the name states none or an offset that cannot be (UTC+25)."""
    matched = _zone_match(name)
    if matched is None:
        return None
    sign, hours, minutes = matched[1].groups()
    if sign is None:
        return "UTC"
    offset = f"{sign}{int(hours):02d}:{minutes or '00'}"
    if int(hours) > 14 or int(minutes or 0) > 59:
        return None
    return "UTC" if offset in ("+00:00", "-00:00") else offset


def without_zone(name: str) -> str | None:
    """The normalised name without the zone it states ("Created date (UTC)" -> "createddate"); None when it
    states none."""
    matched = _zone_match(name)
    if matched is None:
        return None
    spaced, found = matched
    return normalised(spaced[: found.start()] + " " + spaced[found.end() :])


def column_for(name: str, columns: list[str]) -> str | None:
    """The file's own spelling of the column `name` names, if it has one."""
    wanted = normalised(name)
    return next((column for column in columns if normalised(column) == wanted), None)


def row_zones(values: Any, zones: Zones) -> tuple[Any, Mask]:
    """Per row, the zone its zone column names, as an IANA name or an offset ("+02:00"); and the rows whose
    zone is given but not known. A zone is an abbreviation (CET), a Rails zone name ("Pacific Time (US &
    Canada)") or an IANA name. One check per distinct value: a report holds one or two."""
    text = to_text(values)
    distinct = pc.unique(text).drop_null().slice(0, MAX_ZONES).to_pylist()
    known = {name.upper(): offset for name, offset in zones.abbreviations.items()}
    known.update({name.upper(): zone for name, zone in zones.names.items()})
    resolved: dict[str, str] = {}
    for value in distinct:
        offset = known.get(value.upper())
        if offset is not None:
            resolved[value] = offset
            continue
        try:
            resolved[value] = check_zone(value)
        except ValueError:
            continue
    if not resolved:
        return pa.nulls(len(text), pa.string()), flags(pc.is_valid(text))
    names = pa.array(list(resolved))
    zone = pa.array(list(resolved.values())).take(pc.index_in(text, value_set=names))
    unknown = flags(pc.and_(pc.is_valid(text), pc.is_null(zone)))
    return zone, unknown


def skipped_rows(values: Any, skip: list[str]) -> Mask:
    """The rows whose value is one of `skip` (compared without case or blanks)."""
    return listed_rows(values, skip)


def listed_rows(values: Any, listed: list[str]) -> Mask:
    """The rows whose value is one of `listed` (compared without case or surrounding blanks)."""
    text = pc.utf8_lower(to_text(values))
    return np.asarray(flags(pc.is_in(text, value_set=pa.array([value.lower() for value in listed]))), dtype=np.bool_)
