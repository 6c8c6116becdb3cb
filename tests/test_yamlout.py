"""The YAML writer reads back as exactly what it was given, deterministically."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelplane.yamlout import _dump_generic, dump

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "yes",
            "no",
            "on",
            "off",
            "null",
            "~",
            "1e3",
            "0x1F",
            "1:30",
            "2001-12-14",
            "-",
            "- a",
            "a: b",
            "#x",
            "x #y",
            "*a",
            "&a",
            "!t",
            "|",
            ">",
            "'",
            '"',
            "@x",
            "%x",
            "`",
            "{a}",
            "[a]",
            "a,b",
            " a",
            "a ",
            "line\nline",
            "trail\n",
            "two\n\n",
            "\n",
            " lead\nx",
            "tab\tx\ny",
            "s3://bucket/m",
            "0",
            "00",
            "1_000",
            ".inf",
            "Yes",
            "NO",
            "True",
            "=",
            "<<",
            "a:b",
            "a:",
            "nvidia.com/gpu",
            "2Gi",
            "500m",
            "v1",
            "1.0",
        ]
    ),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(["apiVersion", "null", "yes", "1", "a: b", "-x", ""]))
objects = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(objects)
def test_round_trip(value: Any) -> None:
    assert yaml.safe_load(dump(value)) == value


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(st.dictionaries(keys, objects, min_size=1, max_size=6))
def test_fast_path_writes_the_same_bytes(value: dict[str, Any]) -> None:
    """Mappings (every rendered object) take the fast path; it must write what the general one writes."""
    assert dump(value) == _dump_generic(value, [])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (
            {"b": 1, "a": [1, {"y": "yes", "x": None}], "c": {}},
            'a:\n  - 1\n  - x: null\n    y: "yes"\nb: 1\nc: {}\n',
        ),
        ({"cmd": "line one\nline two\n"}, "cmd: |\n  line one\n  line two\n"),
        ({"uri": "s3://bucket/model", "n": "2", "t": True}, 'n: "2"\nt: true\nuri: s3://bucket/model\n'),
    ],
)
def test_exact_text(value: Any, text: str) -> None:
    assert dump(value) == text


@pytest.mark.parametrize("value", [{"a": object()}, {"a": [{1: "x"}]}, {"a": {"b": [[object()]]}}, {1: "x"}])
def test_refuses_non_plain_data(value: Any) -> None:
    with pytest.raises(TypeError):
        dump(value)
