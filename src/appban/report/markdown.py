"""GitHub-flavoured Markdown reports: a pull-request comment, or a job summary (`>> "$GITHUB_STEP_SUMMARY"`).

Every cell is text from the inputs, so it is escaped: a `|` would end the cell, a newline the row, and `<`,
`>`, `&`, `*`, `_`, `` ` ``, `[` and `]` would become markup, HTML or links in a comment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

# GitHub refuses comments over 65,536 characters; a job summary may hold 1 MiB. Tables stop well before.
MAX_ROWS = 200

_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "#": "\\#",
        "\r": " ",
        "\n": " ",
    }
)


def cell(value: object) -> str:
    """One value as the text of a table cell or a line: escaped, on one line, cut at 300 characters."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ", ".join(str(item) for item in value)
    text = str(value)
    if len(text) > 300:
        text = text[:299] + "…"
    return text.translate(_ESCAPES)


def code(value: object) -> str:
    """A value as inline code (ids, versions); backticks inside are dropped, as code spans cannot hold them."""
    return f"`{str(value).replace('`', '')}`"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], limit: int = MAX_ROWS) -> str:
    """A table; past `limit` rows, a line saying how many more there are."""
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    more = 0
    for number, row in enumerate(rows):
        if number >= limit:
            more += 1
            continue
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    if more:
        lines.append("")
        lines.append(f"… and {more:,} more rows (see the JSON or CSV output for all).")
    return "\n".join(lines)


def facts(items: Mapping[str, object]) -> str:
    """Named values as a list: `- **name**: value`."""
    return "\n".join(f"- **{cell(name)}**: {cell(value)}" for name, value in items.items())


def document(title: str, sections: Iterable[tuple[str, str]]) -> str:
    """A report: a level-2 heading (a job summary holds several tools' reports under its own), then sections."""
    parts = [f"## {cell(title)}"]
    for heading, body in sections:
        if heading:
            parts.append(f"### {cell(heading)}")
        parts.append(body)
    return "\n\n".join(part for part in parts if part) + "\n"
