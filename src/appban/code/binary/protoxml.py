"""Android App Bundle manifests: the protocol-buffer XML (aapt2's XmlNode) in base/manifest/.

Only what the scanner needs is decoded (element names, attributes and children); unknown fields are
skipped by wire type, and every length is checked against the buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from appban.code import budget
from appban.code.binary import BytesLike, MalformedBinary, byte_view

_MAX_DEPTH = 64
_MAX_NODES = 1_000_000


@dataclass
class ProtoElement:
    name: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    children: list[ProtoElement] = field(default_factory=list)


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise MalformedBinary("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, tuple[int, int]]]:
    """(field number, wire type, (start, end)) of each field; only length-delimited spans are used."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if length > end - pos:
                raise MalformedBinary("length-delimited field runs past its message")
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise MalformedBinary(f"unsupported wire type {wire}")
        if pos > end:
            raise MalformedBinary("field runs past its message")


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0] : span[1]]).decode("utf-8", errors="replace")


def _element(buf: memoryview, start: int, end: int, depth: int, nodes: list[int]) -> ProtoElement:
    if depth > _MAX_DEPTH:
        raise MalformedBinary("XML nested too deeply")
    nodes[0] -= 1
    if nodes[0] < 0:
        raise MalformedBinary("too many XML nodes")
    budget.tick(nodes[0])
    element = ProtoElement()
    for number, wire, value in _fields(buf, start, end):
        if wire != 2:
            continue
        if number == 3:  # XmlElement.name
            element.name = _text(buf, value)
        elif number == 4:  # XmlElement.attribute
            name = text = ""
            for a_number, a_wire, a_value in _fields(buf, *value):
                if a_wire == 2 and a_number == 2:
                    name = _text(buf, a_value)
                elif a_wire == 2 and a_number == 3:
                    text = _text(buf, a_value)
            element.attributes[name] = text
        elif number == 5:  # XmlElement.child: an XmlNode
            for n_number, n_wire, n_value in _fields(buf, *value):
                if n_number == 1 and n_wire == 2:  # XmlNode.element
                    element.children.append(_element(buf, n_value[0], n_value[1], depth + 1, nodes))
    return element


def read_proto_manifest(data: BytesLike) -> ProtoElement:
    """The root <manifest> element of a bundle's protobuf AndroidManifest.xml."""
    buf = byte_view(data)
    for number, wire, value in _fields(buf, 0, len(buf)):
        if number == 1 and wire == 2:  # XmlNode.element
            return _element(buf, value[0], value[1], 0, [_MAX_NODES])
    raise MalformedBinary("no root element")


def walk(element: ProtoElement) -> list[ProtoElement]:
    """Every element under and including `element`, in document order (without recursion, so that the
    cost stays linear in the number of nodes)."""
    found: list[ProtoElement] = []
    stack = [element]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(node.children))
    return found
