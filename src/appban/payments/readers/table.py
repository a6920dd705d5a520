"""Card and wallet transaction exports (CSV, JSON lines or Parquet), read through a column map.

The map names, for each record field, the column that holds it: `{"ts": "Created (UTC)", "method":
"Payment Method Type", "payer_country": "Card Issue Country"}`. Fields the map leaves out are looked for
among the columns by their usual names in processors' exports (see SYNONYMS; compared without case,
spaces or punctuation). `ts`, `amount` and `currency` are required.

A row is reported with its line and dropped when its time, amount or currency is missing or unreadable
(an impossible date, "12,50", an unknown currency code) or a country is not an ISO 3166 code. Amounts
are decimals with at most 5 places; a negative one (a refund) is kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from appban.network.records import make_batch
from appban.payments.records import DEFAULT_BATCH_ROWS, MAPPABLE, RECORD_SCHEMA, ReadStats
from appban.payments.values import to_amount, to_country, to_currency, to_kind, to_party_type
from appban.reading.batches import rebatch
from appban.reading.columnar import file_columns, read_columns
from appban.reading.stats import Columns, Lines
from appban.reading.values import (
    check_zone,
    describe_time,
    describe_value,
    null_mask,
    reject,
    select,
    to_text,
    to_timestamp,
)

REQUIRED = ("ts", "amount", "currency")
# Usual column names per field, normalised (lower case, letters and digits only). First match wins.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "createdutc", "created", "createdat", "timestamp", "datetime", "transactiondate", "paymentdate",
           "date", "time", "creationdate"),
    "id": ("id", "transactionid", "paymentid", "chargeid", "pspreference", "reference", "endtoendid"),
    "amount": ("amount", "grossamount", "transactionamount", "value", "authorisedamount", "capturedamount"),
    "currency": ("currency", "currencycode", "ccy", "transactioncurrency"),
    "kind": ("kind", "transactionkind", "flow"),
    "method": ("method", "paymentmethod", "paymentmethodtype", "paymentmethodvariant", "paytype", "sourcetype",
               "paymenttype"),
    "wallet": ("wallet", "wallettype", "walletname", "scheme"),
    "processor": ("processor", "acquirer", "psp", "gateway", "provider", "paymentprovider"),
    "processor_country": ("processorcountry", "acquirercountry", "pspcountry"),
    "merchant": ("merchant", "merchantname", "statementdescriptor", "descriptor", "merchantaccount"),
    "merchant_country": ("merchantcountry", "merchantcountrycode"),
    "payer": ("payer", "payername", "customer", "customername", "sender", "sendername", "debtor", "shopper"),
    "payer_country": ("payercountry", "customercountry", "sendercountry", "debtorcountry", "shoppercountry",
                      "cardissuecountry", "issuercountry"),
    "payer_type": ("payertype", "customertype", "sendertype", "debtortype"),
    "payer_agent": ("payeragent", "payerbank", "payerbic", "debtoragent", "senderbank"),
    "payee": ("payee", "payeename", "recipient", "recipientname", "beneficiary", "creditor"),
    "payee_country": ("payeecountry", "recipientcountry", "beneficiarycountry", "creditorcountry"),
    "payee_type": ("payeetype", "recipienttype", "beneficiarytype", "creditortype"),
    "payee_agent": ("payeeagent", "payeebank", "payeebic", "creditoragent", "beneficiarybank"),
    "purpose": ("purpose", "purposecode", "category"),
    "remittance": ("remittance", "description", "memo", "note", "remittanceinformation"),
}  # fmt: skip
_TEXT_FIELDS = ("id", "method", "wallet", "processor", "merchant", "payer", "payer_agent", "payee", "payee_agent",
                "purpose", "remittance")  # fmt: skip
_COUNTRY_FIELDS = ("processor_country", "merchant_country", "payer_country", "payee_country")


def normalised(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


class PaymentTableReader:
    name = "table"

    def __init__(self, column_map: Mapping[str, str] | None = None, tz: str | None = None) -> None:
        unknown = sorted(set(column_map or {}) - set(MAPPABLE))
        if unknown:
            raise ValueError(f"cannot map {', '.join(unknown)}: the fields are {', '.join(MAPPABLE)}")
        self.column_map = dict(column_map or {})
        self.tz = check_zone(tz) if tz else None

    def sniff(self, path: Path, head: bytes) -> bool:
        return all(field in self.mapping(file_columns(path, head)) for field in REQUIRED)

    def mapping(self, columns: list[str]) -> dict[str, str]:
        """Record field -> column: the map's choices, then the usual names among the columns not yet taken."""
        chosen = {field: column for field, column in self.column_map.items() if column in columns}
        by_name: dict[str, str] = {}
        for column in columns:
            by_name.setdefault(normalised(column), column)
        for field, names in SYNONYMS.items():
            if field in chosen or field in self.column_map:
                continue
            taken = set(chosen.values())
            found = next((by_name[n] for n in names if n in by_name and by_name[n] not in taken), None)
            if found is not None:
                chosen[field] = found
        return chosen

    def checked_mapping(self, path: Path) -> dict[str, str]:
        columns = file_columns(path)
        mapping = self.mapping(columns)
        missing = [f"{column!r} (for {field})" for field, column in self.column_map.items() if field not in mapping]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)}; the columns are {', '.join(columns)}")
        absent = [field for field in REQUIRED if field not in mapping]
        if absent:
            hint = "--map " + ",".join(f"{field}=COLUMN" for field in absent)
            raise ValueError(f"{path}: no column for {', '.join(absent)}; name it with {hint} "
                             f"(columns: {', '.join(columns) or 'none'})")  # fmt: skip
        return mapping

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        # Checked now, not on the first batch: a wrong column map is the caller's error, raised at once.
        mapping = self.checked_mapping(path)
        make = functools.partial(self._batch, mapping=mapping)
        return rebatch(read_columns(path, list(mapping.values()), make, stats, batch_rows), batch_rows, stats)

    def _batch(
        self, values: Columns, numbers: Lines, path: Path, stats: ReadStats, *, mapping: dict[str, str]
    ) -> pa.RecordBatch:
        def column(field: str) -> Any:
            return values.get(mapping[field]) if field in mapping else None

        count = len(numbers)
        record: dict[str, Any] = {field: to_text(column(field)) for field in _TEXT_FIELDS}
        record["ts"] = to_timestamp(column("ts"), self.tz)
        record["kind"] = to_kind(column("kind"))
        record["payer_type"] = to_party_type(column("payer_type"))
        record["payee_type"] = to_party_type(column("payee_type"))
        problems: list[tuple[np.ndarray, Any]] = [
            (null_mask(record["ts"]), describe_time(column("ts"), self.tz, "--tz"))
        ]
        record["amount"], bad = to_amount(column("amount"))
        problems.append((bad, describe_value(column("amount"), "amount")))
        record["currency"], bad = to_currency(column("currency"), count)
        problems.append((bad, describe_value(column("currency"), "currency", "unknown")))
        for field in _COUNTRY_FIELDS:
            record[field], bad = to_country(column(field))
            if record[field] is not None:
                problems.append((bad, describe_value(column(field), field.replace("_", " "), "unknown")))
        keep = np.ones(count, dtype=np.bool_)
        for bad, describe in problems:
            keep &= reject(stats, path, numbers, bad & keep, describe)  # one message per row: its first problem
        return make_batch(self.name, numbers[keep], select(record, keep), RECORD_SCHEMA)
