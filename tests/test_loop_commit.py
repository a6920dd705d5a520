"""Group commit on the event loop: records of requests answered together share one write."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from appban.store.loop_commit import LoopCommitter


def test_records_submitted_together_share_one_write_and_later_ones_get_their_own() -> None:
    writes: list[list[int]] = []
    committer: LoopCommitter[int] = LoopCommitter(lambda items: writes.append(list(items)))

    async def main() -> None:
        await asyncio.gather(*(committer.commit(i) for i in range(5)))
        await committer.commit(5)

    asyncio.run(main())
    assert writes == [[0, 1, 2, 3, 4], [5]]


def test_records_a_few_loop_turns_behind_join_the_burst() -> None:
    writes: list[list[str]] = []
    committer: LoopCommitter[str] = LoopCommitter(lambda items: writes.append(list(items)))

    async def after(turns: int, item: str) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)  # one turn of the loop
        await committer.commit(item)

    async def main() -> None:
        await asyncio.gather(after(0, "first"), after(1, "one turn behind"), after(2, "two turns behind"),
                             after(40, "much later"))  # fmt: skip

    asyncio.run(main())
    assert writes == [["first", "one turn behind", "two turns behind"], ["much later"]]


def test_a_failed_write_fails_every_record_in_it_and_the_next_burst_writes_again() -> None:
    attempts: list[list[str]] = []

    def write(items: Sequence[str]) -> None:
        attempts.append(list(items))
        if len(attempts) == 1:
            raise OSError("disk full")

    committer: LoopCommitter[str] = LoopCommitter(write)

    async def main() -> list[BaseException | None]:
        outcomes = await asyncio.gather(committer.commit("a"), committer.commit("b"), return_exceptions=True)
        await committer.commit("c")
        return outcomes

    outcomes = asyncio.run(main())
    assert [type(o) for o in outcomes] == [OSError, OSError]
    assert attempts == [["a", "b"], ["c"]]


def test_the_loop_runs_on_while_a_write_waits_for_the_disk_and_records_queued_meanwhile_go_together() -> None:
    writes: list[list[str]] = []
    disk = threading.Event()  # the first write "syncs" until the loop has queued more records

    def write(items: Sequence[str]) -> None:
        writes.append(list(items))
        if len(writes) == 1:
            assert disk.wait(30), "the loop did not run while the write was in flight"

    committer: LoopCommitter[str] = LoopCommitter(write)

    async def main() -> None:
        first = asyncio.ensure_future(committer.commit("a"))
        while not writes:  # the first write has started, on its own thread
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(committer.commit(item)) for item in "bcd"]
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(writes) == 1 and not first.done()  # nothing is answered before its write is done
        disk.set()
        await asyncio.gather(first, *later)

    asyncio.run(main())
    committer.close()
    assert writes == [["a"], ["b", "c", "d"]]
