"""A cluster task parses its file on its own thread (appban.reading.chunks.parse_threads), and screens it
a reader batch at a time.

A worker's task slots are its cores; a reader that parsed on a pool of threads would take the core of the
task beside it. These tests count the threads a read parses on, inside and outside the block, and check
that the payment file screener (what every Spark and Dask payment task runs) reads on the calling thread
and still gives, row for row, what it gives on the reader's pool.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from appban.distributed import core, payments
from appban.distributed.payments import ORDER, FileFactory, split_payments
from appban.payments.readers.table import PaymentTableReader
from appban.reading import chunks
from appban.reading.chunks import parse_in_order, parse_threads
from appban.reading.stats import ReadStats
from appban.screen.payments import PaymentOptions, read_payments, screen_payments

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "payments" / "processor-export.csv"


def _parsing_threads(jobs: int, workers: int | None = None) -> set[int]:
    """The threads `parse_in_order` ran its parse on, for `jobs` jobs (in order, whichever they are)."""
    seen: set[int] = set()

    def parse(job: int, stats: ReadStats) -> pa.RecordBatch:
        seen.add(threading.get_ident())
        return pa.record_batch({"job": [job]})

    batches = list(parse_in_order(range(jobs), parse, ReadStats(), ReadStats(), workers))
    assert [batch.column(0)[0].as_py() for batch in batches] == list(range(jobs))
    return seen


def test_parse_threads_keeps_a_read_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunks, "WORKERS", 2)
    assert threading.get_ident() not in _parsing_threads(4)  # the pool
    with parse_threads(1):
        assert _parsing_threads(4) == {threading.get_ident()}
        assert threading.get_ident() not in _parsing_threads(4, workers=2)  # a caller's own count still wins
    assert threading.get_ident() not in _parsing_threads(4)  # the block's setting ends with it


def test_parse_threads_is_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """One task's setting is not another's: a Dask worker runs its tasks on threads side by side."""
    monkeypatch.setattr(chunks, "WORKERS", 2)
    inside = threading.Event()
    done = threading.Event()
    other: list[set[int]] = []

    def task() -> None:
        with parse_threads(1):
            inside.set()
            done.wait(timeout=30)

    thread = threading.Thread(target=task)
    thread.start()
    try:
        assert inside.wait(timeout=30)
        other.append(_parsing_threads(4))
    finally:
        done.set()
        thread.join()
    assert threading.get_ident() not in other[0]


@pytest.fixture
def big_export(tmp_path: Path) -> Path:
    """The example export repeated to many small chunks of lines."""
    header, *rows = EXAMPLE.read_text().splitlines()
    path = tmp_path / "export.csv"
    path.write_text("\n".join([header, *(rows * 60)]) + "\n")
    return path


def test_payment_file_task_reads_on_its_own_thread(big_export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 4096)  # dozens of chunks: a pool would share them out
    monkeypatch.setattr(chunks, "WORKERS", 2)
    seen: set[int] = set()
    batch = PaymentTableReader._batch

    def counted(self: PaymentTableReader, *args: Any, **kwargs: Any) -> Any:
        seen.add(threading.get_ident())
        return batch(self, *args, **kwargs)

    monkeypatch.setattr(PaymentTableReader, "_batch", counted)
    factory = FileFactory.of(PaymentOptions())
    screener = factory()
    # What every cluster task runs for a file (core.screen_paths), whatever screener it is.
    tasked = core.screen_paths([str(big_export)], factory, core.path_schema(factory), core.Knowledge.current())
    out = pa.Table.from_batches(list(tasked)).drop_columns(list(core.KNOWLEDGE_NAMES))
    assert seen == {threading.get_ident()}
    # The same rows as the file read on the reader's pool (what `appban screen payments` does in process).
    seen.clear()
    pooled = pa.Table.from_batches(list(screener.screen_file(str(big_export))), schema=out.schema)
    assert seen and threading.get_ident() not in seen
    payments, apart, errors = split_payments(out)
    assert payments.num_rows > 100 and errors  # bad rows reported with their lines
    assert (payments, apart, errors) == split_payments(pooled)


def test_payment_file_task_in_many_groups_equals_screen_payments(
    big_export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task screens a batch of records at a time (TASK_GROUP_ROWS); in batches of 128 records, the file's
    1,500 rows in a dozen groups give what the in-process command gives in one."""
    monkeypatch.setattr(payments, "read_payments", functools.partial(read_payments, batch_rows=128))
    monkeypatch.setattr(payments, "TASK_GROUP_ROWS", 128)
    out = FileFactory.of(PaymentOptions())().screen_path(str(big_export))
    expected = screen_payments([big_export], PaymentOptions())
    got, apart, errors = split_payments(out)
    assert got.to_pylist() == expected.payments.sort_by(ORDER).to_pylist()
    assert apart.to_pylist() == expected.apart.sort_by(ORDER).to_pylist()
    assert sorted(errors) == sorted(expected.errors) and errors
