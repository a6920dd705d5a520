"""Readers for untrusted binary formats: exact results on inputs built here, and fuzzing for safety.

Every input is built in this file with the standard library (openssl, when installed, adds a real
PKCS#7), so each expected value is known exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban.code.binary import (
    MalformedBinary,
    ar_members,
    class_names,
    read_dex,
    read_macho,
    read_manifest,
    signer_certificates,
    signing_block_certificates,
    static_library_objects,
)
from appban.code.binary.macho import fat_slices
from tests import material

# ------------------------------------------------------------------------------------------------
# DEX


def mutf8(text: str) -> bytes:
    """Modified UTF-8: each UTF-16 unit on its own, NUL as C0 80."""
    raw = text.encode("utf-16-le")
    units = struct.unpack(f"<{len(raw) // 2}H", raw)
    return b"".join(b"\xc0\x80" if u == 0 else chr(u).encode("utf-8", "surrogatepass") for u in units)


def uleb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def build_dex(strings: list[str], type_indexes: list[int], version: bytes = b"035") -> bytes:
    header_size = 0x70
    string_ids_off = header_size
    type_ids_off = string_ids_off + 4 * len(strings)
    data_off = type_ids_off + 4 * len(type_indexes)
    data = bytearray()
    offsets = []
    for text in strings:
        offsets.append(data_off + len(data))
        data += uleb128(len(text.encode("utf-16-le")) // 2) + mutf8(text) + b"\x00"
    body = struct.pack(f"<{len(strings)}I", *offsets) + struct.pack(f"<{len(type_indexes)}I", *type_indexes) + data
    file_size = header_size + len(body)
    header = bytearray(header_size)
    header[0:8] = b"dex\n" + version + b"\x00"
    struct.pack_into("<III", header, 32, file_size, header_size, 0x12345678)
    struct.pack_into("<IIII", header, 56, len(strings), string_ids_off, len(type_indexes), type_ids_off)
    dex = header + body
    struct.pack_into("<I", dex, 8, zlib.adler32(bytes(dex[12:])))
    return bytes(dex)


DEX_STRINGS = [
    "Landroid/app/Activity;",
    "Lcom/tencent/mm/opensdk/openapi/WXAPIFactory;",
    "Lcom/tencent/mm/opensdk/openapi/IWXAPI;",
    "[Lcom/bytedance/sdk/open/tiktok/TikTokOpenApiFactory;",
    "I",
    "with\x00nul",
    "caf\u00e9 \U0001f600 \u4e2d",
    "",
]
DEX = build_dex(DEX_STRINGS, [0, 1, 2, 3, 4])


def test_dex_strings_types_and_class_names() -> None:
    info = read_dex(DEX)
    assert info.version == "035"
    assert info.strings == DEX_STRINGS
    assert info.types == DEX_STRINGS[:5]
    assert info.checksum_ok
    assert class_names(info) == [
        "android.app.Activity",
        "com.tencent.mm.opensdk.openapi.WXAPIFactory",
        "com.tencent.mm.opensdk.openapi.IWXAPI",
    ]


def test_dex_accepts_views_versions_and_flags_a_bad_checksum() -> None:
    assert read_dex(memoryview(DEX)).strings == DEX_STRINGS
    assert read_dex(bytearray(build_dex(["La;"], [0], b"041"))).version == "041"
    tampered = bytearray(DEX)
    tampered[-2] ^= 0x01  # inside the last string's bytes, still ASCII
    assert not read_dex(bytes(tampered)).checksum_ok


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (56, 0xFFFFFFFF, "too many DEX strings"),
        (56, 4_000_000, "string_ids table outside the file"),
        (64, 70_000, "too many DEX types"),
        (68, 0xFFFFFFF0, "type_ids table outside the file"),
        (0x70, 0xFFFFFFFF, "string data offset outside the file"),
        (40, 0x78563412, "unsupported DEX endian tag"),
    ],
)
def test_dex_rejects_lying_header_fields(offset: int, value: int, message: str) -> None:
    bad = bytearray(DEX)
    struct.pack_into("<I", bad, offset, value)
    with pytest.raises(MalformedBinary, match=message):
        read_dex(bytes(bad))


def test_dex_rejects_shared_string_data_and_bad_magic() -> None:
    # 1,000 string ids all pointing at one 5,000-character string: refused, not decoded 1,000 times.
    count = 1000
    template = build_dex(["x" * 5000], [])
    data = bytearray(template[:0x70]) + struct.pack(f"<{count}I", *[0x70 + 4 * count] * count) + template[0x74:]
    struct.pack_into("<I", data, 56, count)
    with pytest.raises(MalformedBinary, match="overlapping"):
        read_dex(bytes(data))
    with pytest.raises(MalformedBinary, match="bad magic"):
        read_dex(b"dex\n034\x00" + DEX[8:])
    with pytest.raises(MalformedBinary):
        read_dex(DEX[:0x6F])


# ------------------------------------------------------------------------------------------------
# Mach-O

CPU_ARM64 = 0x0100000C
CPU_X86_64 = 0x01000007
CPU_ARM = 12


def _pad(data: bytes, align: int) -> bytes:
    return data + b"\x00" * (-len(data) % align)


def build_macho(
    *,
    endian: str = "<",
    is64: bool = True,
    cpu: tuple[int, int] = (CPU_ARM64, 0),
    dylibs: tuple[tuple[int, str], ...] = ((0xC, "@rpath/TikTokOpenSDK.framework/TikTokOpenSDK"),),
    symbols: tuple[str, ...] = ("_OBJC_CLASS_$_WXApi", "_OBJC_METACLASS_$_WXApi", "_main"),
    classnames: bytes = b"WXApi\x00WXApiDelegate\x00",
    cstrings: bytes = b"weixin://\x00ok\x00wechat %s\n\x00\xff\xfe\xfd\xfc\x00TikTokOpenSDK\x00",
    encrypted: bool = False,
) -> bytes:
    e = endian
    # LC_ENCRYPTION_INFO(_64): cmd, cmdsize, cryptoff, cryptsize, cryptid (+ padding in the 64-bit form).
    crypt = struct.pack(e + "5I", 0x2C if is64 else 0x21, 24 if is64 else 20, 0x4000, 0x4000, 1) if encrypted else b""
    crypt += b"\x00" * (4 if encrypted and is64 else 0)
    word = "Q" if is64 else "I"
    header_size, seg_size, sect_size = (32, 72, 80) if is64 else (28, 56, 68)
    dylib_cmds = [
        _pad(struct.pack(e + "6I", 0, 0, 24, 2, 0x10000, 0x10000) + name.encode() + b"\x00", 8) for _, name in dylibs
    ]
    cmds_size = seg_size + 2 * sect_size + sum(len(c) for c in dylib_cmds) + 24 + len(crypt)
    data_off = header_size + cmds_size
    # File layout after the load commands: __cstring, __objc_classname, nlist table, string table.
    cstring_off, classname_off = data_off, data_off + len(cstrings)
    sym_off = _align(classname_off + len(classnames), 8)
    strtab = b"\x00" + b"".join(s.encode() + b"\x00" for s in symbols)
    strx = [strtab.index(b"\x00" + s.encode() + b"\x00") + 1 for s in symbols]
    strx.append(strx[0] + len("_OBJC_CLASS_$"))  # a tail-merged name: "_WXApi" inside the first
    nlist = b"".join(struct.pack(e + ("IBBHQ" if is64 else "IBBhI"), i, 0x0F, 1, 0, 0x1000) for i in strx)
    str_off = sym_off + len(nlist)

    segment = struct.pack(
        e + f"II16s4{word}iiII",
        0x19 if is64 else 0x1,
        seg_size + 2 * sect_size,
        b"__TEXT",
        0,
        0x4000,
        0,
        0x4000,
        5,
        5,
        2,
        0,
    )
    sect_fmt = e + ("16s16sQQIIIIIIII" if is64 else "16s16sIIIIIIIII")
    extra = (0, 0, 0) if is64 else (0, 0)
    segment += struct.pack(sect_fmt, b"__cstring", b"__TEXT", 0, len(cstrings), cstring_off, 0, 0, 0, 2, *extra)
    segment += struct.pack(
        sect_fmt, b"__objc_classname", b"__TEXT", 0, len(classnames), classname_off, 0, 0, 0, 2, *extra
    )
    commands = segment
    for (cmd, _), body in zip(dylibs, dylib_cmds, strict=True):
        commands += struct.pack(e + "II", cmd, len(body)) + body[8:]
    commands += struct.pack(e + "6I", 0x2, 24, sym_off, len(strx), str_off, len(strtab)) + crypt
    assert len(commands) == cmds_size
    ncmds = len(dylibs) + 2 + encrypted
    header = struct.pack(e + "7I", 0xFEEDFACF if is64 else 0xFEEDFACE, cpu[0], cpu[1], 2, ncmds, cmds_size, 0)
    header += b"\x00" * (header_size - len(header))
    image = header + commands + cstrings + classnames
    image += b"\x00" * (sym_off - len(image)) + nlist + strtab
    return image


def _align(value: int, align: int) -> int:
    return value + (-value % align)


def build_fat(slices: list[tuple[int, int, bytes]], *, wide: bool = False) -> bytes:
    entry = 32 if wide else 20
    offset = _align(8 + entry * len(slices), 16)
    table, body = b"", b""
    for cpu_type, cpu_subtype, image in slices:
        start = offset + len(body)
        if wide:
            table += struct.pack(">IIQQII", cpu_type, cpu_subtype, start, len(image), 4, 0)
        else:
            table += struct.pack(">IIIII", cpu_type, cpu_subtype, start, len(image), 4)
        body += _pad(image, 16)
    head = struct.pack(">II", 0xCAFEBABF if wide else 0xCAFEBABE, len(slices)) + table
    return _pad(head, 16) + body


MACHO = build_macho()


def test_thin_arm64_macho() -> None:
    (image,) = read_macho(MACHO)
    assert image.cpu == "arm64"
    assert image.file_type == 2
    assert image.dylibs == ["@rpath/TikTokOpenSDK.framework/TikTokOpenSDK"]
    assert image.symbols == ["_OBJC_CLASS_$_WXApi", "_OBJC_METACLASS_$_WXApi", "_main", "_WXApi"]
    assert image.objc_classes == ["WXApi", "WXApiDelegate"]
    assert image.cstrings == ["weixin://", "wechat %s\n", "TikTokOpenSDK"]
    assert not image.cstrings_truncated
    assert not image.encrypted


@pytest.mark.parametrize("is64", [False, True])
def test_macho_encryption_flag(is64: bool) -> None:
    assert read_macho(build_macho(is64=is64, encrypted=True))[0].encrypted


def test_macho_cstrings_stop_at_the_cap() -> None:
    (image,) = read_macho(build_macho(cstrings=b"abcd\x00" * 200_001))
    assert len(image.cstrings) == 200_000
    assert image.cstrings_truncated


@pytest.mark.parametrize(
    ("endian", "is64", "cpu", "name"),
    [
        ("<", False, (CPU_ARM, 9), "armv7"),
        (">", False, (18, 0), "0x00000012"),
        (">", True, (CPU_X86_64, 3), "x86_64"),
        ("<", True, (CPU_ARM64, 0x80000002), "arm64e"),
    ],
)
def test_macho_word_sizes_and_byte_orders(endian: str, is64: bool, cpu: tuple[int, int], name: str) -> None:
    dylibs = ((0x80000018, "/usr/lib/libz.1.dylib"), (0x8000001F, "@rpath/A.framework/A"), (0x20, "/usr/lib/l.dylib"))
    (image,) = read_macho(build_macho(endian=endian, is64=is64, cpu=cpu, dylibs=dylibs))
    assert image.cpu == name
    assert image.dylibs == [d for _, d in dylibs]
    assert image.objc_classes == ["WXApi", "WXApiDelegate"]
    assert image.cstrings == ["weixin://", "wechat %s\n", "TikTokOpenSDK"]


@pytest.mark.parametrize("wide", [False, True])
def test_fat_macho_has_one_slice_per_architecture(wide: bool) -> None:
    armv7 = build_macho(is64=False, cpu=(CPU_ARM, 9), symbols=("_OBJC_CLASS_$_OldApi",))
    fat = build_fat([(CPU_ARM, 9, armv7), (CPU_ARM64, 0, MACHO)], wide=wide)
    slices = read_macho(fat)
    assert [s.cpu for s in slices] == ["armv7", "arm64"]
    assert slices[0].objc_classes == ["OldApi", "WXApi", "WXApiDelegate"]
    assert slices[1] == read_macho(MACHO)[0]
    assert [(cpu, bytes(view)) for cpu, view in fat_slices(fat)] == [("armv7", armv7), ("arm64", MACHO)]


def test_macho_rejects_lies_and_caps() -> None:
    huge_ncmds = bytearray(MACHO)
    struct.pack_into("<I", huge_ncmds, 16, 0xFFFFFFFF)
    zero_cmdsize = bytearray(MACHO)
    struct.pack_into("<I", zero_cmdsize, 36, 0)
    java_class = b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\x00" * 64
    overlapping = bytearray(build_fat([(CPU_ARM64, 0, MACHO), (CPU_X86_64, 3, MACHO)]))
    struct.pack_into(">I", overlapping, 8 + 20 + 8, struct.unpack_from(">I", overlapping, 8 + 8)[0])
    for data, message in [
        (huge_ncmds, "load command count"),
        (zero_cmdsize, "bad load command size"),
        (java_class, "fat architecture count"),
        (overlapping, "overlap"),
        (b"\x7fELF" + b"\x00" * 60, "bad magic"),
        (MACHO[:20], "truncated"),
    ]:
        with pytest.raises(MalformedBinary, match=message):
            read_macho(bytes(data))


# ------------------------------------------------------------------------------------------------
# ar


def ar_header(name: str, size: int) -> bytes:
    return f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{size:<10}`\n".encode()


def ar_member(name: str, data: bytes) -> bytes:
    return ar_header(name, len(data)) + data + (b"\n" if len(data) % 2 else b"")


def build_gnu_ar(members: list[tuple[str, bytes]]) -> bytes:
    table, out, long_offsets = b"", [], {}
    for name, _ in members:
        if len(name) > 15:
            long_offsets[name] = len(table)
            table += name.encode() + b"/\n"
    parts = [ar_member("/", b"\x00\x00\x00\x00"), ar_member("//", table)]
    for name, data in members:
        out.append(ar_member(f"/{long_offsets[name]}" if name in long_offsets else f"{name}/", data))
    return b"!<arch>\n" + b"".join(parts + out)


def build_bsd_ar(members: list[tuple[str, bytes]]) -> bytes:
    def member(name: str, data: bytes) -> bytes:
        raw = _pad(name.encode(), 4)
        return ar_member(f"#1/{len(raw)}", raw + data)

    return b"!<arch>\n" + member("__.SYMDEF SORTED", b"\x00" * 8) + b"".join(member(n, d) for n, d in members)


AR_MEMBERS = [("a.o", b"odd"), ("WXApiObjectBridge.o", MACHO), ("with space.o", b"\x00\x01")]


@pytest.mark.parametrize("build", [build_gnu_ar, build_bsd_ar])
def test_ar_members_long_names_and_symbol_tables(build: Callable[[list[tuple[str, bytes]]], bytes]) -> None:
    archive = build(AR_MEMBERS)
    assert list(ar_members(archive)) == AR_MEMBERS
    assert list(static_library_objects(memoryview(archive))) == AR_MEMBERS


def test_ar_plain_bsd_short_names_and_missing_final_pad() -> None:
    archive = b"!<arch>\n" + ar_member("short.o", b"ab") + ar_header("last.o", 3) + b"xyz"
    assert list(ar_members(archive)) == [("short.o", b"ab"), ("last.o", b"xyz")]


def test_fat_static_library_prefixes_members_with_the_architecture() -> None:
    fat = build_fat([(CPU_ARM, 9, build_bsd_ar(AR_MEMBERS[:1])), (CPU_ARM64, 0, build_gnu_ar(AR_MEMBERS[1:]))])
    assert list(static_library_objects(fat)) == [
        ("armv7/a.o", b"odd"),
        ("arm64/WXApiObjectBridge.o", MACHO),
        ("arm64/with space.o", b"\x00\x01"),
    ]
    with pytest.raises(MalformedBinary, match="not an ar archive"):
        list(static_library_objects(build_fat([(CPU_ARM64, 0, MACHO)])))


def test_ar_rejects_lying_sizes_and_names() -> None:
    for data, message in [
        (b"!<arch>\n" + ar_header("a.o/", 9_999_999_999) + b"xx", "outside the file"),
        (b"!<arch>\n" + ar_header("#1/99", 4) + b"abcd", "longer than its member"),
        (b"!<arch>\n" + ar_header("/7", 2) + b"ab", "not in the name table"),
        (b"!<arch>\n" + ar_header("a.o/", 2)[:-2] + b"XX" + b"ab", "terminator"),
        (b"!<arch>\n" + ar_header("a.o/", 2).replace(b"2 ", b"-2"), "decimal"),
        (b"!<thin>\n", "not an ar archive"),
    ]:
        with pytest.raises(MalformedBinary, match=message):
            list(ar_members(data))


# ------------------------------------------------------------------------------------------------
# Android binary XML

ANDROID_NS = "http://schemas.android.com/apk/res/android"
NO = 0xFFFFFFFF


def string_pool(strings: list[str], utf8: bool) -> bytes:
    data, offsets = b"", []
    for text in strings:
        offsets.append(len(data))
        if utf8:
            raw = text.encode()
            units = len(text.encode("utf-16-le")) // 2
            data += _len8(units) + _len8(len(raw)) + raw + b"\x00"
        else:
            raw = text.encode("utf-16-le")
            units = len(raw) // 2
            prefix = (
                struct.pack("<HH", 0x8000 | units >> 16, units & 0xFFFF) if units > 0x7FFF else struct.pack("<H", units)
            )
            data += prefix + raw + b"\x00\x00"
    data = _pad(data, 4)
    start = 28 + 4 * len(strings)
    body = struct.pack("<IIIII", len(strings), 0, 0x100 if utf8 else 0, start, 0)
    body += struct.pack(f"<{len(strings)}I", *offsets) + data
    return struct.pack("<HHI", 0x0001, 28, 8 + len(body)) + body


def _len8(value: int) -> bytes:
    return bytes([0x80 | value >> 8, value & 0xFF]) if value > 0x7F else bytes([value])


class AxmlBuilder:
    """Builds a compiled manifest: strings are interned on use; attributes name/scheme get resource ids."""

    def __init__(self, attribute_names: tuple[str, str] = ("name", "scheme")) -> None:
        self.strings = [*attribute_names, ANDROID_NS, "android"]
        self.resource_ids = [0x01010003, 0x01010027]
        self.chunks: list[bytes] = []

    def s(self, text: str) -> int:
        if text not in self.strings[2:]:
            self.strings.append(text)
        return self.strings.index(text, 2)

    def start(self, tag: str, **attrs: str) -> AxmlBuilder:
        encoded = b""
        for key, value in attrs.items():
            if key in ("name", "scheme"):
                ns, name = self.s(ANDROID_NS), ("name", "scheme").index(key)
            else:
                ns, name = NO, self.s(key)
            index = self.s(value)
            encoded += struct.pack("<IIIHBBI", ns, name, index, 8, 0, 0x03, index)
        ext = struct.pack("<IIHHHHHH", NO, self.s(tag), 20, 20, len(attrs), 0, 0, 0)
        body = struct.pack("<II", 1, NO) + ext + encoded
        self.chunks.append(struct.pack("<HHI", 0x0102, 16, 8 + len(body)) + body)
        return self

    def end(self, tag: str) -> AxmlBuilder:
        self.chunks.append(struct.pack("<HHIIIII", 0x0103, 16, 24, 1, NO, NO, self.s(tag)))
        return self

    def build(self, utf8: bool) -> bytes:
        namespace = struct.pack("<HHIIIII", 0x0100, 16, 24, 1, NO, self.s("android"), self.s(ANDROID_NS))
        resource_map = struct.pack(
            f"<HHI{len(self.resource_ids)}I", 0x0180, 8, 8 + 4 * len(self.resource_ids), *self.resource_ids
        )
        body = string_pool(self.strings, utf8) + resource_map + namespace + b"".join(self.chunks)
        return struct.pack("<HHI", 0x0003, 8, 8 + len(body)) + body


def build_axml(utf8: bool = False, attribute_names: tuple[str, str] = ("name", "scheme")) -> bytes:
    b = AxmlBuilder(attribute_names)
    b.start("manifest", package="com.example.app")
    b.start("queries").start("package", name="com.tencent.mm").end("package")
    b.start("intent").start("data", scheme="weixin").end("data").end("intent").end("queries")
    b.start("application", name="com.example.App")
    b.start("activity", name=".MainActivity").start("intent-filter").start("data", scheme="wx1234abcd")
    b.end("data").end("intent-filter").end("activity")
    b.start("activity", name="com.tencent.tauth.AuthActivity").end("activity")
    b.start("activity", name="Settings\u00e9").end("activity")
    b.start("package", name="not.in.queries").end("package")
    b.end("application").end("manifest")
    return b.build(utf8)


EXPECTED_MANIFEST = {
    "package": "com.example.app",
    "queries_packages": ["com.tencent.mm"],
    "schemes": ["weixin", "wx1234abcd"],
    "activities": ["com.example.app.MainActivity", "com.tencent.tauth.AuthActivity", "com.example.app.Settings\u00e9"],
}


@pytest.mark.parametrize("utf8", [False, True])
def test_binary_manifest(utf8: bool) -> None:
    info = read_manifest(build_axml(utf8))
    assert {k: getattr(info, k) for k in EXPECTED_MANIFEST} == EXPECTED_MANIFEST
    assert info.strings[:4] == ["name", "scheme", ANDROID_NS, "android"]
    assert "Settings\u00e9" in info.strings and "com.tencent.mm" in info.strings


def test_binary_manifest_matches_attributes_by_resource_id() -> None:
    # Packers blank attribute-name strings; Android goes by the resource map, and so does the reader.
    info = read_manifest(build_axml(attribute_names=("", "x")))
    assert {k: getattr(info, k) for k in EXPECTED_MANIFEST} == EXPECTED_MANIFEST


def test_long_utf16_string_lengths() -> None:
    pool = string_pool(["a" * 0x8001], utf8=False)
    body = pool + struct.pack("<HHIIIIIHHHHHH", 0x0102, 16, 36, 1, NO, NO, 0, 20, 20, 0, 0, 0, 0)
    info = read_manifest(struct.pack("<HHI", 3, 8, 8 + len(body)) + body)
    assert info.strings == ["a" * 0x8001]
    assert info.package is None


def test_text_manifest() -> None:
    text = f"""<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="{ANDROID_NS}" xmlns:tools="http://schemas.android.com/tools" package="com.example.app">
  <queries><package android:name="com.tencent.mm" /><intent><data android:scheme="weixin" /></intent></queries>
  <application tools:replace="android:name">
    <activity android:name=".MainActivity">
      <intent-filter><data android:scheme="wx1234abcd" /></intent-filter>
    </activity>
    <activity android:name="com.tencent.tauth.AuthActivity" />
    <activity android:name="Settings\u00e9" />
    <package android:name="not.in.queries" />
  </application>
</manifest>
"""
    info = read_manifest(text.encode())
    assert {k: getattr(info, k) for k in EXPECTED_MANIFEST} == EXPECTED_MANIFEST
    assert {"manifest", "package", "com.tencent.mm", "replace"} <= set(info.strings)
    assert read_manifest(text.replace('"utf-8"', '"utf-16"').encode("utf-16")).package == "com.example.app"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
def test_text_manifest_refuses_entities(encoding: str) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<manifest package="&b;"/>'
    )
    with pytest.raises(MalformedBinary, match="DOCTYPE"):
        read_manifest(bomb.encode(encoding))
    with pytest.raises(MalformedBinary, match="bad XML"):
        read_manifest(b"<manifest>")


def test_binary_manifest_rejects_lies() -> None:
    good = build_axml()
    huge_count = bytearray(good)
    struct.pack_into("<I", huge_count, 16, 0x7FFFFFFF)
    huge_chunk = bytearray(good)
    struct.pack_into("<I", huge_chunk, 12, 0xFFFFFFF0)
    for data, message in [
        (huge_count, "offsets outside"),
        (huge_chunk, "chunk size"),
        (good[:100], "not an Android binary XML"),
        (b"\x03\x00\x08\x00", "truncated"),
    ]:
        with pytest.raises(MalformedBinary, match=message):
            read_manifest(bytes(data))


# ------------------------------------------------------------------------------------------------
# APK signatures


def der(tag: int, *content: bytes) -> bytes:
    body = b"".join(content)
    size = len(body)
    length = (
        bytes([size])
        if size < 0x80
        else bytes([0x80 | (size.bit_length() + 7) // 8]) + size.to_bytes((size.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + body


def ber_indefinite(tag: int, *content: bytes) -> bytes:
    return bytes([tag, 0x80]) + b"".join(content) + b"\x00\x00"


def oid(hex_value: str) -> bytes:
    return der(0x06, bytes.fromhex(hex_value))


def name(*attributes: tuple[str, int, str]) -> bytes:
    rdns = [
        der(0x31, der(0x30, oid(key), der(tag, value.encode("utf-16-be" if tag == 0x1E else "utf-8"))))
        for key, tag, value in attributes
    ]
    return der(0x30, *rdns)


def build_certificate(subject: bytes) -> bytes:
    sha256_rsa = der(0x30, oid("2a864886f70d01010b"), der(0x05))
    tbs = der(
        0x30,
        der(0xA0, der(0x02, b"\x02")),
        der(0x02, b"\x01"),
        sha256_rsa,
        name(("550403", 0x0C, "issuer")),
        der(0x30, der(0x17, b"200101000000Z"), der(0x17, b"491231235959Z")),
        subject,
        der(0x30, der(0x30, oid("2a864886f70d010101"), der(0x05)), der(0x03, b"\x00" + b"\x30" * 140)),
    )
    return der(0x30, tbs, sha256_rsa, der(0x03, b"\x00" + b"\x5a" * 256))


def build_pkcs7(*certificates: bytes) -> bytes:
    signed_data = der(
        0x30,
        der(0x02, b"\x01"),
        der(0x31, der(0x30, oid("608648016503040201"))),
        der(0x30, oid("2a864886f70d010701")),
        der(0xA0, *certificates),
        der(0x31),
    )
    return der(0x30, oid("2a864886f70d010702"), der(0xA0, signed_data))


SUBJECT = name(("550406", 0x13, "US"), ("55040a", 0x0C, "Android"), ("550403", 0x0C, "Android Debug"))
CERT = build_certificate(SUBJECT)
CERT_SHA256 = hashlib.sha256(CERT).hexdigest().upper()
OTHER_CERT = build_certificate(
    name(
        ("55040a", 0x0C, "Tencent, Inc."),
        ("550403", 0x1E, "\u5fae\u4fe1 "),
        ("2a864886f70d010901", 0x16, "a@b.c"),
        ("2a0304", 0x0C, "x"),
    )
)


def test_v1_signer_certificates() -> None:
    members = {
        "META-INF/CERT.RSA": build_pkcs7(CERT),
        "META-INF/other.ec": build_pkcs7(OTHER_CERT, CERT),
        "META-INF/CERT.SF": b"not a signature block",
        "assets/x.RSA": b"not under META-INF",
    }
    certificates = signer_certificates(members)
    assert [(c.sha256, c.subject) for c in certificates] == [
        (CERT_SHA256, "CN=Android Debug, O=Android, C=US"),
        (
            hashlib.sha256(OTHER_CERT).hexdigest().upper(),
            "1.2.3.4=x, EMAILADDRESS=a@b.c, CN=\u5fae\u4fe1\\ , O=Tencent\\, Inc.",
        ),
    ]
    assert certificates[0].der == CERT


def test_v1_reads_ber_indefinite_lengths() -> None:
    signed_data = ber_indefinite(
        0x30, der(0x02, b"\x01"), der(0x31), der(0x30, oid("2a864886f70d010701")), ber_indefinite(0xA0, CERT), der(0x31)
    )
    pkcs7 = ber_indefinite(0x30, oid("2a864886f70d010702"), ber_indefinite(0xA0, signed_data))
    assert [c.sha256 for c in signer_certificates({"META-INF/A.DSA": pkcs7})] == [CERT_SHA256]


def test_v1_rejects_malformed_and_deep_nesting() -> None:
    deep = b"\x30\x80" * 200 + b"\x00\x00" * 200
    for data, message in [
        (build_pkcs7(CERT)[:-10], "longer than its container"),
        (der(0x30, oid("2a864886f70d010701"), der(0xA0, der(0x30))), "not SignedData"),
        (deep, "nested too deeply"),
        (b"\x30\x85\xff\xff\xff\xff\xff", "bad DER length"),
        (build_pkcs7(build_certificate(der(0x31))), "no subject"),
    ]:
        with pytest.raises(MalformedBinary, match=message):
            signer_certificates({"META-INF/CERT.RSA": data})


@pytest.fixture(scope="module")
def openssl_signature(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, str]:
    """(PKCS#7 detached signature, DER certificate, openssl's SHA-256 fingerprint) from the openssl CLI."""
    openssl = material.require_tool("openssl")  # a skip on a developer's machine, a failure under CI
    tmp = tmp_path_factory.mktemp("openssl")
    key, cert, sf, p7 = (tmp / n for n in ("key.pem", "cert.pem", "CERT.SF", "CERT.RSA"))
    sf.write_bytes(b"Signature-Version: 1.0\r\n\r\n")

    def run(*args: str | Path) -> bytes:
        return subprocess.run([openssl, *map(str, args)], check=True, capture_output=True, timeout=30).stdout

    subject = "/C=US/O=Android/CN=Android Debug"
    run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-subj",
        subject,
        "-days",
        "2",
    )
    run(
        "smime", "-sign", "-binary", "-noattr", "-in", sf, "-signer", cert, "-inkey", key, "-outform", "DER", "-out", p7
    )
    fingerprint = run("x509", "-in", cert, "-noout", "-fingerprint", "-sha256").decode().strip()
    return p7.read_bytes(), run("x509", "-in", cert, "-outform", "DER"), fingerprint.split("=", 1)[1].replace(":", "")


def test_v1_openssl_pkcs7(openssl_signature: tuple[bytes, bytes, str]) -> None:
    pkcs7, cert_der, fingerprint = openssl_signature
    (certificate,) = signer_certificates({"META-INF/CERT.RSA": pkcs7})
    assert certificate.sha256 == fingerprint == hashlib.sha256(cert_der).hexdigest().upper()
    assert certificate.subject == "CN=Android Debug, O=Android, C=US"
    assert certificate.der == cert_der


def lp(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack("<I", len(body)) + body


def v2_signer(*certificates: bytes) -> bytes:
    signed_data = lp(lp(struct.pack("<I", 0x0103) + lp(b"\x11" * 32))) + lp(*map(lp, certificates)) + lp()
    return lp(signed_data) + lp(lp(struct.pack("<I", 0x0103) + lp(b"sig"))) + lp(b"public key")


def v3_signer(*certificates: bytes) -> bytes:
    signed_data = lp(lp()) + lp(*map(lp, certificates)) + struct.pack("<II", 28, 0x7FFFFFFF) + lp()
    return lp(signed_data) + struct.pack("<II", 28, 0x7FFFFFFF) + lp(lp()) + lp(b"public key")


def build_apk(pairs: list[tuple[int, bytes]], comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("AndroidManifest.xml", build_axml())
        archive.writestr("classes.dex", DEX)
        archive.comment = comment
    raw = buffer.getvalue()
    if not pairs:
        return raw
    eocd = len(raw) - 22 - len(archive.comment)
    cd_offset = struct.unpack_from("<I", raw, eocd + 16)[0]
    body = b"".join(struct.pack("<QI", 4 + len(value), pair_id) + value for pair_id, value in pairs)
    size = len(body) + 24
    block = struct.pack("<Q", size) + body + struct.pack("<Q", size) + b"APK Sig Block 42"
    moved = raw[eocd : eocd + 16] + struct.pack("<I", cd_offset + len(block)) + raw[eocd + 20 :]
    return raw[:cd_offset] + block + raw[cd_offset:eocd] + moved


def test_signing_block_certificates() -> None:
    pairs = [
        (0x42726577, b"\x00" * 16),  # verity padding: ignored
        (0x7109871A, lp(lp(v2_signer(CERT, OTHER_CERT)))),
        (0xF05368C0, lp(lp(v3_signer(CERT)))),
    ]
    assert zipfile.ZipFile(io.BytesIO(build_apk(pairs))).read("classes.dex") == DEX  # still a valid ZIP
    # A comment holding a decoy end record (which fools zipfile itself) must not fool the reader.
    certificates = signing_block_certificates(build_apk(pairs, b"PK\x05\x06 a decoy end record"))
    assert [c.sha256 for c in certificates] == [CERT_SHA256, hashlib.sha256(OTHER_CERT).hexdigest().upper()]
    assert certificates[0].subject == "CN=Android Debug, O=Android, C=US"
    assert signing_block_certificates(build_apk([])) == []


def test_signing_block_rejects_lies() -> None:
    apk = bytearray(build_apk([(0x7109871A, lp(lp(v2_signer(CERT))))]))
    magic = apk.rfind(b"APK Sig Block 42")
    huge = bytearray(apk)
    struct.pack_into("<Q", huge, magic - 8, 2**63)
    inner = bytearray(apk)
    inner[inner.find(CERT) - 4 : inner.find(CERT)] = struct.pack("<I", 0xFFFFFFF0)
    for data, message in [
        (huge, "bad APK Signing Block size"),
        (inner, "outside its container"),
        (b"PK\x03\x04" + b"\x00" * 100, "no end of central directory"),
    ]:
        with pytest.raises(MalformedBinary, match=message):
            signing_block_certificates(bytes(data))


# ------------------------------------------------------------------------------------------------
# Fuzzing: every reader returns or raises MalformedBinary, quickly, whatever the input.

INTERESTING_U32 = [0, 1, 2, 4, 8, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A seed with random byte changes, header-like u32 overwrites and perhaps a truncation."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    for _ in range(draw(st.integers(0, 3))):
        # Bias towards the front, where headers and tables live.
        pos = draw(st.integers(0, min(len(data), 256) // 4 - 1)) * 4
        data[pos : pos + 4] = struct.pack("<I", draw(st.sampled_from(INTERESTING_U32)))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def inputs(*seeds: bytes) -> st.SearchStrategy[bytes]:
    magics = st.sampled_from([seed[:8] for seed in seeds])
    return st.one_of(mutated(seeds), st.binary(max_size=300), st.builds(bytes.__add__, magics, st.binary(max_size=300)))


FUZZ = settings(max_examples=250, deadline=timedelta(seconds=1), suppress_health_check=[HealthCheck.too_slow])


def survives(reader: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(MalformedBinary):
        reader(data)


@FUZZ
@given(inputs(DEX, build_dex(["La/B;", "\U0001f600"], [0, 1], b"039")))
def test_fuzz_dex(data: bytes) -> None:
    survives(lambda d: class_names(read_dex(d)), data)


@FUZZ
@given(inputs(MACHO, build_macho(endian=">", is64=False), build_fat([(CPU_ARM64, 0, MACHO)], wide=True)))
def test_fuzz_macho(data: bytes) -> None:
    survives(read_macho, data)


@FUZZ
@given(
    inputs(
        build_gnu_ar(AR_MEMBERS[:1] + AR_MEMBERS[2:]),
        build_bsd_ar(AR_MEMBERS[:1]),
        build_fat([(CPU_ARM, 9, build_bsd_ar([("x.o", b"ab")]))]),
    )
)
def test_fuzz_ar(data: bytes) -> None:
    survives(lambda d: list(static_library_objects(d)), data)
    survives(lambda d: list(ar_members(d)), data)


@FUZZ
@given(
    inputs(
        build_axml(), build_axml(utf8=True), b'<manifest package="a"><queries><package name="b"/></queries></manifest>'
    )
)
def test_fuzz_manifest(data: bytes) -> None:
    survives(read_manifest, data)


@FUZZ
@given(inputs(build_pkcs7(CERT), build_pkcs7(OTHER_CERT)))
def test_fuzz_pkcs7(data: bytes) -> None:
    survives(lambda d: signer_certificates({"META-INF/CERT.RSA": d}), data)


SMALL_APK = build_apk([(0x7109871A, lp(lp(v2_signer(CERT))))])


@FUZZ
@given(
    st.integers(0, len(SMALL_APK) - 1),
    st.sampled_from(INTERESTING_U32),
    st.integers(len(SMALL_APK) - 64, len(SMALL_APK)),
)
def test_fuzz_signing_block(pos: int, value: int, length: int) -> None:
    # The signing block sits deep inside the file, beyond where `mutated` aims: overwrite anywhere,
    # and truncate only into the end record.
    data = bytearray(SMALL_APK)
    data[pos : pos + 4] = struct.pack("<I", value)
    survives(signing_block_certificates, bytes(data[:length]))
