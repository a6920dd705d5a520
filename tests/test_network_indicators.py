"""The indicator set itself: every entry sourced, no suffix on a shared CDN, every omission explained, and
hosts from the source lists classified as the lists (and the law) would have them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from appban import load_rulebook
from appban.network.classify import Classifier
from appban.network.indicators import default_indicator_path, default_indicators, load_indicators
from appban.rulebook.loader import RulebookError
from appban.screen.network import NetworkOptions, screen_network
from tests.test_network_screen import dns_log

BOOK = load_rulebook()
INDICATORS = default_indicators(BOOK)
CLASSIFIER = Classifier(INDICATORS)


def hit(host: str) -> tuple[str, str, str] | None:
    found = CLASSIFIER.host_hit(host)
    if found < 0:
        return None
    h = CLASSIFIER.hits[found]
    return h.app, h.scope, h.indicator


def test_every_entry_names_sources_that_resolve_to_public_addresses() -> None:
    sections = [
        INDICATORS.domains,
        INDICATORS.prefixes,
        INDICATORS.asns,
        INDICATORS.shared_suffixes,
        INDICATORS.left_out,
    ]
    for section in sections:
        for item in section:
            assert item.sources, item
            for url in INDICATORS.source_urls(item.sources):
                assert url.startswith("https://"), (item, url)
    # A pinned repository file names its commit, so the fact can be checked at that version.
    for key, url in INDICATORS.sources.items():
        if url.startswith("https://github.com/") and ("/blob/" in url or "/tree/" in url):
            ref = url.split("/blob/" if "/blob/" in url else "/tree/")[1].split("/")[0]
            assert len(ref) == 40 or key == "ipverse-tencent", (key, url)


def test_no_suffix_sits_on_a_shared_cdn_and_shared_names_are_hosts() -> None:
    shared = [s.suffix for s in INDICATORS.shared_suffixes]
    assert {"akamaized.net", "edgesuite.net", "edgekey.net", "fastly.net", "myqcloud.com"} <= set(shared)
    on_shared = [d for d in INDICATORS.domains if any(d.name == s or d.name.endswith("." + s) for s in shared)]
    assert on_shared, "the sources list TikTok names on Akamai, Fastly and Tencent Cloud"
    assert all(d.exact for d in on_shared)
    assert all(d.name not in shared for d in INDICATORS.domains)


def test_every_left_out_entry_has_a_reason_and_is_really_left_out() -> None:
    names = {d.name for d in INDICATORS.domains}
    assert INDICATORS.left_out
    for gone in INDICATORS.left_out:
        assert len(gone.reason.split()) >= 5, gone
        assert gone.listed_as in ("tiktok", "wechat")
        assert gone.name.rstrip(".") not in names


def test_the_company_domains_match_at_company_scope() -> None:
    assert hit("bytedance.com") == ("bytedance_other_app", "company", "bytedance.com")
    assert hit("sf16-sg.bytedance.net") == ("bytedance_other_app", "company", "bytedance.net")
    assert hit("www.tencent.com.hk") == ("tencent_other_app", "company", "tencent.com.hk")
    assert hit("pay.qq.com") == ("tencent_other_app", "company", "qq.com")
    # Lists that file ByteDance infrastructure under TikTok keep it at TikTok, company scope.
    assert hit("api.amemv.com") == ("tiktok", "company", "amemv.com")
    assert hit("sf-tk-sg.ibytedtos.com") == ("tiktok", "company", "ibytedtos.com")


# Names from the source lists (v2fly data/tiktok and data/bytedance, nDPI's TikTok and WeChat host
# entries, AdGuard's tiktok and wechat services), a few subdomains under them, and near misses.
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("p16-tiktokcdn-com.akamaized.net", ("tiktok", "app", "p16-tiktokcdn-com.akamaized.net")),
        ("p16-va-default.akamaized.net", ("tiktok", "app", "p16-va-default.akamaized.net")),
        ("tiktokcdn.com.edgesuite.net", ("tiktok", "app", "tiktokcdn.com.edgesuite.net")),
        ("tiktokv.com.edgekey.net", ("tiktok", "app", "tiktokv.com.edgekey.net")),
        ("tiktokcdn.liveplay.myqcloud.com", ("tiktok", "app", "tiktokcdn.liveplay.myqcloud.com")),
        ("bytedance.map.fastly.net", ("tiktok", "company", "bytedance.map.fastly.net")),
        ("ttlivecdn.com.c.bytefcdn-oversea.com", ("tiktok", "app", "ttlivecdn.com.c.bytefcdn-oversea.com")),
        # An exact host beats the company-wide domain it sits under; its neighbours stay company-wide.
        ("p16-tiktok-va-h2.ibyteimg.com", ("tiktok", "app", "p16-tiktok-va-h2.ibyteimg.com")),
        ("p16-tiktok-sg.ibyteimg.com", ("tiktok", "company", "ibyteimg.com")),
        ("v16.byteicdn.com", ("tiktok", "company", "byteicdn.com")),
        ("lf.bytecdn.cn", ("tiktok", "company", "bytecdn.cn")),
        ("x.byted.org", ("tiktok", "company", "byted.org")),
        ("musemuse.cn", ("tiktok", "app", "musemuse.cn")),
        ("v26.douyinvod.com", ("douyin", "app", "douyinvod.com")),
        ("www.huoshan.com", ("bytedance_other_app", "app", "huoshan.com")),
        ("web.wechat.com", ("wechat", "app", "wechat.com")),
        ("res.wx.qq.com", ("wechat", "app", "wx.qq.com")),
        ("mmsns.qpic.cn", ("wechat", "app", "mmsns.qpic.cn")),
        ("servicewechat.com", ("wechat", "app", "servicewechat.com")),
        # Shared CDNs: only the listed names, never the customer next door or the CDN itself.
        ("a.akamaized.net", None),
        ("akamaized.net", None),
        ("tiktok.akamaized.net", None),
        ("img.p16-tiktokcdn-com.akamaized.net", None),
        ("www.example.com.edgesuite.net", None),
        ("reddit.map.fastly.net", None),
        ("other.liveplay.myqcloud.com", None),
        # Near misses by label.
        ("notbytedance.com", None),
        ("bytedance.com.evil.example", None),
        ("bytedance.co", None),
        ("nottencent.com", None),
        # nDPI's first-label patterns are left out: wx. under any other domain is not WeChat.
        ("wx.example.org", None),
        ("weixin.example.org", None),
    ],
)
def test_hosts_from_the_source_lists(host: str, expected: tuple[str, str, str] | None) -> None:
    assert hit(host) == expected


def test_bulk_classification_treats_exact_hosts_like_the_walk() -> None:
    import pyarrow as pa

    hosts = ["p16-tiktokcdn-com.akamaized.net", "a.p16-tiktokcdn-com.akamaized.net", "P16-TIKTOKCDN-COM.akamaized.net."]
    rows = Classifier(INDICATORS).classify(pa.record_batch({"host": hosts})).to_pylist()
    assert [r["indicator"] for r in rows] == [
        "p16-tiktokcdn-com.akamaized.net",
        None,
        "p16-tiktokcdn-com.akamaized.net",
    ]


def test_a_company_match_is_decided_for_the_company_not_for_tiktok(tmp_path: Path) -> None:
    rows = [
        ("2020-11-13T05:00:00+00:00", "10.0.0.5", "api16.tiktokv.com"),
        ("2020-11-13T05:00:00+00:00", "10.0.0.5", "www.bytedance.com"),
        ("2025-01-20T00:00:00+00:00", "10.0.0.5", "www.bytedance.com"),  # PAFACA reaches every ByteDance app
    ]
    result = screen_network([dns_log(tmp_path / "dns.log", rows)], NetworkOptions(role="hosting"), BOOK)
    got = [(r["host"], r["app"], r["scope"], r["as_written"]) for r in result.records.to_pylist()]
    assert got == [
        ("api16.tiktokv.com", "tiktok", "app", "prohibited"),
        ("www.bytedance.com", "bytedance_other_app", "company", "not_prohibited"),
        ("www.bytedance.com", "bytedance_other_app", "company", "prohibited"),
    ]


def _load(tmp_path: Path, change: dict[str, object]) -> str:
    """The loader's message for the packaged set with one entry appended to each named section."""
    data = yaml.safe_load(default_indicator_path().read_text(encoding="utf-8"))
    for key, value in change.items():
        data[key] = [*data[key], value]
    path = tmp_path / "indicators.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulebookError) as caught:
        load_indicators(BOOK, path)
    return str(caught.value)


def test_the_loader_refuses_a_suffix_on_a_shared_cdn(tmp_path: Path) -> None:
    entry = {"suffix": "cdn.akamaized.net", "app": "tiktok", "scope": "app", "confidence": 0.5, "sources": ["ndpi"]}
    message = _load(tmp_path, {"domains": entry})
    assert "indicators.yaml" in message and "suffix" in message and "akamaized.net" in message and "host" in message


def test_the_loader_wants_exactly_one_of_suffix_or_host(tmp_path: Path) -> None:
    both = {"suffix": "a.example", "host": "b.example", "app": "tiktok", "scope": "app", "confidence": 0.5,
            "sources": ["ndpi"]}  # fmt: skip
    assert "exactly one" in _load(tmp_path, {"domains": both})
    neither = {"app": "tiktok", "scope": "app", "confidence": 0.5, "sources": ["ndpi"]}
    assert "exactly one" in _load(tmp_path, {"domains": neither})


def test_the_loader_refuses_unexplained_or_contradictory_omissions(tmp_path: Path) -> None:
    listed = {"name": "tiktok.com", "listed_as": "tiktok", "sources": ["ndpi"], "reason": "left out for a test here"}
    assert "also listed in domains" in _load(tmp_path, {"left_out": listed})
    no_reason = {"name": "x.example", "listed_as": "tiktok", "sources": ["ndpi"], "reason": ""}
    assert "reason" in _load(tmp_path, {"left_out": no_reason})
    unsourced = {
        "name": "x.example",
        "listed_as": "wechat",
        "sources": ["nowhere"],
        "reason": "left out for a test here",
    }
    assert "unknown source 'nowhere'" in _load(tmp_path, {"left_out": unsourced})
