"""Classification inside Spark: `DataFrame.mapInArrow` feeds each Python worker Arrow batches, which go
through `classify_batches` unchanged, so no pandas conversion happens on the way.

pyspark is imported inside the functions (appban does not depend on it), through importlib so that the
module type-checks the same whether pyspark is installed, typed or not.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from appban.distributed.core import OUTPUT_FIELDS, check_columns, classify_batches

# pyspark.sql.DataFrame; Any because pyspark is optional.
SparkDataFrame = Any


def _spark_type(arrow_type: pa.DataType, types: Any) -> Any:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return types.StringType()
    if pa.types.is_float32(arrow_type):
        return types.FloatType()
    if pa.types.is_float64(arrow_type):
        return types.DoubleType()
    if pa.types.is_int32(arrow_type):
        return types.IntegerType()
    if pa.types.is_int64(arrow_type):
        return types.LongType()
    if pa.types.is_boolean(arrow_type):
        return types.BooleanType()
    # Spark keeps timestamps in microseconds; other units would not convert back from the workers.
    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "us":
        return types.TimestampType() if arrow_type.tz is not None else types.TimestampNTZType()
    raise TypeError(f"no Spark type for Arrow type {arrow_type}")


def arrow_to_spark_schema(schema: pa.Schema) -> Any:
    """A pyspark StructType for an Arrow schema of string, float32/64, int32/64, bool and timestamp[us]
    fields (with a time zone: TimestampType, without: TimestampNTZType); TypeError for other types."""
    types = importlib.import_module("pyspark.sql.types")
    return types.StructType(
        [types.StructField(field.name, _spark_type(field.type, types), field.nullable) for field in schema]
    )


def _classify_arrow(
    batches: Iterable[pa.RecordBatch], asn_table: list[tuple[str, int]] | None = None
) -> Iterator[pa.RecordBatch]:
    # Top level, so cloudpickle ships it by reference (appban must be installed on the executors) and
    # the only captured data is the ASN table.
    return classify_batches(batches, asn_table)


def classify_spark(df: SparkDataFrame, asn_table: list[tuple[str, int]] | None = None) -> SparkDataFrame:
    """`df` (a pyspark DataFrame with `host` and/or `dst_ip`/`src_ip` string columns) with app, scope,
    indicator, indicator_kind and confidence appended; null where nothing matches. Lazy, like any
    DataFrame transformation."""
    types = importlib.import_module("pyspark.sql.types")
    check_columns(df.columns)
    # The input fields keep their Spark types as they are (whatever they are); only the appended fields
    # need converting.
    schema = types.StructType(list(df.schema.fields) + list(arrow_to_spark_schema(pa.schema(OUTPUT_FIELDS)).fields))
    func = functools.partial(_classify_arrow, asn_table=list(asn_table) if asn_table else None)
    return df.mapInArrow(func, schema)
