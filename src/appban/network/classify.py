"""Classify network records: which covered app a host name, an address or an autonomous system
belongs to, by whole DNS labels and by longest IP prefix.

Work is per distinct value, not per row: a row prefilter (`tails`) first drops the hosts whose last
bytes belong to no listed suffix; the rows left are dictionary-encoded, one vectorised search rules
out the distinct hosts that hold no listed suffix, and only the rest not seen before are matched (in
Python, against a dict of suffixes); addresses likewise go through a per-length table of networks.
Rows then pick their result with one vectorised take.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban.network.indicators import IndicatorSet
from appban.network.octets import LeadingOctets
from appban.network.tails import SuffixTails
from appban.reading.values import whole

CLASS_FIELDS = [
    pa.field("app", pa.string()),
    pa.field("scope", pa.string()),
    pa.field("indicator", pa.string()),
    pa.field("indicator_kind", pa.string()),
    pa.field("confidence", pa.float32()),
]
_CACHE_LIMIT = 4_000_000


@dataclass(frozen=True)
class Hit:
    app: str
    scope: str
    indicator: str
    kind: str  # "domain", "ip" or "asn"
    confidence: float
    sources: tuple[str, ...]


def normalise_host(host: str) -> str:
    """Lower-case, no trailing dot, internationalised labels in their ASCII (punycode) form."""
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


class DomainMatcher:
    """Suffixes match the name and every name under it; exact hosts (names on shared CDNs) only themselves."""

    def __init__(self, entries: Iterable[tuple[str, int]], exact: Iterable[tuple[str, int]] = ()):
        self.suffixes = dict(entries)
        self.exact = dict(exact)
        self._longest = max(map(len, self.suffixes), default=0)
        # Every listed name contains one of these (the names that contain no other listed name).
        names = set(self.suffixes) | set(self.exact)
        needles = [s for s in names if not any(o != s and o in s for o in names)]
        self._needles = "|".join(re.escape(n) for n in sorted(needles))

    def might_match(self, hosts: pa.Array) -> np.ndarray | None:
        """A vectorised superset of the hosts `match` can find, or None when it cannot tell.

        An ASCII host that matches holds a listed suffix once lower-cased, so one case-insensitive
        search for the suffixes rules most hosts out without Python. Non-ASCII hosts always stay in:
        their IDNA form, which `match` compares, can differ from the text (full-width letters).
        """
        if not self._needles or not (pa.types.is_string(hosts.type) or pa.types.is_large_string(hosts.type)):
            return None
        found = pc.match_substring_regex(hosts, self._needles, ignore_case=True)
        keep = pc.or_kleene(found, pc.invert(pc.string_is_ascii(hosts)))
        mask: np.ndarray = keep.fill_null(True).to_numpy(zero_copy_only=False)
        return mask

    def match(self, host: str) -> int:
        """The hit of `host` listed as an exact host, else of the longest listed suffix made of whole
        labels of `host`, or -1. An exact name is the most specific entry there can be."""
        name = normalise_host(host)
        found = self.exact.get(name)
        if found is not None:
            return found
        # Only a tail no longer than the longest suffix can match: each try slices and hashes the rest of
        # the name, so starting at 0 would be quadratic in a hostile megabyte-long host of short labels.
        position = 0
        if len(name) > self._longest:
            position = name.find(".", len(name) - self._longest - 1) + 1
            if position == 0:
                return -1
        while True:
            found = self.suffixes.get(name[position:])
            if found is not None:
                return found
            position = name.find(".", position) + 1
            if position == 0:
                return -1


class PrefixTable:
    """Longest-prefix match over IPv4 and IPv6 networks, each mapped to an integer value."""

    def __init__(self, entries: Iterable[tuple[str, int]]):
        self.v4: dict[int, dict[int, int]] = {}
        self.v6: dict[int, dict[int, int]] = {}
        for prefix, value in entries:
            network = ipaddress.ip_network(prefix, strict=False)
            table = self.v4 if network.version == 4 else self.v6
            table.setdefault(network.prefixlen, {})[
                int(network.network_address) >> (network.max_prefixlen - network.prefixlen)
            ] = value
        self.v4_lengths = sorted(self.v4, reverse=True)
        self.v6_lengths = sorted(self.v6, reverse=True)
        # numpy look-up tables for IPv4: per length, sorted keys and their values
        self._v4_arrays = [
            (length, np.array(sorted(self.v4[length]), dtype=np.int64),
             np.array([self.v4[length][k] for k in sorted(self.v4[length])], dtype=np.int64))
            for length in self.v4_lengths
        ]  # fmt: skip

    def lookup(self, address: str) -> int:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return -1
        value = int(ip)
        if ip.version == 4:
            lengths, tables, bits = self.v4_lengths, self.v4, 32
        else:
            lengths, tables, bits = self.v6_lengths, self.v6, 128
        for length in lengths:
            found = tables[length].get(value >> (bits - length))
            if found is not None:
                return found
        return -1

    def lookup_v4(self, addresses: np.ndarray) -> np.ndarray:
        """Vectorised longest-prefix match of IPv4 addresses given as int64; -1 where none matches."""
        out = np.full(len(addresses), -1, dtype=np.int64)
        for length, keys, values in self._v4_arrays:
            if not len(keys):
                continue
            pending = out < 0
            if not pending.any():
                break
            probe = addresses[pending] >> (32 - length)
            slot = np.searchsorted(keys, probe).clip(0, len(keys) - 1)
            hit = keys[slot] == probe
            found = np.where(hit, values[slot], -1)
            out[pending] = found
        return out


def parse_asn_table(lines: Iterable[str]) -> list[tuple[str, int]]:
    """A prefix-to-origin-AS table: 'PREFIX ASN' per line (as `bgpdump`-style or RIR dumps reduce to);
    'AS' prefixes, commas and comments are accepted; bad lines raise ValueError naming the line."""
    entries: list[tuple[str, int]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f"line {number}: expected 'PREFIX ASN', got {raw.strip()!r}")
        try:
            network = ipaddress.ip_network(parts[0], strict=False)
            asn = int(parts[-1].upper().removeprefix("AS"))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        entries.append((str(network), asn))
    return entries


class _Known:
    """Values already matched and their hits. A batch's distinct values are looked up here first;
    only values never seen before go through the Python matcher. (A dict beats a vectorised
    index_in here: index_in rebuilds its hash table of every known value on each call.)"""

    def __init__(self, match: Callable[[str], int], might_match: Callable[[pa.Array], np.ndarray | None] | None = None):
        self.match = match
        self.might_match = might_match  # rules values out in bulk; those it keeps go through `match`
        self.hits: dict[str, int] = {}

    def lookup(self, dictionary: pa.Array) -> np.ndarray:
        known = self.hits
        candidates = self.might_match(dictionary) if self.might_match else None
        if candidates is None:
            positions = np.arange(len(dictionary))
            values = dictionary.to_pylist()
        else:
            positions = np.flatnonzero(candidates)
            values = dictionary.take(pa.array(positions)).to_pylist()
        out = np.full(len(dictionary), -1, dtype=np.int64)
        for i, value in zip(positions.tolist(), values, strict=True):
            hit = known.get(value)
            if hit is None:
                hit = self.match(value)
                if len(known) < _CACHE_LIMIT:
                    known[value] = hit
            out[i] = hit
        return out


class Classifier:
    """Classifies record batches (appban.network.records schema) against an indicator set."""

    def __init__(self, indicators: IndicatorSet, asn_table: list[tuple[str, int]] | None = None):
        self.hits: list[Hit] = []
        suffix_entries: list[tuple[str, int]] = []
        host_entries: list[tuple[str, int]] = []
        for item in indicators.domains:
            index = self._add(Hit(item.app, item.scope, item.name, "domain", item.confidence, tuple(item.sources)))
            (host_entries if item.exact else suffix_entries).append((item.name, index))
        prefix_entries = []
        for group in indicators.prefixes:
            for prefix in group.prefixes:
                hit = Hit(group.app, group.scope, prefix, "ip", group.confidence, tuple(group.sources))
                prefix_entries.append((prefix, self._add(hit)))
        asn_hits = {
            item.asn: self._add(Hit(item.app, item.scope, f"AS{item.asn}", "asn", item.confidence, tuple(item.sources)))
            for item in indicators.asns
        }
        self.domains = DomainMatcher(suffix_entries, host_entries)
        self.prefixes = PrefixTable(prefix_entries)
        # A routing table widens IP matching: an address originated by a listed AS matches that AS.
        self.asn_prefixes = PrefixTable((prefix, asn_hits[asn]) for prefix, asn in (asn_table or []) if asn in asn_hits)
        self._hosts = _Known(self.domains.match, self.domains.might_match)
        self._tails = SuffixTails([*self.domains.suffixes, *self.domains.exact])
        # Distinct addresses whose first octet no listed network holds skip the exact (Python) matcher: a flow
        # log's ordinary destinations are most of its distinct values.
        self._octets = LeadingOctets(
            (length, key)
            for table in (self.prefixes, self.asn_prefixes)
            for length, keys in table.v4.items()
            for key in keys
        )
        self._addresses = _Known(self._address_hit, self._octets.may_match)

    def _add(self, hit: Hit) -> int:
        self.hits.append(hit)
        return len(self.hits) - 1

    def host_hit(self, host: str) -> int:
        return self.domains.match(host)

    def _address_hit(self, address: str) -> int:
        found = self.prefixes.lookup(address)
        return found if found >= 0 else self.asn_prefixes.lookup(address)

    def _per_value(self, column: pa.Array | pa.ChunkedArray, known: _Known) -> np.ndarray:
        """Hit index per row, matching each distinct value once per classifier, not once per batch."""
        if isinstance(column, pa.ChunkedArray):
            column = whole(column)
        if len(column) == 0:
            return np.zeros(0, dtype=np.int64)
        encoded = column.dictionary_encode()
        per_value = known.lookup(encoded.dictionary)
        if not len(per_value):  # every value null
            return np.full(len(column), -1, dtype=np.int64)
        codes = encoded.indices.to_numpy(zero_copy_only=False)  # floats when there are nulls
        if encoded.null_count:
            valid = encoded.is_valid().to_numpy(zero_copy_only=False)
            return np.where(valid, per_value[np.where(valid, codes, 0).astype(np.int64)], -1)
        result: np.ndarray = per_value[codes]
        return result

    def _per_host(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Hit index per row of a host column; only rows whose last bytes could belong to a suffix are looked at."""
        hosts = whole(column) if isinstance(column, pa.ChunkedArray) else column
        kept = self._tails.may_match(hosts)
        if kept is None:
            return self._per_value(hosts, self._hosts)
        result = np.full(len(hosts), -1, dtype=np.int64)
        rows = np.flatnonzero(kept)
        if len(rows):
            result[rows] = self._per_value(hosts.take(pa.array(rows)), self._hosts)
        return result

    def hit_indices(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Per row: the hit of its host name, else of its destination (or source) address, else -1."""
        names = batch.schema.names
        if "host" in names:
            result = self._per_host(batch.column(names.index("host")))
        else:
            result = np.full(batch.num_rows, -1, dtype=np.int64)
        for column in ("dst_ip", "src_ip"):
            values = batch.column(names.index(column)) if column in names else None
            if values is not None and values.null_count < len(values) and (result < 0).any():
                by_ip = self._per_value(values, self._addresses)
                result = np.where(result < 0, by_ip, result)
        return result

    def classify(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with app, scope, indicator, indicator_kind and confidence appended (null: no match)."""
        indices = self.hit_indices(batch)
        columns = list(batch.columns)
        names = list(batch.schema.names)
        for field, values in zip(CLASS_FIELDS, self._hit_columns(), strict=True):
            taken = values.take(pa.array(np.where(indices < 0, len(self.hits), indices)))
            columns.append(taken)
            names.append(field.name)
        return pa.RecordBatch.from_arrays(columns, schema=pa.schema(list(batch.schema) + CLASS_FIELDS))

    def _hit_columns(self) -> list[pa.Array]:
        # One extra null slot at the end stands for "no match".
        hits = self.hits
        return [
            pa.array([h.app for h in hits] + [None], pa.string()),
            pa.array([h.scope for h in hits] + [None], pa.string()),
            pa.array([h.indicator for h in hits] + [None], pa.string()),
            pa.array([h.kind for h in hits] + [None], pa.string()),
            pa.array([h.confidence for h in hits] + [None], pa.float32()),
        ]


def classify_matches(classifier: Classifier, table: pa.Table) -> pa.Table:
    """Only the rows of `table` that match, with the classification columns appended. The table's
    chunks are not combined: only the columns the matcher reads are, and the rest is filtered."""
    indices = classifier.hit_indices(table)
    keep = indices >= 0
    rows = table.filter(pa.array(keep))
    picked = pa.array(indices[keep])
    for field, values in zip(CLASS_FIELDS, classifier._hit_columns(), strict=True):
        rows = rows.append_column(field, values.take(picked))
    return rows
