"""Classification inside Dask: `DataFrame.map_partitions` hands each worker a pandas partition, whose
classified columns go to Arrow, through `classify_batches`, and back as five new pandas columns.

The partition's own columns, index and dtypes are kept as they are; only the classification columns are
added, as `string[pyarrow]` (null: no match) and `float32` confidence (NaN: no match), in both the
declared `meta` and every computed partition.

dask and pandas are imported inside the functions (appban depends on neither), through importlib so that
the module type-checks the same whether they are installed, typed or not.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import pyarrow as pa

from appban.distributed.core import CLASSIFIER_INPUTS, OUTPUT_FIELDS, OUTPUT_NAMES, check_columns, classify_batches

# dask.dataframe.DataFrame and pandas.DataFrame; Any because both are optional.
DaskDataFrame = Any
PandasDataFrame = Any


def _append_classes(partition: PandasDataFrame, classes: pa.RecordBatch) -> PandasDataFrame:
    """`partition` with the classification columns appended, with the dtypes `meta` declares."""
    pd = importlib.import_module("pandas")
    strings = pd.StringDtype("pyarrow")
    # One mapping for meta and data alike, so the two can never disagree; float32 is left to pandas'
    # default (numpy float32, NaN for null).
    mapper = {pa.string(): strings, pa.large_string(): strings}.get
    frame = pa.Table.from_batches([classes]).to_pandas(types_mapper=mapper)
    # Arrays, not Series: no alignment on the partition's index, which may repeat labels.
    return partition.assign(**{name: frame[name].array for name in OUTPUT_NAMES})


def _classify_partition(partition: PandasDataFrame, asn_table: list[tuple[str, int]] | None = None) -> PandasDataFrame:
    # Top level, so it pickles by reference (appban must be installed on the workers).
    present = [name for name in CLASSIFIER_INPUTS if name in partition.columns]
    if present:
        # Only the columns the classifier reads: cheaper, and other columns need not convert to Arrow.
        batch = pa.RecordBatch.from_pandas(partition[present], preserve_index=False)
        (out,) = classify_batches([batch], asn_table)
        classes = out.select(list(OUTPUT_NAMES))
    else:
        # Nothing to classify by: every row unmatched (a zero-column batch would lose the row count).
        classes = pa.RecordBatch.from_arrays([pa.nulls(len(partition), f.type) for f in OUTPUT_FIELDS],
                                             schema=pa.schema(OUTPUT_FIELDS))  # fmt: skip
    return _append_classes(partition, classes)


def classify_dask(ddf: DaskDataFrame, asn_table: list[tuple[str, int]] | None = None) -> DaskDataFrame:
    """`ddf` (a dask DataFrame with `host` and/or `dst_ip`/`src_ip` string columns) with app, scope,
    indicator, indicator_kind (string[pyarrow]) and confidence (float32) appended; null/NaN where nothing
    matches. Lazy; partitions and divisions are unchanged."""
    check_columns(ddf.columns)
    # Declared from the output fields through the same conversion the partitions go through.
    meta = _append_classes(ddf._meta, pa.RecordBatch.from_pylist([], schema=pa.schema(OUTPUT_FIELDS)))
    func = functools.partial(_classify_partition, asn_table=list(asn_table) if asn_table else None)
    return ddf.map_partitions(func, meta=meta)
