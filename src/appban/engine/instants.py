"""Input instants: ISO 8601 with an offset, or a naive timestamp plus an explicitly given zone."""

from __future__ import annotations

import datetime as dt
import re

from appban.rulebook.schema import zone_from_name

#: Longer than any ISO 8601 instant (with nanoseconds and an offset); longer text is refused unread.
MAX_INSTANT_CHARS = 64
# Printable ASCII only: CPython's fromisoformat stops reading at a NUL, so "2020-10-15T12:00Z\x00junk" would
# parse and its junk end up in the audit record as the instant asked about.
_PLAIN = re.compile(r"[\x20-\x7e]*")


class InstantError(ValueError):
    pass


#: How to give the zone of an instant written without an offset, named as the command line and the API name it.
ZONE_FIX = "name its zone with --tz ZONE (tz in the API), e.g. --tz America/New_York"
#: The same for a file's rows, which may also carry the zone in a column of their own.
ROW_ZONE_FIX = "name its zone in a tz column or with --tz ZONE (tz in the API), e.g. --tz America/New_York"


def parse_instant(value: str | dt.datetime, tz: str | None = None, *, zone_fix: str = ZONE_FIX) -> dt.datetime:
    """An exact UTC instant. A value without an offset is an error unless `tz` names its zone; the error says
    how (`zone_fix`) and does not repeat the value, which every caller shows beside it (a file's row, a field).

    Instants are those of Python's calendar in UTC (years 1 to 9999): `0001-01-01T00:00:00+14:00`, which
    falls before it, is an InstantError like any other malformed text, never an OverflowError.
    """
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        if not isinstance(value, str):
            raise InstantError(f"{_shown(value)} is not text (an ISO 8601 instant, e.g. 2020-11-12T23:59:00-05:00)")
        if len(value) > MAX_INSTANT_CHARS or not _PLAIN.fullmatch(value):
            raise InstantError(f"{_shown(value)} is not an ISO 8601 instant (e.g. 2020-11-12T23:59:00-05:00)")
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise InstantError(f"{value!r} is not an ISO 8601 instant (e.g. 2020-11-12T23:59:00-05:00)") from exc
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        if tz is None:
            raise InstantError(f"has no UTC offset; add one (e.g. -05:00 or Z) or {zone_fix}")
        try:
            zone = zone_from_name(tz)
        except ValueError as exc:
            raise InstantError(str(exc)) from exc
        stamp = stamp.replace(tzinfo=zone)
    try:
        return stamp.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise InstantError(f"{_shown(value)} falls outside the years 0001 to 9999 in UTC") from None


def iso(instant: dt.datetime) -> str:
    """UTC, second precision, with a Z: the one way instants are written in output."""
    return instant.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _shown(value: object) -> str:
    """A value for an error message: its repr, cut short (the text came from outside and may be huge)."""
    shown = repr(value)
    return shown if len(shown) <= MAX_INSTANT_CHARS + 2 else shown[:MAX_INSTANT_CHARS] + "…"
