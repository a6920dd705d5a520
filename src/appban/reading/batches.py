"""Record batches of a declared schema from parsed columns, and regrouping them into batches of bounded size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from appban.reading.stats import DEFAULT_BATCH_ROWS, Lines, ReadStats
from appban.reading.values import whole


def make_batch(source: str, numbers: Lines, columns: Mapping[str, Any], schema: Any) -> pa.RecordBatch:
    """A `schema` batch: the given record columns, nulls for the others, `source` and `line` filled."""
    count = len(numbers)
    arrays = []
    for spec in schema:
        if spec.name == "source":
            arrays.append(_repeated(source, spec.type, count))
        elif spec.name == "line":
            arrays.append(pa.array(numbers, pa.int64()))
        elif columns.get(spec.name) is None:
            arrays.append(_repeated(None, spec.type, count))
        else:
            values = columns[spec.name]
            if isinstance(values, pa.ChunkedArray):
                values = whole(values)
            arrays.append(values if values.type == spec.type else values.cast(spec.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# Every batch repeats the same constant columns (its source; nulls where the format has no such field):
# slices of one array per constant cost nothing, where building each anew costs a pass over the rows.
_CONSTANTS: dict[tuple[Any, Any], Any] = {}


def _repeated(value: Any, kind: Any, count: int) -> Any:
    """`count` times `value` (None: null) as an Arrow array of type `kind`."""
    key = (value, kind)
    known = _CONSTANTS.get(key)
    if known is None or len(known) < count:
        known = pa.repeat(pa.scalar(value, kind), max(count, DEFAULT_BATCH_ROWS))
        _CONSTANTS[key] = known  # a race only builds the same array twice
    return known.slice(0, count)


def rebatch(batches: Iterable[pa.RecordBatch], batch_rows: int, stats: ReadStats) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of at most `batch_rows`, counted into `stats`.

    A larger batch is sliced; smaller ones pass as they are: joining them would copy every column once more.
    """
    for batch in batches:
        for start in range(0, batch.num_rows, batch_rows):
            piece = batch.slice(start, batch_rows)
            stats.rows += piece.num_rows
            yield piece
