"""Screeners inside Spark: `DataFrame.mapInArrow` feeds each Python worker Arrow batches, which go through
`core.screen_batches` (table work) or `core.screen_paths` (a DataFrame of paths, per-file work) unchanged, so
no pandas conversion happens on the way.

pyspark is imported inside the functions (the core install does not depend on it; `appban[spark]` does),
through importlib so that the module type-checks the same whether pyspark is installed, typed or not.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from appban.distributed import core
from appban.distributed.core import Factory, Knowledge

# pyspark.sql.DataFrame; Any because pyspark is optional.
SparkDataFrame = Any


def _spark_type(arrow_type: pa.DataType, types: Any) -> Any:
    if pa.types.is_dictionary(arrow_type):  # Spark has no dictionary type: the values travel decoded
        return _spark_type(arrow_type.value_type, types)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return types.StringType()
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return types.BinaryType()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return types.ArrayType(_spark_type(arrow_type.value_type, types), arrow_type.value_field.nullable)
    simple = {
        pa.float32(): types.FloatType,
        pa.float64(): types.DoubleType,
        pa.int8(): types.ByteType,
        pa.int16(): types.ShortType,
        pa.int32(): types.IntegerType,
        pa.int64(): types.LongType,
        pa.bool_(): types.BooleanType,
        pa.date32(): types.DateType,
    }
    if arrow_type in simple:
        return simple[arrow_type]()
    if pa.types.is_decimal128(arrow_type):  # payment amounts; Spark's decimals go to 38 digits, as decimal128
        return types.DecimalType(arrow_type.precision, arrow_type.scale)
    # Spark keeps timestamps in microseconds; other units would not convert back from the workers.
    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "us":
        return types.TimestampType() if arrow_type.tz is not None else types.TimestampNTZType()
    raise TypeError(f"no Spark type for Arrow type {arrow_type}")


def arrow_to_spark_schema(schema: pa.Schema) -> Any:
    """A pyspark StructType for an Arrow schema of string, binary, float32/64, int8-64, bool, date32, list and
    timestamp[us] fields (with a time zone: TimestampType, without: TimestampNTZType); dictionaries as their
    values; TypeError for other types."""
    types = importlib.import_module("pyspark.sql.types")
    return types.StructType(
        [types.StructField(field.name, _spark_type(field.type, types), field.nullable) for field in schema]
    )


def spark_to_arrow_schema(struct: Any) -> pa.Schema:
    """The Arrow schema in which Spark hands a DataFrame of `struct` to mapInArrow (and expects it back)."""
    to_arrow = importlib.import_module("pyspark.sql.pandas.types").to_arrow_schema
    schema: pa.Schema = to_arrow(struct, timezone="UTC")
    return schema


def _declared(df: SparkDataFrame, arrow_schema: pa.Schema) -> tuple[Any, pa.Schema]:
    """The output's Spark schema (fields the input already had keep their Spark types, whatever they are) and
    the Arrow schema workers must return for it."""
    types = importlib.import_module("pyspark.sql.types")
    given = {field.name: field for field in df.schema.fields}
    fields = []
    for field in arrow_schema:
        kept = given.get(field.name)
        if kept is not None and spark_to_arrow_schema(types.StructType([kept])).field(0).type == field.type:
            fields.append(kept)
        else:
            fields.append(types.StructField(field.name, _spark_type(field.type, types), field.nullable))
    struct = types.StructType(fields)
    return struct, spark_to_arrow_schema(struct)


def _table_task(
    batches: Iterable[pa.RecordBatch], factory: Factory, schema: pa.Schema, knowledge: Knowledge
) -> Iterator[pa.RecordBatch]:
    # Top level, so cloudpickle ships it by reference (appban must be installed on the executors) and the
    # only captured data is the factory, the schema and the knowledge stamp.
    return core.screen_batches(batches, factory, schema, knowledge)


def _path_task(
    batches: Iterable[pa.RecordBatch], column: str, factory: Factory, schema: pa.Schema, knowledge: Knowledge
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        paths = batch.column(batch.schema.names.index(column)).to_pylist()
        yield from core.screen_paths(paths, factory, schema, knowledge)


def run_spark(df: SparkDataFrame, factory: Factory, *, path_column: str | None = None) -> SparkDataFrame:
    """`df` screened by the screener `factory` builds, stamped with rulebook_version and bundle. Table
    screeners get df's rows; with `path_column`, a path screener gets each row's path (one file at a time;
    repartition df for as many tasks as you want files in parallel). The schema is declared, and the input
    checked, here on the driver. Lazy, like any DataFrame transformation."""
    knowledge = Knowledge.current()
    if path_column is None:
        arrow_schema = core.table_schema(factory, spark_to_arrow_schema(df.schema))
        struct, schema = _declared(df, arrow_schema)
        func = functools.partial(_table_task, factory=factory, schema=schema, knowledge=knowledge)
        return df.mapInArrow(func, struct)
    if path_column not in df.columns:
        raise ValueError(f"no column {path_column!r} of paths; the DataFrame has {', '.join(df.columns)}")
    struct, schema = _declared(df.select(path_column), core.path_schema(factory))
    func = functools.partial(_path_task, column=path_column, factory=factory, schema=schema, knowledge=knowledge)
    return df.select(path_column).mapInArrow(func, struct)


# Where the README has always imported it from (network.py imports this module only inside its functions).
from appban.distributed.network import classify_spark  # noqa: E402

__all__ = ["arrow_to_spark_schema", "classify_spark", "run_spark", "spark_to_arrow_schema"]
