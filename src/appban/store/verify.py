"""Verification of the audit chain, and checkpoints of its head.

`verify_store(url)` walks every decision in chain order inside one read-only snapshot, streaming (memory
does not grow with the store), recomputes each content digest and link, and reports the first break:

- altered: a record's fields no longer hash to its link (or its answer template was changed);
- missing: a sequence number is absent (a record was deleted);
- inserted: a record with no place in the chain, one sharing a sequence number with another, or one
  the next record was not written after;
- forked: a record that links correctly, but to a different predecessor than the record before it (that
  record was replaced, or two writers extended the same head);
- moved: a record that neither follows its predecessor nor links at its position (reordered, renumbered);
- head: the chain's head (count and last hash, kept in the same transaction as every insert) disagrees
  with the records (records removed from, or added at, the end);
- checkpoint: an exported checkpoint is not a prefix of the chain (records before it changed and were
  rehashed, or removed from the end);
- snapshot: a stored rulebook snapshot no longer hashes to its version.

Without a secret nothing stops someone who can write the database from recomputing every link after an
edit: the chain then verifies by itself, and only a checkpoint kept outside the database shows it.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from appban import safejson
from appban.store.chain import ChainError, genesis, link, sha256
from appban.store.stored import Contents, StoredRow, select_sql, tolerant_text

CHECKPOINT_FORMAT = "appban-audit-checkpoint/1"
_CHUNK = 1000


class VerifyUsageError(ValueError):
    """Nothing to verify: no such database, not an audit store, or a store from before the chain."""


class CheckpointError(ValueError):
    """A checkpoint file that does not read (the message names the file, line and field)."""


@dataclass(frozen=True, slots=True)
class Break:
    """The first broken link: what kind, where (sequence number, record id) and what differs."""

    kind: str
    seq: int | None
    record: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain's head at one time: the store, how many records it had, and the last one's link hash."""

    store: str
    count: int
    head: str
    at: str
    last_id: str | None = None
    origin: str = ""  # where it was read from ("file:line"), for messages

    def to_json_dict(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "store": self.store, "count": self.count, "head": self.head,
                "at": self.at, "last_id": self.last_id}  # fmt: skip


@dataclass(slots=True)
class Report:
    """What verification found. `problem` is None when the chain is intact."""

    store: str | None = None
    count: int = 0
    head: str | None = None
    checkpoints: int = 0
    snapshots: int = 0
    problem: Break | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def to_json_dict(self) -> dict[str, Any]:
        return {"intact": self.intact, "store": self.store, "count": self.count, "head": self.head,
                "checkpoints_checked": self.checkpoints, "snapshots_checked": self.snapshots,
                "problem": None if self.problem is None else asdict(self.problem)}  # fmt: skip


# --- checkpoints --------------------------------------------------------------------------------


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """Every checkpoint in a file of JSON lines (as `appban audit checkpoint -o` appends them)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read: {exc}") from None
    found: list[Checkpoint] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            found.append(_checkpoint(_line(path, number, line), f"{path}:{number}"))
    if not found:
        raise CheckpointError(f"{path}: no checkpoint in the file")
    return found


def _line(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        value = safejson.loads(line)
    except ValueError as exc:
        raise CheckpointError(f"{path}:{number}: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}:{number}: a checkpoint is a JSON object")
    return value


def _checkpoint(value: dict[str, Any], origin: str) -> Checkpoint:
    if value.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{origin}: field format: expected {CHECKPOINT_FORMAT!r}")
    for name in ("store", "head", "at"):
        if not isinstance(value.get(name), str) or not value[name]:
            raise CheckpointError(f"{origin}: field {name}: expected a non-empty string")
    count = value.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise CheckpointError(f"{origin}: field count: expected a whole number of records")
    if len(value["head"]) != 64 or any(c not in "0123456789abcdef" for c in value["head"]):
        raise CheckpointError(f"{origin}: field head: expected a SHA-256 in lower-case hex")
    last = value.get("last_id")
    return Checkpoint(value["store"], count, value["head"], value["at"],
                      last if isinstance(last, str) else None, origin)  # fmt: skip


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """One line at the end of `path`, in a single write to a file opened for appending, then synced: the
    file only ever grows, and a crash leaves at most a last line without its newline."""
    line = (json.dumps(checkpoint.to_json_dict(), separators=(",", ":")) + "\n").encode()
    # Never through a link (one planted beside the checkpoints could aim a root run at any file); a device
    # or FIFO is written through unsynced, as every other -o does (outputs.py).
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
            os.write(descriptor, line)
            return
        if not stat.S_ISREG(mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        if os.fstat(descriptor).st_size:  # a line left without its newline by a crash would swallow this one
            with path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = b"\n" + line
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- opening a store read-only ------------------------------------------------------------------


@contextmanager
def read_only(url: str) -> Iterator[tuple[Connection, str]]:
    """A connection inside one read-only snapshot transaction; never creates or migrates a database."""
    from appban.store.audit import _driver_url  # the store's URL rules, not a second copy of them

    parsed = make_url(_driver_url(url))
    dialect = parsed.get_backend_name()
    if dialect == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or "mode=memory" in url:
            raise VerifyUsageError("an in-memory database has nothing to verify")
        if not Path(database).is_file():
            raise VerifyUsageError(f"no audit database at {database}")
        location = f"file:{quote(str(Path(database).resolve()))}?mode=ro"
        engine = create_engine(
            "sqlite://",
            poolclass=NullPool,
            creator=lambda: sqlite3.connect(location, uri=True, check_same_thread=False),
        )

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # the BEGIN below is the only transaction

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.connection.dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]
    elif dialect == "postgresql":
        engine = create_engine(parsed, poolclass=NullPool).execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    else:
        raise VerifyUsageError(f"unsupported database {dialect!r}: use sqlite:///FILE or postgresql://...")
    try:
        with engine.connect() as connection, connection.begin():
            yield connection, dialect
    finally:
        engine.dispose()


# --- the walk -----------------------------------------------------------------------------------


def head_of(connection: Connection) -> tuple[str, int, str, int]:
    """(store id, count, head hash, rows in the head table) as the database holds them."""
    rows = connection.exec_driver_sql("SELECT store_id, seq, head FROM audit_chain ORDER BY id").all()
    if not rows:
        raise ChainError("the chain's head row is missing")
    store, count, head = rows[0]
    if not isinstance(store, str) or not isinstance(count, int) or not isinstance(head, str):
        raise ChainError("the chain's head row does not read")
    return store, count, head, len(rows)


def has_chain(connection: Connection, dialect: str) -> bool:
    if dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('audit_chain', 'decisions')"
    else:
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
               "AND table_name IN ('audit_chain', 'decisions')")  # fmt: skip
    return len(connection.exec_driver_sql(sql).all()) == 2


def verify_store(url: str, checkpoints: Sequence[Checkpoint] = ()) -> Report:
    """Verify the store at `url` (and that each checkpoint is a prefix of its chain). Raises VerifyUsageError
    when there is no chained audit store to verify."""
    with read_only(url) as (connection, dialect):
        if not has_chain(connection, dialect):
            raise VerifyUsageError("not an audit store with a chain (run any other audit command once to migrate it)")
        with tolerant_text(connection):
            return verify(connection, dialect, checkpoints)


def verify(connection: Connection, dialect: str, checkpoints: Sequence[Checkpoint] = ()) -> Report:
    """Walk the chain on `connection` (inside a snapshot transaction) and report the first break."""
    report = Report()
    try:
        store, head_count, head_hash, head_rows = head_of(connection)
    except ChainError as exc:
        report.problem = Break("head", None, None, str(exc))
        return report
    report.store = store
    if head_rows != 1:
        report.problem = Break("head", None, None, f"the chain has {head_rows} head rows instead of one")
        return report
    for checkpoint in checkpoints:
        if checkpoint.store != store:
            report.problem = Break("checkpoint", None, None, f"{checkpoint.origin}: the checkpoint is of store "
                                   f"{checkpoint.store}, this is store {store}")  # fmt: skip
            return report
    report.problem = _walk(connection, dialect, report, genesis(store), checkpoints)
    if report.problem is None:
        report.problem = _unchained(connection)
    if report.problem is None:
        report.problem = _compare_head(report, head_count, head_hash)
    if report.problem is None:
        report.problem = _past_the_end(report, checkpoints)
    if report.problem is None:
        report.problem = _snapshots(connection, report)
    return report


def _walk(
    connection: Connection, dialect: str, report: Report, first_prev: str, checkpoints: Sequence[Checkpoint]
) -> Break | None:
    contents = Contents(connection, dialect)
    at_count: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        at_count.setdefault(checkpoint.count, []).append(checkpoint)
    expected, prev, before_prev, last_id = 0, first_prev, "", ""
    found = _at_checkpoint(at_count.get(0, ()), prev, 0, None)
    if found is not None:
        return found
    result = connection.execute(
        text(select_sql(dialect, where="WHERE d.seq IS NOT NULL")),
        execution_options={"stream_results": True, "yield_per": _CHUNK},
    )
    for raw in result:
        row = StoredRow(*raw)
        problem = _check(row, contents, expected, prev, before_prev, last_id)
        if problem is not None:
            result.close()
            if problem.kind in ("altered", "forked", "moved") and problem.seq == expected:
                return _shared_place(connection, dialect, contents, expected, prev) or problem
            return problem
        before_prev, prev, last_id = prev, row.chain_hash, row.shown_id
        expected += 1
        report.count, report.head = expected, prev
        found = _at_checkpoint(at_count.get(expected, ()), prev, expected, row)
        if found is not None:
            result.close()
            return found
    report.count, report.head = expected, prev
    return None


def _check(
    row: StoredRow, contents: Contents, expected: int, prev: str, before_prev: str, last_id: str
) -> Break | None:
    seq, here = row.seq, row.shown_id
    if not isinstance(seq, int) or isinstance(seq, bool):
        return Break("inserted", None, here, f"record {here} has a sequence number that is not one ({seq!r})")
    try:
        content: str | None = contents.digest(row)
        unreadable = ""
    except ChainError as exc:
        content, unreadable = None, str(exc)
    if seq < expected:
        if content is not None and row.prev_hash == before_prev and link(before_prev, seq, content) == row.chain_hash:
            return Break("forked", seq, here, f"records {last_id} and {here} both hold seq {seq} and follow seq "
                         f"{seq - 1}: the chain forked")  # fmt: skip
        return Break("inserted", seq, here, f"seq {seq} is held by record {last_id}; record {here} claims it too")
    if seq > expected:
        absent = f"seq {expected}" if seq == expected + 1 else f"seq {expected} to {seq - 1}"
        return Break("missing", expected, None, f"{absent} absent: the next record present is {here} at seq {seq}")
    if content is None:
        return Break("altered", seq, here, f"record {here} at seq {seq} was altered: {unreadable}")
    if row.prev_hash != prev:
        if expected > 1 and row.prev_hash == before_prev:
            return Break("inserted", seq - 1, last_id, f"record {last_id} at seq {seq - 1} was not in the chain when "
                         f"record {here} (seq {seq}) was written after seq {seq - 2}: it was inserted")  # fmt: skip
        if link(row.prev_hash, seq, content) == row.chain_hash:
            before = last_id or "the genesis"
            return Break("forked", seq, here, f"record {here} at seq {seq} follows another record than {before}: "
                         "the record before it was replaced, or the chain forked")  # fmt: skip
        return Break("moved", seq, here, f"record {here} at seq {seq} neither follows seq {seq - 1} nor links at "
                     "this position: records were reordered, renumbered or altered")  # fmt: skip
    if link(prev, seq, content) != row.chain_hash:
        note = contents.template_note(row.answer_template)
        detail = f"record {here} at seq {seq} was altered: its fields no longer hash to its link"
        return Break("altered", seq, here, detail + (f" ({note})" if note else ""))
    return None


def _shared_place(connection: Connection, dialect: str, contents: Contents, seq: int, prev: str) -> Break | None:
    """When two records hold the place of a broken link, the one that does not link there was inserted."""
    where = f"WHERE d.seq = {int(seq)}"
    rows = [StoredRow(*raw) for raw in connection.execute(text(select_sql(dialect, where=where)))]
    if len(rows) < 2:
        return None

    def links(row: StoredRow) -> bool:
        try:
            return bool(row.prev_hash == prev and link(prev, seq, contents.digest(row)) == row.chain_hash)
        except ChainError:
            return False

    held = [row.shown_id for row in rows if links(row)]
    forged = [row.shown_id for row in rows if not links(row)]
    if not forged:
        return Break("forked", seq, held[-1], f"records {', '.join(held)} all hold seq {seq} and follow seq "
                     f"{seq - 1}: the chain forked")  # fmt: skip
    holder = f"held by record {held[0]}" if held else "held by none of them"
    return Break("inserted", seq, forged[0], f"{len(rows)} records claim seq {seq} ({holder}): record "
                 f"{forged[0]} was inserted")  # fmt: skip


def _at_checkpoint(checkpoints: Sequence[Checkpoint], head: str, count: int, row: StoredRow | None) -> Break | None:
    for checkpoint in checkpoints:
        if checkpoint.head != head:
            where = "" if row is None else f" (the record at seq {count - 1} is {row.shown_id})"
            return Break("checkpoint", count - 1 if count else None, None if row is None else row.shown_id,
                         f"{checkpoint.origin}: the chain's first {count} records differ from the checkpoint of "
                         f"{checkpoint.at}{where}: records before it were changed and the chain rebuilt")  # fmt: skip
    return None


def _past_the_end(report: Report, checkpoints: Sequence[Checkpoint]) -> Break | None:
    for checkpoint in sorted(checkpoints, key=lambda c: -c.count):
        if checkpoint.count > report.count:
            return Break("checkpoint", report.count, None, f"{checkpoint.origin}: the checkpoint of {checkpoint.at} "
                         f"counts {checkpoint.count} records, the chain has {report.count}: records were removed "
                         "from its end")  # fmt: skip
        report.checkpoints += 1
    return None


def _unchained(connection: Connection) -> Break | None:
    row = connection.exec_driver_sql("SELECT id FROM decisions WHERE seq IS NULL ORDER BY asked_at, id").first()
    if row is None:
        return None
    shown = row[0] if isinstance(row[0], str) else repr(row[0])
    return Break("inserted", None, shown, f"record {shown} has no place in the chain: it was inserted behind "
                 "the store's back")  # fmt: skip


def _compare_head(report: Report, count: int, head: str) -> Break | None:
    if count > report.count:
        return Break("head", report.count, None, f"the chain's head counts {count} records, the chain has "
                     f"{report.count}: the last {count - report.count} were removed")  # fmt: skip
    if count < report.count:
        return Break("head", count, None, f"the chain has {report.count} records, its head counts {count}: "
                     f"records from seq {count} on were added behind the store's back")  # fmt: skip
    if head != report.head:
        return Break("head", count - 1 if count else None, None, "the chain's head hash is not the last record's "
                     "link: the head or the last record was changed")  # fmt: skip
    return None


def _snapshots(connection: Connection, report: Report) -> Break | None:
    for version, body in connection.exec_driver_sql("SELECT version, canonical_json FROM rulebooks ORDER BY version"):
        if not isinstance(body, str) or "sha256:" + sha256(body)[:16] != version:
            return Break(
                "snapshot", None, None, f"the snapshot of rulebook {version!r} no longer hashes to its version"
            )
        report.snapshots += 1
    return None


def checkpoint_of(connection: Connection) -> Checkpoint:
    """The chain's current head as a checkpoint, if the last record agrees with it (else ChainError)."""
    store, count, head, rows = head_of(connection)
    if rows != 1:
        raise ChainError(f"the chain has {rows} head rows instead of one")
    last_id = None
    if count:
        found = connection.execute(text("SELECT id, chain_hash FROM decisions WHERE seq = :s"), {"s": count - 1}).all()
        if len(found) != 1 or found[0][1] != head:
            raise ChainError(
                f"the chain's head (count {count}) is not its last record's link: run `appban audit verify`"
            )
        last_id = str(found[0][0])
    elif head != genesis(store):
        raise ChainError("the chain's head of an empty chain is not its genesis: run `appban audit verify`")
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return Checkpoint(store, count, head, at, last_id)
