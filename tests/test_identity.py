"""Identity resolution: identifiers, names in several scripts, look-alikes and near misses."""

from __future__ import annotations

import pytest

from appban import load_rulebook
from appban.identity.registry import ID_FIELDS, load_registry
from appban.identity.resolve import MatchKind, Record, Resolver

BOOK = load_rulebook()
REGISTRY = load_registry(BOOK)
US = Resolver(BOOK, REGISTRY, where="US")
ANYWHERE = Resolver(BOOK, REGISTRY)


def best(resolver: Resolver, **fields: str) -> tuple[str, str] | None:
    matches = resolver.resolve(Record(**fields))
    return (matches[0].app, matches[0].kind.value) if matches else None


@pytest.mark.parametrize(
    ("field", "value", "app"),
    [
        ("android_package", "com.zhiliaoapp.musically", "tiktok"),
        ("android_package", "com.ss.android.ugc.trill", "tiktok"),
        ("ios_bundle", "com.zhiliaoapp.musically", "tiktok"),
        ("app_store_id", "835599320", "tiktok"),
        ("app_store_id", "1235601864", "tiktok"),
        ("android_package", "com.zhiliaoapp.musically.go", "tiktok_lite"),
        ("android_package", "com.tencent.mm", "wechat"),
        ("ios_bundle", "com.tencent.xin", "wechat"),
        ("app_store_id", "414478124", "wechat"),
        ("id", "COM.TENCENT.XIN", "wechat"),  # bundle IDs compare without case
        ("android_package", "com.lemon.lvoverseas", "capcut"),
        ("app_store_id", "1500855883", "capcut"),
        ("android_package", "com.bd.nproject", "lemon8"),
        ("android_package", "com.eg.android.AlipayGphone", "alipay"),
        ("id", "com.intsig.camscanner", "camscanner"),
        ("id", "cn.wps.moffice_eng", "wps_office"),
    ],
)
def test_exact_store_identifiers(field: str, value: str, app: str) -> None:
    matches = ANYWHERE.resolve(Record(**{field: value}))
    assert matches[0].app == app
    assert matches[0].confidence == 1.0 and matches[0].score == 100
    assert matches[0].source.startswith("https://")


def test_every_registry_identifier_resolves_to_its_app_and_has_a_source() -> None:
    for app, identity in REGISTRY.apps.items():
        for field in ID_FIELDS:
            for identifier in getattr(identity, field):
                assert REGISTRY.sources[identifier.source].startswith("https://")
                assert best(ANYWHERE, id=identifier.value)[0] == app  # type: ignore[index]
        for name in identity.names:
            assert REGISTRY.sources[name.source].startswith("https://")


def test_identifier_beats_a_misleading_name() -> None:
    assert best(US, name="Calculator", publisher="Acme", android_package="com.zhiliaoapp.musically") == (
        "tiktok",
        "exact",
    )


@pytest.mark.parametrize(
    ("name", "app"),
    [
        ("微信", "wechat"),
        ("Weixin", "wechat"),
        ("WEIXIN", "wechat"),
        ("We Chat", "wechat"),
        ("微信支付", "wechat_pay"),
        ("Tenpay", "wechat_pay"),
        ("财付通", "wechat_pay"),
        ("抖音", "douyin"),
        ("今日头条", "toutiao"),
        ("企业微信", "wecom"),
        ("微信读书", "weread"),
        ("支付宝", "alipay"),
        ("QQ钱包", "qq_wallet"),
        ("飞书", "lark"),
        ("ＴｉｋＴｏｋ", "tiktok"),  # full-width
        ("Musical.ly", "tiktok"),
        ("TikTok Lite", "tiktok_lite"),
    ],
)
def test_names_in_several_scripts_and_widths(name: str, app: str) -> None:
    matches = ANYWHERE.resolve(Record(name=name))
    assert matches and matches[0].app == app
    assert matches[0].kind in {MatchKind.STRONG, MatchKind.RELATED_NOT_COVERED}


def test_name_with_own_publisher_is_strong() -> None:
    match = US.resolve(Record(name="WeChat", publisher="Tencent Technology (Shenzhen) Company Limited"))[0]
    assert (match.app, match.kind, match.field) == ("wechat", MatchKind.STRONG, "name")
    assert "Tencent Technology" in match.reason


@pytest.mark.parametrize(
    ("name", "publisher", "app", "why"),
    [
        ("TіkTok", "Fun Apps LLC", "tiktok", "another script"),  # Cyrillic і
        ("TіkTok", "TikTok Pte. Ltd.", "tiktok", "another script"),  # disguise even under the real name
        ("T1kTok", "Fun Apps LLC", "tiktok", "disguised name"),
        ("T1kTok Lite", "Fun Apps LLC", "tiktok_lite", "disguised name"),
        ("TikTok Pro", "Fun Apps LLC", "tiktok", "publisher 'Fun Apps LLC'"),
        ("TikTok", "Fun Apps LLC", "tiktok", "publisher 'Fun Apps LLC'"),
        ("TikTokk", "Some Dev", "tiktok", "similar name"),
        ("ＷｅＣｈａｔ Ｐｒｏ", "Chat Tools Ltd", "wechat", "publisher"),
        ("$hareit", "Files Inc", "shareit", "disguised name"),
        ("CapCut Pro", None, "capcut", "no publisher"),
    ],
)
def test_lookalikes_are_flagged_with_the_reason(name: str, publisher: str | None, app: str, why: str) -> None:
    matches = US.resolve(Record(name=name, publisher=publisher))
    assert matches, name
    assert (matches[0].app, matches[0].kind) == (app, MatchKind.LOOKALIKE)
    assert why in matches[0].reason
    assert matches[0].confidence < 0.7


@pytest.mark.parametrize(
    ("name", "publisher"),
    [
        ("Tick Tock Clock", "Clock Makers"),
        ("TickTock", "Clock Makers"),
        ("WeChat Translator Keyboard", "Keyboard Inc"),
        ("Wechat Helper", "Helper Apps"),
        ("Tik Tac Toe Classic", "Board Games Ltd"),
        ("Cap Cut Templates for Reels", "Reel Tools"),
        ("Microsoft Teams", "Microsoft Corporation"),
        ("Lemonade Stand", "Game Co"),
        ("QQQ Tracker", "Funds Inc"),
    ],
)
def test_ordinary_apps_with_similar_words_do_not_match(name: str, publisher: str) -> None:
    assert US.resolve(Record(name=name, publisher=publisher)) == []


@pytest.mark.parametrize(
    ("record", "app"),
    [
        (Record(name="QQ", publisher="Tencent"), "qq"),
        (Record(name="WeCom", publisher="Tencent"), "wecom"),
        (Record(name="Tencent Games"), "tencent_games"),
        (Record(name="Honor of Kings", publisher="Tencent"), "tencent_other_app"),
        (Record(id="com.tencent.mobileqq"), "qq"),
    ],
)
def test_related_apps_are_related_not_covered_in_the_us(record: Record, app: str) -> None:
    match = US.resolve(record)[0]
    assert (match.app, match.kind) == (app, MatchKind.RELATED_NOT_COVERED)
    assert "no prohibition in US" in match.reason


def test_coverage_depends_on_the_place() -> None:
    wecom = Record(ios_bundle="com.tencent.ww")
    assert best(US, **vars(wecom)) == ("wecom", "related_not_covered")
    assert best(Resolver(BOOK, REGISTRY, where="IN"), **vars(wecom)) == ("wecom", "exact")  # India's 2 Sept order
    douyin = Record(android_package="com.ss.android.ugc.aweme")
    assert best(US, **vars(douyin)) == ("douyin", "exact")  # PAFACA reaches every ByteDance app
    assert best(Resolver(BOOK, REGISTRY, where="DE"), **vars(douyin)) == ("douyin", "related_not_covered")


def test_unlisted_app_from_a_company_account_is_caught_by_publisher() -> None:
    match = US.resolve(Record(name="Hypic", publisher="ByteDance"))[0]
    assert (match.app, match.kind, match.field) == ("bytedance_other_app", MatchKind.STRONG, "publisher")


def test_publisher_names_must_match_not_merely_contain() -> None:
    assert US.company_of_publisher("Tencent Technology (Shenzhen) Company Limited") == "tencent"
    assert US.company_of_publisher("WeChat") == "tencent"
    assert US.company_of_publisher("WeChat Helper Studio") is None
    assert US.company_of_publisher("TikTok Fans Club") is None
