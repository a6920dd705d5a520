"""Finding identities that survive across runs, and baselines made of earlier results.

A finding is known again in a later run by what it is, not where the scan happened to start or on which line
it was seen: the command, the file (relative to where appban runs, archive members after "!/"), the app and
the rule (for `scan`, the signature). `scan` makes one finding per file and signature already; its first
matched text and its line move when lines are added above them, so neither is part of the identity.

`--baseline FILE` takes an earlier result of the same command, as JSON (each finding's `fingerprint`) or SARIF
(each result's `partialFingerprints`), and the run then reports and gates on what is not in it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

FINGERPRINT_KEY = "appbanFinding/v2"  # the SARIF partialFingerprints key
MAX_BYTES = 256 << 20  # as any JSON document appban reads


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class Facts:
    """What identifies a finding, and what a suppression may match on."""

    command: str  # "scan", "screen inventory", ...
    path: str  # relative, "/"-separated, archive members after "!/"
    app: str
    rule: str  # scan: the signature id
    categories: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()  # package URLs, with the version where one is pinned
    origin: str = ""  # the file as an absolute path (members after "!/"): what path globs are matched against

    @property
    def fingerprint(self) -> str:
        text = "\x1f".join(("v2", self.command, self.path, self.app.casefold(), self.rule))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def absolute(path: str) -> str:
    """`path` (a file, perhaps with "!/member" after it) as an absolute, "/"-separated path."""
    file, sep, member = path.partition("!/")
    return PurePath(os.path.abspath(file)).as_posix() + sep + member


def relative(path: str, base: Path) -> str:
    """`path` (a file, perhaps with "!/member" after it) relative to `base` when inside it, "/"-separated."""
    file, sep, member = path.partition("!/")
    absolute = os.path.abspath(file)
    try:
        inside = os.path.relpath(absolute, os.path.abspath(base))
    except ValueError:  # another drive
        inside = absolute
    if inside == ".." or inside.startswith(".." + os.sep):
        inside = absolute
    return PurePath(inside).as_posix() + sep + member


def read(path: Path) -> set[str]:
    """The fingerprints of every finding an earlier JSON or SARIF result holds (suppressed ones included)."""
    from appban import safejson

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise BaselineError(f"--baseline {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise BaselineError(f"--baseline {path}: larger than {MAX_BYTES >> 20} MiB")
    try:
        document = safejson.loads(data)
    except ValueError as exc:
        raise BaselineError(f"--baseline {path}: not JSON: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("runs"), list):
        return _from_sarif(document, path)
    if isinstance(document, dict) and isinstance(document.get("findings"), list):
        return _from_json(document, path)
    raise BaselineError(f"--baseline {path}: neither appban's JSON output (`findings`) nor SARIF (`runs`)")


def _from_json(document: dict[str, Any], path: Path) -> set[str]:
    found: set[str] = set()
    for field in ("findings", "suppressed"):
        items = document.get(field) or []
        if not isinstance(items, list):
            raise BaselineError(f"--baseline {path}: `{field}` is not a list")
        for number, item in enumerate(items):
            value = item.get("fingerprint") if isinstance(item, dict) else None
            if not isinstance(value, str) or not value:
                raise BaselineError(
                    f"--baseline {path}: {field}[{number}] has no `fingerprint`: record the baseline again "
                    "with this version of appban"
                )
            found.add(value)
    return found


def _from_sarif(document: dict[str, Any], path: Path) -> set[str]:
    found: set[str] = set()
    for run_number, run in enumerate(document["runs"]):
        results = run.get("results") if isinstance(run, dict) else None
        if not isinstance(results, list):
            raise BaselineError(f"--baseline {path}: runs[{run_number}] has no `results` list")
        for number, result in enumerate(results):
            prints = result.get("partialFingerprints") if isinstance(result, dict) else None
            value = prints.get(FINGERPRINT_KEY) if isinstance(prints, dict) else None
            if not isinstance(value, str) or not value:
                raise BaselineError(
                    f"--baseline {path}: runs[{run_number}].results[{number}] has no partialFingerprints "
                    f"{FINGERPRINT_KEY!r}: not made by this version of appban; record the baseline again"
                )
            found.add(value)
    return found
