"""Questions with the answers the law gives, asked of a knowledge root: `appban rules test`.

A cases file is YAML: `cases`, a list of questions (`app`, `transaction`, `where`, `at`, optional `facts`
and `tz`, as `appban check` takes them), each with a `name`, a `source` (where its answer comes from) and
what it `expect`s: the verdict, and optionally `as_written`, `enforcement` and the `instruments` and `rules`
that must appear in the answer's trail. Every knowledge root carries its own (the `cases.yaml` part), so a
bundle brings the questions it must answer right, and `rules update` refuses one that answers them wrong.

Each case passes or fails on its own: a question the rulebook cannot even ask (an unknown app, a fact it
no longer defines) is a failure with its reason, not an error that stops the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from appban.knowledge.layout import KnowledgeRoot
from appban.rulebook.loader import Problem, RulebookError, load_rulebook, parse_yaml
from appban.vocabulary import Category, Enforcement, Verdict

CASES_PART = "cases.yaml"
MAX_CASES_BYTES = 4 << 20  # a cases file is a few hundred questions; a larger one is not one


class CasesError(ValueError):
    """A cases file that cannot be read or is not valid: each problem names the file, line and field."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expected(_Strict):
    verdict: Verdict
    as_written: Verdict | None = None
    enforcement: Enforcement | None = None
    instruments: list[str] = []  # each must be named in the answer (a rule's instrument, a change, a citation)
    rules: list[str] = []  # each must be a rule covering the transaction (the trail's rule ids)


class Case(_Strict):
    name: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1)  # where the expected answer comes from: the law, not the engine
    app: str = Field(min_length=1, max_length=200)
    transaction: Category
    where: str = Field(min_length=2, max_length=10)
    at: str = Field(min_length=4, max_length=64)  # ISO 8601, with an offset unless `tz` is given
    tz: str | None = None
    facts: dict[str, bool | str] = {}
    expect: Expected


class CasesFile(_Strict):
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    name: str
    source: str
    question: dict[str, Any]
    expected: dict[str, Any]
    got: dict[str, Any]  # verdict, as_written, enforcement, instruments, rules (empty when `error`)
    differences: list[str]  # one sentence per expectation not met
    error: str | None = None  # the question could not be asked of this rulebook

    @property
    def passed(self) -> bool:
        return not self.differences and self.error is None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "question": self.question,
            "expected": self.expected,
            "got": self.got,
            "differences": self.differences,
            "error": self.error,
            "source": self.source,
        }


@dataclass(frozen=True)
class CaseReport:
    cases_file: str
    rulebook_version: str
    results: list[CaseResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [result for result in self.results if not result.passed]

    @property
    def passed(self) -> list[CaseResult]:
        return [result for result in self.results if result.passed]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "cases_file": self.cases_file,
            "rulebook_version": self.rulebook_version,
            "summary": {"cases": len(self.results), "passed": len(self.passed), "failed": len(self.failed)},
            "cases": [result.to_json_dict() for result in self.results],
        }


def read_cases(path: Path, label: str | None = None) -> CasesFile:
    """The cases in `path`, validated; CasesError names each problem's file, line and field."""
    label = label or str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CasesError([Problem(label, None, "", f"cannot read: {exc.strerror or exc}")]) from None
    if size > MAX_CASES_BYTES:
        raise CasesError([Problem(label, None, "", f"larger than {MAX_CASES_BYTES >> 20} MiB; not a cases file")])
    problems: list[Problem] = []
    found, source = parse_yaml(path, CasesFile, problems, label)
    if found is not None:
        seen: dict[str, int] = {}
        for i, case in enumerate(found.cases):
            if case.name in seen:
                message = f"the name {case.name!r} is already used by case {seen[case.name]}"
                problems.append(source.problem(("cases", i, "name"), message))
            seen.setdefault(case.name, i)
    if problems or found is None:
        raise CasesError(problems)
    return found


def run_cases(root: KnowledgeRoot, cases_file: Path | None = None) -> CaseReport:
    """Ask every case of `cases_file` (by default the root's own) of the rulebook in `root`.

    Raises CasesError for a cases file that cannot be read, RulebookError for a rulebook that cannot."""
    path = cases_file if cases_file is not None else root.path(CASES_PART)
    cases = read_cases(path, str(cases_file) if cases_file is not None else CASES_PART)
    book = load_rulebook(root.path("rulebook"))
    results = [_ask(book, case) for case in cases.cases]
    return CaseReport(str(path) if cases_file is not None else CASES_PART, book.version, results)


def _ask(book: Any, case: Case) -> CaseResult:
    from appban.engine.decide import decide

    question: dict[str, Any] = {"app": case.app, "transaction": case.transaction.value, "where": case.where,
                                "at": case.at, "facts": dict(case.facts)}  # fmt: skip
    if case.tz:
        question["tz"] = case.tz
    expected = case.expect.model_dump(mode="json", exclude_defaults=True)
    expected["verdict"] = case.expect.verdict.value
    try:
        decision = decide(case.app, case.transaction, case.where, case.at, case.facts, tz=case.tz, rulebook=book)
    except (ValueError, LookupError) as exc:  # DecisionInputError and InstantError are ValueErrors
        return CaseResult(case.name, case.source, question, expected, {}, [], error=str(exc))
    named = {line.instrument for line in decision.rules if line.status.value not in _NOT_COVERING}
    named |= {other for line in decision.rules for other in line.changed_by}
    named |= {citation.instrument for citation in decision.citations}
    got = {
        "verdict": decision.verdict.value,
        "as_written": decision.as_written.value,
        "enforcement": decision.enforcement.value,
        "instruments": sorted(named),
        "rules": decision.rule_ids,
    }
    differences: list[str] = []
    for name in ("verdict", "as_written", "enforcement"):
        wanted = getattr(case.expect, name)
        if wanted is not None and wanted.value != got[name]:
            differences.append(f"{name}: expected {wanted.value}, got {got[name]}")
    missing = [instrument for instrument in case.expect.instruments if instrument not in named]
    if missing:
        differences.append(f"instruments not in the trail: {', '.join(missing)}")
    uncovered = [rule for rule in case.expect.rules if rule not in decision.rule_ids]
    if uncovered:
        differences.append(f"rules not covering it: {', '.join(uncovered)}")
    return CaseResult(case.name, case.source, question, expected, got, differences)


_NOT_COVERING = {"not_covered", "authority_only"}

__all__ = ["CaseReport", "CaseResult", "CasesError", "RulebookError", "read_cases", "run_cases"]
