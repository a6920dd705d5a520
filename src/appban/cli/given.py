"""Paths as the user typed them: a `pathlib.Path` folds `s3://bucket/key` to `s3:/bucket/key`, and an empty
authority (`hdfs:///data`) cannot be told from a host (`hdfs://data`) afterwards. File arguments and `-o`
parse into `GivenPath`, a Path (every in-process use is unchanged) that keeps the text for `--engine` runs,
which read and write URLs (appban.distributed.locations)."""

from __future__ import annotations

from pathlib import Path


class GivenPath(type(Path())):  # type: ignore[misc]  # the concrete class: Path itself cannot be subclassed in 3.11
    """A Path that remembers the text it was given (`given`)."""

    given: str

    def __new__(cls, text: str) -> GivenPath:
        made: GivenPath = super().__new__(cls, text)
        made.given = text
        return made


def given(path: Path | str) -> str:
    """The text a path was given as (a GivenPath's own text; else its str)."""
    return str(getattr(path, "given", path))


def path(text: str) -> Path:
    """The `parser` of file arguments and -o (named `path`: typer shows a parser's name as the type)."""
    return GivenPath(text)
