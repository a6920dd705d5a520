"""Network inputs and outputs as operators bring and load them.

Blocklists: an indicator that is an exact host (a TikTok name on a shared CDN, `p16-tiktokcdn-com.akamaized.net`)
is blocked as that name only in every output, never as a suffix that would reach the CDN's other customers;
suffix entries stay suffixes. Each format's matching is modelled from its documentation, and the RPZ and
Unbound outputs are loaded into a real Unbound where one is installed:

- RPZ: a trigger `name CNAME .` matches that QNAME only; `*.name` the names below (RFC 8626 drafts, BIND ARM).
- hosts file: one exact name per line (hosts(5)).
- Unbound: `always_nxdomain` covers the zone and all below; a `transparent` zone answers its local-data and
  resolves other names normally (unbound.conf(5), local-zone).
- dnsmasq: `address=/name/` with no address is NXDOMAIN for the name and its subdomains; `host-record`
  adds records for the names given only (dnsmasq(8), --address, --host-record;
  https://thekelleys.org.uk/dnsmasq/docs/dnsmasq-man.html).
- AdGuard DNS filtering syntax: `||name^` the name and its subdomains, `|name^` that name only
  (https://adguard-dns.io/kb/general/dns-filtering-syntax/; AdGuard Home writes its hosts rules so since
  v0.107.1, https://github.com/AdguardTeam/AdGuardHome/issues/3998).
- Suricata: `dotprefix; content:".name"; endswith` whole labels; `startswith; endswith` together the whole
  buffer (https://docs.suricata.io/en/latest/rules/payload-keywords.html, startswith/endswith;
  .../rules/transforms.html, dotprefix).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from appban import Rulebook
from appban.network.blocklist import WRITERS, BlockEntry, Blocklist, compile_blocklist, rpz, unbound
from appban.network.indicators import default_indicators
from appban.network.records import read_log
from appban.store import AuditStore
from tests.test_network_blocklist import WORLD, resolve, unbound_server
from tests.test_service import auth, client_for, error_of, wait_for

PAFACA = "2025-02-01T00:00:00Z"
EXACT = "p16-tiktokcdn-com.akamaized.net"  # a TikTok CNAME target on Akamai: indicators list it as host
SIBLING = "a248.e.akamaized.net"  # another Akamai customer's edge name, same shared suffix
CHILD = f"img.{EXACT}"  # a name under the exact host: not listed


def _entry(value: str, exact: bool = False) -> BlockEntry:
    return BlockEntry(
        kind="domain", value=value, app="tiktok", scope="app", category="internet_hosting", verdict="prohibited",
        instrument="pafaca-2024", cite="Pub. L. 118-50, div. H", url="https://example.org/pafaca", exact=exact,
    )  # fmt: skip


ENTRIES = [_entry("tiktokcdn.com"), _entry(EXACT, exact=True)]


def _under(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def _rules(fmt: str, text: str) -> tuple[set[str], set[str]]:
    """(suffixes, exact names) a format's file blocks, read as its documentation says the consumer reads it."""
    suffixes: set[str] = set()
    exact: set[str] = set()
    comments = ("#", "!", ";")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith(comments)]
    if fmt == "rpz":
        names = {m[1] for line in lines if (m := re.fullmatch(r"(\S+) CNAME \.", line))}
        for name in names:
            if name.startswith("*."):
                continue
            (suffixes if f"*.{name}" in names else exact).add(name)
        assert {n for n in names if n.startswith("*.")} == {f"*.{n}" for n in suffixes}
    elif fmt == "hosts":
        exact = {line.split()[1] for line in lines}
    elif fmt == "unbound":
        zones = dict(re.findall(r'^local-zone: "([^"]+)\." (\w+)$', "\n".join(lines), re.M))
        suffixes = {name for name, kind in zones.items() if kind == "always_nxdomain"}
        data = set(re.findall(r'^local-data: "([^"]+)\. (?:A 0\.0\.0\.0|AAAA ::)"$', "\n".join(lines), re.M))
        exact = {name for name, kind in zones.items() if kind == "transparent"}
        assert data == exact  # a transparent zone without null data would block nothing
    elif fmt == "dnsmasq":
        for line in lines:
            if m := re.fullmatch(r"address=/([^/]+)/", line):
                suffixes.add(m[1])
            else:
                m = re.fullmatch(r"host-record=([^,]+),0\.0\.0\.0,::", line)
                assert m, line
                exact.add(m[1])
    elif fmt == "adblock":
        for line in lines:
            m = re.fullmatch(r"(\|\|?)([a-z0-9.-]+)\^", line)
            assert m, line
            (suffixes if m[1] == "||" else exact).add(m[2])
    elif fmt == "suricata":
        for line in lines:
            if m := re.search(r'dotprefix; content:"\.([^"]+)"; endswith; nocase;', line):
                suffixes.add(m[1])
            elif m := re.search(r'content:"([^"]+)"; startswith; endswith; nocase;', line):
                exact.add(m[1])
    return suffixes, exact


def _blocks(rules: tuple[set[str], set[str]], name: str) -> bool:
    suffixes, exact = rules
    return name in exact or any(_under(name, s) for s in suffixes)


@pytest.mark.parametrize("fmt", sorted(set(WRITERS) - {"nftables"}))
def test_an_exact_host_is_that_name_only_in_every_format(fmt: str) -> None:
    text = WRITERS[fmt](ENTRIES, None)
    rules = _rules(fmt, text)
    assert _blocks(rules, EXACT)
    assert not _blocks(rules, SIBLING) and not _blocks(rules, CHILD)  # the CDN's other names stay reachable
    assert not any(_under(EXACT, s) and s != EXACT for s in rules[0])  # never written as akamaized.net
    if fmt == "hosts":  # a hosts file cannot hold suffixes at all, and says so
        assert not _blocks(rules, "www.tiktokcdn.com") and "cannot hold wildcards" in text
    else:
        assert _blocks(rules, "tiktokcdn.com") and _blocks(rules, "p16-sign.tiktokcdn.com")  # suffix stays suffix
        assert not _blocks(rules, "nottiktokcdn.com")
    assert "exact host" in text  # the comment tells the operator which kind the line is


def test_an_exact_host_under_a_listed_suffix_is_left_to_the_suffix() -> None:
    """Unbound's exact form is a transparent zone of its own, which would resolve the names under the host
    normally inside the suffix's NXDOMAIN zone: the suffix already covers the host, so it is not written."""
    entries = [_entry("ibyteimg.com"), _entry("p16-tiktok-va-h2.ibyteimg.com", exact=True)]
    for fmt in sorted(set(WRITERS) - {"nftables"}):
        text = WRITERS[fmt](entries, None)
        suffixes, exact = _rules(fmt, text)
        assert "p16-tiktok-va-h2.ibyteimg.com" not in exact, fmt
        if fmt != "hosts":
            assert _blocks((suffixes, exact), "x.p16-tiktok-va-h2.ibyteimg.com"), fmt


def test_compiled_lists_carry_the_indicators_exactness(rulebook: Rulebook) -> None:
    result = compile_blocklist(rulebook, default_indicators(rulebook), "US", PAFACA, scope="company")
    by_value = {e.value: e for e in result.entries if e.kind == "domain"}
    assert by_value[EXACT].exact and by_value["tiktokv.com.edgekey.net"].exact
    assert not by_value["tiktokcdn.com"].exact and not by_value["ibyteimg.com"].exact
    assert re.search(r"\d+ domain suffixes, [1-9]\d* exact hosts and \d+ prefixes", result.reason)
    for fmt in sorted(set(WRITERS) - {"nftables"}):
        rules = _rules(fmt, WRITERS[fmt](result.entries, result.provenance))
        assert _blocks(rules, EXACT) and not _blocks(rules, SIBLING) and not _blocks(rules, CHILD), fmt
        assert not _blocks(rules, "edgekey.net") and not _blocks(rules, "other.edgesuite.net"), fmt


# ---- a real Unbound ---------------------------------------------------------------------------------------------

CDN_WORLD = WORLD | {f"{EXACT}.": "192.0.2.20", f"{SIBLING}.": "192.0.2.21", f"{CHILD}.": "192.0.2.22"}


@pytest.fixture(scope="module")
def pafaca(rulebook: Rulebook) -> Blocklist:
    return compile_blocklist(rulebook, default_indicators(rulebook), "US", PAFACA)


def test_unbound_rpz_blocks_the_exact_host_and_not_its_neighbours(tmp_path: Path, pafaca: Blocklist) -> None:
    with unbound_server(tmp_path, rpz_zone=rpz(pafaca.entries, pafaca.provenance), world=CDN_WORLD) as port:
        assert resolve(port, f"{EXACT}.") is None
        assert resolve(port, f"{SIBLING}.") == "192.0.2.21"
        assert resolve(port, f"{CHILD}.") == "192.0.2.22"
        assert resolve(port, "deep.cdn.tiktokcdn.com.") is None  # suffixes still reach every name below


def test_unbound_local_zones_block_the_exact_host_and_not_its_neighbours(tmp_path: Path, pafaca: Blocklist) -> None:
    with unbound_server(tmp_path, include=unbound(pafaca.entries, pafaca.provenance), world=CDN_WORLD) as port:
        assert resolve(port, f"{EXACT}.") == "0.0.0.0"
        assert resolve(port, f"{SIBLING}.") == "192.0.2.21"
        assert resolve(port, f"{CHILD}.") == "192.0.2.22"
        assert resolve(port, "deep.cdn.tiktokcdn.com.") is None
        assert resolve(port, "nottiktok.com.") == "192.0.2.4"


# ---- the HTTP service's network screens: log_year and the read notes ------------------------------------------

DNSMASQ_LOG = (  # dnsmasq's log-queries lines in a shared syslog: "Mon dd hh:mm:ss host dnsmasq[pid]: ..." (no year)
    b"Sep 20 04:01:02 gw dnsmasq[123]: query[A] www.tiktok.com from 192.0.2.10\n"
    b"Sep 20 04:01:02 gw dnsmasq[123]: forwarded www.tiktok.com to 192.0.2.1\n"
    b"Sep 20 04:01:03 gw systemd[1]: Started Daily apt download activities.\n"
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = AuditStore(url)
    try:
        _, secret = store.create_token(name="writer", scope="write")
    finally:
        store.close()
    with client_for(url, tmp_path) as client:
        yield client, auth(secret)


def _screen(api: TestClient, headers: dict[str, str], params: dict[str, str]) -> dict[str, Any]:
    started = api.post("/v1/screens/network", params=params, files={"file": ("dns.log", DNSMASQ_LOG)}, headers=headers)
    assert started.status_code == 202, started.text
    run = wait_for(api, started.json()["id"], headers)
    assert run["status"] == "done", run["error"]
    return run


def test_service_network_screen_takes_log_year_and_reports_read_notes(
    service: tuple[TestClient, dict[str, str]],
) -> None:
    api, headers = service
    yearless = _screen(api, headers, {})
    (note,) = yearless["summary"]["notes"]
    assert "carry no year" in note and "the log_year option" in note and "--log-year" not in note
    assert yearless["summary"]["matched"] == 1

    given = _screen(api, headers, {"log_year": "2020"})
    assert given["summary"]["notes"] == []
    (finding,) = given["findings"]
    assert finding["host"] == "www.tiktok.com" and finding["ts"] == "2020-09-20T04:01:02Z"  # ISO 8601 with Z (issue 16)
    # 20 September 2020: the Commerce identification of TikTok was published, its hosting items not yet in force.
    assert finding["verdict"] == "not_yet_effective"


@pytest.mark.parametrize("year", ["20x0", "1969", "10000", "-2020", "２０２０", "2020.0"])
def test_service_refuses_a_bad_log_year_up_front(service: tuple[TestClient, dict[str, str]], year: str) -> None:
    api, headers = service
    answer = api.post(
        "/v1/screens/network", params={"log_year": year}, files={"file": ("dns.log", DNSMASQ_LOG)}, headers=headers
    )
    assert answer.status_code == 400 and error_of(answer).startswith("log_year: a year from 1970 to 9999"), answer.text
    assert api.get("/v1/runs", headers=headers).json() == []  # refused before any run was queued


# ---- readers: Suricata EVE DNS answers, whichever way each version writes them ----------------------------------


def _eve_answer(version: int | None, src: tuple[str, int], dest: tuple[str, int], kind: str = "answer") -> str:
    """One EVE `dns` answer event laid out as Suricata's "Eve JSON Format" documents it for that version."""
    dns: dict[str, Any] = {"type": kind, "id": 4660, "rcode": "NOERROR"}
    if version == 3:
        answer = {"rrname": "www.tiktok.com", "rrtype": "CNAME", "rdata": "www.tiktok.com.edgesuite.net"}
        dns |= {"version": 3, "queries": [{"rrname": "www.tiktok.com", "rrtype": "A"}], "answers": [answer]}
    else:
        dns |= {"rrname": "www.tiktok.com", "rrtype": "A"}
        if version == 2:
            dns |= {"version": 2, "flags": "8180", "qr": True, "grouped": {"CNAME": ["www.tiktok.com.edgesuite.net"]}}
    event = {"timestamp": "2021-03-01T10:00:00.123456+0000", "flow_id": 1, "event_type": "dns", "src_ip": src[0],
             "src_port": src[1], "dest_ip": dest[0], "dest_port": dest[1], "proto": "UDP", "dns": dns}  # fmt: skip
    return json.dumps(event) + "\n"


ASKER, RESOLVER = ("192.0.2.10", 51000), ("192.0.2.53", 53)


@pytest.mark.parametrize(
    ("version", "kind", "src", "dest"),
    [
        (None, "answer", RESOLVER, ASKER),  # Suricata 3-4: from the responder (was read with the resolver as client)
        (2, "answer", ASKER, RESOLVER),  # Suricata 5-7: in the flow's direction
        (3, "response", RESOLVER, ASKER),  # Suricata 8: from the responder
        (3, "response", ASKER, RESOLVER),  # a response in the flow's direction (was read the wrong way round)
    ],
)
def test_suricata_answers_name_the_asker_as_client(
    tmp_path: Path, version: int | None, kind: str, src: tuple[str, int], dest: tuple[str, int]
) -> None:
    path = tmp_path / "eve.json"
    path.write_text(_eve_answer(version, src, dest, kind))
    batches, stats = read_log(path)
    (record,) = pa.Table.from_batches(list(batches)).to_pylist()
    assert not stats.errors and not stats.malformed
    assert (record["host"], record["client"], record["dst_ip"], record["dst_port"]) == (
        "www.tiktok.com", "192.0.2.10", "192.0.2.53", 53,
    )  # fmt: skip
