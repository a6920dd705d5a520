"""What every screener shares on a cluster: the protocols, the per-worker-process cache, and the Arrow work
each task does whatever the engine (`spark.run_spark`, `dask.run_dask`).

A screener comes in two kinds:

- `Screener` works on tables: `output_schema(input_schema)` says what `screen_batch(batch)` returns for a
  batch of that schema (network classification, decide_table, payment exports, inventories);
- `PathScreener` works on one file or artefact at a time: `screen_path(path)` streams it and returns its rows
  in `output_schema()` (ISO 20022 files, APKs, wheels), so a task's memory is bounded by one artefact.

Engines ship a *factory*, not a screener: a frozen (hashable, picklable) dataclass holding the parameters,
whose call builds the screener. Each process builds a screener once per (factory, rulebook version) and keeps
it (`cached`), so a Spark Python worker, reused across tasks, or a Dask worker pays for building the matchers
once however many partitions it screens. The driver builds one too, to declare the output schema and to check
the parameters there, with clear messages, rather than inside executors.

Every output row carries `rulebook_version` and `bundle` (the knowledge bundle in force, null for the package's
own data), as the driver saw them; a worker whose knowledge differs refuses to screen rather than answer under
another law.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pyarrow as pa

from appban.distributed import locations
from appban.engine.decide import default_rulebook
from appban.knowledge.layout import active_bundle
from appban.reading.chunks import parse_threads

KNOWLEDGE_FIELDS: list[pa.Field] = [pa.field("rulebook_version", pa.string()), pa.field("bundle", pa.string())]
KNOWLEDGE_NAMES: tuple[str, ...] = tuple(field.name for field in KNOWLEDGE_FIELDS)


@runtime_checkable
class Screener(Protocol):
    """Table work: each batch in, its rows (or its findings) out, in `output_schema(batch.schema)`.

    A screener may also set `keeps_rows = True` when its output is its input row for row with columns
    appended (network, decide): Dask then keeps the partition's index, divisions and column dtypes."""

    @property
    def name(self) -> str: ...

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema: ...

    def screen_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch: ...


@runtime_checkable
class PathScreener(Protocol):
    """Per-file work: one path (any path the worker can open) in, its rows out, in `output_schema()`."""

    @property
    def name(self) -> str: ...

    def output_schema(self) -> pa.Schema: ...

    def screen_path(self, path: str) -> pa.Table: ...


AnyScreener = Screener | PathScreener
# A frozen dataclass in practice: hashable (the cache key) and picklable by reference to its module.
Factory = Callable[[], AnyScreener]


@dataclass(frozen=True)
class Knowledge:
    """The rulebook version and knowledge bundle an output was screened under."""

    rulebook_version: str
    bundle: str | None

    @classmethod
    def current(cls) -> Knowledge:
        return cls(default_rulebook().version, active_bundle())

    def columns(self, rows: int) -> list[pa.Array]:
        return [pa.array([self.rulebook_version] * rows, pa.string()), pa.array([self.bundle] * rows, pa.string())]


class KnowledgeMismatch(RuntimeError):
    """A worker's installed rulebook (or bundle) is not the driver's."""


# A few screeners at most: a classifier's per-value caches may grow to millions of entries.
_CACHE_SIZE = 8
_lock = threading.Lock()
_screeners: OrderedDict[tuple[Hashable, Knowledge], AnyScreener] = OrderedDict()
_builds: dict[str, int] = {}


def builds(name: str | None = None) -> int:
    """How many screeners (named `name`, or of any name) this process has built."""
    return sum(count for key, count in _builds.items() if name is None or key == name)


def cached(factory: Factory, knowledge: Knowledge | None = None) -> AnyScreener:
    """This process's screener for `factory`, built on first use. With `knowledge` (what the driver
    screens under), a process whose own knowledge differs raises KnowledgeMismatch instead of building."""
    # Building under the lock: a second task thread of the same worker waits for this build instead of
    # making its own, so a process builds once per key even with several task threads.
    with _lock:
        here = Knowledge.current()
        if knowledge is not None and knowledge != here:
            raise KnowledgeMismatch(
                f"this worker has rulebook {here.rulebook_version} (bundle {here.bundle}), the driver "
                f"{knowledge.rulebook_version} (bundle {knowledge.bundle}): install the same appban wheel "
                "and knowledge bundle on the driver and every worker"
            )
        key = (factory, here)  # by value: Spark and Dask unpickle a fresh copy of the factory for every task
        found = _screeners.get(key)
        if found is None:
            found = factory()
            _builds[found.name] = _builds.get(found.name, 0) + 1
            _screeners[key] = found
            while len(_screeners) > _CACHE_SIZE:
                _screeners.popitem(last=False)
        else:
            _screeners.move_to_end(key)
        return found


def check_clash(names: Iterable[str], added: Iterable[str], what: str = "screened") -> None:
    """Raise ValueError if the input already has a column the screening would append."""
    clash = [name for name in added if name in set(names)]
    if clash:
        raise ValueError(f"input already has column(s) {', '.join(clash)}: was it {what} already?")


def stamped(schema: pa.Schema) -> pa.Schema:
    """`schema` with rulebook_version and bundle appended."""
    check_clash(schema.names, KNOWLEDGE_NAMES)
    return pa.schema(list(schema) + KNOWLEDGE_FIELDS)


def table_schema(factory: Factory, input_schema: pa.Schema) -> pa.Schema:
    """The declared output (stamped) of a table screener over `input_schema`; its errors are the driver's
    checks of the input (missing or mistyped columns, bad parameters)."""
    screener = cached(factory)
    if not isinstance(screener, Screener):
        raise TypeError(f"{screener.name} screens files, not tables: give it a column of paths")
    # The screener's own checks first: its message says more than a clash with the stamp would.
    return stamped(screener.output_schema(input_schema))


def path_schema(factory: Factory) -> pa.Schema:
    """The declared output (stamped) of a path screener."""
    screener = cached(factory)
    if not isinstance(screener, PathScreener):
        raise TypeError(f"{screener.name} screens tables, not files")
    return stamped(screener.output_schema())


def keeps_rows(factory: Factory) -> bool:
    return bool(getattr(cached(factory), "keeps_rows", False))


def _finish(out: pa.RecordBatch, schema: pa.Schema, knowledge: Knowledge) -> pa.RecordBatch:
    batch = pa.RecordBatch.from_arrays([*out.columns, *knowledge.columns(out.num_rows)], names=schema.names)
    if not batch.schema.equals(schema):
        # Engines check what comes back against the schema declared up front; keep that promise even if
        # a screener's types drift (a dictionary for a string, large_string for string).
        batch = batch.cast(schema)
    return batch


def single_batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    """A table's rows as batches, whatever its chunking: zero chunks (an empty Parquet file) or several
    (a concat, a repartition) give what one contiguous chunk would."""
    if table.num_rows == 0:
        return
    yield from table.combine_chunks().to_batches()


def screen_batches(
    batches: Iterable[pa.RecordBatch], factory: Factory, schema: pa.Schema, knowledge: Knowledge
) -> Iterator[pa.RecordBatch]:
    """What a task runs for table work: each batch screened, stamped and in `schema` (the driver's
    `table_schema`). Zero-row batches give zero-row batches without building a screener."""
    for batch in batches:
        if batch.num_rows == 0:
            yield pa.RecordBatch.from_pylist([], schema=schema)
            continue
        screener = cached(factory, knowledge)
        assert isinstance(screener, Screener)
        yield _finish(screener.screen_batch(batch), schema, knowledge)


def screen_paths(
    paths: Iterable[str | None], factory: Factory, schema: pa.Schema, knowledge: Knowledge
) -> Iterator[pa.RecordBatch]:
    """What a task runs for per-file work: each path's rows, stamped, in `schema` (`path_schema`); one file
    at a time, so a task holds one file's output at most. Null paths are skipped."""
    for path in paths:
        if path is None:
            continue
        screener = cached(factory, knowledge)
        assert isinstance(screener, PathScreener)
        # One task, one core: the file parses on the task's own thread, not on the reader's pool, whose
        # threads would take the core of the task beside it (appban.reading.chunks.parse_threads). A URL is
        # opened through its filesystem (a local stand-in streamed to the task's disk).
        with parse_threads(1):
            screened = locations.screen_located(screener, path)
        for batch in single_batches(screened):
            yield _finish(batch, schema, knowledge)


def screen_table(table: pa.Table, factory: Factory) -> pa.Table:
    """In process, what the engines give: the whole table through one screener, stamped."""
    schema = table_schema(factory, table.schema)
    return pa.Table.from_batches(screen_batches(single_batches(table), factory, schema, Knowledge.current()), schema)
