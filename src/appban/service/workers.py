"""Worker processes for `appban serve --workers N`, each listening on a socket of its own.

uvicorn's supervisor gives every worker the same listening socket. The worker that wakes first then accepts
every connection waiting on it, so clients that connect together (a pipeline's connection pool, a load
balancer's keep-alive pool) all land on one worker while the others idle. Here each worker listens on its
own socket bound to the same port with SO_REUSEPORT, and the kernel spreads new connections over them.

A worker that dies is started again on its socket; one that dies within seconds of starting stops the
server (its app cannot start, and would fail the same way again). SIGINT or SIGTERM stops every worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

log = logging.getLogger("appban.workers")
_QUICK_DEATH = 10.0  # seconds: a worker dying sooner than this after its start failed to start
_PR_SET_PDEATHSIG = 1


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket that other sockets may bind to the same port as well (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Accepted connections inherit TCP_NODELAY from the listening socket (on Linux). Without it a worker's
    # small answers would wait ~40 ms for the client's delayed ACK: asyncio sets it only on sockets it
    # knows to be TCP, and it cannot tell for a socket handed over from another process.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _serve(config: uvicorn.Config, sock: socket.socket) -> None:
    """One worker process: uvicorn on its own socket."""
    if sys.platform == "linux":
        # Stop with the supervisor even if it is killed outright, rather than serve on as an orphan.
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    config.configure_logging()
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(config: uvicorn.Config, count: int) -> int:
    """Serve with `count` worker processes until SIGINT or SIGTERM; the exit status."""
    sockets = [listening_socket(config.host, config.port, config.backlog) for _ in range(count)]
    context = multiprocessing.get_context("spawn")  # no fork: the parent's threads and handles stay behind
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start(slot: int) -> tuple[BaseProcess, float]:
        process = context.Process(target=_serve, args=(config, sockets[slot]), name=f"appban-worker-{slot}")
        process.start()
        return process, time.monotonic()

    workers = [start(slot) for slot in range(count)]
    status = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for slot, (process, started) in enumerate(workers):
                if process.is_alive() or stopping:
                    continue
                if time.monotonic() - started < _QUICK_DEATH:
                    log.error("worker %s exited with %s while starting; stopping", process.pid, process.exitcode)
                    stopping.append(0)
                    status = 1
                    break
                log.warning("worker %s exited with %s; starting another", process.pid, process.exitcode)
                workers[slot] = start(slot)
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for process, _ in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
