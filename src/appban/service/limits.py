"""Request limits: header and body sizes, enforced as the request arrives (a chunked body has no
Content-Length to trust), and the turns batches take."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.exceptions import HTTPException

from appban.service.protocol import MAX_HEAD_BYTES
from appban.service.settings import ServiceSettings

Scope = dict[str, Any]
Receive = Any
Send = Any


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a body larger than the route's limit gets 413 before the route sees it, and headers
    larger than MAX_HEAD_BYTES get 431. `appban serve` refuses such headers as they arrive (see
    appban.service.protocol); this check holds under any other ASGI server too."""

    def __init__(self, app: Any, settings: ServiceSettings) -> None:
        self.app = app
        self.settings = settings

    def limit(self, path: str, content_type: str) -> int:
        if path.startswith("/v1/screens/"):
            return self.settings.max_upload_bytes
        if path == "/v1/decide/batch" and content_type.startswith("application/vnd.apache.arrow"):
            return self.settings.max_batch_bytes
        if path == "/v1/decide/batch":
            return max(self.settings.max_body_bytes, self.settings.max_batch_bytes // 4)
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type, declared, chunked = "", None, False
        if sum(len(key) + len(value) for key, value in scope["headers"]) > MAX_HEAD_BYTES:
            await _reject(send, 431, f"the headers are larger than {MAX_HEAD_BYTES:,} bytes")
            return
        for key, value in scope["headers"]:  # names arrive in lower case (ASGI)
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"content-length":
                declared = value.decode("latin-1")
            elif key == b"transfer-encoding":
                chunked = True
        limit = self.limit(scope["path"], content_type)
        if declared is not None:
            if not declared.strip().isdigit():
                await _reject(send, 400, "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _reject(send, 413, f"the body is {int(declared):,} bytes; this route takes at most {limit:,}")
                return
            if not chunked:
                # The server delivers exactly Content-Length bytes: nothing more to count.
                await self.app(scope, receive, send)
                return
        received = 0
        exceeded = False
        started = False

        async def counted() -> Any:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def watched(message: Any) -> None:
            # A framework may turn the error raised while reading the body into a response of its own
            # (FastAPI answers 400): once the limit is exceeded, the 413 replaces whatever the app says.
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reject(send, 413, f"the body is larger than this route takes ({limit:,} bytes)")
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                started = True
                await _reject(send, 413, f"the body is larger than this route takes ({limit:,} bytes)")


async def _reject(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"status": status, "message": message, "details": []}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Turns:
    """At most `workers` holders at once, and at most `queue` waiting; a request beyond both gets 429."""

    def __init__(self, workers: int, queue: int) -> None:
        self._free = asyncio.Semaphore(workers)
        self._queue = queue
        self._waiting = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._free.locked() and self._waiting >= self._queue:
            raise HTTPException(429, "the server is busy with other batches; try again", {"Retry-After": "5"})
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._free.release()
