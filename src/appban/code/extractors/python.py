"""Python: requirements files, pyproject.toml, Pipfile(.lock), poetry.lock and uv.lock."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

from appban import safejson
from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, FirstFind, lines, text_of
from appban.code.model import Observation, Skipped

_REQUIREMENT = linear(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)")
_LOCK_NAME = linear(r'^name\s*=\s*"([^"]+)"')
# Each match is one maximal run of a single class, so even `re` cannot backtrack here.
_SEPARATORS = re.compile(r"[-_.]+")


def normalise(name: str) -> str:
    """PEP 503: case and runs of '-', '_', '.' do not distinguish distributions."""
    return _SEPARATORS.sub("-", name).lower()


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
                if line.startswith("name") and (match := _LOCK_NAME.match(line)):
                    yield Observation("pypi", normalise(match[1]), number)
        elif name == "pipfile.lock":
            document = _table(safejson.loads(text_of(data)))  # errors are reported by the walker
            for section in ("default", "develop"):
                for dep in _table(document.get(section)):
                    yield Observation("pypi", normalise(dep), None)
        else:
            yield from self._toml(data)

    def _toml(self, data: bytes) -> Iterator[Observation]:
        text = text_of(data, MAX_MANIFEST_BYTES)
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return
        except RecursionError:
            # tomllib recurses once per nested array or inline table; it unwinds cleanly, so the file is
            # reported as skipped rather than letting the error travel.
            raise Skipped("TOML nested too deeply to parse") from None
        # Any key may hold any type in a hostile file: only the expected shapes are read.
        names: list[str] = []
        project = _table(document.get("project"))
        names += [str(d) for d in _items(project.get("dependencies"))]
        for group in _table(project.get("optional-dependencies")).values():
            names += [str(d) for d in _items(group)]
        poetry = _table(_table(document.get("tool")).get("poetry"))
        names += list(_table(poetry.get("dependencies"))) + list(_table(poetry.get("dev-dependencies")))
        for section in ("packages", "dev-packages"):  # Pipfile
            names += list(_table(document.get(section)))
        where = FirstFind(text)
        for requirement in names:
            if match := _REQUIREMENT.match(requirement):
                yield Observation("pypi", normalise(match[1]), where.line(match[1]))


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
