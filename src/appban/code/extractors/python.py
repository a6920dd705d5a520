"""Python: requirements files, pyproject.toml, Pipfile(.lock), poetry.lock and uv.lock."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator

from appban.code.extractors._text import lines, text_of
from appban.code.model import Observation

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)")
_LOCK_NAME = re.compile(r'^name\s*=\s*"([^"]+)"')


def normalise(name: str) -> str:
    """PEP 503: case and runs of '-', '_', '.' do not distinguish distributions."""
    return re.sub(r"[-_.]+", "-", name).lower()


class Python:
    name = "python"

    def wants(self, name: str, head: bytes) -> bool:
        if name.startswith("requirements") and name.endswith((".txt", ".in")):
            return True
        # METADATA / PKG-INFO: an installed or packaged distribution's own name.
        return name in {"pyproject.toml", "pipfile", "pipfile.lock", "poetry.lock", "uv.lock", "constraints.txt",
                        "metadata", "pkg-info"}  # fmt: skip

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if name in {"metadata", "pkg-info"}:
            for number, line in lines(data):
                if line.startswith("Name:"):
                    yield Observation("pypi", normalise(line[5:].strip()), number, "distribution")
                    return
                if not line.strip():
                    return
        elif name.endswith((".txt", ".in")):
            for number, line in lines(data):
                stripped = line.strip()
                if stripped and not stripped.startswith(("#", "-")) and (match := _REQUIREMENT.match(stripped)):
                    yield Observation("pypi", normalise(match[1]), number)
        elif name in {"poetry.lock", "uv.lock"}:
            for number, line in lines(data):
                if match := _LOCK_NAME.match(line):
                    yield Observation("pypi", normalise(match[1]), number)
        elif name == "pipfile.lock":
            try:
                document = json.loads(text_of(data))
            except json.JSONDecodeError:
                return
            for section in ("default", "develop"):
                for dep in (document.get(section) or {}) if isinstance(document, dict) else {}:
                    yield Observation("pypi", normalise(dep), None)
        else:
            yield from self._toml(data)

    def _toml(self, data: bytes) -> Iterator[Observation]:
        text = text_of(data)
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return
        names: list[str] = []
        project = document.get("project", {})
        names += [str(d) for d in project.get("dependencies", [])]
        for group in project.get("optional-dependencies", {}).values():
            names += [str(d) for d in group]
        poetry = document.get("tool", {}).get("poetry", {})
        names += list(poetry.get("dependencies", {})) + list(poetry.get("dev-dependencies", {}))
        for section in ("packages", "dev-packages"):  # Pipfile
            names += list(document.get(section, {}))
        for requirement in names:
            if match := _REQUIREMENT.match(requirement):
                found = text.find(match[1])
                yield Observation("pypi", normalise(match[1]), text.count("\n", 0, found) + 1 if found >= 0 else None)
