"""A per-row test that rules out, without dictionary-encoding the column, addresses no listed prefix covers.

Dictionary-encoding an address column (a million strings per batch) costs more than the rest of address
matching, yet in most logs nearly every address falls outside every listed network: a DNS log's resolver,
a flow log's ordinary destinations. An IPv4 address the exact matcher accepts (`ipaddress.ip_address`
after stripping white space and brackets) starts with its first octet, one to three digits without a
leading zero, then a dot. So each row's first four bytes are read straight from the string column's
buffer; where they spell `N.`, `NN.` or `NNN.` and no listed IPv4 network holds first octet N, the row
cannot match. Every other row is kept: IPv6, bracketed or padded values, anything it cannot read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

_DOT = 0x2E
_ZERO = 0x30


class LeadingOctets:
    """Rules out, row by row, IPv4 addresses whose first octet no listed network holds."""

    def __init__(self, networks: Iterable[tuple[int, int]]):
        """`networks`: each listed IPv4 network as (prefix length, network address >> (32 - length))."""
        self._held = np.zeros(1000, dtype=np.bool_)  # indexed by the three digits' value (over 255: no address)
        for length, key in networks:
            if length >= 8:
                self._held[key >> (length - 8)] = True
            else:  # a network wider than /8 holds a run of first octets
                first = key << (8 - length)
                self._held[first : first + (1 << (8 - length))] = True

    def may_match(self, addresses: Any) -> npt.NDArray[np.bool_] | None:
        """Per row of a string array, False where the value is surely no address in a listed IPv4 network;
        None: cannot tell for the whole column."""
        if not pa.types.is_string(addresses.type) or len(addresses) == 0:
            return None
        _, offset_buffer, data_buffer = addresses.buffers()
        if data_buffer is None or data_buffer.size < 4:
            return None
        data = np.frombuffer(data_buffer, dtype=np.uint8)
        offsets = np.frombuffer(offset_buffer, dtype=np.int32)[addresses.offset : addresses.offset + len(addresses) + 1]
        starts, ends = offsets[:-1], offsets[1:]
        readable = (ends - starts >= 2) & (starts <= data.size - 4)
        at = np.where(readable, starts, 0)
        digits = [data[at + i].astype(np.int16) - _ZERO for i in range(4)]
        is_digit = [(d >= 0) & (d <= 9) for d in digits]
        dot = [data[at + i] == _DOT for i in range(4)]
        one = is_digit[0] & dot[1]
        two = is_digit[0] & is_digit[1] & dot[2] & (digits[0] != 0)
        three = is_digit[0] & is_digit[1] & is_digit[2] & dot[3] & (digits[0] != 0)
        octet = np.where(
            one, digits[0], np.where(two, digits[0] * 10 + digits[1], digits[0] * 100 + digits[1] * 10 + digits[2])
        )
        read = readable & (one | two | three)
        kept: npt.NDArray[np.bool_] = ~read | self._held[np.where(read, octet, 0)]
        return kept
