"""Compressed wrappers (gzip, zstd) as the readers meet them."""

from __future__ import annotations

import gzip

import pyarrow as pa


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return bytes(sink.getvalue().to_pybytes())


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
