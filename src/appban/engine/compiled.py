"""The law compiled for decide_table(): every question's answer in every epoch, as small integer tables.

The law for one question (app, category, place class, facts) is piecewise constant in time: it can only
change at the instants the rulebook names for that app (`Law.instants_for`). The union of those instants over
every app cuts time into epochs, the same for every question, so a row's epoch is one binary search in a
short sorted array (a few dozen instants, held in cache) and its answer is one lookup in a table of
(question, epoch) -> answer id. Each question is compiled once per rulebook by calling the engine at one
instant of each of its own segments (`outcome()`, the answer without its explanation), so the tables agree
with the scalar form by construction.

Answers are interned: an answer id stands for (verdict, as written, enforcement, rule ids), and the column
builders gather those per answer id. One lock guards the tables: a server decides tables on several threads,
and a lookup hands back a snapshot that stays valid while the tables grow or are started again.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import cast

import numpy as np
import pyarrow as pa

from appban.engine.decide import covering_rules, evaluate, outcome
from appban.engine.law import Law, resolve
from appban.rulebook.loader import Rulebook
from appban.vocabulary import Category, Enforcement, Verdict

VERDICTS = list(Verdict)
ENFORCEMENTS = list(Enforcement)
CATEGORIES = list(Category)
# Cells (question x epoch) kept between calls, at 4 bytes each: a long-lived server meets ever new questions,
# so the tables start again when they would grow past this rather than grow without bound.
_MAX_CELLS = 1 << 22
_UNKNOWN = -1  # a `later` row not worked out yet


@dataclass(frozen=True)
class Snapshot:
    """What one decide_table() call needs, read under the lock: arrays are only ever appended to or replaced,
    so these stay as they were for the call's lifetime."""

    epochs: np.ndarray  # int64 seconds, sorted and distinct: epoch e is [epochs[e-1], epochs[e])
    rows: np.ndarray  # per question of the call, its row in `answers`
    answers: np.ndarray  # (rows, len(epochs) + 1) int32 answer ids
    verdict: np.ndarray  # per answer id, int8 index into VERDICTS
    as_written: np.ndarray
    enforcement: np.ndarray  # int8 index into ENFORCEMENTS
    rules: np.ndarray  # per answer id, index into rule_lists
    rule_lists: pa.Array  # list<string>, the distinct rule trails
    later: np.ndarray | None  # (rows, epochs + 1) int32 index into later_lists, when asked for
    later_lists: pa.Array | None


@dataclass(frozen=True)
class _Subject:
    instants: list[dt.datetime]
    segment_of_epoch: np.ndarray  # per epoch, the index of this app's own segment it falls in


class CompiledLaw:
    def __init__(self, law: Law):
        self.law = law
        places: list[str] = []
        for rule in law.rules:
            places.extend(rule.prohibition.places + rule.prohibition.not_places)
        for applied, _ in law.exceptions:
            places.extend(applied.item.places + applied.item.not_places)  # type: ignore[union-attr]
        self.places_used = sorted(set(places))
        seconds = {int(t.timestamp()) for subject in law.rulebook.subjects.subjects for t in law.instants_for(subject)}
        self.epochs = np.array(sorted(seconds), dtype=np.int64)
        self._lock = threading.Lock()
        self._subjects: dict[str, _Subject] = {}
        self._subject_names = sorted(law.rulebook.subjects.subjects)
        self._subject_ids = {name: index for index, name in enumerate(self._subject_names)}
        # Interned inputs: place codes by the named places they fall in (US-CA and US-TX alike), fact sets by
        # their JSON text. Both are bounded by the rulebook (valid codes, the facts it names).
        self._class_of_place: dict[str, int] = {}
        self._classes: dict[tuple[bool, ...], int] = {}
        self._place_of_class: list[str] = []  # a code standing for each class, to evaluate with
        self._facts: dict[str, int] = {}
        self._facts_texts: list[str] = []
        self._start_again()

    def _start_again(self) -> None:
        width = len(self.epochs) + 1
        self._questions: list[int] = []  # per row, its packed question
        self._packed_rows = np.zeros(16, dtype=np.int64)
        self._sorted: tuple[np.ndarray, np.ndarray] = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self._answers = np.zeros((16, width), dtype=np.int32)
        self._later = np.full((16, width), _UNKNOWN, dtype=np.int32)
        self._answer_ids: dict[tuple[int, int, int, tuple[str, ...]], int] = {}
        self._answer_codes: list[tuple[int, int, int, int]] = []
        self._rule_sets: dict[tuple[str, ...], int] = {}
        self._later_sets: dict[tuple[str, ...], int] = {}
        self._columns: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pa.Array] | None = None

    def place_class(self, code: str) -> int:
        """Codes that fall in the same named places are decided alike: one id per such class."""
        found = self._class_of_place.get(code)
        if found is None:
            with self._lock:
                key = tuple(self.law.rulebook.place_matches(code, place) for place in self.places_used)
                found = self._classes.setdefault(key, len(self._classes))
                if found == len(self._place_of_class):
                    self._place_of_class.append(code)
                self._class_of_place[code] = found
        return found

    def facts_id(self, text: str) -> int:
        """An id for one set of facts, given as JSON with sorted keys."""
        found = self._facts.get(text)
        if found is None:
            with self._lock:
                found = self._facts.setdefault(text, len(self._facts))
                if found == len(self._facts_texts):
                    self._facts_texts.append(text)
        return found

    def subject_id(self, subject: str) -> int:
        return self._subject_ids[subject]

    def lookup(
        self, subjects: np.ndarray, categories: np.ndarray, classes: np.ndarray, facts: np.ndarray, *, later: bool
    ) -> Snapshot:
        """The tables for the call's distinct questions, given per question as arrays of ids (subject id,
        category index, place class id, facts id), compiling those met for the first time."""
        # One int64 per question, found among those compiled by a binary search: no Python work per question
        # once the law is warm.
        packed = ((subjects * len(CATEGORIES) + categories) << 40) | (classes << 20) | facts
        with self._lock:
            width = len(self.epochs) + 1
            rows, known = self._find(packed)
            if not known.all():
                missing = np.unique(packed[~known])
                if (len(self._questions) + len(missing)) * width > _MAX_CELLS and self._questions:
                    self._start_again()
                    missing = np.unique(packed)
                for question in missing.tolist():
                    self._compile(question)
                order = np.argsort(self._packed_rows[: len(self._questions)])
                self._sorted = (self._packed_rows[order], order)
                rows, _ = self._find(packed)
            later_table = later_lists = None
            if later:
                for row in np.unique(rows[self._later[rows, 0] == _UNKNOWN]).tolist():
                    self._work_out_later(row)
                later_table = self._later
                later_lists = _lists(self._later_sets)
            verdict, as_written, enforcement, rules, rule_lists = self._answer_columns()
            return Snapshot(
                self.epochs, rows, self._answers, verdict, as_written, enforcement, rules, rule_lists,
                later_table, later_lists,
            )  # fmt: skip

    def _find(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each packed question's row, and whether it has one."""
        keys, rows = self._sorted
        if not len(keys):
            return np.zeros(len(packed), dtype=np.int64), np.zeros(len(packed), dtype=bool)
        at = np.minimum(np.searchsorted(keys, packed), len(keys) - 1)
        return rows[at], keys[at] == packed

    def _subject(self, subject: str) -> _Subject:
        found = self._subjects.get(subject)
        if found is None:
            instants = self.law.instants_for(subject)
            own = np.array([int(t.timestamp()) for t in instants], dtype=np.int64)
            # Every app's instants are among the epochs' bounds, so the instants of its own at or before an
            # epoch's first second are those at or before the previous bound.
            segment = np.concatenate(([0], np.searchsorted(own, self.epochs, side="right")))
            found = self._subjects[subject] = _Subject(instants, segment)
        return found

    def _probes(self, subject: _Subject) -> list[dt.datetime]:
        """An instant inside each of the app's own segments."""
        instants = subject.instants
        first = instants[0] - dt.timedelta(seconds=1) if instants else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        return [first, *instants]

    def _unpack(self, question: int) -> tuple[str, int, int, int]:
        high, place, facts = question >> 40, (question >> 20) & 0xFFFFF, question & 0xFFFFF
        return self._subject_names[high // len(CATEGORIES)], high % len(CATEGORIES), place, facts

    def _compile(self, question: int) -> None:
        name, category, place, facts = self._unpack(question)
        subject = self._subject(name)
        where, given = self._place_of_class[place], json.loads(self._facts_texts[facts])
        # Only the answer is kept, not its explanation: outcome() gives evaluate()'s verdict, as written,
        # enforcement and rule ids from the rules that cover the category and place.
        covering = covering_rules(self.law, name, CATEGORIES[category], where, given)
        ids = []
        for t in self._probes(subject):
            answer = outcome(self.law, covering, name, CATEGORIES[category], where, t, given, known=t)
            ids.append(self._answer_id(answer.verdict, answer.as_written, answer.enforcement, answer.rule_ids))
        row = len(self._questions)
        if row == len(self._answers):
            self._answers = np.concatenate((self._answers, np.zeros_like(self._answers)))
            self._later = np.concatenate((self._later, np.full_like(self._later, _UNKNOWN)))
            self._packed_rows = np.concatenate((self._packed_rows, np.zeros_like(self._packed_rows)))
        self._answers[row] = np.array(ids, dtype=np.int32)[subject.segment_of_epoch]
        self._packed_rows[row] = question
        self._questions.append(question)

    def _work_out_later(self, row: int) -> None:
        """Per segment, the instruments made after its instants that would change its answer: every
        instrument's instant of making is a breakpoint, so they are the same throughout a segment."""
        name, category, place, facts = self._unpack(self._questions[row])
        subject = self._subject(name)
        where, given = self._place_of_class[place], json.loads(self._facts_texts[facts])
        ids = []
        for t in self._probes(subject):
            coming = evaluate(self.law, name, CATEGORIES[category], where, t, given).later
            ids.append(self._later_sets.setdefault(tuple(c.instrument for c in coming), len(self._later_sets)))
        self._later[row] = np.array(ids, dtype=np.int32)[subject.segment_of_epoch]

    def _answer_id(
        self, verdict: Verdict, as_written: Verdict, enforcement: Enforcement, rules: tuple[str, ...]
    ) -> int:
        key = (VERDICTS.index(verdict), VERDICTS.index(as_written), ENFORCEMENTS.index(enforcement), rules)
        found = self._answer_ids.get(key)
        if found is None:
            found = self._answer_ids[key] = len(self._answer_ids)
            rule_set = self._rule_sets.setdefault(rules, len(self._rule_sets))
            self._answer_codes.append((*key[:3], rule_set))
            self._columns = None
        return found

    def _answer_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pa.Array]:
        if self._columns is None:
            codes = np.array(self._answer_codes, dtype=np.int64).reshape(-1, 4)
            self._columns = (
                codes[:, 0].astype(np.int8),
                codes[:, 1].astype(np.int8),
                codes[:, 2].astype(np.int8),
                codes[:, 3],
                _lists(self._rule_sets),
            )
        return self._columns


def _lists(interned: dict[tuple[str, ...], int]) -> pa.Array:
    """The interned id lists as one list<string> array, in id order (dicts keep insertion order)."""
    return pa.array([list(ids) for ids in interned], type=pa.list_(pa.string()))


def compiled(rulebook: Rulebook) -> CompiledLaw:
    found = rulebook.derived.get("compiled")
    if found is None:
        found = rulebook.derived["compiled"] = CompiledLaw(resolve(rulebook))
    return cast(CompiledLaw, found)
