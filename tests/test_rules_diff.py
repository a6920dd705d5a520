"""`appban rules diff A B`: the entries that differ between two knowledge roots (appban.knowledge.changes)
and the decisions that flip (appban.knowledge.flips), against answers worked out by hand from the YAML."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from appban.cli import app
from appban.knowledge.changes import changes
from appban.knowledge.flips import flips, place_groups
from appban.knowledge.layout import PACKAGED, PARTS, KnowledgeRoot
from appban.rulebook.loader import load_rulebook
from appban.vocabulary import Category, Enforcement, Verdict

runner = CliRunner()

# A hypothetical order: India lifts the app-store part of its June 2020 block for SHAREit alone, from noon
# India time on 1 March 2026 (06:30Z). SHAREit is blocked in India by that order only (in-69a-59-apps:
# app_store_distribution, app_store_update and transit_peering), so the one answer it moves is SHAREit's
# app_store_distribution in India: prohibited (enforceable) before, not prohibited from 06:30Z on.
RELIEF = """\
id: india-shareit-relief-2026
kind: foreign_order
title: Hypothetical order lifting the app-store block of SHAREit
short_title: India SHAREit relief (test)
issued_by: Ministry of Electronics and Information Technology, Government of India
jurisdiction: IN
made: {event: issued, date: 2026-03-01, time: "12:00", zone: Asia/Kolkata}
citation:
  cite: A hypothetical order, for tests only
  url: https://example.org/india-shareit-relief
summary: App stores may offer SHAREit again in India.
exceptions:
  - id: india-shareit-relief-2026-app-stores
    label: SHAREit may be offered in app stores again
    text: The block of SHAREit's distribution through app stores is lifted.
    applies_to: [in-69a-59-apps]
    subjects: [shareit]
    categories: [app_store_distribution]
    from: {date: 2026-03-01, time: "12:00", zone: Asia/Kolkata}
"""
RELIEF_AT = dt.datetime(2026, 3, 1, 6, 30, tzinfo=dt.UTC)


def knowledge_copy(folder: Path) -> KnowledgeRoot:
    """The packaged knowledge laid out as a bundle holds it, in `folder`, to be edited."""
    for part in PARTS:
        source, target = part.packaged_path(), folder / part.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, target)
    return KnowledgeRoot(folder)


def diff_json(a: str, b: str, *extra: str) -> dict[str, object]:
    result = runner.invoke(app, ["rules", "diff", a, b, "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_a_new_instrument_is_added_and_flips_exactly_its_stretch(tmp_path: Path) -> None:
    root = knowledge_copy(tmp_path / "b")
    (root.path("rulebook") / "instruments" / "india-shareit-relief-2026.yaml").write_text(RELIEF, encoding="utf-8")

    found = changes(PACKAGED, root)
    assert [(e.part, e.section, e.key, e.change) for e in found.entries] == [
        ("rulebook", "instruments", "india-shareit-relief-2026", "added")
    ]

    flipped = flips(load_rulebook(PACKAGED.path("rulebook")), load_rulebook(root.path("rulebook")))
    assert [(f.app, f.category, f.place_group, f.start, f.end) for f in flipped] == [
        ("shareit", Category.APP_STORE_DISTRIBUTION, "IN", RELIEF_AT, None)
    ]
    (flip,) = flipped
    assert (flip.a.verdict, flip.a.as_written, flip.a.enforcement) == (
        Verdict.PROHIBITED,
        Verdict.PROHIBITED,
        Enforcement.ENFORCEABLE,
    )
    assert (flip.b.verdict, flip.b.as_written, flip.b.enforcement) == (
        Verdict.NOT_PROHIBITED,
        Verdict.NOT_PROHIBITED,
        Enforcement.NOT_APPLICABLE,
    )
    assert flip.instruments == ("india-shareit-relief-2026",)

    # The command says the same, with the instants in Z and the open end as null.
    document = diff_json("packaged", str(root.directory))
    assert document["flips"] == [
        {
            "app": "shareit",
            "category": "app_store_distribution",
            "place_group": "IN",
            "where": "IN",
            "from": "2026-03-01T06:30:00Z",
            "until": None,
            "a": {"verdict": "prohibited", "as_written": "prohibited", "enforcement": "enforceable"},
            "b": {"verdict": "not_prohibited", "as_written": "not_prohibited", "enforcement": "not_applicable"},
            "instruments": ["india-shareit-relief-2026"],
        }
    ]
    # Filters narrow the flips to nothing where the order does not reach.
    assert diff_json("packaged", str(root.directory), "--where", "US")["flips"] == []
    assert diff_json("packaged", str(root.directory), "--app", "tiktok")["flips"] == []
    assert diff_json("packaged", str(root.directory), "--category", "App-Store-Update")["flips"] == []
    assert len(diff_json("packaged", str(root.directory), "--app", "SHAREit", "--where", "in")["flips"]) == 1
    assert len(diff_json("packaged", str(root.directory), "--app", "com.lenovo.anyshare.gps")["flips"]) == 1  # type: ignore[arg-type]

    # Markdown for a pull request, and --fail-on-change as a gate.
    markdown = runner.invoke(app, ["rules", "diff", "packaged", str(root.directory), "--format", "markdown"])
    assert markdown.exit_code == 0
    assert "india-shareit-relief-2026" in markdown.stdout and "2026-03-01T06:30:00Z" in markdown.stdout
    gate = runner.invoke(app, ["rules", "diff", "packaged", str(root.directory), "--fail-on-change"])
    assert gate.exit_code == 1


def test_a_removed_indicator_is_listed_and_flips_nothing(tmp_path: Path) -> None:
    root = knowledge_copy(tmp_path / "b")
    path = root.path("network/indicators.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    removed = data["domains"].pop(0)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    name = f"suffix {removed['suffix']}" if "suffix" in removed else f"host {removed['host']}"

    found = changes(PACKAGED, root)
    assert [(e.part, e.section, e.key, e.change) for e in found.entries] == [
        ("network/indicators.yaml", "domains", name, "removed")
    ]
    document = diff_json("packaged", str(root.directory))
    assert document["flips"] == []
    assert document["changes"]["counts"] == {"added": 0, "changed": 0, "removed": 1}  # type: ignore[index]

    csv = runner.invoke(app, ["rules", "diff", "packaged", str(root.directory), "--format", "csv", "--rows", "changes"])
    assert csv.exit_code == 0
    assert csv.stdout.splitlines()[1].startswith(f"network/indicators.yaml,domains,{name},removed")


def test_identical_roots_differ_in_nothing(tmp_path: Path) -> None:
    root = knowledge_copy(tmp_path / "b")
    found = changes(PACKAGED, root)
    assert found.empty and found.rulebook_a == found.rulebook_b
    assert flips(load_rulebook(PACKAGED.path("rulebook")), load_rulebook(root.path("rulebook"))) == []
    result = runner.invoke(app, ["rules", "diff", "packaged", str(root.directory), "--fail-on-change"])
    assert result.exit_code == 0, result.output
    assert "No instrument or list entry differs." in result.stdout and "No decision flips." in result.stdout


def test_a_changed_date_flips_the_stretch_between_the_old_and_the_new_date(tmp_path: Path) -> None:
    # EO 14352's qualified-divestiture exception starts 22 January 2026 (00:00 New York, 05:00Z); moved to
    # 25 January, TikTok's app-store distribution in the US is again the PAFACA prohibition in between:
    # suspended until the non-enforcement direction ends on 24 January (05:00Z), enforceable after it.
    root = knowledge_copy(tmp_path / "b")
    path = root.path("rulebook") / "instruments" / "eo-14352.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count("      date: 2026-01-22\n") == 1
    path.write_text(text.replace("      date: 2026-01-22\n", "      date: 2026-01-25\n"), encoding="utf-8")
    old, new = dt.datetime(2026, 1, 22, 5, tzinfo=dt.UTC), dt.datetime(2026, 1, 25, 5, tzinfo=dt.UTC)

    found = changes(PACKAGED, root)
    (entry,) = found.entries
    assert (entry.key, entry.change, entry.kinds) == ("eo-14352", "changed", ("exceptions", "dates"))
    assert [(i.section, i.id, i.fields) for i in entry.items] == [
        ("exceptions", "pafaca-qualified-divestiture-2026", ("from",))
    ]

    flipped = flips(load_rulebook(PACKAGED.path("rulebook")), load_rulebook(root.path("rulebook")))
    assert flipped
    # Every flip lies between the old and the new date, and is that exception's doing.
    assert all(f.start is not None and f.end is not None and old <= f.start < f.end <= new for f in flipped)
    assert {f.instruments for f in flipped} == {("eo-14352",)}
    assert all(f.b.verdict is Verdict.PROHIBITED for f in flipped)
    # In the US group A answers not prohibited throughout (in Montana the state's enjoined law shows first).
    assert all(f.a.verdict is Verdict.NOT_PROHIBITED for f in flipped if f.place_group == "US")
    tiktok = [
        f for f in flipped if (f.app, f.category, f.place_group) == ("tiktok", Category.APP_STORE_DISTRIBUTION, "US")
    ]
    suspended_until = dt.datetime(2026, 1, 24, 5, tzinfo=dt.UTC)
    assert [(f.start, f.end, f.b.enforcement) for f in tiktok] == [
        (old, suspended_until, Enforcement.SUSPENDED),
        (suspended_until, new, Enforcement.ENFORCEABLE),
    ]


def test_place_groups_stand_for_each_named_place_once() -> None:
    book = load_rulebook(PACKAGED.path("rulebook"))
    groups = {group.name: group for group in place_groups(book, book)}
    assert set(groups) == {"US", "US-MT", "IN", "elsewhere"}
    assert set(groups["US"].codes) == {"US", "PR", "GU", "VI", "AS", "MP", "UM"}


def test_parquet_rows_and_bad_arguments(tmp_path: Path) -> None:
    root = knowledge_copy(tmp_path / "b")
    (root.path("rulebook") / "instruments" / "india-shareit-relief-2026.yaml").write_text(RELIEF, encoding="utf-8")
    out = tmp_path / "flips.parquet"
    result = runner.invoke(
        app, ["rules", "diff", "packaged", str(root.directory), "--format", "parquet", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(io.BytesIO(out.read_bytes())).to_pylist()
    assert [(r["app"], r["from"], r["until"], r["b_verdict"]) for r in table] == [
        ("shareit", RELIEF_AT, None, "not_prohibited")
    ]

    missing = runner.invoke(app, ["rules", "diff", "packaged", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "B: " in missing.output and "nowhere" in missing.output
    unknown = runner.invoke(app, ["rules", "diff", "packaged", "packaged", "--app", "no-such-app"])
    assert unknown.exit_code == 2 and "--app" in unknown.output
    bad_place = runner.invoke(app, ["rules", "diff", "packaged", "packaged", "--where", "XX"])
    assert bad_place.exit_code == 2 and "--where" in bad_place.output


@pytest.mark.parametrize("broken", ["rulebook/facts.yaml", "code/signatures.yaml"])
def test_an_unreadable_part_is_named(tmp_path: Path, broken: str) -> None:
    root = knowledge_copy(tmp_path / "b")
    assert root.directory is not None
    (root.directory / broken).write_text("facts: [\n", encoding="utf-8")
    result = runner.invoke(app, ["rules", "diff", "packaged", str(root.directory)])
    assert result.exit_code == 2
    assert Path(broken).name in result.output
