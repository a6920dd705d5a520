"""JSON templates: filling the gaps gives the JSON of the whole value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appban.jsontemplate import FilledJSON, JSONTemplate, gap

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(
    document=st.dictionaries(st.text(max_size=8), values, max_size=5),
    filled=st.dictionaries(st.sampled_from(["app", "at", "where_asked"]), values, min_size=1),
    ensure_ascii=st.booleans(),
)
def test_filling_the_gaps_gives_the_json_of_the_whole(
    document: dict[str, Any], filled: dict[str, Any], ensure_ascii: bool
) -> None:
    marked = document | {f"field_{name}": gap(name) for name in filled} | {"twice": gap(next(iter(filled)))}
    template = JSONTemplate(json.dumps(marked, ensure_ascii=ensure_ascii))
    assert template.gaps == set(filled)
    whole = document | {f"field_{name}": value for name, value in filled.items()}
    whole["twice"] = filled[next(iter(filled))]
    assert json.loads(template.fill(filled)) == whole
    assert json.loads(FilledJSON(template, filled).text) == whole
    assert template.fill_utf8(filled) == template.fill(filled).encode()
    assert json.loads(template.fill_utf8(filled, b'"id":"x",')) == {"id": "x"} | whole


def test_a_missing_value_is_named_and_the_digest_names_the_text() -> None:
    template = JSONTemplate(json.dumps({"app": gap("app"), "at": gap("at")}))
    with pytest.raises(KeyError, match="at"):
        template.fill({"app": "tiktok"})
    assert template.digest == JSONTemplate(template.text).digest
    assert template.digest != JSONTemplate(json.dumps({"app": gap("app")})).digest
    with pytest.raises(ValueError, match="object"):
        JSONTemplate(json.dumps([gap("app")])).fill_utf8({"app": "a"}, b'"id":1,')
    # Text that merely looks like a gap name, outside the markers, is not one.
    assert JSONTemplate(json.dumps({"note": "gap:app"})).gaps == frozenset()
