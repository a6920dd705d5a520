"""Who is calling: API tokens (stored hashed, see appban.store) with a read or write scope.

Reads may be opened to callers without a token (`--open-reads`); writes never are. A token checked once is
remembered for a few seconds, so a revoked token stops working within that time. Only text shaped like a
token (`appban tokens create` makes them) is looked up or remembered, and by its hash: whatever a caller
sends as a token costs the server a few bytes at most.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

_bearer = HTTPBearer(auto_error=False, description="An API token from `appban tokens create`")
_REMEMBER_SECONDS = 5.0
_REMEMBERED = 10_000  # tokens remembered at once; all are forgotten when full
# "appban_<id>_<random>" (see AuditStore.create_token), with room for longer ids and secrets to come.
_TOKEN_SHAPE = re.compile(r"appban_[0-9a-f]{1,32}_[A-Za-z0-9_-]{16,128}")
MAX_TOKEN_CHARS = 200


@dataclass(frozen=True)
class Caller:
    name: str  # the token's name, or "anonymous"
    scope: str  # "read" or "write"


def _identify(request: Request, bearer: str | None) -> Caller | None:
    secret = bearer or request.headers.get("x-appban-token")
    if not secret:
        return None
    if len(secret) > MAX_TOKEN_CHARS or not _TOKEN_SHAPE.fullmatch(secret):
        raise HTTPException(401, "not an API token (they look like appban_<id>_<secret>: `appban tokens create`)")
    cache: dict[bytes, tuple[float, Caller | None]] = request.app.state.__dict__.setdefault("token_cache", {})
    key = hashlib.sha256(secret.encode()).digest()
    now = time.monotonic()
    known = cache.get(key)
    if known is None or now - known[0] > _REMEMBER_SECONDS:
        record = request.app.state.store.check_token(secret)
        known = (now, Caller(record.name, record.scope) if record is not None else None)
        if len(cache) >= _REMEMBERED:
            cache.clear()
        cache[key] = known
    if known[1] is None:
        raise HTTPException(401, "unknown or revoked API token")
    return known[1]


ANONYMOUS = Caller("anonymous", "read")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def reader(request: Request, credentials: Credentials) -> Caller:
    return _open_or_refuse(request, _identify(request, credentials.credentials if credentials else None))


def read_caller(request: Request) -> Caller:
    """`reader` for a route that declares no dependencies (the busiest): it reads the bearer token itself,
    as HTTPBearer does."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    return _open_or_refuse(request, _identify(request, bearer))


def _open_or_refuse(request: Request, caller: Caller | None) -> Caller:
    if caller is not None:
        return caller
    if request.app.state.settings.open_reads:
        return ANONYMOUS
    raise HTTPException(401, "this route needs an API token (Authorization: Bearer ...): `appban tokens create`")


async def writer(request: Request, credentials: Credentials) -> Caller:
    caller = _identify(request, credentials.credentials if credentials else None)
    if caller is None:
        raise HTTPException(401, "writes need an API token with the write scope (Authorization: Bearer ...)")
    if caller.scope != "write":
        raise HTTPException(403, f"token {caller.name!r} may only read; this route needs the write scope")
    return caller
