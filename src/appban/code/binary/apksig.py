"""APK signer certificates: v1 (JAR signature blocks, PKCS#7 SignedData) and v2/v3 (APK Signing Block).

A minimal bounds-checked BER/DER walker reads just the parts needed: the certificates of a
SignedData, and the subject name of each certificate. Nothing is verified: these readers say who
claims to have signed an APK, which is what a scanner compares against known SDK or vendor keys.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple

from appban.code import budget
from appban.code.binary import BytesLike, MalformedBinary, byte_view

MAX_DER_DEPTH = 32
MAX_BLOCK_PAIRS = 100_000
SIGNED_DATA_OID = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2
APK_SIG_BLOCK_MAGIC = b"APK Sig Block 42"
# Signing-block pair ids whose values list signers with certificates in the same layout.
SIGNATURE_SCHEME_IDS = frozenset({0x7109871A, 0xF05368C0, 0x1B93AD61})  # v2, v3, v3.1
_SIGNATURE_BLOCK_FILE = re.compile(r"META-INF/[^/]+\.(?:RSA|DSA|EC)", re.IGNORECASE)
_EOCD_MAGIC = b"PK\x05\x06"
_EOCD_SIZE = 22
_NAME_ATTRIBUTES = {
    bytes.fromhex("550403"): "CN",
    bytes.fromhex("550404"): "SURNAME",
    bytes.fromhex("550405"): "SERIALNUMBER",
    bytes.fromhex("550406"): "C",
    bytes.fromhex("550407"): "L",
    bytes.fromhex("550408"): "ST",
    bytes.fromhex("550409"): "STREET",
    bytes.fromhex("55040a"): "O",
    bytes.fromhex("55040b"): "OU",
    bytes.fromhex("55040c"): "T",
    bytes.fromhex("2a864886f70d010901"): "EMAILADDRESS",
    bytes.fromhex("0992268993f22c640119"): "DC",
    bytes.fromhex("0992268993f22c640101"): "UID",
}
# Universal string types: tag -> codec.
_STRING_CODECS = {0x0C: "utf-8", 0x13: "ascii", 0x14: "latin-1", 0x16: "ascii", 0x1A: "ascii", 0x1E: "utf-16-be"}
_STRING_CODECS |= {0x1C: "utf-32-be"}
_SEQUENCE = 0x30
_CONTEXT_0 = 0xA0  # [0], constructed


@dataclass(frozen=True, slots=True)
class Certificate:
    sha256: str  # uppercase hex SHA-256 of the DER certificate (the usual "certificate fingerprint")
    subject: str  # RFC 4514 order, like apksigner prints it: "CN=Android Debug, O=Android, C=US"
    der: bytes = field(repr=False)


def signer_certificates(zip_members: Mapping[str, BytesLike]) -> list[Certificate]:
    """Distinct certificates of the v1 signature blocks (META-INF/*.RSA, *.DSA, *.EC), by file name."""
    found: dict[str, Certificate] = {}
    for name in sorted(n for n in zip_members if _SIGNATURE_BLOCK_FILE.fullmatch(n)):
        for der in _pkcs7_certificates(byte_view(zip_members[name]).tobytes()):
            certificate = _certificate(der)
            found.setdefault(certificate.sha256, certificate)
    return list(found.values())


def signing_block_certificates(apk_bytes: BytesLike) -> list[Certificate]:
    """Distinct signer certificates of the APK Signing Block (v2, v3, v3.1); [] when the APK has none."""
    view = byte_view(apk_bytes)
    block = _signing_block(view, _central_directory_offset(view))
    found: dict[str, Certificate] = {}
    for pair_id, value in _id_value_pairs(block):
        if pair_id in SIGNATURE_SCHEME_IDS:
            for der in _scheme_certificates(value):
                certificate = _certificate(der)
                found.setdefault(certificate.sha256, certificate)
    return list(found.values())


def _certificate(der: bytes) -> Certificate:
    return Certificate(hashlib.sha256(der).hexdigest().upper(), _subject(der), der)


# --- BER/DER ---------------------------------------------------------------------------------


class _Tlv(NamedTuple):
    tag: int  # the first identifier byte: class, constructed bit and (low) tag number
    start: int  # offset of the identifier
    content: int  # offset of the contents
    end: int  # end of the contents (for indefinite lengths, where the end-of-contents marker sits)
    next: int  # offset just past the whole element


def _element(buf: bytes, pos: int, limit: int, depth: int = 0) -> _Tlv:
    """The element at pos, which must end by limit. Indefinite lengths (BER) are walked to their end."""
    if depth > MAX_DER_DEPTH:
        raise MalformedBinary("DER nested too deeply")
    if pos + 2 > limit:
        raise MalformedBinary("DER element truncated")
    tag = buf[pos]
    cursor = _skip_high_tag(buf, pos + 1, limit) if tag & 0x1F == 0x1F else pos + 1
    if cursor >= limit:
        raise MalformedBinary("DER length missing")
    first = buf[cursor]
    cursor += 1
    if first == 0x80:
        if not tag & 0x20:
            raise MalformedBinary("indefinite length on a primitive DER element")
        end = _indefinite_end(buf, cursor, limit, depth)
        return _Tlv(tag, pos, cursor, end, end + 2)
    length = first
    if first > 0x80:
        count = first & 0x7F
        if count > 4 or cursor + count > limit:
            raise MalformedBinary("bad DER length")
        length = int.from_bytes(buf[cursor : cursor + count], "big")
        cursor += count
    if cursor + length > limit:
        raise MalformedBinary("DER element longer than its container")
    return _Tlv(tag, pos, cursor, cursor + length, cursor + length)


def _skip_high_tag(buf: bytes, pos: int, limit: int) -> int:
    # High tag numbers continue in base-128 bytes; four are more than any real tag uses.
    for cursor in range(pos, min(pos + 4, limit)):
        if not buf[cursor] & 0x80:
            return cursor + 1
    raise MalformedBinary("bad DER tag")


def _indefinite_end(buf: bytes, pos: int, limit: int, depth: int) -> int:
    """Offset of the end-of-contents marker closing an indefinite-length element whose contents start at pos."""
    while pos + 2 <= limit:
        if buf[pos] == 0 and buf[pos + 1] == 0:
            return pos
        pos = _element(buf, pos, limit, depth + 1).next  # always advances by two bytes or more
    raise MalformedBinary("indefinite-length DER element not terminated")


def _children(buf: bytes, parent: _Tlv) -> Iterator[_Tlv]:
    pos = parent.content
    while pos < parent.end:
        child = _element(buf, pos, parent.end)
        yield child
        pos = child.next


def _expect(buf: bytes, parent: _Tlv, tags: tuple[int, ...], what: str) -> list[_Tlv]:
    """The first len(tags) children of parent, which must carry those tags."""
    found = list(islice(_children(buf, parent), len(tags)))
    if [child.tag for child in found] != list(tags):
        raise MalformedBinary(f"unexpected {what} structure")
    return found


# --- PKCS#7 and X.509 ------------------------------------------------------------------------


def _pkcs7_certificates(buf: bytes) -> list[bytes]:
    """DER of each certificate in ContentInfo{signedData, [0] SignedData{..., [0] certificates, ...}}."""
    content_info = _element(buf, 0, len(buf))
    if content_info.tag != _SEQUENCE:
        raise MalformedBinary("PKCS#7 is not a SEQUENCE")
    oid, explicit = _expect(buf, content_info, (0x06, _CONTEXT_0), "PKCS#7 ContentInfo")
    if buf[oid.content : oid.end] != SIGNED_DATA_OID:
        raise MalformedBinary("PKCS#7 content is not SignedData")
    (signed_data,) = _expect(buf, explicit, (_SEQUENCE,), "PKCS#7 SignedData")
    certificates: list[bytes] = []
    for child in _children(buf, signed_data):
        if child.tag == _CONTEXT_0:  # certificates [0] IMPLICIT SET OF CertificateChoices
            certificates += [buf[c.start : c.next] for c in _children(buf, child) if c.tag == _SEQUENCE]
    return certificates


def _subject(der: bytes) -> str:
    """Subject of Certificate{TBSCertificate{[0] version?, serial, signature, issuer, validity, subject, ...}}."""
    certificate = _element(der, 0, len(der))
    if certificate.tag != _SEQUENCE or certificate.next != len(der):
        raise MalformedBinary("certificate is not one DER SEQUENCE")
    (tbs,) = _expect(der, certificate, (_SEQUENCE,), "certificate")
    fields = list(islice(_children(der, tbs), 6))
    if fields and fields[0].tag == _CONTEXT_0:
        fields = fields[1:]
    if len(fields) < 5 or fields[4].tag != _SEQUENCE:
        raise MalformedBinary("certificate has no subject")
    return _format_name(der, fields[4])


def _format_name(buf: bytes, name: _Tlv) -> str:
    """RFC 4514 string: relative names last-first, multi-valued ones joined by '+'."""
    relative_names: list[str] = []
    for rdn in _children(buf, name):
        values: list[str] = []
        for pair in _children(buf, rdn):
            parts = list(islice(_children(buf, pair), 2)) if pair.tag == _SEQUENCE else []
            if len(parts) != 2 or parts[0].tag != 0x06:
                raise MalformedBinary("bad attribute in certificate name")
            oid, value = parts
            key = buf[oid.content : oid.end]
            values.append(f"{_NAME_ATTRIBUTES.get(key) or _oid_text(key)}={_name_value(buf, value)}")
        relative_names.append("+".join(values))
    return ", ".join(reversed(relative_names))


def _name_value(buf: bytes, value: _Tlv) -> str:
    raw = buf[value.content : value.end]
    codec = _STRING_CODECS.get(value.tag)
    if codec is None:  # not a string type: RFC 4514 writes the whole DER element in hex
        return "#" + buf[value.start : value.next].hex()
    text = raw.decode(codec, "replace")
    escaped = "".join("\\" + ch if ch in ',+"\\<>;=' else ch for ch in text)
    if text.startswith(("#", " ")):
        escaped = "\\" + escaped
    if len(text) > 1 and text.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def _oid_text(raw: bytes) -> str:
    """Dotted form of an OID's contents (for attribute types without a short name)."""
    arcs: list[int] = []
    value = 0
    for byte in raw[:64]:  # no real attribute type is longer; this keeps the integers small
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return "#" + raw.hex()
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


# --- ZIP and the APK Signing Block -----------------------------------------------------------


def _central_directory_offset(view: memoryview) -> int:
    """Central directory offset from the End Of Central Directory record (searched within its comment range)."""
    tail_start = max(0, len(view) - _EOCD_SIZE - 0xFFFF)
    tail = view[tail_start:].tobytes()
    if len(tail) < _EOCD_SIZE:
        raise MalformedBinary("not a ZIP file (too short)")
    pos = tail.rfind(_EOCD_MAGIC, 0, len(tail) - _EOCD_SIZE + 4)
    while pos >= 0:
        # The record is genuine only if its comment runs exactly to the end of the file.
        if pos + _EOCD_SIZE + struct.unpack_from("<H", tail, pos + 20)[0] == len(tail):
            cd_size, cd_offset = struct.unpack_from("<II", tail, pos + 12)
            if cd_offset == 0xFFFFFFFF:
                raise MalformedBinary("ZIP64 APKs are not supported")
            if cd_offset + cd_size > tail_start + pos:
                raise MalformedBinary("central directory overlaps its end record")
            return int(cd_offset)
        pos = tail.rfind(_EOCD_MAGIC, 0, pos)
    raise MalformedBinary("not a ZIP file (no end of central directory)")


def _signing_block(view: memoryview, cd_offset: int) -> memoryview:
    """The id-value pairs of the signing block just before the central directory (empty if there is none)."""
    if cd_offset < 32 or view[cd_offset - 16 : cd_offset] != APK_SIG_BLOCK_MAGIC:
        return view[0:0]
    size = struct.unpack_from("<Q", view, cd_offset - 24)[0]
    start = cd_offset - size - 8  # the leading size field does not count itself
    if size < 24 or start < 0 or struct.unpack_from("<Q", view, start)[0] != size:
        raise MalformedBinary("bad APK Signing Block size")
    return view[start + 8 : cd_offset - 24]


def _id_value_pairs(block: memoryview) -> Iterator[tuple[int, memoryview]]:
    pos = 0
    for step in range(MAX_BLOCK_PAIRS):
        budget.tick(step)
        if pos >= len(block):
            return
        if pos + 12 > len(block):
            raise MalformedBinary("APK Signing Block pair truncated")
        length, pair_id = struct.unpack_from("<QI", block, pos)
        if length < 4 or pos + 8 + length > len(block):
            raise MalformedBinary("APK Signing Block pair outside the block")
        yield pair_id, block[pos + 12 : pos + 8 + length]
        pos += 8 + length
    raise MalformedBinary("too many APK Signing Block pairs")


def _prefixed(view: memoryview, pos: int) -> tuple[memoryview, int]:
    """A u32-length-prefixed field at pos: (its bytes, offset after it)."""
    if pos + 4 > len(view):
        raise MalformedBinary("length prefix truncated")
    length = struct.unpack_from("<I", view, pos)[0]
    if pos + 4 + length > len(view):
        raise MalformedBinary("length-prefixed field outside its container")
    return view[pos + 4 : pos + 4 + length], pos + 4 + length


def _sequence(view: memoryview) -> Iterator[memoryview]:
    """Consecutive length-prefixed fields filling view; each takes at least four bytes, so this ends."""
    pos = 0
    for step in itertools.count():
        if pos >= len(view):
            return
        budget.tick(step)
        item, pos = _prefixed(view, pos)
        yield item


def _scheme_certificates(value: memoryview) -> Iterator[bytes]:
    """Certificates of each signer: signers[i].signed_data = (digests, certificates, ...) in v2 and v3."""
    signers, _ = _prefixed(value, 0)
    for signer in _sequence(signers):
        signed_data, _ = _prefixed(signer, 0)
        _, pos = _prefixed(signed_data, 0)
        certificates, _ = _prefixed(signed_data, pos)
        for certificate in _sequence(certificates):
            yield certificate.tobytes()
