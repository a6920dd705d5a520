"""Byte- and text-level mutations shared by the format generators.

Every mutation takes a `random.Random`, so a campaign is reproducible from its seed. Sizes stay bounded
(a few MB at most): the point is hostile structure, not filling the disk.
"""

from __future__ import annotations

import random
import struct

INTERESTING_32 = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
MAX_GROWTH = 2 << 20

# Text that has broken parsers before: numbers past 64 bits, calendar edges, control characters, odd Unicode.
HOSTILE_TEXT = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ufeff",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "\U0001f600" * 3,
    "\ud800",
    "NaN",
    "Infinity",
    "-0",
    "1e400",
    "-1e-400",
    str(2**64),
    str(-(2**63) - 1),
    str(10**40),
    "0x7fffffff",
    "9" * 400,
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999-23:59",
    "2020-02-30T00:00:00Z",
    "2020-09-20T24:00:00Z",
    "2020-09-20T12:00:00\x00Z",
    "2020-09-20T12:00:00+99:99",
    "2020-09-20",
    "20200920T120000Z",
    "-2020-09-20T12:00:00Z",
    "+12020-09-20T12:00:00Z",
    "1600574462.123456",
    "1e20",
    "-1",
    "\\",
    '"',
    "'",
    "\r",
    "\n",
    "\t",
    ",;|",
    "{}",
    "[]",
    "null",
    "true",
    "../../etc/passwd",
    "<x/>",
    "&amp;",
    "%s%n%x",
    "A" * 70000,
)


def pick_hostile(rng: random.Random) -> str:
    value = rng.choice(HOSTILE_TEXT)
    if rng.random() < 0.05:
        return (value * rng.choice((2, 100, 5000)))[: 1 << 20] if value else "x" * 100000
    return value


def flip_bits(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.randint(1, 8)):
        if data:
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)


def set_bytes(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.randint(1, 4)):
        if len(data) >= 4:
            i = rng.randrange(len(data) - 3)
            fmt = rng.choice(("<I", ">I", "<H", ">H", "B"))
            value = rng.choice(INTERESTING_32) & {"B": 0xFF, "<H": 0xFFFF, ">H": 0xFFFF}.get(fmt, 0xFFFFFFFF)
            struct.pack_into(fmt, data, i, value)


def lie_in_length(rng: random.Random, data: bytearray) -> None:
    """Rewrite a little-endian word that looks like a size or offset inside the file."""
    candidates = [
        i for i in range(0, min(len(data) - 3, 4096), 4) if 0 < struct.unpack_from("<I", data, i)[0] <= len(data) * 2
    ]
    if not candidates:
        set_bytes(rng, data)
        return
    i = rng.choice(candidates)
    old = struct.unpack_from("<I", data, i)[0]
    new = rng.choice((0, old - 1, old + 1, old * 2, old // 2, 0xFFFFFFFF, 0x7FFFFFFF, len(data), len(data) + 1))
    struct.pack_into("<I", data, i, new & 0xFFFFFFFF)


def truncate(rng: random.Random, data: bytearray) -> None:
    if data:
        del data[rng.randrange(len(data)) :]


def delete_chunk(rng: random.Random, data: bytearray) -> None:
    if len(data) > 2:
        i = rng.randrange(len(data))
        del data[i : i + rng.randint(1, max(1, len(data) // 8))]


def duplicate_chunk(rng: random.Random, data: bytearray) -> None:
    if data:
        i = rng.randrange(len(data))
        chunk = data[i : i + rng.randint(1, 256)]
        times = rng.choice((1, 2, 16, 1000))
        j = rng.randrange(len(data) + 1)
        data[j:j] = (chunk * times)[:MAX_GROWTH]


def insert_random(rng: random.Random, data: bytearray) -> None:
    i = rng.randrange(len(data) + 1)
    data[i:i] = rng.randbytes(rng.randint(1, 64))


def insert_hostile(rng: random.Random, data: bytearray) -> None:
    i = rng.randrange(len(data) + 1)
    data[i:i] = pick_hostile(rng).encode("utf-8", "surrogatepass")


BYTE_MUTATIONS = (
    flip_bits,
    set_bytes,
    lie_in_length,
    truncate,
    delete_chunk,
    duplicate_chunk,
    insert_random,
    insert_hostile,
)


def mutate_bytes(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    out = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        rng.choice(BYTE_MUTATIONS)(rng, out)
    return bytes(out[: len(data) + MAX_GROWTH])


def splice(rng: random.Random, a: bytes, b: bytes) -> bytes:
    if not a or not b:
        return a or b
    return a[: rng.randrange(len(a))] + b[rng.randrange(len(b)) :]


def line_ends(rng: random.Random, text: str) -> str:
    """CR-only, CRLF, mixed, or no final newline."""
    lines = text.splitlines()
    style = rng.choice(("\r", "\r\n", "mixed", "none", "\n\n", "\x85", "\u2028"))
    if style == "mixed":
        return "".join(line + rng.choice(("\n", "\r", "\r\n")) for line in lines)
    if style == "none":
        return "\n".join(lines)
    return style.join(lines) + style


def encode_text(rng: random.Random, text: str) -> bytes:
    """UTF-8 mostly; sometimes a BOM, UTF-16, Latin-1 or invalid UTF-8 sprinkled in."""
    choice = rng.random()
    if choice < 0.75:
        return text.encode("utf-8", "surrogatepass")
    if choice < 0.82:
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    if choice < 0.88:
        return text.encode("utf-16", "surrogatepass")
    if choice < 0.93:
        return text.encode("latin-1", "replace")
    raw = bytearray(text.encode("utf-8", "surrogatepass"))
    for _ in range(rng.randint(1, 5)):
        i = rng.randrange(len(raw) + 1)
        raw[i:i] = rng.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\x80", b"\x80"))
    return bytes(raw)


def deep_json(rng: random.Random) -> str:
    depth = rng.choice((65, 100, 1000, 5000, 100000))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    inner = opener * depth + "1" + closer * (depth if rng.random() < 0.8 else depth // 2)
    return inner
