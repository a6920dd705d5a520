"""The rulebook as plain data for readers: the list of instruments and one instrument or item in full.

The command line and the HTTP service show the same views, so they are built here once.
"""

from __future__ import annotations

from typing import Any

from appban.engine.instants import iso
from appban.rulebook.loader import Rulebook


def instrument_summaries(book: Rulebook) -> list[dict[str, Any]]:
    """Every instrument, oldest first: id, kind, when it was made, title, citation and the ids of its items."""
    instruments = sorted(book.instruments.values(), key=lambda i: (i.made.instant, i.id))
    return [
        {
            "id": i.id,
            "kind": i.kind,
            "made": iso(i.made.instant),
            "made_event": i.made.event,
            "made_hour_known": not i.made.date_only,
            "title": i.title,
            "short_title": i.short_title,
            "cite": i.citation.cite,
            "url": str(i.citation.url) if i.citation.url else None,
            "items": [item.id for owner, item in book.items() if owner is i],
        }
        for i in instruments
    ]


def item_view(book: Rulebook, item_id: str) -> dict[str, Any] | None:
    """One instrument, or one prohibition, exception, change or authorisation with its instrument's citation."""
    found = book.find(item_id)
    if found is None:
        return None
    instrument, item = found
    data: dict[str, Any] = item.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if item is not instrument:
        data = {"instrument": instrument.id, "instrument_citation": instrument.citation.cite, **data}
    return data
