"""DEX files (alone or as classes*.dex inside APKs/AABs): class names and telling strings.

An app's DEX files hold hundreds of thousands of types; only those under a signature's package
prefix matter. So the type table is walked with the header's offsets and each descriptor is tested
in place with one bytes.startswith against all prefixes; only matching descriptors are decoded.
Package names and service URLs are searched in the string data with bytes.find.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from appban.code import budget
from appban.code.model import FileNames, Observation, Sniffed

_HEADER = 0x70
# Type indexes are 16-bit in the DEX format, so a larger type table is never valid.
_MAX_TYPES = 65_535
_MAX_STRINGS = 5_000_000
# Far longer than any real class descriptor; bounds the NUL search, so a descriptor without its NUL
# cannot make each of 65,535 types scan to the end of the file.
_MAX_DESCRIPTOR = 4096


def _uleb128_end(data: bytes, pos: int) -> int:
    """The position after a ULEB128 value (the length prefix of a string_data_item)."""
    for _ in range(5):
        if pos >= len(data):
            raise ValueError("string data runs past the end of the file")
        if data[pos] < 0x80:
            return pos + 1
        pos += 1
    raise ValueError("overlong ULEB128")


def descriptors_with_prefix(data: bytes, prefixes: tuple[bytes, ...]) -> Iterator[str]:
    """Type descriptors ("Lcom/x/Y;") starting with one of `prefixes`, read from the DEX tables."""
    if len(data) < _HEADER or not data.startswith(b"dex\n") or data[7] != 0:
        raise ValueError("not a DEX file (bad magic)")
    string_count, string_off, type_count, type_off = struct.unpack_from("<4I", data, 56)
    if string_count > _MAX_STRINGS or type_count > _MAX_TYPES:
        raise ValueError("implausibly large string or type table")
    if string_off + 4 * string_count > len(data) or type_off + 4 * type_count > len(data):
        raise ValueError("string or type table runs past the end of the file")
    string_offsets = memoryview(data)[string_off : string_off + 4 * string_count].cast("I")
    type_strings = memoryview(data)[type_off : type_off + 4 * type_count].cast("I")
    for step, string_index in enumerate(type_strings):
        budget.tick(step)
        if string_index >= string_count:
            raise ValueError("type refers to a string past the table")
        start = _uleb128_end(data, string_offsets[string_index])
        if data.startswith(prefixes, start):
            end = data.find(b"\0", start, start + _MAX_DESCRIPTOR)
            if end < 0:
                raise ValueError("unterminated or overlong type descriptor")
            yield data[start:end].decode("utf-8", errors="replace")


def _string_around(data: bytes, at: int) -> str:
    start = max(data.rfind(b"\0", max(at - 300, 0), at) + 1, at - 300)
    end = data.find(b"\0", at, at + _MAX_DESCRIPTOR)
    return data[start : end if end >= 0 else at + 300].decode("utf-8", errors="replace")


class Dex:
    name = "dex"
    sniffs = Sniffed(FileNames(suffixes=(".dex",)), magics=(b"dex\n",))

    def __init__(self, java_prefixes: list[str], url_needles: list[str], package_names: set[str]):
        # "com.tencent.mm.opensdk" matches "Lcom/tencent/mm/opensdk/..." and the class itself ("...;").
        prefixes: list[bytes] = []
        for prefix in java_prefixes:
            path = "L" + prefix.replace(".", "/")
            prefixes += [(path + "/").encode(), (path + ";").encode(), (path + "$").encode()]
        self.prefixes = tuple(prefixes)
        self.needles = [n.encode() for n in url_needles]
        self.packages = sorted(package_names)

    def wants(self, name: str, head: bytes) -> bool:
        return head.startswith(b"dex\n") or (not head and name.endswith(".dex"))

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        for descriptor in descriptors_with_prefix(data, self.prefixes):
            yield Observation("java", descriptor[1:-1].replace("/", ".").split("$")[0], None, "dex class")
        for package in self.packages:
            # A whole string constant: the previous string's NUL, this one's length, the text, its NUL.
            raw = package.encode()
            if len(raw) < 0x80 and data.find(b"\0" + bytes([len(raw)]) + raw + b"\0") >= 0:
                yield Observation("android_packages", package, None, "dex string")
        for needle in self.needles:
            at = data.find(needle)
            if at >= 0:
                yield Observation("url", _string_around(data, at), None, "dex string")
