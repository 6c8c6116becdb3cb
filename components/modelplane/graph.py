"""Inference graphs: several models behind one endpoint, chained, fanned out, split or switched.

A graph is KServe's InferenceGraph: named nodes, each a router (``Sequence``, ``Ensemble``,
``Splitter``, ``Switch``) over steps, and each step calls a model of the stack by name, another
node, or a URL. The stack names models, not URLs, so a graph cannot point at a model that is not
there, and its member models roll out as usual (a preview shows a step whose model is in a
canary). ``problems`` checks what KServe's webhook checks (a root node, one target per step,
unique step names, splitter weights that sum to 100: v1alpha1 inference_graph_validation.go) and
what it does not: nodes that do not exist, cycles, nodes the root never reaches, weights on a
router that ignores them. ``objects`` renders the InferenceGraph for its mode.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.errors import ProblemError
from modelplane.kube import KSERVE_MODE_NAMES, LABEL_TENANT, Obj, labels
from modelplane.placement import PlacementArgs
from modelplane.types import DeploymentMode, DnsLabel, DnsSubdomain, FieldPath, ModelName, Quantity

RouterType = Literal["Sequence", "Ensemble", "Splitter", "Switch"]
ROOT = "root"
"""The node every request enters (v1alpha1 GraphRootNodeName)."""

LABEL_GRAPH = "modelplane.dev/graph"


class GraphStep(StrictModel):
    """One step of a router: what it calls, and how."""

    name: DnsLabel | None = Field(default=None, description="Step name, unique in its node. Default: none.")
    model: ModelName | None = Field(default=None, description="A model of the stack, in the graph's tenant.")
    node: DnsLabel | None = Field(default=None, description="Another node of the graph.")
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", description="Any HTTP endpoint.")
    weight: int | None = Field(default=None, ge=0, le=100, description="Share of requests, for a Splitter.")
    condition: str | None = Field(
        default=None, min_length=1, description="GJSON condition on the request, for a Switch or Sequence."
    )
    data: Literal["$request", "$response"] | None = Field(
        default=None, description="What a Sequence step receives. Default: the previous step's response."
    )
    dependency: Literal["Soft", "Hard"] | None = Field(
        default=None, description="Whether the graph fails when this step fails (Hard). Default: Soft."
    )

    @model_validator(mode="after")
    def _one_target(self) -> GraphStep:
        targets = [t for t in (self.model, self.node, self.url) if t is not None]
        if len(targets) != 1:
            raise ProblemError([Problem((), f"give exactly one of model, node, url (got {len(targets)})")])
        return self

    @property
    def target(self) -> str:
        """What the step calls, as the preview shows it."""
        return (
            f"model {self.model}" if self.model else f"node {self.node}" if self.node else f"url {self.url}"
        )


class GraphNode(StrictModel):
    """A router and its steps."""

    router_type: RouterType = Field(description="Sequence, Ensemble, Splitter or Switch.")
    steps: list[GraphStep] = Field(min_length=1, description="The steps, in order.")


class GraphScaling(StrictModel):
    """How the graph's router scales."""

    min_replicas: int = Field(default=1, ge=0, le=1000, description="Fewest router replicas. Default: 1.")
    max_replicas: int = Field(default=3, ge=1, le=1000, description="Most router replicas. Default: 3.")
    metric: Literal["concurrency", "rps", "cpu", "memory"] | None = Field(
        default=None, description="What the router scales on. Default: KServe's for the mode."
    )
    target: int | None = Field(default=None, ge=1, description="Target per replica.")


class RouterTimeouts(StrictModel):
    """The router's own HTTP timeouts, in seconds."""

    server_read: int | None = Field(default=None, ge=1, description="Reading a request.")
    server_write: int | None = Field(default=None, ge=1, description="Writing a response.")
    server_idle: int | None = Field(default=None, ge=1, description="Idle keep-alive.")
    service_client: int | None = Field(default=None, ge=1, description="A call to a step.")


class GraphArgs(PlacementArgs):
    """An InferenceGraph: models behind one endpoint."""

    name: ModelName = Field(description="Graph name; its endpoint's name.")
    tenant: DnsLabel = Field(description="Owning tenant; the graph lives in its namespace, with its models.")
    deployment_mode: Literal["knative", "standard"] | None = Field(
        default=None, description="knative | standard. Default: controlPlane.defaultDeploymentMode."
    )
    nodes: dict[DnsLabel, GraphNode] = Field(description="The nodes by name; requests enter at `root`.")
    scaling: GraphScaling = Field(
        default_factory=GraphScaling, description="Router replicas and autoscaling."
    )
    timeout: int | None = Field(
        default=None, ge=1, description="Seconds a request through the graph may take."
    )
    router_timeouts: RouterTimeouts | None = Field(default=None, description="The router's own timeouts.")
    cpu: Quantity = Field(default="100m", description="Router CPU request. Default: 100m.")
    memory: Quantity = Field(default="128Mi", description="Router memory request and limit. Default: 128Mi.")
    cpu_limit: Quantity = Field(default="1", description="Router CPU limit. Default: 1.")
    service_account_name: DnsSubdomain | None = Field(
        default=None, description="The router's ServiceAccount."
    )

    @model_validator(mode="after")
    def _shape(self) -> GraphArgs:
        if self.scaling.min_replicas > self.scaling.max_replicas:
            raise ProblemError(
                [
                    Problem(
                        ("scaling", "minReplicas"),
                        f"is greater than maxReplicas {self.scaling.max_replicas}",
                        self.scaling.min_replicas,
                    )
                ]
            )
        found = structure_problems(self)
        if found:
            raise ProblemError(found)
        return self

    def model_steps(self) -> list[tuple[str, int, GraphStep]]:
        """(node, index, step) of every step that calls a model, in node order."""
        return [
            (n, i, s) for n, node in sorted(self.nodes.items()) for i, s in enumerate(node.steps) if s.model
        ]


def _cycles(graph: GraphArgs) -> list[Problem]:
    """A node that reaches itself through node steps, once per cycle (at the step that closes it)."""
    found: list[Problem] = []
    state: dict[str, str] = {}

    def visit(name: str) -> None:
        state[name] = "open"
        for i, step in enumerate(graph.nodes[name].steps):
            target = step.node
            if target is None or target not in graph.nodes:
                continue
            if state.get(target) == "open":
                found.append(
                    Problem(
                        ("nodes", name, "steps", i, "node"), f"closes a cycle back to node {target!r}", target
                    )
                )
            elif target not in state:
                visit(target)
        state[name] = "done"

    for name in sorted(graph.nodes):
        if name not in state:
            visit(name)
    return found


def _reachable(graph: GraphArgs) -> set[str]:
    seen: set[str] = set()
    pending = [ROOT] if ROOT in graph.nodes else []
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending += [s.node for s in graph.nodes[name].steps if s.node in graph.nodes]
    return seen


def structure_problems(graph: GraphArgs) -> list[Problem]:
    """What is wrong with a graph's shape on its own, each at its path under the graph."""
    found: list[Problem] = []
    if ROOT not in graph.nodes:
        found.append(
            Problem(
                ("nodes",),
                f"needs a node named root, where requests enter (nodes: {', '.join(sorted(graph.nodes))})",
            )
        )
    for name, node in sorted(graph.nodes.items()):
        path: FieldPath = ("nodes", name)
        names: dict[str, int] = {}
        for i, step in enumerate(node.steps):
            if step.name is not None:
                if step.name in names:
                    found.append(
                        Problem(
                            (*path, "steps", i, "name"),
                            f"duplicate step name (also steps[{names[step.name]}])",
                            step.name,
                        )
                    )
                names.setdefault(step.name, i)
            if step.node is not None and step.node not in graph.nodes:
                known = ", ".join(sorted(graph.nodes))
                found.append(
                    Problem((*path, "steps", i, "node"), f"unknown node (nodes: {known})", step.node)
                )
            if step.weight is not None and node.router_type != "Splitter":
                found.append(
                    Problem(
                        (*path, "steps", i, "weight"),
                        f"only a Splitter splits by weight; a {node.router_type} ignores it",
                        step.weight,
                    )
                )
            if step.condition is not None and node.router_type not in ("Switch", "Sequence"):
                found.append(
                    Problem(
                        (*path, "steps", i, "condition"),
                        f"only a Switch or Sequence reads conditions; a {node.router_type} ignores it",
                        step.condition,
                    )
                )
            if step.data is not None and node.router_type != "Sequence":
                found.append(
                    Problem(
                        (*path, "steps", i, "data"), "only a Sequence passes data between steps", step.data
                    )
                )
        if node.router_type == "Splitter":
            missing = [i for i, s in enumerate(node.steps) if s.weight is None]
            for i in missing:
                found.append(
                    Problem((*path, "steps", i, "weight"), "a Splitter needs a weight on every step")
                )
            total = sum(s.weight or 0 for s in node.steps)
            if not missing and total != 100:
                found.append(
                    Problem(
                        (*path, "steps"), f"Splitter weights must sum to 100 (they sum to {total})", total
                    )
                )
        if node.router_type == "Switch" and all(s.condition is None for s in node.steps):
            found.append(Problem((*path, "steps"), "a Switch routes by condition; give its steps conditions"))
    found += _cycles(graph)
    if ROOT in graph.nodes:
        for name in sorted(set(graph.nodes) - _reachable(graph)):
            found.append(
                Problem(("nodes", name), "is never reached from root; call it from a step or remove it", name)
            )
    return found


def model_reference_problems(graph: GraphArgs, models: set[str], *, path: FieldPath) -> list[Problem]:
    """Steps that call a model the graph's tenant does not serve (``models``: its model names)."""
    known = ", ".join(sorted(models)) or "none"
    return [
        Problem(
            (*path, "nodes", node, "steps", i, "model"),
            f"no model of that name in tenant {graph.tenant!r} (models: {known})",
            step.model,
        )
        for node, i, step in graph.model_steps()
        if step.model not in models
    ]


def _step(step: GraphStep) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if step.name is not None:
        data["name"] = step.name
    if step.model is not None:
        data["serviceName"] = step.model
    if step.node is not None:
        data["nodeName"] = step.node
    if step.url is not None:
        data["serviceUrl"] = step.url
    for key in ("weight", "condition", "data", "dependency"):
        value = getattr(step, key)
        if value is not None:
            data[key] = value
    return data


def objects(graph: GraphArgs, *, stack: str, namespace: str, mode: DeploymentMode) -> list[Obj]:
    """The graph's InferenceGraph, for its deployment mode."""
    spec: dict[str, Any] = {
        "nodes": {
            name: {"routerType": node.router_type, "steps": [_step(s) for s in node.steps]}
            for name, node in sorted(graph.nodes.items())
        },
        "minReplicas": graph.scaling.min_replicas,
        "maxReplicas": graph.scaling.max_replicas,
        "resources": {
            "requests": {"cpu": graph.cpu, "memory": graph.memory},
            "limits": {"cpu": graph.cpu_limit, "memory": graph.memory},
        },
        **graph.placement_manifest(),
    }
    if graph.scaling.metric is not None:
        spec["scaleMetric"] = graph.scaling.metric
    if graph.scaling.target is not None:
        spec["scaleTarget"] = graph.scaling.target
    if graph.timeout is not None:
        spec["timeout"] = graph.timeout
    if graph.router_timeouts is not None:
        spec["routerTimeouts"] = graph.router_timeouts.model_dump(by_alias=True, exclude_none=True)
    if graph.service_account_name is not None:
        spec["serviceAccountName"] = graph.service_account_name
    return [
        {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "InferenceGraph",
            "metadata": {
                "name": graph.name,
                "namespace": namespace,
                "labels": labels(stack, "model", **{LABEL_GRAPH: graph.name, LABEL_TENANT: graph.tenant}),
                "annotations": {"serving.kserve.io/deploymentMode": KSERVE_MODE_NAMES[mode]},
            },
            "spec": spec,
        }
    ]


STANDARD_MODE_REFUSED = (
    "a Standard-mode graph router cannot run in a tenant namespace: KServe v0.20.0 builds its pod without a "
    "seccomp profile (pkg/controller/v1alpha1/inferencegraph/raw_ig.go:66-76), which Pod Security "
    '"restricted" rejects; use deploymentMode knative, where Knative\'s secure-pod-defaults (which '
    "modelplane enables) gives it RuntimeDefault"
)

KNATIVE_FEATURES = frozenset({"secure-pod-defaults"})
"""Knative ``config-features`` a Knative-mode graph needs: its router container sets no seccomp profile
(knative_reconciler.go:221-230), which Knative then defaults to RuntimeDefault
(serving pkg/apis/serving/v1/revision_defaults.go:214-236)."""


def mode_problems(graph: GraphArgs, mode: str, *, path: FieldPath) -> list[Problem]:
    """What the graph's mode cannot carry: its router in Standard mode, a metric the mode does not scale on."""
    if mode == "standard":
        return [Problem((*path, "deploymentMode"), STANDARD_MODE_REFUSED, mode)]
    return scaling_problems(graph, mode, path=path)


def scaling_problems(graph: GraphArgs, mode: str, *, path: FieldPath) -> list[Problem]:
    """A router metric its mode cannot scale on (Knative: concurrency and rps; Standard: cpu and memory)."""
    metric = graph.scaling.metric
    allowed = ("concurrency", "rps") if mode == "knative" else ("cpu", "memory")
    if metric is not None and metric not in allowed:
        return [
            Problem(
                (*path, "scaling", "metric"),
                f"a graph router in {mode} mode scales on {' or '.join(allowed)}; use one of those",
                metric,
            )
        ]
    if mode == "standard" and graph.scaling.min_replicas == 0:
        return [
            Problem((*path, "scaling", "minReplicas"), "a Standard-mode router keeps at least 1 replica", 0)
        ]
    return []
