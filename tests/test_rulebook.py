"""Loading the rulebook: validation errors name the file, line and field; the version is a content hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from appban import RulebookError, load_rulebook

TIKTOK = "instruments/commerce-tiktok-identification-2020.yaml"


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text {old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(root: Path) -> list[str]:
    with pytest.raises(RulebookError) as caught:
        load_rulebook(root)
    return [str(p) for p in caught.value.problems]


def line_of(root: Path, name: str, needle: str) -> int:
    for number, text in enumerate((root / name).read_text(encoding="utf-8").splitlines(), start=1):
        if needle in text:
            return number
    raise AssertionError(needle)


def test_packaged_rulebook_loads(rulebook) -> None:  # type: ignore[no-untyped-def]
    assert len(rulebook.instruments) >= 25
    assert rulebook.version.startswith("sha256:")


def test_version_is_stable_and_ignores_comments(rulebook_copy: Path, rulebook) -> None:  # type: ignore[no-untyped-def]
    assert load_rulebook(rulebook_copy).version == rulebook.version
    edit(
        rulebook_copy,
        TIKTOK,
        "id: commerce-tiktok-identification-2020",
        "# a comment\nid: commerce-tiktok-identification-2020",
    )
    assert load_rulebook(rulebook_copy).version == rulebook.version


def test_version_changes_when_the_law_changes(rulebook_copy: Path, rulebook) -> None:  # type: ignore[no-untyped-def]
    edit(rulebook_copy, TIKTOK, "date: 2020-11-12", "date: 2020-11-13")
    assert load_rulebook(rulebook_copy).version != rulebook.version


def test_unknown_time_zone_names_file_line_and_field(rulebook_copy: Path) -> None:
    edit(
        rulebook_copy,
        TIKTOK,
        "zone: America/New_York\n      stated: 11:59 p.m. eastern standard time on November 12",
        "zone: America/NewYork\n      stated: 11:59 p.m. eastern standard time on November 12",
    )
    found = problems(rulebook_copy)
    line = line_of(rulebook_copy, TIKTOK, "America/NewYork")
    assert any(
        f"rulebook/{TIKTOK}:{line}: prohibitions[1].from.zone: unknown time zone 'America/NewYork'" in p for p in found
    ), found


def test_unquoted_clock_time_is_explained(rulebook_copy: Path) -> None:
    edit(
        rulebook_copy,
        TIKTOK,
        'time: "23:59"\n      zone: America/New_York\n      stated: 11:59 p.m. eastern standard time on November 12',
        "time: 23:59\n      zone: America/New_York\n      stated: 11:59 p.m. eastern standard time on November 12",
    )
    found = problems(rulebook_copy)
    assert any("prohibitions[1].from.time" in p and "quotes" in p for p in found), found


def test_missing_required_field(rulebook_copy: Path) -> None:
    edit(rulebook_copy, "instruments/eo-13971.yaml", "short_title: EO 13971\n", "")
    found = problems(rulebook_copy)
    assert any(p.startswith("rulebook/instruments/eo-13971.yaml:1: short_title: Field required") for p in found), found


def test_unknown_field_is_rejected(rulebook_copy: Path) -> None:
    edit(rulebook_copy, "instruments/eo-14034.yaml", "kind: revoke", "kind: revoke\n    efective: soon")
    found = problems(rulebook_copy)
    assert any("changes[0].efective: Extra inputs are not permitted" in p for p in found), found


def test_unknown_category_is_rejected(rulebook_copy: Path) -> None:
    edit(rulebook_copy, TIKTOK, "categories: [cdn]", "categories: [cdn, streaming]")
    found = problems(rulebook_copy)
    assert any("prohibitions[2].categories[1]" in p for p in found), found


def test_unknown_subject_and_reference_are_cross_checked(rulebook_copy: Path) -> None:
    edit(
        rulebook_copy, TIKTOK, "subjects: [tiktok]\n    categories: [cdn]", "subjects: [tiktokk]\n    categories: [cdn]"
    )
    edit(rulebook_copy, "instruments/eo-14034.yaml", "targets: [eo-13942,", "targets: [eo-13924,")
    found = problems(rulebook_copy)
    assert any("prohibitions[2].subjects[0]: unknown subject 'tiktokk'" in p for p in found), found
    line = line_of(rulebook_copy, "instruments/eo-14034.yaml", "eo-13924")
    assert any(
        f"eo-14034.yaml:{line}: changes[0].targets[0]: unknown instrument or item 'eo-13924'" in p for p in found
    )


def test_unknown_fact_and_place(rulebook_copy: Path) -> None:
    edit(
        rulebook_copy,
        "instruments/omb-m-23-13.yaml",
        "facts: {personally_owned_device: true}",
        "facts: {personal_device: true}",
    )
    edit(rulebook_copy, "instruments/india-69a-2020-06-29.yaml", "places: [IN]", "places: [XX]")
    found = problems(rulebook_copy)
    assert any("exceptions[2].facts.personal_device: unknown fact" in p for p in found), found
    assert any("prohibitions[0].places[0]: 'XX' is neither a place group nor an ISO 3166 code" in p for p in found)


def test_duplicate_key_is_rejected(rulebook_copy: Path) -> None:
    edit(
        rulebook_copy, "instruments/eo-14258.yaml", "short_title: EO 14258", "short_title: EO 14258\nshort_title: again"
    )
    found = problems(rulebook_copy)
    line = line_of(rulebook_copy, "instruments/eo-14258.yaml", "short_title: again")
    assert any(f"eo-14258.yaml:{line}:" in p and "'short_title' is written twice" in p for p in found), found


def test_duplicate_item_id_is_rejected(rulebook_copy: Path) -> None:
    edit(rulebook_copy, "instruments/eo-14310.yaml", "id: eo-14310-non-enforcement", "id: eo-14258-non-enforcement")
    found = problems(rulebook_copy)
    assert any("changes[0].id: id 'eo-14258-non-enforcement' is already used" in p for p in found), found


def test_broken_yaml_names_the_line(rulebook_copy: Path) -> None:
    edit(rulebook_copy, "instruments/eo-13873.yaml", "summary: >-", "summary: [unclosed")
    found = problems(rulebook_copy)
    assert any(p.startswith("rulebook/instruments/eo-13873.yaml:") and "not valid YAML" in p for p in found), found


def test_file_name_must_match_id(rulebook_copy: Path) -> None:
    (rulebook_copy / "instruments/eo-13873.yaml").rename(rulebook_copy / "instruments/emergency.yaml")
    found = problems(rulebook_copy)
    assert any("emergency.yaml" in p and "must match the file name" in p for p in found), found


def test_delay_needs_a_new_start(rulebook_copy: Path) -> None:
    edit(rulebook_copy, "instruments/eo-14034.yaml", "kind: revoke", "kind: delay")
    found = problems(rulebook_copy)
    assert any("changes[0]: new_start is required for a delay" in p for p in found), found


def test_every_problem_is_reported_at_once(rulebook_copy: Path) -> None:
    edit(rulebook_copy, "instruments/eo-13971.yaml", "short_title: EO 13971\n", "")
    edit(rulebook_copy, "instruments/eo-14034.yaml", "kind: revoke", "kind: repeal")
    assert len(problems(rulebook_copy)) >= 2


def test_what_engines_derive_from_a_rulebook_goes_with_it() -> None:
    """A long-lived process (the service, a fuzzer, a notebook) loads rulebooks again and again: none may be
    kept alive by a cache of what was derived from it."""
    import gc
    import weakref

    import pyarrow as pa

    from appban.code.signatures import default_signatures
    from appban.engine.batch import decide_table
    from appban.engine.decide import decide
    from appban.identity.resolve import Record, Resolver
    from appban.network.indicators import default_indicators

    def use_one() -> weakref.ref[object]:
        book = load_rulebook()
        decide("tiktok", "internet_hosting", "US", "2020-11-12T23:59:00-05:00", rulebook=book)
        table = pa.table({"app": ["wechat"], "transaction": ["cdn"], "where": ["US"], "at": ["2020-09-21T00:00:00Z"]})
        decide_table(table, rulebook=book)
        default_signatures(book)
        default_indicators(book)
        assert Resolver(book).at("US").resolve(Record(name="TikTok"))
        return weakref.ref(book)

    gone = [use_one() for _ in range(3)]
    gc.collect()
    assert [ref() for ref in gone] == [None, None, None]
