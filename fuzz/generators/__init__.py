"""One module per format family. A generator is `gen(rng) -> Case`: a file name (its suffix picks the
reader, as on the command line) and the bytes of the file. Valid seeds are built in code, then mutated."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from fuzz import mutate


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes


Generator = Callable[[random.Random], Case]


def weighted(*choices: tuple[float, Generator]) -> Generator:
    weights = [w for w, _ in choices]
    gens = [g for _, g in choices]

    def pick(rng: random.Random) -> Case:
        return rng.choices(gens, weights)[0](rng)

    return pick


def raw_mutant(inner: Generator, rate: float = 0.35) -> Generator:
    """Sometimes the valid-but-hostile structure, sometimes its bytes mutated past any structure."""

    def gen(rng: random.Random) -> Case:
        case = inner(rng)
        if rng.random() < rate:
            return Case(case.name, mutate.mutate_bytes(rng, case.data))
        return case

    return gen


MAX_INPUT = 4 << 20


def capped(inner: Generator) -> Generator:
    """Inputs past a few MB are cut: size is fuzzed up to that, and a campaign keeps its pace."""

    def gen(rng: random.Random) -> Case:
        case = inner(rng)
        return case if len(case.data) <= MAX_INPUT else Case(case.name, case.data[:MAX_INPUT])

    return gen
