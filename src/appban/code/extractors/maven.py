"""Maven pom.xml: dependencies and plugins."""

from __future__ import annotations

from collections.abc import Iterator

from appban.code.extractors._linear import Match, linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, LineIndex, text_of
from appban.code.model import FileNames, Observation

# RE2 has no backreferences, so each element is its own alternative: (name, body) is groups (1, 2),
# (3, 4) or (5, 6), whichever matched.
_BLOCK = linear(r"(?s)<(dependency)>(.*?)</dependency>|<(plugin)>(.*?)</plugin>|<(parent)>(.*?)</parent>")
_TAG = linear(
    r"<(groupId)>\s*([^<\s]+)\s*</groupId>"
    r"|<(artifactId)>\s*([^<\s]+)\s*</artifactId>"
    r"|<(version)>\s*([^<\s]+)\s*</version>"
)


def _alternative(match: Match) -> tuple[str, str]:
    """(element name, captured text) of the alternative that matched."""
    first = next(group for group in (1, 3, 5) if match[group] is not None)
    return match[first], match[first + 1]


class Maven:
    name = "maven"
    names = FileNames(frozenset({"pom.xml"}), (".pom",))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        text = text_of(data, MAX_MANIFEST_BYTES)
        lines = LineIndex(text)
        for block in _BLOCK.finditer(text):
            _, body = _alternative(block)
            fields = dict(_alternative(tag) for tag in _TAG.finditer(body))
            if "groupId" in fields and "artifactId" in fields:
                yield Observation(
                    "maven",
                    f"{fields['groupId']}:{fields['artifactId']}",
                    lines.line(block.start()),
                    fields.get("version"),
                )
