"""Input instants: ISO 8601 with an offset, or a naive timestamp plus an explicitly given zone."""

from __future__ import annotations

import datetime as dt

from appban.rulebook.schema import zone_from_name


class InstantError(ValueError):
    pass


def parse_instant(value: str | dt.datetime, tz: str | None = None) -> dt.datetime:
    """An exact UTC instant. A value without an offset is an error unless `tz` names its zone."""
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise InstantError(f"{value!r} is not an ISO 8601 instant (e.g. 2020-11-12T23:59:00-05:00)") from exc
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        if tz is None:
            raise InstantError(
                f"{value!s} has no UTC offset; add one (e.g. -05:00 or Z) or give the time zone explicitly"
            )
        try:
            zone = zone_from_name(tz)
        except ValueError as exc:
            raise InstantError(str(exc)) from exc
        stamp = stamp.replace(tzinfo=zone)
    return stamp.astimezone(dt.UTC)


def iso(instant: dt.datetime) -> str:
    """UTC, second precision, with a Z: the one way instants are written in output."""
    return instant.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
