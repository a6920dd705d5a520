"""What a change of knowledge would do to the answers already given: every recorded decision and finding in
the audit store decided again under another rulebook (B), and those whose answer would change, grouped by
app, category and change, with counts and a few examples each.

The store is read in pages (keyset paging, each page its own short read), and each page is decided with the
engine's table path, so the memory held is one page of questions, the groups (apps x categories x changes)
and a few examples each, however many records the store holds. A recorded batch's tables are one record:
they are read whole (as they were recorded, within the service's cap) and decided a page at a time.

Before a recorded answer is compared with B's, its question as kept is decided again under the rulebook it
was recorded under (the store's snapshot). Where that does not give the recorded answer back (a fact the
record did not keep, such as an inventory row's ownership column), the record is counted apart as not
re-decided rather than reported as a change B would make.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import and_, or_, select

from appban.engine.batch import TableInputError, decide_table
from appban.engine.decide import DecisionInputError, resolve_category, resolve_subject
from appban.rulebook.loader import Rulebook
from appban.store.audit import FINDINGS, RUNS, AuditStore, DecisionRecord, _stamp
from appban.store.snapshots import SnapshotError

ANSWER = ("verdict", "as_written", "enforcement")
DEFAULT_PAGE = 1000
DEFAULT_EXAMPLES = 3
MAX_EXAMPLES = 100
_QUESTION = ("app", "transaction", "where", "at")
_MAX_REASONS = 50  # distinct reasons kept by name; the rest are counted under one
_OTHER_REASON = "other reasons"
_MAX_SUBJECTS = 10_000  # app names remembered with their subject
# Why a record was not compared with B's answer.
NO_QUESTION = "no question recorded (needs app, transaction, where, at)"
NO_ANSWER = "recorded without an answer (verdict, as_written, enforcement)"
NO_BATCH_TABLES = "a batch whose question and answer tables are missing"
NOT_REPRODUCED = (
    "the question as recorded does not give the recorded answer under its own rulebook "
    "(the record did not keep everything that was decided on)"
)
SCREEN_RECORD = "a screening run's record: no question of its own (its findings are re-decided)"


class ImpactError(ValueError):
    """Knowledge that cannot be used as B (an unreadable rulebook, a bundle that does not open)."""


@dataclass
class Question:
    """One recorded answer to decide again: where it is (`id`, `kind`), what was asked, what was answered."""

    id: str
    kind: str  # decision, batch row, finding
    version: str  # the rulebook version it was answered under
    app: str
    transaction: str
    where: str
    at: str
    facts: str | None
    tz: str | None
    recorded: tuple[str, str, str]


@dataclass
class Group:
    """The records of one app and category whose answer changes the same way."""

    app: str
    category: str
    change: dict[str, tuple[str, str]]  # field -> (recorded, under B), for the fields of ANSWER that differ
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict_change(self) -> str:
        before, after = self.change.get("verdict", (None, None))
        return f"{before} → {after}" if before is not None else "verdict unchanged"

    def describe(self) -> str:
        return "; ".join(f"{name}: {before} → {after}" for name, (before, after) in self.change.items())

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "category": self.category,
            "change": {name: {"recorded": before, "under_b": after} for name, (before, after) in self.change.items()},
            "count": self.count,
            "examples": self.examples,
        }


@dataclass
class ImpactReport:
    """Every recorded answer decided again under B: the counts, the groups of changes, and what was set aside."""

    rulebook_version: str
    knowledge: str
    since: str | None
    until: str | None
    page_size: int
    records: Counter[str] = field(default_factory=Counter)  # decisions, findings read
    answers: int = 0  # recorded answers compared with B's
    changed: int = 0
    unverified: int = 0  # compared without the replay check (no readable snapshot of their rulebook)
    not_redecided: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    groups: dict[tuple[str, str, tuple[tuple[str, str, str], ...]], Group] = field(default_factory=dict)
    most_held: int = 0  # the most questions held at once (one page)

    @property
    def unchanged(self) -> int:
        return self.answers - self.changed

    def sorted_groups(self) -> list[Group]:
        return sorted(self.groups.values(), key=lambda g: (-g.count, g.app, g.category, g.describe()))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rulebook_version": self.rulebook_version,
            "knowledge": self.knowledge,
            "since": self.since,
            "until": self.until,
            "records": dict(sorted(self.records.items())),
            "answers": self.answers,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "unverified": self.unverified,
            "not_redecided": sum(self.not_redecided.values()),
            "not_redecided_by_reason": dict(self.not_redecided.most_common()),
            "skipped_by_reason": dict(self.skipped.most_common()),
            "groups": [group.to_json_dict() for group in self.sorted_groups()],
            "page_size": self.page_size,
            "most_held": self.most_held,
        }


# --- knowledge B -------------------------------------------------------------------------------------------


@contextmanager
def rules_from(knowledge: str) -> Iterator[tuple[Rulebook, str]]:
    """The rulebook of B, and how to name it: a bundle file, a knowledge directory, `installed` or `packaged`.

    Goes through `appban.knowledge.layout.resolve_knowledge` where that exists; until then a directory laid
    out as a bundle holds its data, and `packaged` (and `installed`, with nothing installed) is the package's.
    """
    from appban.knowledge import layout
    from appban.rulebook.loader import RulebookError, load_rulebook

    resolve = getattr(layout, "resolve_knowledge", None)
    with ExitStack() as stack:
        # Only opening B is B's problem: an error raised by the caller's work inside the block is left alone.
        try:
            root = stack.enter_context(resolve(knowledge) if resolve is not None else _knowledge_root(knowledge))
            book = load_rulebook(root.path("rulebook"))
        except RulebookError as exc:
            raise ImpactError(f"{knowledge}: not a readable rulebook: {exc}") from exc
        except ImpactError:
            raise
        except (OSError, ValueError) as exc:
            raise ImpactError(f"{knowledge}: {exc}") from exc
        yield book, knowledge


@contextmanager
def _knowledge_root(knowledge: str) -> Iterator[Any]:
    from appban.knowledge.layout import PACKAGED, KnowledgeRoot, active_root

    if knowledge == "packaged":
        yield PACKAGED
    elif knowledge == "installed":
        yield active_root()
    elif Path(knowledge).is_dir():
        yield KnowledgeRoot(Path(knowledge))
    else:
        raise ImpactError(f"{knowledge}: not a knowledge directory, `installed` or `packaged`")


# --- reading the store ---------------------------------------------------------------------------------------


def _answer(result: Any) -> tuple[str, str, str] | None:
    if not isinstance(result, dict) or not all(isinstance(result.get(name), str) for name in ANSWER):
        return None
    return (result["verdict"], result["as_written"], result["enforcement"])


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return json.dumps(value) if value else None
    return str(value)


def _question(qid: str, kind: str, version: str, asked: Any, result: Any) -> Question | str:
    """The question of a recorded answer, or why there is none."""
    if not isinstance(asked, dict) or not all(asked.get(name) is not None for name in _QUESTION):
        return NO_QUESTION
    recorded = _answer(result)
    if recorded is None:
        return NO_ANSWER
    return Question(qid, kind, version, str(asked["app"]), str(asked["transaction"]), str(asked["where"]),
                    str(asked["at"]), _text(asked.get("facts")), _text(asked.get("tz")), recorded)  # fmt: skip


def _finding_questions(
    run_id: str, seq: int, data: Any, run_kind: str, version: str, options: dict[str, Any]
) -> Iterator[Question | str]:
    """The questions one finding answered: one for an inventory, network or payments finding, one per
    category for a code finding (its `decisions`)."""
    qid = f"{run_id}/{seq}"
    if not isinstance(data, dict):
        yield NO_QUESTION
        return
    decisions = data.get("decisions")
    if isinstance(decisions, dict):
        for category, decision in decisions.items():
            asked = decision if isinstance(decision, dict) else {}
            yield _question(f"{qid}:{category}", "finding", version, asked, decision)
        return
    facts = data.get("facts")
    if facts is None and run_kind == "inventory" and options.get("fleet") == "personal":
        facts = {"personally_owned_device": True}  # what the inventory screen decides a personal fleet with
    asked = {
        "app": data.get("app") or data.get("subject"),
        "transaction": data.get("transaction"),
        "where": data.get("where") or options.get("where", "US"),
        "at": data.get("at") or data.get("ts"),
        "facts": facts,
    }
    if data.get("verdict") is None and data.get("transaction") is not None:
        yield NO_ANSWER  # a payment with no place to decide it in was recorded undecided
        return
    yield _question(qid, "finding", version, asked, data)


def _decision_questions(store: AuditStore, record: DecisionRecord, page: int) -> Iterator[list[Question | str]]:
    """A decision record's questions, a page at a time."""
    if record.kind == "screen":
        yield [SCREEN_RECORD]
        return
    if record.input.get("format") == "arrow-ipc":
        yield from _batch_questions(store, record, page)
        return
    rows = record.input.get("rows")
    answers = record.result.get("rows")
    if isinstance(rows, list) and isinstance(answers, list) and "app" not in record.input:
        for start in range(0, len(rows), page):
            yield [
                _question(
                    f"{record.id}#{i}",
                    "batch row",
                    record.rulebook_version,
                    rows[i],
                    answers[i] if i < len(answers) else None,
                )
                for i in range(start, min(len(rows), start + page))
            ]
        return
    yield [_question(record.id, "decision", record.rulebook_version, record.input, record.result)]


def _batch_questions(store: AuditStore, record: DecisionRecord, page: int) -> Iterator[list[Question | str]]:
    import pyarrow.ipc as ipc

    tables = store.batch(record.id)
    if tables is None:
        yield [NO_BATCH_TABLES]
        return
    questions, answers = (ipc.open_stream(pa.py_buffer(data)).read_all() for data in tables)
    for start in range(0, questions.num_rows, page):
        asked = questions.slice(start, page).to_pylist()
        said = answers.slice(start, page).to_pylist()
        yield [
            _question(
                f"{record.id}#{start + i}",
                "batch row",
                record.rulebook_version,
                row,
                said[i] if i < len(said) else None,
            )
            for i, row in enumerate(asked)
        ]


def _finding_pages(
    store: AuditStore, since: dt.datetime | None, until: dt.datetime | None, page: int
) -> Iterator[tuple[int, list[Question | str]]]:
    """Every finding of every run created in [since, until), a page at a time (keyset on run id and seq)."""
    columns = (FINDINGS.c.run_id, FINDINGS.c.seq, FINDINGS.c.data, RUNS.c.kind, RUNS.c.rulebook_version,
               RUNS.c.options)  # fmt: skip
    base = select(*columns).join(RUNS, RUNS.c.id == FINDINGS.c.run_id)
    if since is not None:
        base = base.where(RUNS.c.created_at >= since)
    if until is not None:
        base = base.where(RUNS.c.created_at < until)
    base = base.order_by(FINDINGS.c.run_id, FINDINGS.c.seq).limit(page)
    after: tuple[str, int] | None = None
    while True:
        statement = base
        if after is not None:
            last_run, last_seq = after
            statement = statement.where(
                or_(FINDINGS.c.run_id > last_run, and_(FINDINGS.c.run_id == last_run, FINDINGS.c.seq > last_seq))
            )
        rows = store._all(statement)
        questions: list[Question | str] = []
        for row in rows:
            found = row._mapping
            questions.extend(_finding_questions(str(found["run_id"]), int(found["seq"]), found["data"], found["kind"],
                                                found["rulebook_version"], found["options"] or {}))  # fmt: skip
        yield len(rows), questions
        if len(rows) < page:
            return
        last = rows[-1]._mapping
        after = (str(last["run_id"]), int(last["seq"]))


# --- deciding ------------------------------------------------------------------------------------------------


def _reason(column: str, message: str) -> str:
    # A message may list every known value ("unknown app 'x' (known apps: ...)"): the part before that.
    return f"not decidable under B: {column}: {message.split(' (known', 1)[0]}"[:200]


def decide_questions(questions: list[Question], book: Rulebook) -> list[tuple[str, str, str] | str]:
    """Each question's answer under `book` (verdict, as_written, enforcement), or why it cannot be decided.

    One `decide_table` call for the lot; a row the rulebook refuses (an app it does not know) is answered
    with its error and the others are decided again without it."""
    answers: list[tuple[str, str, str] | str] = [""] * len(questions)
    pending = list(range(len(questions)))
    while pending:
        table = pa.table(
            {
                "app": [questions[i].app for i in pending],
                "transaction": [questions[i].transaction for i in pending],
                "where": [questions[i].where for i in pending],
                "at": [questions[i].at for i in pending],
                "facts": pa.array([questions[i].facts for i in pending], pa.string()),
                "tz": pa.array([questions[i].tz for i in pending], pa.string()),
            }
        )
        try:
            decided = decide_table(table, rulebook=book)
        except TableInputError as exc:
            bad = {error.row: _reason(error.column, error.message) for error in exc.errors}
            if not bad or any(row >= len(pending) for row in bad) or not all(row >= 0 for row in bad):
                bad = {row: _reason("*", str(exc)) for row in range(len(pending))}
            for row, reason in bad.items():
                answers[pending[row]] = reason
            pending = [index for row, index in enumerate(pending) if row not in bad]
            continue
        columns = [[str(value) for value in decided.column(name).to_pylist()] for name in ANSWER]
        for row, index in enumerate(pending):
            answers[index] = (columns[0][row], columns[1][row], columns[2][row])
        return answers
    return answers


class _Subjects:
    """App names as the rulebooks' subject ids (a recorded question may name an app by alias or package)."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}

    def __call__(self, app: str, books: list[Rulebook]) -> str:
        found = self._known.get(app)
        if found is not None:
            return found
        subject = app
        for book in books:
            try:
                subject = resolve_subject(book, app)
                break
            except DecisionInputError:
                continue
        if len(self._known) >= _MAX_SUBJECTS:
            self._known.clear()
        self._known[app] = subject
        return subject


def impact(
    store: AuditStore,
    book: Rulebook,
    *,
    knowledge: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    examples: int = DEFAULT_EXAMPLES,
    page: int = DEFAULT_PAGE,
    progress: Callable[[int], None] | None = None,
) -> ImpactReport:
    """Every recorded decision (asked in [since, until)) and finding (of runs created then) decided again
    under `book`; those whose verdict, as_written or enforcement would change, grouped."""
    if page < 1:
        raise ValueError("page must be at least 1")
    if not 0 <= examples <= MAX_EXAMPLES:
        raise ValueError(f"examples must be from 0 to {MAX_EXAMPLES}")
    report = ImpactReport(book.version, knowledge, _stamp(since), _stamp(until), page)
    work = _Work(store, book, report, examples)
    pending: list[Question | str] = []
    for record in store.iter_decisions(start=since, end=until, chunk=page):
        report.records["decisions"] += 1
        for questions in _decision_questions(store, record, page):
            pending.extend(questions)
            if len(pending) >= page:
                work.settle(pending)
                pending = []
                if progress is not None:
                    progress(report.answers)
    work.settle(pending)
    for read, questions in _finding_pages(store, since, until, page):
        report.records["findings"] += read
        work.settle(questions)
        if progress is not None:
            progress(report.answers)
    return report


class _Work:
    def __init__(self, store: AuditStore, book: Rulebook, report: ImpactReport, examples: int) -> None:
        self.store, self.book, self.report, self.examples = store, book, report, examples
        self.subjects = _Subjects()

    def _own(self, version: str) -> Rulebook | None:
        if version == self.book.version:
            return self.book
        try:
            return self.store.rulebook(version)
        except SnapshotError:
            return None

    def _set_aside(self, reason: str, *, skipped: bool = False) -> None:
        counter = self.report.skipped if skipped else self.report.not_redecided
        if reason not in counter and len(counter) >= _MAX_REASONS:
            reason = _OTHER_REASON
        counter[reason] += 1

    def settle(self, items: list[Question | str]) -> None:
        """Decide one page of questions under B (and under their own rulebooks) and count what changes."""
        report = self.report
        report.most_held = max(report.most_held, len(items))
        questions: list[Question] = []
        for item in items:
            if isinstance(item, str):
                self._set_aside(item, skipped=item == SCREEN_RECORD)
            else:
                questions.append(item)
        if not questions:
            return
        under_b = decide_questions(questions, self.book)
        by_version: dict[str, list[int]] = {}
        for index, question in enumerate(questions):
            by_version.setdefault(question.version, []).append(index)
        replayed: dict[int, tuple[str, str, str] | str | None] = {}
        for version, indexes in by_version.items():
            own = self._own(version)
            if own is None:
                replayed.update((index, None) for index in indexes)
            elif own is self.book:
                replayed.update((index, under_b[index]) for index in indexes)
            else:
                answers = decide_questions([questions[index] for index in indexes], own)
                replayed.update(zip(indexes, answers, strict=True))
        for index, question in enumerate(questions):
            again, answer = replayed[index], under_b[index]
            if again is not None and again != question.recorded:
                self._set_aside(NOT_REPRODUCED)
                continue
            if isinstance(answer, str):
                self._set_aside(answer)
                continue
            report.answers += 1
            report.unverified += again is None
            if answer != question.recorded:
                report.changed += 1
                self._group(question, answer, self._own(question.version))

    def _group(self, question: Question, answer: tuple[str, str, str], own: Rulebook | None) -> None:
        change = tuple(
            (name, before, after)
            for name, before, after in zip(ANSWER, question.recorded, answer, strict=True)
            if before != after
        )
        app = self.subjects(question.app, [book for book in (own, self.book) if book is not None])
        try:
            category = resolve_category(question.transaction).value
        except DecisionInputError:
            category = question.transaction
        key = (app, category, change)
        group = self.report.groups.get(key)
        if group is None:
            group = Group(app, category, {name: (before, after) for name, before, after in change})
            self.report.groups[key] = group
        group.count += 1
        if len(group.examples) < self.examples:
            group.examples.append({"id": question.id, "kind": question.kind, "at": question.at,
                                   "where": question.where, "recorded_version": question.version})  # fmt: skip
