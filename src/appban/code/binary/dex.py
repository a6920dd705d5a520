"""DEX (Dalvik executable) reader: the string table and the type descriptors, which is where SDK
class names such as `Lcom/tencent/mm/opensdk/openapi/WXAPIFactory;` live."""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from appban.code import budget
from appban.code.binary import BytesLike, MalformedBinary, byte_view

MAX_STRINGS = 5_000_000
# Type indexes are 16-bit in the DEX format, so a larger table is never valid.
MAX_TYPES = 65_535
HEADER_SIZE = 0x70
ENDIAN_CONSTANT = 0x12345678
# dex\n035\0 up to dex\n041\0 (Android 14's container format keeps the same header prefix).
_MAGIC = re.compile(rb"dex\n0(?:3[5-9]|4[01])\x00")
# file_size, header_size, endian_tag, link_size, link_off, map_off,
# string_ids_size, string_ids_off, type_ids_size, type_ids_off: ten u32 from offset 32.
_HEADER_FIELDS = struct.Struct("<10I")


@dataclass(frozen=True, slots=True)
class DexInfo:
    version: str  # "035" .. "041"
    strings: list[str]  # the string_ids table, in index order
    types: list[str]  # type descriptors, e.g. "Lcom/tencent/mm/opensdk/openapi/WXAPIFactory;" or "[I"
    checksum_ok: bool  # Adler-32 of the file matches the header (informational only)


def read_dex(data: BytesLike) -> DexInfo:
    """Strings and type descriptors of one DEX file; MalformedBinary if anything is out of place."""
    # bytes.find is the fast NUL search for string data, so work on bytes (one copy at most).
    buf = data if isinstance(data, bytes) else byte_view(data).tobytes()
    if len(buf) < HEADER_SIZE or not _MAGIC.fullmatch(buf, 0, 8):
        raise MalformedBinary("not a DEX file (bad magic or too short)")
    checksum = struct.unpack_from("<I", buf, 8)[0]
    fields = _HEADER_FIELDS.unpack_from(buf, 32)
    file_size, header_size, endian_tag = fields[0], fields[1], fields[2]
    strings_size, strings_off, types_size, types_off = fields[6], fields[7], fields[8], fields[9]
    if endian_tag != ENDIAN_CONSTANT:
        raise MalformedBinary("unsupported DEX endian tag")
    if header_size < HEADER_SIZE or header_size > len(buf):
        raise MalformedBinary("bad DEX header_size")
    if strings_size > MAX_STRINGS:
        raise MalformedBinary("too many DEX strings")
    if types_size > MAX_TYPES:
        raise MalformedBinary("too many DEX types")
    _check_table(buf, strings_off, strings_size, "string_ids")
    _check_table(buf, types_off, types_size, "type_ids")
    strings = _read_strings(buf, strings_off, strings_size)
    types = _read_types(buf, types_off, types_size, strings)
    checksum_ok = 12 <= file_size <= len(buf) and zlib.adler32(memoryview(buf)[12:file_size]) == checksum
    return DexInfo(buf[4:7].decode("ascii"), strings, types, checksum_ok)


def class_names(info: DexInfo) -> list[str]:
    """Dotted Java class names of the class types: `Lcom/a/B;` -> `com.a.B` (arrays and primitives dropped)."""
    return [t[1:-1].replace("/", ".") for t in info.types if len(t) > 2 and t[0] == "L" and t[-1] == ";"]


def _check_table(buf: bytes, offset: int, count: int, what: str) -> None:
    # Each table entry is one u32; the whole table must lie inside the buffer.
    if count and (offset < HEADER_SIZE or offset + 4 * count > len(buf)):
        raise MalformedBinary(f"{what} table outside the file")


def _read_strings(buf: bytes, table_off: int, count: int) -> list[str]:
    # Valid string data items never overlap (ART rejects duplicates), so the bytes decoded over all
    # strings cannot exceed the file size; charging against that budget stops overlapping-offset
    # tricks from turning a small file into quadratic work or memory.
    remaining = len(buf)
    strings: list[str] = []
    for step, (offset,) in enumerate(struct.iter_unpack("<I", memoryview(buf)[table_off : table_off + 4 * count])):
        budget.tick(step)
        text, used = _read_string_data(buf, offset, remaining)
        remaining -= used
        strings.append(text)
    return strings


def _read_string_data(buf: bytes, offset: int, remaining: int) -> tuple[str, int]:
    """One string_data_item: uleb128 UTF-16 length, MUTF-8 bytes, NUL. Returns (text, bytes used)."""
    if offset < HEADER_SIZE or offset >= len(buf):
        raise MalformedBinary("string data offset outside the file")
    utf16_units, start = _uleb128(buf, offset, len(buf))
    # A UTF-16 unit takes at most 3 MUTF-8 bytes, so the terminator can be no further than this.
    limit = min(len(buf), start + 3 * utf16_units + 1, offset + remaining)
    end = buf.find(b"\x00", start, limit)
    if end < 0:
        raise MalformedBinary("unterminated or overlapping DEX string data")
    return _decode_mutf8(buf[start:end]), end + 1 - offset


def _uleb128(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Unsigned LEB128 of at most 5 bytes (a u32) at pos: (value, position after it)."""
    value = 0
    for shift in range(0, 35, 7):
        if pos >= end:
            raise MalformedBinary("truncated uleb128")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise MalformedBinary("uleb128 longer than 5 bytes")


def _decode_mutf8(raw: bytes) -> str:
    """Modified UTF-8: NUL as C0 80, supplementary characters as two 3-byte surrogates."""
    if raw.isascii():
        return raw.decode("ascii")
    try:
        # C0 is never a continuation byte, so a plain replace cannot split another sequence.
        text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise MalformedBinary("invalid MUTF-8 string data") from exc
    # Re-pair surrogates through UTF-16; a lone surrogate becomes U+FFFD so callers get valid text.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _read_types(buf: bytes, table_off: int, count: int, strings: list[str]) -> list[str]:
    types: list[str] = []
    for (index,) in struct.iter_unpack("<I", memoryview(buf)[table_off : table_off + 4 * count]):
        if index >= len(strings):
            raise MalformedBinary("type descriptor index outside the string table")
        types.append(strings[index])
    return types
