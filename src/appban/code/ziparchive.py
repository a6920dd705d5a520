"""Open an untrusted zip archive so that one bad central directory entry does not hide the others.

zipfile reads the whole central directory in its constructor and gives up on all of it when any one entry
claims a "version needed to extract" it does not know (a NotImplementedError). Such an entry is set aside
here instead: its version byte is rewritten in a copy of the archive so that zipfile reads the directory,
and the caller is told which members to skip, and why.
"""

from __future__ import annotations

import io
import zipfile

__all__ = ["open_zip"]

_CENTRAL = b"PK\x01\x02"
_END = b"PK\x05\x06"
_CENTRAL_SIZE = 46
_VERSION_AT = 6  # zipfile reads the "version needed" as this one byte (the next is the host system)
_FLAGS_AT = 8
_NAME_LENGTH_AT = 28
_UTF8_FLAG = 0x800
_KNOWN_VERSION = 20  # 2.0, which zipfile reads: the member itself is skipped by the caller


def open_zip(data: bytes) -> tuple[zipfile.ZipFile, dict[str, str]]:
    """The archive and {member name: why it must be skipped}. Raises what zipfile raises for an archive
    it cannot read at all (BadZipFile, ValueError, OSError, EOFError, ...)."""
    try:
        return zipfile.ZipFile(io.BytesIO(data)), {}
    except NotImplementedError:
        patched, unsupported = _set_aside_versions(data)
        if not unsupported:
            raise
    return zipfile.ZipFile(io.BytesIO(patched)), unsupported


def _set_aside_versions(data: bytes) -> tuple[bytes, dict[str, str]]:
    """A copy with every central directory entry that needs a version past zipfile's own rewritten.

    Entries are found by their signature before the end record. The same four bytes inside member data
    could be taken for one, but only in an archive zipfile has already refused, whose members' CRC checks
    then report any byte changed."""
    patched = bytearray(data)
    unsupported: dict[str, str] = {}
    end = data.rfind(_END)
    at = data.find(_CENTRAL)
    while at >= 0 and at + _CENTRAL_SIZE <= (end if end >= 0 else len(data)):
        version = data[at + _VERSION_AT]
        if version > zipfile.MAX_EXTRACT_VERSION:
            patched[at + _VERSION_AT] = _KNOWN_VERSION
            unsupported[_name(data, at)] = f"needs zip version {version / 10:.1f}, which is not supported"
        at = data.find(_CENTRAL, at + 1)
    return bytes(patched), unsupported


def _name(data: bytes, at: int) -> str:
    """The member name as zipfile decodes it, so the caller can match the entry it reads."""
    flags = int.from_bytes(data[at + _FLAGS_AT : at + _FLAGS_AT + 2], "little")
    length = int.from_bytes(data[at + _NAME_LENGTH_AT : at + _NAME_LENGTH_AT + 2], "little")
    raw = data[at + _CENTRAL_SIZE : at + _CENTRAL_SIZE + length]
    name = raw.decode("utf-8", "replace") if flags & _UTF8_FLAG else raw.decode("cp437")
    return name.split("\0", 1)[0]
