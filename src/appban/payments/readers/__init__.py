"""The payment file readers, one module per format, in the order detection tries them."""

from __future__ import annotations

from collections.abc import Mapping

from appban.payments.readers.iso20022 import Iso20022Reader
from appban.payments.readers.table import PaymentTableReader
from appban.payments.records import PaymentReader


def make_readers(
    column_map: Mapping[str, str] | None = None,
    tz: str | None = None,
    constants: Mapping[str, str] | None = None,
    decimal: str | None = None,
    date_order: str | None = None,
) -> list[PaymentReader]:
    """One reader per format. `column_map`, `constants` (whole-file values), `decimal` (the decimal mark) and
    `date_order` (dmy or mdy, for dates written with slashes) are for the table reader; `tz` is the zone of
    times without one."""
    return [Iso20022Reader(tz=tz or "UTC"), PaymentTableReader(column_map, tz, constants, decimal, date_order)]


READER_NAMES = ("iso20022", "table")

__all__ = ["READER_NAMES", "Iso20022Reader", "PaymentTableReader", "make_readers"]
