"""A model's rollout state compiled into the objects its deployment mode understands.

- **Knative**: the predictor is the candidate's spec and ``canaryTrafficPercent`` splits traffic
  with the last revision that reached 100% (Knative keeps it). Absent once promoted; ``0`` when
  rolled back (all traffic to that previous revision).
- **Standard** (KServe ≥ 0.20 ``spec.canary[]``): the stable predictor keeps its own spec and gets
  ``predictor.name`` = its version's name; the candidate is a canary entry with its own
  ``predictor.name`` and ``trafficPercent``, without autoscaling fields (canaries run fixed
  replicas). Promotion makes the stable predictor the candidate's (model and name, so KServe
  reuses the canary's Deployment) and removes the canary. A shadow phase is a canary at 0% (a
  dark launch with its own Deployment and Service) plus a Gateway API ``HTTPRoute`` that mirrors a
  share of requests to it.
- **ModelMesh**, which cannot split traffic: the candidate loads beside the stable model as a
  second InferenceService ``<model>-<candidate>``; at the switch the stable name points at the
  candidate's storage and the side object goes away.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from modelplane.kube import LABEL_MODEL, LABEL_VERSION, Obj, dns_name, labels, model_key, side_name
from modelplane.model import ModelArgs
from modelplane.rollout.lock import ModelRecord
from modelplane.rollout.state import candidate_share, mirror_percent
from modelplane.rollout.version import with_spec

AUTOSCALING_FIELDS: tuple[str, ...] = (
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "scaleMetricType",
    "autoScaling",
    "workerSpec",
)
"""Predictor fields a Standard-mode canary must not set (it runs fixed replicas)."""

ANNOTATION_CANDIDATE_OF = "modelplane.dev/candidate-of"
"""Marks a ModelMesh side InferenceService with the model it is a candidate of."""

MODEL_CONTAINER = "kserve-container"
"""The name KServe gives the model's container."""

SERVICE_PORT = 80
"""Port of the Service KServe creates for each Standard-mode predictor."""


class RenderModel(Protocol):
    """Renders one model's InferenceService (and its ServiceAccount) for the model's mode."""

    def __call__(
        self,
        model: ModelArgs,
        /,
        *,
        predictor_overrides: dict[str, Any] | None = None,
        canary: list[dict[str, Any]] | None = None,
    ) -> list[Obj]:
        """The model's objects, with rollout fields added to its predictor and spec."""
        ...


RenderRuntime = Callable[[ModelArgs, str], list[Obj]]
"""Renders the ServingRuntime of a ``custom`` model under a name (returns [] for catalog runtimes)."""


@dataclass(frozen=True)
class Routing:
    """Where Standard-mode inference traffic enters: what a shadow HTTPRoute attaches to."""

    stack: str
    gateway_name: str
    gateway_namespace: str
    domain: str


def predictor_service(model: str, name: str) -> str:
    """The Service KServe creates for a named Standard-mode predictor: ``<model>-<name>-predictor``."""
    return f"{model}-{name}-predictor"


def _isvc(objects: list[Obj]) -> Obj:
    return next(o for o in objects if o["kind"] == "InferenceService")


def _custom_runtime_name(model: ModelArgs) -> str:
    return dns_name(model.name, "runtime") if model.runtime == "custom" else ""


def model_objects(
    model: ModelArgs,
    record: ModelRecord,
    *,
    mode: str,
    render: RenderModel,
    custom_runtime: RenderRuntime,
    routing: Routing,
) -> list[Obj]:
    """Every object of one model under its rollout state.

    ``model`` is the stack's (the candidate during a rollout); the stable version's spec comes
    from ``record``.
    """
    if mode == "knative":
        return _knative(model, record, render, custom_runtime)
    if mode == "standard":
        return _standard(model, record, render, custom_runtime, routing)
    return _modelmesh(model, record, render, custom_runtime)


def _knative(model: ModelArgs, record: ModelRecord, render: RenderModel, runtime: RenderRuntime) -> list[Obj]:
    result = runtime(model, _custom_runtime_name(model))
    rollout = record.rollout
    if rollout is None:
        return result + render(model)
    # The predictor carries the candidate; Knative keeps the stable revision and routes the rest there.
    share = 0 if rollout.state == "rolled-back" else candidate_share(record)
    return result + render(model, predictor_overrides={"canaryTrafficPercent": share})


def _canary_predictor(candidate: ModelArgs, name: str, render: RenderModel) -> dict[str, Any]:
    predictor: dict[str, Any] = copy.deepcopy(_isvc(render(candidate))["spec"]["predictor"])
    for field in AUTOSCALING_FIELDS:
        predictor.pop(field, None)
    # The CRD requires the container name in a canary's model (the stable's is defaulted).
    predictor["model"] = {"name": MODEL_CONTAINER, **predictor["model"]}
    return {"name": name, **predictor}


def _standard(
    model: ModelArgs, record: ModelRecord, render: RenderModel, runtime: RenderRuntime, routing: Routing
) -> list[Obj]:
    rollout = record.rollout
    stable_name = record.stable.name
    if rollout is None:
        return runtime(model, _custom_runtime_name(model)) + render(
            model, predictor_overrides={"name": stable_name}
        )
    stable = with_spec(model, record.stable.spec)
    result = runtime(stable, _custom_runtime_name(stable))
    if rollout.state == "rolled-back":
        return result + render(stable, predictor_overrides={"name": stable_name})
    candidate_name = rollout.candidate.name
    canary_predictor = _canary_predictor(model, candidate_name, render)
    if model.runtime == "custom" and model.image != stable.image:
        # The custom ServingRuntime carries the image: the candidate needs its own, or the
        # stable pods would roll to the candidate's image too.
        own = dns_name(model.name, candidate_name, "runtime")
        result += runtime(model, own)
        canary_predictor["model"] = {**canary_predictor["model"], "runtime": own}
    mirror = mirror_percent(record)
    entry: dict[str, Any] = {"predictor": canary_predictor, "trafficPercent": candidate_share(record)}
    if mirror:
        # A 0% canary would get ceil(min x 0 / 100) = 0 replicas; mirrored requests need pods.
        stable_min = model.scaling.min_replicas
        canary_predictor["minReplicas"] = min(stable_min, max(1, -(-stable_min * mirror // 100)))
    result += render(stable, predictor_overrides={"name": stable_name}, canary=[entry])
    if mirror:
        result.append(
            shadow_route(model.name, _namespace(result), stable_name, candidate_name, mirror, routing)
        )
    return result


def _namespace(objects: list[Obj]) -> str:
    namespace: str = _isvc(objects)["metadata"]["namespace"]
    return namespace


def shadow_route(
    model: str, namespace: str, stable_name: str, candidate_name: str, percent: int, routing: Routing
) -> Obj:
    """A Gateway API HTTPRoute: the stable predictor serves, the candidate gets mirrored requests.

    The gateway sends ``percent`` of requests to the candidate as well and drops its responses.
    It matches the model's inference paths (``/v1/models/<model>``, ``/v2/models/<model>``) on the
    model's host, which are longer prefixes than the ``/`` of the route KServe creates, so Gateway
    API precedence gives these requests to this route while it exists.
    """
    paths = [f"/v1/models/{model}", f"/v2/models/{model}"]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": dns_name(model, "shadow"),
            "namespace": namespace,
            "labels": labels(routing.stack, "rollout", **{LABEL_MODEL: model}),
        },
        "spec": {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": routing.gateway_name,
                    "namespace": routing.gateway_namespace,
                }
            ],
            "hostnames": [f"{model}-{namespace}.{routing.domain}"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": p}} for p in paths],
                    "filters": [
                        {
                            "type": "RequestMirror",
                            "requestMirror": {
                                "backendRef": {
                                    "name": predictor_service(model, candidate_name),
                                    "port": SERVICE_PORT,
                                },
                                "percent": percent,
                            },
                        }
                    ],
                    "backendRefs": [{"name": predictor_service(model, stable_name), "port": SERVICE_PORT}],
                }
            ],
        },
    }


def _modelmesh(
    model: ModelArgs, record: ModelRecord, render: RenderModel, runtime: RenderRuntime
) -> list[Obj]:
    rollout = record.rollout
    if rollout is None:
        return runtime(model, _custom_runtime_name(model)) + render(model)
    stable = with_spec(model, record.stable.spec)
    result = runtime(stable, _custom_runtime_name(stable)) + render(stable)
    if rollout.state == "rolled-back":
        return result
    side = model.model_copy(update={"name": side_name(model.name, rollout.candidate.name)})
    side_objects = runtime(side, _custom_runtime_name(side)) + render(side)
    isvc = _isvc(side_objects)
    meta = isvc["metadata"]
    meta["labels"] = dict(sorted((meta["labels"] | {LABEL_MODEL: model.name}).items()))
    meta["annotations"] = dict(sorted((meta["annotations"] | {ANNOTATION_CANDIDATE_OF: model.name}).items()))
    return result + side_objects


# --- reading traffic back from objects ----------------------------------------------------


def rendered_traffic(objects: list[Obj], stable_versions: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per model (``<namespace>/<name>``), each version's live traffic share as rendered.

    ``stable_versions`` names the version Knative keeps as its previous revision (it is not in
    the object).
    """
    result: dict[str, dict[str, int]] = {}
    for obj in objects:
        if obj["kind"] != "InferenceService":
            continue
        meta = obj["metadata"]
        if ANNOTATION_CANDIDATE_OF in meta.get("annotations", {}):
            continue
        key = model_key(meta["namespace"], meta["name"])
        version = meta["labels"][LABEL_VERSION]
        predictor = obj["spec"]["predictor"]
        split: dict[str, int] = {}
        if "canaryTrafficPercent" in predictor:
            share = int(predictor["canaryTrafficPercent"])
            split[stable_versions.get(key, "(previous revision)")] = 100 - share
            if share:
                split[version] = split.get(version, 0) + share
        else:
            canaries = obj["spec"].get("canary", [])
            taken = sum(int(c["trafficPercent"]) for c in canaries)
            split[version] = 100 - taken
            for canary in canaries:
                if canary["trafficPercent"]:
                    cand = canary["predictor"]["labels"][LABEL_VERSION]
                    split[cand] = split.get(cand, 0) + int(canary["trafficPercent"])
        result[key] = {v: p for v, p in split.items() if p}
    return result


def rendered_mirrors(objects: list[Obj]) -> dict[str, int]:
    """Per model, the share of requests a shadow HTTPRoute mirrors to its candidate."""
    result: dict[str, int] = {}
    for obj in objects:
        if obj["kind"] != "HTTPRoute" or LABEL_MODEL not in obj["metadata"].get("labels", {}):
            continue
        for rule in obj["spec"]["rules"]:
            for f in rule.get("filters", []):
                if f["type"] == "RequestMirror":
                    key = model_key(obj["metadata"]["namespace"], obj["metadata"]["labels"][LABEL_MODEL])
                    result[key] = int(f["requestMirror"].get("percent", 100))
    return result
