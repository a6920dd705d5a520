"""Name-only inventories: store titles per storefront, publisher accounts as the stores show them,
look-alikes that borrow a name, and match classes that follow each row's instant."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from pydantic import ValidationError

from appban import load_rulebook
from appban.identity.normalize import split_title
from appban.identity.registry import RegistryFile, Title, default_registry_path, load_registry
from appban.identity.resolve import MatchKind, Record, Resolver
from appban.screen.inventory import InventoryOptions, Screener
from appban.tables import line_mapper, read_table

BOOK = load_rulebook()
REGISTRY = load_registry(BOOK)
US = Resolver(BOOK, REGISTRY, where="US")

# The columns of an Intune "Discovered apps" export (see examples/inventory/FORMATS.md for the source).
INTUNE_HEADER = [
    "ApplicationId", "ApplicationKey", "ApplicationName", "ApplicationPublisher", "ApplicationShortVersion",
    "ApplicationVersion", "DeviceCount", "Platform",
]  # fmt: skip

# (name, publisher, expected app, expected class): what a reviewer should see for each row; None = no finding.
INTUNE_ROWS: list[tuple[str, str, str | None, str | None]] = [
    # real listings, as the stores title them and name their sellers
    ("TikTok - Videos, Shop & LIVE", "TikTok Ltd.", "tiktok", "strong"),
    ("TikTok - Videos, Music & LIVE", "TikTok Ltd.", "tiktok", "strong"),
    ("TikTok: Videos, Music & LIVE", "", "tiktok", "strong"),
    ("TikTok - Videos, Shop & LIVE", "TikTok Pte. Ltd.", "tiktok", "strong"),
    ("TikTok Lite - Faster TikTok", "TikTok Pte. Ltd.", "tiktok_lite", "strong"),
    ("Lemon8 - Lifestyle Community", "", "lemon8", "strong"),
    ("CapCut: Photo & Video Editor", "Bytedance Pte. Ltd", "capcut", "strong"),
    ("抖音", "Beijing Microlive Vision Technology Co., Ltd", "douyin", "strong"),
    ("Douyin 抖音", "", "douyin", "strong"),
    ("TikTok Studio", "", "bytedance_other_app", "strong"),
    ("TikTok for Business", "TikTok Pte. Ltd.", "bytedance_other_app", "strong"),
    ("TikTok - Creator Tools", "TikTok Pte. Ltd.", "tiktok", "strong"),  # a subtitle vouched for by its seller
    ("WeChat", "Tencent Mobile International Limited", "wechat", "strong"),
    # apps that borrow the name: never the real app
    ("TikTok Downloader", "SaveClip Apps", None, None),
    ("Tiktok Fonts", "Font Studio Co", None, None),
    ("Fonts for TikTok", "Font Studio Co", None, None),
    ("TikTok - Video Downloader", "SaveClip Apps", "tiktok", "lookalike"),
    ("TikTok: No Watermark Saver", "", "tiktok", "lookalike"),
    ("TikTok - Videos, Shop & LIVE", "Quick Media LLC", "tiktok", "lookalike"),
    ("TіkTok - Videos, Shop & LIVE", "TikTok Ltd.", "tiktok", "lookalike"),  # Cyrillic і
    ("Lemon8 - Lifestyle Community", "Citrus Clone Apps", "lemon8", "lookalike"),
    ("QQ: Quick Quotes", "Quote Lab", None, None),  # short names never match inside another title
    ("Tick Tock - Clock & Timer", "Harbor Lane Software", None, None),
    ("Microsoft Teams", "Microsoft Corporation", None, None),
]


def write_intune(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(INTUNE_HEADER)
        for n, (name, publisher, _app, _kind) in enumerate(INTUNE_ROWS):
            writer.writerow(["", f"{n:044x}", name, publisher, "1.0", "1.0", "3", "IOS"])
    return path


def test_intune_export_finds_real_titles_and_flags_no_lookalike_as_the_app(tmp_path: Path) -> None:
    path = write_intune(tmp_path / "DiscoveredApps.csv")
    result = Screener(BOOK, InventoryOptions(at="2025-02-01T00:00:00Z")).screen(
        read_table(path, all_text=True), str(path), line_mapper(path)
    )
    assert result.columns.format == "intune-discovered-apps" and not result.errors
    found = {row["line"]: (row["app"], row["match"]) for row in result.findings.to_pylist()}
    expected = {n + 2: (app, kind) for n, (_, _, app, kind) in enumerate(INTUNE_ROWS) if app}
    assert found == expected
    real = [row for row in INTUNE_ROWS if row[3] == "strong"]
    borrowed = [row for row in INTUNE_ROWS if row[3] != "strong"]
    hits = sum(
        found.get(n + 2, (None, None))[1] in {"strong", "exact"} for n, row in enumerate(INTUNE_ROWS) if row in real
    )
    false_flags = sum(
        found.get(n + 2, (None, None))[1] in {"strong", "exact"} for n, row in enumerate(INTUNE_ROWS) if row in borrowed
    )
    assert (hits, false_flags) == (len(real), 0)


def test_a_catalog_classes_each_listing_at_its_own_instant(tmp_path: Path) -> None:
    header = ["listing_id", "kind", "store", "store_app_id", "package_id", "name", "publisher", "storefront",
              "last_updated"]  # fmt: skip
    rows = [
        # Lemon8 and Douyin: no prohibition reached ByteDance's other apps in the US before PAFACA (April 2024)
        ["gp-l8", "listing", "google_play", "", "com.bd.nproject", "Lemon8 - Lifestyle Community", "", "US",
         "2020-10-01T12:00:00Z"],
        ["gp-l8", "update", "google_play", "", "com.bd.nproject", "Lemon8 - Lifestyle Community", "", "US",
         "2024-06-01T12:00:00Z"],
        ["as-dy", "listing", "app_store", "", "", "抖音", "Beijing Microlive Vision Technology Co., Ltd", "US",
         "2021-03-01T00:00:00+08:00"],
        ["as-dy", "update", "app_store", "", "", "抖音", "Beijing Microlive Vision Technology Co., Ltd", "US",
         "2025-01-20T00:00:00+08:00"],
        # TikTok: named by Commerce's identification (made 18 Sept 2020), not before it
        ["as-tt", "listing", "app_store", "835599320", "", "TikTok - Videos, Music & LIVE", "TikTok Ltd.", "US",
         "2020-08-10T09:00:00-04:00"],
        ["as-tt", "update", "app_store", "835599320", "", "TikTok - Videos, Music & LIVE", "TikTok Ltd.", "US",
         "2020-09-20T09:00:00-04:00"],
    ]  # fmt: skip
    path = tmp_path / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    result = Screener(BOOK, InventoryOptions()).screen(read_table(path, all_text=True), str(path), line_mapper(path))
    found = [(row["app"], row["match"], row["verdict"]) for row in result.findings.to_pylist()]
    assert found == [
        ("lemon8", "related_not_covered", "not_prohibited"),
        ("lemon8", "exact", "not_yet_effective"),
        ("douyin", "related_not_covered", "not_prohibited"),
        ("douyin", "strong", "prohibited"),
        ("tiktok", "related_not_covered", "not_prohibited"),
        ("tiktok", "exact", "not_yet_effective"),
    ]
    early = result.findings.to_pylist()[0]["reason"]
    assert "pafaca-2024" in early and "yet" in early


def test_the_class_changes_at_the_instant_the_first_prohibition_was_made() -> None:
    made, instrument = US.covered_since["lemon8"]
    record = Record(name="Lemon8")
    second = dt.timedelta(seconds=1)
    assert US.resolve(record, made - second)[0].kind == MatchKind.RELATED_NOT_COVERED
    assert US.resolve(record, made)[0].kind == MatchKind.STRONG
    assert US.resolve(record)[0].kind == MatchKind.STRONG  # without an instant: any instrument counts
    assert instrument in US.resolve(record, made - second)[0].reason
    # an app the law never reaches here stays related_not_covered whatever the instant
    wecom = Record(ios_bundle="com.tencent.ww")
    for at in (made - second, made + dt.timedelta(days=3650)):
        assert US.resolve(wecom, at)[0].kind == MatchKind.RELATED_NOT_COVERED


def test_every_sourced_title_resolves_to_its_app_from_its_own_publisher_and_not_from_another() -> None:
    for app, identity in REGISTRY.apps.items():
        for title in identity.titles:
            assert REGISTRY.sources[title.source].startswith("https://")
            accounts = REGISTRY.publishers.get(BOOK.company_of(app) or "", [])
            own = US.resolve(Record(name=title.value, publisher=accounts[0].value if accounts else None))
            assert own and (own[0].app, own[0].kind) in {(app, MatchKind.STRONG), (app, MatchKind.RELATED_NOT_COVERED)}
            other = US.resolve(Record(name=title.value, publisher="Quick Media LLC"))
            assert other and other[0].kind == MatchKind.LOOKALIKE, title.value


@pytest.mark.parametrize(
    ("publisher", "company"),
    [
        ("TikTok Ltd.", "bytedance"),
        ("TikTok Pte. Ltd.", "bytedance"),
        ("Bytedance Pte. Ltd", "bytedance"),
        ("Beijing Microlive Vision Technology Co., Ltd", "bytedance"),
        ("Tencent Mobile International Limited", "tencent"),
        ("Microlive Vision", None),  # part of a seller's name is not the seller
        ("TikTok Fonts Ltd.", None),
    ],
)
def test_store_seller_accounts_belong_to_their_company(publisher: str, company: str | None) -> None:
    assert US.company_of_publisher(publisher) == company


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("TikTok - Videos, Shop & LIVE", ("TikTok", "Videos, Shop & LIVE")),
        ("CapCut: Photo & Video Editor", ("CapCut", "Photo & Video Editor")),
        ("抖音：记录美好生活", ("抖音", "记录美好生活")),  # full-width colon
        ("Lemon8 — Lifestyle Community", ("Lemon8", "Lifestyle Community")),
        ("Wi-Fi Analyzer", None),
        ("TikTok -", None),
        ("TikTok", None),
    ],
)
def test_store_titles_split_at_their_subtitle(text: str, split: tuple[str, str] | None) -> None:
    assert split_title(text) == split


def test_a_title_must_name_its_store_and_storefront() -> None:
    with pytest.raises(ValidationError):
        Title(value="TikTok", source="x", store="app_store", storefront="USA")
    with pytest.raises(ValidationError):
        Title(value="TikTok", source="x", store="itunes", storefront="US")
    data = yaml.safe_load(default_registry_path().read_text(encoding="utf-8"))
    data["apps"]["tiktok"]["titles"].append({"value": "TikTok", "source": "nowhere", "store": "app_store",
                                             "storefront": "US"})  # fmt: skip
    RegistryFile.model_validate(data)  # the schema holds; the unknown source is the loader's to refuse


def test_the_prefilter_keeps_every_title_row_the_resolver_matches() -> None:
    heads = ["TikTok", "T1kTok", "Lemon8", "CapCut", "WeChat", "Douyin", "Musical.ly", "QQ", "Tik Tok"]
    tails = ["Videos, Shop & LIVE", "Video Downloader", "Douyin", "Weixin", "Lite", ""]
    names = [f"{head}{sep}{tail}" for head in heads for sep in (" - ", ": ", "|", " ", ":", " -") for tail in tails]
    publishers = ["TikTok Ltd.", "Quick Media LLC", ""]
    table = pa.table({"name": [n for n in names for _ in publishers], "publisher": publishers * len(names)})
    screener = Screener(BOOK, InventoryOptions(where="US"))
    kept = screener.candidates(table, {"name": "name", "publisher": "publisher"})
    resolver = screener.resolver("US")
    for name, publisher, keep in zip(table["name"].to_pylist(), table["publisher"].to_pylist(), kept, strict=True):
        if resolver.resolve(Record(name=name, publisher=publisher or None)):
            assert keep, f"the pre-filter dropped {name!r} from {publisher!r}, which the resolver matches"
