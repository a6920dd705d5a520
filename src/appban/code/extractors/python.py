"""Python: requirements files, pyproject.toml, Pipfile(.lock), poetry.lock and uv.lock."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

from appban import safejson
from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, FirstFind, lines, text_of
from appban.code.model import FileNames, Observation, Skipped

_REQUIREMENT = linear(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)")
_LOCK_NAME = linear(r'^name\s*=\s*"([^"]+)"')
_LOCK_VERSION = linear(r'^version\s*=\s*"([^"]+)"')
# A requirement pinned to one release: "name==1.2.3" or "name[extra] == 1.2.3 ; marker" (not "==1.*").
_PIN = linear(r"^[A-Za-z0-9][A-Za-z0-9._\-]*\s*(?:\[[^\]]*\])?\s*===?\s*([0-9][0-9A-Za-z.+!_\-]*)\s*(?:[;#].*)?$")
# A PEP 440 version as written in metadata and locks (a public version, with an optional local part). An
# epoch ("1!2.0", PEP 440 "Version epochs") orders releases across a change of scheme and is part of the
# version: the package URL keeps it, percent-encoded as "1%212.0".
_VERSION = linear(
    r"^v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*(?:[._\-]?(?:a|b|rc|alpha|beta|c|pre|preview|post|rev|r|dev)[._\-]?[0-9]*)*"
    r"(?:\+[A-Za-z0-9.]+)?$"
)
_MAX_VERSION = 64
# Each match is one maximal run of a single class, so even `re` cannot backtrack here.
_SEPARATORS = re.compile(r"[-_.]+")


def normalise(name: str) -> str:
    """PEP 503: case and runs of '-', '_', '.' do not distinguish distributions."""
    return _SEPARATORS.sub("-", name).lower()


class Python:
    name = "python"

    # METADATA / PKG-INFO: an installed or packaged distribution's own name.
    names = FileNames(
        frozenset({"pyproject.toml", "pipfile", "pipfile.lock", "poetry.lock", "uv.lock", "constraints.txt",
                   "metadata", "pkg-info"}),
        prefixed=(("requirements", (".txt", ".in")),),
    )  # fmt: skip

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if name in {"metadata", "pkg-info"}:
            yield from self._metadata(data)
        elif name.endswith((".txt", ".in")):
            for number, line in lines(data):
                stripped = line.strip()
                if stripped and not stripped.startswith(("#", "-")) and (match := _REQUIREMENT.match(stripped)):
                    # "name==1.8.18" (PEP 440 version matching, no wildcard) pins that release.
                    pin = _PIN.match(stripped)
                    version = _version(pin[1]) if pin else None
                    yield Observation("pypi", normalise(match[1]), number, version=version)
        elif name in {"poetry.lock", "uv.lock"}:
            # Each [[package]] table: name = "...", then version = "..." (the version the lock resolved).
            held: tuple[str, int] | None = None
            for number, line in lines(data):
                if line.startswith("[["):
                    if held is not None:
                        yield Observation("pypi", held[0], held[1])
                    held = None
                elif line.startswith("name") and (match := _LOCK_NAME.match(line)):
                    if held is not None:
                        yield Observation("pypi", held[0], held[1])
                    held = (normalise(match[1]), number)
                elif held is not None and line.startswith("version") and (match := _LOCK_VERSION.match(line)):
                    yield Observation("pypi", held[0], held[1], version=_version(match[1]))
                    held = None
            if held is not None:
                yield Observation("pypi", held[0], held[1])
        elif name == "pipfile.lock":
            document = _table(safejson.loads(text_of(data)))  # errors are reported by the walker
            for section in ("default", "develop"):
                for dep, entry in _table(document.get(section)).items():
                    pinned = _table(entry).get("version")
                    version = _version(pinned[2:]) if isinstance(pinned, str) and pinned.startswith("==") else None
                    yield Observation("pypi", normalise(dep), None, version=version)
        else:
            yield from self._toml(data)

    def _metadata(self, data: bytes) -> Iterator[Observation]:
        """Core metadata (METADATA in a wheel's .dist-info, PKG-INFO in an sdist or .egg-info): the
        distribution's own Name and Version, among the header fields before the first blank line."""
        name: tuple[str, int] | None = None
        version: str | None = None
        for number, line in lines(data):
            if not line.strip():
                break
            if line.startswith("Name:") and name is None:
                name = (normalise(line[5:].strip()), number)
            elif line.startswith("Version:") and version is None:
                version = _version(line[8:].strip())
            if name is not None and version is not None:
                break
        if name is not None and name[0]:
            yield Observation("pypi", name[0], name[1], "distribution", version=version)

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


def _version(text: str) -> str | None:
    """An exact version, or None when the text is not one (a wildcard, a range, a variable)."""
    text = text.strip()
    return text if len(text) <= _MAX_VERSION and _VERSION.match(text.lower()) else None
