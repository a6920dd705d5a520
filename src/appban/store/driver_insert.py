"""Rows inserted straight through the database driver, for the audit store's busiest write.

Going through SQLAlchemy's execution machinery costs about 100 µs per statement (execution context,
events, the pool), while SQLite itself commits a few small rows in about 40 µs. A server that records
every answer before sending it pays that on every request. `DriverInsert` compiles the INSERT once for
the engine's dialect and passes each value through its column type's own bind processor, so the rows it
stores are those SQLAlchemy would have stored (a test compares the two).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, Table, insert


class DriverInsert:
    """`INSERT INTO table` of whole rows, given as mappings of column name to Python value."""

    def __init__(self, engine: Engine, table: Table) -> None:
        dialect = engine.dialect
        if not dialect.positional:
            raise ValueError(f"{dialect.name}: a driver insert needs a positional parameter style")
        compiled = insert(table).compile(dialect=dialect)
        self.sql = compiled.string
        self.columns: tuple[str, ...] = tuple(compiled.positiontup or ())
        processors: list[Callable[[Any], Any] | None] = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.columns
        ]
        self._processors = tuple(zip(self.columns, processors, strict=True))

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] if process is None else process(row[name]) for name, process in self._processors)
