"""Payment markers: how a covered payment service shows in payment records (data in markers.yaml).

A payment goes through a service when its payment-method type is one of the service's method values, a
name of the service or of its operator appears as a whole word in a name or text field, or one of its
institutions is the payer's or payee's agent. Purpose codes say when a payment is wages or benefits.
Every marker carries its source. Matching works per distinct value of a column, never per row.
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

MARKERS_FILE = Path(__file__).with_name("markers.yaml")


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


def load_markers(path: Path = MARKERS_FILE, rulebook: Rulebook | None = None) -> MarkerSet:
    """The marker set, validated: every marker names a listed service, and with a rulebook, every service
    is one of its subjects. RulebookError (a ValueError) lists each problem with its file and line."""
    problems: list[Problem] = []
    markers, source = parse_yaml(Path(path), MarkerSet, problems, str(path))
    if markers is not None:
        for section in ("methods", "names", "institutions"):
            for i, marker in enumerate(getattr(markers, section)):
                if marker.service not in markers.services:
                    problems.append(source.problem((section, i, "service"), f"unknown service {marker.service!r}"))
        for key, service in markers.services.items():
            if rulebook is not None and service.subject not in rulebook.subjects.subjects:
                problems.append(source.problem(("services", key, "subject"), f"{service.subject!r} is not a "
                                               "rulebook subject"))  # fmt: skip
    if problems or markers is None:
        raise RulebookError(problems)
    return markers


@cache
def default_markers() -> MarkerSet:
    return load_markers()


@dataclass(frozen=True)
class Evidence:
    """One marker that can match: what it is, where it was found is added per row."""

    service: str
    kind: str  # "method", "name" or "institution"
    value: str
    confidence: float
    source: str


# Fields each marker kind looks at, in the order that breaks ties between equally sure markers.
METHOD_FIELDS = ("method",)
NAME_FIELDS = ("wallet", "processor", "merchant", "payee", "payer", "payee_agent", "payer_agent", "remittance")
AGENT_FIELDS = ("payee_agent", "payer_agent", "processor")
_CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff]")


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
            index = self._add(method.service, "method", method.value, method.confidence, str(method.source))
            self._methods.setdefault(method.value.lower(), index)
            if method.value.isdigit():
                self._only_at[index] = "(?i)" + "|".join(re.escape(name) for name in method.used_by)
        self._names: list[tuple[re.Pattern[str], int]] = []
        for name in markers.names:
            index = self._add(name.service, "name", name.value, name.confidence, str(name.source))
            pattern = _name_pattern(unicodedata.normalize("NFKC", name.value))
            self._names.append((re.compile(pattern, re.IGNORECASE), index))
        # Python's `re` (for the word boundaries) runs only on the values one vectorised search keeps: any
        # name anywhere, whole word or not, and any value with a non-ASCII character (NFKC may change it).
        any_name = "|".join(r"[\s_\-]*".join(re.escape(word) for word in n.value.split()) for n in markers.names)
        any_name += r"|[^\x00-\x7f]"
        self._institutions: dict[str, int] = {}
        for item in markers.institutions:
            key = _institution_key(item.value, item.scheme)
            self._institutions.setdefault(key, self._add(item.service, "institution", item.value, item.confidence,
                                                         str(item.source)))  # fmt: skip
        self._purpose_codes = pa.array([p.code.upper() for p in markers.purposes], pa.string())
        self._purpose_facts = pa.array([p.fact for p in markers.purposes], pa.string())
        self.checks: list[tuple[str, Callable[[str], int], str | None]] = [
            (f, self._method_hit, None) for f in METHOD_FIELDS
        ]
        if self._institutions:
            self.checks += [(f, self._institution_hit, None) for f in AGENT_FIELDS]
        if self._names:
            self.checks += [(f, self._name_hit, f"(?i){any_name}") for f in NAME_FIELDS]

    def _add(self, service: str, kind: str, value: str, confidence: float, source: str) -> int:
        self.evidence.append(Evidence(service, kind, value, confidence, source))
        return len(self.evidence) - 1

    # --- per distinct value ---

    def _method_hit(self, value: str) -> int:
        return self._methods.get(value.strip().lower(), -1)

    def _name_hit(self, value: str) -> int:
        text = unicodedata.normalize("NFKC", value)
        found = []
        for pattern, index in self._names:
            hit = pattern.search(text)
            if hit:
                found.append((hit.start(), hit.end(), index))
        # A name inside a longer one that also matched is not evidence of its own: "Alipay" in "Alipay+".
        longest = [(s, e, i) for s, e, i in found if not any(s2 <= s and e <= e2 and e2 - s2 > e - s
                                                             for s2, e2, _ in found)]  # fmt: skip
        return max(longest, key=lambda hit: self.evidence[hit[2]].confidence, default=(0, 0, -1))[2]

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

    def match(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the index into `evidence` of the surest marker (-1: none), and the field it was found in."""
        rows = table.num_rows
        best = np.full(rows, -1, dtype=np.int64)
        where = np.full(rows, -1, dtype=np.int64)
        confidence = np.array([e.confidence for e in self.evidence] + [0.0])  # the last slot: no marker
        names = table.schema.names
        for position, (field, hit, prefilter) in enumerate(self.checks):
            if field not in names or table.column(field).null_count == rows:
                continue
            found = self._per_value(table.column(field), hit, prefilter)
            if field == "method" and self._only_at:
                found = self._at_their_processors(found, table)
            better = (found >= 0) & (confidence[found] > confidence[best])
            best = np.where(better, found, best)
            where = np.where(better, position, where)
        return best, where

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

    def field_names(self) -> list[str]:
        """The field each `where` index of `match` names."""
        return [field for field, _, _ in self.checks]

    def purpose_facts(self, purposes: Any) -> Any:
        """Per row, the fact its purpose code shows ("wages_or_benefits"), or null."""
        codes = pc.utf8_upper(pc.utf8_trim_whitespace(purposes))
        return self._purpose_facts.take(pc.index_in(codes, value_set=self._purpose_codes))


def _institution_key(value: str, scheme: str) -> str:
    text = value.strip().upper()
    return text[:8] if scheme == "BIC" else text
