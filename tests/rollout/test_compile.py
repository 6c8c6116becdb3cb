"""Rollout states compiled per deployment mode, checked field by field and against the CRD schemas."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.build import build, desired_models
from modelplane.render import to_yaml_stream
from modelplane.rollout import state
from modelplane.rollout.compile import AUTOSCALING_FIELDS, rendered_mirrors, rendered_traffic
from modelplane.rollout.lock import Lock, empty_lock, read_lock
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.validation import CrdSchemas
from tests.conftest import STACKS, schema_problems
from tests.rollout.builders import KEYS, NAMES, STACK, T0, T1, T2, bump, desired, edit, load, stack_data

CANARY = {"strategy": "canary", "steps": [10, 25, 50, 100], "stepInterval": "10m"}
SHADOW = CANARY | {"shadow": {"percent": 20, "duration": "5m"}}


def scenario(
    mode: str, phase: str, rollout: dict[str, Any] | None = None
) -> tuple[ServingPlatformArgs, Lock]:
    """A stack and lock with one model of ``mode`` in a rollout ``phase``."""
    data = stack_data(mode, rollout=rollout or CANARY)
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    if phase == "steady":
        return load(data), lock
    head = bump(data, NAMES[mode], "v2")
    lock = state.apply(lock, desired(head), stack=STACK, now=T1)
    key = KEYS[mode]
    record = lock.models[key]
    if phase == "advanced":
        record = state.advance(record, key, now=T2)
    elif phase == "paused":
        record = state.pause(record, key, now=T2)
    elif phase == "rolled-back":
        record = state.rollback(record, key, now=T2)
    elif phase == "promoted":
        record = state.promote(record, key, now=T2)
    return load(head), lock.model_copy(update={"models": {key: record}})


def isvcs(args: ServingPlatformArgs, lock: Lock) -> list[dict[str, Any]]:
    return [o for o in build(args, lock=lock).objects if o["kind"] == "InferenceService"]


def predictor(args: ServingPlatformArgs, lock: Lock) -> dict[str, Any]:
    (isvc,) = isvcs(args, lock)
    result: dict[str, Any] = isvc["spec"]["predictor"]
    return result


PHASES = ["steady", "started", "advanced", "paused", "rolled-back", "promoted"]


@pytest.mark.parametrize("mode", ["knative", "standard", "modelmesh"])
@pytest.mark.parametrize("phase", PHASES)
def test_every_mode_and_phase_passes_the_schemas(mode: str, phase: str, crd_schemas: CrdSchemas) -> None:
    args, lock = scenario(mode, phase)
    assert schema_problems(build(args, lock=lock).objects, args, crd_schemas) == []


@pytest.mark.parametrize("rollout", [SHADOW, {"strategy": "ab", "abSplit": 30}])
def test_shadow_and_ab_pass_the_schemas(rollout: dict[str, Any], crd_schemas: CrdSchemas) -> None:
    args, lock = scenario("standard", "started", rollout)
    assert schema_problems(build(args, lock=lock).objects, args, crd_schemas) == []


# --- Knative ---


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("steady", None),
        ("started", 10),
        ("advanced", 25),
        ("paused", 10),
        ("rolled-back", 0),
        ("promoted", None),
    ],
)
def test_knative_canary_traffic_percent(phase: str, expected: int | None) -> None:
    args, lock = scenario("knative", phase)
    assert predictor(args, lock).get("canaryTrafficPercent") == expected


def test_knative_predictor_carries_the_candidate() -> None:
    args, lock = scenario("knative", "started")
    assert predictor(args, lock)["model"]["storageUri"] == "s3://models/kn/v2"


def test_knative_ab_split() -> None:
    args, lock = scenario("knative", "started", {"strategy": "ab", "abSplit": 30})
    assert predictor(args, lock)["canaryTrafficPercent"] == 30


# --- Standard ---


def test_standard_steady_names_the_stable_predictor() -> None:
    args, lock = scenario("standard", "steady")
    (isvc,) = isvcs(args, lock)
    assert isvc["spec"]["predictor"]["name"] == "v1"
    assert "canary" not in isvc["spec"]


def test_standard_canary_keeps_the_stable_predictor() -> None:
    args, lock = scenario("standard", "started")
    (isvc,) = isvcs(args, lock)
    stable = isvc["spec"]["predictor"]
    assert (stable["name"], stable["model"]["storageUri"], stable["minReplicas"]) == (
        "v1",
        "s3://models/std/v1",
        2,
    )
    assert isvc["metadata"]["labels"]["modelplane.dev/version"] == "v1"


def test_standard_canary_entry() -> None:
    args, lock = scenario("standard", "advanced")
    (isvc,) = isvcs(args, lock)
    (canary,) = isvc["spec"]["canary"]
    assert canary["trafficPercent"] == 25
    assert canary["predictor"]["name"] == "v2"
    assert canary["predictor"]["model"]["storageUri"] == "s3://models/std/v2"
    assert canary["predictor"]["labels"]["modelplane.dev/version"] == "v2"
    assert not set(AUTOSCALING_FIELDS) & set(canary["predictor"])


def test_standard_rollback_removes_the_canary() -> None:
    args, lock = scenario("standard", "rolled-back")
    (isvc,) = isvcs(args, lock)
    assert "canary" not in isvc["spec"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/std/v1"


def test_standard_promotion_makes_the_stable_predictor_the_candidate() -> None:
    args, lock = scenario("standard", "promoted")
    (isvc,) = isvcs(args, lock)
    assert "canary" not in isvc["spec"]
    assert (isvc["spec"]["predictor"]["name"], isvc["spec"]["predictor"]["model"]["storageUri"]) == (
        "v2",
        "s3://models/std/v2",
    )


def test_standard_shadow_is_a_dark_canary_with_a_mirror_route() -> None:
    args, lock = scenario("standard", "started", SHADOW)
    objects = build(args, lock=lock).objects
    (isvc,) = [o for o in objects if o["kind"] == "InferenceService"]
    (canary,) = isvc["spec"]["canary"]
    assert (canary["trafficPercent"], canary["predictor"]["minReplicas"]) == (0, 1)
    (route,) = [o for o in objects if o["kind"] == "HTTPRoute"]
    rule = route["spec"]["rules"][0]
    assert rule["backendRefs"] == [{"name": "std-v1-predictor", "port": 80}]
    assert rule["filters"][0]["requestMirror"] == {
        "backendRef": {"name": "std-v2-predictor", "port": 80},
        "percent": 20,
    }
    assert route["spec"]["hostnames"] == ["std-team.models.example.com"]


def test_shadow_route_goes_away_at_the_first_step() -> None:
    args, lock = scenario("standard", "advanced", SHADOW)
    assert not [o for o in build(args, lock=lock).objects if o["kind"] == "HTTPRoute"]


def test_custom_image_change_gets_its_own_runtime() -> None:
    data = stack_data("standard", rollout=CANARY)
    data["models"][0] |= {
        "runtime": "custom",
        "image": "ghcr.io/example/srv:1.0.0",
        "format": {"name": "mine"},
    }
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    head = edit(data, "std", version="v2", image="ghcr.io/example/srv:2.0.0")
    lock = state.apply(lock, desired(head), stack=STACK, now=T1)
    objects = build(load(head), lock=lock).objects
    images = {
        o["metadata"]["name"]: o["spec"]["containers"][0]["image"]
        for o in objects
        if o["kind"] == "ServingRuntime"
    }
    assert images == {
        "std-runtime": "ghcr.io/example/srv:1.0.0",
        "std-v2-runtime": "ghcr.io/example/srv:2.0.0",
    }
    (isvc,) = [o for o in objects if o["kind"] == "InferenceService"]
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "std-runtime"
    assert isvc["spec"]["canary"][0]["predictor"]["model"]["runtime"] == "std-v2-runtime"


# --- ModelMesh ---


def test_modelmesh_loads_the_candidate_beside() -> None:
    args, lock = scenario("modelmesh", "started")
    by_name = {o["metadata"]["name"]: o for o in isvcs(args, lock)}
    assert sorted(by_name) == ["mesh", "mesh-v2"]
    assert by_name["mesh"]["spec"]["predictor"]["model"]["storageUri"] == "s3://models/mesh/v1"
    side = by_name["mesh-v2"]
    assert side["spec"]["predictor"]["model"]["storageUri"] == "s3://models/mesh/v2"
    assert side["metadata"]["annotations"]["modelplane.dev/candidate-of"] == "mesh"
    assert side["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "ModelMesh"


@pytest.mark.parametrize(
    ("phase", "uri"), [("promoted", "s3://models/mesh/v2"), ("rolled-back", "s3://models/mesh/v1")]
)
def test_modelmesh_switch_and_rollback_drop_the_side_object(phase: str, uri: str) -> None:
    args, lock = scenario("modelmesh", phase)
    (isvc,) = isvcs(args, lock)
    assert (isvc["metadata"]["name"], isvc["spec"]["predictor"]["model"]["storageUri"]) == ("mesh", uri)


# --- traffic read back from objects, idempotence ---


@pytest.mark.parametrize(
    ("mode", "phase", "expected"),
    [
        ("knative", "started", {"v1": 90, "v2": 10}),
        ("knative", "rolled-back", {"v1": 100}),
        ("standard", "advanced", {"v1": 75, "v2": 25}),
        ("standard", "promoted", {"v2": 100}),
        ("modelmesh", "started", {"v1": 100}),
        ("modelmesh", "promoted", {"v2": 100}),
    ],
)
def test_rendered_traffic(mode: str, phase: str, expected: dict[str, int]) -> None:
    args, lock = scenario(mode, phase)
    stable = {k: r.stable.version for k, r in state.effective_records(desired_models(args), lock).items()}
    assert rendered_traffic(build(args, lock=lock).objects, stable) == {KEYS[mode]: expected}


def test_rendered_mirror() -> None:
    args, lock = scenario("standard", "started", SHADOW)
    assert rendered_mirrors(build(args, lock=lock).objects) == {"team/std": 20}


@pytest.mark.parametrize("phase", PHASES)
def test_rendering_twice_is_byte_identical(phase: str) -> None:
    args, lock = scenario("standard", phase)
    first = to_yaml_stream(build(args, lock=lock).objects)
    assert to_yaml_stream(build(args, lock=lock).objects) == first


def test_render_without_lock_is_unchanged_by_rollouts() -> None:
    args = load(stack_data("standard"))
    (isvc,) = [o for o in build(args).objects if o["kind"] == "InferenceService"]
    assert "name" not in isvc["spec"]["predictor"]


def test_render_with_empty_lock_deploys_every_model_directly() -> None:
    args = load(stack_data())
    traffic = rendered_traffic(build(args, lock=empty_lock("test")).objects, {})
    assert traffic == {"team/kn": {"v1": 100}, "team/mesh": {"v1": 100}, "team/std": {"v1": 100}}


def test_unapplied_version_bump_renders_its_first_step() -> None:
    data = stack_data("standard", rollout=CANARY)
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    (isvc,) = isvcs(load(bump(data, "std", "v2")), lock)
    assert isvc["spec"]["canary"][0]["trafficPercent"] == 10


def test_steady_example_stacks_render_with_their_locks(
    example_stack: ServingPlatformArgs, crd_schemas: CrdSchemas
) -> None:
    lock = read_lock(STACKS / f"{example_stack.stack.name}.lock.yaml", stack=example_stack.stack.name)
    assert lock is not None, "every example stack has a committed lock"
    records = state.effective_records(desired_models(example_stack), lock)
    assert all(r.rollout is None for r in records.values())
    assert schema_problems(build(example_stack, lock=lock).objects, example_stack, crd_schemas) == []


def test_steady_render_under_a_lock_only_names_the_stable_predictor() -> None:
    # The name, and the KEDA query that follows it to the pods KServe then names after it.
    data = stack_data(rollout=CANARY)
    data["monitoring"] = {"namespace": "observability"}
    std = next(m for m in data["models"] if m["name"] == "std")
    std["scaling"] = {"minReplicas": 1, "maxReplicas": 4, "metric": "rps", "target": 50}
    args = load(data)
    with_lock = build(args, lock=empty_lock("test")).objects
    queries = []
    for obj in with_lock:
        if obj["kind"] == "InferenceService" and "name" in obj["spec"]["predictor"]:
            predictor = obj["spec"]["predictor"]
            name = predictor.pop("name")
            for metric in predictor.get("autoScaling", {}).get("metrics", []):
                query = metric["external"]["metric"]["query"]
                queries.append(query)
                metric["external"]["metric"]["query"] = query.replace(
                    f'pod=~"{obj["metadata"]["name"]}-{name}-predictor-',
                    f'pod=~"{obj["metadata"]["name"]}-predictor-',
                )
    assert queries == [
        'sum(rate(request_predict_seconds_count{namespace="team",pod=~"std-v1-predictor-?'
        '[bcdfghjklmnpqrstvwxz2456789-]{5,}"}[1m]))'
    ]
    assert with_lock == build(args).objects
