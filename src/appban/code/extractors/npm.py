"""npm: package.json, package-lock.json / npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from appban.code.extractors._text import lines, text_of
from appban.code.model import Observation

_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies", "bundledDependencies")
_YARN = re.compile(r"""^"?((?:@[^@/"\s]+/)?[^@/"\s,]+)@""")
_PNPM = re.compile(r"""^\s{2}['"]?/?((?:@[^@/'"\s]+/)?[^@/'"\s(]+)@""")


def _line_of(text: str, needle: str) -> int | None:
    found = text.find(needle)
    return text.count("\n", 0, found) + 1 if found >= 0 else None


class Npm:
    name = "npm"

    def wants(self, name: str, head: bytes) -> bool:
        return name in {"package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml"}

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if name == "yarn.lock":
            for number, line in lines(data):
                if line and not line.startswith((" ", "#")) and (match := _YARN.match(line)):
                    yield Observation("npm", match[1], number)
            return
        if name == "pnpm-lock.yaml":
            for number, line in lines(data):
                if match := _PNPM.match(line):
                    yield Observation("npm", match[1], number)
            return
        text = text_of(data)
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            return
        if not isinstance(document, dict):
            return
        if name == "package.json":
            own = document.get("name")
            if isinstance(own, str):
                yield Observation("npm", own, _line_of(text, '"name"'), "package")
            for section in _SECTIONS:
                deps = document.get(section)
                if isinstance(deps, dict):
                    for dep, version in deps.items():
                        yield Observation("npm", dep, _line_of(text, f'"{dep}"'), str(version))
            return
        packages = document.get("packages")
        if isinstance(packages, dict):
            for key in packages:
                if "node_modules/" in key:
                    dep = key.rsplit("node_modules/", 1)[1]
                    yield Observation("npm", dep, _line_of(text, f'"{key}"'))
        deps = document.get("dependencies")
        if isinstance(deps, dict):
            for dep in deps:
                yield Observation("npm", dep, _line_of(text, f'"{dep}"'))
