"""Benchmark helpers for the ISO 20022 credit-transfer reader: a generated pacs.008 file and three passes over it.

`generate_pacs008` streams a realistic pacs.008.001.08 message (FI-to-FI customer credit transfers) of
about the size asked for: U.S. and foreign banks and addresses, private persons (`PrvtId`) and
organisations (`OrgId`), some intermediary agents and purpose codes, and a few percent of transfers to
Tenpay (WeChat Pay's operator) or with "WeChat Pay" in the remittance information.

The passes:
- `count_pass`: the floor, a plain `lxml.etree.iterparse` over every end event that only counts and clears;
- `full_tree`: `lxml.etree.parse` of the whole file, the memory the streaming reader avoids;
- `appban_pass`: `Iso20022Reader` end to end, Arrow batches included.
`full_tree` and `appban_pass` run in a fresh interpreter each, so their peak RSS figures are comparable.

    .venv/bin/python bench/payments_xml.py [--mb 50] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from lxml import etree

NS = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
TENPAY = "Tenpay Payment Technology Co., Ltd."

# (BIC, country): large correspondent and retail banks, so BIC countries vary like real traffic.
US_BANKS = [("CHASUS33XXX", "US"), ("BOFAUS3NXXX", "US"), ("CITIUS33XXX", "US"), ("WFBIUS6SXXX", "US"),
            ("PNCCUS33XXX", "US"), ("USBKUS44XXX", "US")]  # fmt: skip
FOREIGN_BANKS = [("DEUTDEFFXXX", "DE"), ("BNPAFRPPXXX", "FR"), ("HSBCGB2LXXX", "GB"), ("ICBKCNBJXXX", "CN"),
                 ("BKCHCNBJXXX", "CN"), ("MHCBJPJTXXX", "JP"), ("BNMXMXMMXXX", "MX"), ("SBININBBXXX", "IN"),
                 ("ROYCCAT2XXX", "CA"), ("UBSWCHZHXXX", "CH")]  # fmt: skip
TENPAY_AGENT = ("ICBKCNBJSZN", "CN")
US_PLACES = [("New York", "NY", "10001"), ("Chicago", "IL", "60601"), ("Houston", "TX", "77002"),
             ("San Francisco", "CA", "94105"), ("Seattle", "WA", "98101"), ("Miami", "FL", "33131")]  # fmt: skip
FOREIGN_PLACES = {"DE": ("Frankfurt am Main", "60311"), "FR": ("Paris", "75002"), "GB": ("London", "EC2V 7HH"),
                  "CN": ("Shenzhen", "518057"), "JP": ("Tokyo", "100-0005"), "MX": ("Ciudad de Mexico", "06600"),
                  "IN": ("Mumbai", "400001"), "CA": ("Toronto", "M5J 2J5"), "CH": ("Zurich", "8001")}  # fmt: skip
GIVEN = ["James", "Maria", "Wei", "Aiko", "Carlos", "Priya", "Olivia", "Lukas", "Fatima", "Noah", "Chloe", "Ravi"]
FAMILY = ["Smith", "Garcia", "Zhang", "Tanaka", "Muller", "Patel", "Johnson", "Dubois", "Kim", "Brown", "Lopez"]
COMPANIES = ["Acme Industrial Supply Inc.", "Northwind Traders LLC", "Globex Logistics GmbH", "Initech Software Ltd",
             "Umbrella Components S.A.", "Stark Freight Co.", "Wayne Consulting Group", "Hooli Retail Holdings",
             "Soylent Foods SA de CV", "Vandelay Import Export Corp."]  # fmt: skip
PURPOSES = ["SALA", "SUPP", "TRAD", "GDDS", "SCVE", "RENT", "INTC", "TAXS"]
CURRENCIES = ["USD"] * 6 + ["EUR", "EUR", "GBP", "CNY", "JPY", "MXN", "CAD"]
STREETS = ["Main Street", "Park Avenue", "Market Street", "High Street", "Bahnhofstrasse", "Rue de Rivoli"]


def _party(tag: str, rng: np.random.Generator, us: bool, organisation: bool, name: str | None = None) -> str:
    country = "US" if us else "CN" if name == TENPAY else str(rng.choice(list(FOREIGN_PLACES)))
    if name is None:
        if organisation:
            name = COMPANIES[int(rng.integers(len(COMPANIES)))]
        else:
            name = f"{GIVEN[int(rng.integers(len(GIVEN)))]} {FAMILY[int(rng.integers(len(FAMILY)))]}"
    if us:
        town, state, post = US_PLACES[int(rng.integers(len(US_PLACES)))]
        place = f"<PstCd>{post}</PstCd><TwnNm>{town}</TwnNm><CtrySubDvsn>{state}</CtrySubDvsn>"
    else:
        town, post = FOREIGN_PLACES[country]
        place = f"<PstCd>{post}</PstCd><TwnNm>{town}</TwnNm>"
    street = STREETS[int(rng.integers(len(STREETS)))]
    if organisation:
        ident = f"<OrgId><LEI>5493{rng.integers(10**15, 10**16)}</LEI></OrgId>"
    else:
        birth = f"19{rng.integers(50, 99)}-0{rng.integers(1, 9)}-1{rng.integers(0, 9)}"
        ident = (
            f"<PrvtId><DtAndPlcOfBirth><BirthDt>{birth}</BirthDt><CityOfBirth>{town}</CityOfBirth>"
            f"<CtryOfBirth>{country}</CtryOfBirth></DtAndPlcOfBirth></PrvtId>"
        )
    return (
        f"\t\t\t<{tag}>\n\t\t\t\t<Nm>{escape(name)}</Nm>\n\t\t\t\t<PstlAdr>\n"
        f"\t\t\t\t\t<StrtNm>{street}</StrtNm><BldgNb>{rng.integers(1, 999)}</BldgNb>{place}\n"
        f"\t\t\t\t\t<Ctry>{country}</Ctry>\n\t\t\t\t</PstlAdr>\n\t\t\t\t<Id>{ident}</Id>\n\t\t\t</{tag}>\n"
    )


def _agent(tag: str, bic: str) -> str:
    return (
        f"\t\t\t<{tag}>\n\t\t\t\t<FinInstnId>\n\t\t\t\t\t<BICFI>{bic}</BICFI>\n\t\t\t\t</FinInstnId>\n\t\t\t</{tag}>\n"
    )


def _account(tag: str, rng: np.random.Generator, us: bool) -> str:
    if us:
        ident = f"<Othr><Id>{rng.integers(10**9, 10**10)}</Id></Othr>"
    else:
        ident = f"<IBAN>DE{rng.integers(10, 99)}{rng.integers(10**17, 10**18)}</IBAN>"
    return f"\t\t\t<{tag}>\n\t\t\t\t<Id>{ident}</Id>\n\t\t\t</{tag}>\n"


def _transaction(number: int, rng: np.random.Generator, covered_share: float) -> str:
    day = f"2024-{1 + number % 12:02d}-{1 + number % 28:02d}"
    payer_us = rng.random() < 0.6
    payee_us = rng.random() < 0.5
    covered = rng.random() < covered_share
    to_tenpay = covered and rng.random() < 0.5
    payer_org = rng.random() < 0.35
    payee_org = to_tenpay or rng.random() < 0.5
    banks_payer = US_BANKS if payer_us else FOREIGN_BANKS
    banks_payee = US_BANKS if payee_us else FOREIGN_BANKS
    payer_bank = banks_payer[int(rng.integers(len(banks_payer)))][0]
    payee_bank = TENPAY_AGENT[0] if to_tenpay else banks_payee[int(rng.integers(len(banks_payee)))][0]
    currency = "CNY" if to_tenpay else CURRENCIES[int(rng.integers(len(CURRENCIES)))]
    amount = f"{rng.integers(1, 250_000)}.{rng.integers(0, 100):02d}"
    parts = [
        f"\t\t<CdtTrfTxInf>\n\t\t\t<PmtId>\n\t\t\t\t<InstrId>INSTR{number:010d}</InstrId>\n"
        f"\t\t\t\t<EndToEndId>E2E{number:012d}</EndToEndId>\n\t\t\t\t<TxId>TX{number:012d}</TxId>\n"
        f"\t\t\t\t<UETR>{rng.bytes(16).hex()[:8]}-4f1b-4c5e-9a7d-{number:012x}</UETR>\n\t\t\t</PmtId>\n"
        "\t\t\t<PmtTpInf>\n\t\t\t\t<InstrPrty>NORM</InstrPrty>\n\t\t\t\t<SvcLvl><Cd>G001</Cd></SvcLvl>\n"
        "\t\t\t</PmtTpInf>\n"
        f'\t\t\t<IntrBkSttlmAmt Ccy="{currency}">{amount}</IntrBkSttlmAmt>\n'
        f"\t\t\t<IntrBkSttlmDt>{day}</IntrBkSttlmDt>\n"
    ]
    if number % 3 == 0:
        parts.append(f"\t\t\t<AccptncDtTm>{day}T{number % 24:02d}:{number % 60:02d}:07-05:00</AccptncDtTm>\n")
    parts.append(f'\t\t\t<InstdAmt Ccy="{currency}">{amount}</InstdAmt>\n\t\t\t<ChrgBr>SHAR</ChrgBr>\n')
    parts.append(_agent("InstgAgt", payer_bank) + _agent("InstdAgt", payee_bank))
    if not payer_us or not payee_us or rng.random() < 0.1:  # cross-border goes through a correspondent
        parts.append(_agent("IntrmyAgt1", US_BANKS[int(rng.integers(len(US_BANKS)))][0]))
    parts.append(_party("Dbtr", rng, payer_us, payer_org))
    parts.append(_account("DbtrAcct", rng, payer_us) + _agent("DbtrAgt", payer_bank))
    parts.append(_agent("CdtrAgt", payee_bank))
    parts.append(_party("Cdtr", rng, payee_us and not to_tenpay, payee_org, TENPAY if to_tenpay else None))
    parts.append(_account("CdtrAcct", rng, payee_us and not to_tenpay))
    if rng.random() < 0.4:
        parts.append(f"\t\t\t<Purp>\n\t\t\t\t<Cd>{PURPOSES[int(rng.integers(len(PURPOSES)))]}</Cd>\n\t\t\t</Purp>\n")
    remittance = "WeChat Pay top-up" if covered and not to_tenpay else f"Invoice {rng.integers(10**5, 10**6)}"
    parts.append(f"\t\t\t<RmtInf>\n\t\t\t\t<Ustrd>{remittance}</Ustrd>\n\t\t\t</RmtInf>\n\t\t</CdtTrfTxInf>\n")
    return "".join(parts)


def generate_pacs008(path: Path, size_mb: int, rng: np.random.Generator, covered_share: float = 0.03) -> int:
    """Write a pacs.008.001.08 message of about `size_mb` MB to `path`, streaming; the number of transactions."""
    target = size_mb << 20
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS}">\n\t<FIToFICstmrCdtTrf>\n'
        "\t\t<GrpHdr>\n\t\t\t<MsgId>BENCH-MSG-0001</MsgId>\n\t\t\t<CreDtTm>2024-12-31T23:00:00Z</CreDtTm>\n"
        "\t\t\t<NbOfTxs>0</NbOfTxs>\n\t\t\t<SttlmInf>\n\t\t\t\t<SttlmMtd>INDA</SttlmMtd>\n\t\t\t</SttlmInf>\n"
        "\t\t</GrpHdr>\n"
    )
    tail = "\t</FIToFICstmrCdtTrf>\n</Document>\n"
    count = written = 0
    with path.open("w", encoding="utf-8") as handle:
        written += handle.write(head)
        while written < target:
            block = "".join(_transaction(count + i, rng, covered_share) for i in range(500))
            written += handle.write(block)
            count += 500
        handle.write(tail)
    return count


def count_pass(path: Path) -> float:
    """Seconds for the floor: every end event of a plain iterparse, counted and cleared."""
    start = time.perf_counter()
    count = 0
    with path.open("rb") as handle:
        for _, element in etree.iterparse(handle, events=("end",)):
            count += 1
            element.clear()
    return time.perf_counter() - start


_FULL_TREE = """
import resource, sys, time
from lxml import etree
start = time.perf_counter()
tree = etree.parse(sys.argv[1])
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_APPBAN = """
import resource, sys, time
from pathlib import Path
from appban.payments.readers.iso20022 import Iso20022Reader
from appban.payments.records import ReadStats
start = time.perf_counter()
stats = ReadStats()
rows = sum(batch.num_rows for batch in Iso20022Reader().read(Path(sys.argv[1]), stats))
seconds = time.perf_counter() - start
print(seconds, rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _run(code: str, path: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True)
    return done.stdout.split()


def full_tree(path: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KB) of `lxml.etree.parse` on the whole file, in a fresh interpreter."""
    seconds, rss = _run(_FULL_TREE, path)
    return float(seconds), int(rss)


def appban_pass(path: Path) -> tuple[float, int, int]:
    """Seconds, records read and peak RSS (KB) of the appban reader, in a fresh interpreter."""
    seconds, rows, rss = _run(_APPBAN, path)
    return float(seconds), int(rows), int(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pacs008.xml"
        count = generate_pacs008(path, args.mb, np.random.default_rng(args.seed))
        megabytes = path.stat().st_size / (1 << 20)
        floor = count_pass(path)
        seconds, rows, rss = appban_pass(path)
        tree_seconds, tree_rss = full_tree(path)
        figures = {
            "file MB": round(megabytes, 1),
            "transactions": count,
            "records read": rows,
            "count pass MB/s": round(megabytes / floor, 1),
            "appban MB/s": round(megabytes / seconds, 1),
            "appban / count pass": round(floor / seconds, 2),
            "appban peak RSS MB": round(rss / 1024, 1),
            "full tree s": round(tree_seconds, 2),
            "full tree peak RSS MB": round(tree_rss / 1024, 1),
        }
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
