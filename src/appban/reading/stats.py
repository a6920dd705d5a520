"""What a read saw: rows, malformed lines with their numbers, and the array types readers share."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_BATCH_ROWS = 65_536
MAX_ERRORS = 100

Lines = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Columns = dict[str, Any]  # column name -> pyarrow array (pyarrow is untyped)


@dataclass(frozen=True)
class ReadError:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class ReadNote:
    """Something a read assumed rather than found in the file (the year of yearless syslog times, ...)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ReadStats:
    """What one read saw. Filled in while its batches are consumed, so read it after the last batch."""

    rows: int = 0
    malformed: int = 0
    skipped: int = 0  # well-formed lines that are not records: dnsmasq replies, BIND non-query lines, ...
    non_utf8: int = 0  # lines whose undecodable bytes were replaced by U+FFFD; they are still read
    errors: list[ReadError] = field(default_factory=list)  # the first `max_errors` malformed lines, in order
    max_errors: int = MAX_ERRORS
    notes: list[ReadNote] = field(default_factory=list)  # each said once per file, in the order first seen

    def note(self, path: Path | str, message: str) -> None:
        """Record an assumption the read made; the same one twice is kept once."""
        self._note([ReadNote(str(path), message)])

    def _note(self, new: list[ReadNote]) -> None:
        for item in new:
            if item not in self.notes:
                self.notes.append(item)

    def error(self, path: Path | str, line: int, message: str) -> None:
        self.malformed += 1
        if len(self.errors) < self.max_errors or line < self.errors[-1].line:
            self._keep([ReadError(str(path), line, message)])

    def errors_at(self, path: Path | str, lines: Lines, message: str | Callable[[int], str]) -> None:
        """Count every line in `lines` (ascending) as malformed; `message(i)` is built only for lines kept."""
        self.malformed += len(lines)
        positions = np.arange(len(lines))
        if len(self.errors) >= self.max_errors:
            positions = positions[lines < self.errors[-1].line]
        new = []
        for i in positions[: self.max_errors].tolist():
            new.append(ReadError(str(path), int(lines[i]), message if isinstance(message, str) else message(i)))
        self._keep(new)

    def _keep(self, new: list[ReadError]) -> None:
        # Errors arrive out of order (a chunk reports bad field counts before bad times, threads finish when
        # they do); keeping the earliest lines makes the list the same whatever the order.
        if new:
            self.errors = sorted([*self.errors, *new], key=lambda error: error.line)[: self.max_errors]

    def merge(self, other: ReadStats) -> None:
        """Add what `other` saw."""
        self.rows += other.rows
        self.malformed += other.malformed
        self.skipped += other.skipped
        self.non_utf8 += other.non_utf8
        self._keep(other.errors)
        self._note(other.notes)

    def drain(self) -> ReadStats:
        """What this one saw so far, which it then forgets."""
        taken = dataclasses.replace(self, errors=self.errors, notes=self.notes)
        self.rows = self.malformed = self.skipped = self.non_utf8 = 0
        self.errors = []
        self.notes = []
        return taken
