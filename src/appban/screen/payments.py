"""Screen payment records: which payments go through a covered payment service with a U.S. nexus, and
whether that was prohibited at the payment's own instant.

Per payment: the surest marker of a covered service (appban.payments.markers); the U.S. nexus (payer,
payee or merchant in the U.S., or a processor or bank agent there); the transaction category (a payment
to a merchant is `payment_processing`, a credit transfer `funds_transfer`); the facts the record shows
(both parties individuals: a user-to-user transfer; a wages purpose code); and `decide()` for all that at
the payment's time. Only payments with a marker are kept.

Markers that do not flag their row are reported apart and never counted in the totals: a wallet name in
the text of a record whose payment method says card or bank debit, an Alipay+ payment whose end
wallet is not Alipay's own (or is not named), and an attempt that did not complete (a refused or
cancelled authorisation, a failed charge: no money moved). A file that cannot be read at all (another kind of file,
an export without the columns it needs) is reported by name and the other files are still screened.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban.engine.batch import decide_table
from appban.engine.decide import default_rulebook
from appban.knowledge.install import bundle_of
from appban.payments.markers import (
    ASIDE_REASONS,
    METHOD_SAYS_OTHERWISE,
    NOT_COMPLETED,
    MarkerSet,
    PaymentMatcher,
    default_markers,
)
from appban.payments.readers import make_readers
from appban.payments.readers.table import PaymentTableReader
from appban.payments.records import DEFAULT_BATCH_ROWS, MAPPABLE, PaymentReader, ReadStats
from appban.payments.values import DECIMAL_MARKS, to_country, to_currency, to_kind, to_party_type
from appban.reading.streams import read_head
from appban.rulebook.loader import Rulebook
from appban.tables import grouped
from appban.vocabulary import Category

# The place whose parties give a payment its nexus: the rulebook's group for the U.S. and its territories.
NEXUS_PLACE = "US"
# Where a nexus can come from, in the order the reported reason prefers.
NEXUS_FIELDS = ("payer_country", "payee_country", "merchant_country", "processor_country", "payer_agent",
                "payee_agent")  # fmt: skip
_BIC = r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?$"
GROUP_ROWS = 1 << 20


# Fields a whole file can be given one value for (--set): not its times, amounts or identifiers.
SETTABLE = tuple(name for name in MAPPABLE if name not in ("ts", "amount", "id"))
# What the apart table shows of each payment set aside.
APART_COLUMNS = ("file", "line", "id", "ts", "amount", "currency", "method", "merchant", "reason", "marker",
                 "marker_field", "end_wallet", "note")  # fmt: skip


@dataclass
class PaymentOptions:
    input_format: str | None = None  # a reader name ("table", "iso20022"); detected when None
    column_map: dict[str, str] | None = None
    tz: str | None = None  # zone of times written without an offset
    constants: dict[str, str] | None = None  # field -> value for every record, where the file says nothing
    decimal: str | None = None  # the exports' decimal mark, "point" or "comma"; None reads only unambiguous amounts
    date_order: str | None = None  # "dmy" or "mdy" for dates written with slashes; None: as each file shows


@dataclass
class PaymentResult:
    payments: pa.Table  # the payments through a covered service, with evidence and decision
    totals: pa.Table  # payments and amounts by service, verdict, month and currency
    rows: int
    malformed: int
    errors: list[str] = field(default_factory=list)
    rulebook_version: str = ""
    apart: pa.Table = field(default_factory=lambda: _empty_apart())  # markers set aside (APART_COLUMNS): never
    # decided, never in the totals
    file_errors: list[str] = field(default_factory=list)  # files that could not be read at all, with why
    skipped: int = 0  # rows a known export names as no payment (fees, payouts)
    # Doubts of the markers that flagged or set aside a row here (markers.yaml `uncertain`): whether a judgement
    # the findings rest on holds (is AlipayHK the order's Alipay?). Only for markers a row of these files used.
    notes: list[str] = field(default_factory=list)
    bundle: str | None = None  # the knowledge bundle the rulebook came from; None for the package's own data

    def apart_counts(self) -> dict[str, int]:
        """Rows reported apart, by reason (method_says_otherwise, not_completed, ...), in reason order."""
        if self.apart.num_rows == 0:
            return {}
        counts = self.apart.group_by("reason").aggregate([("reason", "count")]).to_pylist()
        return {row["reason"]: row["reason_count"] for row in sorted(counts, key=lambda row: row["reason"])}


def parse_constants(pairs: Sequence[str]) -> dict[str, str]:
    """`FIELD=VALUE` pairs as field -> value, each checked and written as records hold it ("usa" -> "US").
    ValueError names the pair that is wrong."""
    constants: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"--set {pair[:80]!r}: expected FIELD=VALUE")
        if name not in SETTABLE:
            raise ValueError(f"--set {name[:64]!r}: not a field that can be set (fields: {', '.join(SETTABLE)})")
        constants[name] = _constant(name, value)
    return constants


def _constant(name: str, value: str) -> str:
    one = pa.array([value])
    if name.endswith("_country"):
        checked = to_country(one)[0][0].as_py()
    elif name == "currency":
        checked = to_currency(one, 1)[0][0].as_py()
    elif name == "kind":
        checked = to_kind(one)[0].as_py()
    elif name.endswith("_type"):
        checked = to_party_type(one)[0].as_py()
    else:
        checked = value
    if checked is None:
        raise ValueError(f"--set {name}={value[:64]!r}: not a valid {name.replace('_', ' ')}")
    return str(checked)


def check_decimal(mark: str | None) -> str | None:
    if mark is not None and mark not in DECIMAL_MARKS:
        raise ValueError(f"--decimal must be {' or '.join(DECIMAL_MARKS)}, not {mark[:64]!r}")
    return mark


def read_payments(
    path: Path, options: PaymentOptions, batch_rows: int = DEFAULT_BATCH_ROWS
) -> tuple[Iterator[pa.RecordBatch], ReadStats]:
    """Batches of one payment file, and the stats its read fills in."""
    stats = ReadStats()
    reader = choose_reader(Path(path), options)
    return reader.read(Path(path), stats, batch_rows), stats


def choose_reader(path: Path, options: PaymentOptions) -> PaymentReader:
    readers = make_readers(options.column_map, options.tz, options.constants, options.decimal, options.date_order)
    if options.input_format is not None:
        for reader in readers:
            if reader.name == options.input_format:
                return reader
        names = ", ".join(reader.name for reader in readers)
        raise ValueError(f"unknown payment format {options.input_format!r} (known: {names})")
    if options.column_map is not None:
        return PaymentTableReader(
            options.column_map, options.tz, options.constants, options.decimal, options.date_order
        )
    head = read_head(path)
    for reader in readers:
        if reader.sniff(path, head):
            return reader
    # The table reader explains which columns it could not find; the other formats have nothing to say.
    if not head.lstrip().startswith(b"<"):
        PaymentTableReader(None, options.tz, options.constants, options.decimal, options.date_order).checked_mapping(
            path
        )
    names = ", ".join(reader.name for reader in readers)
    raise ValueError(f"{path}: cannot tell the payment format; use --input-format (one of: {names})")


def screen_payments(
    paths: Sequence[Path],
    options: PaymentOptions,
    rulebook: Rulebook | None = None,
    markers: MarkerSet | None = None,
    progress: Callable[[int], None] | None = None,
) -> PaymentResult:
    """Screen every file. A file that cannot be read at all is named in `file_errors` and the others are
    screened; ValueError when no file could be read (nothing was screened)."""
    book = rulebook or default_rulebook()
    matcher = PaymentMatcher(markers or default_markers())
    pieces: list[pa.Table] = []
    apart: list[pa.Table] = []
    rows = malformed = skipped = 0
    used: set[int] = set()
    errors: list[str] = []
    file_errors: list[str] = []
    for path in paths:
        try:
            batches, stats = read_payments(Path(path), options)
            for table in grouped(batches, GROUP_ROWS, progress):
                rows += table.num_rows
                flagged, aside, markers_used = flag_payments(matcher, with_constants(table, options.constants))
                used |= markers_used
                name = pa.scalar(str(path), pa.string())
                if flagged.num_rows:
                    pieces.append(flagged.append_column("file", pa.repeat(name, flagged.num_rows)))
                if aside.num_rows:
                    apart.append(aside.add_column(0, "file", pa.repeat(name, aside.num_rows)))
        except (ValueError, OSError) as exc:
            message = str(exc)
            file_errors.append(message if str(path) in message else f"{path}: {message}")
            continue
        malformed += stats.malformed
        skipped += stats.skipped
        errors += [str(error) for error in stats.errors]
    if file_errors and len(file_errors) == len(paths):
        raise ValueError("; ".join(file_errors))
    payments = decide_payments(pa.concat_tables(pieces) if pieces else None, matcher, book)
    aside_table = pa.concat_tables(apart) if apart else _empty_apart()
    return PaymentResult(payments, totals(payments), rows, malformed, errors, book.version, aside_table, file_errors,
                         skipped, matcher.doubts(used), bundle_of(book))  # fmt: skip


def with_constants(table: pa.Table, constants: dict[str, str] | None) -> pa.Table:
    """Every reader's records with the whole-file values where they say nothing."""
    for name, value in (constants or {}).items():
        position = table.schema.get_field_index(name)
        filled = pc.coalesce(table.column(name), pa.scalar(value, table.schema.field(name).type))
        table = table.set_column(position, name, filled)
    return table


def flag_payments(matcher: PaymentMatcher, table: pa.Table) -> tuple[pa.Table, pa.Table, set[int]]:
    """The rows with a marker of a covered service, with the marker appended; the rows whose marker was
    set aside (APART_COLUMNS); and the markers either used (evidence indices)."""
    found = matcher.match(table)
    used = {int(i) for i in np.unique(found.best[found.best >= 0])}
    used |= {int(i) for i in np.unique(found.aside_marker[(found.aside > 0) & (found.aside_marker >= 0)])}
    return _flagged(matcher, table, found.best, found.where), _set_aside(matcher, table, found), used


def _flagged(matcher: PaymentMatcher, table: pa.Table, best: np.ndarray, where: np.ndarray) -> pa.Table:
    keep = best >= 0
    if not keep.any():
        return table.slice(0, 0)
    rows = table.filter(pa.array(keep))
    found = pa.array(best[keep])
    services = matcher.markers.services
    evidence = matcher.evidence
    columns = {
        "service": pa.array([e.service for e in evidence]).take(found),
        "subject": pa.array([services[e.service].subject for e in evidence]).take(found),
        "marker": pa.array([e.value for e in evidence]).take(found),
        "marker_kind": pa.array([e.kind for e in evidence]).take(found),
        "marker_field": pa.array(matcher.field_names(), pa.string()).take(pa.array(where[keep])),
        "marker_source": pa.array([e.source for e in evidence]).take(found),
        "confidence": pa.array([e.confidence for e in evidence], pa.float32()).take(found),
    }
    for name, values in columns.items():
        rows = rows.append_column(name, values)
    return rows.append_column("purpose_fact", matcher.purpose_facts(rows.column("purpose")))


def _set_aside(matcher: PaymentMatcher, table: pa.Table, found: Any) -> pa.Table:
    keep = found.aside > 0
    if not keep.any():
        return _empty_apart().drop_columns(["file"])
    positions = pa.array(np.flatnonzero(keep))
    rows = table.take(positions)
    codes = pa.array(found.aside[keep])
    markers = pa.array([e.value for e in matcher.evidence]).take(pa.array(found.aside_marker[keep]))
    fields = pa.array(matcher.field_names(), pa.string()).take(pa.array(found.aside_where[keep]))
    wallet_names: list[str | None] = [None]  # slot 0: no end wallet named
    wallet_slots = np.zeros(len(codes), dtype=np.int64)
    named = found.wallet[keep]
    for key in matcher.markers.gateways:
        of_gateway = np.array([e.gateway == key for e in matcher.evidence], dtype=np.bool_)[found.aside_marker[keep]]
        wallet_slots = np.where(of_gateway & (named >= 0), named + len(wallet_names), wallet_slots)
        wallet_names += matcher.wallet_names(key)
    wallets = pa.array(wallet_names, pa.string()).take(pa.array(wallet_slots))
    methods = pc.fill_null(rows.column("method").combine_chunks(), "")
    overruled = pc.binary_join_element_wise(fields, " names ", markers, ", but the payment method is ", methods,
                                            ": not counted as ", markers, "")  # fmt: skip
    other = pc.binary_join_element_wise(
        markers, " payment from the ", wallets, " wallet, not the covered service's own", ""
    )
    unnamed = pc.binary_join_element_wise(markers, " payment whose end wallet the record does not name", "")
    outcomes = pc.fill_null(rows.column("outcome").combine_chunks(), "")
    undone = pc.binary_join_element_wise(markers, " payment that did not complete (", outcomes,
                                         "): no money moved, not counted", "")  # fmt: skip
    notes = pc.if_else(
        pc.equal(codes, METHOD_SAYS_OTHERWISE),
        overruled,
        pc.if_else(pc.equal(codes, NOT_COMPLETED), undone, pc.if_else(pc.is_valid(wallets), other, unnamed)),
    )
    return pa.table(
        {
            "line": rows.column("line"),
            "id": rows.column("id"),
            "ts": rows.column("ts"),
            "amount": rows.column("amount"),
            "currency": rows.column("currency"),
            "method": rows.column("method"),
            "merchant": rows.column("merchant"),
            "reason": pa.array(ASIDE_REASONS, pa.string()).take(codes),
            "marker": markers,
            "marker_field": fields,
            "end_wallet": wallets,
            "note": notes,
        }
    )


def _empty_apart() -> pa.Table:
    kinds = {"line": pa.int64(), "ts": pa.timestamp("us", tz="UTC"), "amount": pa.decimal128(23, 5)}
    return pa.table({name: pa.array([], kinds.get(name, pa.string())) for name in APART_COLUMNS})


def decide_payments(table: pa.Table | None, matcher: PaymentMatcher, book: Rulebook) -> pa.Table:
    if table is None or table.num_rows == 0:
        return pa.table({name: pa.array([], pa.string()) for name in ("service", "verdict", "id")})
    nexus_codes = pa.array(book.place_members(NEXUS_PLACE), pa.string())
    where, reason, us_nexus = _nexus(table, nexus_codes)
    category = _category(table)
    facts = _facts(table, category)
    table = table.append_column("us_nexus", us_nexus).append_column("nexus", reason)
    table = table.append_column("where", where).append_column("transaction", category)
    table = table.append_column("facts", facts)
    decidable = pc.is_valid(where)
    asked = table.filter(decidable)
    decided = decide_table(
        pa.table({"app": asked.column("subject"), "transaction": asked.column("transaction"),
                  "where": asked.column("where"), "at": asked.column("ts"), "facts": asked.column("facts")}),
        rulebook=book,
    )  # fmt: skip
    positions = pa.array(np.cumsum(np.asarray(decidable.to_numpy(zero_copy_only=False), dtype=np.int64)) - 1)
    for name in ("verdict", "as_written", "enforcement", "rule_ids"):
        values = decided.column(name).combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        # Rows without any country (no place to decide for) keep a null decision.
        taken = values.take(pc.if_else(decidable, positions, pa.scalar(None, pa.int64())))
        table = table.append_column(name, taken)
    return table


def _nexus(table: pa.Table, codes: Any) -> tuple[Any, Any, Any]:
    """Per row: the place to decide for, the reason ("payee_country=US"), and whether it is a U.S. nexus
    (null when the record names no country at all)."""
    countries = []
    for name in NEXUS_FIELDS:
        values = table.column(name).combine_chunks()
        if name.endswith("_agent"):  # a BIC's 5th and 6th letters are its institution's country
            upper = pc.utf8_upper(values)
            values = pc.if_else(pc.match_substring_regex(upper, _BIC), pc.utf8_slice_codeunits(upper, 4, 6), None)
        countries.append((name, values))
    n = table.num_rows
    where = pa.nulls(n, pa.string())
    reason = pa.nulls(n, pa.string())
    for name, values in countries:  # the first U.S. party wins
        inside = pc.and_(pc.is_in(values, value_set=codes), pc.is_null(where))
        where = pc.if_else(inside, values, where)
        reason = pc.if_else(inside, pc.binary_join_element_wise(pa.scalar(name), values, "="), reason)
    us_nexus = pc.is_valid(where)
    for _, values in countries:  # none in the U.S.: decide for the first country named
        where = pc.coalesce(where, values)
    us_nexus = pc.if_else(pc.is_valid(where), us_nexus, pa.scalar(None, pa.bool_()))
    reason = pc.if_else(pc.and_(pc.invert(us_nexus), pc.is_valid(where)), "no U.S. party", reason)
    return where, pc.fill_null(reason, "no country on the record"), us_nexus


def _category(table: pa.Table) -> Any:
    """payment_processing for a payment to a merchant, funds_transfer for a transfer; by the merchant
    field when the record does not say which."""
    kind = pc.coalesce(table.column("kind"), pc.if_else(pc.is_valid(table.column("merchant")), "payment", "transfer"))
    return pc.if_else(
        pc.equal(kind, "payment"), Category.PAYMENT_PROCESSING.value, Category.FUNDS_TRANSFER.value
    ).combine_chunks()


def _facts(table: pa.Table, category: Any) -> Any:
    """The facts the record shows, as JSON: a user-to-user transfer (both parties individuals; known false
    for a payment to a merchant or an organisation party) and wages or benefits (from the purpose code)."""
    payer, payee = table.column("payer_type"), table.column("payee_type")
    individual = pc.and_kleene(pc.equal(payer, "individual"), pc.equal(payee, "individual"))
    organisation = pc.or_kleene(pc.equal(payer, "organisation"), pc.equal(payee, "organisation"))
    to_merchant = pc.equal(category, Category.PAYMENT_PROCESSING.value)
    users = pc.if_else(pc.or_kleene(organisation, to_merchant), False, individual)
    purpose_known = pc.is_valid(table.column("purpose"))
    wages = pc.if_else(purpose_known, pc.equal(pc.fill_null(table.column("purpose_fact"), ""), "wages_or_benefits"),
                       pa.scalar(None, pa.bool_()))  # fmt: skip
    # Each fact is unknown, false or true: nine JSON objects in all, one picked per row.
    combinations = []
    for user in (None, False, True):
        for wage in (None, False, True):
            shown = {"user_to_user_transfer": user, "wages_or_benefits": wage}
            combinations.append(json.dumps({k: v for k, v in shown.items() if v is not None}, sort_keys=True))
    return pa.array(combinations).take(pc.add(pc.multiply(_three_way(users), 3), _three_way(wages)))


def _three_way(flags: Any) -> Any:
    """0 for unknown, 1 for false, 2 for true."""
    return pc.fill_null(pc.add(flags.cast(pa.int8()), 1), 0)


def totals(payments: pa.Table) -> pa.Table:
    """Payments and their amounts by service, verdict, month (UTC) and currency."""
    if payments.num_rows == 0 or "verdict" not in payments.schema.names:
        return pa.table({"service": pa.array([], pa.string()), "payments": pa.array([], pa.int64())})
    table = pa.table(
        {
            "service": payments.column("service"),
            "verdict": pc.fill_null(payments.column("verdict"), "undecided"),
            "month": pc.strftime(payments.column("ts"), format="%Y-%m"),
            "currency": payments.column("currency"),
            "amount": payments.column("amount"),
        }
    )
    summary = table.group_by(["service", "verdict", "month", "currency"]).aggregate(
        [("amount", "count"), ("amount", "sum")]
    )
    summary = summary.rename_columns(["service", "verdict", "month", "currency", "payments", "amount"])
    return summary.sort_by([("service", "ascending"), ("month", "ascending"), ("verdict", "ascending"),
                            ("currency", "ascending")])  # fmt: skip
