"""Finding identities that survive across runs, and baselines made of earlier results.

A finding is known again in a later run by what it is, not where the scan happened to start or on which line
it was seen: the command, the file (relative to the identity root, archive members after "!/"), the app and
the rule (for `scan`, the signature).

The identity root is a folder that does not move when appban is run from elsewhere (`appban scan repo` from
the parent, `appban scan ..` from a subfolder): the configuration file's folder, else the git working tree's
top level, else the scan root, the first of them that holds every path scanned (`identity_root`).

`scan` makes one finding per file and signature already; its first matched text and its line move when lines
are added above them, so neither is part of the identity.

`--baseline FILE` takes an earlier result of the same command, as JSON (each finding's `fingerprint`) or SARIF
(each result's `partialFingerprints`), and the run then reports and gates on what is not in it. A result of
another command is refused: its fingerprints could never match, and every finding would pass for new.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
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

    @cached_property  # asked for by every suppression and the baseline
    def fingerprint(self) -> str:
        text = "\x1f".join(("v2", self.command, self.path, self.app.casefold(), self.rule))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def absolute(path: str) -> str:
    """`path` (a file, perhaps with "!/member" after it) as an absolute, "/"-separated path."""
    file, sep, member = path.partition("!/")
    return PurePath(os.path.abspath(file)).as_posix() + sep + member


@dataclass(frozen=True)
class IdentityRoot:
    """The folder finding paths are taken relative to for their fingerprints, and what it is (for messages)."""

    path: Path
    kind: str  # "the configuration file's folder", "the git top level", "the scan root", "the current folder"


def identity_root(scanned: str | None, config_file: Path | None) -> IdentityRoot:
    """The first of the configuration file's folder, the git top level above the scan root and the scan root
    itself that holds `scanned` (the folder every scanned path lies in); the current folder when there is
    no scan root (paths on different drives). Links are resolved, so that a path reached through a linked
    folder is the same path."""
    if scanned is None:
        return IdentityRoot(Path(os.path.realpath(os.curdir)), "the current folder")
    inside = Path(os.path.realpath(scanned))
    if config_file is not None:
        folder = Path(os.path.realpath(config_file)).parent
        if inside == folder or folder in inside.parents:
            return IdentityRoot(folder, "the configuration file's folder")
    top = git_top(inside)
    if top is not None:
        return IdentityRoot(top, "the git top level")
    return IdentityRoot(inside, "the scan root")


def git_top(start: Path) -> Path | None:
    """The closest folder at or above `start` holding `.git` (a folder, or the file a worktree or submodule
    has): the top of the working tree, found without running git."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def relative(path: str, base: Path) -> str:
    """`path` (a file, perhaps with "!/member" after it) relative to `base` when inside it, "/"-separated."""
    file, sep, member = path.partition("!/")
    absolute = os.path.realpath(file)  # links resolved on both sides, as identity_root resolves them
    try:
        inside = os.path.relpath(absolute, os.path.realpath(base))
    except ValueError:  # another drive
        inside = absolute
    if inside == ".." or inside.startswith(".." + os.sep):
        inside = absolute
    return PurePath(inside).as_posix() + sep + member


# Where each command's JSON output lists its findings (suppressed ones are under `suppressed` in every one), and
# what tells its output apart from the others': the keys only it writes at the top.
FINDINGS_KEY = {"scan": "findings", "screen inventory": "findings", "screen network": "records",
                "screen payments": "payments"}  # fmt: skip
_MARKS = (("screen network", ("records", "exposure")), ("screen payments", ("payments", "totals")),
          ("screen inventory", ("findings", "summary", "files")), ("scan", ("findings",)))  # fmt: skip


def read(path: Path, command: str = "scan") -> set[str]:
    """The fingerprints of every finding an earlier JSON or SARIF result of `command` holds (suppressed ones
    included). A result of another command is refused, naming it."""
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
    sarif = isinstance(document, dict) and isinstance(document.get("runs"), list)
    made_by = "scan" if sarif else written_by(document)
    if made_by is None:
        raise BaselineError(
            f"--baseline {path}: neither a JSON result of `appban {command}` "
            f"(`{FINDINGS_KEY.get(command, 'findings')}`) nor SARIF (`runs`)"
        )
    if made_by != command:
        kind = "SARIF" if sarif else "JSON"
        raise BaselineError(
            f"--baseline {path}: a {kind} result of `appban {made_by}`, not of `appban {command}`: record the "
            f"baseline with `appban {command} … --format json -o FILE`"
        )
    if sarif:
        return _from_sarif(document, path)
    return _from_json(document, path, FINDINGS_KEY[command])


def written_by(document: object) -> str | None:
    """The command whose JSON output `document` is, by the keys at its top; None when it is none of them."""
    if not isinstance(document, dict):
        return None
    for command, keys in _MARKS:
        if all(isinstance(document.get(key), list | dict) for key in keys) and isinstance(
            document.get(FINDINGS_KEY[command]), list
        ):
            return command
    return None


def _from_json(document: dict[str, Any], path: Path, listed: str = "findings") -> set[str]:
    found: set[str] = set()
    for field in (listed, "suppressed"):
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
