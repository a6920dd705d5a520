"""A self-contained HTML report: summary tables and the findings, escaped, no scripts or external assets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from html import escape

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;
vertical-align:top}th{background:#f6f8fa}
.prohibited{color:#b42318;font-weight:600}.enjoined{color:#b54708;font-weight:600}
.not_yet_effective{color:#175cd3}.revoked{color:#6941c6}.not_prohibited{color:#067647}
.meta{color:#57606a}
"""


def _cell(value: object) -> str:
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value))
    if value is None:
        return ""
    return escape(str(value))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], verdict_column: str | None = None) -> str:
    index = headers.index(verdict_column) if verdict_column in headers else -1
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            css = f' class="{escape(str(value))}"' if i == index else ""
            cells.append(f"<td{css}>{_cell(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def document(title: str, meta: Mapping[str, object], sections: Sequence[tuple[str, str]]) -> str:
    info = " · ".join(f"{escape(k)}: {escape(str(v))}" for k, v in meta.items())
    parts = "".join(f"<h2>{escape(heading)}</h2>{html}" for heading, html in sections)
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f'<p class="meta">{info} · generated {generated}</p>{parts}</body></html>\n'
    )
