"""Payment markers: how a covered payment service shows in payment records (data in markers.yaml).

A payment goes through a service when its payment-method type is one of the service's method values, a
name of the service or of its operator appears as a whole word in a name or text field, or one of its
institutions is the payer's or payee's agent. A method the markers know (a covered service's, a gateway's,
or another instrument's: a card, a bank debit) is authoritative: a name in the text of that record is then
set aside with a note, never a finding. A gateway (Alipay+) payment is the covered service's only when its
end wallet is that service's own; otherwise it is set aside too. A record of an attempt that did not complete
(its `outcome` says so: a refused authorisation) is never a finding; a marker on it is set aside. Purpose
codes say when a payment is wages or benefits. Every marker carries its source. Matching works per distinct
value of a column, never per row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from appban.rulebook.loader import Problem, Rulebook, RulebookError, parse_yaml

MARKERS_FILE = Path(__file__).with_name("markers.yaml")  # the packaged list; default_markers_path() is the one in force


def default_markers_path() -> Path:
    from appban.knowledge.layout import active_root

    return active_root().path("payments/markers.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Service(_Strict):
    subject: str  # the rulebook subject the service is
    name: str
    sources: list[HttpUrl] = Field(min_length=1)


class MethodMarker(_Strict):
    value: str
    service: str
    used_by: list[str] = Field(min_length=1)
    source: HttpUrl
    confidence: float = Field(gt=0, le=1)
    note: str | None = None
    uncertain: str | None = None


class NameMarker(_Strict):
    value: str
    service: str
    kind: Literal["wallet", "operator", "brand"]
    confidence: float = Field(gt=0, le=1)
    source: HttpUrl
    note: str | None = None
    uncertain: str | None = None


class OtherMethods(_Strict):
    """Method values that name an instrument other than a covered service."""

    values: list[str] = Field(min_length=1)
    kind: Literal["card", "bank_debit", "bank_transfer", "wallet"]
    used_by: list[str] = Field(min_length=1)
    source: HttpUrl
    note: str | None = None
    # What the method overrules: wallet names anywhere in the record ("all": a card payment to "WeChat Café"),
    # or only in its free text ("free_text": a credit transfer's scheme says how the money moved, while its
    # creditor, debtor and their banks say between whom; a transfer to a wallet's operator is still one).
    overrules: Literal["all", "free_text"] = "all"


class GatewayWallet(_Strict):
    value: str  # the gateway's identifier for the wallet ("ALIPAY_CN")
    names: list[str] = []
    service: str | None = None  # set only when the wallet is a covered service's own
    confidence: float = Field(default=0.9, gt=0, le=1)
    source: HttpUrl
    note: str | None = None


class Gateway(_Strict):
    name: str
    service: str
    methods: list[str] = Field(min_length=1)
    names: list[str] = Field(min_length=1)
    used_by: list[str] = Field(min_length=1)
    sources: list[HttpUrl] = Field(min_length=1)
    note: str | None = None
    wallets: list[GatewayWallet] = Field(min_length=1)


class InstitutionMarker(_Strict):
    value: str
    scheme: Literal["BIC", "CNAPS", "other"]
    service: str
    name: str
    source: HttpUrl
    confidence: float = Field(default=0.9, gt=0, le=1)
    note: str | None = None
    uncertain: str | None = None


class PurposeCode(_Strict):
    code: str
    fact: str
    meaning: str
    source: HttpUrl
    note: str | None = None


class MarkerSet(_Strict):
    services: dict[str, Service]
    methods: list[MethodMarker]
    names: list[NameMarker]
    institutions: list[InstitutionMarker] = []
    purposes: list[PurposeCode] = []
    other_methods: list[OtherMethods] = []
    gateways: dict[str, Gateway] = {}


def load_markers(path: Path | None = None, rulebook: Rulebook | None = None) -> MarkerSet:
    """The marker set, validated: every marker names a listed service, and with a rulebook, every service
    is one of its subjects. RulebookError (a ValueError) lists each problem with its file and line."""
    path = Path(path) if path is not None else default_markers_path()
    problems: list[Problem] = []
    markers, source = parse_yaml(path, MarkerSet, problems, str(path))
    if markers is not None:
        for section in ("methods", "names", "institutions"):
            for i, marker in enumerate(getattr(markers, section)):
                if marker.service not in markers.services:
                    problems.append(source.problem((section, i, "service"), f"unknown service {marker.service!r}"))
        for key, gateway in markers.gateways.items():
            services = [("service", gateway.service)] + [
                (("wallets", i, "service"), wallet.service)
                for i, wallet in enumerate(gateway.wallets)
                if wallet.service
            ]
            for where, name in services:
                if name not in markers.services:
                    loc = ("gateways", key, *(where if isinstance(where, tuple) else (where,)))
                    problems.append(source.problem(loc, f"unknown service {name!r}"))
        for key, service in markers.services.items():
            if rulebook is not None and service.subject not in rulebook.subjects.subjects:
                problems.append(source.problem(("services", key, "subject"), f"{service.subject!r} is not a "
                                               "rulebook subject"))  # fmt: skip
    if problems or markers is None:
        raise RulebookError(problems)
    return markers


def default_markers() -> MarkerSet:
    """The marker set in force: read again when the knowledge in force changes (an installed bundle, `rules
    use`, a file edited before a service reload), else the copy already read."""
    path = default_markers_path()
    try:
        info = path.stat()
    except OSError:
        return load_markers(path)  # reports the missing file as load_markers does
    return _markers_at(path, info.st_mtime_ns, info.st_size)


@cache
def _markers_at(path: Path, modified: int, size: int) -> MarkerSet:
    return load_markers(path)


@dataclass(frozen=True)
class Evidence:
    """One marker that can match: what it is, where it was found is added per row."""

    service: str
    kind: str  # "method", "name", "institution", "gateway" or "gateway_wallet"
    value: str
    confidence: float
    source: str
    gateway: str | None = None  # for "gateway" and "gateway_wallet": the gateway's key
    uncertain: str | None = None  # the marker's own doubt (markers.yaml `uncertain`), told wherever it was used


# Why a marker was set aside instead of flagging its row (the `aside` codes of Matches).
ASIDE_REASONS = ("", "method_says_otherwise", "gateway_other_wallet", "gateway_wallet_unknown", "not_completed")
METHOD_SAYS_OTHERWISE, GATEWAY_OTHER_WALLET, GATEWAY_WALLET_UNKNOWN, NOT_COMPLETED = 1, 2, 3, 4


@dataclass
class Matches:
    """Per row of a matched table."""

    best: np.ndarray  # index into `evidence` of the marker that flags the row, -1 for none
    where: np.ndarray  # index into field_names() of the field it was found in
    aside: np.ndarray  # an ASIDE_REASONS code for a marker that does not flag the row, 0 for none
    aside_marker: np.ndarray  # index into `evidence` of that marker
    aside_where: np.ndarray
    wallet: np.ndarray  # for gateway rows: index into the gateway's wallets of the end wallet named, -1 none


# Fields each marker kind looks at, in the order that breaks ties between equally sure markers.
METHOD_FIELDS = ("method",)
NAME_FIELDS = ("wallet", "processor", "merchant", "payee", "payer", "payee_agent", "payer_agent", "remittance")
AGENT_FIELDS = ("payee_agent", "payer_agent", "processor")
_CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff]")
# Confidence of a gateway's own method value, and of its name in text: sure it is the gateway, not of the wallet.
_GATEWAY_METHOD = 0.99
_GATEWAY_NAME = 0.9
_OTHER = -2  # a method value that names another instrument (a card, a bank debit)
_SCHEME = -3  # a transfer scheme's method value: it overrules wallet names in free text only
FREE_TEXT_FIELDS = ("remittance",)


def _name_pattern(name: str) -> str:
    """A whole-word, case-insensitive pattern: "WeChat Pay" also matches "WECHATPAY" and "wechat-pay"."""
    words = [re.escape(word) for word in name.split()]
    body = r"[\s_\-]*".join(words)
    return body if _CJK.search(name) else rf"(?<![^\W_]){body}(?![^\W_])"


class PaymentMatcher:
    """Finds, per row of a RECORD_SCHEMA table, the surest marker of a covered service, and the purpose facts."""

    def __init__(self, markers: MarkerSet):
        self.markers = markers
        self.evidence: list[Evidence] = []
        self._methods: dict[str, int] = {}
        # A numeric method code (QFPay's 800201) means a wallet only at the processors that use it.
        self._only_at: dict[int, str] = {}
        for method in markers.methods:
            index = self._add(method.service, "method", method.value, method.confidence, str(method.source),
                              uncertain=method.uncertain)  # fmt: skip
            self._methods.setdefault(method.value.lower(), index)
            if method.value.isdigit():
                self._only_at[index] = "(?i)" + "|".join(re.escape(name) for name in method.used_by)
        self._other_methods = {
            value.lower(): _SCHEME if group.overrules == "free_text" else _OTHER
            for group in markers.other_methods
            for value in group.values
        }
        self._names: list[tuple[re.Pattern[str], int]] = []
        all_names = [name.value for name in markers.names]
        for name in markers.names:
            index = self._add(name.service, "name", name.value, name.confidence, str(name.source),
                              uncertain=name.uncertain)  # fmt: skip
            self._names.append(
                (re.compile(_name_pattern(unicodedata.normalize("NFKC", name.value)), re.IGNORECASE), index)
            )
        self._wallets: dict[str, list[tuple[re.Pattern[str], int]]] = {}
        self._wallet_evidence: dict[tuple[str, int], int] = {}
        for key, gateway in markers.gateways.items():
            source = str(gateway.sources[0])
            for value in gateway.methods:
                index = self._add(gateway.service, "gateway", value, _GATEWAY_METHOD, source, key)
                self._methods.setdefault(value.lower(), index)
            for value in gateway.names:
                index = self._add(gateway.service, "gateway", value, _GATEWAY_NAME, source, key)
                self._names.append(
                    (re.compile(_name_pattern(unicodedata.normalize("NFKC", value)), re.IGNORECASE), index)
                )
                all_names.append(value)
            patterns = []
            for position, wallet in enumerate(gateway.wallets):
                for text in (wallet.value, *wallet.names):
                    patterns.append(
                        (re.compile(_name_pattern(unicodedata.normalize("NFKC", text)), re.IGNORECASE), position)
                    )
                if wallet.service is not None:
                    self._wallet_evidence[(key, position)] = self._add(
                        wallet.service, "gateway_wallet", f"{gateway.name} {wallet.value}", wallet.confidence,
                        str(wallet.source), key)  # fmt: skip
            self._wallets[key] = patterns
        # Python's `re` (for the word boundaries) runs only on the values one vectorised search keeps: any
        # name anywhere, whole word or not, and any value with a non-ASCII character (NFKC may change it).
        any_name = "|".join(r"[\s_\-]*".join(re.escape(word) for word in name.split()) for name in all_names)
        any_name += r"|[^\x00-\x7f]"
        self._institutions: dict[str, int] = {}
        for item in markers.institutions:
            key = _institution_key(item.value, item.scheme)
            self._institutions.setdefault(key, self._add(item.service, "institution", item.value, item.confidence,
                                                         str(item.source), uncertain=item.uncertain))  # fmt: skip
        self._purpose_codes = pa.array([p.code.upper() for p in markers.purposes], pa.string())
        self._purpose_facts = pa.array([p.fact for p in markers.purposes], pa.string())
        self.checks: list[tuple[str, Callable[[str], int], str | None]] = [
            (f, self._method_hit, None) for f in METHOD_FIELDS
        ]
        if self._institutions:
            self.checks += [(f, self._institution_hit, None) for f in AGENT_FIELDS]
        if self._names:
            self.checks += [(f, self._name_hit, f"(?i){any_name}") for f in NAME_FIELDS]

    def _add(
        self,
        service: str,
        kind: str,
        value: str,
        confidence: float,
        source: str,
        gateway: str | None = None,
        uncertain: str | None = None,
    ) -> int:
        self.evidence.append(Evidence(service, kind, value, confidence, source, gateway, uncertain))
        return len(self.evidence) - 1

    # --- per distinct value ---

    def _method_hit(self, value: str) -> int:
        return self._methods.get(value.strip().lower(), -1)

    def _method_or_other(self, value: str) -> int:
        """The method's evidence index; _OTHER for another instrument's method, -1 for an unknown one."""
        key = value.strip().lower()
        return self._methods.get(key, self._other_methods.get(key, -1))

    def _name_hit(self, value: str) -> int:
        return _longest(unicodedata.normalize("NFKC", value), self._names, self.evidence)

    def _institution_hit(self, value: str) -> int:
        text = value.strip().upper()
        return self._institutions.get(text[:8], self._institutions.get(text, -1))

    def _per_value(self, column: Any, hit: Any, prefilter: str | None = None) -> np.ndarray:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = column.dictionary_encode()
        dictionary = encoded.dictionary
        positions = np.arange(len(dictionary))
        if prefilter is not None and len(dictionary):
            keep = pc.match_substring_regex(dictionary, prefilter)
            positions = np.flatnonzero(np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool))
        per_value = np.full(len(dictionary) + 1, -1, dtype=np.int64)  # the extra slot stands for null
        values = dictionary.take(pa.array(positions, pa.int64())).to_pylist()
        for position, value in zip(positions.tolist(), values, strict=True):
            per_value[position] = hit(value)
        codes = encoded.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
        result: np.ndarray = per_value[codes]
        return result

    # --- per row ---

    def match(self, table: pa.Table) -> Matches:
        """Per row: the marker that flags it, and the one set aside (with why) when the record says otherwise."""
        rows = table.num_rows
        names = table.schema.names
        confidence = np.array([e.confidence for e in self.evidence] + [0.0])  # the last slot: no marker
        # The surest marker in the method field, and in the other fields, kept apart: a known method overrules text.
        method_best, method_where = np.full(rows, -1, dtype=np.int64), np.full(rows, -1, dtype=np.int64)
        party_best, party_where = np.full(rows, -1, dtype=np.int64), np.full(rows, -1, dtype=np.int64)
        free_best, free_where = np.full(rows, -1, dtype=np.int64), np.full(rows, -1, dtype=np.int64)
        known = np.zeros(rows, dtype=np.bool_)
        scheme = np.zeros(rows, dtype=np.bool_)
        for position, (field, hit, prefilter) in enumerate(self.checks):
            if field not in names or table.column(field).null_count == rows:
                continue
            if field in METHOD_FIELDS:
                found = self._per_value(table.column(field), self._method_or_other)
                known |= found == _OTHER
                scheme |= found == _SCHEME
                found = np.where(found < 0, -1, found)
                if self._only_at:
                    found = self._at_their_processors(found, table)
                known |= found >= 0
                best, where = method_best, method_where
            else:
                found = self._per_value(table.column(field), hit, prefilter)
                best, where = (free_best, free_where) if field in FREE_TEXT_FIELDS else (party_best, party_where)
            better = (found >= 0) & (confidence[found] > confidence[best])
            best[:] = np.where(better, found, best)
            where[:] = np.where(better, position, where)
        free_wins = confidence[free_best] > confidence[party_best]
        text_best = np.where(free_wins, free_best, party_best)
        text_where = np.where(free_wins, free_where, party_where)
        # What a stated method overrules: every name (a card, a bank debit), or free text only (a transfer scheme).
        overruled = np.where(known, text_best, np.where(scheme, free_best, -1))
        overruled_where = np.where(known, text_where, np.where(scheme, free_where, -1))
        usable = np.where(known, -1, np.where(scheme, party_best, text_best))
        usable_where = np.where(known, -1, np.where(scheme, party_where, text_where))
        take_text = confidence[usable] > confidence[method_best]
        best = np.where(take_text, usable, method_best)
        where = np.where(take_text, usable_where, method_where)
        aside = np.where((overruled >= 0) & (best < 0), METHOD_SAYS_OTHERWISE, 0)
        aside_marker = np.where(aside > 0, overruled, -1)
        aside_where = np.where(aside > 0, overruled_where, -1)
        wallet = np.full(rows, -1, dtype=np.int64)
        gateways = np.array([e.kind == "gateway" for e in self.evidence] + [False])[best]
        if gateways.any():
            best, wallet, aside, aside_marker, aside_where = self._through_gateways(
                table, gateways, best, where, aside, aside_marker, aside_where
            )
        if "outcome" in names and table.column("outcome").null_count < rows:
            # An attempt that did not complete (refused, cancelled, failed) moved no money: a covered service's
            # marker on it is reported apart, never decided.
            # That it did not complete comes first: a marker already set aside on it (a wallet named in the text of
            # a pending PayPal payment) is reported as not completed too.
            undone = np.asarray(table.column("outcome").is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
            moved = undone & (best >= 0)
            aside = np.where(undone & ((best >= 0) | (aside > 0)), NOT_COMPLETED, aside)
            aside_marker = np.where(moved, best, aside_marker)
            aside_where = np.where(moved, where, aside_where)
            best = np.where(undone, -1, best)
        return Matches(best, where, aside, aside_marker, aside_where, wallet)

    def _through_gateways(
        self,
        table: pa.Table,
        rows: np.ndarray,
        best: np.ndarray,
        where: np.ndarray,
        aside: np.ndarray,
        aside_marker: np.ndarray,
        aside_where: np.ndarray,
    ) -> tuple[np.ndarray, ...]:
        """Gateway rows: flagged for the end wallet's service when it has one, else set aside with why."""
        wallet = np.full(len(best), -1, dtype=np.int64)
        names = table.schema.names
        for key, patterns in self._wallets.items():
            mine = rows & np.array([e.gateway == key for e in self.evidence] + [False])[best]
            if not mine.any():
                continue
            # The wallet field first, then any other text: the first field naming an end wallet decides. Only
            # the gateway's own rows are searched: a description column may hold a distinct text per row.
            positions = pa.array(np.flatnonzero(mine))
            for field in NAME_FIELDS:
                if field not in names:
                    continue
                values = table.column(field).take(positions)
                if values.null_count == len(values):
                    continue
                found = np.full(len(best), -1, dtype=np.int64)
                found[np.flatnonzero(mine)] = self._per_value(values, lambda value, p=patterns: _first_wallet(value, p))
                wallet = np.where(mine & (wallet < 0), found, wallet)
            for position in range(len(self.markers.gateways[key].wallets)):
                named = mine & (wallet == position)
                covered = self._wallet_evidence.get((key, position))
                if covered is not None:
                    best = np.where(named, covered, best)
                else:
                    aside = np.where(named, GATEWAY_OTHER_WALLET, aside)
            unknown = mine & (wallet < 0)
            aside = np.where(unknown, GATEWAY_WALLET_UNKNOWN, aside)
            moved = mine & (np.array([e.kind for e in self.evidence] + [""])[best] == "gateway")
            aside_marker = np.where(moved, best, aside_marker)
            aside_where = np.where(moved, where, aside_where)
            best = np.where(moved, -1, best)
        return best, wallet, aside, aside_marker, aside_where

    def _at_their_processors(self, found: np.ndarray, table: pa.Table) -> np.ndarray:
        """`found` without the numeric method codes of rows whose processor is not one that uses them."""
        processor = table.column("processor") if "processor" in table.schema.names else None
        for index, names in self._only_at.items():
            rows = found == index
            if rows.any():
                named = np.zeros(len(found), dtype=np.bool_) if processor is None else np.asarray(
                    pc.fill_null(pc.match_substring_regex(processor, names), False).to_numpy(zero_copy_only=False),
                    dtype=np.bool_,
                )  # fmt: skip
                found = np.where(rows & ~named, -1, found)
        return found

    def doubts(self, used: set[int]) -> list[str]:
        """The doubts the markers in `used` (evidence indices) carry, one line each: "alipay_hk (Alipay): ..."."""
        services = self.markers.services
        return [f"{e.value} ({services[e.service].name}): {e.uncertain}"
                for index in sorted(used) if (e := self.evidence[index]).uncertain]  # fmt: skip

    def field_names(self) -> list[str]:
        """The field each `where` index of `match` names."""
        return [field for field, _, _ in self.checks]

    def wallet_names(self, gateway: str) -> list[str]:
        """The end wallets of `gateway`, in the order `Matches.wallet` counts them."""
        return [wallet.value for wallet in self.markers.gateways[gateway].wallets]

    def purpose_facts(self, purposes: Any) -> Any:
        """Per row, the fact its purpose code shows ("wages_or_benefits"), or null."""
        codes = pc.utf8_upper(pc.utf8_trim_whitespace(purposes))
        return self._purpose_facts.take(pc.index_in(codes, value_set=self._purpose_codes))


def _longest(text: str, patterns: list[tuple[re.Pattern[str], int]], evidence: list[Evidence]) -> int:
    """The surest of the names found in `text`; a name inside a longer one that also matched ("Alipay" in
    "Alipay+") is not evidence of its own."""
    found = []
    for pattern, index in patterns:
        hit = pattern.search(text)
        if hit:
            found.append((hit.start(), hit.end(), index))
    longest = [(s, e, i) for s, e, i in found if not any(s2 <= s and e <= e2 and e2 - s2 > e - s
                                                         for s2, e2, _ in found)]  # fmt: skip
    return max(longest, key=lambda hit: evidence[hit[2]].confidence, default=(0, 0, -1))[2]


def _first_wallet(value: str, patterns: list[tuple[re.Pattern[str], int]]) -> int:
    """The end wallet named earliest in `value`, -1 for none."""
    text = unicodedata.normalize("NFKC", value)
    hits = [(hit.start(), position) for pattern, position in patterns if (hit := pattern.search(text))]
    return min(hits, default=(0, -1))[1]


def _institution_key(value: str, scheme: str) -> str:
    text = value.strip().upper()
    return text[:8] if scheme == "BIC" else text
