"""Classifying hosts and addresses: whole labels, IDN, trailing dots, case, IPv4/IPv6 prefixes, ASNs."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appban import load_rulebook
from appban.network.classify import Classifier, DomainMatcher, PrefixTable, normalise_host, parse_asn_table
from appban.network.indicators import default_indicators

BOOK = load_rulebook()
INDICATORS = default_indicators(BOOK)


def classify(**columns: list) -> list[dict]:
    return Classifier(INDICATORS).classify(pa.record_batch(columns)).to_pylist()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("tiktok.com", ("tiktok", "app", "tiktok.com")),
        ("www.tiktok.com", ("tiktok", "app", "tiktok.com")),
        ("v16m.tiktokcdn-us.com", ("tiktok", "app", "tiktokcdn-us.com")),
        ("WWW.TIKTOK.COM", ("tiktok", "app", "tiktok.com")),
        ("www.tiktok.com.", ("tiktok", "app", "tiktok.com")),
        ("p16-tiktokcdn-com.akamaized.net", ("tiktok", "app", "p16-tiktokcdn-com.akamaized.net")),
        ("api.mch.weixin.qq.com", ("wechat_pay", "app", "api.mch.weixin.qq.com")),  # most specific wins
        ("mp.weixin.qq.com", ("wechat", "app", "weixin.qq.com")),
        # WeCom's API and web login sit under weixin.qq.com but are WeCom's, as the code scanner reads them
        ("qyapi.weixin.qq.com", ("wecom", "app", "qyapi.weixin.qq.com")),
        ("open.work.weixin.qq.com", ("wecom", "app", "work.weixin.qq.com")),
        ("v.qq.com", ("tencent_other_app", "company", "qq.com")),
        ("p16-va.byteoversea.com", ("tiktok", "company", "byteoversea.com")),
        ("nottiktok.com", None),
        ("tiktok.com.evil.example", None),
        ("michigan.org", None),
        ("xtiktok.com", None),
        ("tiktok.co", None),
        ("", None),
        ("akamaized.net", None),
    ],
)
def test_domains_match_by_whole_labels(host: str, expected: tuple[str, str, str] | None) -> None:
    [row] = classify(host=[host])
    got = (row["app"], row["scope"], row["indicator"]) if row["app"] else None
    assert got == expected


def test_idn_hosts_are_compared_in_punycode() -> None:
    matcher = DomainMatcher([("xn--bcher-kva.example", 1), ("tiktok.com", 2)])
    assert normalise_host("Bücher.Example.") == "xn--bcher-kva.example"
    assert matcher.match("www.bücher.example") == 1
    assert matcher.match("www.xn--bcher-kva.example") == 1
    assert matcher.match("bücher.tiktok.com") == 2


@pytest.mark.parametrize(
    ("address", "indicator"),
    [
        ("71.18.248.1", "71.18.248.0/22"),
        ("71.18.251.255", "71.18.248.0/22"),
        ("71.18.252.0", "71.18.252.0/23"),
        ("71.18.254.0", None),
        ("2404:9dc0:cd01::1", "2404:9dc0:cd01::/48"),
        ("2404:9DC0:CD01:0:0:0:0:1", "2404:9dc0:cd01::/48"),
        ("2404:9dc0:cd02::1", None),
        ("2404:9dc0:cd07:ffff::1", "2404:9dc0:cd04::/46"),
        ("8.8.8.8", None),
        ("not-an-address", None),
    ],
)
def test_ip_prefixes_ipv4_and_ipv6(address: str, indicator: str | None) -> None:
    [row] = classify(dst_ip=[address])
    assert row["indicator"] == indicator
    if indicator:
        assert row["indicator_kind"] == "ip" and row["app"] == "tiktok"


def test_longest_prefix_wins_and_vectorised_lookup_agrees() -> None:
    import ipaddress

    import numpy as np

    table = PrefixTable([("10.0.0.0/8", 1), ("10.1.0.0/16", 2), ("10.1.2.0/24", 3), ("2001:db8::/32", 4)])
    assert [table.lookup(a) for a in ("10.9.9.9", "10.1.9.9", "10.1.2.3", "11.0.0.1", "2001:db8::5")] == [
        1,
        2,
        3,
        -1,
        4,
    ]
    addresses = ["10.9.9.9", "10.1.9.9", "10.1.2.3", "11.0.0.1", "10.1.2.255"]
    ints = np.array([int(ipaddress.ip_address(a)) for a in addresses], dtype=np.int64)
    assert table.lookup_v4(ints).tolist() == [table.lookup(a) for a in addresses]


def test_asn_table_widens_ip_matching() -> None:
    entries = parse_asn_table(["# prefix origin", "203.0.113.0/24 AS396986", "198.51.100.0/24, 15169", ""])
    assert entries == [("203.0.113.0/24", 396986), ("198.51.100.0/24", 15169)]
    classifier = Classifier(INDICATORS, entries)
    rows = classifier.classify(pa.record_batch({"dst_ip": ["203.0.113.9", "198.51.100.9"]})).to_pylist()
    assert (rows[0]["indicator"], rows[0]["indicator_kind"], rows[0]["scope"]) == ("AS396986", "asn", "company")
    assert rows[1]["app"] is None  # AS15169 is not listed
    with pytest.raises(ValueError, match="line 1"):
        parse_asn_table(["nonsense"])


def test_host_wins_over_address_and_nulls_fall_back() -> None:
    rows = classify(host=["www.google.com", None, "weixin.qq.com"], dst_ip=["71.18.248.1", "71.18.248.1", "8.8.8.8"])
    assert [r["indicator"] for r in rows] == ["71.18.248.0/22", "71.18.248.0/22", "weixin.qq.com"]


def test_empty_batch() -> None:
    empty = pa.record_batch({"host": pa.array([], pa.string())})
    assert Classifier(INDICATORS).classify(empty).num_rows == 0


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(labels, min_size=1, max_size=4), st.sampled_from([i.name for i in INDICATORS.domains if not i.exact]))
def test_any_subdomain_matches_and_no_glued_prefix_does(prefix: list[str], suffix: str) -> None:
    matcher = Classifier(INDICATORS).domains
    expected = matcher.match(suffix)
    assert matcher.match(".".join([*prefix, suffix])) >= 0
    glued = prefix[-1] + suffix  # no dot: a different name that merely ends in the same letters
    assert matcher.match(glued) != expected or glued in matcher.suffixes


# Hosts as logs write them: mixed case, stray whitespace and dots, and full-width letters that IDNA
# folds onto ASCII, so the bulk pre-filter is tested against the walk it skips.
_SUFFIXES = [i.name for i in INDICATORS.domains]


def _as_logged(name: str, upper: bool, wide: bool, tail: str) -> str:
    if wide:
        name = "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in name)
    return (name.upper() if upper else name) + tail


_messy = st.builds(
    _as_logged,
    st.builds(lambda prefix, suffix: f"{prefix}.{suffix}", labels, st.sampled_from(_SUFFIXES) | labels),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["", ".", " ", "\t", "\x1f"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_messy | st.text(max_size=20), min_size=1, max_size=30))
def test_bulk_classification_agrees_with_the_walk_host_by_host(hosts: list[str]) -> None:
    classifier = Classifier(INDICATORS)
    walked = [classifier.domains.match(host) for host in hosts]
    assert classifier.hit_indices(pa.record_batch({"host": hosts})).tolist() == walked
    kept = classifier.domains.might_match(pa.array(hosts))
    assert kept is not None
    assert all(found < 0 for found, keep in zip(walked, kept, strict=True) if not keep)


def test_full_width_host_is_matched_through_its_idna_form() -> None:
    host = "".join(chr(ord(c) + 0xFEE0) for c in "www") + ".ｔｉｋｔｏｋ.com"
    [row] = classify(host=[host])
    assert row["indicator"] == "tiktok.com"


_ascii_messy = st.builds(
    _as_logged,
    st.builds(lambda prefix, suffix: f"{prefix}.{suffix}", labels, st.sampled_from(_SUFFIXES) | labels),
    st.booleans(),
    st.just(False),
    st.sampled_from(["", ".", "..", " ", "\t", "\x1f"]),
)
_ascii_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ascii_messy | _ascii_text | st.sampled_from(_SUFFIXES) | st.none(), min_size=1, max_size=40),
       st.integers(min_value=0, max_value=5))  # fmt: skip
def test_the_row_prefilter_never_drops_a_host_that_matches(hosts: list[str | None], skip: int) -> None:
    # Sliced arrays start mid-buffer: the filter must read each value's own last bytes.
    column = pa.array(["padding.example", *hosts][: 1 + len(hosts)]).slice(min(skip, len(hosts)))
    classifier = Classifier(INDICATORS)
    walked = [-1 if host is None else classifier.domains.match(host) for host in column.to_pylist()]
    kept = classifier._tails.may_match(column)
    if kept is not None:
        assert len(kept) == len(column)
        assert all(keep for found, keep in zip(walked, kept, strict=True) if found >= 0)
    assert classifier.hit_indices(pa.record_batch({"host": column})).tolist() == walked


def test_the_row_prefilter_rules_out_unrelated_names_and_steps_aside_for_non_ascii() -> None:
    tails = Classifier(INDICATORS)._tails
    names = ["abc", "www.example.org", "michigan.org", "cdn.tiktok.com", "a.b.QQ.COM", "x.tiktok.com.", "abc"]
    kept = tails.may_match(pa.array(names))
    assert kept is not None
    # The first "abc" ends before byte 8, where no word can be read: kept. The last is too short to match.
    assert kept.tolist() == [True, False, False, True, True, True, False]
    assert tails.may_match(pa.array(["www.example.org", "bücher.example"])) is None


def _listed_v4() -> list[str]:
    """An address inside each listed IPv4 network, as the property below draws them."""
    table = Classifier(INDICATORS).prefixes
    return [
        ".".join(str(((key << (32 - length)) >> shift) & 255) for shift in (24, 16, 8, 0))
        for length, keys in table.v4.items()
        for key in keys
    ]


_v4 = st.builds(lambda *o: ".".join(map(str, o)), *[st.integers(0, 255)] * 4)
_address_like = st.one_of(
    _v4,
    st.sampled_from(_listed_v4() or ["71.18.248.1"]),
    st.builds(lambda a, pad: f"{pad}{a}{pad.strip()}", _v4, st.sampled_from([" ", "\t", ""])),
    st.builds(lambda a: f"[{a}]", _v4),
    st.builds(lambda a: f"{a}:443", _v4),
    st.builds(lambda a: "0" + a, _v4),
    st.sampled_from(["2404:9dc0:cd01::1", "::ffff:71.18.248.1", "2001:db8::1", "", "-", "1", "12", "999.1.1.1"]),
    st.text(alphabet="0123456789.:abcdef[] ", max_size=16),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_address_like | st.none(), min_size=1, max_size=40), st.integers(min_value=0, max_value=5))
def test_the_address_prefilter_never_drops_an_address_that_matches(addresses: list[str | None], skip: int) -> None:
    # Sliced arrays start mid-buffer: the filter must read each value's own first bytes.
    column = pa.array(["198.51.100.1", *addresses]).slice(1 + min(skip, len(addresses) - 1))
    classifier = Classifier(INDICATORS)
    walked = [-1 if a is None else classifier._address_hit(a) for a in column.to_pylist()]
    kept = classifier._octets.may_match(column)
    if kept is not None:
        assert len(kept) == len(column)
        assert all(keep for found, keep in zip(walked, kept, strict=True) if found >= 0)
    assert classifier.hit_indices(pa.record_batch({"dst_ip": column})).tolist() == walked


def test_the_address_prefilter_rules_out_unlisted_first_octets() -> None:
    octets = Classifier(INDICATORS)._octets
    inside = _listed_v4()[0]
    kept = octets.may_match(pa.array(["198.51.100.53", inside, "2001:db8::1", " 10.0.0.1", "[10.0.0.1]", "10.0.0.1"]))
    assert kept is not None
    # Only plain IPv4 text with an unlisted first octet is ruled out; IPv6, padded and bracketed values stay.
    assert kept.tolist() == [False, True, True, True, True, False]
