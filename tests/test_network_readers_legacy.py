"""CoreDNS's older and custom query-log formats, and Windows DNS debug logs in more locales.

The CoreDNS lines follow the `log` plugin as it was written over the years: CommonLogFormat in
plugin/log/log.go with `[{when}]` ("02/Jan/2006:15:04:05 -0700", plugin/pkg/replacer/replacer.go), without
the `[INFO]` prefix up to 1.2.5; `{combined}` adding the opcode in quotes (https://coredns.io/plugins/log/).
Real lines of each era: CoreDNS 1.0.1 in the coredns.io post "Deploying Kubernetes with CoreDNS using
kubeadm" (coredns/coredns.io content/blog/coredns-in-kubernetes-via-kubeadm.md); CoreDNS-004 without
response flags in https://github.com/coredns/coredns/issues/503; the port and query id with `[when]` in
https://github.com/kubernetes/kubernetes/issues/72826. The Windows lines follow a Japanese Windows Server
2012 log quoted in https://qiita.com/urushibata/items/8728708e7737371e6ba1.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban.network.readers import make_readers
from appban.network.records import detect, read_log
from tests.test_network_readers import at, error_lines, read, rows, write
from tests.test_network_readers_more import WINDOWS_HEADER, packet

# ------------------------------------------------------------------------------------------------
# CoreDNS 1.0 (2017): the plugin's own line, its time in brackets, no port and no query id.

COREDNS_1_0 = (
    ".:53\n"
    "CoreDNS-1.0.1\n"
    "linux/amd64, go1.9.1, a04eeb9c\n"
    "2017/12/21 18:01:35 [INFO] CoreDNS-1.0.1\n"
    "2017/12/21 18:01:35 [INFO] linux/amd64, go1.9.1, a04eeb9c\n"
    '10.32.0.1 - [21/Dec/2017:18:06:34 +0000] "A IN www.tiktok.com. udp 68 false 4096" '
    "NOERROR qr,aa,rd,ra 84 104.117µs\n"
    '10.32.0.1 - [21/Dec/2017:18:07:48 -0500] "AAAA IN weixin.qq.com. udp 66 false 4096" '
    "NOERROR qr,rd,ra 82 4.210922ms\n"
    # CoreDNS-004 wrote no response flags; an IPv6 client was written bare, without a port.
    '2001:db8::7 - [06/Feb/2017:21:18:44 +0000] "A IN v16m.tiktokcdn.com. udp 54 false 512" NOERROR 70 981.518µs\n'
    '10.32.0.1 - [31/Feb/2017:21:18:44 +0000] "A IN example.com. udp 54 false 512" NOERROR 70 981.518µs\n'
    '10.32.0.1 - [21/Dec/2017:18:09:10 +0000] "PTR IN cut-off\n'
    "29/Nov/2017:23:16:11 +0000 [ERROR 0 kubernetes.monitoring.svc.cluster.local. A] no items found\n"
)


def test_coredns_1_0_lines_carry_their_own_time(tmp_path: Path) -> None:
    path = write(tmp_path / "capture.1", COREDNS_1_0)
    assert detect(path).name == "coredns"
    table, stats = read(path)
    assert rows(table, "line", "ts", "client", "host") == [
        (6, at(2017, 12, 21, 18, 6, 34), "10.32.0.1", "www.tiktok.com"),
        (7, at(2017, 12, 21, 23, 7, 48), "10.32.0.1", "weixin.qq.com"),  # -0500 applied
        (8, at(2017, 2, 6, 21, 18, 44), "2001:db8::7", "v16m.tiktokcdn.com"),
    ]
    assert error_lines(stats) == [9, 10]
    assert "bad time '31/Feb/2017:21:18:44 +0000'" in stats.errors[0].message
    assert "not a CoreDNS query line" in stats.errors[1].message
    assert stats.skipped == 6  # banner, Go-logged messages and the errors plugin's line


# CoreDNS 1.1 to 1.2.5: the client's port and the query id, still the plugin's own time and no [INFO].
COREDNS_1_2 = (
    '192.168.2.14:56084 - [11/Jan/2019:19:57:57 +0000] 7 "A IN www.tiktok.com. udp 62 false 512" '
    "NXDOMAIN qr,aa,rd,ra 155 0.000134637s\n"
    '[2001:db8::8]:4242 - [11/Jan/2019:19:58:26 +0100] 4 "AAAA IN weixin.qq.com. udp 36 false 512" '
    "NOERROR qr,rd,ra 112 0.00009506s\n"
    # The same with {combined}: the opcode in quotes at the end.
    '192.168.2.14:44698 - [11/Jan/2019:19:59:01 +0000] 8 "A IN www.tiktok.com. udp 54 false 512" '
    'NOERROR qr,aa,rd,ra 106 0.000131808s "0"\n'
)


def test_coredns_1_2_lines_with_port_id_and_time(tmp_path: Path) -> None:
    path = write(tmp_path / "capture.1", COREDNS_1_2, "gzip")
    assert detect(path).name == "coredns"
    table, stats = read(path)
    assert rows(table, "line", "ts", "client", "host") == [
        (1, at(2019, 1, 11, 19, 57, 57), "192.168.2.14", "www.tiktok.com"),
        (2, at(2019, 1, 11, 18, 58, 26), "2001:db8::8", "weixin.qq.com"),
        (3, at(2019, 1, 11, 19, 59, 1), "192.168.2.14", "www.tiktok.com"),
    ]
    assert (stats.malformed, stats.skipped) == (0, 0)


# ------------------------------------------------------------------------------------------------
# {combined}, and {common} lines without [INFO], as kubectl --timestamps and the runtime store them.

QUERY = '10.244.0.1:35432 - 27747 "A IN www.tiktok.com. udp 32 false 512" NOERROR qr,rd,ra 106 0.000120s'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f'2020-09-20T23:59:01.123456789Z [INFO] {QUERY} "0"', at(2020, 9, 20, 23, 59, 1, 123456)),
        (f'2020-09-20T23:59:01.5Z stdout F [INFO] {QUERY} "0"', at(2020, 9, 20, 23, 59, 1, 500000)),
        (f"2020-09-20T23:59:01+02:00 {QUERY}", at(2020, 9, 20, 21, 59, 1)),
        (f'2020-09-20T23:59:01.000000001Z stdout F {QUERY} "0"', at(2020, 9, 20, 23, 59, 1)),
        # CoreDNS 1.2.6 to 1.6.2 wrote its own RFC 3339 time before [INFO].
        (f'2019-07-19T08:24:57.565Z [INFO] {QUERY} "0"', at(2019, 7, 19, 8, 24, 57, 565000)),
        # Stored and written times both: what stored the line is read, as for the default format.
        (
            '2019-01-11T19:57:58.25Z stdout F 192.168.2.14:56084 - [11/Jan/2019:19:57:57 +0000] 7 "A IN '
            'www.tiktok.com. udp 62 false 512" NOERROR qr,aa,rd,ra 155 0.000134637s',
            at(2019, 1, 11, 19, 57, 58, 250000),
        ),
    ],
)
def test_coredns_combined_and_common_without_info(tmp_path: Path, line: str, expected: dt.datetime) -> None:
    path = write(tmp_path / "capture.1", f"2020-09-20T23:59:00Z .:53\n{line}\n")
    assert detect(path).name == "coredns"
    table, stats = read(path)
    assert rows(table, "ts", "host") == [(expected, "www.tiktok.com")]
    assert (stats.malformed, stats.skipped) == (0, 1)


def test_coredns_common_without_any_time_is_still_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "coredns.log", f'.:53\nCoreDNS-1.2.0\n{QUERY}\n{QUERY} "0"\n')
    assert detect(path).name == "coredns"
    with pytest.raises(ValueError, match=r"coredns\.log: CoreDNS writes its query lines without a time"):
        read_log(path)


def test_coredns_line_without_time_among_timed_ones_is_malformed(tmp_path: Path) -> None:
    text = (
        '10.32.0.1 - [21/Dec/2017:18:06:34 +0000] "A IN www.tiktok.com. udp 68 false 4096" NOERROR qr 84 1µs\n'
        f"{QUERY}\n"
    )
    table, stats = read(write(tmp_path / "coredns.log", text))
    assert rows(table, "line", "host") == [(1, "www.tiktok.com")]
    assert error_lines(stats) == [2] and "no time on this line" in stats.errors[0].message


_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda minutes: minutes - minutes % 15)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    when=st.datetimes(min_value=dt.datetime(2016, 1, 1), max_value=dt.datetime(2019, 12, 31)),
    offset=_OFFSETS,
    client=st.ip_addresses(),
    port=st.one_of(st.none(), st.integers(min_value=1, max_value=65535)),
    query_id=st.one_of(st.none(), st.integers(min_value=0, max_value=65535)),
)
def test_coredns_when_is_read_with_its_offset(
    tmp_path: Path, when: dt.datetime, offset: int, client: object, port: int | None, query_id: int | None
) -> None:
    """Any instant, offset and client form the plugin wrote, read back as the same instant and client."""
    zone = dt.timezone(dt.timedelta(minutes=offset))
    local = when.replace(microsecond=0, tzinfo=zone)
    sign = "-" if offset < 0 else "+"
    stamp = local.strftime("%d/%b/%Y:%H:%M:%S ") + f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    address = str(client)
    remote = (f"[{address}]" if ":" in address else address) + f":{port}" if port is not None else address
    id_part = f"{query_id} " if query_id is not None else ""
    line = f'{remote} - [{stamp}] {id_part}"A IN www.tiktok.com. udp 68 false 4096" NOERROR qr,rd 84 104.117µs\n'
    table, stats = read(write(tmp_path / "coredns.log", line))
    assert stats.malformed == 0
    assert rows(table, "ts", "client") == [(local.astimezone(dt.UTC), address)]


# ------------------------------------------------------------------------------------------------
# Windows DNS Server debug log: year-first dates with slashes (Japan), and times it does not know.


def test_windows_dns_japanese_dates(tmp_path: Path) -> None:
    text = WINDOWS_HEADER.format(created="2019/08/20 11:40:00") + packet(
        "2019/08/20 11:48:27", "Rcv", "192.0.2.10", " ", "(3)www(6)tiktok(3)com(0)"
    )
    path = write(tmp_path / "capture.1", text)
    assert detect(path).name == "windows-dns"
    table, stats = read(path, tz="Asia/Tokyo")
    assert rows(table, "ts", "host") == [(at(2019, 8, 20, 2, 48, 27), "www.tiktok.com")]
    assert stats.malformed == 0


@pytest.mark.parametrize("when", ["2020-09-20 오후 11:59:01", "2020/09/20 下午 11:59:01", "2020/09/20 午後 11:59:01"])
def test_windows_dns_packet_line_in_an_unknown_time_format_is_malformed(tmp_path: Path, when: str) -> None:
    """AM/PM markers in other languages are not sourced as something the debug log writes: such a
    packet line is reported, never skipped in silence."""
    text = (
        WINDOWS_HEADER.format(created="2020-09-20 23:58:00")
        + packet("2020-09-20 23:59:00", "Rcv", "192.0.2.10", " ", "(6)weixin(2)qq(3)com(0)")
        + packet(when, "Rcv", "192.0.2.10", " ", "(3)www(6)tiktok(3)com(0)")
    )
    table, stats = read(write(tmp_path / "dns.log", text))
    assert rows(table, "host") == [("weixin.qq.com",)]
    assert error_lines(stats) == [14]
    assert "not a Windows DNS packet line" in stats.errors[0].message


# ------------------------------------------------------------------------------------------------
# Detection: every sample here is claimed by its own reader only, and look-alikes by none.

# Apache's documented Common and Combined Log Format lines (https://httpd.apache.org/docs/current/logs.html).
APACHE_COMBINED = (
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326\n'
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
    '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"\n'
    '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 2326\n'
)
SAMPLES = {
    "coredns-1.0": (COREDNS_1_0, "coredns"),
    "coredns-1.2": (COREDNS_1_2, "coredns"),
    "coredns-combined": (f'2020-09-20T23:59:01.5Z stdout F [INFO] {QUERY} "0"\n', "coredns"),
    "coredns-no-info": (f"2020-09-20T23:59:01Z {QUERY}\n", "coredns"),
    "windows-ja": (
        packet("2019/08/20 11:48:27", "Rcv", "192.0.2.10", " ", "(3)www(6)tiktok(3)com(0)"),
        "windows-dns",
    ),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_each_sample_is_claimed_by_its_reader_only(tmp_path: Path, name: str) -> None:
    content, expected = SAMPLES[name]
    path = write(tmp_path / "capture.1", content)
    assert detect(path).name == expected
    claimed = [reader.name for reader in make_readers() if reader.sniff(path, content.encode())]
    assert claimed == [expected]


def test_web_server_access_logs_are_not_coredns(tmp_path: Path) -> None:
    path = write(tmp_path / "access.log", APACHE_COMBINED)
    assert [reader.name for reader in make_readers() if reader.sniff(path, APACHE_COMBINED.encode())] == []
    with pytest.raises(ValueError, match="cannot tell the log format"):
        detect(path)
