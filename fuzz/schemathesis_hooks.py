"""Loaded by schemathesis (SCHEMATHESIS_HOOKS=fuzz.schemathesis_hooks): bodies for the batch route's media
types, which it cannot serialise by itself. Whatever it generated goes out as bytes, hostile or not."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    data = getattr(value, "data", None)  # schemathesis' wrapper around generated binary strings
    if isinstance(data, bytes):
        return data
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value, default=str).encode()


@schemathesis.serializer("application/x-ndjson", "application/vnd.apache.arrow.stream")
def _batch_body(ctx: Any, value: Any) -> bytes:
    return _raw(value)
