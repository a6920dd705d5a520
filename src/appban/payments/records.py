"""Payment records: one Arrow schema for every payment format, and the reader interface.

A reader turns one file (a processor's CSV/JSON-lines/Parquet export, an ISO 20022 credit-transfer
message) into RECORD_SCHEMA batches. It reports a record it cannot read (bad XML, a missing amount, an
unknown currency, an impossible date) in `ReadStats` with its location and goes on with the rest.
Readers only read: which service a payment goes through, and whether that is prohibited, is decided
later (appban.payments.markers, appban.screen.payments).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from appban.reading.stats import DEFAULT_BATCH_ROWS, ReadError, ReadStats

__all__ = ["AMOUNT", "DEFAULT_BATCH_ROWS", "RECORD_SCHEMA", "PaymentReader", "ReadError", "ReadStats"]

# ISO 20022 amounts have at most 18 digits, 5 of them after the point (ActiveCurrencyAndAmount).
AMOUNT = pa.decimal128(23, 5)

RECORD_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),  # when the payment was made (accepted, created or settled)
        ("id", pa.string()),  # the payment's own identifier (end-to-end id, transaction id, charge id)
        ("amount", AMOUNT),
        ("currency", pa.string()),  # ISO 4217 alphabetic code, upper case
        ("kind", pa.string()),  # "payment" (to a merchant, through a processor) or "transfer" (credit transfer)
        ("method", pa.string()),  # the processor's payment-method type ("card", "wechat_pay", "alipay")
        ("wallet", pa.string()),  # wallet or scheme name as written ("WeChat Pay", "Alipay+")
        ("processor", pa.string()),  # processor, acquirer or payment service provider
        ("processor_country", pa.string()),  # ISO 3166-1 alpha-2, upper case
        ("merchant", pa.string()),  # merchant name or statement descriptor
        ("merchant_country", pa.string()),
        ("payer", pa.string()),
        ("payer_country", pa.string()),
        ("payer_type", pa.string()),  # "individual" or "organisation"; null when the record does not say
        ("payer_agent", pa.string()),  # the payer's institution: BIC, or its name when there is no BIC
        ("payee", pa.string()),
        ("payee_country", pa.string()),
        ("payee_type", pa.string()),
        ("payee_agent", pa.string()),
        ("purpose", pa.string()),  # ISO 20022 purpose code ("SALA") or the export's category
        ("remittance", pa.string()),  # free-text remittance information or description
        # null for a payment; for a record of an attempt that did not complete (a refused or cancelled
        # authorisation), what the export says of it ("Record Type: Refused"). Such a record is never decided.
        ("outcome", pa.string()),
        ("source", pa.string()),  # the reader's name, e.g. "pacs.008"
        ("line", pa.int64()),  # 1-based line where the record starts (row number + 1 for Parquet)
    ]
)
FIELDS = tuple(RECORD_SCHEMA.names)
# The fields a column map may fill; `source`, `line` and `outcome` always come from the reader.
MAPPABLE = tuple(name for name in FIELDS if name not in ("source", "line", "outcome"))
PARTY_TYPES = ("individual", "organisation")


class PaymentReader(Protocol):
    """One payment file format."""

    name: str

    def sniff(self, path: Path, head: bytes) -> bool:
        """Whether the file name and `head` (its first decompressed bytes) look like this format."""
        ...

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """RECORD_SCHEMA batches of at most `batch_rows` rows; unreadable records are reported in `stats`."""
        ...
