"""Long-lived worker processes, each under an address-space limit, with a wall-clock limit per input.

The parent sends (target, file name, bytes); the worker writes the file into its own scratch folder, runs
the target and answers with an outcome. A worker that overruns its time is killed and replaced (hang); one
that dies is replaced too (crash if by a signal such as SIGSEGV; oom if by SIGKILL, the kernel's OOM killer).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection
import os
import resource
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OK, REPORTED, CRASH, HANG, OOM = "ok", "reported", "crash", "hang", "oom"
FAILURES = (CRASH, HANG, OOM)


@dataclass
class Outcome:
    kind: str  # ok / reported / crash / hang / oom
    detail: str = ""  # crash: "Type at file:function: message"
    signature: str = ""  # what makes two failures the same failure: type and innermost project frame
    rss_kb: int = 0
    seconds: float = 0.0


def _frame(exc: BaseException) -> str:
    """The innermost frame inside the project (else the innermost one), as file:function."""
    frames = traceback.extract_tb(exc.__traceback__)
    cause = exc.__cause__
    while cause is not None:  # a CLI crash chains the real exception
        frames = traceback.extract_tb(cause.__traceback__) or frames
        cause = cause.__cause__
    ours = [f for f in frames if "/appban/" in f.filename.replace(os.sep, "/")]
    if not (ours or frames):
        return "?"
    frame = (ours or frames)[-1]
    name = frame.filename.replace(os.sep, "/")
    name = name.split("/src/", 1)[-1] if "/src/" in name else name.rsplit("/", 2)[-1]
    return f"{name}:{frame.name}:{frame.lineno}"


def _classify(exc: BaseException, reported: tuple[type[BaseException], ...]) -> Outcome:
    if isinstance(exc, MemoryError) or isinstance(exc.__cause__, MemoryError):
        return Outcome(OOM, f"MemoryError at {_frame(exc)}", f"MemoryError@{_frame(exc).rsplit(':', 1)[0]}")
    if reported and isinstance(exc, reported):
        return Outcome(REPORTED, f"{type(exc).__name__}: {str(exc)[:200]}")
    real = exc
    while real.__cause__ is not None and type(real).__name__ == "CliCrash":
        real = real.__cause__
    where = _frame(exc)
    message = str(real).replace("\n", " ")[:300]
    return Outcome(
        CRASH, f"{type(real).__name__} at {where}: {message}", f"{type(real).__name__}@{where.rsplit(':', 1)[0]}"
    )


def _limit_memory(extra_mb: int) -> None:
    with open("/proc/self/status", encoding="ascii") as status:
        size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = (size_kb << 10) + (extra_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _worker(conn: multiprocessing.connection.Connection, extra_mb: int) -> None:
    from fuzz.targets import TARGETS

    # Warm the imports and caches before the limit: it bounds what one input may add, not startup.
    for name in ("appban.tables", "appban.engine.batch", "appban.screen.inventory", "appban.screen.payments",
                 "appban.screen.network", "appban.code.scan", "appban.cli", "typer.testing"):  # fmt: skip
        __import__(name)
    from fuzz import targets

    targets._book()
    targets._markers()
    targets._signatures()
    targets._screener()
    _limit_memory(extra_mb)
    scratch = Path(tempfile.mkdtemp(prefix="appban-fuzz-"))
    os.chdir(scratch)
    # What the code under test prints (error messages quoting megabytes of hostile input) is not ours to read.
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    conn.send(("ready", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        if message is None:
            break
        target_name, file_name, data = message
        target = TARGETS[target_name]
        folder = scratch / "in"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        path = folder / (file_name.replace("/", "_") or "input")
        started = time.monotonic()
        try:
            path.write_bytes(data)
            del data
            target.run(path)
            outcome = Outcome(OK)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            try:
                outcome = _classify(exc, target.reported())
            except MemoryError:
                outcome = Outcome(OOM, "MemoryError while classifying")
        outcome.seconds = time.monotonic() - started
        outcome.rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.send(("done", outcome))
    shutil.rmtree(scratch, ignore_errors=True)


class Worker:
    def __init__(self, context: Any, extra_mb: int, start_timeout: float = 180.0) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, extra_mb), daemon=True)
        self.process.start()
        child.close()
        self.busy: tuple[Any, float] | None = None  # (the job's token, its deadline)
        try:
            if not self.conn.poll(start_timeout):
                raise EOFError
            self.base_rss_kb = self.conn.recv()[1]
        except (EOFError, OSError):
            self.kill()
            raise RuntimeError("a fuzz worker did not start (does `import appban` work?)") from None

    def send(self, token: Any, target: str, name: str, data: bytes, timeout: float) -> None:
        self.conn.send((target, name, data))
        self.busy = (token, time.monotonic() + timeout)

    def kill(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(30)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.kill()


class Pool:
    """Runs jobs on `size` workers; `results()` yields (token, Outcome) as they finish, in any order."""

    def __init__(self, size: int, extra_mb: int = 1536, timeout: float = 10.0) -> None:
        self.context = mp.get_context("forkserver")
        self.extra_mb = extra_mb
        self.timeout = timeout
        self.workers = [Worker(self.context, extra_mb) for _ in range(size)]
        self.peak_rss_kb = max(w.base_rss_kb for w in self.workers)
        self.restarts = 0

    def run(self, jobs: Any) -> Any:
        """jobs: iterable of (token, target, name, data). Yields (token, Outcome)."""
        pending = iter(jobs)
        exhausted = False
        while True:
            for i, worker in enumerate(self.workers):
                if worker.busy is None and not exhausted:
                    job = next(pending, None)
                    if job is None:
                        exhausted = True
                        break
                    token, target, name, data = job
                    try:
                        worker.send(token, target, name, data, self.timeout)
                    except OSError:
                        self.workers[i] = self._replace(worker)
                        self.workers[i].send(token, target, name, data, self.timeout)
            busy = [w for w in self.workers if w.busy is not None]
            if not busy:
                return
            deadline = min(w.busy[1] for w in busy if w.busy is not None)
            ready = multiprocessing.connection.wait([w.conn for w in busy], max(0.0, deadline - time.monotonic()))
            for i, worker in enumerate(self.workers):
                if worker.busy is None:
                    continue
                token, due = worker.busy
                if worker.conn in ready:
                    try:
                        _, outcome = worker.conn.recv()
                    except (EOFError, OSError):
                        worker.process.join(5)
                        code = worker.process.exitcode
                        outcome = self._death(code)
                        self.workers[i] = self._replace(worker)
                    else:
                        worker.busy = None
                        if outcome.kind == OOM:
                            # A worker that ran out of memory once would blame every later input.
                            self.workers[i] = self._replace(worker)
                    self.peak_rss_kb = max(self.peak_rss_kb, outcome.rss_kb)
                    yield token, outcome
                elif time.monotonic() >= due:
                    self.workers[i] = self._replace(worker)
                    yield token, Outcome(HANG, f"no answer within {self.timeout:g} s", "hang", 0, self.timeout)

    def _death(self, code: int | None) -> Outcome:
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            kind = OOM if -code == signal.SIGKILL else CRASH
            return Outcome(kind, f"the worker died: {name}", f"died:{name}")
        return Outcome(CRASH, f"the worker exited with {code}", f"exit:{code}")

    def _replace(self, worker: Worker) -> Worker:
        worker.kill()
        self.restarts += 1
        return Worker(self.context, self.extra_mb)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
