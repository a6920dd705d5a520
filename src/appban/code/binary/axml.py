"""AndroidManifest.xml reader: Android's compiled binary XML, or a plain-text manifest.

Binary XML is a RES_XML_TYPE chunk holding a ResStringPool, an optional resource map (attribute
resource ids, parallel to the pool) and element chunks. Attributes are matched by resource id when
the map has one, as Android does, so manifests with scrambled attribute-name strings still read.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from xml.parsers import expat

from appban.code import budget
from appban.code.binary import BytesLike, MalformedBinary, byte_view

MAX_STRINGS = 5_000_000
MAX_DEPTH = 10_000
ANDROID_NS = "http://schemas.android.com/apk/res/android"
RES_STRING_POOL_TYPE = 0x0001
RES_XML_TYPE = 0x0003
RES_XML_START_ELEMENT_TYPE = 0x0102
RES_XML_END_ELEMENT_TYPE = 0x0103
RES_XML_RESOURCE_MAP_TYPE = 0x0180
UTF8_FLAG = 0x100
TYPE_STRING = 0x03
NO_INDEX = 0xFFFFFFFF
# android:name and android:scheme, from the framework's public resource ids.
ATTRIBUTE_IDS = {0x01010003: "android:name", 0x01010027: "android:scheme"}
# "<" (UTF-8 or UTF-16LE text), the UTF-16 byte order marks, and "<" in UTF-16BE; binary XML starts 03 00.
_TEXT_STARTS = (b"<", b"\xff\xfe", b"\xfe\xff", b"\x00<")
_ATTRIBUTE = struct.Struct("<IIIHBBI")  # ns, name, rawValue, Res_value(size, res0, dataType, data)


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    package: str | None  # <manifest package="...">
    queries_packages: list[str]  # android:name of <queries><package>
    schemes: list[str]  # distinct android:scheme values of <data> elements
    activities: list[str]  # android:name of <activity>, made fully qualified against the package
    strings: list[str]  # the binary string pool; for text manifests, distinct names and values


def read_manifest(data: BytesLike) -> ManifestInfo:
    """Read a binary (compiled) or plain-text AndroidManifest.xml."""
    view = byte_view(data)
    if view[:64].tobytes().lstrip(b"\xef\xbb\xbf \t\r\n").startswith(_TEXT_STARTS):
        return _read_text(view.tobytes())
    return _BinaryReader(view).read()


@dataclass
class _Collector:
    """Turns start/end element events into ManifestInfo, tracking the element path."""

    path: list[str] = field(default_factory=list)
    package: str | None = None
    queries_packages: list[str] = field(default_factory=list)
    schemes: list[str] = field(default_factory=list)
    activities: list[str] = field(default_factory=list)

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if len(self.path) >= MAX_DEPTH:
            raise MalformedBinary("XML nested too deeply")
        parent = self.path[-1] if self.path else None
        self.path.append(tag)
        name = attrs.get("android:name")
        if tag == "manifest" and parent is None:
            self.package = attrs.get("package")
        elif tag == "package" and parent == "queries" and name is not None:
            self.queries_packages.append(name)
        elif tag == "data" and "android:scheme" in attrs:
            self.schemes.append(attrs["android:scheme"])
        elif tag == "activity" and name is not None:
            self.activities.append(name)

    def end(self) -> None:
        if self.path:  # Android itself does not insist on balanced elements
            self.path.pop()

    def result(self, strings: list[str]) -> ManifestInfo:
        activities = [_qualify(name, self.package) for name in self.activities]
        return ManifestInfo(self.package, self.queries_packages, list(dict.fromkeys(self.schemes)), activities, strings)


def _qualify(name: str, package: str | None) -> str:
    """Android's rule for component names: ".Foo" and "Foo" are relative to the package."""
    if not package:
        return name
    if name.startswith("."):
        return package + name
    return name if "." in name else f"{package}.{name}"


class _BinaryReader:
    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.pool: list[str] | None = None
        self.resource_ids: tuple[int, ...] = ()
        self.collector = _Collector()

    def read(self) -> ManifestInfo:
        if len(self.view) < 8:
            raise MalformedBinary("binary XML truncated")
        kind, header_size, size = struct.unpack_from("<HHI", self.view, 0)
        if kind != RES_XML_TYPE or header_size < 8 or header_size > size or size > len(self.view):
            raise MalformedBinary("not an Android binary XML file")
        offset = header_size
        # Every chunk is at least 8 bytes, so this loop ends within size / 8 steps.
        for step in itertools.count():
            if offset + 8 > size:
                break
            budget.tick(step)
            kind, header_size, chunk_size = struct.unpack_from("<HHI", self.view, offset)
            if header_size < 8 or chunk_size < header_size or offset + chunk_size > size:
                raise MalformedBinary("bad binary XML chunk size")
            self._chunk(kind, self.view[offset : offset + chunk_size], header_size)
            offset += chunk_size
        return self.collector.result(self.pool or [])

    def _chunk(self, kind: int, chunk: memoryview, header_size: int) -> None:
        if kind == RES_STRING_POOL_TYPE and self.pool is None:
            self.pool = _read_string_pool(chunk.tobytes(), header_size)
        elif kind == RES_XML_RESOURCE_MAP_TYPE and not self.resource_ids:
            count = (len(chunk) - header_size) // 4
            self.resource_ids = struct.unpack_from(f"<{count}I", chunk, header_size)
        elif kind == RES_XML_START_ELEMENT_TYPE:
            self._start_element(chunk, header_size)
        elif kind == RES_XML_END_ELEMENT_TYPE:
            self.collector.end()

    def _string(self, index: int) -> str:
        if self.pool is None or index >= len(self.pool):
            raise MalformedBinary("string index outside the string pool")
        return self.pool[index]

    def _start_element(self, chunk: memoryview, header_size: int) -> None:
        # ResXMLTree_attrExt follows the node header: ns, name, attributeStart, attributeSize, attributeCount.
        if header_size < 16 or header_size + 20 > len(chunk):
            raise MalformedBinary("start element truncated")
        _, name, attr_start, attr_size, attr_count = struct.unpack_from("<IIHHH", chunk, header_size)
        first = header_size + attr_start
        if attr_size < _ATTRIBUTE.size or first + attr_count * attr_size > len(chunk):
            raise MalformedBinary("attributes outside their element")
        attrs: dict[str, str] = {}
        for index in range(attr_count):
            ns, attr_name, raw_value, _, _, data_type, data = _ATTRIBUTE.unpack_from(chunk, first + index * attr_size)
            key = self._attribute_key(ns, attr_name)
            value = self._attribute_value(raw_value, data_type, data)
            if key is not None and value is not None:
                attrs[key] = value
        self.collector.start(self._string(name), attrs)

    def _attribute_key(self, ns: int, name: int) -> str | None:
        """ "android:name"-style key; the resource id decides when present, as it does on the device."""
        if name < len(self.resource_ids) and self.resource_ids[name]:
            return ATTRIBUTE_IDS.get(self.resource_ids[name])
        local = self._string(name)
        if ns == NO_INDEX:
            return local
        return f"android:{local}" if self._string(ns) == ANDROID_NS else None

    def _attribute_value(self, raw_value: int, data_type: int, data: int) -> str | None:
        # Only string values matter here; references (@string/...) would need resources.arsc.
        pool = self.pool or []
        if data_type == TYPE_STRING and data < len(pool):
            return pool[data]
        return pool[raw_value] if raw_value < len(pool) else None


def _read_string_pool(chunk: bytes, header_size: int) -> list[str]:
    """All strings of a ResStringPool chunk (UTF-8 or UTF-16)."""
    if header_size < 28:
        raise MalformedBinary("string pool header truncated")
    count, style_count, flags, strings_start, styles_start = struct.unpack_from("<5I", chunk, 8)
    if count > MAX_STRINGS or header_size + 4 * count > len(chunk):
        raise MalformedBinary("string pool offsets outside the chunk")
    area_end = styles_start if style_count and strings_start < styles_start <= len(chunk) else len(chunk)
    if count and not header_size <= strings_start < area_end:
        raise MalformedBinary("string data outside the string pool")
    area = chunk[strings_start:area_end]
    decode = _utf8_string if flags & UTF8_FLAG else _utf16_string
    # Offsets may repeat or overlap (some packers do it on purpose): decode each offset once and cap
    # the bytes decoded so crafted overlaps cannot cost quadratic time or memory.
    allowance = 4 * len(chunk) + (1 << 20)
    by_offset: dict[int, str] = {}
    strings: list[str] = []
    offsets = struct.iter_unpack("<I", memoryview(chunk)[header_size : header_size + 4 * count])
    for step, (offset,) in enumerate(offsets):
        budget.tick(step)
        if offset not in by_offset:
            if offset >= len(area):
                raise MalformedBinary("string offset outside the string pool")
            text, used = decode(area, offset)
            allowance -= used
            if allowance < 0:
                raise MalformedBinary("string pool strings overlap too much")
            by_offset[offset] = text
        strings.append(by_offset[offset])
    return strings


def _utf8_string(area: bytes, offset: int) -> tuple[str, int]:
    """UTF-8 pool entry: UTF-16 length, UTF-8 byte length (each 1 or 2 bytes), bytes, NUL."""
    _, pos = _utf8_length(area, offset)
    length, pos = _utf8_length(area, pos)
    if pos + length > len(area):
        raise MalformedBinary("string outside the string pool")
    return area[pos : pos + length].decode("utf-8", "replace"), length


def _utf8_length(area: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(area):
        raise MalformedBinary("string length outside the string pool")
    first = area[pos]
    if not first & 0x80:
        return first, pos + 1
    if pos + 1 >= len(area):
        raise MalformedBinary("string length outside the string pool")
    return (first & 0x7F) << 8 | area[pos + 1], pos + 2


def _utf16_string(area: bytes, offset: int) -> tuple[str, int]:
    """UTF-16 pool entry: length in code units (one or two u16), UTF-16LE units, NUL unit."""
    if offset + 2 > len(area):
        raise MalformedBinary("string length outside the string pool")
    units = struct.unpack_from("<H", area, offset)[0]
    pos = offset + 2
    if units & 0x8000:
        if pos + 2 > len(area):
            raise MalformedBinary("string length outside the string pool")
        units = (units & 0x7FFF) << 16 | struct.unpack_from("<H", area, pos)[0]
        pos += 2
    if pos + 2 * units > len(area):
        raise MalformedBinary("string outside the string pool")
    return area[pos : pos + 2 * units].decode("utf-16-le", "replace"), 2 * units


def _read_text(raw: bytes) -> ManifestInfo:
    """A plain-text manifest, via expat (ElementTree's parser) with DTDs refused outright.

    Refusing the DOCTYPE inside the parser, rather than by searching the bytes, also covers
    documents in encodings such as UTF-16, so no entity can ever be declared or expanded.
    """
    collector = _Collector()
    strings: dict[str, None] = {}
    parser = expat.ParserCreate(namespace_separator="}")

    def start(tag: str, attributes: dict[str, str]) -> None:
        attrs: dict[str, str] = {}
        for name, value in attributes.items():
            ns, _, local = name.rpartition("}")
            strings.update({local: None, value: None})
            if not ns or ns == ANDROID_NS:
                attrs[f"android:{local}" if ns else local] = value
        local_tag = tag.rpartition("}")[2]
        strings[local_tag] = None
        collector.start(local_tag, attrs)

    def refuse_dtd(*_: object) -> None:
        raise MalformedBinary("XML with a DOCTYPE or entity declaration is refused")

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _tag: collector.end()
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        raise MalformedBinary(f"bad XML: {exc}") from exc
    return collector.result(list(strings))
