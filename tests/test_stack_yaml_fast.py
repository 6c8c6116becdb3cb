"""The strict YAML reader's fast path gives exactly PyYAML's data, and hands anything unusual to the full check.

Plain documents (the bulk of a big catalog) are built in one walk; a tag, an alias of a collection,
a merge key, a repeated or non-string key, a value its tag cannot read or deep nesting must go to
the complete check, which reports problems with their paths. A property test compares the data
with ``yaml.safe_load`` for random documents written in block and flow style.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelplane import stack_yaml
from modelplane.errors import StackError

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(
        ["yes", "No", "on", "OFF", "~", "0x1F", "0o17", "1_000", "1:30", "2024-01-31", "-0", "007"]
    ),
)
keys = st.text(min_size=1, max_size=8)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=30,
)


def _nodes(text: str) -> tuple[yaml.SafeLoader, yaml.Node]:
    loader = yaml.CSafeLoader(text)
    assert loader.check_node()
    return loader, loader.get_node()


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(keys, documents, min_size=1, max_size=5), flow=st.booleans())
def test_fast_path_gives_pyyaml_data(data: dict[str, Any], flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    expected = yaml.safe_load(text)
    assert stack_yaml.read_yaml(text.encode("utf-8"), "f.yaml") == expected
    loader, node = _nodes(text)
    plain, built = stack_yaml._plain_data(loader, node)
    assert plain, text  # safe_dump writes no tags, aliases or repeated keys: all of it is plain
    assert built == expected
    assert [type(v) for v in built.values()] == [type(v) for v in expected.values()]


def test_a_big_catalog_takes_the_fast_path() -> None:
    models = [{"name": f"m{i}", "version": "v1", "scaling": {"minReplicas": 1}} for i in range(2000)]
    text = yaml.safe_dump({"models": models})
    plain, data = stack_yaml._plain_data(*_nodes(text))
    assert plain and data == {"models": models}


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/name:os.system x\n",  # a language tag
        "a: &x {b: 1}\nc: *x\n",  # an alias of a collection
        "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n",  # a merge key
        "a: 1\na: 2\n",  # a repeated key
        "1: one\n",  # a key that is not a string
        "? [a]\n: x\n",  # a collection as key
        "a: !!int fast\n",  # a value its tag cannot read
        "a: " + "[" * (stack_yaml.MAX_DEPTH + 5) + "]" * (stack_yaml.MAX_DEPTH + 5) + "\n",  # too deep
    ],
)
def test_anything_not_plain_goes_to_the_full_check(text: str) -> None:
    plain, data = stack_yaml._plain_data(*_nodes(text))
    assert (plain, data) == (False, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: 1\na: 2\n", "f.yaml: a: duplicate key (first at line 1, again at line 2)"),
        ("a: !!int fast\n", 'f.yaml: a: "fast" is not a valid !!int'),
        ("a: !!python/name:os.system x\n", "f.yaml: a: YAML tag '!!python/name:os.system' is not allowed"),
    ],
)
def test_problems_are_still_reported_with_their_path(text: str, problem: str) -> None:
    with pytest.raises(StackError) as err:
        stack_yaml.read_yaml(text.encode(), "f.yaml")
    assert err.value.problems[0].startswith(problem)


def test_aliases_of_plain_values_still_read() -> None:
    text = "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\ns: &s hello\nt: *s\n"
    assert stack_yaml.read_yaml(text.encode(), "f.yaml") == yaml.safe_load(text)


def test_plain_scalars_resolve_as_pyyaml_resolves_them() -> None:
    """Unquoted scalars of every implicit type: YAML 1.1 ints, bools, nulls, floats and dates."""
    values = ["0x1F", "0o17", "017", "1_000", "1:30", "-0", "+7", "007", "Yes", "NO", "on", "~", "Null"]
    values += [
        ".inf",
        "-.Inf",
        ".NaN",
        "1e3",
        "1.5e-3",
        "2024-01-31",
        "2024-01-31T10:00:00Z",
        "12345678901234567890",
    ]
    text = "".join(f"k{i}: {v}\n" for i, v in enumerate(values))
    expected = yaml.safe_load(text)
    got = stack_yaml.read_yaml(text.encode(), "f.yaml")
    assert {k: repr(v) for k, v in got.items()} == {k: repr(v) for k, v in expected.items()}


def _nesting_bound_by_scanning(text: str) -> int:
    """The nesting bound as first written: one step per bracket, every indentation and entry run."""
    depth = deepest = 0
    for match in re.finditer(r"[\[\]{}]", text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    indent = max(map(len, re.findall(r"^ +", text, re.MULTILINE)), default=0)
    compact = max(map(len, re.findall(r"(?:[-?] +)+", text)), default=0)
    return deepest + indent + compact + 1


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="[]{}-? \n\r\tab:", max_size=60))
def test_nesting_bound_equals_the_scanning_bound(text: str) -> None:
    """The bound computed in C (running sum less running minimum, substring search) is the scan's."""
    assert stack_yaml.nesting_bound(text) == _nesting_bound_by_scanning(text)


@pytest.mark.parametrize(
    "text",
    ["", "x", "]]]", "[[[]", "}{}{", "\n" + " " * 37 + "x", " " * 9, "- - ? x\n  - y", "a: [b, {c: [d]}]"],
)
def test_nesting_bound_edge_cases(text: str) -> None:
    assert stack_yaml.nesting_bound(text) == _nesting_bound_by_scanning(text)
