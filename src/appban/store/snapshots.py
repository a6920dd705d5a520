"""Rulebook snapshots: a rulebook rebuilt from its canonical JSON, for replaying old decisions.

`Rulebook.canonical_json()` holds everything the rulebook's version hash covers (subjects,
places, facts and every instrument), so validating each part back through its pydantic model
gives a rulebook with the same version and the same answers, even after the packaged rulebook
has moved on.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from appban.rulebook.loader import Rulebook
from appban.rulebook.schema import Facts, Instrument, Places, Subjects

# A snapshot has no directory of its own; this stands in for `Rulebook.root` (only messages show it).
SNAPSHOT_ROOT = Path("<rulebook snapshot>")


class SnapshotError(ValueError):
    """A stored snapshot that no longer reads back as a rulebook (corrupt, or from an incompatible schema)."""


def rulebook_from_canonical_json(text: str) -> Rulebook:
    """The rulebook whose `canonical_json()` is `text`."""
    try:
        content = json.loads(text)
        instruments = [Instrument.model_validate(item) for item in content["instruments"]]
        subjects = Subjects.model_validate(content["subjects"])
        places = Places.model_validate(content["places"])
        facts = Facts.model_validate(content["facts"])
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise SnapshotError(f"not a rulebook snapshot: {exc}") from exc
    # The loader reads instrument files in file-name order, and rule trails list rules in
    # instrument order: keep that order so a replay lists the same trail in the same order.
    instruments.sort(key=lambda instrument: instrument.id + ".yaml")
    return Rulebook(SNAPSHOT_ROOT, {item.id: item for item in instruments}, subjects, places, facts)
