"""The enforcement status an enforcement output reflects, worded the same way in every header and summary.

A prohibition that is law is not always enforced. The executive may direct that it not be enforced (EO 14166
and its extensions did so for PAFACA in 2025: the verdict stays `prohibited`, the enforcement `suspended`), and
a court may enjoin it (the verdict `enjoined`, listed only on request). Whoever loads a blocklist or an MDM
profile must be able to tell which of these the file reflects, and may choose to leave out what the executive
does not enforce (`--exclude-suspended`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["enforceable", "suspended", "enjoined"]

_WORDING: dict[Status, str] = {
    "enforceable": "prohibited and enforceable",
    "suspended": "prohibited, executive enforcement suspended (the prohibition is law)",
    "enjoined": "enjoined (a court bars enforcement; listed on request)",
}


@dataclass(frozen=True)
class Listed:
    """One listed app (or indicator's app) with the verdict and enforcement of the decision that lists it."""

    name: str
    verdict: str  # "prohibited" or "enjoined"
    enforcement: str  # "enforceable", "suspended" or "not_applicable"


def status_of(verdict: str, enforcement: str) -> Status:
    if verdict == "enjoined":
        return "enjoined"
    return "suspended" if enforcement == "suspended" else "enforceable"


def wording(status: Status) -> str:
    return _WORDING[status]


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def enforcement_line(listed: Sequence[Listed], left_out_suspended: Sequence[str] = ()) -> str:
    """`prohibited and enforceable: TikTok; prohibited, executive enforcement suspended (...): CapCut`.

    Every status present gets its own group, in a fixed order, so a reader sees at once whether anything
    listed is unenforced; what was left out on request (exclude suspended) is named too, never dropped silently.
    """
    groups: list[str] = []
    for status in _WORDING:
        names = _unique(item.name for item in listed if status_of(item.verdict, item.enforcement) == status)
        if names:
            groups.append(f"{_WORDING[status]}: {', '.join(names)}")
    if not groups:
        groups.append("nothing listed")
    left_out = _unique(left_out_suspended)
    if left_out:
        groups.append(f"left out on request as not enforced by the executive: {', '.join(left_out)}")
    return "; ".join(groups)
