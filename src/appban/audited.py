"""Decisions and screening runs that leave an audit record: what the service does, without HTTP.

`Desk` answers questions with the engine and records each answer in the audit store (append-only, with
the rulebook version, the instant asked about, the time of asking and the caller). Screening runs go to
a small pool of threads; their progress and findings are written to the store as they come, so a run is
visible while it works and survives as a record (done, or failed) whatever happens to the process.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from appban.engine.batch import OUTPUT_COLUMNS, decide_table
from appban.engine.decide import decide_filled
from appban.engine.instants import InstantError, iso, parse_instant
from appban.engine.timeline import Timeline, timeline
from appban.jsontemplate import FilledJSON
from appban.knowledge.install import bundle_of
from appban.rulebook.loader import Rulebook
from appban.screen.jobs import (
    check_options,
    failure_message,
    means_now,
    options_instant,
    run_screen,
    utc_now,
    with_now_resolved,
)
from appban.store import OWNER, AuditStore, DecisionRecord, PreparedDecision, RunRecord, replay
from appban.store.loop_commit import LoopCommitter

log = logging.getLogger("appban.audited")

_FINDINGS_PER_WRITE = 1000
# What `serve --demo` screens into a new store: each sample's screen, file name and options.
DEMO_SAMPLES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("payments", "processor-export.csv", {}),
    ("payments", "credit-transfers.xml", {}),
    ("inventory", "app-store-catalog.csv", {}),
    ("inventory", "jamf-mobile-device-apps.csv", {"fleet": "government"}),
)
_PROGRESS_EVERY = 0.5  # seconds between progress writes of one run


class Desk:
    """The engine and the screeners behind an audit store; one per server process."""

    def __init__(
        self,
        store: AuditStore,
        rulebook: Rulebook,
        screen_workers: int = 1,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.store = store
        self.rulebook = rulebook
        self.clock = clock  # what `now` is (an instant asked as `now`, or not given, is this one)
        self._pool = ThreadPoolExecutor(screen_workers, thread_name_prefix="appban-screen")
        self._commits: LoopCommitter[PreparedDecision] = LoopCommitter(store.write_prepared)
        self._closed = threading.Event()
        # Runs an earlier process left unfinished (it was killed, or the machine stopped) can never finish.
        self.interrupted = store.fail_interrupted_runs(owner_alive=owner_alive)

    def close(self) -> None:
        self._closed.set()
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._commits.close()  # the group commit's writer thread

    # --- questions ---

    async def decide_answer(
        self,
        app: str,
        transaction: str,
        where: str,
        at: str | None,
        facts: dict[str, Any],
        tz: str | None,
        caller: str,
    ) -> tuple[str, FilledJSON]:
        """`decide()`, recorded, on a server's event loop: the decision id and the decision as JSON (a template
        and its gaps' values), returned once the record is committed. Records of requests answered together
        share one transaction.

        An `at` of `now`, or none, is this instant (`clock`): the answer's `at` states it, and the record keeps
        it as the instant asked about (with `at_given`, what was sent), so a replay decides the same instant."""
        when: str | dt.datetime = at if at is not None and not means_now(at) else self.clock()
        book = self.rulebook  # one rulebook for the answer and its record, whatever a reload swaps in meanwhile
        # The answer as its segment's template and the values of its gaps: the store keeps each template once.
        answer, instant = decide_filled(app, transaction, where, when, facts, tz=tz, rulebook=book)
        asked = {"app": app, "transaction": transaction, "where": where, "at": at, "facts": facts, "tz": tz}
        if isinstance(when, dt.datetime):
            asked |= {"at": iso(instant), "at_given": at}  # at_given: "now" as sent, or null when none was sent
        prepared = self.store.prepare_decision(
            kind="decide", input=asked, result=answer, rulebook=book, instant=instant, caller=caller
        )
        await self._commits.commit(prepared)
        return prepared.id, answer

    def decide_batch(
        self, table: pa.Table, caller: str, tz: str | None = None, max_questions: int | None = None
    ) -> tuple[str, pa.Table]:
        """decide_table(), recorded as one batch: its id, and the table with the decision columns."""
        book = self.rulebook  # one rulebook for the answers and their record, whatever a reload swaps in meanwhile
        decided = decide_table(table, tz=tz, rulebook=book, max_questions=max_questions)
        verdicts = decided.column("verdict").combine_chunks()
        counts = pc.value_counts(verdicts.cast(pa.string()) if pa.types.is_dictionary(verdicts.type) else verdicts)
        summary = {"by_verdict": {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}}
        answers = decided.select([name for name in OUTPUT_COLUMNS if name in decided.column_names])
        batch_id = self.store.record_batch(
            questions=arrow_bytes(table),
            answers=arrow_bytes(answers),
            rows=table.num_rows,
            summary=summary,
            rulebook=book,
            caller=caller,
        )
        return batch_id, decided

    def timeline(self, app: str, where: str, start: str | None, end: str | None, tz: str | None) -> Timeline:
        """Every change for an app; `from` or `to` may be `now`, as the CLI's --from and --to take it."""
        since = self.clock() if means_now(start) else start
        until = self.clock() if means_now(end) else end
        return timeline(app, where, since, until, tz=tz, rulebook=self.rulebook)

    def use_rulebook(self, book: Rulebook) -> Rulebook:
        """Answer from now on under `book` (with the lists bound to it); the rulebook it replaces.

        One assignment, so a request sees the old rulebook or the new one, never a mix: each question reads
        `self.rulebook` once and keeps that one to its record. Old records replay under their own version (the
        store's snapshots); the new version is snapshotted with the first record made under it."""
        previous, self.rulebook = self.rulebook, book
        return previous

    def replay(self, decision_id: str) -> Any:
        return replay(self.store, decision_id)

    def audit(self, start: str | None, end: str | None, limit: int, offset: int) -> list[DecisionRecord]:
        # A bare date or a time without an offset is read in UTC, as the store keeps it.
        try:
            first = parse_instant(start, "UTC") if start else None
        except InstantError as exc:
            raise InstantError(f"from: {exc}") from None
        try:
            last = parse_instant(end, "UTC") if end else None
        except InstantError as exc:
            raise InstantError(f"to: {exc}") from None
        return self.store.decisions(start=first, end=last, limit=limit, offset=offset, newest_first=True)

    # --- screening runs ---

    def screen_samples(self, samples: Path) -> list[str]:
        """Screen the demo's sample files (a demo store's first content: `appban/service/demo`, package data,
        copies of a few of the repository's examples); their run ids."""
        started = []
        for kind, name, options in DEMO_SAMPLES:
            source = samples / name
            if source.is_file():
                folder = Path(tempfile.mkdtemp(prefix="appban-sample-"))
                shutil.copy(source, folder / "upload")
                started.append(self.start_screen(kind, folder / "upload", source.name, options, "demo"))
        return started

    def start_screen(self, kind: str, upload: Path, filename: str, options: dict[str, str], caller: str) -> str:
        """Queue a screening run of an uploaded file (which the run then owns and deletes); its id.

        An `at` of `now` is this instant, written into the options the run is recorded with."""
        check_options(kind, options)
        options = with_now_resolved(options, self.clock())
        book = self.rulebook  # the run screens under the rulebook it was queued with, even after a reload
        run_id = self.store.create_run(
            kind=kind,
            filename=filename,
            caller=caller,
            rulebook_version=book.version,
            options=options,
            owner=OWNER,
            bundle=bundle_of(book),
        )
        self._pool.submit(self._run, book, run_id, kind, upload, filename, options, caller)
        return run_id

    def _run(
        self, book: Rulebook, run_id: str, kind: str, upload: Path, filename: str, options: dict[str, str], caller: str
    ) -> None:
        store = self.store
        last = [0.0]

        def progress(rows: int) -> None:
            now = time.monotonic()
            if now - last[0] >= _PROGRESS_EVERY:
                last[0] = now
                store.set_progress(run_id, rows)

        try:
            store.start_run(run_id)
            # The screeners name files by path; give them the uploaded file under its own name.
            named = upload.parent / Path(filename).name
            upload.rename(named)
            upload = named
            outcome = run_screen(kind, upload, options, book, _counting(progress), hide_folder=upload.parent)
            for start in range(0, len(outcome.findings), _FINDINGS_PER_WRITE):
                store.add_findings(run_id, outcome.findings[start : start + _FINDINGS_PER_WRITE])
            summary = {**outcome.summary, "findings": len(outcome.findings), "errors": outcome.errors[:100]}
            store.record_decision(
                kind="screen",
                input={"kind": kind, "filename": filename, "options": options},
                result=summary,
                rulebook=book,
                instant=options_instant(options),  # the instant the run decided at, when one was given
                caller=caller,
                run_id=run_id,
            )
            store.finish_run(run_id, summary)
        except Exception as exc:
            log.exception("screening run %s failed", run_id)
            store.fail_run(run_id, failure_message(exc, upload.parent))
        finally:
            shutil.rmtree(upload.parent, ignore_errors=True)

    def run(self, run_id: str) -> RunRecord | None:
        return self.store.run(run_id)

    def runs(self, limit: int) -> list[RunRecord]:
        return self.store.runs(limit=limit)


def owner_alive(owner: str) -> bool:
    """Whether the server process that owns a run may still be working on it.

    Owners are "host:pid:uuid". On this host a run's process is alive when its pid is (other workers of
    the same server keep their runs); a run of another host is left alone, since nothing here can tell.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    if int(pid_text) == os.getpid():
        return owner == OWNER
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _counting(report: Any) -> Any:
    """Screeners report rows per batch (network, payments) or a total (inventory, code): keep a running count."""
    seen = [0]

    def add(rows: int) -> None:
        seen[0] += rows
        report(seen[0])

    return add


def arrow_bytes(table: pa.Table, compression: str | None = "zstd") -> bytes:
    """A table as an Arrow IPC stream, compressed (zstd) unless told otherwise."""
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(compression=compression)
    with ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()
