"""Network logs: Zeek TSV/JSON (dns, ssl, http), BIND and dnsmasq query logs, nfdump CSV, VPC flow logs
and generic CSV/JSON Lines; fields swapped for hostile values, headers bent, lines multiplied, compressed."""

from __future__ import annotations

import json
import random

from fuzz import mutate
from fuzz.generators import MAX_INPUT, Case, capped, raw_mutant
from fuzz.generators.compress import gz, zstd
from tests import test_network_readers as samples

SEEDS: dict[str, str] = {name: text for name, (text, _) in samples.SAMPLES.items()}
SEEDS["vpc-v5.log"] = (
    "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr "
    "pkt-dstaddr protocol bytes packets start end action tcp-flags log-status\n"
    "5 vpc-1 subnet-1 i-1 eni-1 123 IPv4 192.0.2.10 203.0.113.5 49761 443 192.0.2.10 203.0.113.5 6 4249 20 "
    "1600574462 1600574522 ACCEPT 2 OK\n"
)
SEEDS["queries.jsonl"] = (
    '{"ts": "2020-09-20T04:01:02Z", "host": "www.tiktok.com", "client": "192.0.2.10"}\n'
    '{"ts": 1600574462, "host": "weixin.qq.com", "client": "2001:db8::1", "bytes": 10}\n'
)

HOSTS = ("www.tiktok.com", "weixin.qq.com", "v16.tiktokcdn.com", "x." * 200 + "com", "TIKTOK.COM.", "*.tiktok.com",
         "xn--tiktok-9ya.com", "tiktok.com\x00.evil", "..", "-", "(empty)", "")  # fmt: skip
ADDRESSES = ("192.0.2.10", "2001:db8::1", "::ffff:1.2.3.4", "999.1.1.1", "1.2.3.4/33", "fe80::1%eth0", "-", "")


def _field(rng: random.Random) -> str:
    return rng.choice(
        (mutate.pick_hostile(rng), rng.choice(HOSTS), rng.choice(ADDRESSES), str(rng.randrange(-1, 2**64)))
    )


def _mutate_line(rng: random.Random, line: str) -> str:
    if line.lstrip().startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return line
        if isinstance(record, dict) and record:
            key = rng.choice(list(record))
            record[key] = rng.choice((_field(rng), 2**70, -1e308, None, [1], {"a": 1}, True))
            return json.dumps(record)
        return line
    sep = "\t" if "\t" in line else "," if "," in line and " " not in line.split(",")[0] else " "
    fields = line.split(sep)
    action = rng.randrange(4)
    if action == 0:
        fields[rng.randrange(len(fields))] = _field(rng)
    elif action == 1:
        fields = fields[: rng.randrange(len(fields) + 1)]
    elif action == 2:
        fields += [_field(rng) for _ in range(rng.randint(1, 50))]
    else:
        i = rng.randrange(len(fields))
        fields[i] = (fields[i] * rng.choice((2, 1000)))[: 1 << 20]
    return sep.join(fields)[: 2 << 20]


def gen(rng: random.Random) -> Case:
    name = rng.choice(list(SEEDS))
    lines = SEEDS[name].splitlines()
    for _ in range(rng.choice((0, 1, 2, 5, 20))):
        if lines:
            i = rng.randrange(len(lines))
            lines[i] = _mutate_line(rng, lines[i])
    if lines and rng.random() < 0.1 and sum(map(len, lines)) < 20000:
        lines = lines[:1] + lines[1:] * rng.choice((50, 2000))
    if rng.random() < 0.05:
        lines.insert(rng.randrange(len(lines) + 1), mutate.deep_json(rng))
    if rng.random() < 0.05 and name.endswith(".log") and lines and lines[0].startswith("#"):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(("#fields\t", "#types", "#fields\t" + "a\t" * 5000)))
    text = "\n".join(lines)[: MAX_INPUT // 2] + "\n"
    if rng.random() < 0.2:
        text = mutate.line_ends(rng, text)
    data = mutate.encode_text(rng, text)
    wrap = rng.random()
    if wrap < 0.12:
        name, data = name + ".gz", gz(data)
    elif wrap < 0.2:
        name, data = name + ".zst", zstd(data)
    return Case(name, data)


network_logs = capped(raw_mutant(gen, rate=0.2))
