"""Writes real DEX files with many classes (header, string/type/class-def tables and a map list),
the shape androguard and appban both read, without a compiler. Used by bench/code.py."""

from __future__ import annotations

import hashlib
import struct
import zlib

NO_INDEX = 0xFFFFFFFF
_TYPE_HEADER, _TYPE_STRING_ID, _TYPE_TYPE_ID, _TYPE_CLASS_DEF = 0x0000, 0x0001, 0x0002, 0x0006
_TYPE_STRING_DATA, _TYPE_MAP_LIST = 0x2002, 0x1000


def _uleb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def dex_with_classes(class_names: list[str]) -> bytes:
    """A DEX defining each dotted class name (empty classes extending java.lang.Object)."""
    descriptors = sorted({"L" + name.replace(".", "/") + ";" for name in class_names} | {"Ljava/lang/Object;"})
    strings = descriptors  # every string is a type descriptor; sorted as the format requires (ASCII here)
    n = len(strings)
    classes = [d for d in descriptors if d != "Ljava/lang/Object;"]
    header_size = 0x70
    string_ids_off = header_size
    type_ids_off = string_ids_off + 4 * n
    class_defs_off = type_ids_off + 4 * n
    data_off = class_defs_off + 32 * len(classes)
    string_data = bytearray()
    string_offsets = []
    for text in strings:
        string_offsets.append(data_off + len(string_data))
        raw = text.encode()
        string_data += _uleb128(len(raw)) + raw + b"\0"
    while len(string_data) % 4:
        string_data += b"\0"
    map_off = data_off + len(string_data)
    index = {text: i for i, text in enumerate(strings)}
    object_type = index["Ljava/lang/Object;"]
    body = bytearray()
    body += b"".join(struct.pack("<I", off) for off in string_offsets)
    body += b"".join(struct.pack("<I", i) for i in range(n))  # type i -> string i
    for descriptor in classes:
        body += struct.pack("<8I", index[descriptor], 1, object_type, 0, NO_INDEX, 0, 0, 0)
    body += string_data
    items = [
        (_TYPE_HEADER, 1, 0),
        (_TYPE_STRING_ID, n, string_ids_off),
        (_TYPE_TYPE_ID, n, type_ids_off),
        (_TYPE_CLASS_DEF, len(classes), class_defs_off),
        (_TYPE_STRING_DATA, n, data_off),
        (_TYPE_MAP_LIST, 1, map_off),
    ]
    map_list = struct.pack("<I", len(items)) + b"".join(struct.pack("<HHII", t, 0, size, off) for t, size, off in items)
    body += map_list
    file_size = header_size + len(body)
    data_size = file_size - data_off
    header = bytearray(header_size)
    header[0:8] = b"dex\n035\0"
    struct.pack_into("<I", header, 32, file_size)
    struct.pack_into("<I", header, 36, header_size)
    struct.pack_into("<I", header, 40, 0x12345678)
    struct.pack_into("<I", header, 52, map_off)
    struct.pack_into("<II", header, 56, n, string_ids_off)
    struct.pack_into("<II", header, 64, n, type_ids_off)
    struct.pack_into("<II", header, 96, len(classes), class_defs_off)
    struct.pack_into("<II", header, 104, data_size, data_off)
    dex = header + body
    dex[12:32] = hashlib.sha1(dex[32:]).digest()
    dex[8:12] = struct.pack("<I", zlib.adler32(bytes(dex[12:])))
    return bytes(dex)
