"""DEX files (alone or as classes*.dex inside APKs/AABs): class names and telling strings."""

from __future__ import annotations

from collections.abc import Iterator

from appban.code.binary import MalformedBinary, class_names, read_dex
from appban.code.model import Observation


class Dex:
    name = "dex"

    def __init__(self, url_needles: list[str], package_names: set[str]):
        self.needles = [n.casefold() for n in url_needles]
        self.packages = package_names  # string constants naming a covered app's package

    def wants(self, name: str, head: bytes) -> bool:
        return head.startswith(b"dex\n") or (not head and name.endswith(".dex"))

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        try:
            info = read_dex(data)
        except MalformedBinary as exc:
            raise ValueError(f"malformed DEX: {exc}") from None
        for class_name in class_names(info):
            yield Observation("java", class_name, None, "dex class")
        for text in info.strings:
            if text in self.packages:
                yield Observation("android_packages", text, None, "dex string")
            elif "." in text and len(text) < 2048:
                lowered = text.casefold()
                if any(needle in lowered for needle in self.needles):
                    yield Observation("url", text, None, "dex string")
