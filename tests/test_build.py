"""Assembly: what one stack renders, from its parts, and the desired models the rollout engine reads."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from modelplane.build import PlatformObjects, _unique, build, desired_models
from modelplane.kube import LABEL_COMPONENT, Part, key_of
from modelplane.rollout.policy import RolloutPolicy
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from tests.conftest import STACKS
from tests.rollout.builders import load, stack_data

CATALOG = load_catalog(catalog_dir())


def _stack(**rollout_override: Any) -> ServingPlatformArgs:
    data = stack_data("standard", "knative")
    data["controlPlane"]["defaultDeploymentMode"] = "knative"
    del data["models"][1]["deploymentMode"]
    if rollout_override:
        data["models"][0]["rollout"] = rollout_override
    return load(data)


def test_desired_models_are_keyed_by_namespace_and_name_with_their_mode() -> None:
    desired = desired_models(_stack())
    assert {k: (d.namespace, d.model.name, d.mode) for k, d in desired.items()} == {
        "team/std": ("team", "std", "standard"),
        "team/kn": ("team", "kn", "knative"),
    }


def test_desired_models_carry_their_effective_rollout_policy() -> None:
    stack = _stack(steps=[50, 100], dryRun=True)
    desired = desired_models(stack)
    assert desired["team/std"].policy == stack.rollout.model_copy(
        update={"steps": [50, 100], "dry_run": True}
    )
    assert desired["team/kn"].policy == stack.rollout
    assert isinstance(desired["team/kn"].policy, RolloutPolicy)


def test_every_object_belongs_to_one_part() -> None:
    rendered = build(load(stack_data()), catalog=CATALOG)
    parts = rendered.parts()
    assert set(parts) <= set(get_args(Part))
    assert sorted(key_of(o) for objects in parts.values() for o in objects) == sorted(
        key_of(o) for o in rendered.objects
    )
    assert rendered.part("model") == parts["model"]
    assert {o["kind"] for o in rendered.part("model")} == {"InferenceService"}


def test_objects_without_a_part_are_grouped_as_config() -> None:
    rendered = PlatformObjects(objects=[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])
    assert rendered.parts() == {"config": rendered.objects}
    assert rendered.part("tenant") == []


def test_the_catalog_is_an_argument_not_a_file_read() -> None:
    image = "registry.example.com/sklearn:9.9.9"
    catalog = dict(CATALOG) | {"sklearn": CATALOG["sklearn"].model_copy(update={"image": image})}
    rendered = build(load(stack_data("standard")), catalog=catalog)
    (runtime,) = [o for o in rendered.objects if o["kind"] == "ClusterServingRuntime"]
    assert runtime["spec"]["containers"][0]["image"] == image


def test_charts_come_in_install_order() -> None:
    charts = build(ServingPlatformArgs.model_validate({"stack": {"name": "dev", "tier": "dev"}})).charts
    assert [(c.wave, c.release) for c in charts] == sorted((c.wave, c.release) for c in charts)
    assert charts[-1].release == "kserve"


def test_two_different_objects_of_one_identity_are_a_bug() -> None:
    same = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}}
    assert _unique([same, dict(same)]) == [same]
    with pytest.raises(AssertionError, match="two different objects render as ConfigMap n/x"):
        _unique([same, same | {"data": {"a": "b"}}])


def test_the_example_stacks_render_every_part_they_declare() -> None:
    rendered = build(load_stack(STACKS / "prod.yaml"), catalog=CATALOG)
    assert {"tenant", "runtime", "model", "modelmesh", "gpu-pool", "monitoring", "control-plane"} <= set(
        rendered.parts()
    )
    assert all(o["metadata"].get("labels", {}).get(LABEL_COMPONENT) for o in rendered.objects)
