"""Cross-field rules: the stack's values checked against each other, as Problems at file paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from modelplane import rules
from modelplane.base import Problem
from modelplane.build import build
from modelplane.errors import ProblemError
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from tests.conftest import STACKS
from tests.test_control_plane import GPU_MODEL, POOLS
from tests.test_gpu_pool import MIG

CATALOG = load_catalog(catalog_dir())


def _stack(**overrides: Any) -> ServingPlatformArgs:
    base: dict[str, Any] = yaml.safe_load((STACKS / "dev.yaml").read_text())
    base.pop("graphs", None)  # they call the dev stack's models, which the cases replace
    base.update(copy.deepcopy(overrides))
    return ServingPlatformArgs.model_validate(base)


def _problems(**overrides: Any) -> list[Problem]:
    return rules.problems(_stack(**overrides), catalog=CATALOG)


def test_the_example_stacks_break_no_rule() -> None:
    for path in sorted(STACKS.glob("*.yaml")):
        if not path.name.endswith(".lock.yaml"):
            data = yaml.safe_load(path.read_text())
            assert rules.problems(ServingPlatformArgs.model_validate(data), catalog=CATALOG) == [], path


def test_gpu_scale_to_zero_guard_refuses_outside_dev() -> None:
    problems = _problems(stack={"name": "staging", "tier": "staging"}, gpuPools=POOLS, models=[GPU_MODEL])
    (problem,) = [p for p in problems if p.path == ("models", 0, "scaling", "minReplicas")]
    assert "pool 'a10''s nodeProvisioningTime (720s)" in problem.message
    assert problem.value == 0


def test_gpu_scale_to_zero_is_no_problem_in_dev() -> None:
    assert _problems(gpuPools=POOLS, models=[GPU_MODEL]) == []


def test_disallowed_runtime_is_refused() -> None:
    problems = _problems(
        controlPlane={"defaultDeploymentMode": "knative", "allowedRuntimes": ["sklearn", "nope"]}
    )
    by_path = {p.path: p.message for p in problems}
    assert by_path[("controlPlane", "allowedRuntimes", 1)].startswith(
        "unknown runtime (catalog: autogluon, custom, "
    )
    assert by_path[("models", 1, "runtime")] == (
        "runtime is not allowed on this platform (controlPlane.allowedRuntimes: sklearn, nope); "
        "use one of those or add it there"
    )
    assert ("models", 0, "runtime") not in by_path


def test_a_consistent_gpu_stack_has_no_problems() -> None:
    model = GPU_MODEL | {
        "deploymentMode": "standard",
        "resources": {"gpu": 1, "pool": "a100-mig", "migProfile": "1g.10gb"},
        "scaling": {"minReplicas": 1, "maxReplicas": 2},
    }
    assert _problems(gpuPools=[MIG], models=[model]) == []


def test_build_refuses_a_stack_built_in_python_that_breaks_a_rule() -> None:
    stack = _stack(models=[GPU_MODEL | {"tenant": "nobody", "resources": {}, "scaling": {}}])
    with pytest.raises(ProblemError) as raised:
        build(stack, catalog=CATALOG)
    assert raised.value.problems == [
        Problem(("models", 0, "tenant"), "unknown tenant (tenants: fraud)", "nobody")
    ]
    assert str(raised.value) == "models[0].tenant: unknown tenant (tenants: fraud)"


def test_omitted_items_keep_their_file_indexes_and_are_not_dangling() -> None:
    # models[0] and tenants[0] were left out by the loader (their own fields are invalid).
    stack = _stack(
        tenants=[{"name": "fraud"}],
        models=[GPU_MODEL | {"tenant": "gone", "resources": {}, "scaling": {}, "runtime": "mystery"}],
    )
    omitted = rules.Omitted(models=frozenset({0}), tenants=frozenset({0}), tenant_names=frozenset({"gone"}))
    assert rules.problems(stack, catalog=CATALOG, omitted=omitted) == [
        Problem(
            ("models", 1, "runtime"),
            "unknown runtime (catalog: autogluon, custom, huggingface, huggingface-multinode, lightgbm, mlserver, "
            "openvino, paddle, pmml, predictive, sklearn, tensorflow, torchserve, triton, vllm, xgboost)",
            "mystery",
        )
    ]


def test_a_stack_that_passed_is_not_walked_again_against_the_same_catalog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = _stack()
    rules.check(stack, catalog=CATALOG)
    walked: list[ServingPlatformArgs] = []
    real = rules.problems

    def counting(stack: ServingPlatformArgs, **kwargs: Any) -> list[Problem]:
        walked.append(stack)
        return real(stack, **kwargs)

    monkeypatch.setattr(rules, "problems", counting)
    rules.check(stack, catalog=CATALOG)
    assert walked == []
    rules.check(stack, catalog=dict(CATALOG))  # another catalog: checked again
    copy_ = stack.model_copy(update={"models": []})  # another stack: checked again
    rules.check(copy_, catalog=CATALOG)
    assert walked == [stack, copy_]
