"""How large a request's head (request line and headers) the server reads before it refuses the request.

uvicorn's fast parser (httptools) keeps every header byte a client sends, however many: a client sending
megabytes of headers on many connections holds that much of the server's memory, and the app would only see
them once they had all arrived. Here the count is kept as the head arrives, and past the cap the connection
is answered 431 (or 414 for a long URL) and closed before the app is called.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Bytes of request line and headers together; far above what a browser or an API client sends.
MAX_HEAD_BYTES = 32 * 1024
#: Bytes of the request target (path and query).
MAX_URL_BYTES = 8 * 1024


def uvicorn_http_options() -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config that cap the size of a request's head."""
    return {"http": CappedHttpToolsProtocol, "h11_max_incomplete_event_size": MAX_HEAD_BYTES}


class _HeadTooLarge(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _refusal(status: int, message: str) -> bytes:
    reason = {414: "URI Too Long", 431: "Request Header Fields Too Large"}[status]
    body = json.dumps({"error": {"status": status, "message": message, "details": []}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


# At module level, so that `appban serve --workers N` can hand the class to its worker processes.
class CappedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request whose head grows beyond the caps."""

    _head_bytes = 0
    _refused: _HeadTooLarge | None = None

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            self._refuse(414, f"the request target is longer than {MAX_URL_BYTES:,} bytes")
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(431, f"the request line and headers are larger than {MAX_HEAD_BYTES:,} bytes")

    def _refuse(self, status: int, message: str) -> None:
        # Raised inside the parser's callback: httptools stops parsing and uvicorn answers the request as
        # malformed, by send_400_response below.
        self._refused = _HeadTooLarge(status, message)
        raise self._refused

    def send_400_response(self, msg: str) -> None:
        refused, self._refused = self._refused, None
        if refused is None:
            super().send_400_response(msg)
            return
        self.transport.write(_refusal(refused.status, str(refused)))
        self.transport.close()
