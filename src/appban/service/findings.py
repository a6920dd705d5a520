"""A run's findings filtered and sorted over all of them, a page at a time, and downloaded whole (CSV, JSON).

Findings are stored as they were produced (numbered 0, 1, 2... within a run). A view (a filter and an order)
is worked out once: every finding is read in chunks, tested, and the numbers of those that match are kept in
order. Later pages of the same view read only their own rows. Views are remembered per run and per count of
findings, so a run that is still adding findings gets a fresh view, and a few of them are kept (least
recently used first out).

Findings differ by screen: inventory and payment findings carry a `verdict`, code findings one per category
under `decisions`; the app is `app` (inventory, code, network) or `subject`/`service` (payments).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from appban.store import AuditStore
from appban.vocabulary import Verdict

Order = Literal["asc", "desc"]
MAX_QUERY_CHARS = 200
MAX_VALUES = 20  # values of one filter (comma-separated)
_READ_CHUNK = 2000  # findings read from the store at a time while a view is worked out
_SEND_CHUNK = 500  # findings read and sent at a time in a download
_VIEWS_KEPT = 16
_KEY_CHARS = 200  # text beyond this plays no part in an order
_FIELD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_VERDICTS = tuple(v.value for v in Verdict)
# A spreadsheet runs a cell that starts like a formula; findings hold text from uploaded files.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class FindingsQueryError(ValueError):
    """A query parameter of a findings view that cannot be used; the message starts with its name."""


@dataclass(frozen=True)
class FindingsQuery:
    verdicts: frozenset[str] = frozenset()
    apps: frozenset[str] = frozenset()  # casefolded
    text: str = ""  # casefolded
    sort: str | None = None
    order: Order = "asc"

    @classmethod
    def parse(
        cls, verdict: str | None, app: str | None, q: str | None, sort: str | None, order: Order
    ) -> FindingsQuery:
        verdicts = _values("verdict", verdict)
        unknown = sorted(verdicts - set(_VERDICTS))
        if unknown:
            raise FindingsQueryError(f"verdict: unknown verdict {unknown[0][:64]!r} (verdicts: {', '.join(_VERDICTS)})")
        text = (q or "").strip()
        if len(text) > MAX_QUERY_CHARS or not text.isprintable():
            raise FindingsQueryError(f"q: not printable text of at most {MAX_QUERY_CHARS} characters")
        if sort is not None and not (0 < len(sort) <= 64 and set(sort) <= _FIELD_CHARS):
            raise FindingsQueryError("sort: a field name (letters, digits, '_', '.', '-'; at most 64 characters)")
        apps = frozenset(name.casefold() for name in _values("app", app))
        return cls(frozenset(verdicts), apps, text.casefold(), sort, order)

    def filters(self) -> bool:
        return bool(self.verdicts or self.apps or self.text)

    def matches(self, finding: dict[str, Any]) -> bool:
        if self.verdicts and not (self.verdicts & verdicts_of(finding)):
            return False
        if self.apps and not (self.apps & apps_of(finding)):
            return False
        return not self.text or self.text in _haystack(finding)


def _values(name: str, text: str | None) -> set[str]:
    values = {part.strip() for part in (text or "").split(",") if part.strip()}
    if len(values) > MAX_VALUES or any(len(v) > MAX_QUERY_CHARS or not v.isprintable() for v in values):
        raise FindingsQueryError(
            f"{name}: at most {MAX_VALUES} values separated by commas, each printable and at most"
            f" {MAX_QUERY_CHARS} characters"
        )
    return values


def verdicts_of(finding: dict[str, Any]) -> set[str]:
    """The finding's verdict, or for a code finding the verdict of each category it was decided for."""
    found = {finding["verdict"]} if isinstance(finding.get("verdict"), str) else set()
    decisions = finding.get("decisions")
    if isinstance(decisions, dict):
        found.update(
            d["verdict"] for d in decisions.values() if isinstance(d, dict) and isinstance(d.get("verdict"), str)
        )
    return found


def apps_of(finding: dict[str, Any]) -> set[str]:
    """The app a finding concerns, by id and by name, casefolded."""
    names = (finding.get(field) for field in ("app", "app_name", "subject", "service"))
    return {name.casefold() for name in names if isinstance(name, str)}


def _haystack(finding: dict[str, Any]) -> str:
    return "\x1f".join(_cell(value) for value in finding.values()).casefold()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _plain_number(text: str) -> bool:
    """Digits with an optional leading minus and one decimal point between digits: how amounts are kept."""
    whole, point, fraction = text.removeprefix("-").partition(".")
    return whole.isascii() and whole.isdigit() and (not point or (fraction.isascii() and fraction.isdigit()))


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers (and text that is a plain number, as amounts are kept) before text; text without case."""
    if isinstance(value, bool):
        return (1, 0.0, "true" if value else "false")
    if isinstance(value, int | float):
        return (0, float(value), "")
    text = _cell(value)[:_KEY_CHARS]
    if _plain_number(text):
        return (0, float(text), "")
    return (1, 0.0, text.casefold())


@dataclass(frozen=True)
class FindingsView:
    """The numbers of a run's findings that match a query, in the query's order."""

    seqs: Sequence[int]
    columns: list[str]  # every field of the run's findings, in the order they first appear
    total: int  # the run's findings when the view was worked out


class FindingsViews:
    """Views of runs' findings, worked out on demand and a few kept."""

    def __init__(self, store: AuditStore, kept: int = _VIEWS_KEPT) -> None:
        self.store = store
        self.kept = kept
        self._views: OrderedDict[tuple[str, int, FindingsQuery], FindingsView] = OrderedDict()
        self._lock = threading.Lock()

    def view(self, run_id: str, total: int, query: FindingsQuery) -> FindingsView:
        key = (run_id, total, query)
        with self._lock:
            found = self._views.get(key)
            if found is not None:
                self._views.move_to_end(key)
                return found
        made = self._work_out(run_id, total, query)
        with self._lock:
            self._views[key] = made
            while len(self._views) > self.kept:
                self._views.popitem(last=False)
        return made

    def _work_out(self, run_id: str, total: int, query: FindingsQuery) -> FindingsView:
        columns: dict[str, None] = {}
        matched: list[int] = []
        keyed: list[tuple[tuple[int, float, str], int]] = []
        blank: list[int] = []  # no value in the sorted field: last, whichever the order
        if not query.filters() and query.sort is None:
            # Every finding in the run's order: nothing to read but the fields. A screen's findings are rows of
            # one table (or one record type), so the first chunk has them all.
            for finding in self.store.findings(run_id, offset=0, limit=min(_READ_CHUNK, total)):
                columns.update(dict.fromkeys(finding))
            return FindingsView(range(total), list(columns), total)
        for start in range(0, total, _READ_CHUNK):
            chunk = self.store.findings(run_id, offset=start, limit=min(_READ_CHUNK, total - start))
            for seq, finding in enumerate(chunk, start):
                columns.update(dict.fromkeys(finding))
                if query.filters() and not query.matches(finding):
                    continue
                if query.sort is None:
                    matched.append(seq)
                elif finding.get(query.sort) is None:
                    blank.append(seq)
                else:
                    keyed.append((_sort_key(finding[query.sort]), seq))
        if query.sort is not None:
            if total and query.sort not in columns:
                shown = ", ".join(list(columns)[:40])
                raise FindingsQueryError(f"sort: no field {query.sort!r} in this run's findings (fields: {shown})")
            keyed.sort(key=lambda pair: pair[0], reverse=query.order == "desc")  # stable: ties stay in order
            matched = [seq for _, seq in keyed] + blank
        return FindingsView(matched, list(columns), total)

    def rows(self, run_id: str, seqs: Sequence[int]) -> list[dict[str, Any]]:
        """The findings numbered `seqs`, in that order."""
        if isinstance(seqs, range) and seqs.step == 1:
            return self.store.findings(run_id, offset=seqs.start, limit=len(seqs)) if seqs else []
        found = self.store.findings_at(run_id, seqs)
        return [found[seq] for seq in seqs if seq in found]

    def each(self, run_id: str, view: FindingsView) -> Iterator[dict[str, Any]]:
        for start in range(0, len(view.seqs), _SEND_CHUNK):
            yield from self.rows(run_id, view.seqs[start : start + _SEND_CHUNK])


def csv_chunks(rows: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[bytes]:
    """CSV with a header of `columns`, a block of rows at a time. Nested values are JSON; text that a
    spreadsheet would run as a formula gets a leading apostrophe (plain numbers such as -12.50 are left)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        writer.writerow([_csv_cell(row.get(name)) for name in columns])
        if count % _SEND_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _csv_cell(value: Any) -> str:
    text = _cell(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START) and not _plain_number(text):
        return "'" + text
    return text


def json_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """One JSON array, a block of rows at a time."""
    parts: list[str] = ["["]
    first = True
    for row in rows:
        parts.append(("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False))
        first = False
        if len(parts) >= _SEND_CHUNK:
            yield "".join(parts).encode()
            parts = []
    parts.append("\n]\n" if not first else "]\n")
    yield "".join(parts).encode()
