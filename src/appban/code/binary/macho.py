"""Mach-O reader (thin and fat): linked dylibs, symbol names, Objective-C class names and C strings.

Only what an SDK scanner needs is read: load commands, the LC_SYMTAB string table and two sections
of __TEXT. Thin files of either word size and byte order are accepted; fat headers are big-endian.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from appban.code import budget
from appban.code.binary import BytesLike, MalformedBinary, byte_view

MH_MAGIC = 0xFEEDFACE
MH_MAGIC_64 = 0xFEEDFACF
FAT_MAGIC = 0xCAFEBABE
FAT_MAGIC_64 = 0xCAFEBABF
MAX_LOAD_COMMANDS = 100_000
MAX_SYMBOLS = 5_000_000
MAX_CLASS_NAMES = 5_000_000
MAX_CSTRINGS = 200_000
# Java class files share 0xCAFEBABE; their version word reads as 45 or more "architectures", while
# real fat files hold a handful, so a low cap also tells the two apart.
MAX_FAT_ARCHS = 32

LC_SEGMENT = 0x1
LC_SYMTAB = 0x2
LC_SEGMENT_64 = 0x19
LC_ENCRYPTION_INFO = 0x21
LC_ENCRYPTION_INFO_64 = 0x2C
DYLIB_COMMANDS = frozenset(
    {
        0xC,  # LC_LOAD_DYLIB
        0x80000018,  # LC_LOAD_WEAK_DYLIB
        0x8000001F,  # LC_REEXPORT_DYLIB
        0x20,  # LC_LAZY_LOAD_DYLIB
        0x80000023,  # LC_LOAD_UPWARD_DYLIB: also a linked library, so reported too
    }
)
# Section types whose bytes are not in the file (their offset field is meaningless).
_ZEROFILL_TYPES = frozenset({0x1, 0xC, 0x12})
_OBJC_CLASS_PREFIXES = ("_OBJC_CLASS_$_", "_OBJC_METACLASS_$_")
_NON_NUL_RUN = re.compile(rb"[^\x00]+")
_CSTRING_RUN = re.compile(rb"[^\x00]{4,}")
# Whitespace that C strings commonly hold but str.isprintable() rejects.
_DROP_WHITESPACE = str.maketrans("", "", "\t\n\r")

_CPU_ARM = 12
_CPU_X86 = 7
_CPU_ABI64 = 0x01000000
_CPU_ABI64_32 = 0x02000000
_ARM_SUBTYPES = {5: "armv4t", 6: "armv6", 7: "armv5", 9: "armv7", 10: "armv7f", 11: "armv7s", 12: "armv7k"}
_ARM_SUBTYPES |= {13: "armv8", 14: "armv6m", 15: "armv7m", 16: "armv7em"}


@dataclass(frozen=True, slots=True)
class MachOSlice:
    cpu: str  # "arm64", "arm64e", "x86_64", "armv7", ... or "0x<cputype>" when unknown
    cpu_type: int
    cpu_subtype: int
    file_type: int  # MH_OBJECT 1, MH_EXECUTE 2, MH_DYLIB 6, MH_BUNDLE 8, ...
    dylibs: list[str]  # install names of linked libraries, e.g. "@rpath/TikTokOpenSDK.framework/TikTokOpenSDK"
    symbols: list[str]  # distinct LC_SYMTAB symbol names in table order, e.g. "_OBJC_CLASS_$_WXApi"
    objc_classes: list[str]  # distinct names from _OBJC_(META)CLASS_$_ symbols and __TEXT,__objc_classname
    cstrings: list[str]  # printable strings of 4+ characters from __TEXT,__cstring, in order
    cstrings_truncated: bool  # True when __cstring held more than MAX_CSTRINGS such strings
    encrypted: bool  # an LC_ENCRYPTION_INFO with a non-zero cryptid: __TEXT contents are ciphertext


def read_macho(data: BytesLike) -> list[MachOSlice]:
    """One MachOSlice for a thin Mach-O, or one per architecture of a fat (universal) binary."""
    view = byte_view(data)
    if is_fat(view):
        return [_ThinReader(part).read() for _, part in fat_slices(view)]
    return [_ThinReader(view).read()]


def is_fat(data: BytesLike) -> bool:
    """Whether the buffer starts with a fat (universal) header magic."""
    view = byte_view(data)
    return len(view) >= 4 and struct.unpack_from(">I", view, 0)[0] in (FAT_MAGIC, FAT_MAGIC_64)


def fat_slices(data: BytesLike) -> list[tuple[str, memoryview]]:
    """(cpu name, slice bytes without copying) for each architecture of a fat file, in header order."""
    view = byte_view(data)
    if len(view) < 8 or not is_fat(view):
        raise MalformedBinary("not a fat Mach-O")
    magic, count = struct.unpack_from(">II", view, 0)
    if count == 0 or count > MAX_FAT_ARCHS:
        raise MalformedBinary("bad fat architecture count")
    entry = struct.Struct(">IIQQ8x" if magic == FAT_MAGIC_64 else ">IIIII")
    table_end = 8 + count * entry.size
    if table_end > len(view):
        raise MalformedBinary("fat architecture table outside the file")
    slices: list[tuple[int, int, str]] = []
    for index in range(count):
        cpu_type, cpu_subtype, offset, size = entry.unpack_from(view, 8 + index * entry.size)[:4]
        if offset < table_end or offset + size > len(view) or size == 0:
            raise MalformedBinary("fat slice outside the file")
        slices.append((offset, size, cpu_name(cpu_type, cpu_subtype)))
    _check_disjoint(slices)
    return [(name, view[offset : offset + size]) for offset, size, name in slices]


def _check_disjoint(slices: list[tuple[int, int, str]]) -> None:
    # Overlapping slices would let one small file be parsed many times over.
    previous_end = 0
    for offset, size, _ in sorted(slices):
        if offset < previous_end:
            raise MalformedBinary("fat slices overlap")
        previous_end = offset + size


def cpu_name(cpu_type: int, cpu_subtype: int) -> str:
    """The conventional architecture name (as lipo prints it), or the cpu type in hex."""
    subtype = cpu_subtype & 0x00FFFFFF  # the high byte holds capability bits (e.g. pointer auth)
    if cpu_type == _CPU_ARM | _CPU_ABI64:
        return "arm64e" if subtype == 2 else "arm64"
    if cpu_type == _CPU_ARM | _CPU_ABI64_32:
        return "arm64_32"
    if cpu_type == _CPU_X86 | _CPU_ABI64:
        return "x86_64h" if subtype == 8 else "x86_64"
    if cpu_type == _CPU_X86:
        return "i386"
    if cpu_type == _CPU_ARM:
        return _ARM_SUBTYPES.get(subtype, "arm")
    return f"0x{cpu_type:08x}"


class _ThinReader:
    """Reads one thin Mach-O image; `view` must cover exactly that image (offsets are relative to it)."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        if len(view) < 28:
            raise MalformedBinary("Mach-O header truncated")
        if struct.unpack_from("<I", view, 0)[0] in (MH_MAGIC, MH_MAGIC_64):
            self.endian = "<"
        elif struct.unpack_from(">I", view, 0)[0] in (MH_MAGIC, MH_MAGIC_64):
            self.endian = ">"
        else:
            raise MalformedBinary("not a Mach-O file (bad magic)")
        self.is64 = struct.unpack_from(self.endian + "I", view, 0)[0] == MH_MAGIC_64
        self.dylibs: list[str] = []
        self.symbols: list[str] = []
        self.sections: dict[bytes, tuple[int, int]] = {}
        self.encrypted = False

    def read(self) -> MachOSlice:
        cpu_type, cpu_subtype, file_type, ncmds, sizeofcmds = struct.unpack_from(self.endian + "5I", self.view, 4)
        for cmd, offset, size in self._load_commands(ncmds, sizeofcmds):
            self._load_command(cmd, offset, size)
        cstrings, truncated = self._cstrings()
        return MachOSlice(
            cpu=cpu_name(cpu_type, cpu_subtype),
            cpu_type=cpu_type,
            cpu_subtype=cpu_subtype,
            file_type=file_type,
            dylibs=self.dylibs,
            symbols=self.symbols,
            objc_classes=self._objc_classes(),
            cstrings=cstrings,
            cstrings_truncated=truncated,
            encrypted=self.encrypted,
        )

    def _u32s(self, offset: int, count: int) -> tuple[int, ...]:
        return struct.unpack_from(f"{self.endian}{count}I", self.view, offset)

    def _load_commands(self, ncmds: int, sizeofcmds: int) -> Iterator[tuple[int, int, int]]:
        """(cmd, offset, cmdsize) of each load command, each checked to lie inside sizeofcmds."""
        start = 32 if self.is64 else 28
        end = start + sizeofcmds
        if ncmds > MAX_LOAD_COMMANDS or end > len(self.view) or ncmds * 8 > sizeofcmds:
            raise MalformedBinary("bad Mach-O load command count or size")
        offset = start
        for step in range(ncmds):
            budget.tick(step)
            if offset + 8 > end:
                raise MalformedBinary("load commands truncated")
            cmd, size = self._u32s(offset, 2)
            if size < 8 or offset + size > end:
                raise MalformedBinary("bad load command size")
            yield cmd, offset, size
            offset += size

    def _load_command(self, cmd: int, offset: int, size: int) -> None:
        if cmd in DYLIB_COMMANDS:
            self.dylibs.append(self._dylib_name(offset, size))
        elif cmd == LC_SYMTAB:
            self._read_symtab(offset, size)
        elif cmd in (LC_SEGMENT, LC_SEGMENT_64):
            self._read_segment(offset, size, cmd == LC_SEGMENT_64)
        elif cmd in (LC_ENCRYPTION_INFO, LC_ENCRYPTION_INFO_64):
            if size < 20:
                raise MalformedBinary("encryption info command truncated")
            self.encrypted = self.encrypted or self._u32s(offset + 16, 1)[0] != 0

    def _dylib_name(self, offset: int, size: int) -> str:
        # dylib_command: cmd, cmdsize, name offset (from the command start), timestamp, two versions.
        if size < 24:
            raise MalformedBinary("dylib command truncated")
        name_offset = self._u32s(offset + 8, 1)[0]
        if not 24 <= name_offset < size:
            raise MalformedBinary("dylib name outside its command")
        raw = self.view[offset + name_offset : offset + size].tobytes()
        return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")

    def _read_symtab(self, offset: int, size: int) -> None:
        if size < 24:
            raise MalformedBinary("symtab command truncated")
        symoff, nsyms, stroff, strsize = self._u32s(offset + 8, 4)
        entry = struct.Struct(self.endian + ("I12x" if self.is64 else "I8x"))  # only n_strx is needed
        if nsyms > MAX_SYMBOLS or symoff + nsyms * entry.size > len(self.view) or stroff + strsize > len(self.view):
            raise MalformedBinary("symbol table outside the file")
        strtab = self.view[stroff : stroff + strsize].tobytes()
        names = entry.iter_unpack(self.view[symoff : symoff + nsyms * entry.size])
        self.symbols.extend(_symbol_names((strx for (strx,) in names), strtab))

    def _read_segment(self, offset: int, size: int, is64: bool) -> None:
        header, section = (72, 80) if is64 else (56, 68)
        if size < header:
            raise MalformedBinary("segment command truncated")
        nsects = self._u32s(offset + header - 8, 1)[0]
        if nsects > (size - header) // section:
            raise MalformedBinary("segment sections outside their command")
        layout = self.endian + ("16s16s8xQI12xI" if is64 else "16s16s4xII12xI")
        for index in range(nsects):
            budget.tick(index)
            sectname, segname, sect_size, sect_offset, flags = struct.unpack_from(
                layout, self.view, offset + header + index * section
            )
            # Object files put every section in one unnamed segment, so match the section's own segname.
            if _c_name(segname) == b"__TEXT" and (name := _c_name(sectname)) in (b"__cstring", b"__objc_classname"):
                self._add_section(name, sect_offset, sect_size, flags)

    def _add_section(self, name: bytes, offset: int, size: int, flags: int) -> None:
        if size == 0 or flags & 0xFF in _ZEROFILL_TYPES or name in self.sections:
            return
        if offset + size > len(self.view):
            raise MalformedBinary("section outside the file")
        self.sections[name] = (offset, size)

    def _section(self, name: bytes) -> memoryview:
        offset, size = self.sections.get(name, (0, 0))
        return self.view[offset : offset + size]

    def _objc_classes(self) -> list[str]:
        found = [s[len(p) :] for s in self.symbols for p in _OBJC_CLASS_PREFIXES if s.startswith(p)]
        for count, match in enumerate(_NON_NUL_RUN.finditer(self._section(b"__objc_classname"))):
            budget.tick(count)
            if count >= MAX_CLASS_NAMES:
                raise MalformedBinary("too many Objective-C class names")
            found.append(match.group().decode("utf-8", "replace"))
        return list(dict.fromkeys(found))

    def _cstrings(self) -> tuple[list[str], bool]:
        strings: list[str] = []
        for step, match in enumerate(_CSTRING_RUN.finditer(self._section(b"__cstring"))):
            budget.tick(step)
            try:
                text = match.group().decode("utf-8")
            except UnicodeDecodeError:
                continue  # binary data or ciphertext, not text
            if len(text) >= 4 and text.translate(_DROP_WHITESPACE).isprintable():
                if len(strings) == MAX_CSTRINGS:
                    return strings, True
                strings.append(text)
        return strings, False


def _c_name(raw: bytes) -> bytes:
    """A fixed-size name field: up to the first NUL (16-character names have none)."""
    return raw.split(b"\x00", 1)[0]


def _symbol_names(indexes: Iterator[int], strtab: bytes) -> list[str]:
    """Distinct names at the given string-table indexes, in first-seen order.

    clang merges a name that is the tail of another into it, so indexes may point inside other
    names; each distinct index is decoded once, and the bytes decoded are capped at a multiple of the
    table size so that crafted overlapping indexes cannot cost quadratic time or memory.
    """
    allowance = 8 * len(strtab) + (1 << 20)
    by_index: dict[int, str] = {}
    for step, index in enumerate(indexes):
        budget.tick(step)
        if index == 0 or index in by_index:
            continue  # index 0 is the conventional empty name
        if index >= len(strtab):
            raise MalformedBinary("symbol name outside the string table")
        end = strtab.find(b"\x00", index)
        end = len(strtab) if end < 0 else end
        allowance -= end - index
        if allowance < 0:
            raise MalformedBinary("symbol names overlap too much")
        by_index[index] = strtab[index:end].decode("utf-8", "replace")
    return list(dict.fromkeys(name for name in by_index.values() if name))
