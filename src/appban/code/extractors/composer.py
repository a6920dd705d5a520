"""Composer (PHP): composer.json, composer.lock and vendor/composer/installed.json.

Shapes from Composer's documentation (getcomposer.org/doc/04-schema.md, 01-basic-usage.md): composer.json
names its own package (`name`, optionally `version`) and its dependencies under `require` and `require-dev`
as constraints (`^6.7`, `~4.1`, `dev-master`); composer.lock lists every installed package under `packages`
and `packages-dev`, each with `name` and the exact `version` installed; vendor/composer/installed.json holds
the same entries, as a list (Composer 1) or under `packages` (Composer 2). Platform requirements (`php`,
`ext-*`, `lib-*`, `composer-*`) are not packages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from appban import safejson
from appban.code.extractors._linear import linear
from appban.code.extractors._text import QuotedTokens, text_of
from appban.code.model import FileNames, Observation

KIND = "composer"
_NAME = linear(r"^[a-z0-9]([_.\-]?[a-z0-9]+)*/[a-z0-9](([_.]|-{1,2})?[a-z0-9]+)*$")  # the schema's name pattern
# An exact version as Composer writes it in a lock ("6.7.0", "v1.0.5", "2.0.0-beta.1"); "dev-master" and
# "1.x-dev" are branches, not versions.
_EXACT = linear(r"^v?[0-9]+(?:\.[0-9]+)*(?:-(?:alpha|beta|rc|RC|patch|pl|p)\.?[0-9]*)?$")
_MAX_VERSION = 64


def exact_version(text: Any) -> str | None:
    if isinstance(text, str) and len(text) <= _MAX_VERSION and _EXACT.match(text):
        return text
    return None


def _package(name: Any) -> str | None:
    if not isinstance(name, str) or len(name) > 214:
        return None
    lowered = name.lower()
    return lowered if _NAME.match(lowered) else None


class Composer:
    name = "composer"
    names = FileNames(frozenset({"composer.json", "composer.lock", "installed.json"}))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        text = text_of(data)
        document = safejson.loads(text)  # nesting, syntax and size errors are reported by the walker
        tokens = QuotedTokens(text)
        if name == "composer.json":
            if not isinstance(document, dict):
                return
            if (own := _package(document.get("name"))) is not None:
                version = exact_version(document.get("version"))
                yield Observation(KIND, own, tokens.line("name"), "package", version=version)
            for section in ("require", "require-dev"):
                deps = document.get(section)
                if isinstance(deps, dict):
                    for dep, constraint in deps.items():
                        if (package := _package(dep)) is not None:
                            detail = constraint if isinstance(constraint, str) else None
                            yield Observation(KIND, package, tokens.line(dep), detail, version=exact_version(detail))
            return
        entries: list[Any] = []
        if isinstance(document, list):  # Composer 1's installed.json
            entries = document
        elif isinstance(document, dict):
            for section in ("packages", "packages-dev"):
                listed = document.get(section)
                if isinstance(listed, list):
                    entries += listed
        for entry in entries:
            if isinstance(entry, dict) and (package := _package(entry.get("name"))) is not None:
                version = exact_version(entry.get("version"))
                yield Observation(KIND, package, tokens.line(entry["name"]), version=version)
