"""fuzz/corpus/<target>/: every input that once failed, named by its hash, replayed first on every run.

`found.json` beside the inputs says how each one failed when it was found (and when it last ran)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "corpus"
SEP = "--"


def entries(target: str, root: Path = ROOT) -> list[tuple[Path, str]]:
    """(file, the input's own file name) for each kept input of `target`, in a stable order."""
    folder = root / target
    if not folder.is_dir():
        return []
    return [(p, p.name.split(SEP, 1)[1]) for p in sorted(folder.iterdir()) if SEP in p.name and p.is_file()]


def save(target: str, name: str, data: bytes, note: dict[str, object], root: Path = ROOT) -> Path:
    folder = root / target
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80] or "input"
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{SEP}{safe}"
    path.write_bytes(data)
    index = folder / "found.json"
    found = json.loads(index.read_text(encoding="utf-8")) if index.is_file() else {}
    found[path.name] = note
    index.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def note_replay(target: str, file: Path, kind: str, root: Path = ROOT) -> None:
    index = root / target / "found.json"
    found = json.loads(index.read_text(encoding="utf-8")) if index.is_file() else {}
    found.setdefault(file.name, {})["last_replay"] = kind
    index.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
