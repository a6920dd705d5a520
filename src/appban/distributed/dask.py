"""Screeners inside Dask: `DataFrame.map_partitions` hands each worker a pandas partition, which goes to Arrow
(whatever its chunking), through `core.screen_batches`, and back to pandas; a bag of paths goes through
`core.screen_paths`, one bag partition to one DataFrame partition.

Columns the screener adds come back as pandas ArrowDtype columns, so "no match" is null (`isna()`, `notna()`
and filtering work as on any column), not NaN. A screener that keeps rows (`keeps_rows`) keeps the
partition's own columns, index, dtypes and divisions as they are; other screeners' outputs are new frames
with a default index and unknown divisions. `meta` is declared from the output schema through the same
conversion the partitions go through, so the two cannot disagree.

dask and pandas are imported inside the functions (the core install depends on neither; `appban[dask]`
does), through importlib so that the module type-checks the same whether they are installed, typed or not.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import pyarrow as pa

from appban.distributed import core
from appban.distributed.core import Factory, Knowledge

# dask.dataframe.DataFrame, dask.bag.Bag and pandas.DataFrame; Any because all are optional.
DaskCollection = Any
PandasDataFrame = Any


def _to_pandas(table: pa.Table) -> PandasDataFrame:
    pd = importlib.import_module("pandas")
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _frame(out: pa.Table, partition: PandasDataFrame | None, added: list[str]) -> PandasDataFrame:
    """The pandas form of a screened partition: with `partition` (a screener that keeps rows) the partition
    with the `added` columns assigned; else the whole output."""
    if partition is None:
        return _to_pandas(out)
    frame = _to_pandas(out.select(added))
    # Arrays, not Series: no alignment on the partition's index, which may repeat labels.
    return partition.assign(**{name: frame[name].array for name in added})


def _arrow(partition: PandasDataFrame) -> pa.Table:
    # Table, not RecordBatch.from_pandas: ArrowDtype columns hold chunked arrays of any number of chunks
    # (none for an empty Parquet file, several after a concat or repartition), which a batch cannot take.
    table = pa.Table.from_pandas(partition, preserve_index=False)
    return table.replace_schema_metadata(None)


def _table_partition(
    partition: PandasDataFrame, factory: Factory, schema: pa.Schema, knowledge: Knowledge, added: list[str] | None
) -> PandasDataFrame:
    # Top level, so it pickles by reference (appban must be installed on the workers).
    table = _arrow(partition)
    batches = core.screen_batches(core.single_batches(table), factory, schema, knowledge)
    out = pa.Table.from_batches(list(batches), schema)
    return _frame(out, partition if added is not None else None, added or [])


def _path_partition(paths: list[str | None], factory: Factory, schema: pa.Schema, knowledge: Knowledge) -> Any:
    out = pa.Table.from_batches(list(core.screen_paths(paths, factory, schema, knowledge)), schema)
    return _frame(out, None, [])


def _input_schema(meta: PandasDataFrame) -> pa.Schema:
    # An empty object column (what meta holds for strings without pyarrow strings) reads as Arrow null;
    # screeners take null as "type not known here" and check the values themselves.
    return pa.Schema.from_pandas(meta, preserve_index=False).remove_metadata()


def run_dask(collection: DaskCollection, factory: Factory) -> DaskCollection:
    """A dask DataFrame (table screeners) or bag of paths (path screeners) screened by the screener `factory`
    builds, stamped with rulebook_version and bundle, as a dask DataFrame. The schema is declared, and the
    input checked, here on the driver. Lazy."""
    knowledge = Knowledge.current()
    if hasattr(collection, "map_partitions") and hasattr(collection, "columns"):
        schema = core.table_schema(factory, _input_schema(collection._meta))
        if core.keeps_rows(factory):
            added = [name for name in schema.names if name not in collection.columns]
            meta = _frame(schema.empty_table(), collection._meta, added)
            func = functools.partial(_table_partition, factory=factory, schema=schema, knowledge=knowledge, added=added)
            return collection.map_partitions(func, meta=meta)
        meta = _frame(schema.empty_table(), None, [])
        func = functools.partial(_table_partition, factory=factory, schema=schema, knowledge=knowledge, added=None)
        return collection.map_partitions(func, meta=meta, clear_divisions=True)
    # A bag: each of its partitions (a list of paths) becomes one pandas partition.
    dd = importlib.import_module("dask.dataframe")
    delayed = importlib.import_module("dask").delayed
    schema = core.path_schema(factory)
    task = functools.partial(_path_partition, factory=factory, schema=schema, knowledge=knowledge)
    parts = [delayed(task)(part) for part in collection.to_delayed()]
    return dd.from_delayed(parts, meta=_frame(schema.empty_table(), None, []), verify_meta=False)


# Where the README has always imported it from (network.py imports this module only inside its functions).
from appban.distributed.network import classify_dask  # noqa: E402

__all__ = ["classify_dask", "run_dask"]
