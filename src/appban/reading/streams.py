"""Files as decompressed byte streams (gzip and zstd told by their magic bytes), and their first bytes."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, cast

import pyarrow as pa

HEAD_BYTES = 64 << 10  # what detection looks at
UTF8_BOM = b"\xef\xbb\xbf"
_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd")


def compression_of(path: Path) -> str | None:
    """How `path` is compressed ("gzip", "zstd" or None), told by its magic bytes, not its name.

    A `.gz` that holds plain text is read as plain text; a rotated log renamed without its suffix is inflated.
    """
    with Path(path).open("rb") as raw:
        magic = raw.read(4)
    for prefix, codec in _MAGIC.items():
        if magic.startswith(prefix):
            return codec
    return None


def open_stream(path: Path) -> BinaryIO:
    """The decompressed bytes of `path` as a stream: gzip and zstd are inflated as they are read."""
    # pyarrow's streams inflate incrementally (concatenated gzip members too) and release the GIL.
    return cast(BinaryIO, pa.input_stream(str(path), compression=compression_of(path)))


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """Up to `size` decompressed bytes from the start; fewer if the stream is short or breaks off."""
    parts: list[bytes] = []
    got = 0
    with open_stream(path) as stream:
        try:
            while got < size:
                part = stream.read(min(1 << 14, size - got))
                if not part:
                    break
                parts.append(part)
                got += len(part)
        except (OSError, pa.ArrowException):
            pass  # a truncated archive still shows its first lines; the read reports the break
    return b"".join(parts).removeprefix(UTF8_BOM)


def cr_only(data: bytes) -> bool:
    """Whether text ends its lines with a bare CR (classic Mac OS exports): it has CRs but no LF at all."""
    return b"\r" in data and b"\n" not in data


def log_name(path: Path) -> str:
    """The file name without a compression suffix, lower-cased: "dns.04:00:00-05:00:00.log"."""
    name = Path(path).name.lower()
    for suffix in _COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def head_lines(head: bytes, limit: int = 20) -> list[str]:
    """The first non-blank complete lines of a head, decoded leniently (detection must not fail on bytes)."""
    text = head.decode("utf-8", "replace")
    if cr_only(head):
        text = text.replace("\r", "\n")
    if len(head) >= HEAD_BYTES:
        text = text.rsplit("\n", 1)[0]  # the last line may be cut off
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()][:limit]
