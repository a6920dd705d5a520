"""Maven pom.xml: dependencies and plugins."""

from __future__ import annotations

import re
from collections.abc import Iterator

from appban.code.extractors._text import line_at, text_of
from appban.code.model import Observation

_BLOCK = re.compile(r"<(dependency|plugin|parent)>(.*?)</\1>", re.DOTALL)
_TAG = re.compile(r"<(groupId|artifactId|version)>\s*([^<\s]+)\s*</\1>")


class Maven:
    name = "maven"

    def wants(self, name: str, head: bytes) -> bool:
        return name == "pom.xml" or name.endswith(".pom")

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        text = text_of(data)
        for block in _BLOCK.finditer(text):
            fields = {tag: value for tag, value in _TAG.findall(block[2])}
            if "groupId" in fields and "artifactId" in fields:
                yield Observation(
                    "maven",
                    f"{fields['groupId']}:{fields['artifactId']}",
                    line_at(text, block.start()),
                    fields.get("version"),
                )
