"""The audit store: every answer given, every background run and its findings, API tokens, and the
rulebook versions the answers were given under, in SQLite or PostgreSQL.

Decisions, findings and rulebook snapshots are append-only: this class has no method that changes
or removes them, and the schema's triggers refuse an UPDATE or DELETE of them (see the initial
migration). Runs and tokens carry state (status, progress, revocation) and are updated in place.

SQLite is written by many threads and processes at once: the file runs in WAL mode with a 30 s busy
timeout, every write transaction starts with BEGIN IMMEDIATE (it takes the write lock up front, so
two writers never deadlock upgrading a read lock), and a write that still meets "database is
locked" is retried a few times with backoff, so callers never see that error.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from pydantic_core import to_json
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    Table,
    and_,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

from appban.jsontemplate import FilledJSON, JSONTemplate
from appban.knowledge.install import bundle_of
from appban.rulebook.loader import Rulebook
from appban.store import chain
from appban.store.chain import TemplateForms
from appban.store.driver_insert import DriverInsert
from appban.store.models import (
    AnswerTemplateRow,
    AuditChainRow,
    BatchRow,
    DecisionRow,
    FindingRow,
    RulebookRow,
    RunRow,
    TokenRow,
)
from appban.store.snapshots import SnapshotError, rulebook_from_canonical_json

T = TypeVar("T")
log = logging.getLogger("appban.store")

DECISION_KINDS = ("decide", "batch", "screen")
RUN_KINDS = ("inventory", "code", "network", "payments", "decide")
RUN_STATUSES = ("queued", "running", "done", "failed")
UNFINISHED = ("queued", "running")
TOKEN_SCOPES = ("read", "write")
INTERRUPTED = "interrupted: the server stopped during the run"
DEFAULT_URL = "sqlite:///appban-audit.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

DECISIONS = cast(Table, DecisionRow.__table__)
RUNS = cast(Table, RunRow.__table__)
FINDINGS = cast(Table, FindingRow.__table__)
TOKENS = cast(Table, TokenRow.__table__)
RULEBOOKS = cast(Table, RulebookRow.__table__)
BATCHES = cast(Table, BatchRow.__table__)
ANSWER_TEMPLATES = cast(Table, AnswerTemplateRow.__table__)
AUDIT_CHAIN = cast(Table, AuditChainRow.__table__)

_WRITE = "appban_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
_TRIES = 10
_BUSY_TIMEOUT_MS = 30_000
_CHECKPOINT_SECONDS = 1.0
_MIGRATION_LOCK = 0x6170_7062_616E  # PostgreSQL advisory lock key held while migrating ("appban")
_HEAD_MISSING = (
    "the audit chain's head row is missing: the store was altered behind its back (see `appban audit verify`)"
)
_TOKEN_PREFIX = "appban_"  # noqa: S105 - the public prefix of token secrets, not a secret


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4()}"


# This process's id as the owner of runs: host, pid and a random boot id (pids are reused). A worker
# forked after this import shares its parent's id; spawned workers (uvicorn's) get their own.
OWNER: str = _owner_id()


def default_url() -> str:
    """$APPBAN_DB if set, else an SQLite file `appban-audit.db` in the current directory."""
    return os.environ.get("APPBAN_DB", "").strip() or DEFAULT_URL


def _synchronous() -> str:
    """SQLite's sync level: FULL unless $APPBAN_SQLITE_SYNCHRONOUS names another (see the README for what
    NORMAL can lose)."""
    chosen = os.environ.get("APPBAN_SQLITE_SYNCHRONOUS", "").strip().upper() or "FULL"
    if chosen not in ("FULL", "EXTRA", "NORMAL"):
        raise ValueError(f"APPBAN_SQLITE_SYNCHRONOUS must be FULL, EXTRA or NORMAL, not {chosen!r}")
    return chosen


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def time_ordered_id() -> str:
    """A new decision id: a UUID of version 7 (RFC 9562), 48 bits of Unix milliseconds then 74 random bits.

    Ids recorded one after another sort one after another, so each insert lands at the end of the primary
    key's index instead of on a random page of it (a quarter less work per insert on SQLite). Python's uuid
    module makes these only from 3.14 on.
    """
    milliseconds = time.time_ns() // 1_000_000 & (1 << 48) - 1
    random_bits = int.from_bytes(os.urandom(10))  # 80 bits; 12 and 62 of them are used
    value = milliseconds << 80 | 0x7 << 76 | (random_bits >> 62 & 0xFFF) << 64 | 0b10 << 62
    return str(uuid.UUID(int=value | random_bits & (1 << 62) - 1))


def _to_json(value: Any) -> str:
    # pydantic-core's encoder: compact JSON, and about six times faster than the json module's.
    return to_json(value).decode()


@dataclass(frozen=True, slots=True)
class PreparedDecision:
    """A decisions row ready to insert, and the rulebook and answer template it needs stored first.

    `content` is the row's content digest (appban.store.chain), computed when it is prepared: only the
    links, which depend on the records before it, are computed in the writing transaction.
    """

    values: dict[str, Any]
    rulebook: Rulebook
    content: str
    template: JSONTemplate | None = None

    @property
    def id(self) -> str:
        return str(self.values["id"])


def _prepared(
    row: DecisionInput, kind: str, asked_at: dt.datetime, rulebook: Rulebook, caller: str, run_id: str | None
) -> PreparedDecision:
    """The decisions row of one answer, with a new id."""
    # A templated answer is kept as its template's name and the values of the template's gaps.
    template = row.result.template if isinstance(row.result, FilledJSON) else None
    result = row.result.values if isinstance(row.result, FilledJSON) else row.result
    values = {
        "id": time_ordered_id(),
        "kind": kind,
        "asked_at": asked_at,
        "caller": caller,
        "rulebook_version": rulebook.version,
        "instant": _utc(row.instant, "instant"),
        "input": row.input,
        "result": result,
        "run_id": run_id,
        "answer_template": template.digest if template is not None else None,
        "bundle": bundle_of(rulebook),
        **_UNLINKED,
    }
    return PreparedDecision(values, rulebook, _content(values, template), template)


_UNLINKED = {"seq": None, "prev_hash": None, "chain_hash": None}  # set in the writing transaction
_FORMS = TemplateForms()  # canonical forms of the answer templates this process records


def _content(values: dict[str, Any], template: JSONTemplate | None, batch: dict[str, Any] | None = None) -> str:
    """The content digest of a decisions row about to be written (its values as they will read back)."""
    stored = chain.stored_form(values["result"])
    answer = chain.canonical(stored) if template is None else _FORMS.answer(template, stored)
    return chain.content_digest(id=values["id"], kind=values["kind"], asked_at=values["asked_at"],
                                caller=values["caller"], rulebook_version=values["rulebook_version"],
                                instant=values["instant"], input=chain.canonical(chain.stored_form(values["input"])),
                                result=answer, run_id=values["run_id"], batch=batch)  # fmt: skip


def _linked(rows: Sequence[tuple[dict[str, Any], str]], seq: int, head: str) -> tuple[list[dict[str, Any]], int, str]:
    """Rows (values, content digest) numbered from `seq` and linked after `head`; and the new count and head."""
    linked = []
    for values, content in rows:
        hashed = chain.link(head, seq, content)
        linked.append(values | {"seq": seq, "prev_hash": head, "chain_hash": hashed})
        seq, head = seq + 1, hashed
    return linked, seq, head


class ChainHeadMissing(RuntimeError):
    """The chain's head row is gone: the store was altered behind its back, and nothing more is recorded."""


def _utc(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} has no time zone; give an aware datetime")
    return value.astimezone(dt.UTC)


def _stamp(value: dt.datetime | None) -> str | None:
    """An instant as ISO 8601 UTC with a Z, keeping microseconds (asked_at orders the log)."""
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")


def _driver_url(url: str) -> str:
    """The SQLAlchemy URL for a given one: a bare path is an SQLite file; PostgreSQL goes through psycopg 3."""
    if "://" not in url:
        return "sqlite:///" + url
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def _is_busy(exc: OperationalError) -> bool:
    """A transient conflict worth retrying: SQLite's locked/busy, PostgreSQL's deadlock or serialization failure."""
    if getattr(exc.orig, "sqlstate", None) in {"40001", "40P01"}:
        return True
    return _is_busy_message(str(exc.orig))


def _is_busy_message(message: str) -> bool:
    return "locked" in message.lower() or "busy" in message.lower()


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionInput:
    """One answer to record: the question as asked, the answer, and the instant it was about."""

    input: dict[str, Any]
    result: dict[str, Any] | FilledJSON  # FilledJSON: its template is stored once
    instant: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A recorded answer, as stored."""

    id: str
    kind: str
    asked_at: dt.datetime
    caller: str
    rulebook_version: str
    instant: dt.datetime | None
    input: dict[str, Any]
    result: dict[str, Any]
    run_id: str | None
    bundle: str | None = None  # the knowledge bundle answered under; None: the package's own data

    def to_json_dict(self) -> dict[str, Any]:
        """Every column, instants as ISO 8601 UTC strings."""
        return {
            "id": self.id,
            "kind": self.kind,
            "asked_at": _stamp(self.asked_at),
            "caller": self.caller,
            "rulebook_version": self.rulebook_version,
            "bundle": self.bundle,
            "instant": _stamp(self.instant),
            "input": self.input,
            "result": self.result,
            "run_id": self.run_id,
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A background run and its state."""

    id: str
    kind: str
    status: str
    filename: str
    caller: str
    rulebook_version: str
    options: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    progress_rows: int
    error: str | None
    summary: dict[str, Any] | None
    owner: str
    bundle: str | None = None  # the knowledge bundle screened under; None: the package's own data

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED

    def to_json_dict(self) -> dict[str, Any]:
        """Every column, instants as ISO 8601 UTC strings."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "filename": self.filename,
            "caller": self.caller,
            "rulebook_version": self.rulebook_version,
            "bundle": self.bundle,
            "options": self.options,
            "created_at": _stamp(self.created_at),
            "started_at": _stamp(self.started_at),
            "finished_at": _stamp(self.finished_at),
            "progress_rows": self.progress_rows,
            "error": self.error,
            "summary": self.summary,
            "owner": self.owner,
        }


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token; `hash` is the SHA-256 of its secret (the secret itself is never stored)."""

    id: str
    name: str
    scope: str
    hash: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json_dict(self) -> dict[str, Any]:
        """The token for listings: everything but the hash, which a listing has no use for."""
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "created_at": _stamp(self.created_at),
            "revoked_at": _stamp(self.revoked_at),
        }


def _run(row: Row[Any]) -> RunRecord:
    return RunRecord(**row._mapping)


def _token(row: Row[Any]) -> TokenRecord:
    return TokenRecord(**row._mapping)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- the store ----------------------------------------------------------------------------------


class AuditStore:
    """The audit log of one database, migrated to the current schema when opened.

    `url`: "sqlite:///path" (or a bare file path), "postgresql://user@host/db"; None means
    `default_url()`. One store holds one connection pool and is safe to share between threads.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url: str = url if url is not None else default_url()
        driver_url = make_url(_driver_url(self.url))
        self.dialect: str = driver_url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite:///FILE or postgresql://...")
        self._known_versions: set[str] = set()
        self._rulebooks: dict[str, Rulebook] = {}
        self._lock = threading.Lock()
        database = driver_url.database if self.dialect == "sqlite" else None
        in_memory = not database or database == ":memory:" or "mode=memory" in self.url
        self._lock_path = None if in_memory or database is None else Path(database + "-writers.lock")
        self._writers = threading.Lock()  # this process's writers, before the file lock shared with others
        self._lock_file: IO[str] | None = None
        self._lock_pid = 0
        self._engine = self._create_engine(driver_url.render_as_string(hide_password=False))
        try:
            self._migrate()
        except BaseException:
            self._engine.dispose()
            raise
        self._known_templates: set[str] = set()  # answer templates stored (by this process or another)
        self._templates: dict[str, JSONTemplate] = {}  # read back, for filling recorded answers
        # Decisions whose rulebook and template are already stored go straight to the driver (SQLite files;
        # an in-memory database is one connection that SQLAlchemy shares, so it keeps to SQLAlchemy).
        self._driver_insert = DriverInsert(self._engine, DECISIONS) if self._lock_path is not None else None
        self._kept: Any = None  # the pooled connection _driver_connection keeps checked out
        self._kept_pid = 0
        self._stopping = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if self._lock_path is not None:
            self._checkpointer = threading.Thread(target=self._checkpoint_now_and_then, daemon=True,
                                                  name="appban-wal-checkpoint")  # fmt: skip
            self._checkpointer.start()

    def _create_engine(self, url: str) -> Engine:
        serializer = _to_json
        if self.dialect != "sqlite":
            return create_engine(url, pool_pre_ping=True, json_serializer=serializer)
        database = make_url(url).database
        in_memory = not database or database == ":memory:" or "mode=memory" in url
        engine = create_engine(
            url,
            # No pre-ping: a SQLite connection is a file handle that does not go stale, and the ping
            # would cost a statement per transaction.
            json_serializer=serializer,
            connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
            # An in-memory database lives in one connection: share it rather than open empty ones.
            **({"poolclass": StaticPool} if in_memory else {}),
        )

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control from the sqlite3 module (it would BEGIN lazily, DEFERRED) so
            # that the "begin" hook below decides how each transaction starts.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")  # first: the next pragmas may wait
                cursor.execute("PRAGMA foreign_keys = ON")
                cursor.execute("PRAGMA journal_mode = WAL")
                # FULL syncs the WAL at every commit, so a decision answered (its commit returned) survives a
                # power cut; NORMAL would sync only at checkpoints and could lose the last commits. Group
                # commit pays one sync per burst of requests (bench/RESULTS.md measures the cost).
                cursor.execute(f"PRAGMA synchronous = {_synchronous()}")
                cursor.execute("PRAGMA wal_autocheckpoint = 0")  # the store's own thread checkpoints
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            immediate = connection.get_execution_options().get(_WRITE, False)
            # Straight to the driver: a statement through SQLAlchemy costs more than the BEGIN itself.
            connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")  # type: ignore[union-attr]

        return engine

    def __repr__(self) -> str:
        try:
            shown = make_url(_driver_url(self.url)).render_as_string(hide_password=True)
        except Exception:
            shown = "<unparsable url>"
        return f"AuditStore({shown!r})"

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stopping.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
        with self._writers:
            if self._kept is not None and self._kept_pid == os.getpid():
                self._kept.close()  # back to the pool, which dispose() then closes
            self._kept = None
        self._engine.dispose()
        with self._writers:
            if self._lock_file is not None and self._lock_pid == os.getpid():
                self._lock_file.close()
            self._lock_file = None

    def _checkpoint_now_and_then(self) -> None:
        """Copy the SQLite write-ahead log into the database once a second, off the request path.

        SQLite would otherwise checkpoint inside whichever commit crosses 1,000 pages, and that commit,
        with every writer queued behind it, would take tens of milliseconds longer. A passive checkpoint
        does not block writers. The log is also checkpointed when the last connection closes.
        """
        while not self._stopping.wait(_CHECKPOINT_SECONDS):
            try:
                with self._engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:
                log.debug("WAL checkpoint failed", exc_info=True)

    # --- transactions ---------------------------------------------------------------------------

    def _transaction(self, work: Callable[[Connection], T], *, write: bool) -> T:
        """`work(connection)` inside one transaction, retried on a transient lock conflict.

        `work` must be safe to run again: generate ids and timestamps outside it.
        """
        for attempt in range(_TRIES):
            try:
                with self._writer_turn() if write else nullcontext(), self._engine.connect() as connection:
                    if write:
                        connection.execution_options(**{_WRITE: True})
                    with connection.begin():
                        return work(connection)
            except OperationalError as exc:
                if attempt == _TRIES - 1 or not _is_busy(exc):
                    raise
                # Exponential backoff with jitter, so that colliding writers spread out.
                time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))  # noqa: S311 - jitter
        raise AssertionError("unreachable")

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Writers of one SQLite file take turns through a file lock before they begin.

        SQLite's own busy handler polls with sleeps that grow to 100 ms, so two server processes writing
        at once would add tens of milliseconds to a request; a waiter on the file lock wakes as soon as it
        is released. (PostgreSQL needs no such help.)
        """
        if self._lock_path is None:
            yield
            return
        with self._writers:
            handle = self._lock_handle()
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _lock_handle(self) -> IO[str]:
        """This process's open lock file (kept open: opening it for every write costs two system calls)."""
        # flock belongs to the open file, which a forked child shares with its parent: a child opens its own.
        if self._lock_file is None or self._lock_pid != os.getpid():
            assert self._lock_path is not None
            self._lock_file = self._lock_path.open("a")
            self._lock_pid = os.getpid()
        return self._lock_file

    def _read(self, work: Callable[[Connection], T]) -> T:
        return self._transaction(work, write=False)

    def _write(self, work: Callable[[Connection], T]) -> T:
        return self._transaction(work, write=True)

    def _all(self, statement: Select[Any]) -> list[Row[Any]]:
        return self._read(lambda c: list(c.execute(statement).all()))

    def _migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))

        def work(connection: Connection) -> None:
            # Two processes opening a new database at once must not both create the tables: on
            # SQLite BEGIN IMMEDIATE already serialises them, PostgreSQL needs an explicit lock.
            if self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        self._write(work)

    # --- decisions ------------------------------------------------------------------------------

    def record_decision(
        self,
        *,
        kind: str,
        input: dict[str, Any],
        result: dict[str, Any],
        rulebook: Rulebook,
        instant: dt.datetime | None,
        caller: str,
        run_id: str | None = None,
    ) -> str:
        """Record one answer; returns its id."""
        rows = [DecisionInput(input=input, result=result, instant=instant)]
        return self.record_decisions(rows, rulebook=rulebook, caller=caller, kind=kind, run_id=run_id)[0]

    def record_decisions(
        self,
        rows: Sequence[DecisionInput],
        *,
        rulebook: Rulebook,
        caller: str,
        kind: str = "batch",
        run_id: str | None = None,
    ) -> list[str]:
        """Record many answers in one transaction, all with the same asked_at; returns their ids in order."""
        _check(kind, DECISION_KINDS, "kind")
        if not rows:
            return []
        asked_at = _now()
        prepared = [_prepared(row, kind, asked_at, rulebook, caller, run_id) for row in rows]
        self.write_prepared(prepared)
        return [item.id for item in prepared]

    def prepare_decision(
        self,
        *,
        kind: str,
        input: dict[str, Any],
        result: dict[str, Any] | FilledJSON,
        rulebook: Rulebook,
        instant: dt.datetime | None,
        caller: str,
    ) -> PreparedDecision:
        """One answer made ready to record (its id and time of asking fixed now), for `write_prepared`:
        a server gathers the answers of requests that arrive together and writes them at once."""
        _check(kind, DECISION_KINDS, "kind")
        return _prepared(DecisionInput(input, result, instant), kind, _now(), rulebook, caller, None)

    def write_prepared(self, items: Sequence[PreparedDecision]) -> None:
        """Record prepared answers in one transaction."""
        books = {item.rulebook.version: item for item in reversed(items)}  # the first asked of each version
        templates = {item.template.digest: item.template for item in items if item.template is not None}
        with self._lock:
            templates = {digest: t for digest, t in templates.items() if digest not in self._known_templates}
            known = books.keys() <= self._known_versions and not templates
        if known and self._driver_insert is not None:
            self._write_through_driver(items)
            return

        def work(connection: Connection) -> None:
            for item in books.values():
                self._save_snapshot(connection, item.rulebook, item.values["asked_at"])
            for template in templates.values():
                self._save_template(connection, template)
            # Last, so that the head row is locked for as short a time as possible.
            seq, head = self._chain_head(connection)
            rows, seq, head = _linked([(item.values, item.content) for item in items], seq, head)
            connection.execute(insert(DECISIONS), rows)
            connection.execute(update(AUDIT_CHAIN).where(AUDIT_CHAIN.c.id == 1).values(seq=seq, head=head))

        self._write(work)
        with self._lock:
            self._known_versions.update(books)
            self._known_templates.update(templates)

    def _write_through_driver(self, items: Sequence[PreparedDecision]) -> None:
        """Insert decisions rows in a transaction of their own on the driver connection kept for it
        (SQLite; see DriverInsert), with the writers' lock and the retries of any other write."""
        insert_ = self._driver_insert
        assert insert_ is not None
        # Everything but the links is converted before the write lock is taken.
        parameters = [list(insert_.parameters(item.values)) for item in items]
        seq_at, prev_at, hash_at = (insert_.columns.index(name) for name in ("seq", "prev_hash", "chain_hash"))
        for attempt in range(_TRIES):
            try:
                with self._writer_turn():
                    driver = self._driver_connection()
                    driver.execute("BEGIN IMMEDIATE")
                    try:
                        head_row = driver.execute("SELECT seq, head FROM audit_chain WHERE id = 1").fetchone()
                        if head_row is None:
                            raise ChainHeadMissing(_HEAD_MISSING)
                        seq, head = head_row
                        for row, item in zip(parameters, items, strict=True):
                            hashed = chain.link(head, seq, item.content)
                            row[seq_at], row[prev_at], row[hash_at] = seq, head, hashed
                            seq, head = seq + 1, hashed
                        driver.executemany(insert_.sql, parameters)
                        driver.execute("UPDATE audit_chain SET seq = ?, head = ? WHERE id = 1", (seq, head))
                        driver.execute("COMMIT")
                    except BaseException:
                        if driver.in_transaction:  # nothing half-written is left for the next writer
                            driver.execute("ROLLBACK")
                        raise
                    return
            except sqlite3.OperationalError as exc:
                if attempt == _TRIES - 1 or not _is_busy_message(str(exc)):
                    raise
                time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))  # noqa: S311 - jitter

    def _chain_head(self, connection: Connection) -> tuple[int, str]:
        """The chain's count and head, locked until the transaction ends (PostgreSQL; on SQLite the
        transaction already holds the write lock): writers extend the chain one after another."""
        found = connection.execute(
            select(AUDIT_CHAIN.c.seq, AUDIT_CHAIN.c.head).where(AUDIT_CHAIN.c.id == 1).with_for_update()
        ).first()
        if found is None:
            raise ChainHeadMissing(_HEAD_MISSING)
        return int(found[0]), str(found[1])

    def _driver_connection(self) -> sqlite3.Connection:
        """This process's driver connection for `_write_through_driver`, checked out of the pool for good."""
        if self._kept is None or self._kept_pid != os.getpid():
            self._kept = self._engine.raw_connection()
            self._kept_pid = os.getpid()
        connection: sqlite3.Connection = self._kept.driver_connection
        return connection

    def record_batch(
        self, *, questions: bytes, answers: bytes, rows: int, summary: dict[str, Any], rulebook: Rulebook, caller: str
    ) -> str:
        """Record a batch decision: one "batch" decision (input: the row count; result: `summary`) and its
        question and answer tables (Arrow IPC streams). Returns its id; row i's answer is "<id>#<i>"."""
        asked_at = _now()
        batch_id = time_ordered_id()
        decision = {"id": batch_id, "kind": "batch", "asked_at": asked_at, "caller": caller,
                    "rulebook_version": rulebook.version, "instant": None,
                    "input": {"rows": rows, "format": "arrow-ipc"}, "result": summary, "run_id": None,
                    "answer_template": None, "bundle": bundle_of(rulebook), **_UNLINKED}  # fmt: skip
        content = _content(decision, None, chain.batch_content(rows, questions, answers))

        def work(connection: Connection) -> None:
            self._save_snapshot(connection, rulebook, asked_at)
            seq, head = self._chain_head(connection)
            linked, seq, head = _linked([(decision, content)], seq, head)
            connection.execute(insert(DECISIONS), linked)
            connection.execute(update(AUDIT_CHAIN).where(AUDIT_CHAIN.c.id == 1).values(seq=seq, head=head))
            connection.execute(insert(BATCHES), [{"id": batch_id, "rows": rows, "questions": questions,
                                                  "answers": answers}])  # fmt: skip

        self._write(work)
        with self._lock:
            self._known_versions.add(rulebook.version)
        return batch_id

    def batch(self, batch_id: str) -> tuple[bytes, bytes] | None:
        """The question and answer tables (Arrow IPC) of a recorded batch."""
        row = self._read(lambda c: c.execute(select(BATCHES.c.questions, BATCHES.c.answers)
                                             .where(BATCHES.c.id == batch_id)).first())  # fmt: skip
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def decision(self, decision_id: str) -> DecisionRecord | None:
        row = self._read(lambda c: c.execute(select(DECISIONS).where(DECISIONS.c.id == decision_id)).first())
        return None if row is None else self._record(row)

    def _window(self, statement: Select[Any], start: dt.datetime | None, end: dt.datetime | None) -> Select[Any]:
        start, end = _utc(start, "start"), _utc(end, "end")
        if start is not None:
            statement = statement.where(DECISIONS.c.asked_at >= start)
        if end is not None:
            statement = statement.where(DECISIONS.c.asked_at < end)
        return statement

    def decisions(
        self,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[DecisionRecord]:
        """Decisions asked in [start, end), by asked_at (then id, which orders rows of one batch arbitrarily)."""
        columns = (DECISIONS.c.asked_at, DECISIONS.c.id)
        order = [column.desc() for column in columns] if newest_first else list(columns)
        statement = self._window(select(DECISIONS), start, end).order_by(*order).offset(offset).limit(limit)
        return [self._record(row) for row in self._read(lambda c: c.execute(statement).all())]

    def iter_decisions(
        self, *, start: dt.datetime | None = None, end: dt.datetime | None = None, chunk: int = 1000
    ) -> Iterator[DecisionRecord]:
        """Decisions asked in [start, end), oldest first, fetched `chunk` at a time.

        Each chunk is its own short read (keyset paging on asked_at, id), so a long export holds no
        transaction open; rows recorded during the export after its position are included.
        """
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        base = self._window(select(DECISIONS), start, end).order_by(DECISIONS.c.asked_at, DECISIONS.c.id)
        after: tuple[dt.datetime, str] | None = None
        while True:
            statement = base.limit(chunk)
            if after is not None:
                at, last = after
                statement = statement.where(
                    or_(DECISIONS.c.asked_at > at, and_(DECISIONS.c.asked_at == at, DECISIONS.c.id > last))
                )
            page = [self._record(row) for row in self._all(statement)]
            yield from page
            if len(page) < chunk:
                return
            after = (page[-1].asked_at, page[-1].id)

    def count_decisions(self) -> int:
        return int(self._read(lambda c: c.execute(select(func.count()).select_from(DECISIONS)).scalar_one()))

    # --- rulebook snapshots ---------------------------------------------------------------------

    def _record(self, row: Row[Any]) -> DecisionRecord:
        values = dict(row._mapping)
        for name in _UNLINKED:  # the chain is for `audit verify`, not part of the record as read
            values.pop(name, None)
        digest = values.pop("answer_template")
        if digest is not None:  # the stored result holds the values of the template's gaps
            values["result"] = json.loads(self._template(digest).fill(values["result"]))
        return DecisionRecord(**values)

    def _template(self, digest: str) -> JSONTemplate:
        with self._lock:
            found = self._templates.get(digest)
        if found is None:
            body = self._read(
                lambda c: c.execute(select(ANSWER_TEMPLATES.c.body).where(ANSWER_TEMPLATES.c.digest == digest)).scalar()
            )
            if body is None:  # the schema's foreign key makes this a damaged database
                raise LookupError(f"answer template {digest} is missing from the audit store")
            found = JSONTemplate(body)
            with self._lock:
                if len(self._templates) > 10_000:
                    self._templates.clear()
                self._templates[digest] = found
        return found

    def _save_template(self, connection: Connection, template: JSONTemplate) -> None:
        insert_ = sqlite_insert if self.dialect == "sqlite" else postgresql_insert
        connection.execute(
            insert_(ANSWER_TEMPLATES)
            .values(digest=template.digest, body=template.text)
            .on_conflict_do_nothing(index_elements=["digest"])  # another writer stored it first
        )

    def _save_snapshot(self, connection: Connection, rulebook: Rulebook, stored_at: dt.datetime) -> None:
        with self._lock:
            if rulebook.version in self._known_versions:
                return
        present = connection.execute(select(RULEBOOKS.c.version).where(RULEBOOKS.c.version == rulebook.version)).first()
        if present is not None:
            return
        insert_ = sqlite_insert if self.dialect == "sqlite" else postgresql_insert
        connection.execute(
            insert_(RULEBOOKS)
            .values(version=rulebook.version, canonical_json=rulebook.canonical_json(), stored_at=stored_at)
            .on_conflict_do_nothing(index_elements=["version"])  # another writer stored it meanwhile
        )

    def save_rulebook(self, rulebook: Rulebook) -> None:
        """Store a snapshot of `rulebook` now (recording a decision does this by itself)."""
        stored_at = _now()
        self._write(lambda c: self._save_snapshot(c, rulebook, stored_at))
        with self._lock:
            self._known_versions.add(rulebook.version)

    def rulebook(self, version: str) -> Rulebook | None:
        """The rulebook of a recorded version, rebuilt from its snapshot; None if none is stored.

        Raises SnapshotError if the snapshot no longer reads back as that version.
        """
        with self._lock:
            cached = self._rulebooks.get(version)
        if cached is not None:
            return cached
        stored = self._read(
            lambda c: c.execute(select(RULEBOOKS.c.canonical_json).where(RULEBOOKS.c.version == version)).scalar()
        )
        if stored is None:
            return None
        book = rulebook_from_canonical_json(stored)
        if book.version != version:
            raise SnapshotError(f"the snapshot of {version} reads back as {book.version}")
        with self._lock:
            # Keep one object per version: the engine caches its compiled law per rulebook object.
            return self._rulebooks.setdefault(version, book)

    def rulebook_versions(self) -> list[str]:
        """Versions with a stored snapshot, oldest first."""
        statement = select(RULEBOOKS.c.version).order_by(RULEBOOKS.c.stored_at, RULEBOOKS.c.version)
        return list(self._read(lambda c: c.execute(statement).scalars().all()))

    # --- runs -----------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        kind: str,
        filename: str,
        caller: str,
        rulebook_version: str,
        options: dict[str, Any],
        owner: str,
        bundle: str | None = None,
    ) -> str:
        """A new queued run; returns its id."""
        _check(kind, RUN_KINDS, "kind")
        run_id = str(uuid.uuid4())
        values = {
            "id": run_id,
            "kind": kind,
            "status": "queued",
            "filename": filename,
            "caller": caller,
            "rulebook_version": rulebook_version,
            "options": options,
            "created_at": _now(),
            "started_at": None,
            "finished_at": None,
            "progress_rows": 0,
            "error": None,
            "summary": None,
            "owner": owner,
            "bundle": bundle,
        }
        self._write(lambda c: c.execute(insert(RUNS).values(values)))
        return run_id

    def _update_run(self, run_id: str, **values: Any) -> None:
        def work(connection: Connection) -> int:
            return connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values)).rowcount

        if self._write(work) == 0:
            raise KeyError(f"no run {run_id!r}")

    def start_run(self, run_id: str) -> None:
        """Status running, started now. Raises KeyError for an unknown run (so do the other run updates)."""
        self._update_run(run_id, status="running", started_at=_now())

    def set_progress(self, run_id: str, rows: int) -> None:
        self._update_run(run_id, progress_rows=rows)

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        """Status done, finished now, with the run's summary."""
        self._update_run(run_id, status="done", finished_at=_now(), summary=summary)

    def fail_run(self, run_id: str, error: str) -> None:
        """Status failed, finished now, with the error."""
        self._update_run(run_id, status="failed", finished_at=_now(), error=error)

    def add_findings(self, run_id: str, findings: Sequence[dict[str, Any]]) -> None:
        """Append findings to a run, numbered on from its last one, in one transaction."""
        if not findings:
            return

        def work(connection: Connection) -> None:
            # Lock the run's row (PostgreSQL; SQLite's BEGIN IMMEDIATE already excludes other writers) so
            # that two appenders cannot both take the same next seq.
            locked = connection.execute(select(RUNS.c.id).where(RUNS.c.id == run_id).with_for_update()).first()
            if locked is None:
                raise KeyError(f"no run {run_id!r}")
            last = connection.execute(
                select(func.max(FINDINGS.c.seq)).where(FINDINGS.c.run_id == run_id)
            ).scalar_one_or_none()
            first = 0 if last is None else int(last) + 1
            rows = [{"run_id": run_id, "seq": first + i, "data": data} for i, data in enumerate(findings)]
            connection.execute(insert(FINDINGS), rows)

        self._write(work)

    def run(self, run_id: str) -> RunRecord | None:
        row = self._read(lambda c: c.execute(select(RUNS).where(RUNS.c.id == run_id)).first())
        return None if row is None else _run(row)

    def runs(self, *, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        statement = select(RUNS).order_by(RUNS.c.created_at.desc(), RUNS.c.id.desc()).limit(limit)
        return [_run(row) for row in self._read(lambda c: c.execute(statement).all())]

    def findings(self, run_id: str, *, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Findings `offset` .. `offset + limit - 1` of a run, in order."""
        # seq runs 0, 1, 2... within a run, so a page is a range of the primary key, not an OFFSET scan.
        statement = (
            select(FINDINGS.c.data)
            .where(FINDINGS.c.run_id == run_id, FINDINGS.c.seq >= offset, FINDINGS.c.seq < offset + limit)
            .order_by(FINDINGS.c.seq)
        )
        return list(self._read(lambda c: c.execute(statement).scalars().all()))

    def findings_at(self, run_id: str, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The findings of a run numbered `seqs` (a page of a sorted or filtered view), by number."""
        statement = select(FINDINGS.c.seq, FINDINGS.c.data).where(
            FINDINGS.c.run_id == run_id, FINDINGS.c.seq.in_(list(seqs))
        )
        return {int(seq): data for seq, data in self._read(lambda c: c.execute(statement).all())}

    def count_findings(self, run_id: str) -> int:
        statement = select(func.count()).select_from(FINDINGS).where(FINDINGS.c.run_id == run_id)
        return int(self._read(lambda c: c.execute(statement).scalar_one()))

    def fail_interrupted_runs(self, *, owner_alive: Callable[[str], bool] | None = None) -> int:
        """Mark unfinished runs whose owner is gone as failed; returns how many.

        By default only this process counts as alive, so a server calling this at startup fails
        every run that an earlier process left queued or running. Where several server processes
        share one database, pass `owner_alive` that knows which of them are still up.
        """

        def only_this_process(owner: str) -> bool:
            return owner == OWNER

        alive = owner_alive or only_this_process
        finished_at = _now()

        def work(connection: Connection) -> int:
            unfinished = connection.execute(select(RUNS.c.id, RUNS.c.owner).where(RUNS.c.status.in_(UNFINISHED))).all()
            verdicts: dict[str, bool] = {}
            dead = [run_id for run_id, owner in unfinished if not verdicts.setdefault(owner, alive(owner))]
            if not dead:
                return 0
            return connection.execute(
                update(RUNS)
                .where(RUNS.c.id.in_(dead), RUNS.c.status.in_(UNFINISHED))
                .values(status="failed", finished_at=finished_at, error=INTERRUPTED)
            ).rowcount

        return self._write(work)

    # --- tokens ---------------------------------------------------------------------------------

    def create_token(self, *, name: str, scope: str) -> tuple[str, str]:
        """A new token: (its id, its secret "appban_<id>_<random>"). Only the secret's hash is stored."""
        _check(scope, TOKEN_SCOPES, "scope")
        if not name.strip():
            raise ValueError("a token needs a name")
        token_id = secrets.token_hex(6)
        secret = f"{_TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        values = {
            "id": token_id,
            "name": name.strip(),
            "scope": scope,
            "hash": _hash(secret),
            "created_at": _now(),
            "revoked_at": None,
        }
        self._write(lambda c: c.execute(insert(TOKENS).values(values)))
        return token_id, secret

    def check_token(self, secret: str) -> TokenRecord | None:
        """The live token this secret belongs to, or None (unknown, wrong or revoked)."""
        token_id, sep, _ = secret.removeprefix(_TOKEN_PREFIX).partition("_")
        digest = _hash(secret)
        row = None
        if secret.startswith(_TOKEN_PREFIX) and sep:
            row = self._read(lambda c: c.execute(select(TOKENS).where(TOKENS.c.id == token_id)).first())
        # Compare digests in constant time, and compare something even when the id is unknown.
        expected = row.hash if row is not None else _hash("")
        if not hmac.compare_digest(expected.encode(), digest.encode()) or row is None:
            return None
        token = _token(row)
        return None if token.revoked else token

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token; False if there is no such token. Revoking twice keeps the first time."""

        def work(connection: Connection) -> bool:
            exists = connection.execute(select(TOKENS.c.id).where(TOKENS.c.id == token_id)).first()
            if exists is None:
                return False
            connection.execute(
                update(TOKENS).where(TOKENS.c.id == token_id, TOKENS.c.revoked_at.is_(None)).values(revoked_at=_now())
            )
            return True

        return self._write(work)

    def tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones too, oldest first."""
        statement = select(TOKENS).order_by(TOKENS.c.created_at, TOKENS.c.id)
        return [_token(row) for row in self._read(lambda c: c.execute(statement).all())]


# --- replay -------------------------------------------------------------------------------------

_QUESTION = ("app", "transaction", "where", "at")


class ReplayError(ValueError):
    """A decision that cannot be replayed: unknown id, no snapshot of its rulebook, or not a question."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """A recorded decision asked again under the rulebook version it was recorded under."""

    decision: DecisionRecord
    recorded_version: str
    replayed: dict[str, Any]
    identical: bool
    differences: list[str]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.decision.id,
            "kind": self.decision.kind,
            "recorded_version": self.recorded_version,
            "identical": self.identical,
            "differences": self.differences,
            "recorded": self.decision.result,
            "replayed": self.replayed,
        }


def differences(recorded: Any, replayed: Any, path: str = "") -> list[str]:
    """The dotted paths (list items as [i]) at which two JSON values differ; [] when they are equal."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        found: list[str] = []
        for key in dict.fromkeys([*recorded, *replayed]):
            where = f"{path}.{key}" if path else str(key)
            if key not in recorded or key not in replayed:
                found.append(where)
            else:
                found.extend(differences(recorded[key], replayed[key], where))
        return found
    if isinstance(recorded, list) and isinstance(replayed, list):
        found = []
        for i in range(max(len(recorded), len(replayed))):
            where = f"{path}[{i}]"
            if i >= len(recorded) or i >= len(replayed):
                found.append(where)
            else:
                found.extend(differences(recorded[i], replayed[i], where))
        return found
    # Same value and same JSON type: true is not 1.
    if type(recorded) is type(replayed) and recorded == replayed:
        return []
    return [path or "(result)"]


def _is_question(value: object) -> bool:
    return isinstance(value, dict) and all(key in value for key in _QUESTION)


def _ask(rulebook: Rulebook, question: dict[str, Any]) -> dict[str, Any]:
    # Imported here: the engine is only needed to replay, not to record.
    from appban.engine.decide import DecisionInputError, decide

    try:
        decision = decide(
            question["app"],
            question["transaction"],
            question["where"],
            question["at"],
            question.get("facts") or None,
            tz=question.get("tz"),
            rulebook=rulebook,
        )
    except DecisionInputError as exc:
        raise ReplayError(f"the recorded question is not valid under its rulebook: {exc}") from exc
    return decision.to_json_dict()


def replay(store: AuditStore, decision_id: str) -> ReplayResult:
    """Ask a recorded question again under its recorded rulebook version and compare the answers.

    A "decide" record's input is {"app", "transaction", "where", "at", "facts"} and its result a
    `Decision.to_json_dict()`. Another kind replays the same way if its input has those keys, or,
    if its input holds {"rows": [question, ...]}, each row against the result's "rows". Nothing is
    ignored in the comparison: the same rulebook must give the same answer.
    """
    batch_id, _, row_text = decision_id.partition("#")
    record = store.decision(batch_id)
    if record is None:
        raise ReplayError(f"no recorded decision {decision_id!r}")
    if record.input.get("format") == "arrow-ipc":
        return _replay_batch(store, record, row_text)
    rows = record.input.get("rows")
    batch = isinstance(rows, list) and bool(rows) and all(_is_question(row) for row in rows)
    if not _is_question(record.input) and (record.kind == "decide" or not batch):
        if record.kind == "decide":
            raise ReplayError(f"decision {decision_id} has no question to replay (needs {', '.join(_QUESTION)})")
        raise ReplayError(f"cannot replay a {record.kind} record")
    try:
        rulebook = store.rulebook(record.rulebook_version)
    except SnapshotError as exc:
        raise ReplayError(str(exc)) from exc
    if rulebook is None:
        raise ReplayError(f"the store has no snapshot of rulebook {record.rulebook_version}; cannot replay")
    if _is_question(record.input):
        replayed = _ask(rulebook, record.input)
        found = differences(record.result, replayed)
    else:
        assert isinstance(rows, list)
        replayed = {"rows": [_ask(rulebook, row) for row in rows]}
        found = differences(record.result.get("rows"), replayed["rows"], "rows")
    return ReplayResult(
        decision=record,
        recorded_version=record.rulebook_version,
        replayed=replayed,
        identical=not found,
        differences=found,
    )


def _replay_batch(store: AuditStore, record: DecisionRecord, row_text: str) -> ReplayResult:
    """A recorded batch (or one row of it, "<id>#<row>") decided again; answers compared column by column."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from appban.engine.batch import OUTPUT_COLUMNS, decide_table

    tables = store.batch(record.id)
    if tables is None:
        raise ReplayError(f"batch {record.id} has no recorded tables")
    questions, answers = (ipc.open_stream(pa.py_buffer(data)).read_all() for data in tables)
    if row_text:
        if not row_text.isdigit() or int(row_text) >= questions.num_rows:
            raise ReplayError(f"batch {record.id} has rows 0 to {questions.num_rows - 1}, not {row_text!r}")
        questions, answers = questions.slice(int(row_text), 1), answers.slice(int(row_text), 1)
    try:
        rulebook = store.rulebook(record.rulebook_version)
    except SnapshotError as exc:
        raise ReplayError(str(exc)) from exc
    if rulebook is None:
        raise ReplayError(f"the store has no snapshot of rulebook {record.rulebook_version}; cannot replay")
    decided = decide_table(questions, rulebook=rulebook)
    names = [name for name in OUTPUT_COLUMNS if name in answers.column_names]
    recorded = {name: answers.column(name).to_pylist() for name in names}
    replayed = {name: decided.column(name).to_pylist() for name in names}
    found = differences(recorded, replayed)
    return ReplayResult(decision=record, recorded_version=record.rulebook_version, replayed=replayed,
                        identical=not found, differences=found)  # fmt: skip
