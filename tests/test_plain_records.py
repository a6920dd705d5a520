"""The rulebook's objects and the engine's answers are plain records (appban.plain): pydantic checks them when
a file is read, but they are built, compared, copied, pickled and serialised without it. What they serialise
to must be what pydantic writes for the same classes, since the rulebook's version is a hash of it."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from appban.engine.decide import Decision, decide
from appban.engine.timeline import timeline
from appban.plain import Record, plain_dump, plain_json
from appban.rulebook.loader import RulebookError, load_rulebook
from appban.rulebook.schema import Change, Citation, Clock, Instrument, Prohibition

BOOK = load_rulebook()
DUMPS: list[dict[str, Any]] = [
    {"mode": "python"},
    {"mode": "json"},
    {"mode": "json", "by_alias": True},
    {"mode": "json", "by_alias": True, "exclude_defaults": True},
    {"mode": "python", "by_alias": True, "exclude_none": True},
]


def _records() -> list[Record]:
    found: list[Record] = [BOOK.subjects, BOOK.places, BOOK.facts]
    for instrument in BOOK.instruments.values():
        found += [instrument, instrument.made, instrument.citation, *instrument.prohibitions]
        found += [*instrument.exceptions, *instrument.changes, *instrument.authorizations]
    return found


def test_every_rulebook_record_serialises_as_pydantic_would() -> None:
    records = _records()
    assert len(records) > 100
    for record in records:
        adapter = TypeAdapter(type(record))
        for options in DUMPS:
            assert plain_dump(record, **options) == adapter.dump_python(record, **options), (record, options)


@pytest.mark.parametrize("app", ["tiktok", "wechat"])
@pytest.mark.parametrize("instant", ["2020-09-20T00:00:00Z", "2020-11-13T05:00:00Z", "2021-06-10T00:00:00Z"])
def test_every_answer_serialises_as_pydantic_would(app: str, instant: str) -> None:
    for category in ("cdn", "payment_processing", "app_store_update", "constituent_code_use"):
        decision = decide(app, category, "US", instant)
        adapter = TypeAdapter(Decision)
        assert plain_dump(decision) == adapter.dump_python(decision)
        assert plain_dump(decision, mode="json") == adapter.dump_python(decision, mode="json")
        assert plain_json(decision) == adapter.dump_json(decision).decode() == decision.model_dump_json()
    changes = timeline(app, "US")
    adapter = TypeAdapter(type(changes))
    assert plain_dump(changes, mode="json", by_alias=True) == adapter.dump_python(changes, mode="json", by_alias=True)
    assert "from" in plain_dump(changes, by_alias=True) and "from_" in plain_dump(changes)
    assert plain_json(changes) == adapter.dump_json(changes).decode()


def test_a_command_without_pydantic_writes_what_pydantic_would(tmp_path: Path) -> None:
    """A quick command never loads pydantic (tests/test_startup.py), so its JSON is written by `plain_dump`:
    the same document as the library's answer, serialised here, where pydantic is loaded."""
    env = {**os.environ, "APPBAN_CACHE_DIR": str(tmp_path)}
    env.pop("APPBAN_NO_CACHE", None)
    at = "2020-11-12T23:59:00-05:00"
    asked = [
        (
            ["check", "--app", "tiktok", "--transaction", "cdn", "--where", "US", "--at", at],
            decide("tiktok", "cdn", "US", at),
        ),
        (["timeline", "--app", "wechat", "--where", "US"], timeline("wechat", "US")),
    ]
    for args, answer in asked:
        for _ in range(2):  # the first run reads the YAML (and so loads pydantic); the second does not
            done = subprocess.run(
                [sys.executable, "-m", "appban", *args, "--format", "json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr
        expected = answer.model_dump(mode="json", by_alias=True) if args[0] == "timeline" else answer.to_json_dict()
        assert json.loads(done.stdout) == expected


def test_the_rulebook_version_is_the_hash_of_what_pydantic_writes() -> None:
    content = {
        "subjects": TypeAdapter(type(BOOK.subjects)).dump_python(BOOK.subjects, mode="json", by_alias=True),
        "places": TypeAdapter(type(BOOK.places)).dump_python(BOOK.places, mode="json", by_alias=True),
        "facts": TypeAdapter(type(BOOK.facts)).dump_python(BOOK.facts, mode="json", by_alias=True),
        "instruments": [
            TypeAdapter(Instrument).dump_python(BOOK.instruments[key], mode="json", by_alias=True)
            for key in sorted(BOOK.instruments)
        ],
    }
    assert BOOK.canonical_json() == json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def test_a_record_is_frozen_compared_by_value_and_pickled_whole() -> None:
    instrument = next(iter(BOOK.instruments.values()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        instrument.id = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del instrument.title  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(instrument))
    assert again == instrument and again is not instrument
    assert again.made.instant == instrument.made.instant
    assert instrument.model_copy(update={"title": "x"}) != instrument
    assert instrument.model_copy(update={"title": "x"}).title == "x" and instrument.title != "x"
    assert repr(instrument).startswith(f"Instrument(id={instrument.id!r}, ")
    day = instrument.made.date
    assert hash(Clock(date=day, zone="UTC")) == hash(Clock(date=day, zone="UTC"))  # lists aside, records hash
    assert Citation(cite="85 FR 1", url="https://example.org") == Citation(cite="85 FR 1", url="https://example.org")
    assert Citation(cite="85 FR 1", url="https://example.org") != Citation(cite="85 FR 2", url="https://example.org")


def test_a_record_names_its_fields_as_a_pydantic_model_does() -> None:
    assert list(Decision.model_fields)[:3] == ["app", "subject", "subject_name"]
    assert "from_" in Prohibition.model_fields and "id" in Prohibition.model_fields
    assert set(Citation.model_fields) == {"cite", "url", "sources"}


def test_a_record_is_built_only_from_the_keywords_it_names() -> None:
    with pytest.raises(TypeError, match="missing keyword argument 'url'"):
        Citation(cite="85 FR 1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword arguments 'page'"):
        Citation(cite="85 FR 1", url="https://example.org", page=3)  # type: ignore[call-arg]
    made = Citation(cite="85 FR 1", url="https://example.org")
    assert made.sources == [] and made.sources is not Citation(cite="x", url="https://x").sources
    with pytest.raises(ValueError, match="new_start is required for a delay"):
        change = BOOK.instruments["commerce-tiktok-delay-2020-09-19"].changes[0]
        dataclasses.replace(change, new_start=None)


def test_validation_checks_each_field_and_across_fields() -> None:
    clock = Clock.model_validate({"date": "2020-09-20", "time": "23:59", "zone": "America/New_York"})
    assert clock.instant.isoformat() == "2020-09-21T03:59:00+00:00"
    problems = {
        "time": ({"date": "2020-09-20", "time": 1439, "zone": "UTC"}, "write the clock time in quotes"),
        "zone": ({"date": "2020-09-20", "zone": "Mars/Olympus"}, "unknown time zone"),
        "hour": ({"date": "2020-09-20", "zone": "UTC", "hour": 3}, "Unexpected keyword argument"),
    }
    for name, (data, message) in problems.items():
        with pytest.raises(ValidationError, match=message) as raised:
            Clock.model_validate(data)
        assert raised.value.errors()[0]["loc"][-1] == name  # the field that is wrong is named
    prohibition = BOOK.instruments["commerce-tiktok-identification-2020"].prohibitions[0]
    written = prohibition.model_dump(mode="json", by_alias=True)
    assert Prohibition.model_validate(written) == prohibition  # the file's own spelling (`from`) reads back
    with pytest.raises(ValidationError, match="names at least one subject or company"):
        Prohibition.model_validate({**written, "subjects": [], "companies": []})
    with pytest.raises(ValidationError, match="should match pattern"):
        Prohibition.model_validate({**written, "id": "Not An Id"})
    with pytest.raises(ValidationError, match="at least 1 item"):
        Change.model_validate({"id": "c", "kind": "revoke", "label": "l", "targets": [], "from": written["from"]})


def test_a_misspelt_key_in_a_rulebook_file_is_named_with_its_line(tmp_path: Path) -> None:
    root = tmp_path / "rulebook"
    source = BOOK.root
    for path in source.rglob("*.yaml"):
        target = root / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    victim = root / "instruments" / "commerce-tiktok-identification-2020.yaml"
    text = victim.read_text(encoding="utf-8")
    victim.write_text(text.replace("\nsummary:", "\nsumary: x\nsummary:", 1), encoding="utf-8")
    with pytest.raises(RulebookError) as raised:
        load_rulebook(root)
    found = [str(problem) for problem in raised.value.problems]
    assert any("sumary: Extra inputs are not permitted" in problem for problem in found), found
