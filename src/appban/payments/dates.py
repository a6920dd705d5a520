"""A payment's instant from a date column and a time-of-day column, as PayPal's activity download and Square's
transactions export write them ("01/03/2023" and "13:57:10"; "2022-11-10" and "2:30:00 PM").

The two are joined into one ISO 8601 local time ("2023-01-03 13:57:10"), read afterwards in the zone of the row
(its zone column) like any other time without an offset. A date is year first (2022-11-10), or day and month
before a four-digit year: with a point (03.01.2023) day first, as European exports write it; with a slash or
dash in the order the file shows (a first number above 12 is a day, a second one a month) or the caller names
(`--date-order dmy` or `mdy`). A date that could be either, in a file that has not shown its order, is not
guessed: its row is reported. Column at a time; text from the file goes through Arrow's RE2 patterns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban.reading.stats import Mask
from appban.reading.values import flags, to_text

DATE_ORDERS = ("dmy", "mdy")
_YEAR_FIRST = r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})$"
_YEAR_LAST = r"^(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})[-/.](?P<y>\d{4})$"
_CLOCK = (
    r"^(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,6}))?)?"
    r"\s*(?P<half>[AaPp]\.?\s?[Mm]\.?)?$"  # 2:30:00 PM, 2:30 p.m.
)


class DateOrder:
    """The order of a file's day and month, once named or shown; kept across the file's batches."""

    def __init__(self, named: str | None = None) -> None:
        if named is not None and named not in DATE_ORDERS:
            raise ValueError(f"--date-order must be {' or '.join(DATE_ORDERS)}, not {named[:64]!r}")
        self.order = named
        self.named = named is not None


def join_date_time(dates: Any, times: Any, order: DateOrder) -> tuple[Any, Mask]:
    """ISO local times ("2023-01-03 13:57:10") from a date and a time-of-day column, null where either is
    missing or unreadable; and the rows whose date could be day/month or month/day (not read)."""
    date_text = to_text(dates.cast(pa.string()) if not pa.types.is_string(dates.type) else dates)
    count = len(date_text)
    year = month = day = pa.nulls(count, pa.string())
    first = pc.extract_regex(date_text, _YEAR_FIRST)
    year_first = flags(first.is_valid())
    if year_first.any():
        year = pc.if_else(year_first, first.field("y"), year)
        month = pc.if_else(year_first, first.field("m"), month)
        day = pc.if_else(year_first, first.field("d"), day)
    last = pc.extract_regex(date_text, _YEAR_LAST)
    year_last = flags(last.is_valid())
    ambiguous = np.zeros(count, dtype=np.bool_)
    if year_last.any():
        a_text, b_text = last.field("a"), last.field("b")
        a = np.asarray(pc.if_else(year_last, a_text, "0").cast(pa.int32()).to_numpy(zero_copy_only=False))
        b = np.asarray(pc.if_else(year_last, b_text, "0").cast(pa.int32()).to_numpy(zero_copy_only=False))
        pointed = year_last & flags(pc.equal(last.field("sep"), "."))
        if not order.named and order.order is None:
            slashed = year_last & ~pointed
            day_first, month_first = (slashed & (a > 12)).any(), (slashed & (b > 12)).any()
            if day_first != month_first:
                order.order = "dmy" if day_first else "mdy"
        if order.order is not None:
            dmy = pointed | (year_last & (order.order == "dmy"))
        else:  # each row by its own numbers: unread when both could be the month
            dmy = pointed | (year_last & (a > 12))
            ambiguous = year_last & ~pointed & (a <= 12) & (b <= 12) & (a != b)
        use = pa.array(year_last & ~ambiguous)
        year = pc.if_else(use, last.field("y"), year)
        month = pc.if_else(use, pc.if_else(pa.array(dmy), b_text, a_text), month)
        day = pc.if_else(use, pc.if_else(pa.array(dmy), a_text, b_text), day)
    date = pc.binary_join_element_wise(
        year, pc.utf8_lpad(month, width=2, padding="0"), pc.utf8_lpad(day, width=2, padding="0"), "-"
    )
    return pc.binary_join_element_wise(date, _clock(times, count), " "), ambiguous


def _clock(times: Any, count: int) -> Any:
    """Times of day as HH:MM:SS(.ffffff), 24-hour; null where missing or unreadable."""
    if times is None:
        return pa.nulls(count, pa.string())
    text = to_text(times.cast(pa.string()) if not pa.types.is_string(times.type) else times)
    parts = pc.extract_regex(text, _CLOCK)
    valid = parts.is_valid()
    written = pc.if_else(valid, parts.field("h"), "0").cast(pa.int32())
    hours = written
    half = pc.utf8_lower(pc.utf8_slice_codeunits(parts.field("half"), 0, 1))
    twelve = pc.not_equal(half, "")
    # 12-hour clocks: 12 AM is midnight, 1-11 PM add twelve; an hour of 0 or above 12 with AM/PM is no time.
    hours = pc.if_else(pc.and_(twelve, pc.equal(hours, 12)), 0, hours)
    hours = pc.if_else(pc.equal(half, "p"), pc.add(hours, 12), hours)
    bad_half = pc.and_(twelve, pc.or_(pc.equal(written, 0), pc.greater(written, 12)))
    seconds = pc.if_else(pc.equal(parts.field("s"), ""), "00", parts.field("s"))
    fraction = pc.if_else(pc.equal(parts.field("f"), ""), "", pc.binary_join_element_wise(".", parts.field("f"), ""))
    clock = pc.binary_join_element_wise(
        pc.utf8_lpad(hours.cast(pa.string()), width=2, padding="0"), parts.field("mi"), seconds, ":"
    )
    clock = pc.binary_join_element_wise(clock, fraction, "")
    return pc.if_else(pc.and_(valid, pc.invert(pc.fill_null(bad_half, False))), clock, pa.scalar(None, pa.string()))
