"""Pi-hole's long-term query database, `pihole-FTL.db` (SQLite). Its plain `pihole.log` is dnsmasq's format and
is read by dnsmasq.py.

Pi-hole v5 keeps a `queries` table (`id, timestamp, type, status, domain, client, forward, ...`); v6 keeps
`query_storage`, whose `domain` and `client` are ids into `domain_by_id` and `client_by_id` (rows written
before the upgrade still hold the strings), behind a `queries` view. The tables are read, never the view: a
view is whatever SQL the file's author wrote. (https://docs.pi-hole.net/database/query-database/)

Records: `ts` the query's arrival (`timestamp`, epoch seconds, fractional in v6), `host` the domain, `client`
the asking address; every query counts, blocked ones too. `line` is the row id (`id`).

The file is opened read-only and immutable (`?mode=ro&immutable=1`): nothing is written or created beside
it, no journal and no lock. So queries a running Pi-hole still holds in a `-wal` file beside the database
are not seen: read a copy made with `sqlite3 pihole-FTL.db ".backup copy.db"`, as Pi-hole's documentation
describes. Rows are read in batches by row id, so memory stays at one batch whatever the size of the file.
The file is untrusted: a value longer than MAX_VALUE_BYTES is reported, not loaded, and a batch that runs far
more SQLite steps than such a read needs is stopped and reported, as is a database that breaks off.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from appban.network.records import make_batch
from appban.reading.batches import rebatch
from appban.reading.parse import python_column
from appban.reading.stats import DEFAULT_BATCH_ROWS, ReadStats
from appban.reading.streams import compression_of
from appban.reading.values import null_mask, reject, select, to_text, to_timestamp

MAGIC = b"SQLite format 3\x00"
# Longest value loaded (SQLite's SQLITE_LIMIT_LENGTH): a name has at most 253 bytes, an address fewer.
MAX_VALUE_BYTES = 64 << 10
# SQLite virtual-machine steps a batch may take per row: a row-id range with two key look-ups takes well
# under a hundred; a table without a usable key, or a damaged b-tree, would take far more.
STEPS_PER_ROW = 2_000
BASE_STEPS = 100_000  # and per batch, for opening the statement
_TICK = 1_000  # steps between two calls of the progress handler


@dataclass(frozen=True)
class _Layout:
    # Names put into SQL come from this fixed set, never from the file (a table name cannot be a parameter).
    table: Literal["query_storage", "queries"]
    domains: bool  # domain_by_id is there, keyed by id
    clients: bool  # client_by_id is there, keyed by id

    def select(self, where: str) -> str:
        domain = "CASE typeof(q.domain) WHEN 'integer' THEN d.domain ELSE q.domain END" if self.domains else "q.domain"
        client = "CASE typeof(q.client) WHEN 'integer' THEN c.ip ELSE q.client END" if self.clients else "q.client"
        joins = ""
        if self.domains:
            joins += " LEFT JOIN domain_by_id d ON typeof(q.domain) = 'integer' AND d.id = q.domain"
        if self.clients:
            joins += " LEFT JOIN client_by_id c ON typeof(q.client) = 'integer' AND c.id = q.client"
        return (
            "SELECT q.rowid, CASE WHEN typeof(q.timestamp) IN ('integer', 'real') THEN q.timestamp END, "  # noqa: S608 - see _Layout
            f"CAST({domain} AS TEXT), CAST({client} AS TEXT) FROM {self.table} q{joins} WHERE {where}"
        )


class PiholeReader:
    name = "pihole"

    def sniff(self, path: Path, head: bytes) -> bool:
        # The schema is on the first page: a SQLite file that names Pi-hole's query tables.
        return head.startswith(MAGIC) and (b"query_storage" in head or b"queries" in head)

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        path = Path(path)
        if compression_of(path) is not None:
            raise ValueError(f"{path}: a compressed SQLite database cannot be read in place; decompress it first")
        # Checked now, not on the first batch: a file that is no Pi-hole database is the caller's error.
        with closing(_connect(path)) as connection:
            layout = _layout(connection, path)
        return rebatch(self._batches(path, layout, stats, batch_rows), batch_rows, stats)

    def _batches(self, path: Path, layout: _Layout, stats: ReadStats, batch_rows: int) -> Iterator[pa.RecordBatch]:
        with closing(_connect(path)) as connection:
            after = -(2**63)
            while True:
                try:
                    try:
                        rows = _fetch(connection, layout, after, batch_rows)
                        last = rows[-1][0] if rows else None
                    except sqlite3.DataError:
                        rows, last = _fetch_each(connection, layout, path, after, batch_rows, stats)
                except sqlite3.Error as exc:
                    stats.error(path, _next_line(after), f"the database cannot be read from here on ({exc})")
                    return
                if last is None:
                    return
                after = int(last)
                if rows:
                    yield self._batch(rows, path, stats)

    def _batch(self, rows: list[tuple[Any, ...]], path: Path, stats: ReadStats) -> pa.RecordBatch:
        ids, stamps, domains, clients = (list(column) for column in zip(*rows, strict=True))
        numbers = np.array(ids, dtype=np.int64)
        ts = to_timestamp(python_column(stamps), None)
        keep = reject(stats, path, numbers, null_mask(ts), lambda row: _bad_time(stamps[row]))
        host = to_text(pa.array(domains, pa.string()))
        no_host = null_mask(host) & keep
        keep &= reject(stats, path, numbers, no_host, lambda _: "missing domain, or an id domain_by_id lacks")
        record = {"ts": ts, "host": host, "client": to_text(pa.array(clients, pa.string()))}
        return make_batch(self.name, numbers[keep], select(record, keep))


def _bad_time(value: Any) -> str:
    # Values that are not numbers were nulled in SQL (a blob could be megabytes): no value to show.
    return "missing or non-numeric timestamp" if value is None else f"bad timestamp {value!r:.40}"


def _next_line(after: int) -> int:
    return max(after + 1, 1)


def _connect(path: Path) -> sqlite3.Connection:
    uri = path.resolve().as_uri() + "?mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise ValueError(f"{path}: cannot open this SQLite database: {exc}") from None
    connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    # Text that is not UTF-8 is replaced, as every reader does, instead of failing the batch.
    connection.text_factory = lambda data: data.decode("utf-8", "replace")
    return connection


def _layout(connection: sqlite3.Connection, path: Path) -> _Layout:
    try:
        kinds = dict(connection.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"))
        table: Literal["query_storage", "queries"]
        if kinds.get("query_storage") == "table":
            table = "query_storage"
        elif kinds.get("queries") == "table":
            table = "queries"
        else:
            raise ValueError(f"{path}: not a Pi-hole query database: it has no query_storage or queries table")
        columns = _columns(connection, table)
        missing = [name for name in ("timestamp", "domain", "client") if name not in columns]
        if missing:
            raise ValueError(
                f"{path}: the {table} table has no {', '.join(missing)} column; its columns: {', '.join(columns)}"
            )
        domains = _keyed(connection, kinds, "domain_by_id", "domain", path)
        clients = _keyed(connection, kinds, "client_by_id", "ip", path)
    except sqlite3.Error as exc:
        raise ValueError(f"{path}: cannot read this SQLite database: {exc}") from None
    return _Layout(table, domains, clients)


def _columns(connection: sqlite3.Connection, table: str) -> dict[str, tuple[str, int]]:
    """Name -> (declared type, position in the primary key) of a table's columns."""
    rows = connection.execute("SELECT name, type, pk FROM pragma_table_info(?)", (table,)).fetchall()
    return {str(name): (str(kind).upper(), int(pk)) for name, kind, pk in rows}


def _keyed(connection: sqlite3.Connection, kinds: dict[str, str], table: str, value: str, path: Path) -> bool:
    """Whether a linking table is there to resolve ids; one keyed otherwise would make every look-up a scan."""
    if kinds.get(table) != "table":
        return False
    columns = _columns(connection, table)
    if columns.get("id") != ("INTEGER", 1) or value not in columns:
        raise ValueError(f"{path}: {table} is not keyed by an INTEGER PRIMARY KEY id with a {value} column")
    return True


def _fetch(connection: sqlite3.Connection, layout: _Layout, after: int, limit: int) -> list[tuple[Any, ...]]:
    steps = 0
    budget = (limit * STEPS_PER_ROW + BASE_STEPS) // _TICK

    def tick() -> int:
        nonlocal steps
        steps += 1
        return int(steps > budget)  # non-zero stops the statement: sqlite3.OperationalError "interrupted"

    connection.set_progress_handler(tick, _TICK)
    try:
        sql = layout.select("q.rowid > ? ORDER BY q.rowid LIMIT ?")
        return connection.execute(sql, (after, limit)).fetchall()
    finally:
        connection.set_progress_handler(None, _TICK)


def _fetch_each(
    connection: sqlite3.Connection, layout: _Layout, path: Path, after: int, limit: int, stats: ReadStats
) -> tuple[list[tuple[Any, ...]], int | None]:
    """A batch that holds a value too long to load, one row at a time, the long rows reported; and the last
    row id it covered."""
    ids = connection.execute(
        f"SELECT rowid FROM {layout.table} WHERE rowid > ? ORDER BY rowid LIMIT ?",  # noqa: S608 - see _Layout
        (after, limit),
    ).fetchall()
    rows: list[tuple[Any, ...]] = []
    for (rowid,) in ids:
        try:
            rows.extend(_fetch(connection, layout, int(rowid) - 1, 1))
        except sqlite3.DataError:
            stats.error(path, int(rowid), f"a value longer than {MAX_VALUE_BYTES:,} bytes")
    return rows, (int(ids[-1][0]) if ids else None)
