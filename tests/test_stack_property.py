"""Whatever a stack file says, loading it gives a valid stack or well-formed problems, never a crash.

Random mutations of the example stacks (keys deleted, renamed or added, values replaced by
anything YAML can hold, list items duplicated, numbers negated, strings swapped) must either
validate, and then render, or be refused with a ``StackError`` whose every line reads
``FILE: path: message``. The same holds for the mutated data written out as YAML, and for the
example files with their text damaged character by character.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.build import build
from modelplane.errors import StackError
from modelplane.stack import load_stack, parse_stack, read_yaml
from tests.conftest import EXAMPLE_STACKS

FILE = "stacks/mutant.yaml"

_KEY = r'(?:[A-Za-z_][A-Za-z0-9_-]*|\["(?:[^"\\]|\\.)*"\]|\[[^\]"]*\])'
_PART = r'(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\]|\["(?:[^"\\]|\\.)*"\]|\[[^\]"]*\])'


def problem_line(source: str) -> re.Pattern[str]:
    """One problem of ``source``: where (a field path, a line and column, or the root), and a message."""
    return re.compile(rf"^{re.escape(source)}: (?:<root>|line [0-9]+, column [0-9]+|{_KEY}{_PART}*): [^\n]+$")


EXAMPLES: dict[str, Any] = {p.name: read_yaml(p.read_bytes(), str(p)) for p in EXAMPLE_STACKS}
TEXTS: dict[str, str] = {p.name: p.read_text(encoding="utf-8") for p in EXAMPLE_STACKS}

# Values that mean something somewhere in a stack, so mutations reach the cross-field rules
# and not only the type checks.
MEANINGFUL = [
    "",
    "0",
    "-1",
    "1e3",
    "500m",
    "2Gi",
    "2GB",
    "10m",
    "v1",
    "v2",
    "grpc",
    "latest",
    "knative",
    "standard",
    "modelmesh",
    "exclusive",
    "mig",
    "time-slicing",
    "1g.10gb",
    "3g.40gb",
    "custom",
    "triton",
    "sklearn",
    "mlserver",
    "huggingface",
    "onnx",
    "cpu",
    "memory",
    "concurrency",
    "queue-depth",
    "canary",
    "ab",
    "quickstart",
    "payments",
    "search",
    "l4-shared",
    "h100-mig",
    "ghcr.io/example/server:1.0",
    "s3://bucket/model",
    "s3://key:secret@bucket/model",
    "Upper Case",
    "line\nbreak",
    "a" * 70,
    "\u00fcnic\u00f6de",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(MEANINGFUL),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=8) | st.sampled_from(MEANINGFUL), inner, max_size=3),
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _near_miss(key: str) -> st.SearchStrategy[str]:
    """Names a person might type instead of ``key``."""
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)
    variants = {key.lower(), key.upper(), snake, key + "s", key[:-1], key[1:], key[:1] + key}
    return st.sampled_from(sorted(v for v in variants if v)) | st.text(max_size=10)


@st.composite
def mutants(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_paths(data)))
        target = _at(data, path)
        parent = _at(data, path[:-1]) if path else None
        key = path[-1] if path else None
        operation = draw(
            st.sampled_from(["delete", "set", "rename", "duplicate", "insert", "negate", "swap"])
        )
        if operation == "delete" and parent is not None:
            del parent[key]
        elif operation == "set":
            if parent is None:
                data = draw(values)
            else:
                parent[key] = draw(values)
        elif operation == "rename" and isinstance(parent, dict) and isinstance(key, str):
            parent[draw(_near_miss(key))] = parent.pop(key)
        elif operation == "duplicate" and isinstance(target, list) and target:
            index = draw(st.integers(min_value=0, max_value=len(target) - 1))
            target.insert(index, copy.deepcopy(target[index]))
        elif operation == "insert" and isinstance(target, dict):
            target[draw(st.text(max_size=10) | st.sampled_from(MEANINGFUL))] = draw(values)
        elif operation == "negate" and parent is not None and isinstance(target, (int, float)):
            parent[key] = not target if isinstance(target, bool) else -target
        elif operation == "swap":
            strings = [p for p in _paths(data) if p and isinstance(_at(data, p), str)]
            if len(strings) >= 2:
                first, second = draw(st.lists(st.sampled_from(strings), min_size=2, max_size=2, unique=True))
                a, b = _at(data, first), _at(data, second)
                _at(data, first[:-1])[first[-1]] = b
                _at(data, second[:-1])[second[-1]] = a
    return data


@st.composite
def damaged_texts(draw: st.DrawFn) -> str:
    """An example file with a few characters or lines deleted, duplicated or replaced."""
    text = TEXTS[draw(st.sampled_from(sorted(TEXTS)))]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))
        operation = draw(st.sampled_from(["delete", "insert", "replace", "duplicate-line", "delete-line"]))
        line_start = text.rfind("\n", 0, at) + 1
        line_end = text.find("\n", at) + 1 or len(text)
        if operation == "delete":
            text = text[:at] + text[at + 1 :]
        elif operation == "insert":
            text = text[:at] + draw(st.sampled_from(list(":-[]{}&*!|>'\"#%@`\t ,?\n"))) + text[at:]
        elif operation == "replace":
            text = text[:at] + draw(st.text(min_size=1, max_size=3)) + text[at + 1 :]
        elif operation == "duplicate-line":
            text = text[:line_end] + text[line_start:line_end] + text[line_end:]
        else:
            text = text[:line_start] + text[line_end:]
    return text


PROPERTY = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _assert_valid_or_well_reported(source: str, load: Any) -> None:
    try:
        stack = load()
    except StackError as err:
        assert err.problems, "a StackError names at least one problem"
        shape = problem_line(source)
        malformed = [line for line in err.problems if not shape.match(line)]
        assert malformed == []
    else:
        assert build(stack).objects


@pytest.fixture(scope="module")
def mutant_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stacks") / "mutant.yaml"


@PROPERTY
@given(mutants())
def test_mutated_stack_data_is_valid_or_well_reported(data: Any) -> None:
    _assert_valid_or_well_reported(FILE, lambda: parse_stack(data, FILE))


@PROPERTY
@given(data=mutants())
def test_mutated_stack_files_are_valid_or_well_reported(mutant_file: Path, data: Any) -> None:
    mutant_file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    _assert_valid_or_well_reported(str(mutant_file), lambda: load_stack(mutant_file))


@PROPERTY
@given(text=damaged_texts())
def test_damaged_stack_text_is_valid_or_well_reported(mutant_file: Path, text: str) -> None:
    mutant_file.write_text(text, encoding="utf-8")
    _assert_valid_or_well_reported(str(mutant_file), lambda: load_stack(mutant_file))


@pytest.mark.parametrize(
    "line",
    [
        "stacks/mutant.yaml: <root>: the file is empty; a stack file is a mapping with at least `stack`",
        "stacks/mutant.yaml: line 3, column 7: YAML error: did not find expected key",
        "stacks/mutant.yaml: models[2].scaling.minReplicas: must be at least 0 (got -1)",
        'stacks/mutant.yaml: models[0].labels["app.kubernetes.io/part-of"]: must be a Kubernetes label value',
        'stacks/mutant.yaml: rollout["a\\"b"]: unknown field',
        "stacks/mutant.yaml: tenants[1]: must be a mapping (got 5)",
    ],
)
def test_problem_shape_accepts_well_formed_lines(line: str) -> None:
    assert problem_line(FILE).match(line)


@pytest.mark.parametrize(
    "line",
    [
        "stacks/other.yaml: stack.name: required field is missing",
        "stacks/mutant.yaml: required field is missing",
        "stacks/mutant.yaml: stack.name: ",
        "stacks/mutant.yaml: stack..name: required field is missing",
        "stacks/mutant.yaml: stack.name: first line\nsecond line",
        "Traceback (most recent call last):",
    ],
)
def test_problem_shape_refuses_malformed_lines(line: str) -> None:
    assert not problem_line(FILE).match(line)
