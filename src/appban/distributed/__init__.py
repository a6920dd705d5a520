"""Every screener scaled out over Spark and Dask, answering row for row as one process would.

- `appban.distributed.core`: the `Screener` (table work) and `PathScreener` (one file per task) protocols,
  the per-worker-process cache of built screeners (`cached`, `builds`), and what each task runs
  (`screen_batches`, `screen_paths`), stamping every output with rulebook_version and bundle.
- `appban.distributed.spark`: `run_spark(df, factory)` through `DataFrame.mapInArrow`.
- `appban.distributed.dask`: `run_dask(ddf_or_bag, factory)` through `map_partitions` or a bag of paths.
- one module per screener defining its Screener and thin public functions: `network` (`classify_batches`,
  `classify_spark`, `classify_dask`), `decide` (`decide_spark`, `decide_dask`), ...

Neither pyspark nor dask (nor pandas) is a dependency of the core install: each is imported only when its
function is called (`pip install 'appban[spark]'` or `'appban[dask]'` brings them).
"""

from appban.distributed.core import KNOWLEDGE_FIELDS, builds
from appban.distributed.network import OUTPUT_FIELDS, classify_batches, output_schema

__all__ = ["KNOWLEDGE_FIELDS", "OUTPUT_FIELDS", "builds", "classify_batches", "output_schema"]
