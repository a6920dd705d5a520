"""Network classification scaled out over Spark and Dask.

The same `appban.network.classify.Classifier` runs inside each worker process, built once per process and
reused across tasks, so a cluster gives row-for-row the result one process would:

- `appban.distributed.core`: `classify_batches` (an iterator of Arrow record batches in, the batches with
  the classification columns appended out), `output_schema`, `OUTPUT_FIELDS`, and `builds` (how many
  classifiers this process has built).
- `appban.distributed.spark`: `classify_spark(df)` through `DataFrame.mapInArrow`, and
  `arrow_to_spark_schema`.
- `appban.distributed.dask`: `classify_dask(ddf)` through `DataFrame.map_partitions`.

Neither pyspark nor dask is a dependency of appban: each is imported only when its function is called.
"""

from appban.distributed.core import OUTPUT_FIELDS, builds, classify_batches, output_schema

__all__ = ["OUTPUT_FIELDS", "builds", "classify_batches", "output_schema"]
