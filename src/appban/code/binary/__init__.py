"""Small pure-Python readers for untrusted binary formats found inside APKs and IPAs.

Every reader takes bytes (or any flat byte buffer) and either returns plain data or raises
MalformedBinary; sizes and offsets read from the input are checked against the buffer before use,
so a lying header costs an exception, never a large allocation or a long loop.
"""

from __future__ import annotations

from typing import TypeAlias

BytesLike: TypeAlias = bytes | bytearray | memoryview


class MalformedBinary(ValueError):
    """The input is not a well-formed file of the expected format (or exceeds a safety cap)."""


def byte_view(data: BytesLike) -> memoryview:
    """A flat unsigned-byte view of `data`, without copying; every reader starts here."""
    view = memoryview(data)
    if view.ndim != 1 or view.format != "B":
        try:
            view = view.cast("B")
        except TypeError as exc:  # non-contiguous buffers cannot be cast
            raise MalformedBinary("input is not a contiguous byte buffer") from exc
    return view


# The readers import MalformedBinary and byte_view from this package, so they are imported after
# those are defined.
from appban.code.binary.apksig import Certificate, signer_certificates, signing_block_certificates  # noqa: E402
from appban.code.binary.ar import ar_members, static_library_objects  # noqa: E402
from appban.code.binary.axml import ManifestInfo, read_manifest  # noqa: E402
from appban.code.binary.dex import DexInfo, class_names, read_dex  # noqa: E402
from appban.code.binary.macho import MachOSlice, fat_slices, read_macho  # noqa: E402

__all__ = [
    "BytesLike",
    "Certificate",
    "DexInfo",
    "MachOSlice",
    "MalformedBinary",
    "ManifestInfo",
    "ar_members",
    "byte_view",
    "class_names",
    "fat_slices",
    "read_dex",
    "read_macho",
    "read_manifest",
    "signer_certificates",
    "signing_block_certificates",
    "static_library_objects",
]
