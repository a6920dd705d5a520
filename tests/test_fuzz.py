"""A short fuzzing budget in the normal test run (the long one is `make fuzz`, see FUZZING.md).

Each target replays every input kept in fuzz/corpus/<target>/ (each once failed) and a few hundred new
inputs from a fixed seed, in worker processes under a memory limit with a per-input time limit; any
crash, hang or out-of-memory fails the target's test with the failures listed. The service gets the
hand-written hostile requests, as a real process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzz import api
from fuzz.pool import Pool
from fuzz.run import failures_text, fuzz_target
from fuzz.targets import TARGETS

SEED = 20260
INPUTS = {"cli": 16, "code": 150}
DEFAULT_INPUTS = 120


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    # 15 s per input: generous (the slowest good input takes about 2 s on this shared machine), and short
    # enough that corpus inputs which still hang keep this file within a minute.
    with Pool(size=2, extra_mb=1536, timeout=15.0) as workers:
        yield workers


@pytest.mark.parametrize("target", list(TARGETS))
def test_no_crash_hang_or_oom(pool: Pool, target: str) -> None:
    stats = fuzz_target(pool, target, INPUTS.get(target, DEFAULT_INPUTS), SEED, save=False)
    assert stats.inputs >= INPUTS.get(target, DEFAULT_INPUTS)
    assert stats.failed() == 0, f"{stats.failed()} of {stats.inputs} inputs failed:\n{failures_text([stats])}"


def test_the_service_survives_hostile_requests(tmp_path: Path) -> None:
    result = api.ApiResult()
    with api.service(tmp_path) as server:
        api.hostile(server, result)
        assert server.alive()
    assert result.cases == len(api.hostile_cases()) + 1
    assert result.bad == []
