"""A per-row test that rules out, without hashing whole names, the hosts that cannot end in a listed suffix.

Dictionary-encoding a column of a million host names costs more than anything else in classification,
yet nearly every name is then found to match nothing. Every name that does match ends with a listed
suffix, so it ends with that suffix's last `width` bytes (`width` being the shortest suffix's length, at
most 8). Those bytes are read straight from the string column's buffer as one 64-bit word per row, folded
to lower case and looked up in a small bit table. Only the rows the table keeps (a few percent) go on to
the exact, per-distinct-name matcher.

The test may keep a row that cannot match (two suffix tails share a table slot; an unrelated name ends in
the same bytes), never the reverse. Rows it cannot reason about are kept: names whose last byte is a dot
or white space (normalisation strips those), and names too near the start of the buffer to read a word.
A column holding any non-ASCII byte is not filtered at all: its IDNA form may differ from its text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

_TABLE_BITS = 16
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of the product spread well
_DOT = 0x2E
_SPACE = 0x20


class SuffixTails:
    """Rules out, row by row, the hosts that end in none of `suffixes` (lower-case ASCII names)."""

    def __init__(self, suffixes: Iterable[str]):
        tails = [suffix.encode("ascii") for suffix in suffixes if suffix.isascii()]
        self.width = min(8, min((len(tail) for tail in tails), default=0))
        self._table = np.zeros(1 << _TABLE_BITS, dtype=np.bool_)
        if self.width:
            self._shift = np.uint64(8 * (8 - self.width))  # keeps a word's last `width` bytes
            self._fold = np.uint64(int.from_bytes(b"\x20" * self.width, "little"))
            words = np.array([int.from_bytes(tail[-self.width :], "little") for tail in tails], dtype=np.uint64)
            self._table[self._slots(words)] = True

    def _slots(self, words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        # OR-ing 0x20 into every byte lower-cases ASCII letters; it also merges some other pairs of bytes,
        # which only lets more rows through.
        return ((words | self._fold) * _MIX) >> np.uint64(64 - _TABLE_BITS)

    def may_match(self, hosts: Any) -> npt.NDArray[np.bool_] | None:
        """Per row of a string array, False where the host surely ends in no suffix; None: cannot tell."""
        if not self.width or not pa.types.is_string(hosts.type) or len(hosts) == 0:
            return None
        _, offset_buffer, data_buffer = hosts.buffers()
        if data_buffer is None or data_buffer.size < 8:
            return None
        data = np.frombuffer(data_buffer, dtype=np.uint8)
        if data.max() >= 0x80:
            return None
        offsets = np.frombuffer(offset_buffer, dtype=np.int32)[hosts.offset : hosts.offset + len(hosts) + 1]
        starts, ends = offsets[:-1], offsets[1:]
        # One unaligned 64-bit word per row, ending where the row's value ends (little-endian: its last
        # byte is the word's top byte).
        words = np.ndarray((data.size - 7,), dtype="<u8", buffer=data_buffer, strides=(1,))
        tails = words[np.maximum(ends - 8, 0)] >> self._shift
        kept: npt.NDArray[np.bool_] = self._table[self._slots(tails)] & (ends - starts >= self.width)
        last = data[ends - 1]  # an empty value reads its neighbour's byte: it is kept or not, and matches nothing
        kept |= (last <= _SPACE) | (last == _DOT) | (ends < 8)
        return kept
