"""Readers for GCP and Azure flow logs, Pi-hole's query database, BIND in a shared syslog, and the notice that
yearless syslog times took their year from the file.

Samples are built here from each format's public documentation:
- GCP: https://cloud.google.com/vpc/docs/about-flow-logs-records (LogEntry with jsonPayload.connection,
  start_time, bytes_sent as a proto3 int64 string), logName `.../logs/compute.googleapis.com%2Fvpc_flows`;
- Azure: https://learn.microsoft.com/azure/network-watcher/nsg-flow-logs-overview (NSG, versions 1 and 2)
  and .../vnet-flow-logs-overview (VNet, times in milliseconds);
- Pi-hole: https://docs.pi-hole.net/database/query-database/ (v5 `queries`, v6 `query_storage` and the
  `*_by_id` linking tables), built with sqlite3 here.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from appban.cli import app
from appban.network.readers import READER_NAMES, cloudflows, pihole
from appban.network.records import RECORD_SCHEMA, detect, read_log
from appban.reading.stats import ReadStats
from appban.screen.network import NetworkOptions, screen_network

UTC = dt.UTC


def write(path: Path, content: str | bytes, gz: bool = False) -> Path:
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read(path: Path, **options: Any) -> tuple[pa.Table, ReadStats]:
    batches, stats = read_log(path, **options)
    collected = list(batches)
    assert all(batch.schema == RECORD_SCHEMA for batch in collected)
    return pa.Table.from_batches(collected, schema=RECORD_SCHEMA), stats


def rows(table: pa.Table, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in table.select(list(columns)).to_pylist()]


def errors(stats: ReadStats) -> list[tuple[int, str]]:
    return [(error.line, error.message) for error in stats.errors]


def at(year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# GCP VPC Flow Logs


def gcp_entry(src: str, dst: str, port: int, start: str, sent: Any = "1776", **extra: Any) -> dict[str, Any]:
    return {
        "insertId": "a1",
        "jsonPayload": {
            "connection": {"src_ip": src, "src_port": 40001, "dest_ip": dst, "dest_port": port, "protocol": 6},
            "start_time": start,
            "end_time": "2020-09-20T04:01:09.5Z",
            "bytes_sent": sent,
            "packets_sent": "7",
            "reporter": "SRC",
            "src_instance": {"project_id": "p", "region": "us-east1", "vm_name": "web", "zone": "us-east1-b"},
        },
        "logName": "projects/p/logs/compute.googleapis.com%2Fvpc_flows",
        "resource": {"type": "gce_subnetwork", "labels": {"project_id": "p", "subnetwork_name": "default"}},
        "timestamp": "2020-09-20T04:05:00.000000001Z",
        **extra,
    }


GCP_LINES = [
    gcp_entry("10.0.0.2", "203.0.113.5", 443, "2020-09-20T04:01:02.123456789Z"),
    gcp_entry("10.0.0.3", "203.0.113.6", 80, "2020-09-20T04:01:03Z", sent="0"),
]


def gcp_text(entries: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(entry) + "\n" for entry in entries)


def test_gcp_vpc_flows_json_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "compute.googleapis.com_vpc_flows.json", gcp_text(GCP_LINES))
    assert detect(path).name == "gcp-vpc"
    table, stats = read(path)
    assert rows(table, "ts", "client", "src_ip", "dst_ip", "dst_port", "bytes", "host", "source", "line") == [
        (at(2020, 9, 20, 4, 1, 2, 123456), "10.0.0.2", "10.0.0.2", "203.0.113.5", 443, 1776, None, "gcp-vpc", 1),
        (at(2020, 9, 20, 4, 1, 3), "10.0.0.3", "10.0.0.3", "203.0.113.6", 80, 0, None, "gcp-vpc", 2),
    ]
    assert stats.malformed == 0
    zipped, _ = read(write(tmp_path / "flows.json.gz", gcp_text(GCP_LINES), gz=True))
    assert zipped.equals(table)


def test_gcp_odd_lines_are_read_one_by_one(tmp_path: Path) -> None:
    flat = {
        "jsonPayload.connection.src_ip": "10.0.0.4",
        "jsonPayload.connection.dest_ip": "203.0.113.7",
        "jsonPayload.connection.dest_port": "8443",
        "jsonPayload.start_time": "2020-09-20T04:01:04Z",
        "jsonPayload.bytes_sent": 99,
    }
    no_start = gcp_entry("10.0.0.5", "203.0.113.8", 443, "")
    no_start["jsonPayload"].pop("start_time")
    lines = [
        json.dumps(GCP_LINES[0]),
        json.dumps(gcp_entry("10.0.0.6", "203.0.113.9", 443, "2020-09-20T04:01:06Z", sent=12)),  # a number
        json.dumps(flat),
        "",
        "{not json",
        json.dumps({"logName": "projects/p/logs/compute.googleapis.com%2Fvpc_flows", "jsonPayload": {}}),
        json.dumps(no_start),
        json.dumps(gcp_entry("10.0.0.7", "203.0.113.10", 443, "yesterday", timestamp=None)),
    ]
    table, stats = read(write(tmp_path / "flows.json", "\n".join(lines) + "\n"), fmt="gcp-vpc")
    assert rows(table, "ts", "src_ip", "dst_ip", "dst_port", "bytes", "line") == [
        (at(2020, 9, 20, 4, 1, 2, 123456), "10.0.0.2", "203.0.113.5", 443, 1776, 1),
        (at(2020, 9, 20, 4, 1, 6), "10.0.0.6", "203.0.113.9", 443, 12, 2),
        (at(2020, 9, 20, 4, 1, 4), "10.0.0.4", "203.0.113.7", 8443, 99, 3),
        (at(2020, 9, 20, 4, 5, 0), "10.0.0.5", "203.0.113.8", 443, 1776, 7),  # the entry's own time
    ]
    assert [line for line, _ in errors(stats)] == [5, 6, 8]
    assert errors(stats)[1][1] == "no jsonPayload.connection"
    assert errors(stats)[2][1] == "bad start_time 'yesterday'"


# ------------------------------------------------------------------------------------------------
# Azure NSG and VNet flow logs


def nsg_record(version: int, tuples: list[str], rule: str = "DefaultRule_AllowInternetOutBound") -> dict[str, Any]:
    return {
        "time": "2020-09-20T04:02:00.0000000Z",
        "systemId": "00000000-0000-0000-0000-000000000001",
        "category": "NetworkSecurityGroupFlowEvent",
        "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/NSG",
        "operationName": "NetworkSecurityGroupFlowEvents",
        "properties": {
            "Version": version,
            "flows": [{"rule": rule, "flows": [{"mac": "000D3AF8801A", "flowTuples": tuples}]}],
        },
    }


NSG_V2 = [
    "1600574462,10.1.0.4,203.0.113.5,44931,443,T,O,A,B,,,,",
    "1600574522,10.1.0.4,203.0.113.5,44931,443,T,O,A,E,30,16978,24,14008",
    "1600574523,10.1.0.4,203.0.113.6",  # too few fields
    "soon,10.1.0.4,203.0.113.6,44932,443,T,O,A,C,1,2,3,4",
]
NSG_V1 = ["1600574530,198.51.100.7,10.1.0.4,51529,3389,T,I,D"]
VNET = {
    "time": "2020-09-20T04:03:00.0000000Z",
    "flowLogVersion": 4,
    "macAddress": "00224871C205",
    "category": "FlowLogFlowEvent",
    "operationName": "FlowLogFlowEvent",
    "flowRecords": {
        "flows": [
            {
                "aclID": "00000000-0000-0000-0000-000000000002",
                "flowGroups": [
                    {
                        "rule": "DefaultRule_AllowInternetOutBound",
                        "flowTuples": [
                            "1600574540123,10.0.0.6,203.0.113.9,23956,443,6,O,E,NX,3,767,2,1580",
                            "1600574541,10.0.0.6,203.0.113.9,23957,443,6,O,B,NX,0,0,0,0",
                        ],
                    }
                ],
            }
        ]
    },
}


def test_azure_nsg_document_pretty_and_compact(tmp_path: Path) -> None:
    document = {"records": [nsg_record(2, NSG_V2), nsg_record(1, NSG_V1, "DefaultRule_DenyAllInBound")]}
    pretty = write(tmp_path / "PT1H.json", json.dumps(document, indent=2))
    assert detect(pretty).name == "azure-flow"
    table, stats = read(pretty)
    assert rows(table, "ts", "src_ip", "dst_ip", "dst_port", "bytes", "source") == [
        (at(2020, 9, 20, 4, 1, 2), "10.1.0.4", "203.0.113.5", 443, None, "azure-flow"),
        (at(2020, 9, 20, 4, 2, 2), "10.1.0.4", "203.0.113.5", 443, 16978 + 14008, "azure-flow"),
        (at(2020, 9, 20, 4, 2, 10), "198.51.100.7", "10.1.0.4", 3389, None, "azure-flow"),
    ]
    lines = pretty.read_text().splitlines()
    for line, tuple_text in zip(table.column("line").to_pylist(), [NSG_V2[0], NSG_V2[1], NSG_V1[0]], strict=True):
        assert tuple_text in lines[line - 1]  # the line the tuple is written on
    bad = [line for line, _ in errors(stats)]
    assert [lines[line - 1].strip().strip(",") for line in bad] == [json.dumps(NSG_V2[2]), json.dumps(NSG_V2[3])]
    assert errors(stats)[0][1].startswith("not a flow tuple") and "bad flow time" in errors(stats)[1][1]
    compact, compact_stats = read(write(tmp_path / "compact.json.gz", json.dumps(document), gz=True))
    assert compact.drop_columns(["line"]).equals(table.drop_columns(["line"]))
    assert set(compact.column("line").to_pylist()) == {1} and compact_stats.malformed == 2


def test_azure_vnet_flow_logs_and_records_a_line(tmp_path: Path) -> None:
    lines = [json.dumps({"records": [VNET]}), json.dumps(nsg_record(2, NSG_V2[:2])), "[1,", json.dumps({"x": 1})]
    path = write(tmp_path / "flowlogs.json", "\n".join(lines) + "\n")
    table, stats = read(path, fmt="flows")
    assert rows(table, "ts", "src_ip", "dst_port", "bytes", "line") == [
        (at(2020, 9, 20, 4, 2, 20, 123000), "10.0.0.6", 443, 767 + 1580, 1),  # milliseconds
        (at(2020, 9, 20, 4, 2, 21), "10.0.0.6", 443, 0, 1),
        (at(2020, 9, 20, 4, 1, 2), "10.1.0.4", 443, None, 2),
        (at(2020, 9, 20, 4, 2, 2), "10.1.0.4", 443, 16978 + 14008, 2),
    ]
    assert [line for line, _ in errors(stats)] == [3, 4]
    assert "not JSON" in errors(stats)[0][1] and "neither properties.flows" in errors(stats)[1][1]


def test_azure_documents_that_cannot_be_read_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = write(tmp_path / "broken.json", '{"records": [{"category": "NetworkSecurityGroupFlowEvent", ')
    table, stats = read(broken, fmt="azure-flow")
    assert table.num_rows == 0 and stats.malformed == 1 and "not a JSON document" in stats.errors[0].message
    monkeypatch.setattr(cloudflows, "MAX_JSON_DOCUMENT_BYTES", 100)
    big = write(tmp_path / "big.json", json.dumps({"records": [nsg_record(2, NSG_V2[:2])]}))
    table, stats = read(big, fmt="azure-flow")
    assert table.num_rows == 0 and "longer than 100 bytes is not read" in stats.errors[0].message


# ------------------------------------------------------------------------------------------------
# Pi-hole FTL database

V5_SCHEMA = (
    "CREATE TABLE queries (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp INTEGER NOT NULL, type INTEGER NOT NULL,"
    " status INTEGER NOT NULL, domain TEXT NOT NULL, client TEXT NOT NULL, forward TEXT, additional_info BLOB,"
    " reply_type INTEGER, reply_time REAL, dnssec INTEGER);"
)
V6_SCHEMA = (
    "CREATE TABLE query_storage (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp INTEGER NOT NULL,"
    " type INTEGER NOT NULL, status INTEGER NOT NULL, domain INTEGER NOT NULL, client INTEGER NOT NULL,"
    " forward INTEGER, additional_info INTEGER, reply_type INTEGER, reply_time REAL, dnssec INTEGER);"
    "CREATE TABLE domain_by_id (id INTEGER PRIMARY KEY, domain TEXT NOT NULL);"
    "CREATE TABLE client_by_id (id INTEGER PRIMARY KEY, ip TEXT NOT NULL, name TEXT);"
    "CREATE VIEW queries AS SELECT q.id, q.timestamp, q.type, q.status, COALESCE(d.domain, q.domain) AS domain,"
    " COALESCE(c.ip, q.client) AS client FROM query_storage q LEFT JOIN domain_by_id d ON q.domain = d.id"
    " LEFT JOIN client_by_id c ON q.client = c.id;"
)


def database(path: Path, script: str, rows: list[tuple[Any, ...]] = (), table: str = "query_storage") -> Path:  # type: ignore[assignment]
    with sqlite3.connect(path) as connection:
        connection.executescript(script)
        if rows:
            connection.executemany(
                f"INSERT INTO {table} (timestamp, type, status, domain, client) VALUES (?, 1, 2, ?, ?)",
                rows,
            )
    connection.close()
    return path


def v6(path: Path) -> Path:
    return database(
        path,
        V6_SCHEMA
        + "INSERT INTO domain_by_id VALUES (1, 'www.tiktok.com'), (2, 'weixin.qq.com');"
        + "INSERT INTO client_by_id VALUES (1, '192.168.1.20', 'phone'), (2, 'fd00::20', '');",
        [
            (1600574462, "old.example", "192.168.1.9"),  # a row from before the upgrade: strings inline
            (1600574463.25, 1, 1),
            (1600574464, 2, 2),
            ("noon", 1, 1),
            (1600574465, 99, 1),  # an id domain_by_id does not hold
            (1600574466, 1, 2),
        ],
    )


def test_pihole_v6_database(tmp_path: Path) -> None:
    path = v6(tmp_path / "pihole-FTL.db")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    assert detect(path).name == "pihole"
    table, stats = read(path, batch_rows=2)
    assert rows(table, "ts", "client", "host", "source", "line") == [
        (at(2020, 9, 20, 4, 1, 2), "192.168.1.9", "old.example", "pihole", 1),
        (at(2020, 9, 20, 4, 1, 3, 250000), "192.168.1.20", "www.tiktok.com", "pihole", 2),
        (at(2020, 9, 20, 4, 1, 4), "fd00::20", "weixin.qq.com", "pihole", 3),
        (at(2020, 9, 20, 4, 1, 6), "fd00::20", "www.tiktok.com", "pihole", 6),
    ]
    assert [line for line, _ in errors(stats)] == [4, 5]
    # Read-only and immutable: the file is as it was, and nothing appeared beside it.
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pihole-FTL.db"]


def test_pihole_v5_database(tmp_path: Path) -> None:
    path = database(tmp_path / "old.db", V5_SCHEMA, [(1600574462, "www.tiktok.com", "10.0.0.2")], table="queries")
    table, stats = read(path)
    assert rows(table, "ts", "client", "host", "line") == [(at(2020, 9, 20, 4, 1, 2), "10.0.0.2", "www.tiktok.com", 1)]
    assert stats.malformed == 0


def test_pihole_files_that_are_not_query_databases(tmp_path: Path) -> None:
    garbage = write(tmp_path / "garbage.db", pihole.MAGIC + b"queries" + os.urandom(2000))
    assert detect(garbage).name == "pihole"
    with pytest.raises(ValueError, match=r"garbage\.db: cannot (open|read) this SQLite database"):
        read_log(garbage)
    other = database(tmp_path / "other.db", "CREATE TABLE queries (id INTEGER PRIMARY KEY, name TEXT);")
    with pytest.raises(ValueError, match=r"the queries table has no timestamp, domain, client column; .*id, name"):
        read_log(other, fmt="pihole")
    no_key = database(
        tmp_path / "nokey.db", V6_SCHEMA.replace("domain_by_id (id INTEGER PRIMARY KEY,", "domain_by_id (id INTEGER,")
    )
    with pytest.raises(ValueError, match="domain_by_id is not keyed by an INTEGER PRIMARY KEY"):
        read_log(no_key, fmt="pihole")
    zipped = write(tmp_path / "pihole-FTL.db.gz", v6(tmp_path / "copy.db").read_bytes(), gz=True)
    with pytest.raises(ValueError, match="compressed SQLite database cannot be read in place"):
        read_log(zipped)


def test_pihole_long_values_and_runaway_reads_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = database(
        tmp_path / "long.db",
        V6_SCHEMA,
        [
            (1600574462, "a.example", "10.0.0.1"),
            (1600574463, "x" * 5000, "10.0.0.1"),
            (1600574464, "b.example", "10.0.0.1"),
        ],
    )
    monkeypatch.setattr(pihole, "MAX_VALUE_BYTES", 1000)
    table, stats = read(path)
    assert table.column("host").to_pylist() == ["a.example", "b.example"]
    assert errors(stats) == [(2, "a value longer than 1,000 bytes")]
    monkeypatch.setattr(pihole, "STEPS_PER_ROW", 0)
    monkeypatch.setattr(pihole, "BASE_STEPS", 0)
    monkeypatch.setattr(pihole, "_TICK", 1)
    table, stats = read(path)
    assert table.num_rows == 0 and "cannot be read from here on (interrupted)" in stats.errors[0].message


# ------------------------------------------------------------------------------------------------
# BIND in a shared syslog, and yearless times

SHARED_SYSLOG = (
    "Sep 19 23:59:00 ns1 systemd[1]: Started Session 5 of user root.\n"
    "Sep 19 23:59:01 ns1 named[812]: client @0x7f1 192.0.2.10#53421 (www.tiktok.com): query: www.tiktok.com IN A"
    " +E(0)K (198.51.100.53)\n"
    "Sep 19 23:59:02 ns1 CRON[99]: (root) CMD (run-parts /etc/cron.hourly)\n"
    "Sep 19 23:59:03 ns1 kernel: [   12.345] eth0: link up\n"
    "Sep 19 23:59:04 ns1 named[812]: zone example.org/IN: loaded serial 1\n"
    "Sep 19 23:59:05 ns1 named[812]: client @0x7f1 broken query: \n"
    "2020-09-19T23:59:06.123456+02:00 ns1 named[812]: queries: info: client @0x1 192.0.2.11#1 (a.example): query:"
    " a.example IN A + (198.51.100.53)\n"
    "2020-09-19T23:59:07.5+00:00 ns1 sshd[5]: Accepted publickey for root: query: x\n"
    "<30>1 2020-09-19T23:59:08Z ns1 named 812 - - client @0x1 192.0.2.12#1 (b.example): query: b.example IN AAAA +"
    " (198.51.100.53)\n"
    "garbage\n"
)


def test_bind_in_a_shared_syslog_skips_other_programs(tmp_path: Path) -> None:
    path = write(tmp_path / "syslog", SHARED_SYSLOG)
    assert detect(path).name == "bind"
    table, stats = read(path, year=2020)
    assert rows(table, "ts", "client", "host", "line") == [
        (at(2020, 9, 19, 23, 59, 1), "192.0.2.10", "www.tiktok.com", 2),
        (at(2020, 9, 19, 21, 59, 6, 123456), "192.0.2.11", "a.example", 7),
        (at(2020, 9, 19, 23, 59, 8), "192.0.2.12", "b.example", 9),
    ]
    assert stats.skipped == 5  # systemd, CRON, kernel, a zone loaded, sshd
    assert [line for line, _ in errors(stats)] == [6, 10]
    assert stats.notes == []  # the year was given


def test_a_shared_syslog_with_the_first_query_far_down_is_still_recognised(tmp_path: Path) -> None:
    other = "".join(f"Sep 19 23:58:{i % 60:02d} ns1 systemd[1]: unit {i} started\n" for i in range(300))
    path = write(tmp_path / "messages", other + SHARED_SYSLOG)
    assert detect(path).name == "bind"
    dnsmasq = "Sep 20 04:01:02 gw dnsmasq[123]: query[A] www.tiktok.com from 192.0.2.10\n"
    assert detect(write(tmp_path / "syslog", other + dnsmasq)).name == "dnsmasq"


def test_yearless_times_say_which_year_they_took(tmp_path: Path) -> None:
    dnsmasq = write(tmp_path / "pihole.log", "Dec 31 23:59:59 dnsmasq[1]: query[A] www.tiktok.com from 10.0.0.2\n")
    bind = write(tmp_path / "syslog", SHARED_SYSLOG)
    stamp = dt.datetime(2021, 1, 5, 12, tzinfo=UTC).timestamp()
    for path in (dnsmasq, bind):
        os.utime(path, (stamp, stamp))
        table, stats = read(path)
        assert [str(note) for note in stats.notes] == [
            f"{path}: syslog times carry no year: 2021 was taken from the file's modification time (2021-01-05),"
            " 2020 for lines dated after January; give the year with --log-year"
        ]
    assert table.column("ts").to_pylist()[0] == at(2020, 9, 19, 23, 59, 1)
    _, given = read(dnsmasq, year=2020)
    iso = write(tmp_path / "iso.log", "2020-09-20T04:01:02Z gw dnsmasq[1]: query[A] a.example from 10.0.0.2\n")
    _, zoned = read(iso)
    assert given.notes == [] and zoned.notes == []  # nothing was assumed


def test_the_year_notice_reaches_the_result_and_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path / "dnsmasq.log", "Sep 20 04:01:02 gw dnsmasq[1]: query[A] www.tiktok.com from 10.0.0.2\n")
    stamp = dt.datetime(2020, 10, 1, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    result = screen_network([path], NetworkOptions(role="hosting"))
    assert len(result.notes) == 1 and "2020 was taken from the file's modification time" in result.notes[0]
    cli = CliRunner().invoke(app, ["screen", "network", str(path), "--role", "hosting", "--format", "json"])
    assert cli.exit_code == 0, cli.output  # an assumption is said, it is no error
    assert json.loads(cli.stdout)["notes"] == result.notes
    assert "note:" in cli.stderr and "--log-year" in cli.stderr
    given = CliRunner().invoke(app, ["screen", "network", str(path), "--role", "hosting", "--log-year", "2020"])
    assert given.exit_code == 0 and "note:" not in given.stderr


def test_new_readers_are_listed() -> None:
    assert {"gcp-vpc", "azure-flow", "pihole"} <= set(READER_NAMES)
