"""What every worker runs: Arrow record batches in, the same batches with the classification columns out.

The classifier (the indicator set's suffix dict and prefix tables, plus its per-value caches) is costly to
build and is pure apart from those caches, so each process builds it once per ASN table and keeps it:
a Spark Python worker (reused across tasks by default) or a Dask worker process then pays for it once,
however many partitions it classifies.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator

import pyarrow as pa

from appban.engine.decide import default_rulebook
from appban.network.classify import CLASS_FIELDS, Classifier
from appban.network.indicators import default_indicators

OUTPUT_FIELDS: list[pa.Field] = CLASS_FIELDS
OUTPUT_NAMES: tuple[str, ...] = tuple(field.name for field in OUTPUT_FIELDS)
# The columns Classifier.hit_indices reads; the Dask wrapper converts only these to Arrow.
CLASSIFIER_INPUTS: tuple[str, ...] = ("host", "dst_ip", "src_ip")

AsnKey = tuple[tuple[str, int], ...]

# A few tables at most: each classifier's caches may grow to millions of entries.
_CACHE_SIZE = 4
_lock = threading.Lock()
_classifiers: OrderedDict[AsnKey, Classifier] = OrderedDict()
_builds = 0


def builds() -> int:
    """How many classifiers this process has built (once per distinct ASN table, unless evicted)."""
    return _builds


def check_columns(names: Iterable[str]) -> None:
    """Raise ValueError if the input already has a column the classification would append."""
    clash = sorted(set(names) & set(OUTPUT_NAMES))
    if clash:
        raise ValueError(f"input already has column(s) {', '.join(clash)}: was it classified already?")


def output_schema(input_schema: pa.Schema) -> pa.Schema:
    """The input fields followed by OUTPUT_FIELDS (schema metadata is not carried, as Classifier drops it)."""
    check_columns(input_schema.names)
    return pa.schema(list(input_schema) + OUTPUT_FIELDS)


def _key(asn_table: Iterable[tuple[str, int]] | None) -> AsnKey:
    # By contents, not identity: Spark and Dask unpickle a fresh copy of the table for every task.
    # None and [] give the same classifier, as they do in Classifier itself.
    return tuple((str(prefix), int(asn)) for prefix, asn in asn_table or ())


def classifier(asn_table: list[tuple[str, int]] | None = None) -> Classifier:
    """This process's classifier for the ASN table, built on first use."""
    global _builds
    key = _key(asn_table)
    # Building under the lock: a second thread of the same worker waits for this build instead of
    # making its own, so a process builds once per table even with several task threads.
    with _lock:
        found = _classifiers.get(key)
        if found is None:
            found = Classifier(default_indicators(default_rulebook()), list(key))
            _builds += 1
            _classifiers[key] = found
            while len(_classifiers) > _CACHE_SIZE:
                _classifiers.popitem(last=False)
        else:
            _classifiers.move_to_end(key)
        return found


def classify_batches(
    batches: Iterable[pa.RecordBatch], asn_table: list[tuple[str, int]] | None = None
) -> Iterator[pa.RecordBatch]:
    """Each batch with app, scope, indicator, indicator_kind and confidence appended (null where nothing
    matches), in `output_schema(batch.schema)`. A zero-row batch gives a zero-row batch; no batches give none."""
    for batch in batches:
        schema = output_schema(batch.schema)
        if batch.num_rows == 0:
            # No classifier needed, so a worker that only sees empty partitions never builds one.
            empty = [pa.array([], type=field.type) for field in OUTPUT_FIELDS]
            yield pa.RecordBatch.from_arrays([*batch.columns, *empty], schema=schema)
            continue
        out = classifier(asn_table).classify(batch)
        if not out.schema.equals(schema):
            # Engines check what comes back against the schema declared up front; keep that promise
            # even if Classifier's output types drift.
            out = out.cast(schema)
        yield out
