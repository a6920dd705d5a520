"""npm: package.json, package-lock.json / npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml."""

from __future__ import annotations

from collections.abc import Iterator

from appban import safejson
from appban.code.extractors._linear import linear
from appban.code.extractors._text import QuotedTokens, lines, text_of
from appban.code.model import FileNames, Observation

_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies", "bundledDependencies")
_YARN = linear(r"""^"?((?:@[^@/"\s]+/)?[^@/"\s,]+)@""")
_PNPM = linear(r"""^\s{2}['"]?/?((?:@[^@/'"\s]+/)?[^@/'"\s(]+)@""")


class Npm:
    name = "npm"
    names = FileNames(
        frozenset({"package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml"})
    )

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if name == "yarn.lock":
            for number, line in lines(data):
                if line and not line.startswith((" ", "#")) and "@" in line and (match := _YARN.match(line)):
                    yield Observation("npm", match[1], number)
            return
        if name == "pnpm-lock.yaml":
            for number, line in lines(data):
                if "@" in line and (match := _PNPM.match(line)):
                    yield Observation("npm", match[1], number)
            return
        text = text_of(data)
        document = safejson.loads(text)  # nesting, syntax and size errors are reported by the walker
        if not isinstance(document, dict):
            return
        tokens = QuotedTokens(text)
        if name == "package.json":
            own = document.get("name")
            if isinstance(own, str):
                version = document.get("version")
                pinned = version if isinstance(version, str) else None
                yield Observation("npm", own, tokens.line("name"), "package", version=pinned)
            for section in _SECTIONS:
                deps = document.get(section)
                if isinstance(deps, dict):
                    for dep, version in deps.items():
                        yield Observation("npm", dep, tokens.line(dep), str(version))
            return
        packages = document.get("packages")
        if isinstance(packages, dict):
            for key in packages:
                if "node_modules/" in key:
                    dep = key.rsplit("node_modules/", 1)[1]
                    entry = packages[key]
                    version = entry.get("version") if isinstance(entry, dict) else None
                    pinned = version if isinstance(version, str) else None  # a lock file's resolved version
                    yield Observation("npm", dep, tokens.line(key), version=pinned)
        deps = document.get("dependencies")
        if isinstance(deps, dict):
            for dep in deps:
                yield Observation("npm", dep, tokens.line(dep))
