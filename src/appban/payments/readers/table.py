"""Card and wallet transaction exports (CSV, JSON lines or Parquet), read through a column map.

The map names, for each record field, the column that holds it: `{"ts": "Created (UTC)", "method":
"Payment Method Type", "payer_country": "Card Issue Country"}`. A known export (a Stripe itemized report,
an Adyen settlement or received-payments report: appban.payments.layouts) is recognised by its header and
read by its layout. Fields neither names are looked for among the columns by their usual names in
processors' exports (see SYNONYMS; compared without case, spaces or punctuation). `ts`, `amount` and
`currency` are required, from a column or a constant (`--set currency=USD`).

Times without an offset are read in the layout's zone, or per row in the zone its zone column names
(Adyen's TimeZone), or in the zone the time column's own name states ("Created (UTC)", `created_utc`,
`createdUtc`, "Date GMT", "Time (UTC+8)"), else in `tz`. Rows a layout names as attempts that did not
complete (a refused authorisation, a failed charge) are read with their `outcome`, never decided.
Constants fill a field where the file has no column for it or the cell is empty.

A row is reported with its line and dropped when its time, amount or currency is missing or unreadable
(an impossible date, an ambiguous "1,250", an unknown currency code or zone) or a country is not an ISO
3166 code. Amounts are decimals with at most 5 places, optionally grouped ("1,250.00", "1 250,00"); a
negative one (a refund) is kept. Rows a layout names as no payment (fees, payouts) are skipped.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban.payments.dates import DateOrder, join_date_time
from appban.payments.layouts import (
    Layout,
    column_for,
    default_layouts,
    listed_rows,
    normalised,
    recognise,
    row_zones,
    skipped_rows,
    without_zone,
    zone_in_name,
)
from appban.payments.records import DEFAULT_BATCH_ROWS, MAPPABLE, RECORD_SCHEMA, ReadStats
from appban.payments.values import to_amount, to_country, to_currency, to_kind, to_party_type
from appban.reading.batches import make_batch, rebatch
from appban.reading.columnar import file_columns, read_columns
from appban.reading.stats import Columns, Lines
from appban.reading.values import (
    UTC_US,
    check_zone,
    describe_time,
    describe_value,
    first_present,
    flags,
    null_mask,
    reject,
    select,
    to_text,
    to_timestamp,
)
from appban.textcolumns import python_value

__all__ = ["REQUIRED", "SYNONYMS", "PaymentTableReader", "normalised"]

REQUIRED = ("ts", "amount", "currency")
# Usual column names per field, normalised (lower case, letters and digits only). First match wins.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "createdutc", "created", "createdat", "createddate", "timestamp", "datetime", "transactiondate",
           "transactiontime", "paymentdate", "paymenttime", "date", "time", "creationdate"),
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
# Text that could be an amount written with a separator the file's decimal mark would settle.
_SEPARATED = re.compile(r"^[+-]?\d[\d.,' \u2019\u00a0\u202f\u2009]*$")


class PaymentTableReader:
    name = "table"

    def __init__(
        self,
        column_map: Mapping[str, str] | None = None,
        tz: str | None = None,
        constants: Mapping[str, str] | None = None,
        decimal: str | None = None,
        date_order: str | None = None,
    ) -> None:
        unknown = sorted(set(column_map or {}) - set(MAPPABLE))
        if unknown:
            raise ValueError(f"cannot map {', '.join(unknown)}: the fields are {', '.join(MAPPABLE)}")
        self.column_map = dict(column_map or {})
        self.tz = check_zone(tz) if tz else None
        self.constants = dict(constants or {})
        self.decimal = decimal
        self.date_order = DateOrder(date_order).order

    def sniff(self, path: Path, head: bytes) -> bool:
        columns = file_columns(path, head)
        plan = self.plan(columns)
        return all(field in plan.columns or field in plan.constants for field in REQUIRED)

    def mapping(self, columns: list[str]) -> dict[str, str]:
        """Record field -> column: the map's choices, then the usual names among the columns not yet taken."""
        return {field: names[0] for field, names in self.plan(columns).columns.items()}

    def plan(self, columns: list[str]) -> _Plan:
        """How this file is read: per field its columns, constants and zones."""
        layout = recognise(columns) if not self.column_map else None
        chosen: dict[str, list[str]] = {f: [c] for f, c in self.column_map.items() if c in columns}
        if layout is not None:
            for field, names in layout.columns.items():
                present = [found for name in names if (found := column_for(name, columns)) is not None]
                if present and field not in chosen:
                    chosen[field] = present
        by_name: dict[str, str] = {}
        for column in columns:
            by_name.setdefault(normalised(column), column)
        # A time column whose name states its zone ("Created date (UTC)") is looked for by the rest of its name
        # ("createddate"), before any column that states none.
        zoned: dict[str, str] = {}
        for column in columns:
            bare = without_zone(column)
            if bare is not None:
                zoned.setdefault(bare, column)
        for field, usual in SYNONYMS.items():
            if field in chosen or field in self.column_map:
                continue
            taken = {column for named in chosen.values() for column in named}
            first = [zoned[n] for n in usual if field == "ts" and n in zoned and zoned[n] not in taken]
            synonym = next(iter(first), None) or next(
                (by_name[n] for n in usual if n in by_name and by_name[n] not in taken), None
            )
            if synonym is not None:
                chosen[field] = [synonym]
        constants = dict(layout.constants) if layout is not None else {}
        constants.update(self.constants)  # the caller's word beats the layout's
        return _Plan(chosen, constants, layout, columns)

    def checked_plan(self, path: Path) -> _Plan:
        columns = file_columns(path)
        plan = self.plan(columns)
        missing = [
            f"{column!r} (for {field})" for field, column in self.column_map.items() if field not in plan.columns
        ]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)}; the columns are {', '.join(columns)}")
        absent = [field for field in REQUIRED if field not in plan.columns and field not in plan.constants]
        needs = [field for field in absent if plan.layout is not None and field in plan.layout.needs_set]
        if needs:
            assert plan.layout is not None
            given = " ".join(f"--set {field}=VALUE" for field in needs)
            raise ValueError(f"{path}: a {plan.layout.title} has no {', '.join(needs)} column; give it for the "
                             f"whole file with {given} (e.g. --set currency=USD)")  # fmt: skip
        if absent:
            hint = "--map " + ",".join(f"{field}=COLUMN" for field in absent)
            raise ValueError(f"{path}: no column for {', '.join(absent)}; name it with {hint} "
                             f"(columns: {', '.join(columns) or 'none'})")  # fmt: skip
        return plan

    def checked_mapping(self, path: Path) -> dict[str, str]:
        return {field: names[0] for field, names in self.checked_plan(path).columns.items()}

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        # Checked now, not on the first batch: a wrong column map is the caller's error, raised at once.
        plan = self.checked_plan(path)
        plan.date_order = DateOrder(self.date_order)  # settled by the named order or the file's first dates
        make = functools.partial(self._batch, plan=plan)
        return rebatch(read_columns(path, plan.read_columns(), make, stats, batch_rows), batch_rows, stats)

    def _batch(self, values: Columns, numbers: Lines, path: Path, stats: ReadStats, *, plan: _Plan) -> pa.RecordBatch:
        count = len(numbers)

        def column(field: str) -> Any:
            found = [values[name] for name in plan.columns.get(field, []) if values.get(name) is not None]
            text = [to_text(found_values) for found_values in found] if len(found) > 1 else found
            present = first_present(text, count, pa.string()) if text else None
            constant = plan.constants.get(field)
            if constant is None:
                return present
            if present is None:
                return pa.repeat(pa.scalar(constant), count)
            return pc.coalesce(to_text(present), pa.scalar(constant))

        skip = np.zeros(count, dtype=np.bool_)
        outcome = None
        if plan.layout is not None:
            skip, outcome = self._rows(values, count, plan)
        record: dict[str, Any] = {field: to_text(column(field)) for field in _TEXT_FIELDS}
        record["outcome"] = outcome
        if plan.layout is not None:
            for name, method in plan.layout.implied_method.items():
                found = column_for(name, plan.file_columns)
                if found is not None and values.get(found) is not None:
                    present = pc.is_valid(to_text(values[found]))
                    implied = pc.if_else(present, pa.scalar(method), pa.scalar(None, pa.string()))
                    record["method"] = implied if record["method"] is None else pc.coalesce(record["method"], implied)
        record["kind"] = to_kind(column("kind"))
        record["payer_type"] = to_party_type(column("payer_type"))
        record["payee_type"] = to_party_type(column("payee_type"))
        problems: list[tuple[np.ndarray, Any]] = []
        ts = shown = column("ts")
        time_column = plan.time_column()
        if time_column is not None and ts is not None:
            # The date and the time of day in columns of their own (PayPal, Square): joined, then read as one.
            times = values.get(time_column)
            shown = pc.binary_join_element_wise(to_text(ts.cast(pa.string())), "" if times is None else
                                                pc.fill_null(to_text(times.cast(pa.string())), ""), " ")  # fmt: skip
            ts, ambiguous = join_date_time(ts, times, plan.date_order)
            problems.append((ambiguous, _describe_ambiguous(shown)))
        record["ts"], zone_problems = self._times(ts, values, plan, shown)
        problems += zone_problems
        amount = column("amount")
        record["amount"], bad = to_amount(amount, self.decimal)
        debit = plan.debit_column()
        if debit is not None and values.get(debit) is not None:
            debits, _ = to_amount(values[debit], self.decimal)
            record["amount"] = pc.coalesce(record["amount"], pc.negate(debits))
            bad = np.asarray(null_mask(record["amount"]), dtype=np.bool_)
            amount = pc.coalesce(to_text(amount), to_text(values[debit])) if amount is not None else values[debit]
        problems.append((bad, self._describe_amount(amount)))
        record["currency"], bad = to_currency(column("currency"), count)
        problems.append((bad, describe_value(column("currency"), "currency", "unknown")))
        for field in _COUNTRY_FIELDS:
            record[field], bad = to_country(column(field))
            if record[field] is not None:
                problems.append((bad, describe_value(column(field), field.replace("_", " "), "unknown")))
        keep = ~skip
        stats.skipped += int(skip.sum())
        for bad, describe in problems:
            keep &= reject(stats, path, numbers, bad & keep, describe)  # one message per row: its first problem
        return make_batch(self.name, numbers[keep], select(record, keep), RECORD_SCHEMA)

    @staticmethod
    def _rows(values: Columns, count: int, plan: _Plan) -> tuple[np.ndarray, Any]:
        """The rows the layout says are no payment (skipped), and per row what the export says of an attempt
        that did not complete ("Status: Failed"), null for the others."""
        layout = plan.layout
        assert layout is not None
        skip = np.zeros(count, dtype=np.bool_)
        for name, skipped in layout.skip.items():
            found = column_for(name, plan.file_columns)
            if found is not None and values.get(found) is not None:
                skip |= skipped_rows(values[found], skipped)
        outcome = pa.nulls(count, pa.string())
        for name, listed in layout.not_completed.items():
            found = column_for(name, plan.file_columns)
            if found is None or values.get(found) is None:
                continue
            rows = listed_rows(values[found], listed)
            said = pc.binary_join_element_wise(pa.scalar(f"{found}: "), to_text(values[found]), "")
            outcome = pc.if_else(pa.array(rows & ~flags(pc.is_valid(outcome))), said, outcome)
        for name, listed in layout.counted.items():
            found = column_for(name, plan.file_columns)
            if found is not None and values.get(found) is not None:
                skip |= ~listed_rows(values[found], listed) & ~flags(pc.is_valid(outcome))
        return skip, outcome

    def _times(self, values: Any, raw: Columns, plan: _Plan, shown: Any) -> tuple[Any, list[tuple[np.ndarray, Any]]]:
        """UTC times, and the problems to report: an unknown zone in the zone column, then a bad time (described
        as `shown`, the time as the file wrote it)."""
        zone_column = plan.zone_column()
        if zone_column is None or raw.get(zone_column) is None:
            zone = plan.zone() or self.tz
            times = to_timestamp(values, zone)
            return times, [(null_mask(times), describe_time(shown, zone, "--tz"))]
        zones, unknown = row_zones(raw[zone_column], plan.zones())
        # Each zone's rows are read on their own, then put back in place; a row without a zone of its own is
        # read in --tz, as any other zoneless time.
        micros = np.zeros(len(values), dtype=np.int64)
        valid = np.zeros(len(values), dtype=np.bool_)
        for name in [*pc.unique(zones).drop_null().to_pylist(), None]:
            rows = flags(pc.is_null(zones)) if name is None else flags(pc.equal(zones, name))
            if not rows.any() or (name is None and self.tz is None):
                continue
            read = to_timestamp(values.filter(pa.array(rows)), name or self.tz)
            positions = np.flatnonzero(rows)
            micros[positions] = read.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            valid[positions] = flags(pc.is_valid(read))
        times = pa.array(micros, UTC_US, mask=~valid)
        zone_text = raw[zone_column]
        described = describe_value(zone_text, f"time zone ({zone_column})", "unknown")
        return times, [(unknown, described), (null_mask(times), describe_time(shown, self.tz, "--tz"))]

    def _describe_amount(self, values: Any) -> Any:
        plain = describe_value(values, "amount")
        if self.decimal is not None:
            return plain

        def describe(row: int) -> str:
            value = None if values is None else python_value(values, row)
            if isinstance(value, str) and "," in (bare := _without_symbols(value)) and _SEPARATED.match(bare):
                return f"amount {value[:40]!r} is ambiguous: name the decimal mark (--decimal point or comma)"
            return plain(row)

        return describe


def _describe_ambiguous(shown: Any) -> Any:
    def describe(row: int) -> str:
        value = python_value(shown, row)
        return (f"date and time {str(value)[:40]!r}: the date could be day/month or month/day and the file has "
                "not shown which: name the order with --date-order dmy or mdy")  # fmt: skip

    return describe


def _without_symbols(value: str) -> str:
    """`value` (its first 64 characters) without currency symbols, parentheses or blanks at its ends."""
    kept = "".join(c for c in value[:64] if c not in "()" and unicodedata.category(c) != "Sc")
    return kept.strip().replace("\u2212", "-")


class _Plan:
    """Which columns of one file give each field, and what else its layout says."""

    def __init__(
        self, columns: dict[str, list[str]], constants: dict[str, str], layout: Layout | None, file_columns: list[str]
    ) -> None:
        self.columns, self.constants, self.layout, self.file_columns = columns, constants, layout, file_columns
        self.date_order = DateOrder()

    def read_columns(self) -> list[str]:
        extra = [self.debit_column(), self.zone_column(), self.time_column()]
        if self.layout is not None:
            layout = self.layout
            named = [*layout.skip, *layout.not_completed, *layout.counted, *layout.implied_method]
            extra += [column_for(name, self.file_columns) for name in named]
        wanted = [name for names in self.columns.values() for name in names]
        return list(dict.fromkeys(wanted + [name for name in extra if name is not None]))

    def debit_column(self) -> str | None:
        if self.layout is None or self.layout.amount_debit is None:
            return None
        return column_for(self.layout.amount_debit, self.file_columns)

    def time_column(self) -> str | None:
        if self.layout is None or self.layout.time_column is None:
            return None
        return column_for(self.layout.time_column, self.file_columns)

    def zone_column(self) -> str | None:
        if self.layout is None or self.layout.zone_column is None:
            return None
        return column_for(self.layout.zone_column, self.file_columns)

    def zone(self) -> str | None:
        """The zone of every zoneless time: the layout's, for the layout's own time columns; else the zone the
        time column's name states ("Created (UTC)", "Time (UTC+8)"); else none (--tz decides)."""
        ts = self.columns.get("ts")
        if not ts:
            return None
        if self.layout is not None and self.layout.zone is not None:
            own = {normalised(name) for name in self.layout.columns.get("ts", [])}
            if normalised(ts[0]) in own:
                return self.layout.zone
        return zone_in_name(ts[0])

    def zones(self) -> Any:
        return default_layouts().zones
