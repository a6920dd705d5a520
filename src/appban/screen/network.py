"""Screen network logs: which customers and flows serve or carry a covered app, and from when that
was prohibited for the operator's role (hosting, CDN, transit)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban.engine.batch import decide_table
from appban.engine.decide import default_rulebook
from appban.knowledge.install import bundle_of
from appban.network.classify import Classifier, PrefixTable, classify_matches
from appban.network.indicators import default_indicators
from appban.rulebook.loader import Rulebook
from appban.tables import grouped
from appban.vocabulary import Category, Verdict

Role = Literal["hosting", "cdn", "transit"]
# Rows classified per call: the per-call work (one dictionary encoding, one look-up per distinct value)
# is then small next to the rows.
_CLASSIFY_ROWS = 1 << 20
ROLE_CATEGORY: dict[str, Category] = {
    "hosting": Category.INTERNET_HOSTING,
    "cdn": Category.CDN,
    "transit": Category.TRANSIT_PEERING,
}


@dataclass
class NetworkOptions:
    role: Role = "hosting"
    where: str = "US"
    scope: Literal["app", "company", "all"] = "all"
    customer_column: str | None = None
    customer_prefixes: list[tuple[str, str]] = field(default_factory=list)  # (prefix, customer)
    asn_table: list[tuple[str, int]] = field(default_factory=list)
    log_format: str | None = None
    column_map: dict[str, str] | None = None
    log_tz: str | None = None  # zone of log timestamps written without one (BIND, dnsmasq, nfdump)
    log_year: int | None = None  # syslog dates (dnsmasq) carry no year


@dataclass
class NetworkResult:
    records: pa.Table  # matched records with classification and decision
    exposure: pa.Table  # one row per customer
    rows: int
    malformed: int
    errors: list[str]
    rulebook_version: str
    # What the reads assumed rather than found (the year of yearless syslog times), one line per file and kind.
    notes: list[str] = field(default_factory=list)
    bundle: str | None = None  # the knowledge bundle the rulebook came from; None for the package's own data


def parse_customer_table(lines: Iterable[str]) -> list[tuple[str, str]]:
    """'PREFIX CUSTOMER' per line (CSV or whitespace separated); '#' starts a comment."""
    import ipaddress

    entries: list[tuple[str, str]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.lower().startswith("prefix"):
            continue
        parts = [p.strip() for p in (line.split(",", 1) if "," in line else line.split(None, 1))]
        if len(parts) != 2 or not parts[1]:
            raise ValueError(f"line {number}: expected 'PREFIX,CUSTOMER', got {raw.strip()!r}")
        try:
            entries.append((str(ipaddress.ip_network(parts[0], strict=False)), parts[1]))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return entries


class CustomerAttribution:
    """Who a record belongs to: a named column, else the customer owning its client or server address."""

    def __init__(self, column: str | None, prefixes: Sequence[tuple[str, str]]):
        self.column = column
        self.names = sorted({customer for _, customer in prefixes})
        index = {name: i for i, name in enumerate(self.names)}
        self.table = PrefixTable((prefix, index[customer]) for prefix, customer in prefixes)
        self._cache: dict[str, int] = {}

    def _lookup(self, address: str | None) -> int:
        if address is None:
            return -1
        found = self._cache.get(address)
        if found is None:
            found = self.table.lookup(address)
            self._cache[address] = found
        return found

    def customers(self, batch: pa.RecordBatch) -> pa.Array:
        names = batch.schema.names
        if self.column is not None:
            if self.column not in names:
                raise ValueError(f"--customer-column {self.column!r}: no such column (columns: {', '.join(names)})")
            return pc.cast(batch.column(names.index(self.column)), pa.string())
        if "customer" in names and batch.column(names.index("customer")).null_count < batch.num_rows:
            given = batch.column(names.index("customer"))
        else:
            given = pa.nulls(batch.num_rows, pa.string())
        if not self.names:
            return given
        found = np.full(batch.num_rows, -1, dtype=np.int64)
        for column in ("client", "dst_ip", "src_ip"):
            if column in names:
                values = batch.column(names.index(column)).to_pylist()
                looked = np.fromiter((self._lookup(v) for v in values), dtype=np.int64, count=len(values))
                found = np.where(found < 0, looked, found)
        lookup = pa.array([*self.names, None], pa.string())
        by_prefix = lookup.take(pa.array(np.where(found < 0, len(self.names), found)))
        return pc.coalesce(given, by_prefix)


def screen_network(
    paths: Sequence[Path],
    options: NetworkOptions,
    rulebook: Rulebook | None = None,
    progress: Callable[[int], None] | None = None,
) -> NetworkResult:
    from appban.network.records import read_log

    book = rulebook or default_rulebook()
    classifier = Classifier(default_indicators(book), options.asn_table)
    attribution = CustomerAttribution(options.customer_column, options.customer_prefixes)
    pieces: list[pa.Table] = []
    rows = malformed = 0
    errors: list[str] = []
    notes: list[str] = []
    for path in paths:
        batches, stats = read_log(
            path, options.log_format, options.column_map, tz=options.log_tz, year=options.log_year
        )
        for table in grouped(batches, _CLASSIFY_ROWS, progress):
            rows += table.num_rows
            hits = classify_matches(classifier, table)
            if options.scope != "all":
                hits = hits.filter(pc.equal(hits.column("scope"), options.scope))
            if hits.num_rows:
                customers = pa.concat_arrays(
                    [attribution.customers(batch) for batch in hits.combine_chunks().to_batches()]
                    or [pa.array([], pa.string())]
                )
                hits = hits.append_column("customer_attributed", customers)
                hits = hits.append_column("file", pa.array([str(path)] * hits.num_rows, pa.string()))
                pieces.append(hits)
        malformed += stats.malformed
        errors += [f"{e.path}:{e.line}: {e.message}" for e in stats.errors]
        notes += [str(note) for note in stats.notes]
    records = _decide(pa.concat_tables(pieces, promote_options="permissive") if pieces else None, options, book)
    return NetworkResult(records, exposure(records), rows, malformed, errors, book.version, notes, bundle_of(book))


def _decide(table: pa.Table | None, options: NetworkOptions, book: Rulebook) -> pa.Table:
    if table is None or table.num_rows == 0:
        return pa.table({"customer": pa.array([], pa.string()), "app": pa.array([], pa.string())})
    category = ROLE_CATEGORY[options.role].value
    names = table.schema.names
    if "customer" in names:
        table = table.drop_columns(["customer"])
    table = table.rename_columns([("customer" if n == "customer_attributed" else n) for n in table.schema.names])
    decisions = decide_table(
        pa.table(
            {
                "app": table.column("app"),
                "transaction": pa.array([category] * table.num_rows, pa.string()),
                "where": pa.array([options.where] * table.num_rows, pa.string()),
                "at": table.column("ts"),
            }
        ),
        rulebook=book,
    )
    for name in ("transaction", "verdict", "as_written", "enforcement", "rule_ids"):
        table = table.append_column(name, decisions.column(name))
    return table


def exposure(records: pa.Table) -> pa.Table:
    """Per customer: records, bytes, distinct hosts, first and last seen, apps, and verdict periods."""
    if "verdict" not in records.schema.names or records.num_rows == 0:
        return pa.table({"customer": pa.array([], pa.string()), "records": pa.array([], pa.int64())})
    table = records.select(["customer", "app", "host", "bytes", "ts", "verdict"]).set_column(
        5, "verdict", pc.cast(records.column("verdict"), pa.string())
    )
    table = table.set_column(0, "customer", pc.fill_null(table.column("customer"), "(unattributed)"))
    summary = table.group_by("customer").aggregate(
        [
            ("app", "count", pc.CountOptions(mode="all")),
            ("bytes", "sum"),
            ("host", "count_distinct"),
            ("ts", "min"),
            ("ts", "max"),
            ("app", "distinct"),
        ]
    )
    summary = summary.rename_columns(
        ["customer", "records", "bytes", "distinct_hosts", "first_seen", "last_seen", "apps"]
    )
    periods = table.group_by(["customer", "verdict"]).aggregate([("ts", "min"), ("ts", "max"), ("app", "count")])
    by_customer: dict[str, list[dict[str, object]]] = {}
    for row in periods.to_pylist():
        by_customer.setdefault(row["customer"], []).append(
            {"verdict": row["verdict"], "records": row["app_count"], "from": row["ts_min"], "to": row["ts_max"]}
        )
    order = [v.value for v in Verdict]
    verdicts = [
        sorted(by_customer.get(c, []), key=lambda p: (p["from"], order.index(str(p["verdict"]))))
        for c in summary.column("customer").to_pylist()
    ]
    period = pa.struct(
        [
            ("verdict", pa.string()),
            ("records", pa.int64()),
            ("from", pa.timestamp("us", tz="UTC")),
            ("to", pa.timestamp("us", tz="UTC")),
        ]
    )
    summary = summary.append_column("verdicts", pa.array(verdicts, pa.list_(period)))
    return summary.sort_by([("records", "descending"), ("customer", "ascending")])
