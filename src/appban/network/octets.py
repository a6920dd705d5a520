"""A vectorised test that rules out the addresses no listed IPv4 network can hold, before the exact matcher.

The exact matcher parses each distinct address in Python (`ipaddress`), and a flow log has a hundred
thousand distinct addresses per million rows, nearly all of them outside every listed network. An IPv4
address the exact matcher accepts (`ipaddress.ip_address` after stripping white space and brackets) starts
with its first octet, one to three digits without a leading zero, then a dot. So each value's first four
bytes are read straight from the string array's buffer as one 32-bit word; where they spell `N.`, `NN.` or
`NNN.` and no listed IPv4 network holds first octet N, the value cannot match. Every other value is kept:
IPv6, bracketed or padded values, anything it cannot read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

_DOT = 0x2E
_ZERO = 0x30


_KEEP = -1  # the first two bytes are no IPv4 start the filter reads: kept
_DROP = -2  # `N.` with N held by no listed network


def _first_pairs(held: npt.NDArray[np.bool_]) -> npt.NDArray[np.int16]:
    """Per value of a row's first two bytes (little-endian): _KEEP, _DROP, _KEEP for `N.` when N is held, or
    NN (10 to 99) for two digits that may start a two- or three-digit octet."""
    table = np.full(1 << 16, _KEEP, dtype=np.int16)
    for first in range(10):
        table[(_DOT << 8) | (_ZERO + first)] = _KEEP if held[first] else _DROP
        if first:
            for second in range(10):
                table[((_ZERO + second) << 8) | (_ZERO + first)] = first * 10 + second
    return table


class LeadingOctets:
    """Rules out, row by row, IPv4 addresses whose first octet no listed network holds."""

    def __init__(self, networks: Iterable[tuple[int, int]]):
        """`networks`: each listed IPv4 network as (prefix length, network address >> (32 - length))."""
        held = np.zeros(1000, dtype=np.bool_)  # indexed by the digits' value (over 255: no address)
        for length, key in networks:
            if length >= 8:
                held[key >> (length - 8)] = True
            else:  # a network wider than /8 holds a run of first octets
                first = key << (8 - length)
                held[first : first + (1 << (8 - length))] = True
        self._held = held
        self._pairs = _first_pairs(held)

    def may_match(self, addresses: Any) -> npt.NDArray[np.bool_] | None:
        """Per value of a string array (the distinct values of a column), False where it is surely no address
        in a listed IPv4 network; None: cannot tell for the whole array."""
        if not pa.types.is_string(addresses.type) or len(addresses) == 0:
            return None
        _, offset_buffer, data_buffer = addresses.buffers()
        if data_buffer is None or data_buffer.size < 4:
            return None
        offsets = np.frombuffer(offset_buffer, dtype=np.int32)[addresses.offset : addresses.offset + len(addresses) + 1]
        starts = offsets[:-1]
        # One unaligned 32-bit word per row, starting where the row's value starts (little-endian: its first
        # byte is the word's low byte). A value shorter than four bytes reads its neighbour's: it is too short
        # to be an address, so whatever is decided for it is safe.
        words = np.ndarray((data_buffer.size - 3,), dtype="<u4", buffer=data_buffer, strides=(1,))
        word = words[np.minimum(starts, data_buffer.size - 4)]
        pair = self._pairs[word & 0xFFFF]
        third, fourth = (word >> 16) & 0xFF, word >> 24
        digit = third - _ZERO  # unsigned: a byte below "0" wraps far above 9
        octet = np.where(third == _DOT, pair, pair * 10 + np.minimum(digit, 9).astype(np.int16))
        readable = (pair >= 0) & ((third == _DOT) | ((digit <= 9) & (fourth == _DOT)))
        kept: npt.NDArray[np.bool_] = (pair == _KEEP) | ~readable | self._held[np.where(readable, octet, 0)]
        kept &= pair != _DROP
        kept |= starts > data_buffer.size - 4  # too near the buffer's end to read a word: kept
        return kept
