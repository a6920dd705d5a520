"""New knowledge without a restart: SIGHUP, or `POST /v1/admin/reload` (a write token).

Either one loads the knowledge in force again (`appban.knowledge.layout.active_root()`, or the service's own
rulebook directory when it was given one) off the event loop, with every list the screeners match against
bound to the new rulebook from the same root, and only when all of it reads swaps it in, in one assignment
(`Desk.use_rulebook`). Requests already answering keep the rulebook they started with; a knowledge root that
does not read leaves the old one serving and says why (the route's answer, or the log for SIGHUP).

With `--workers N` the supervisor passes SIGHUP on to every worker, and the route asks the supervisor to, so
that every worker answers under the new version, not only the one the request reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from appban.rulebook.loader import Rulebook
from appban.service.auth import Caller, writer
from appban.service.settings import ServiceSettings
from appban.service.workers import SUPERVISOR_ENV

log = logging.getLogger("appban.reload")


class ReloadOut(BaseModel):
    rulebook_version: str  # the version answering from now on
    previous_version: str
    changed: bool
    workers_told: bool  # the other workers of this server were told to load it too


def load_knowledge(settings: ServiceSettings) -> Rulebook:
    """The rulebook in force, with the lists the screeners use loaded from the same knowledge root and checked
    against it (so that a root with a broken list is refused whole, before anything is swapped)."""
    from appban.code.signatures import load_signatures
    from appban.knowledge.layout import active_root
    from appban.network.indicators import load_indicators
    from appban.rulebook.loader import load_rulebook

    root = active_root()
    book = load_rulebook(settings.rulebook if settings.rulebook else root.path("rulebook"))
    # The keys `default_indicators` and `default_signatures` read: the screens then use these, not the files
    # of whatever root is in force when a screen first asks.
    book.derived["indicators"] = load_indicators(book, root.path("network/indicators.yaml"))
    book.derived["signatures"] = load_signatures(book, root.path("code/signatures.yaml"))
    return book


async def reload_knowledge(app: FastAPI) -> tuple[str, str]:
    """Load the knowledge again and answer under it: (previous version, new version). Reloads take turns."""
    lock: asyncio.Lock = app.state.reload_lock
    async with lock:
        settings: ServiceSettings = app.state.settings
        book = await run_in_threadpool(load_knowledge, settings)
        previous = app.state.desk.rulebook
        if book.version == previous.version:
            return previous.version, previous.version  # the same law: keep the one whose caches are warm
        app.state.desk.use_rulebook(book)
        log.info("knowledge reloaded: rulebook %s (was %s)", book.version, previous.version)
        return previous.version, book.version


def install_sighup(app: FastAPI) -> None:
    """Reload on SIGHUP (in the process's main thread only: a test client's app runs elsewhere and goes without)."""
    app.state.reload_lock = asyncio.Lock()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Any]] = set()

    async def reload_logged() -> None:
        try:
            await reload_knowledge(app)
        except Exception:  # a bad root: the old knowledge keeps serving
            log.exception("SIGHUP: the knowledge could not be loaded; still answering under %s",
                          app.state.desk.rulebook.version)  # fmt: skip

    def on_hangup() -> None:
        task = loop.create_task(reload_logged())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError):  # not the main thread; no SIGHUP
        return
    app.state.reload_tasks = tasks


def remove_sighup() -> None:
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError, AttributeError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)


def reload_routes(app: FastAPI) -> None:
    @app.post("/v1/admin/reload", response_model=ReloadOut, tags=["service"])
    async def reload(request: Request, caller: Annotated[Caller, Depends(writer)]) -> ReloadOut:
        """Load the knowledge in force again (an installed bundle, or the rulebook directory the service was
        given) and answer under it from now on; requests already answering finish under the old one. A knowledge
        root that does not read is refused (422, naming each problem) and the old one keeps answering."""
        try:
            previous, now = await reload_knowledge(request.app)
        except ValueError as exc:  # RulebookError and the lists' errors
            current = request.app.state.desk.rulebook.version
            message = f"the knowledge cannot be loaded; still answering under {current}: {exc}"
            raise HTTPException(422, message) from None
        return ReloadOut(rulebook_version=now, previous_version=previous, changed=now != previous,
                         workers_told=_tell_supervisor())  # fmt: skip


def _tell_supervisor() -> bool:
    """In a worker of `serve --workers N`, ask the supervisor to pass SIGHUP on to every worker."""
    supervisor = os.environ.get(SUPERVISOR_ENV, "")
    if not supervisor.isdigit() or int(supervisor) != os.getppid():
        return False
    os.kill(int(supervisor), signal.SIGHUP)
    return True
