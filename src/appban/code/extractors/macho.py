"""Mach-O executables, dylibs, objects and static libraries (thin or fat): Objective-C classes,
linked frameworks, and URL schemes or service URLs among the C strings."""

from __future__ import annotations

import re
from collections.abc import Iterator

from appban.code.binary import MachOSlice, MalformedBinary, read_macho, static_library_objects
from appban.code.model import FileNames, Observation, Sniffed

_MAGICS = (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
           b"\xca\xfe\xba\xbf")  # fmt: skip
_AR = b"!<arch>\n"
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]{2,40})://")


def _is_java_class(data: bytes) -> bool:
    # 0xCAFEBABE is also the magic of Java class files; their version word follows it.
    return data[:4] == b"\xca\xfe\xba\xbe" and int.from_bytes(data[4:8], "big") >= 0x2D


class MachO:
    name = "macho"
    sniffs = Sniffed(FileNames(suffixes=(".a", ".dylib", ".o")), magics=(*_MAGICS, _AR))

    def __init__(self, url_needles: list[str]):
        self.needles = [n.casefold() for n in url_needles]

    def wants(self, name: str, head: bytes) -> bool:
        if head[:4] in _MAGICS:
            return not _is_java_class(head)
        return head.startswith(_AR) or (not head and name.endswith((".a", ".dylib", ".o")))

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        try:
            if data.startswith(_AR) or self._fat_archive(data):
                slices = [s for _, obj in static_library_objects(data) for s in self._objects(obj)]
            else:
                slices = read_macho(data)
        except MalformedBinary as exc:
            raise ValueError(f"malformed Mach-O: {exc}") from None
        seen: set[tuple[str, str]] = set()
        for slice_ in slices:
            for observation in self._observe(slice_):
                key = (observation.kind, observation.value)
                if key not in seen:
                    seen.add(key)
                    yield observation

    @staticmethod
    def _fat_archive(data: bytes) -> bool:
        from appban.code.binary import fat_slices

        if data[:4] not in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf") or _is_java_class(data):
            return False
        try:
            return any(bytes(view[:8]) == _AR for _, view in fat_slices(data))
        except MalformedBinary:
            return False

    @staticmethod
    def _objects(obj: bytes) -> list[MachOSlice]:
        try:
            return read_macho(obj)
        except MalformedBinary:
            return []  # a member that is not Mach-O (bitcode, a symbol table) says nothing

    def _observe(self, slice_: MachOSlice) -> Iterator[Observation]:
        detail = f"Mach-O {slice_.cpu}"
        for class_name in slice_.objc_classes:
            yield Observation("objc_classes", class_name, None, detail)
        for dylib in slice_.dylibs:
            for part in dylib.split("/"):
                if part.endswith(".framework"):
                    yield Observation("frameworks", part.removesuffix(".framework"), None, dylib)
        for text in slice_.cstrings:
            if match := _SCHEME.match(text):
                yield Observation("url_schemes", match[1], None, detail)
            lowered = text.casefold()
            if any(needle in lowered for needle in self.needles):
                yield Observation("url", text[:300], None, detail)
