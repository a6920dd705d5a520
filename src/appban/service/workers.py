"""Worker processes for `appban serve --workers N`, with connections dealt out to them in turn.

uvicorn's supervisor gives every worker the same listening socket, and the worker that wakes first accepts
every connection waiting on it: clients that connect together (a pipeline's connection pool, a load
balancer's keep-alive pool) all land on one worker while the others idle. Giving each worker a socket of
its own on the same port (SO_REUSEPORT) is no cure either: the kernel picks one at random for each
connection, so four connections over two workers split 3-1 or 4-0 more often than 2-2, and the busiest
worker sets everyone's pace.

Here the supervisor accepts each connection itself and hands it to the next worker in turn, over a Unix
socket (SCM_RIGHTS); the worker serves it with uvicorn's own HTTP protocol. That is one accept and one
message per connection, not per request. A worker that cannot take a connection (it is starting, or gone)
is skipped.

A worker that dies is started again; one that dies within seconds of starting stops the server (its app
cannot start, and would fail the same way again). SIGINT or SIGTERM stops every worker; SIGHUP is passed on
to every worker, which loads the knowledge again (appban.service.reload).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

log = logging.getLogger("appban.workers")
_QUICK_DEATH = 10.0  # seconds: a worker dying sooner than this after its start failed to start
_PR_SET_PDEATHSIG = 1
_ACCEPT_WAKE = 0.2  # seconds between the accepting thread's checks for a stop
# Set in each worker: the supervisor's pid, so that a reload asked of one worker can reach them all.
SUPERVISOR_ENV = "APPBAN_SUPERVISOR_PID"


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """The supervisor's listening TCP socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY from the listening socket (on Linux). Without it a worker's
    # small answers would wait ~40 ms for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


class _HandedConnections(uvicorn.Server):
    """uvicorn serving the connections handed to it on `channel`, with no listening socket of its own."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._adopting: set[asyncio.Task[object]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._adopt)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets)

    def _adopt(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.channel, 16, 16)
            except BlockingIOError:
                return
            if not message:  # the supervisor has gone
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(loop.connect_accepted_socket(self._protocol, socket.socket(fileno=fd)))
                self._adopting.add(task)
                task.add_done_callback(self._adopting.discard)

    def _protocol(self) -> asyncio.Protocol:
        # What uvicorn's startup builds for the connections of its own listening sockets.
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol


def _serve(config: uvicorn.Config, channel: socket.socket) -> None:
    """One worker process: uvicorn serving the connections the supervisor hands it."""
    if sys.platform == "linux":
        # Stop with the supervisor even if it is killed outright, rather than serve on as an orphan.
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # A SIGHUP passed on while this worker starts must not end it: its app loads the knowledge as it starts,
    # and handles SIGHUP itself once it has.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.environ[SUPERVISOR_ENV] = str(os.getppid())
    config.configure_logging()
    _HandedConnections(config, channel).run()


@dataclass
class _Worker:
    process: BaseProcess
    started: float  # time.monotonic()
    channel: socket.socket  # the supervisor's end


def _deal(listener: socket.socket, workers: list[_Worker], stopping: threading.Event) -> None:
    """Accept connections and hand each to the next worker that takes it (the accepting thread)."""
    turn = 0
    listener.settimeout(_ACCEPT_WAKE)
    while not stopping.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            if stopping.is_set():
                return
            log.exception("accepting a connection failed")
            time.sleep(_ACCEPT_WAKE)
            continue
        with connection:  # the worker has its own copy once handed over
            for _ in range(len(workers)):
                worker = workers[turn % len(workers)]
                turn += 1
                try:
                    socket.send_fds(worker.channel, [b"c"], [connection.fileno()], socket.MSG_DONTWAIT)
                    break
                except OSError:  # starting, stuck or gone: the next one
                    continue
            else:
                log.warning("no worker could take a connection; it is closed")


def run_workers(config: uvicorn.Config, count: int) -> int:
    """Serve with `count` worker processes until SIGINT or SIGTERM; the exit status."""
    listener = listening_socket(config.host, config.port, config.backlog)
    context = multiprocessing.get_context("spawn")  # no fork: the parent's threads and handles stay behind
    stopping = threading.Event()
    status = 0

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start(slot: int) -> _Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = context.Process(target=_serve, args=(config, theirs), name=f"appban-worker-{slot}")
        process.start()
        theirs.close()
        return _Worker(process, time.monotonic(), ours)

    workers = [start(slot) for slot in range(count)]

    def relay(signum: int, _frame: FrameType | None) -> None:
        for worker in workers:
            pid = worker.process.pid
            if pid is not None and worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)

    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, relay)
    dealer = threading.Thread(target=_deal, args=(listener, workers, stopping), name="appban-accept", daemon=True)
    dealer.start()
    try:
        while not stopping.is_set():
            time.sleep(0.2)
            for slot, worker in enumerate(workers):
                if worker.process.is_alive() or stopping.is_set():
                    continue
                worker.channel.close()
                if time.monotonic() - worker.started < _QUICK_DEATH:
                    log.error("worker %s exited with %s while starting; stopping", worker.process.pid,
                              worker.process.exitcode)  # fmt: skip
                    stopping.set()
                    status = 1
                    break
                log.warning("worker %s exited with %s; starting another", worker.process.pid, worker.process.exitcode)
                workers[slot] = start(slot)
    finally:
        stopping.set()
        dealer.join(timeout=5)
        listener.close()
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for worker in workers:
            worker.process.join(timeout=30)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            with contextlib.suppress(OSError):
                worker.channel.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
