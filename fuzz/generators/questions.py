"""One decision question (`appban check`): app, transaction, place, instant, zone and facts, one per line.

Instants are the richest part: calendar edges, offsets past a day, NUL, fractions, >64-bit years."""

from __future__ import annotations

import random

from fuzz import mutate
from fuzz.generators import Case
from fuzz.generators.tables import APPS, INSTANTS, PLACES, TRANSACTIONS

EDGE_INSTANTS = (
    "0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00-00:01",
    "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59.999999-23:59",
    "0001-01-01", "9999-12-31", "2020-09-20T12:00:00", "2020-09-20T12:00:00\x00", "\x002020-09-20T12:00:00Z",
    "2020-09-20T12:00:00+24:00", "2020-09-20T12:00:00.1234567891234Z", "2020-W38-7T12:00:00Z", "2020-264",
    "2020-09-20T12:00Z", "2020-09-20 12:00:00+00:00", " 2020-09-20T12:00:00Z ", "2020-09-20T12:00:00z",
    "2020-09-20T12:00:00+00:00:01", "2020-09-20T12:00:00+0000", "1600574462", "", "Z", "-",
    "10000-01-01T00:00:00Z", "2020-09-20T12:00:00" + "0" * 10000 + "Z",
)  # fmt: skip
ZONES = ("", "UTC", "America/New_York", "Etc/GMT+14", "Pacific/Kiritimati", "-05:00", "+14:00", "-23:59",
         "+99:00", "../../etc/passwd", "Nope/Nowhere", "\x00", "America/New_York\x00", "local", "EST5EDT",
         "posixrules")  # fmt: skip


def gen(rng: random.Random) -> Case:
    fields = [
        rng.choice(APPS),
        rng.choice(TRANSACTIONS),
        rng.choice(PLACES),
        rng.choice(EDGE_INSTANTS + INSTANTS),
        rng.choice(ZONES),
        rng.choice(("", "user_to_user_transfer=true", "x=1", "=", "a" * 10000 + "=b", "purpose=SALA")),
    ]
    for _ in range(rng.choice((0, 0, 1, 2))):
        fields[rng.randrange(len(fields))] = mutate.pick_hostile(rng).replace("\n", " ")
    data = "\n".join(fields).encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        data = mutate.mutate_bytes(rng, data, rounds=1)
    return Case("question.txt", data)


questions = gen
