"""Which generator feeds which target (the parent side; workers only need fuzz.targets)."""

from __future__ import annotations

import random

from fuzz.generators import Case, Generator
from fuzz.generators.code import code_inputs
from fuzz.generators.iso20022 import payment_xml
from fuzz.generators.netlogs import network_logs
from fuzz.generators.questions import questions
from fuzz.generators.tables import decide_tables, inventory_tables, payment_tables

_CLI_FEEDS: tuple[tuple[str, Generator], ...] = (
    ("decide", decide_tables),
    ("decide.table", decide_tables),
    ("inventory", inventory_tables),
    ("inventory.html", inventory_tables),
    ("payments", payment_tables),
    ("payments", payment_xml),
    ("payments.table", payment_xml),
    ("network", network_logs),
    ("network.table", network_logs),
    ("scan", code_inputs),
    ("scan.table", code_inputs),
    ("check", questions),
    ("timeline", questions),
    ("mdm", questions),
    ("blocklist", questions),
)


def cli_inputs(rng: random.Random) -> Case:
    command, inner = rng.choice(_CLI_FEEDS)
    case = inner(rng)
    return Case(f"{command}--{case.name}", case.data)


GENERATORS: dict[str, Generator] = {
    "decide": decide_tables,
    "inventory": inventory_tables,
    "payments_table": payment_tables,
    "payments_xml": payment_xml,
    "network": network_logs,
    "code": code_inputs,
    "check": questions,
    "cli": cli_inputs,
}
