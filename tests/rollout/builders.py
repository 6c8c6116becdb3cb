"""Small stacks for rollout tests: one model per deployment mode, edited through plain data."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from modelplane.model import ModelArgs
from modelplane.rollout.diff import Desired, DesiredModel
from modelplane.rollout.policy import RolloutPolicy
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import parse_stack

T0 = "2026-03-01T10:00:00Z"
T1 = "2026-03-01T10:20:00Z"
T2 = "2026-03-01T10:40:00Z"
T3 = "2026-03-01T11:00:00Z"
T4 = "2026-03-01T11:20:00Z"

STACK = "test"
"""The name of the stacks built here."""

KEYS = {"knative": "team/kn", "standard": "team/std", "modelmesh": "team/mesh"}
NAMES = {"knative": "kn", "standard": "std", "modelmesh": "mesh"}


def model_data(name: str, mode: str, version: str = "v1") -> dict[str, Any]:
    runtime = "mlserver" if mode == "modelmesh" else "sklearn"
    data: dict[str, Any] = {
        "name": name,
        "tenant": "team",
        "runtime": runtime,
        "format": {"name": "sklearn", "version": "1"},
        "storage": {"uri": f"s3://models/{name}/{version}"},
        "version": version,
        "deploymentMode": mode,
    }
    if mode != "modelmesh":
        data["scaling"] = {"minReplicas": 2, "maxReplicas": 6}
    return data


def stack_data(*modes: str, rollout: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stack with one model (named after its mode) per mode given."""
    modes = modes or ("knative", "standard", "modelmesh")
    return {
        "stack": {"name": STACK, "tier": "staging"},
        "controlPlane": {"ingress": {"domain": "models.example.com"}},
        "modelMesh": {"enabled": "modelmesh" in modes},
        "tenants": [{"name": "team"}],
        "rollout": rollout or {"strategy": "canary", "steps": [10, 25, 50, 100], "stepInterval": "10m"},
        "models": [model_data(NAMES[mode], mode) for mode in modes],
    }


def load(data: dict[str, Any]) -> ServingPlatformArgs:
    """The whole stack, parsed and checked as a stack file would be."""
    return parse_stack(copy.deepcopy(data), "test.yaml")


def desired(data: dict[str, Any]) -> Desired:
    """The stack's models as the rollout engine sees them, built directly: no stack parse, no catalog."""
    policy = RolloutPolicy.model_validate(data.get("rollout", {}))
    namespaces = {t["name"]: t.get("namespace", t["name"]) for t in data["tenants"]}
    default_mode = data.get("controlPlane", {}).get("defaultDeploymentMode", "standard")
    result: Desired = {}
    for item in data["models"]:
        model = ModelArgs.model_validate(copy.deepcopy(item))
        wanted = DesiredModel(
            model,
            namespaces[model.tenant],
            model.deployment_mode or default_mode,
            model.rollout.apply(policy) if model.rollout else policy,
        )
        result[wanted.key] = wanted
    return result


def edit(data: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    """A copy of the stack data with one model's fields replaced (``storage_uri`` sets storage.uri)."""
    result = copy.deepcopy(data)
    model = next(m for m in result["models"] if m["name"] == name)
    for key, value in changes.items():
        if key == "storage_uri":
            model["storage"]["uri"] = value
        else:
            model[key] = value
    return result


def bump(data: dict[str, Any], name: str, version: str) -> dict[str, Any]:
    """A new version of a model: its label and its storage change together."""
    return edit(data, name, version=version, storage_uri=f"s3://models/{name}/{version}")


def write_stack(directory: Path, data: dict[str, Any], name: str = "test.yaml") -> Path:
    """Write stack data as a YAML file and return its path."""
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
