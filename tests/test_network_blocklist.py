"""Enforcement outputs: which indicators the law at an instant blocks, and the files operators load.

The instants are checked against decide() itself, so the tests follow the rulebook rather than restate
it; the domains expected at each instant are concrete. The writers are checked by their real consumers
where they are installed: `nft -c` (and a real load in a throwaway network namespace when allowed) and a
real Unbound resolver on a loopback port, answering from a local stand-in zone instead of the internet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appban import Rulebook, decide
from appban.network.blocklist import (
    SID_BASE,
    WRITERS,
    BlockEntry,
    Blocklist,
    blocklist,
    compile_blocklist,
    hosts,
    nftables,
    rpz,
    suricata,
    unbound,
)
from appban.network.indicators import IndicatorSet, default_indicators
from appban.vocabulary import RuleStatus, Verdict
from tests import material

CATEGORIES = ("internet_hosting", "cdn", "transit_peering")
BEFORE_ANY = "2019-01-01T00:00:00Z"
MARLAND = "2020-11-13T05:00:00Z"  # the Commerce TikTok items would be in force, but Marland enjoins them
PAFACA = "2025-02-01T00:00:00Z"  # PAFACA prohibits hosting ByteDance apps
JOINT_VENTURE = "2026-03-01T00:00:00Z"  # the qualified divestiture has taken TikTok, CapCut and Lemon8 out
AFTER_REVOCATION = ["2021-06-10T00:00:00Z", "2023-01-01T00:00:00Z", PAFACA, JOINT_VENTURE]

BYTEDANCE_APP_SCOPE = {"tiktok.com", "tiktokv.com", "tiktokcdn.com", "capcut.com", "douyin.com", "toutiao.com"}
JV_APPS = {"tiktok", "capcut", "lemon8"}
WECHAT_APPS = {"wechat", "wechat_pay"}


@pytest.fixture(scope="module")
def indicators(rulebook: Rulebook) -> IndicatorSet:
    return default_indicators(rulebook)


def _values(entries: list[BlockEntry], kind: str = "domain") -> set[str]:
    return {e.value for e in entries if e.kind == kind}


def _verdicts(rulebook: Rulebook, app: str, at: str) -> set[Verdict]:
    return {decide(app, c, "US", at, rulebook=rulebook).verdict for c in CATEGORIES}


# ---- blocklist() at instants --------------------------------------------------------------------------------


def test_nothing_is_listed_before_any_order(rulebook: Rulebook, indicators: IndicatorSet) -> None:
    entries, reason = blocklist(rulebook, indicators, "US", dt.datetime(2019, 1, 1, tzinfo=dt.UTC))
    assert entries == []
    assert reason == "no prohibition covers hosting, CDN or transit of any listed app in US at 2019-01-01T00:00:00Z"


def test_marland_injunction_keeps_tiktok_off_unless_enjoined_is_asked_for(
    rulebook: Rulebook, indicators: IndicatorSet
) -> None:
    decision = decide("tiktok", "internet_hosting", "US", MARLAND, rulebook=rulebook)
    assert decision.verdict is Verdict.ENJOINED
    assert "court-marland-v-trump-2020-10-30" in {c.instrument for c in decision.citations}

    entries, reason = blocklist(rulebook, indicators, "US", MARLAND)
    assert entries == []
    assert "enjoined, not listed: tiktok" in reason

    entries, _ = blocklist(rulebook, indicators, "US", MARLAND, include_enjoined=True)
    tiktok = next(e for e in entries if e.value == "tiktok.com")
    assert tiktok.verdict == "enjoined"
    enjoined_line = next(line for line in decision.rules if line.status is RuleStatus.ENJOINED)
    assert (tiktok.instrument, tiktok.cite) == (enjoined_line.instrument, enjoined_line.cite)
    assert tiktok.url.startswith("https://")
    assert {"tiktok.com", "tiktokv.com", "musical.ly"} <= _values(entries)
    assert "71.18.247.0/24" in _values(entries, "prefix")  # AS138699, app scope
    assert "byteoversea.com" not in _values(entries)  # company scope


def test_pafaca_lists_bytedance_apps_with_the_pafaca_citation(rulebook: Rulebook, indicators: IndicatorSet) -> None:
    decision = decide("tiktok", "internet_hosting", "US", PAFACA, rulebook=rulebook)
    assert decision.verdict is Verdict.PROHIBITED
    pafaca_line = next(line for line in decision.rules if line.status is RuleStatus.PROHIBITED)
    assert pafaca_line.instrument == "pafaca-2024"
    pafaca_citation = next(c for c in decision.citations if c.instrument == "pafaca-2024")

    entries, reason = blocklist(rulebook, indicators, "US", PAFACA)
    by_value = {e.value: e for e in entries}
    assert BYTEDANCE_APP_SCOPE | {"larksuite.com", "musical.ly"} <= set(by_value)
    tiktok = by_value["tiktok.com"]
    assert (tiktok.kind, tiktok.app, tiktok.scope, tiktok.category, tiktok.verdict) == (
        "domain", "tiktok", "app", "internet_hosting", "prohibited",
    )  # fmt: skip
    assert (tiktok.instrument, tiktok.cite, tiktok.url) == ("pafaca-2024", pafaca_citation.cite, pafaca_citation.url)
    assert "Pub. L. 118-50" in tiktok.cite
    assert tiktok.enforcement == decision.enforcement.value
    assert {e.instrument for e in entries} == {"pafaca-2024"}
    # Company-wide and non-ByteDance names stay out at app scope.
    assert not {"byteoversea.com", "pstatp.com", "qq.com", "wechat.com"} & set(by_value)
    assert "71.18.247.0/24" in _values(entries, "prefix")
    assert "71.18.1.0/24" not in _values(entries, "prefix")  # AS396986 is company scope
    assert "pafaca-2024" in reason and "company-scope indicators left out" in reason

    wide, _ = blocklist(rulebook, indicators, "US", PAFACA, scope="company")
    assert {"byteoversea.com", "pstatp.com"} <= _values(wide)
    assert {"71.18.1.0/24", "2605:340::/47"} <= _values(wide, "prefix")
    assert not {"qq.com", "tencent.com", "wechat.com"} & _values(wide)  # Tencent: never prohibited
    assert _values(entries) < _values(wide)


def test_every_entry_cites_what_decide_cites(rulebook: Rulebook, indicators: IndicatorSet) -> None:
    for at in (MARLAND, PAFACA, JOINT_VENTURE):
        entries, _ = blocklist(rulebook, indicators, "US", at, scope="company", include_enjoined=True)
        assert entries
        for entry in entries:
            decision = decide(entry.app, entry.category, "US", at, rulebook=rulebook)
            assert decision.verdict.value == entry.verdict
            first = next(line for line in decision.rules if line.status.value == entry.verdict)
            assert (entry.instrument, entry.cite) == (first.instrument, first.cite)
            cited = {(c.instrument, c.cite, c.url) for c in decision.citations}
            assert (entry.instrument, entry.cite, entry.url) in cited


def test_joint_venture_takes_tiktok_capcut_lemon8_out_but_not_douyin(
    rulebook: Rulebook, indicators: IndicatorSet
) -> None:
    for app in JV_APPS:
        assert Verdict.PROHIBITED not in _verdicts(rulebook, app, JOINT_VENTURE), app
    for app in ("douyin", "toutiao"):
        assert Verdict.PROHIBITED in _verdicts(rulebook, app, JOINT_VENTURE), app

    entries, _ = blocklist(rulebook, indicators, "US", JOINT_VENTURE, scope="company", include_enjoined=True)
    assert not {e.app for e in entries} & JV_APPS
    assert not {"tiktok.com", "tiktokv.com", "capcut.com", "byteoversea.com"} & _values(entries)
    assert _values(entries, "prefix") == set()  # both ASes are attributed to TikTok
    assert {"douyin.com", "toutiao.com", "larksuite.com", "feishu.cn"} <= _values(entries)
    assert {e.instrument for e in entries} == {"pafaca-2024"}


@pytest.mark.parametrize("at", AFTER_REVOCATION)
def test_wechat_never_listed_after_revocation(rulebook: Rulebook, indicators: IndicatorSet, at: str) -> None:
    for app in WECHAT_APPS:
        assert not {Verdict.PROHIBITED, Verdict.ENJOINED} & _verdicts(rulebook, app, at)
    entries, _ = blocklist(rulebook, indicators, "US", at, scope="company", include_enjoined=True)
    assert not {e.app for e in entries} & WECHAT_APPS
    assert not {"wechat.com", "weixin.qq.com", "api.mch.weixin.qq.com"} & _values(entries)


def test_wechat_was_listed_while_enjoined(rulebook: Rulebook, indicators: IndicatorSet) -> None:
    entries, _ = blocklist(rulebook, indicators, "US", MARLAND, include_enjoined=True)
    assert {"wechat.com", "weixin.qq.com"} <= _values(entries)


def test_other_places_and_bad_inputs(rulebook: Rulebook, indicators: IndicatorSet) -> None:
    entries, reason = blocklist(rulebook, indicators, "FR", PAFACA)
    assert entries == [] and reason.endswith("in FR at 2025-02-01T00:00:00Z")
    only_transit, reason = blocklist(rulebook, indicators, "US", PAFACA, categories=["transit_peering"])
    assert only_transit == [] and reason.startswith("no prohibition covers")
    only_cdn, _ = blocklist(rulebook, indicators, "US", PAFACA, categories=["cdn"])
    assert only_cdn and {e.instrument for e in only_cdn} == {"pafaca-2024"}  # PAFACA read to reach CDN service
    with pytest.raises(ValueError, match="scope"):
        blocklist(rulebook, indicators, "US", PAFACA, scope="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="category"):
        blocklist(rulebook, indicators, "US", PAFACA, categories=["hosting"])
    with pytest.raises(ValueError, match="offset"):
        blocklist(rulebook, indicators, "US", dt.datetime(2025, 2, 1))


# ---- writers ---------------------------------------------------------------------------------------------------


def _entry(value: str, kind: str = "domain", app: str = "tiktok") -> BlockEntry:
    return BlockEntry(
        kind=kind,  # type: ignore[arg-type]
        value=value,
        app=app,
        scope="app",
        category="internet_hosting",
        verdict="prohibited",
        instrument="pafaca-2024",
        cite="Pub. L. 118-50, div. H, secs. 2\u20133",  # an en dash, as the rulebook writes it
        url="https://example.org/pafaca",
    )


SAMPLE = [_entry("tiktok.com"), _entry("douyin.com", app="douyin"), _entry("71.18.247.0/24", "prefix"),
          _entry("2404:9dc0:cd01::/48", "prefix")]  # fmt: skip


def _comment_before(text: str, line: str, mark: str) -> str:
    lines = text.splitlines()
    i = lines.index(line)
    assert lines[i - 1].lstrip().startswith(mark), (line, lines[i - 1])
    return lines[i - 1]


def test_rpz_records_and_comments() -> None:
    text = rpz(SAMPLE, origin="policy.example.")
    assert "$ORIGIN policy.example.\n" in text and "$TTL " in text
    assert re.search(r"^@ IN SOA \S+ \S+ \d+ \d+ \d+ \d+ \d+$", text, re.M)
    assert re.search(r"^@ IN NS \S+$", text, re.M)
    for name in ("tiktok.com", "douyin.com"):
        assert f"\n*.{name} CNAME .\n" in text
        comment = _comment_before(text, f"{name} CNAME .", ";")
        assert "pafaca-2024" in comment and "Pub. L. 118-50, div. H, secs. 2-3" in comment
    assert "71.18.247.0" not in text  # prefixes are not QNAME triggers
    assert text.isascii()


def test_hosts_lines_and_wildcard_warning() -> None:
    text = hosts(SAMPLE)
    assert re.findall(r"^0\.0\.0\.0 (\S+)$", text, re.M) == ["tiktok.com", "douyin.com"]
    assert "cannot hold wildcards" in text
    assert "pafaca-2024" in _comment_before(text, "0.0.0.0 tiktok.com", "#")
    assert all(line.startswith("#") or line.startswith("0.0.0.0 ") for line in text.splitlines() if line)


def test_unbound_local_zones() -> None:
    text = unbound(SAMPLE)
    assert "\nserver:\n" in text
    zones = re.findall(r'^    local-zone: "([^"]+)" always_nxdomain$', text, re.M)
    assert zones == ["tiktok.com.", "douyin.com."]
    assert "pafaca-2024" in _comment_before(text, '    local-zone: "tiktok.com." always_nxdomain', "#")


def test_nftables_sets_and_chain() -> None:
    text = nftables(SAMPLE)
    assert "table inet appban {" in text
    assert re.search(r"set blocked_v4 \{\s+type ipv4_addr\s+flags interval", text)
    assert re.search(r"set blocked_v6 \{\s+type ipv6_addr\s+flags interval", text)
    assert "71.18.247.0/24" in text and "2404:9dc0:cd01::/48" in text
    assert "type filter hook forward priority 0;" in text
    assert re.search(r"ip daddr @blocked_v4 (counter )?drop", text)
    assert re.search(r"ip6 daddr @blocked_v6 (counter )?drop", text)
    assert "pafaca-2024" in _comment_before(text, "            71.18.247.0/24", "#")
    assert "tiktok.com" not in text
    empty = nftables([])
    assert "elements" not in empty and "set blocked_v4" in empty


_RULE = re.compile(
    r'^alert (?P<proto>dns|tls|ip) (?P<src>any|\[[^\]]+\]) any -> (?P<dst>any|\[[^\]]+\]) any '
    r'\((?P<options>msg:"[^";]*";.*)\)$'
)  # fmt: skip
_OPTION = re.compile(r'\s*([a-z_.]+)(?::\s*("[^"]*"|[^;"]*))?;')


def _rules(text: str) -> list[tuple[str, str, dict[str, list[str]], list[str]]]:
    """Each rule as (protocol, destination, option -> values, option order); asserts the whole line parses."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _RULE.match(line)
        assert match, line
        options = match["options"]
        parsed: dict[str, list[str]] = {}
        order: list[str] = []
        position = 0
        for option in _OPTION.finditer(options):
            assert option.start() == position, (line, options[position:])
            position = option.end()
            parsed.setdefault(option[1], []).append(option[2] or "")
            order.append(option[1])
        assert position == len(options), (line, options[position:])
        out.append((match["proto"], match["dst"], parsed, order))
    return out


def test_suricata_rules_parse_and_match_whole_labels() -> None:
    rules = _rules(suricata(SAMPLE))
    assert [(proto, dst) for proto, dst, _, _ in rules] == [
        ("dns", "any"), ("tls", "any"), ("dns", "any"), ("tls", "any"),
        ("ip", "[71.18.247.0/24]"), ("ip", "[2404:9dc0:cd01::/48]"),
    ]  # fmt: skip
    _, _, dns, dns_order = rules[0]
    _, _, tls, tls_order = rules[1]
    assert dns["msg"] == ['"appban: tiktok pafaca-2024"']
    assert dns_order[1:6] == ["dns.query", "dotprefix", "content", "endswith", "nocase"]
    assert tls_order[1:6] == ["tls.sni", "dotprefix", "content", "endswith", "nocase"]
    assert dns["content"] == tls["content"] == ['".tiktok.com"']
    assert dns["rev"] == ["1"]
    assert dns["metadata"][0].startswith("appban_instrument pafaca-2024, appban_cite Pub._L._118-50")
    sids = [int(parsed["sid"][0]) for _, _, parsed, _ in rules]
    assert len(set(sids)) == len(sids)
    assert all(SID_BASE <= sid <= 9_999_999 for sid in sids)
    assert int(tls["sid"][0]) == int(dns["sid"][0]) + 1


def test_suricata_sids_are_stable(rulebook: Rulebook, indicators: IndicatorSet) -> None:
    entries, _ = blocklist(rulebook, indicators, "US", PAFACA, scope="company")

    def sids(text: str) -> dict[tuple[str, str], str]:
        return {(proto, parsed.get("content", [dst])[0]): parsed["sid"][0] for proto, dst, parsed, _ in _rules(text)}

    first = sids(suricata(entries))
    assert sids(suricata(entries)) == first
    shuffled = list(entries)
    random.Random(7).shuffle(shuffled)
    assert sids(suricata(shuffled)) == first
    assert len(set(first.values())) == len(first)
    # A smaller list (another instant) keeps the sids of the values it shares.
    later, _ = blocklist(rulebook, indicators, "US", JOINT_VENTURE)
    assert sids(suricata(later)).items() <= first.items()


def test_writer_refuses_values_that_would_inject_configuration() -> None:
    for bad in ('evil.com." always_transparent\nlocal-zone: "x', "a b.com", "tiktok.com;", "-x..com"):
        for writer in (rpz, hosts, unbound, suricata):
            with pytest.raises(ValueError):
                writer([_entry(bad)])
    for bad in ("71.18.247.1/24", "71.18.247.0/24; flush ruleset", "not-an-ip"):
        with pytest.raises(ValueError):
            nftables([_entry(bad, "prefix")])
    with pytest.raises(ValueError):
        suricata([_entry("tiktok.com", app='x"; pcre:"/a/')])


@pytest.fixture(scope="module")
def lists(rulebook: Rulebook, indicators: IndicatorSet) -> dict[str, Blocklist]:
    return {at: compile_blocklist(rulebook, indicators, "US", at) for at in (BEFORE_ANY, PAFACA, JOINT_VENTURE)}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_files_carry_provenance_and_say_why_empty(rulebook: Rulebook, lists: dict[str, Blocklist], fmt: str) -> None:
    for at, result in lists.items():
        text = WRITERS[fmt](result.entries, result.provenance)
        assert text == WRITERS[fmt](result.entries, result.provenance)  # deterministic
        assert text.isascii()
        header = "\n".join(line for line in text.splitlines() if line.startswith((";", "#", "!")))
        for stated in ("where: US", f"at: {at}", "scope: app", f"rulebook: {rulebook.version}", result.reason):
            assert stated in header, (fmt, stated)
    empty = lists[BEFORE_ANY]
    assert empty.entries == []
    text = WRITERS[fmt](empty.entries, empty.provenance)
    assert "this list is empty on purpose" in text
    assert "no prohibition covers hosting, CDN or transit" in text
    # Nothing but the format's required frame (nftables: checked by nft below).
    body = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", ";", "!"))]
    if fmt == "rpz":
        assert body[:2] == ["$ORIGIN rpz.appban.local.", "$TTL 300"] and len(body) == 4
        assert body[2].startswith("@ IN SOA ") and body[3] == "@ IN NS localhost."
    elif fmt != "nftables":
        assert body == {"hosts": [], "unbound": ["server:"], "suricata": [], "dnsmasq": [], "adblock": []}[fmt]


def test_rpz_serial_follows_the_instant(lists: dict[str, Blocklist]) -> None:
    serials = [
        int(re.search(r"^@ IN SOA \S+ \S+ (\d+) ", rpz(b.entries, b.provenance), re.M)[1])  # type: ignore[index]
        for b in lists.values()
    ]
    assert serials == sorted(serials) and len(set(serials)) == 3
    assert serials[0] == int(dt.datetime(2019, 1, 1, tzinfo=dt.UTC).timestamp())


# ---- real consumers: nft -------------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    """A tool from PATH, or from /usr/sbin, which is not on a normal user's PATH on Debian."""
    sbin = Path("/usr/sbin") / name
    if shutil.which(name) is None and sbin.is_file():
        return str(sbin)
    return material.require_tool(name)


def test_nft_accepts_the_scripts(tmp_path: Path, lists: dict[str, Blocklist], rulebook: Rulebook,
                                 indicators: IndicatorSet) -> None:  # fmt: skip
    nft = _tool("nft")
    wide = compile_blocklist(rulebook, indicators, "US", PAFACA, scope="company")
    for name, result in [*lists.items(), ("company", wide)]:
        path = tmp_path / f"{name.replace(':', '')}.nft"
        path.write_text(nftables(result.entries, result.provenance))
        check = subprocess.run([nft, "-c", "-f", str(path)], capture_output=True, text=True, timeout=10, check=False)
        if check.returncode != 0 and "Operation not permitted" in check.stderr:
            pytest.skip("nft -c needs CAP_NET_ADMIN here")
        assert check.returncode == 0, (name, check.stderr)


def test_nft_loads_twice_and_drops_listed_networks(tmp_path: Path, rulebook: Rulebook,
                                                    indicators: IndicatorSet) -> None:  # fmt: skip
    """A real load, in a network namespace of its own so the host's firewall is never touched."""
    nft = _tool("nft")
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a private network namespace")
    wide = compile_blocklist(rulebook, indicators, "US", PAFACA, scope="company")
    path = tmp_path / "appban.nft"
    path.write_text(nftables(wide.entries, wide.provenance))
    script = (
        f'"{nft}" -f "{path}" && "{nft}" -f "{path}" && '  # twice: the file replaces its table, never adds to it
        f'"{nft}" get element inet appban blocked_v4 "{{ 71.18.247.9 }}" && '
        f'"{nft}" get element inet appban blocked_v6 "{{ 2605:340::1 }}" && '
        f'"{nft}" list chain inet appban forward'
    )
    run = subprocess.run(
        [unshare, "--net", "sh", "-c", script], capture_output=True, text=True, timeout=15, check=False
    )
    if run.returncode != 0 and "unshare failed" in run.stderr:
        pytest.skip(f"no private network namespace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("@blocked_v4") == 1 and run.stdout.count("@blocked_v6") == 1
    script = f'"{nft}" -f "{path}" && "{nft}" get element inet appban blocked_v4 "{{ 192.0.2.1 }}"'
    miss = subprocess.run(
        [unshare, "--net", "sh", "-c", script], capture_output=True, text=True, timeout=15, check=False
    )
    assert miss.returncode != 0  # a network nobody listed is not in the set


# ---- real consumers: Unbound --------------------------------------------------------------------------------------

# The stand-in for the internet: a local root zone that the resolver's iterator answers from. Local-data
# would not do: Unbound answers local zones before it applies RPZ triggers (unbound.conf(5): "RPZ QNAME
# triggers are applied after local-zones and before auth-zones"), so names must come from an auth zone.
WORLD = {
    "ok.example.test.": "192.0.2.1",
    "www.tiktok.com.": "192.0.2.2",
    "tiktok.com.": "192.0.2.3",
    "nottiktok.com.": "192.0.2.4",  # shares a suffix string with tiktok.com but not a label: never blocked
    "www.douyin.com.": "192.0.2.5",
    "deep.cdn.tiktokcdn.com.": "192.0.2.6",
}


def _world_zone(world: dict[str, str]) -> str:
    return "\n".join(
        ["$ORIGIN .", "$TTL 300", ". IN SOA localhost. hostmaster.localhost. 1 3600 600 86400 60", ". IN NS localhost."]
        + [f"{name} IN A {address}" for name, address in world.items()]
    ) + "\n"  # fmt: skip


WORLD_ZONE = _world_zone(WORLD)

QTYPE_A, QTYPE_SOA = 1, 6
RCODE_NOERROR, RCODE_NXDOMAIN = 0, 3


def _name(message: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) name at `offset`, and the offset after it in the message."""
    labels: list[str] = []
    end = -1
    for _ in range(128):  # bounds a malicious pointer loop
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if end < 0:
                end = offset + 2
            offset = struct.unpack_from(">H", message, offset)[0] & 0x3FFF
            continue
        if length == 0:
            return ".".join(labels) + ".", end if end >= 0 else offset + 1
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii"))
        offset += 1 + length
    raise ValueError("name too long or looping")


def dns_query(port: int, name: str, qtype: int = QTYPE_A, timeout: float = 1.0) -> tuple[int, list[tuple[int, bytes]]]:
    """(RCODE, [(type, rdata)...]) of a recursive query to 127.0.0.1:port over UDP; only the standard library."""
    query_id = random.randrange(1 << 16)
    question = b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.rstrip(".").split("."))
    packet = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, ("127.0.0.1", port))
        while True:
            reply, _ = sock.recvfrom(65535)
            if len(reply) >= 12 and struct.unpack_from(">H", reply)[0] == query_id:
                break
    _, flags, qdcount, ancount, _, _ = struct.unpack_from(">HHHHHH", reply)
    assert flags & 0x8000, "not a response"
    offset = 12
    for _ in range(qdcount):
        _, offset = _name(reply, offset)
        offset += 4
    answers = []
    for _ in range(ancount):
        _, offset = _name(reply, offset)
        rtype, _, _, length = struct.unpack_from(">HHIH", reply, offset)
        offset += 10
        answers.append((rtype, reply[offset : offset + length]))
        offset += length
    return flags & 0x000F, answers


def resolve(port: int, name: str) -> str | None:
    """The A address of `name`, or None when the answer is NXDOMAIN; anything else fails the test."""
    rcode, answers = dns_query(port, name)
    if rcode == RCODE_NXDOMAIN:
        assert answers == []
        return None
    assert rcode == RCODE_NOERROR, (name, rcode)
    addresses = [socket.inet_ntoa(data) for rtype, data in answers if rtype == QTYPE_A]
    assert len(addresses) == 1, (name, answers)
    return addresses[0]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def unbound_server(
    workdir: Path, *, rpz_zone: str | None = None, include: str | None = None, world: dict[str, str] | None = None
) -> Iterator[int]:
    """A throwaway Unbound on 127.0.0.1:<free port>, resolving from WORLD_ZONE (or `world`'s names); yields the port.

    With `rpz_zone`, that text is loaded as the RPZ zone rpz.appban.local.; with `include`, that text is
    included as configuration (the Unbound writer's output). The server is always stopped on exit.
    """
    binary = _tool("unbound")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "world.zone").write_text(WORLD_ZONE if world is None else _world_zone(world))
    extra: list[str] = []
    if include is not None:
        (workdir / "appban.conf").write_text(include)
        extra.append(f'include: "{workdir / "appban.conf"}"')
    if rpz_zone is not None:
        (workdir / "appban.rpz").write_text(rpz_zone)
        extra += [
            "rpz:",
            "    name: rpz.appban.local.",
            f'    zonefile: "{workdir / "appban.rpz"}"',
            "    for-downstream: yes",  # so a test can read the loaded zone's SOA
        ]
    for _attempt in range(3):  # the port is free when chosen; another process could take it meanwhile
        port = _free_udp_port()
        config = workdir / "unbound.conf"
        config.write_text(
            "\n".join(
                [
                    "server:",
                    f"    interface: 127.0.0.1@{port}",
                    f"    port: {port}",
                    "    do-ip6: no",
                    "    do-tcp: no",  # UDP only: one port to find free
                    "    do-daemonize: no",
                    "    use-syslog: no",
                    '    logfile: ""',
                    "    verbosity: 1",
                    '    username: ""',
                    '    chroot: ""',
                    f'    directory: "{workdir}"',
                    '    pidfile: ""',
                    "    num-threads: 1",
                    "    access-control: 127.0.0.0/8 allow",
                    '    module-config: "respip iterator"',  # respip: the RPZ module; no validator, no trust anchor
                    '    local-zone: "test." nodefault',  # Unbound answers test. NXDOMAIN by default (RFC 6761)
                    "remote-control:",
                    "    control-enable: no",
                    "auth-zone:",
                    '    name: "."',
                    f'    zonefile: "{workdir / "world.zone"}"',
                    "    for-upstream: yes",  # the iterator answers from it instead of the root servers
                    "    for-downstream: no",
                    "    fallback-enabled: no",
                    *extra,
                    "",
                ]
            )
        )
        log = workdir / "unbound.log"
        with log.open("wb") as out:
            process = subprocess.Popen([binary, "-d", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            ready = False
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    dns_query(port, "ok.example.test", timeout=0.2)
                    ready = True
                    break
                except OSError:  # includes socket timeouts and ICMP port unreachable
                    time.sleep(0.05)
            text = log.read_text(errors="replace")
            if not ready and "can't bind" in text.lower():
                continue
            assert ready, f"unbound did not answer within 10 s:\n{text}"
            yield port
            errors = [line for line in log.read_text(errors="replace").splitlines() if "error" in line]
            assert not errors, errors
            return
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
    pytest.fail("could not find a free loopback port for unbound")


def _soa_serial(port: int, zone: str) -> int:
    rcode, answers = dns_query(port, zone, QTYPE_SOA)
    assert rcode == RCODE_NOERROR
    (data,) = [data for rtype, data in answers if rtype == QTYPE_SOA]
    # The rdata ends in five 32-bit fields, serial first; the names before them may be compressed.
    return int(struct.unpack_from(">I", data, len(data) - 20)[0])


def test_unbound_rpz_blocks_the_names_the_law_blocks(tmp_path: Path, lists: dict[str, Blocklist]) -> None:
    def rpz_for(at: str) -> str:
        return rpz(lists[at].entries, lists[at].provenance)

    # Before: the empty 2019 zone loads (its serial is served) and every name resolves.
    with unbound_server(tmp_path / "before", rpz_zone=rpz_for(BEFORE_ANY)) as port:
        assert _soa_serial(port, "rpz.appban.local.") == int(dt.datetime(2019, 1, 1, tzinfo=dt.UTC).timestamp())
        assert {name: resolve(port, name) for name in WORLD} == WORLD

    # PAFACA in force: TikTok and Douyin names and every name under them are NXDOMAIN; the rest resolves.
    with unbound_server(tmp_path / "pafaca", rpz_zone=rpz_for(PAFACA)) as port:
        assert resolve(port, "tiktok.com.") is None
        assert resolve(port, "www.tiktok.com.") is None
        assert resolve(port, "deep.cdn.tiktokcdn.com.") is None
        assert resolve(port, "www.douyin.com.") is None
        assert resolve(port, "nottiktok.com.") == "192.0.2.4"
        assert resolve(port, "ok.example.test.") == "192.0.2.1"

    # After the joint venture: TikTok resolves again, Douyin stays blocked.
    with unbound_server(tmp_path / "jv", rpz_zone=rpz_for(JOINT_VENTURE)) as port:
        assert resolve(port, "www.tiktok.com.") == "192.0.2.2"
        assert resolve(port, "tiktok.com.") == "192.0.2.3"
        assert resolve(port, "www.douyin.com.") is None
        assert resolve(port, "ok.example.test.") == "192.0.2.1"


def test_unbound_local_zone_snippet_blocks_too(tmp_path: Path, lists: dict[str, Blocklist]) -> None:
    with unbound_server(tmp_path / "empty", include=unbound([], lists[BEFORE_ANY].provenance)) as port:
        assert resolve(port, "www.tiktok.com.") == "192.0.2.2"
    with unbound_server(tmp_path / "pafaca", include=unbound(lists[PAFACA].entries, lists[PAFACA].provenance)) as port:
        assert resolve(port, "www.tiktok.com.") is None
        assert resolve(port, "tiktok.com.") is None
        assert resolve(port, "www.douyin.com.") is None
        assert resolve(port, "nottiktok.com.") == "192.0.2.4"
        assert resolve(port, "ok.example.test.") == "192.0.2.1"
