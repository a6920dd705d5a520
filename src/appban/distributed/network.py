"""Network classification as a distributed screener: `appban.network.classify.Classifier` over any table
with a host name and/or destination and source address columns, named through a column map.

`classify_batches` runs it in process; `classify_spark` and `classify_dask` run it through `run_spark` and
`run_dask`. The column map, the column types and the ASN table are checked where the call is made (the
driver), with messages naming the column or entry, so a wrong name is an error there and not all-null output.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from appban.distributed import core
from appban.engine.decide import default_rulebook
from appban.network.classify import CLASS_FIELDS, Classifier
from appban.network.indicators import default_indicators

OUTPUT_FIELDS: list[pa.Field] = CLASS_FIELDS
OUTPUT_NAMES: tuple[str, ...] = tuple(f.name for f in OUTPUT_FIELDS)
# The roles Classifier.hit_indices reads, by the column names it reads them under.
ROLES: tuple[str, ...] = ("host", "dst_ip", "src_ip")
_MAX_ASN = (1 << 32) - 1

AsnTable = Iterable[tuple[str, int]]
ColumnMap = Mapping[str, str]


def _asn_key(asn_table: AsnTable | None) -> tuple[tuple[str, int], ...]:
    """The table checked and normalised (by value: equal tables share a cached classifier)."""
    entries = []
    for number, entry in enumerate(asn_table or ()):
        try:
            prefix, asn = entry
        except (TypeError, ValueError):
            raise ValueError(f"asn_table entry {number}: expected (prefix, asn), got {entry!r}") from None
        try:
            network = ipaddress.ip_network(str(prefix), strict=False)
        except ValueError:
            raise ValueError(f"asn_table entry {number}: {prefix!r} is not an IP prefix") from None
        if isinstance(asn, bool) or not isinstance(asn, int) or not 0 <= asn <= _MAX_ASN:
            raise ValueError(f"asn_table entry {number}: AS number {asn!r} is not an integer from 0 to {_MAX_ASN}")
        entries.append((str(network), asn))
    return tuple(entries)


def _column_key(columns: ColumnMap | None) -> tuple[tuple[str, str], ...] | None:
    if columns is None:
        return None
    unknown = sorted(set(columns) - set(ROLES))
    if unknown:
        raise ValueError(f"columns: unknown role(s) {', '.join(unknown)}; the roles are {', '.join(ROLES)}")
    if not columns:
        raise ValueError(f"columns: name a column for at least one of {', '.join(ROLES)}")
    return tuple((role, str(columns[role])) for role in ROLES if role in columns)


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    # null: a column whose type the caller's engine does not know yet (an empty object column in Dask's meta)
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind))


@dataclass(frozen=True)
class NetworkScreener:
    """Classifies each batch's rows: the batch with app, scope, indicator, indicator_kind, confidence."""

    asn_table: tuple[tuple[str, int], ...]
    columns: tuple[tuple[str, str], ...] | None
    name: str = "network"
    keeps_rows: bool = True
    classifier: Classifier = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        indicators = default_indicators(default_rulebook())
        object.__setattr__(self, "classifier", Classifier(indicators, list(self.asn_table)))

    def read(self, names: list[str]) -> list[tuple[str, str]]:
        """(role, column) pairs read from a table with these column names."""
        if self.columns is not None:
            return list(self.columns)
        return [(role, role) for role in ROLES if role in names]

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        names = input_schema.names
        core.check_clash(names, OUTPUT_NAMES, "classified")
        pairs = self.read(names)
        for role, column in pairs:
            if column not in names:
                near = [name for name in names if name.lower() == column.lower()]
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ValueError(f"columns: {role} is mapped to {column!r}, which the input lacks{hint}")
            kind = input_schema.field(column).type
            if not _is_text(kind):
                raise ValueError(f"column {column!r} ({role}) is {kind}, not text")
        if not pairs:
            near = [name for name in names if name.lower() in ROLES or name.lower() in ("query", "server_name")]
            hint = f"; map yours, e.g. columns={{'host': {near[0]!r}}}" if near else "; pass columns={'host': ...}"
            raise ValueError(f"no column to classify by: none of {', '.join(ROLES)}{hint}")
        return pa.schema(list(input_schema) + OUTPUT_FIELDS)

    def screen_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        names = batch.schema.names
        view = []
        for _, column in self.read(names):
            values = batch.column(names.index(column))
            view.append(values.cast(pa.string()) if not pa.types.is_string(values.type) else values)
        roles = [role for role, _ in self.read(names)]
        classes = self.classifier.classify(pa.RecordBatch.from_arrays(view, names=roles))
        return pa.RecordBatch.from_arrays(
            [*batch.columns, *classes.columns[len(roles) :]], schema=pa.schema(list(batch.schema) + OUTPUT_FIELDS)
        )


@dataclass(frozen=True)
class NetworkFactory:
    asn_table: tuple[tuple[str, int], ...] = ()
    columns: tuple[tuple[str, str], ...] | None = None

    @classmethod
    def of(cls, asn_table: AsnTable | None = None, columns: ColumnMap | None = None) -> NetworkFactory:
        """Checked here: raises ValueError naming a bad ASN table entry or column role."""
        return cls(_asn_key(asn_table), _column_key(columns))

    def __call__(self) -> NetworkScreener:
        return NetworkScreener(self.asn_table, self.columns)


def classify_batches(
    batches: Iterable[pa.RecordBatch], asn_table: AsnTable | None = None, columns: ColumnMap | None = None
) -> Iterator[pa.RecordBatch]:
    """In process: each batch with app, scope, indicator, indicator_kind, confidence (null where nothing
    matches), rulebook_version and bundle appended. `columns` maps roles (host, dst_ip, src_ip) to the
    input's column names (default: those names, where present). A zero-row batch gives a zero-row batch."""
    factory = NetworkFactory.of(asn_table, columns)
    knowledge = core.Knowledge.current()
    schemas: dict[pa.Schema, pa.Schema] = {}
    for batch in batches:
        schema = schemas.get(batch.schema)
        if schema is None:
            schema = schemas[batch.schema] = core.table_schema(factory, batch.schema)
        yield from core.screen_batches([batch], factory, schema, knowledge)


def output_schema(input_schema: pa.Schema, columns: ColumnMap | None = None) -> pa.Schema:
    """What classification appends to `input_schema` (stamp included); ValueError for a bad input."""
    return core.table_schema(NetworkFactory.of(None, columns), input_schema)


def classify_spark(df: Any, asn_table: AsnTable | None = None, columns: ColumnMap | None = None) -> Any:
    """`df` (a pyspark DataFrame) with the classification columns, rulebook_version and bundle appended;
    null where nothing matches. Lazy; the columns and the ASN table are checked now."""
    from appban.distributed.spark import run_spark

    return run_spark(df, NetworkFactory.of(asn_table, columns))


def classify_dask(ddf: Any, asn_table: AsnTable | None = None, columns: ColumnMap | None = None) -> Any:
    """`ddf` (a dask DataFrame) with app, scope, indicator, indicator_kind (string), confidence (float),
    rulebook_version and bundle appended as pandas ArrowDtype columns, null (not NaN) where nothing
    matches. Lazy; partitions, index and divisions are unchanged; the columns and ASN table are checked now."""
    from appban.distributed.dask import run_dask

    return run_dask(ddf, NetworkFactory.of(asn_table, columns))
