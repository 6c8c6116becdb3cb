"""Shared Kubernetes helpers: object identity, standard labels, names, ordering and hardening.

Every ``objects()`` function returns plain dicts; these helpers give them one identity
(group/version, kind, namespace, name), one set of labels, one stable order and one
restricted security context, so the Pulumi program, the GitOps render and the preview all
agree on what an object is and every workload is hardened the same way.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, NamedTuple

Obj = dict[str, Any]
"""A Kubernetes object as plain data."""

MANAGED_BY = "modelplane"
LABEL_STACK = "modelplane.dev/stack"
LABEL_MODEL = "modelplane.dev/model"
LABEL_TENANT = "modelplane.dev/tenant"
LABEL_VERSION = "modelplane.dev/version"
LABEL_RUNTIME = "modelplane.dev/runtime"
LABEL_COMPONENT = "app.kubernetes.io/component"

Part = Literal[
    "control-plane",
    "tenant",
    "runtime",
    "model",
    "rollout",
    "modelmesh",
    "gpu-pool",
    "monitoring",
    "upstream",
    "gitops",
]
"""Which part of the platform owns an object: the value of its ``app.kubernetes.io/component`` label.

The Pulumi components register objects by it (``modelplane.resources.platform.COMPONENTS``).
"""

KIND_ORDER: tuple[str, ...] = (
    "Namespace",
    "CustomResourceDefinition",
    "PriorityClass",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "ConfigMap",
    "Secret",
    "GitRepository",
    "HelmRepository",
    "OCIRepository",
    "HelmRelease",
    "Kustomization",
    "Application",
    "Certificate",
    "Issuer",
    "ClusterIssuer",
    "Service",
    "StatefulSet",
    "Deployment",
    "CronJob",
    "PodDisruptionBudget",
    "NodePool",
    "ClusterStorageContainer",
    "GatewayClass",
    "Gateway",
    "KnativeServing",
    "ClusterServingRuntime",
    "ServingRuntime",
    "InferenceService",
    "HTTPRoute",
    "HorizontalPodAutoscaler",
    "ScaledObject",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
)
"""Apply order of kinds: what others depend on comes first. Unknown kinds sort last."""

_KIND_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}

CLUSTER_SCOPED: frozenset[str] = frozenset(
    {
        "Namespace",
        "CustomResourceDefinition",
        "PriorityClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterIssuer",
        "ClusterServingRuntime",
        "ClusterStorageContainer",
        "NodePool",
        "GatewayClass",
    }
)


_RESERVED_MODEL_LABELS: tuple[tuple[str, str], ...] = (
    ("modelplane.dev/", "modelplane's own (it tells models, versions and rollouts apart by them)"),
    ("app.kubernetes.io/managed-by", "modelplane's own"),
    ("app.kubernetes.io/part-of", "modelplane's own"),
    ("app.kubernetes.io/component", "modelplane's own (it tells which part owns an object)"),
    # KServe labels a component's pods with these, over the InferenceService's labels
    # (components/predictor.go:498-518, reconcilers/deployment/deployment_reconciler.go:146).
    ("serving.kserve.io/", "KServe's own"),
    ("internal.serving.kserve.io/", "KServe's own"),
    ("component", "KServe's own (the component of each pod)"),
    # pkg/constants KServiceEndpointLabel, InferenceServiceGenerationPodLabelKey: the routing reads them.
    ("endpoint", "KServe's own (the routing reads it)"),
    ("isvc.generation", "KServe's own (the generation of each pod)"),
    ("app", "KServe's own in Standard mode (isvc.<component>, its Service selects it)"),
    # Knative refuses these unless they name the object's owner (pkg/apis/serving/v1/
    # configuration_validation.go:63-67, route_validation.go:195-198 at knative-v1.21.1).
    ("serving.knative.dev/", "Knative's own"),
)
_RESERVED_NAMESPACE_LABELS: tuple[tuple[str, str], ...] = (
    *_RESERVED_MODEL_LABELS[:4],
    ("pod-security.kubernetes.io/", "modelplane enforces Pod Security 'restricted' with these"),
    ("kubernetes.io/metadata.name", "the API server sets it to the namespace's name"),
    ("modelmesh-enabled", "modelplane sets it on namespaces the mesh serves"),
)


def reserved_label(key: str, *, namespace: bool = False) -> str | None:
    """Whose a label key is when a stack may not set it (on a model's objects, or a namespace), or None.

    A prefix ending in ``/`` reserves every key under it; other entries are whole keys.
    """
    for reserved, whose in _RESERVED_NAMESPACE_LABELS if namespace else _RESERVED_MODEL_LABELS:
        if key == reserved or (reserved.endswith("/") and key.startswith(reserved)):
            return whose
    return None


KSERVE_MODE_NAMES: dict[str, str] = {"knative": "Knative", "standard": "Standard", "modelmesh": "ModelMesh"}
"""The value of ``serving.kserve.io/deploymentMode`` for each deployment mode."""


class ObjectKey(NamedTuple):
    """The identity of a Kubernetes object."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def key_of(obj: Obj) -> ObjectKey:
    """The identity of an object."""
    meta = obj.get("metadata", {})
    return ObjectKey(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def sort_key(obj: Obj) -> tuple[int, str, str, str]:
    """Order objects by (kind order, namespace, name, kind): the render and apply order."""
    key = key_of(obj)
    return (_KIND_RANK.get(key.kind, len(KIND_ORDER)), key.namespace, key.name, key.kind)


def sorted_objects(objects: list[Obj]) -> list[Obj]:
    """Objects in render order."""
    return sorted(objects, key=sort_key)


def type_token(obj: Obj) -> str:
    """The pulumi-kubernetes type token of an object, e.g. ``kubernetes:apps/v1:Deployment``."""
    api_version: str = obj["apiVersion"]
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{obj['kind']}"


def labels(stack: str, component: Part, **extra: str) -> dict[str, str]:
    """The standard labels of an object modelplane authors."""
    result = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "modelplane",
        LABEL_COMPONENT: component,
        LABEL_STACK: stack,
    }
    result.update({k: v for k, v in extra.items() if v})
    return dict(sorted(result.items()))


def dns_name(*parts: str, max_length: int = 63) -> str:
    """Join parts into a DNS-1123 label; too-long names keep their end and gain a hash."""
    name = "-".join(p.strip("-") for p in parts if p).lower()
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9].rstrip('-')}-{digest}"


def resource_name(obj: Obj) -> str:
    """The Pulumi resource name of an object: ``<kind>:<namespace>/<name>`` (``<kind>:<name>`` when cluster-scoped).

    Kubernetes names and namespaces never contain ``:`` or ``/``, so no two objects share a
    resource name. Resource names are part of URNs: changing this format replaces everything.
    """
    key = key_of(obj)
    where = f"{key.namespace}/" if key.namespace else ""
    return f"{key.kind.lower()}:{where}{key.name}"


def model_key(namespace: str, name: str) -> str:
    """The key of a model across a stack, its lock and its render: ``<namespace>/<name>``."""
    return f"{namespace}/{name}"


def side_name(model: str, candidate: str) -> str:
    """The name of a ModelMesh candidate's side InferenceService (and its ``vModelId``)."""
    return dns_name(model, candidate)


def restricted_security_context(
    *,
    run_as_user: int | None = None,
    run_as_group: int | None = None,
    read_only_root: bool | None = None,
    seccomp: bool = True,
) -> dict[str, Any]:
    """A container's securityContext under Pod Security "restricted".

    No privilege escalation, every capability dropped, not privileged, non-root. The user and
    group are set when the image needs them; ``read_only_root`` is left out when None (the
    container needs a writable root); ``seccomp`` False leaves the profile to the pod's context.
    """
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "runAsNonRoot": True,
    }
    if read_only_root is not None:
        context["readOnlyRootFilesystem"] = read_only_root
    if run_as_user is not None:
        context["runAsUser"] = run_as_user
    if run_as_group is not None:
        context["runAsGroup"] = run_as_group
    if seccomp:
        context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def restricted_pod_security_context(
    *, run_as_user: int | None = None, run_as_group: int | None = None, fs_group: int | None = None
) -> dict[str, Any]:
    """A pod's securityContext under Pod Security "restricted": non-root, seccomp RuntimeDefault."""
    context: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for key, value in (("runAsUser", run_as_user), ("runAsGroup", run_as_group), ("fsGroup", fs_group)):
        if value is not None:
            context[key] = value
    return context
