"""The log readers, one module per format, listed in the order detection tries them.

Formats with self-describing headers come first (Zeek's `#fields`, flow CSV headers), then line formats
recognised by a regular expression, and last the generic reader, which claims only files whose columns
already carry the record's field names.
"""

from __future__ import annotations

from appban.network.readers.bind import BindReader
from appban.network.readers.cloudflows import AzureFlowReader, GcpVpcReader
from appban.network.readers.coredns import CoreDnsReader
from appban.network.readers.dnsmasq import DnsmasqReader
from appban.network.readers.flows import AwsVpcReader, NfdumpReader
from appban.network.readers.generic import GenericReader
from appban.network.readers.pihole import PiholeReader
from appban.network.readers.suricata import SuricataReader
from appban.network.readers.unbound import UnboundReader
from appban.network.readers.windows_dns import WindowsDnsReader
from appban.network.readers.zeek import ZeekReader
from appban.network.records import LogReader

# --log-format names that stand for several readers; the file decides among them.
FAMILIES: dict[str, tuple[str, ...]] = {
    "zeek": ("zeek-dns", "zeek-ssl", "zeek-http"),
    "flows": ("nfdump", "aws-vpc", "gcp-vpc", "azure-flow"),
}


def make_readers(tz: str | None = None, year: int | None = None) -> list[LogReader]:
    """One reader per format, in detection order. `tz`: zone of zoneless times (default UTC, generic:
    none); `year`: the year of syslog times (default: from the file's modification time)."""
    return [
        ZeekReader("dns"),
        ZeekReader("ssl"),
        ZeekReader("http"),
        SuricataReader(tz=tz or "UTC"),
        NfdumpReader(tz=tz or "UTC"),
        AwsVpcReader(),
        GcpVpcReader(),
        AzureFlowReader(),
        PiholeReader(),
        BindReader(tz=tz or "UTC", year=year),
        DnsmasqReader(tz=tz or "UTC", year=year),
        UnboundReader(tz=tz or "UTC", year=year),
        CoreDnsReader(),
        WindowsDnsReader(tz=tz or "UTC"),
        # Named by --log-format only, for a log whose dates do not tell their order.
        WindowsDnsReader(tz=tz or "UTC", order="mdy"),
        WindowsDnsReader(tz=tz or "UTC", order="dmy"),
        GenericReader(tz=tz),
    ]


READER_NAMES = tuple(reader.name for reader in make_readers())

__all__ = [
    "FAMILIES",
    "READER_NAMES",
    "AwsVpcReader",
    "AzureFlowReader",
    "BindReader",
    "CoreDnsReader",
    "DnsmasqReader",
    "GcpVpcReader",
    "GenericReader",
    "NfdumpReader",
    "PiholeReader",
    "SuricataReader",
    "UnboundReader",
    "WindowsDnsReader",
    "ZeekReader",
    "make_readers",
]
