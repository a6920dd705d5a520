"""Network log readers: every format read from sample files written here, plain, gzip and zstd.

Each sample mixes well-formed records with malformed lines, so the tests check what is read, what is
counted as malformed (with its line number) and what is skipped as not being a record.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appban.network.readers import READER_NAMES, BindReader, DnsmasqReader
from appban.network.records import RECORD_SCHEMA, detect, read_log
from appban.reading import chunks
from appban.reading import values as reading_values
from appban.reading.stats import ReadStats
from appban.reading.streams import open_stream

UTC = dt.UTC

# ------------------------------------------------------------------------------------------------
# Helpers


def write(path: Path, content: str | bytes, compression: str | None = None) -> Path:
    data = content.encode("utf-8") if isinstance(content, str) else content
    if compression == "gzip":
        path.write_bytes(gzip.compress(data))
    elif compression == "zstd":
        with pa.output_stream(str(path), compression="zstd") as out:
            out.write(data)
    else:
        path.write_bytes(data)
    return path


def read(path: Path, **options: object) -> tuple[pa.Table, ReadStats]:
    batches, stats = read_log(path, **options)  # type: ignore[arg-type]
    collected = list(batches)
    for batch in collected:
        assert batch.schema == RECORD_SCHEMA
    return pa.Table.from_batches(collected, schema=RECORD_SCHEMA), stats


def rows(table: pa.Table, *columns: str) -> list[tuple[object, ...]]:
    picked = table.select(list(columns)).to_pylist()
    return [tuple(row[column] for column in columns) for row in picked]


def error_lines(stats: ReadStats) -> list[int]:
    return [error.line for error in stats.errors]


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def words(text: str) -> list[str]:
    return text.split()


# ------------------------------------------------------------------------------------------------
# Samples

ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n"
    "#open\t2020-09-20-04-00-00\n#fields\t{fields}\n#types\t{types}\n"
)
DNS_FIELDS = words(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id rtt query qclass qclass_name qtype "
    "qtype_name rcode rcode_name AA TC RD RA Z answers TTLs rejected"
)
DNS_TYPES = words(
    "time string addr port addr port enum count interval string count string count string count string "
    "bool bool bool bool count vector[string] vector[interval] bool"
)


def zeek_header(path: str, fields: list[str], types: list[str]) -> str:
    return ZEEK_HEADER.format(path=path, fields="\t".join(fields), types="\t".join(types))


def dns_row(ts: str, client: str, query: str, resolver: str = "198.51.100.53") -> str:
    values = [ts, "CHhAvVGS1DHFjwGM9", client, "53421", resolver, "53", "udp", "4242", "0.012", query, "1"]
    values += ["C_INTERNET", "1", "A", "0", "NOERROR", "F", "F", "T", "T", "0", "203.0.113.5", "60.000000", "F"]
    return "\t".join(values) + "\n"


ZEEK_DNS = (
    zeek_header("dns", DNS_FIELDS, DNS_TYPES)
    + dns_row("1600574462.123456", "192.0.2.10", "www.tiktok.com")  # line 9
    + "1600574463.000000\tCx\t192.0.2.11\ttoo few fields\n"  # 10: malformed
    + dns_row("1600574464", "192.0.2.12", "weixin.qq.com")  # 11
    + dns_row("16005x", "192.0.2.13", "www.example.org")  # 12: malformed time
    + dns_row("1600574465.5", "2001:db8::1", "-")  # 13: unset query
    + "#close\t2020-09-20-05-00-00\n"
)
SSL_FIELDS = words(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p version cipher curve server_name resumed established"
)
SSL_TYPES = words("time string addr port addr port string string string string bool bool")
ZEEK_SSL = (
    zeek_header("ssl", SSL_FIELDS, SSL_TYPES)
    + "1600574462.5\tC1\t192.0.2.10\t50000\t203.0.113.7\t443\tTLSv13\tTLS_AES_128_GCM_SHA256\tx25519"
    + "\tv16-webapp.tiktok.com\tF\tT\n"
    + "1600574463.5\tC2\t192.0.2.11\t50001\t203.0.113.8\t443\tTLSv12\t-\t-\t(empty)\tF\tF\n"
)
HTTP_FIELDS = words(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p trans_depth method host uri referrer version user_agent "
    "request_body_len response_body_len status_code"
)
HTTP_TYPES = words("time string addr port addr port count string string string string string string count count count")
ZEEK_HTTP = (
    zeek_header("http", HTTP_FIELDS, HTTP_TYPES)
    + "1600574462.0\tC1\t192.0.2.10\t50000\t203.0.113.9\t80\t1\tGET\tlog.tiktokv.com:8080\t/x\t-\t1.1\tcurl"
    + "\t10\t2048\t200\n"
    + "1600574463.0\tC2\t192.0.2.11\t50001\t203.0.113.9\t80\t1\tGET\tweixin.qq.com\t/\t-\t1.1\tcurl\t-\t-\t200\n"
)
ZEEK_DNS_JSON = (
    '{"ts":1600574462.123456,"uid":"C1","id.orig_h":"192.0.2.10","id.orig_p":53421,"id.resp_h":"198.51.100.53",'
    '"id.resp_p":53,"proto":"udp","trans_id":1,"query":"www.tiktok.com","qtype_name":"A","rcode_name":"NOERROR"}\n'
    "this is not JSON\n"
    "\n"
    '{"ts":"2020-09-20T04:01:03.5Z","uid":"C2","id.orig_h":"192.0.2.11","id.resp_h":"198.51.100.53",'
    '"id.resp_p":53,"trans_id":2,"query":"weixin.qq.com"}\n'
    "[1, 2]\n"
)
BIND = (
    "19-Sep-2020 23:59:01.123 queries: info: client @0x7f1c2c0c6f70 192.0.2.10#53421 (www.tiktok.com): "
    "query: www.tiktok.com IN A +E(0)K (198.51.100.53)\n"
    "19-Sep-2020 23:59:02.000 client 192.0.2.11#5353 (weixin.qq.com): query: weixin.qq.com IN AAAA + (198.51.100.53)\n"
    "19-Sep-2020 23:59:03 client 192.0.2.12#1024: query: www.example.org IN A -\n"
    "19-Sep-2020 23:59:04.000 general: info: zone example.org/IN: loaded serial 2020091901\n"
    "this line is garbage\n"
    "\n"
    "19-Sep-2020 23:59:05.000 queries: info: client @0x1 192.0.2.13#1 (x): view internal: query: "
    "v16.tiktokcdn.com IN A +E(0)DC (2001:db8::53)\n"
    "31-Feb-2020 23:59:06.000 queries: info: client @0x1 192.0.2.14#1 (x): query: a.example IN A + (198.51.100.53)\n"
    "19-Sep-2020 23:59:07.000 queries: info: client @0x1 broken query: \n"
    "2020-09-19T23:59:08.250Z queries: info: client @0x1 192.0.2.15#1 (y): query: y.example IN A + (198.51.100.53)\n"
)
DNSMASQ = (
    "Sep 20 04:01:02 gw dnsmasq[123]: query[A] www.tiktok.com from 192.0.2.10\n"
    "Sep 20 04:01:02 gw dnsmasq[123]: forwarded www.tiktok.com to 1.1.1.1\n"
    "Sep 20 04:01:02 gw dnsmasq[123]: reply www.tiktok.com is 203.0.113.5\n"
    "Sep  2 04:01:03 gw dnsmasq[123]: query[AAAA] weixin.qq.com from 2001:db8::10\n"
    "Sep 20 04:01:04 gw dnsmasq[123]: cached weixin.qq.com is <CNAME>\n"
    "Sep 20 04:01:05 gw dnsmasq-dhcp[123]: DHCPACK(eth0) 192.0.2.10 00:11:22:33:44:55 phone\n"
    "Sep 20 04:01:06 gw sshd[99]: Accepted publickey for root\n"
    "garbage without a time\n"
    "Sep 20 04:01:07 gw dnsmasq[123]: query[A] missing-the-client\n"
    "Sep 20 04:01:08 dnsmasq[123]: 17 192.0.2.12/40001 query[HTTPS] v16.tiktokcdn.com from 192.0.2.12\n"
)
NFDUMP = (
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt\n"
    "2020-09-20 04:01:02,2020-09-20 04:01:03,1.000,192.0.2.10,203.0.113.5,53421,443,TCP,.AP.SF,0,0,10,1234,8,4321\n"
    "2020-09-20 04:01:04.500,2020-09-20 04:01:05,0.500,192.0.2.11,203.0.113.6,0,8.0,ICMP,......,0,0,1,84,0,0\n"
    "2020-09-20 04:01:06,2020-09-20 04:01:07,1.0,192.0.2.12\n"
    "not a time,2020-09-20 04:01:07,1.0,192.0.2.13,203.0.113.7,1,2,UDP,......,0,0,1,1,0,0\n"
    "Summary\n"
    "flows,bytes,packets,avg_bps,avg_pps,avg_bpp\n"
    "4,5639,20,0,0,281\n"
)
AWS_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action"
    " log-status\n"
)
AWS_ROWS = (
    "2 123456789010 eni-1235b8ca123456789 192.0.2.10 203.0.113.5 49761 443 6 20 4249 1600574462 1600574522 ACCEPT OK\n"
    "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1600574462 1600574522 - NODATA\n"
    "2 123456789010 eni-1235b8ca123456789 192.0.2.11 203.0.113.6 49762 80 6 1 40 bad 1600574522 REJECT OK\n"
)


# ------------------------------------------------------------------------------------------------
# Detection


SAMPLES = {
    "dns.log": (ZEEK_DNS, "zeek-dns"),
    "ssl.log": (ZEEK_SSL, "zeek-ssl"),
    "http.log": (ZEEK_HTTP, "zeek-http"),
    "dns.json.log": (ZEEK_DNS_JSON, "zeek-dns"),
    "query.log": (BIND, "bind"),
    "syslog": (DNSMASQ, "dnsmasq"),
    "flows.csv": (NFDUMP, "nfdump"),
    "vpc.log": (AWS_HEADER + AWS_ROWS, "aws-vpc"),
    "vpc-noheader.log": (AWS_ROWS, "aws-vpc"),
    "queries.csv": ("ts,host,client\n2020-09-20T04:01:02Z,www.tiktok.com,192.0.2.10\n", "generic"),
}


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
@pytest.mark.parametrize("name", list(SAMPLES))
def test_detects_every_format_plain_and_compressed(tmp_path: Path, name: str, compression: str | None) -> None:
    content, expected = SAMPLES[name]
    # The compressed copies keep a misleading name: detection reads the magic bytes, not the suffix.
    path = write(tmp_path / (name + (".1" if compression else "")), content, compression)
    assert detect(path).name == expected
    plain = write(tmp_path / f"plain-{name}", content)
    assert read(path)[0].equals(read(plain)[0])


def test_every_reader_is_listed_once() -> None:
    assert len(READER_NAMES) == len(set(READER_NAMES))
    assert READER_NAMES[-1] == "generic"  # it claims only what nothing else does


def test_unknown_format_is_an_error_naming_the_option(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.txt", "hello\nworld\n")
    with pytest.raises(ValueError, match=r"notes\.txt: cannot tell the log format; use --log-format"):
        read_log(path)
    with pytest.raises(ValueError, match="unknown log format 'squid'"):
        read_log(path, fmt="squid")


def test_open_stream_decompresses_by_magic_bytes(tmp_path: Path) -> None:
    for compression, name in ((None, "a.gz"), ("gzip", "b.log"), ("zstd", "c.zst"), ("zstd", "d.zstd")):
        path = write(tmp_path / name, "one\ntwo\n", compression)
        with open_stream(path) as stream:
            assert stream.read() == b"one\ntwo\n"
    members = tmp_path / "rotated.gz"  # `cat a.gz b.gz` is a valid gzip file
    members.write_bytes(gzip.compress(b"one\n") + gzip.compress(b"two\n"))
    with open_stream(members) as stream:
        assert stream.read() == b"one\ntwo\n"


# ------------------------------------------------------------------------------------------------
# Zeek


def test_zeek_dns_tsv(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "dns.log", ZEEK_DNS))
    assert rows(table, "ts", "client", "host", "dst_ip", "dst_port", "source", "line") == [
        (at(2020, 9, 20, 4, 1, 2, 123456), "192.0.2.10", "www.tiktok.com", "198.51.100.53", 53, "zeek-dns", 9),
        (at(2020, 9, 20, 4, 1, 4), "192.0.2.12", "weixin.qq.com", "198.51.100.53", 53, "zeek-dns", 11),
        (at(2020, 9, 20, 4, 1, 5, 500000), "2001:db8::1", None, "198.51.100.53", 53, "zeek-dns", 13),
    ]
    assert table.column("src_ip").null_count == table.num_rows  # only flows have one
    assert (stats.rows, stats.malformed) == (3, 2)
    assert [(e.line, e.message) for e in stats.errors] == [
        (10, "expected 24 fields, found 4"),
        (12, "bad ts '16005x'"),
    ]


def test_zeek_ssl_and_http(tmp_path: Path) -> None:
    ssl, _ = read(write(tmp_path / "ssl.log", ZEEK_SSL))
    assert rows(ssl, "client", "host", "dst_ip", "dst_port", "source") == [
        ("192.0.2.10", "v16-webapp.tiktok.com", "203.0.113.7", 443, "zeek-ssl"),
        ("192.0.2.11", None, "203.0.113.8", 443, "zeek-ssl"),  # (empty) is null
    ]
    http, _ = read(write(tmp_path / "http.log", ZEEK_HTTP))
    assert rows(http, "host", "bytes", "dst_port") == [("log.tiktokv.com", 2058, 80), ("weixin.qq.com", None, 80)]


def test_zeek_json_lines(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "dns.json.log", ZEEK_DNS_JSON))
    assert rows(table, "ts", "client", "host", "dst_port", "line") == [
        (at(2020, 9, 20, 4, 1, 2, 123456), "192.0.2.10", "www.tiktok.com", 53, 1),
        (at(2020, 9, 20, 4, 1, 3, 500000), "192.0.2.11", "weixin.qq.com", 53, 4),
    ]
    assert error_lines(stats) == [2, 5]
    assert stats.errors[1].message.startswith("not a JSON object")


def test_zeek_json_chunks_that_fit_the_schema_take_the_fast_path(tmp_path: Path) -> None:
    lines = [
        f'{{"ts":{1600574462 + i},"uid":"C","id.orig_h":"192.0.2.1","query":"q{i}.example","trans_id":1}}'
        for i in range(50)
    ]
    table, stats = read(write(tmp_path / "dns.log", "\n".join(lines) + "\n\n"))
    assert table.num_rows == 50 and stats.malformed == 0
    assert table.column("line").to_pylist() == list(range(1, 51))


def test_concatenated_zeek_logs_use_each_blocks_fields(tmp_path: Path) -> None:
    reordered = ["query", *[field for field in DNS_FIELDS if field != "query"]]
    second = zeek_header("dns", reordered, DNS_TYPES)
    row = dns_row("1600574470", "192.0.2.20", "x").split("\t")
    moved = "\t".join(["www.tiktok.com", *row[:9], *row[10:]])
    table, stats = read(write(tmp_path / "dns.log", ZEEK_DNS + second + moved))
    assert rows(table, "host", "client")[-1] == ("www.tiktok.com", "192.0.2.20")
    assert table.column("line").to_pylist()[-1] == ZEEK_DNS.count("\n") + 9
    assert stats.malformed == 2


def test_zeek_header_without_rows(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "dns.log", zeek_header("dns", DNS_FIELDS, DNS_TYPES) + "#close\tx\n"))
    assert table.num_rows == 0 and stats == ReadStats()


def test_zeek_reader_given_the_wrong_log_reports_its_lines(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "ssl.log", ZEEK_SSL), fmt="zeek-dns")
    assert table.num_rows == 0 and stats.malformed == 2
    assert "no query field: not a dns log" in stats.errors[0].message
    family, _ = read(write(tmp_path / "x.log", ZEEK_SSL), fmt="zeek")  # a family lets the file decide
    assert family.column("source").to_pylist() == ["zeek-ssl", "zeek-ssl"]


# ------------------------------------------------------------------------------------------------
# BIND


def test_bind_query_log_forms(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "query.log", BIND))
    assert rows(table, "ts", "client", "host", "dst_ip", "line") == [
        (at(2020, 9, 19, 23, 59, 1, 123000), "192.0.2.10", "www.tiktok.com", "198.51.100.53", 1),
        (at(2020, 9, 19, 23, 59, 2), "192.0.2.11", "weixin.qq.com", "198.51.100.53", 2),
        (at(2020, 9, 19, 23, 59, 3), "192.0.2.12", "www.example.org", None, 3),
        (at(2020, 9, 19, 23, 59, 5), "192.0.2.13", "v16.tiktokcdn.com", "2001:db8::53", 7),
        (at(2020, 9, 19, 23, 59, 8, 250000), "192.0.2.15", "y.example", "198.51.100.53", 10),
    ]
    assert stats.skipped == 1  # the zone-loaded line
    assert error_lines(stats) == [5, 8, 9]  # garbage, 31 February, a broken query line
    assert "bad time" in stats.errors[1].message


def test_bind_local_time_zone_and_syslog_year(tmp_path: Path) -> None:
    path = write(tmp_path / "query.log", BIND.splitlines(keepends=True)[0])
    table, _ = read(path, fmt="bind", tz="America/New_York")
    assert table.column("ts").to_pylist() == [at(2020, 9, 20, 3, 59, 1, 123000)]  # EDT is UTC-4
    syslog = "Sep 19 23:59:01 ns1 named[812]: client @0x1 192.0.2.10#53421 (a.example): query: a.example IN A +\n"
    table, _ = read(write(tmp_path / "messages", syslog), year=2021)
    assert rows(table, "ts", "host", "source") == [(at(2021, 9, 19, 23, 59, 1), "a.example", "bind")]
    with pytest.raises(ValueError, match="unknown time zone"):
        BindReader(tz="Mars/Olympus")


def test_crlf_line_ends(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "query.log", BIND.replace("\n", "\r\n")))
    assert table.num_rows == 5 and stats.malformed == 3
    assert table.column("dst_ip").to_pylist()[0] == "198.51.100.53"
    zeek, stats = read(write(tmp_path / "dns.log", ZEEK_DNS.replace("\n", "\r\n")))
    assert zeek.column("host").to_pylist() == ["www.tiktok.com", "weixin.qq.com", None]
    assert error_lines(stats) == [10, 12]


# ------------------------------------------------------------------------------------------------
# dnsmasq


def test_dnsmasq_reads_queries_and_skips_the_rest(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "syslog", DNSMASQ), year=2020)
    assert rows(table, "ts", "client", "host", "line") == [
        (at(2020, 9, 20, 4, 1, 2), "192.0.2.10", "www.tiktok.com", 1),
        (at(2020, 9, 2, 4, 1, 3), "2001:db8::10", "weixin.qq.com", 4),
        (at(2020, 9, 20, 4, 1, 8), "192.0.2.12", "v16.tiktokcdn.com", 10),
    ]
    assert stats.skipped == 5  # forwarded, reply, cached, DHCP, sshd
    assert error_lines(stats) == [8, 9]


def test_dnsmasq_year_from_modification_time(tmp_path: Path) -> None:
    text = (
        "Dec 31 23:59:59 gw dnsmasq[1]: query[A] old.example from 192.0.2.1\n"
        "Jan  1 00:00:01 gw dnsmasq[1]: query[A] new.example from 192.0.2.1\n"
    )
    path = write(tmp_path / "dnsmasq.log", text)
    rotated = dt.datetime(2021, 1, 5, tzinfo=UTC).timestamp()
    os.utime(path, (rotated, rotated))
    table, _ = read(path)
    assert table.column("ts").to_pylist() == [at(2020, 12, 31, 23, 59, 59), at(2021, 1, 1, 0, 0, 1)]
    berlin, _ = read(path, tz="Europe/Berlin")
    assert berlin.column("ts").to_pylist()[1] == at(2020, 12, 31, 23, 0, 1)
    assert DnsmasqReader(year=1999).year == 1999


# ------------------------------------------------------------------------------------------------
# Flows


def test_nfdump_csv_skips_its_summary(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "flows.csv", NFDUMP))
    assert rows(table, "ts", "client", "src_ip", "dst_ip", "dst_port", "bytes", "host", "line") == [
        (at(2020, 9, 20, 4, 1, 2), "192.0.2.10", "192.0.2.10", "203.0.113.5", 443, 5555, None, 2),
        (at(2020, 9, 20, 4, 1, 4, 500000), "192.0.2.11", "192.0.2.11", "203.0.113.6", None, 84, None, 3),
    ]
    assert error_lines(stats) == [4, 5]
    assert stats.skipped == 3


def test_aws_vpc_flow_logs_with_and_without_header(tmp_path: Path) -> None:
    table, stats = read(write(tmp_path / "vpc.log.gz", AWS_HEADER + AWS_ROWS, "gzip"))
    assert rows(table, "ts", "src_ip", "dst_ip", "dst_port", "bytes", "source", "line") == [
        (at(2020, 9, 20, 4, 1, 2), "192.0.2.10", "203.0.113.5", 443, 4249, "aws-vpc", 2),
    ]
    assert (stats.skipped, error_lines(stats)) == (1, [4])
    bare, _ = read(write(tmp_path / "bare.log", AWS_ROWS))
    assert bare.column("line").to_pylist() == [1]


def test_flow_parquet(tmp_path: Path) -> None:
    path = tmp_path / "flows.parquet"
    flows = {
        "version": [2, 2],
        "account_id": ["1", "1"],
        "srcaddr": ["192.0.2.10", "192.0.2.11"],
        "dstaddr": ["203.0.113.5", "203.0.113.6"],
        "dstport": [443, 70000],
        "bytes": [100, None],
        "start": [1600574462, None],
        "log_status": ["OK", "OK"],
    }
    pq.write_table(pa.table(flows), path)
    assert detect(path).name == "aws-vpc"
    table, stats = read(path)
    assert rows(table, "ts", "dst_ip", "dst_port", "bytes", "line") == [
        (at(2020, 9, 20, 4, 1, 2), "203.0.113.5", 443, 100, 1)
    ]
    assert [(e.line, e.message) for e in stats.errors] == [(2, "missing flow start")]


# ------------------------------------------------------------------------------------------------
# Generic


GENERIC_CSV = (
    "Time;QueryName;Client;Account;Port\n"
    "2020-09-20T04:01:02+02:00;www.tiktok.com;192.0.2.10;acme;443\n"
    '1600574462.25;"weixin.qq.com";192.0.2.11;"Acme; Inc";x\n'
    "2020-09-20 04:01:02;naive.example;192.0.2.12;acme;53\n"
    '2020-09-20T04:01:02Z;"unbalanced;192.0.2.13;acme;53\n'
    "2020-09-20T04:01:05Z;last.example;192.0.2.14;acme;53\n"
)
COLUMN_MAP = {"ts": "Time", "host": "QueryName", "client": "Client", "customer": "Account", "dst_port": "Port"}


def test_generic_csv_with_a_column_map(tmp_path: Path) -> None:
    path = write(tmp_path / "export.csv", "\ufeff" + GENERIC_CSV)  # with the byte order mark Excel writes
    table, stats = read(path, column_map=COLUMN_MAP)
    assert rows(table, "ts", "host", "client", "customer", "dst_port", "source", "line") == [
        (at(2020, 9, 20, 2, 1, 2), "www.tiktok.com", "192.0.2.10", "acme", 443, "generic", 2),
        (at(2020, 9, 20, 4, 1, 2, 250000), "weixin.qq.com", "192.0.2.11", "Acme; Inc", None, "generic", 3),
        (at(2020, 9, 20, 4, 1, 5), "last.example", "192.0.2.14", "acme", 53, "generic", 6),
    ]
    assert error_lines(stats) == [4, 5]
    assert "no UTC offset" in stats.errors[0].message
    zoned, stats = read(path, column_map=COLUMN_MAP, tz="Asia/Shanghai")
    assert zoned.column("ts").to_pylist()[2] == at(2020, 9, 19, 20, 1, 2)
    assert error_lines(stats) == [5]


def test_generic_jsonl_and_parquet(tmp_path: Path) -> None:
    jsonl = (
        '{"Time": 1600574462, "QueryName": "www.tiktok.com", "Client": "192.0.2.10", "Account": 7, "Port": 443}\n'
        '{"Time": "2020-09-20T04:01:03Z", "QueryName": "weixin.qq.com", "Client": null, "Account": "b", "Port": 53}\n'
    )
    table, _ = read(write(tmp_path / "export.jsonl", jsonl, "zstd"), column_map=COLUMN_MAP)
    assert rows(table, "ts", "host", "customer", "dst_port") == [
        (at(2020, 9, 20, 4, 1, 2), "www.tiktok.com", "7", 443),
        (at(2020, 9, 20, 4, 1, 3), "weixin.qq.com", "b", 53),
    ]
    path = tmp_path / "export.parquet"
    stamps = pa.array([dt.datetime(2020, 9, 20, 4, 1, 2, tzinfo=UTC)], pa.timestamp("ms", tz="UTC"))
    pq.write_table(pa.table({"Time": stamps, "QueryName": ["www.tiktok.com"], "Client": ["192.0.2.10"]}), path)
    table, _ = read(path, fmt="generic", column_map={"ts": "Time", "host": "QueryName"})
    assert rows(table, "ts", "host", "client", "line") == [(at(2020, 9, 20, 4, 1, 2), "www.tiktok.com", None, 1)]


def test_generic_column_map_mistakes_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "export.csv", GENERIC_CSV)
    with pytest.raises(ValueError, match="cannot map colour"):
        read_log(path, column_map={"ts": "Time", "colour": "x"})
    with pytest.raises(ValueError, match="no column 'Hostname' \\(for host\\)"):
        read_log(path, column_map={"ts": "Time", "host": "Hostname"})
    with pytest.raises(ValueError, match="no timestamp column"):
        read_log(path, column_map={"host": "QueryName"})
    with pytest.raises(ValueError, match="column map is for --log-format generic"):
        read_log(path, fmt="bind", column_map=COLUMN_MAP)


# ------------------------------------------------------------------------------------------------
# Edge cases: empty files, long lines, bytes that are not UTF-8, truncated archives


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_empty_files_hold_no_records(tmp_path: Path, compression: str | None) -> None:
    path = write(tmp_path / "empty.log", "", compression)
    for options in ({}, {"fmt": "bind"}, {"fmt": "zeek"}, {"fmt": "nfdump"}):
        table, stats = read(path, **options)
        assert table.num_rows == 0 and stats.malformed == 0
    blank = write(tmp_path / "blank.log", "\n\n\r\n")
    assert read(blank)[1] == ReadStats()
    assert detect(write(tmp_path / "dns.log", "")).name == "zeek-dns"  # only the name is left to go by
    with pytest.raises(ValueError, match="cannot tell"):
        detect(path)


def test_long_lines_are_reported_not_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 4096)
    good = "Sep 20 04:01:02 gw dnsmasq[1]: query[A] a{}.example from 192.0.2.1\n"
    huge = "Sep 20 04:01:02 gw dnsmasq[1]: query[A] " + "x" * 10_000 + " from 192.0.2.1\n"
    lines = [good.format(i) for i in range(200)]
    lines[50] = huge  # longer than two reads
    lines[120] = "Sep 20 04:01:02 gw dnsmasq[1]: query[A] " + "y" * 4060 + " from 192.0.2.1\n"  # just over
    path = write(tmp_path / "dnsmasq.log", "".join(lines) + huge.rstrip("\n"))  # and one unterminated at the end
    table, stats = read(path, year=2020)
    assert table.num_rows == 198
    assert error_lines(stats) == [51, 121, 201]
    assert stats.errors[0].message == "line longer than 4096 bytes"
    expected = [n for n in range(1, 201) if n not in (51, 121)]
    assert table.column("line").to_pylist() == expected
    assert table.column("host").to_pylist()[-1] == "a199.example"


def test_long_line_within_the_limit_is_read(tmp_path: Path) -> None:
    host = "a" * 500_000 + ".example"
    table, stats = read(write(tmp_path / "dns.log", ZEEK_DNS.replace("weixin.qq.com", host)))
    assert host in table.column("host").to_pylist() and stats.malformed == 2


def test_bytes_that_are_not_utf8_are_replaced_and_the_line_kept(tmp_path: Path) -> None:
    latin1 = ZEEK_HTTP.encode("utf-8").replace(b"\tcurl\t10", b"\tNavegador Espa\xf1ol\t10")
    table, stats = read(write(tmp_path / "http.log", latin1, "gzip"))
    assert table.column("host").to_pylist() == ["log.tiktokv.com", "weixin.qq.com"]
    assert stats.non_utf8 == 1 and stats.malformed == 0
    bind = BIND.encode("utf-8").replace(b"query: www.example.org", b"query: caf\xe9.example")
    table, stats = read(write(tmp_path / "query.log", bind))
    assert "caf\ufffd.example" in table.column("host").to_pylist()
    assert stats.non_utf8 == 1


def test_truncated_archive_keeps_what_was_read(tmp_path: Path) -> None:
    text = "".join(dns_row(f"{1600574462 + i}", "192.0.2.1", f"q{i}.example") for i in range(20_000))
    data = gzip.compress((zeek_header("dns", DNS_FIELDS, DNS_TYPES) + text).encode())
    path = tmp_path / "dns.log.gz"
    path.write_bytes(data[: len(data) // 2])
    table, stats = read(path)
    assert 0 < table.num_rows < 20_000
    assert stats.errors[-1].message.startswith("the input breaks off here")


@pytest.mark.parametrize("workers", [1, 3])
def test_errors_stay_in_line_order_and_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 2048)  # many chunks, parsed in turn or on threads
    monkeypatch.setattr(chunks, "WORKERS", workers)
    good = "Sep 20 04:01:02 gw dnsmasq[1]: query[A] a.example from 192.0.2.1\n"
    lines = [good if i % 7 else "garbage\n" for i in range(1, 1401)]
    table, stats = read(write(tmp_path / "dnsmasq.log", "".join(lines)), year=2020)
    assert stats.malformed == 200 and len(stats.errors) == 100
    assert error_lines(stats) == list(range(7, 701, 7))
    assert table.num_rows == stats.rows == 1200


# ------------------------------------------------------------------------------------------------
# Streaming


def test_large_zeek_log_streams_in_bounded_batches(tmp_path: Path) -> None:
    count = 300_000
    row = dns_row("{ts}", "192.0.2.{c}", "{q}.example")
    body = "".join(row.format(ts=f"{1600574462 + i / 1000:.6f}", c=i % 250, q=i % 97) for i in range(count))
    path = write(tmp_path / "dns.log", zeek_header("dns", DNS_FIELDS, DNS_TYPES) + body)
    batches, stats = read_log(path, batch_rows=65_536)
    sizes, last_line, first_ts = [], 0, None
    for batch in batches:
        sizes.append(batch.num_rows)
        lines = batch.column("line").to_numpy()
        assert lines[0] == last_line + 1 or last_line == 0
        last_line = int(lines[-1])
        first_ts = first_ts or batch.column("ts")[0].as_py()
    assert len(sizes) >= 5 and max(sizes) <= 65_536 and sum(sizes) == count == stats.rows
    assert last_line == count + 8 and stats.malformed == 0
    assert first_ts == at(2020, 9, 20, 4, 1, 2)


# ------------------------------------------------------------------------------------------------
# Fast paths agree with the general ones


def test_zeek_declared_types_read_the_same_as_strings(tmp_path: Path) -> None:
    # With `#types`, time/port/count columns are parsed as numbers; a chunk where one does not parse is
    # read as strings. Without `#types` everything is read as strings. Both must give the same records.
    header = zeek_header("dns", DNS_FIELDS, DNS_TYPES)
    clean = dns_row("1600574462.123456", "192.0.2.10", "www.tiktok.com") + dns_row("1600574465", "::1", "-")
    messy = clean + dns_row("1600574466.25", "192.0.2.14", "a.example").replace("\t53\t", "\t8.0\t", 1)
    messy += dns_row(" 1600574467 ", "192.0.2.15", "b.example") + dns_row("-5", "192.0.2.16", "c.example")
    for body in (clean, messy):
        typed, typed_stats = read(write(tmp_path / "typed.log", header + body))
        untyped_header = "".join(line for line in header.splitlines(True) if not line.startswith("#types"))
        plain, plain_stats = read(write(tmp_path / "plain.log", untyped_header + body))
        assert typed.num_rows == plain.num_rows == body.count("\n") - (body is messy)
        assert typed.drop_columns(["line"]).equals(plain.drop_columns(["line"]))
        shifted = [(e.line - 1, e.message) for e in typed_stats.errors]  # the #types line is one more line
        assert shifted == [(e.line, e.message) for e in plain_stats.errors]
    assert rows(typed, "client", "dst_port")[-2:] == [("192.0.2.14", None), ("192.0.2.15", 53)]  # "8.0": no port
    assert [(e.line, e.message) for e in typed_stats.errors] == [(13, "bad ts '-5'")]


@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from("ab.\t \u00a0\u3000\u2028\x1c\r\nz\u00e9")))))
@settings(max_examples=300, deadline=None)
def test_to_text_trims_exactly_like_arrow(values: list[str | None]) -> None:
    array = pa.array(["pad", *values], pa.string()).slice(1)  # a slice: offsets that do not start at 0
    trimmed = pc.utf8_trim_whitespace(array)
    expected = pc.if_else(pc.equal(pc.binary_length(trimmed), 0), pa.scalar(None, pa.string()), trimmed)
    assert reading_values.to_text(array).to_pylist() == expected.to_pylist()


_TIME_PIECES = st.tuples(
    st.sampled_from(["2020-09-20", "2021-02-30", "2020-9-20", "20200920"]),
    st.sampled_from(["T", " ", "t"]),
    st.sampled_from(["04", "04:01", "04:01:02", "04:01:02.5", "04:01:02,123", "04:01:02.1234567", "24:00", "4:01"]),
    st.sampled_from(["", "Z", "z", "+02:00", "-0530", "+02", " +02:00", "+2"]),
)


@given(st.lists(st.one_of(st.none(), _TIME_PIECES.map("".join), st.sampled_from(["1600574462.5", " 12 ", "x"]))))
@settings(max_examples=300, deadline=None)
def test_timestamp_fast_path_reads_what_the_general_one_does(values: list[str | None]) -> None:
    # One cast takes a column of ISO 8601 with offsets; it must agree with the general parser on every value.
    array = pa.array(values, pa.string())
    for tz in (None, "Europe/Berlin"):
        general = reading_values._parse_strings(array, tz)
        assert reading_values._from_strings(array, tz).to_pylist() == general.to_pylist()
        for value, expected in zip(values, general.to_pylist(), strict=True):
            single = reading_values._from_strings(pa.array([value], pa.string()), tz)[0].as_py()
            assert single == expected, value


@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 2e9), st.just(-0.5))))
@settings(max_examples=300, deadline=None)
def test_epoch_seconds_fast_path_reads_what_the_general_one_does(seconds: list[float]) -> None:
    # The numpy path serves columns without nulls; a trailing null sends the same values down Arrow's kernels.
    fast = reading_values._from_epoch(pa.array(seconds, pa.float64()))
    general = reading_values._from_epoch(pa.array([*seconds, None], pa.float64()))
    assert fast.to_pylist() == general.to_pylist()[:-1]
