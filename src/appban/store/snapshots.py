"""Rulebook snapshots: a rulebook rebuilt from its canonical JSON, for replaying old decisions.

`Rulebook.canonical_json()` holds everything the rulebook's version hash covers (subjects,
places, facts and every instrument), so validating each part back through its pydantic model
gives a rulebook with the same version and the same answers, even after the packaged rulebook
has moved on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from appban.rulebook.loader import Rulebook
from appban.rulebook.schema import Facts, Instrument, Places, Subjects

# A snapshot has no directory of its own; this stands in for `Rulebook.root` (only messages show it).
SNAPSHOT_ROOT = Path("<rulebook snapshot>")


class SnapshotError(ValueError):
    """A stored snapshot that no longer reads back as a rulebook (corrupt, or from an incompatible schema)."""


# Snapshots stored before instruments carried `made` have a `signed` date: read it as made on that day, in the
# zone of the instrument's jurisdiction, which is how the rulebook writes a day without an hour.
_ZONE_OF_JURISDICTION = {"US-MT": "America/Denver", "IN": "Asia/Kolkata"}


def _upgrade(item: Any) -> Any:
    if isinstance(item, dict) and "made" not in item and "signed" in item:
        item = dict(item)
        zone = _ZONE_OF_JURISDICTION.get(str(item.get("jurisdiction")), "America/New_York")
        item["made"] = {"event": "signed", "date": item.pop("signed"), "zone": zone}
    return item


def rulebook_from_canonical_json(text: str) -> Rulebook:
    """The rulebook whose `canonical_json()` is `text` (the answers it gives follow the engine of today)."""
    try:
        content = json.loads(text)
        instruments = [Instrument.model_validate(_upgrade(item)) for item in content["instruments"]]
        subjects = Subjects.model_validate(content["subjects"])
        places = Places.model_validate(content["places"])
        facts = Facts.model_validate(content["facts"])
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise SnapshotError(f"not a rulebook snapshot: {exc}") from exc
    # The loader reads instrument files in file-name order, and rule trails list rules in
    # instrument order: keep that order so a replay lists the same trail in the same order.
    instruments.sort(key=lambda instrument: instrument.id + ".yaml")
    return Rulebook(SNAPSHOT_ROOT, {item.id: item for item in instruments}, subjects, places, facts)
