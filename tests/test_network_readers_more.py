"""Network log readers for Suricata EVE, Unbound, CoreDNS and the Windows DNS Server debug log.

The samples follow each format's public description: Suricata's EVE JSON format page and its 8.0 DNS
logging changes, Unbound's log code (util/log.c, log_query_in, log_reply_info) and unbound.conf(5),
CoreDNS's log plugin page and the lines quoted in its issues, and Microsoft's description of the DNS
debug log's fields. Each mixes records with lines that are skipped and lines that are malformed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from appban.network.readers import CoreDnsReader, SuricataReader, UnboundReader, WindowsDnsReader, suricata
from appban.network.records import detect, read_log
from tests import test_network_readers as base
from tests.test_network_readers import at, error_lines, read, rows, write

# ------------------------------------------------------------------------------------------------
# Suricata EVE


def eve(event_type: str, when: str = "2020-09-20T23:59:01.123456+0000", **fields: object) -> str:
    record: dict[str, object] = {"timestamp": when, "flow_id": 1, "event_type": event_type}
    record |= {"src_ip": "192.0.2.10", "src_port": 53421, "dest_ip": "198.51.100.53", "dest_port": 53}
    record |= {"proto": "UDP"} | fields
    return json.dumps(record) + "\n"


EVE_V2 = (
    eve("dns", dns={"type": "query", "id": 16000, "rrname": "www.tiktok.com", "rrtype": "A", "tx_id": 0})
    + eve(
        "dns",
        "2020-09-20T23:59:01.223456+0000",
        dns={
            "version": 2,
            "type": "answer",
            "id": 16000,
            "flags": "8180",
            "qr": True,
            "rcode": "NOERROR",
            "rrname": "www.tiktok.com",
            "rrtype": "A",
            "answers": [
                {"rrname": "www.tiktok.com", "rrtype": "CNAME", "ttl": 3324, "rdata": "www.tiktok.com.edgesuite.net"}
            ],
        },
    )
    + eve("flow", flow={"pkts_toserver": 1, "bytes_toserver": 74, "state": "new"})
    + eve(
        "tls",
        "2020-09-20T23:59:02.000000+0200",
        dest_ip="203.0.113.7",
        dest_port=443,
        proto="TCP",
        tls={"subject": "CN=*.tiktok.com", "sni": "www.tiktok.com", "version": "TLS 1.2"},
    )
    + eve("http", dest_ip="203.0.113.8", dest_port=80, http={"hostname": "weixin.qq.com", "url": "/", "length": 310})
    + eve("quic", dest_ip="203.0.113.9", dest_port=443, quic={"version": "1", "sni": "v16m.tiktokcdn.com."})
    + eve("alert", alert={"action": "allowed", "signature_id": 2018358}, dns={"query": [{"rrname": "x.example"}]})
    + '{"timestamp": "2020-09-20T23:59:09.000000+0000", "event_type": "stats", "stats": {"uptime": 30}}\n'
)


def test_suricata_eve_reads_dns_tls_http_and_quic_and_skips_the_rest(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "eve.json", EVE_V2))
    assert rows(table, "line", "ts", "client", "host", "dst_ip", "dst_port") == [
        (1, at(2020, 9, 20, 23, 59, 1, 123456), "192.0.2.10", "www.tiktok.com", "198.51.100.53", 53),
        (4, at(2020, 9, 20, 21, 59, 2), "192.0.2.10", "www.tiktok.com", "203.0.113.7", 443),
        (5, at(2020, 9, 20, 23, 59, 1, 123456), "192.0.2.10", "weixin.qq.com", "203.0.113.8", 80),
        (6, at(2020, 9, 20, 23, 59, 1, 123456), "192.0.2.10", "v16m.tiktokcdn.com", "203.0.113.9", 443),
    ]
    # The answer repeats the query (line 2); flow, alert and stats events are not records.
    assert (stats.skipped, stats.malformed) == (4, 0)
    assert set(table.column("source").to_pylist()) == {"suricata"}


def test_suricata_well_formed_chunks_take_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("read line by line")

    monkeypatch.setattr(suricata, "_parse_slowly", refuse)
    table, _ = read(write(tmp_path / "eve.json", EVE_V2))
    assert table.num_rows == 4


def test_suricata_bad_lines_cost_only_themselves_and_both_parsers_agree(tmp_path: Path) -> None:
    clean, clean_stats = read(write(tmp_path / "clean.json", EVE_V2))
    bad = (
        "not json\n"
        "[1, 2]\n"
        '{"timestamp": "2020-09-20T23:59:01+0000", "src_ip": "192.0.2.10"}\n'
        + eve("tls", "yesterday", tls={"sni": "www.tiktok.com"})
        + eve("dns", dest_port="fifty-three", dns={"type": "query", "rrname": "www.douyin.com"})
    )
    # Arrow cannot type a chunk with these lines: it is read line by line, with the same result for the rest.
    table, stats = read(write(tmp_path / "eve.json", EVE_V2 + bad))
    assert table.slice(0, clean.num_rows).equals(clean)
    assert rows(table.slice(clean.num_rows), "line", "host", "dst_port") == [(13, "www.douyin.com", None)]
    assert error_lines(stats) == [9, 10, 11, 12]
    assert [e.message for e in stats.errors][1:] == [
        "not a JSON object: '[1, 2]'",
        "no event_type: not a Suricata EVE record",
        "bad timestamp 'yesterday'",
    ]
    assert stats.skipped == clean_stats.skipped


def test_suricata_dns_version_3_requests_and_responses(tmp_path: Path) -> None:
    request = eve(
        "dns",
        dns={"version": 3, "type": "request", "tx_id": 0, "id": 7, "flags": "100", "rd": True, "opcode": 0,
             "rcode": "NOERROR", "queries": [{"rrname": "www.tiktok.com", "rrtype": "A"},
                                             {"rrname": "mon.musical.ly", "rrtype": "AAAA"}]},
    )  # fmt: skip
    # Version 3 writes the response from the resolver to the client.
    response = eve(
        "dns",
        "2020-09-20T23:59:01.200000+0000",
        src_ip="198.51.100.53",
        src_port=53,
        dest_ip="192.0.2.10",
        dest_port=53421,
        dns={"version": 3, "type": "response", "tx_id": 1, "id": 7, "flags": "8180", "qr": True,
             "rcode": "NOERROR", "queries": [{"rrname": "www.tiktok.com", "rrtype": "A"}],
             "answers": [{"rrname": "www.tiktok.com", "rrtype": "A", "ttl": 60, "rdata": "203.0.113.7"}]},
    )  # fmt: skip
    # Version 3 alerts carry the same `dns` object; their questions are not records.
    alert = eve("alert", alert={"signature_id": 1}, dns={"queries": [{"rrname": "alerted.example", "rrtype": "A"}]})
    both, stats = read(write(tmp_path / "eve.json", alert + request + response))
    assert rows(both, "line", "client", "host", "dst_ip") == [
        (2, "192.0.2.10", "www.tiktok.com", "198.51.100.53"),
        (2, "192.0.2.10", "mon.musical.ly", "198.51.100.53"),
    ]
    assert stats.skipped == 2
    # A log written with `requests: no` has a record per response, the asker as its client.
    only_responses, stats = read(write(tmp_path / "responses.json", response))
    assert rows(only_responses, "line", "client", "host", "dst_ip", "dst_port") == [
        (1, "192.0.2.10", "www.tiktok.com", "198.51.100.53", 53)
    ]
    assert stats.skipped == 0


def test_suricata_time_without_offset_is_read_in_the_given_zone(tmp_path: Path) -> None:
    path = write(tmp_path / "eve.json", eve("tls", "2020-09-20T23:59:01.000000", tls={"sni": "www.tiktok.com"}))
    assert rows(read(path)[0], "ts") == [(at(2020, 9, 20, 23, 59, 1),)]
    assert rows(read(path, tz="America/New_York")[0], "ts") == [(at(2020, 9, 21, 3, 59, 1),)]


# ------------------------------------------------------------------------------------------------
# Unbound

UNBOUND = (
    "[1600645139] unbound[1234:0] notice: init module 0: validator\n"
    "[1600645141] unbound[1234:0] info: 192.0.2.10 www.tiktok.com. A IN\n"
    "[1600645141] unbound[1234:0] info: 192.0.2.10 www.tiktok.com. A IN NOERROR 0.000000 0 45\n"
    "[1600645142] unbound[1234:1a] info: 2001:db8::7 weixin.qq.com. AAAA IN\n"
    "\n"
    "[1600645142] unbound[1234:1a] info: 192.0.2.10 broken.example. A\n"
    "[1600645143] unbound[1234:0] info: resolving www.example.com. A IN\n"
    "[1600645144] unbound[1234:0] info: tiktok.com. always_nxdomain 192.0.2.10@53421 www.tiktok.com. A IN\n"
    "[1600645145] unbound[1234:0] info: 192.0.2.11 v16m.tiktokcdn.com. A IN\n"
)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_unbound_log_file_takes_queries_once(tmp_path: Path, compression: str | None) -> None:
    table, stats = read(write(tmp_path / "unbound.log", UNBOUND, compression))
    assert rows(table, "line", "ts", "client", "host") == [
        (2, at(2020, 9, 20, 23, 39, 1), "192.0.2.10", "www.tiktok.com"),
        (4, at(2020, 9, 20, 23, 39, 2), "2001:db8::7", "weixin.qq.com"),
        (9, at(2020, 9, 20, 23, 39, 5), "192.0.2.11", "v16m.tiktokcdn.com"),
    ]
    assert error_lines(stats) == [6]
    assert "Unbound" in stats.errors[0].message
    # The reply repeats line 2's query; the notice, verbosity and local-action lines are not records.
    assert stats.skipped == 4


def test_unbound_replies_alone_tagged_and_with_destination(tmp_path: Path) -> None:
    text = (
        "[1600645141] unbound[1234:0] reply: 192.0.2.10 www.tiktok.com. A IN NOERROR 0.000103 1 61\n"
        "[1600645142] unbound[1234:0] reply: 192.0.2.10 weixin.qq.com. A IN NXDOMAIN 0.020000 0 97"
        " on udp 192.0.2.1 53\n"
        "[1600645143] unbound[1234:0] reply: 192.0.2.10 - - - FORMERR - - - \n"
    )
    table, stats = read(write(tmp_path / "unbound.log", text + "[1600645144] unbound[1234:0] reply: 192.0.2.10 x.\n"))
    assert rows(table, "line", "host") == [(1, "www.tiktok.com"), (2, "weixin.qq.com")]
    # A FORMERR reply names no query; a reply line cut short is malformed.
    assert (stats.skipped, error_lines(stats)) == (1, [4])


def test_unbound_through_syslog_and_with_ascii_and_iso_times(tmp_path: Path) -> None:
    syslog = (
        "Sep 20 23:59:01 gw unbound: [1234:0] info: 192.0.2.10 www.tiktok.com. A IN\n"
        "Sep 20 23:59:02 gw sshd[99]: Accepted publickey for admin from 192.0.2.99 port 50000\n"
        "Sep 20 23:59:03 gw unbound[1234]: [1234:0] query: 192.0.2.10 weixin.qq.com. A IN\n"
        "2020-09-20T23:59:04.250+02:00 gw unbound[1234]: [1234:0] info: 192.0.2.12 www.tiktok.com. A IN\n"
    )
    path = write(tmp_path / "syslog", syslog)
    table, stats = read(path, fmt="unbound", tz="America/New_York", year=2020)
    assert rows(table, "line", "ts", "host") == [
        (1, at(2020, 9, 21, 3, 59, 1), "www.tiktok.com"),
        (3, at(2020, 9, 21, 3, 59, 3), "weixin.qq.com"),
        (4, at(2020, 9, 20, 21, 59, 4, 250000), "www.tiktok.com"),
    ]
    assert (stats.malformed, stats.skipped) == (0, 1)
    assert detect(path).name == "unbound"
    ascii_file = write(
        tmp_path / "ascii.log", "Sep 05 23:59:01 unbound[1234:0] info: 192.0.2.10 www.tiktok.com. A IN\n"
    )
    assert rows(read(ascii_file, year=2020)[0], "ts") == [(at(2020, 9, 5, 23, 59, 1),)]


# ------------------------------------------------------------------------------------------------
# CoreDNS

COREDNS_QUERY = '[INFO] 10.244.0.1:35432 - 27747 "A IN www.tiktok.com. udp 32 false 512" NOERROR qr,rd,ra 106 0.000120s'
COREDNS = (
    "2020-09-20T23:59:00.000000001Z .:53\n"
    "2020-09-20T23:59:00.000000002Z CoreDNS-1.8.4\n"
    "2020-09-20T23:59:00.000000003Z linux/amd64, go1.16, 053c4d5\n"
    f"2020-09-20T23:59:01.123456789Z {COREDNS_QUERY}\n"
    '2020-09-20T23:59:02.5+02:00 [INFO] [2001:db8::1]:35433 - 2 "AAAA IN weixin.qq.com. udp 43 false 4096" '
    "NOERROR qr,rd,ra 71 0.000050s\n"
    '2020-09-20T23:59:03Z [INFO] 127.0.0.1:63325 - 28625 "A IN 9gag.com. udp 49 false 4096" - - 0 6.010923182s\n'
    '2020-09-20T23:59:04Z [INFO] 10.244.0.1:35432 - 27747 "A IN cut-off\n'
    "2020-09-20T23:59:05Z [ERROR] plugin/errors: 2 www.tiktok.com. A: read udp 10.244.0.5:41234->8.8.8.8:53: timeout\n"
    "2020-09-20T23:59:06Z [INFO] plugin/reload: Running configuration SHA512 = 8f2b\n"
    f"{COREDNS_QUERY}\n"
)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_coredns_lines_with_kubectl_timestamps(tmp_path: Path, compression: str | None) -> None:
    table, stats = read(write(tmp_path / "coredns.log", COREDNS, compression))
    assert rows(table, "line", "ts", "client", "host") == [
        (4, at(2020, 9, 20, 23, 59, 1, 123456), "10.244.0.1", "www.tiktok.com"),
        (5, at(2020, 9, 20, 21, 59, 2, 500000), "2001:db8::1", "weixin.qq.com"),
        (6, at(2020, 9, 20, 23, 59, 3), "127.0.0.1", "9gag.com"),
    ]
    assert error_lines(stats) == [7, 10]
    assert "no time on this line" in stats.errors[1].message
    assert stats.skipped == 5


def test_coredns_container_log_files_are_read(tmp_path: Path) -> None:
    cri = f"2020-09-20T23:59:01.123456789Z stdout F .:53\n2020-09-20T23:59:02.000000001Z stdout F {COREDNS_QUERY}\n"
    path = write(tmp_path / "coredns-abc_kube-system_coredns-123.log", cri)
    assert detect(path).name == "coredns"
    table, stats = read(path)
    assert rows(table, "line", "ts", "host") == [(2, at(2020, 9, 20, 23, 59, 2), "www.tiktok.com")]
    assert (stats.malformed, stats.skipped) == (0, 1)


def test_coredns_without_any_time_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "coredns.log", f".:53\nCoreDNS-1.8.4\n{COREDNS_QUERY}\n{COREDNS_QUERY}\n")
    assert detect(path).name == "coredns"
    with pytest.raises(ValueError, match=r"coredns\.log: CoreDNS writes its query lines without a time.*--timestamps"):
        read_log(path)


# ------------------------------------------------------------------------------------------------
# Windows DNS Server debug log

WINDOWS_HEADER = (
    "DNS Server log file creation at {created}\n"
    "Log file wrap at {created}\n"
    "\n"
    "Message logging key (for packets - other items use a subset of these fields):\n"
    "\tField #  Information         Values\n"
    "\t-------  -----------         ------\n"
    "\t   1     Date\n"
    "\t   2     Time\n"
    "\t  10     Query/Response      R = Response\n"
    "\t                             blank = Query\n"
    "\t  11     Opcode              Q = Standard Query\n"
    "\n"
)


def packet(
    when: str, direction: str, remote: str, response: str, name: str, qtype: str = "A", opcode: str = "Q"
) -> str:
    flags = "8081   DR  NOERROR" if response == "R" else "0001   D   NOERROR"
    return f"{when} 0E4C PACKET  000000D5E3A3C0F0 UDP {direction} {remote:<15} a1b2 {response} {opcode} [{flags}] {qtype:<6} {name}\n"  # noqa: E501


WINDOWS_US = (
    WINDOWS_HEADER.format(created="9/20/2020 11:58:00 PM")
    + packet("9/20/2020 11:59:01 PM", "Rcv", "192.0.2.10", " ", "(3)www(6)tiktok(3)com(0)")
    + packet("9/20/2020 11:59:01 PM", "Snd", "198.51.100.1", " ", "(3)www(6)tiktok(3)com(0)")
    + packet("9/20/2020 11:59:01 PM", "Rcv", "198.51.100.1", "R", "(3)www(6)tiktok(3)com(0)")
    + packet("9/20/2020 11:59:01 PM", "Snd", "192.0.2.10", "R", "(3)www(6)tiktok(3)com(0)")
    + "UDP question info at 000000D5E3A3C0F0\n  Socket = 508\n  Remote addr 192.0.2.10, port 54321\n"
    + packet("9/21/2020 12:00:02 AM", "Rcv", "2001:db8::5", " ", "(6)weixin(2)qq(3)com(0)", "AAAA")
    + packet("9/21/2020 12:30:00 PM", "Rcv", "192.0.2.11", " ", "(7)example(3)com(0)", "SOA", "N")
    + "9/21/2020 12:30:01 PM 0E4C PACKET  garbled\n"
    + "9/21/2020 12:30:02 PM 0E4C EVENT   The DNS server has finished the background loading of zones.\n"
    + packet("9/21/2020 12:30:03 PM", "Rcv", "192.0.2.12", " ", "(4)v16m(10)tiktokcdn(3)com(0)")
)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_windows_dns_debug_log_reads_received_queries(tmp_path: Path, compression: str | None) -> None:
    path = write(tmp_path / "dns.log", WINDOWS_US, compression)
    assert detect(path).name == "windows-dns"
    table, stats = read(path, tz="America/New_York")
    assert rows(table, "line", "ts", "client", "host") == [
        (13, at(2020, 9, 21, 3, 59, 1), "192.0.2.10", "www.tiktok.com"),
        (20, at(2020, 9, 21, 4, 0, 2), "2001:db8::5", "weixin.qq.com"),
        (24, at(2020, 9, 21, 16, 30, 3), "192.0.2.12", "v16m.tiktokcdn.com"),
    ]
    assert error_lines(stats) == [22]
    assert "garbled" in stats.errors[0].message
    # The server writes CRLF line ends.
    crlf, crlf_stats = read(write(tmp_path / "crlf.log", WINDOWS_US.replace("\n", "\r\n")), tz="America/New_York")
    assert crlf.equals(table) and error_lines(crlf_stats) == [22]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("20/09/2020 23:59:01", at(2020, 9, 20, 23, 59, 1)),  # United Kingdom: a day above 12 first
        ("20.09.2020 23:59:01", at(2020, 9, 20, 23, 59, 1)),  # Germany: dots are day first
        ("05.09.2020 00:00:01", at(2020, 9, 5, 0, 0, 1)),
        ("2020-09-05 12:00:01", at(2020, 9, 5, 12, 0, 1)),  # Sweden: the year first
        ("9/25/2020 12:00:01 AM", at(2020, 9, 25, 0, 0, 1)),  # United States: a day above 12 second
    ],
)
def test_windows_dns_dates_in_each_locale(tmp_path: Path, when: str, expected: dt.datetime) -> None:
    text = WINDOWS_HEADER.format(created=when) + packet(when, "Rcv", "192.0.2.10", " ", "(3)www(6)tiktok(3)com(0)")
    table, stats = read(write(tmp_path / "dns.log", text))
    assert rows(table, "ts", "host") == [(expected, "www.tiktok.com")]
    assert stats.malformed == 0


def test_windows_dns_date_order_that_the_dates_do_not_tell(tmp_path: Path) -> None:
    text = packet("9/5/2020 11:59:01 PM", "Rcv", "192.0.2.10", " ", "(3)www(6)tiktok(3)com(0)")
    path = write(tmp_path / "dns.log", text)
    with pytest.raises(ValueError, match=r"dns\.log: the dates .* --log-format windows-dns-mdy"):
        read_log(path)
    assert rows(read(path, fmt="windows-dns-mdy")[0], "ts") == [(at(2020, 9, 5, 23, 59, 1),)]
    assert rows(read(path, fmt="windows-dns-dmy")[0], "ts") == [(at(2020, 5, 9, 23, 59, 1),)]
    # Dates that tell their order only after the first ones detection reads are still found.
    later = packet("9/13/2020 11:59:01 PM", "Rcv", "192.0.2.10", " ", "(6)weixin(2)qq(3)com(0)")
    long = write(tmp_path / "long.log", text * 2100 + later)
    table, stats = read(long)
    assert table.num_rows == 2101 and stats.malformed == 0
    assert rows(table.slice(2100), "ts", "host") == [(at(2020, 9, 13, 23, 59, 1), "weixin.qq.com")]
    # Read in the order named, a date that does not exist in it is a bad line, not a guess.
    table, stats = read(long, fmt="windows-dns-dmy")
    assert (table.num_rows, error_lines(stats)) == (2100, [2101])


# ------------------------------------------------------------------------------------------------
# Detection

SAMPLES = {
    "eve.json": (EVE_V2, "suricata"),
    "unbound.log": (UNBOUND, "unbound"),
    "coredns.log": (COREDNS, "coredns"),
    "dns.log": (WINDOWS_US, "windows-dns"),
}
NEW_READERS = (SuricataReader(), UnboundReader(), CoreDnsReader(), WindowsDnsReader())


@pytest.mark.parametrize("compression", [None, "gzip"])
@pytest.mark.parametrize("name", list(SAMPLES))
def test_new_formats_are_detected_by_content(tmp_path: Path, name: str, compression: str | None) -> None:
    content, expected = SAMPLES[name]
    path = write(tmp_path / "capture.1", content, compression)  # a name that tells nothing
    assert detect(path).name == expected
    claimed = [reader.name for reader in NEW_READERS if reader.sniff(path, content.encode())]
    assert claimed == [expected]


@pytest.mark.parametrize("name", list(base.SAMPLES))
def test_existing_formats_are_not_claimed_by_the_new_readers(tmp_path: Path, name: str) -> None:
    content, expected = base.SAMPLES[name]
    path = write(tmp_path / name, content)
    head = content.encode() if isinstance(content, str) else content
    assert [reader.name for reader in NEW_READERS if reader.sniff(path, head)] == []
    assert detect(path).name == expected
