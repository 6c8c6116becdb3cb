"""Pod and component settings a stack adds to a component, and what each deployment mode accepts.

Beside the container (``modelplane.container``) KServe users set a component's pod metadata,
pull secrets, service account, placement and KServe's component knobs (timeout,
containerConcurrency, deploymentStrategy, logger, batcher). These models carry them, refuse
labels and annotations modelplane or KServe owns (naming the typed field to set instead), and
``mode_problems`` says which deployment mode can carry each setting, citing the upstream rule,
so a setting a mode would drop or refuse is an error in the stack, not a surprise in the
cluster; ``knative_features`` names the Knative ``config-features`` flags a Knative-mode
component needs.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modelplane import kube
from modelplane.base import Problem, StrictModel
from modelplane.container import ContainerSettings
from modelplane.errors import ProblemError
from modelplane.placement import PlacementArgs
from modelplane.types import DnsSubdomain, FieldPath, LabelKey, LabelValue

RESERVED_ANNOTATIONS: dict[str, str] = {
    "serving.kserve.io/deploymentMode": "set models[].deploymentMode",
    "serving.kserve.io/autoscalerClass": "set models[].scaling (metric and target)",
    "serving.kserve.io/secretKey": "set storage.secretName",
    "storage.kserve.io/readonly": "set storage.readOnly",
    "serving.kserve.io/server-type": "it belongs to the runtime",
    "serving.knative.dev/progress-deadline": "set models[].scaling.progressDeadline",
}
"""Annotations modelplane derives from typed fields, with the field to set instead."""

RESERVED_ANNOTATION_PREFIXES: dict[str, str] = {
    # An exact key: KServe's LocalModelCache node groups, which a stack cannot use (README).
    "serving.kserve.io/nodegroup": "local model caches are not expressible (README: what a stack cannot express)",
    "modelplane.dev/": "modelplane writes these itself",
    "internal.serving.kserve.io/": "KServe writes these itself (set logger and batcher instead)",
    "autoscaling.knative.dev/": "set models[].scaling (KServe drops min-scale and max-scale annotations: "
    "pkg/constants ServiceAnnotationDisallowedList)",
}


def reserved_label(key: str) -> str | None:
    """Why a label key is reserved on a model's objects or pods, or None when a stack may set it."""
    whose = kube.reserved_label(key)
    return None if whose is None else f"is a reserved label key ({whose}); choose another key"


def reserved_annotation(key: str) -> str | None:
    """Why an annotation key is reserved (with the field to set instead), or None."""
    if key in RESERVED_ANNOTATIONS:
        return f"is an annotation modelplane derives; {RESERVED_ANNOTATIONS[key]} instead"
    for prefix, why in RESERVED_ANNOTATION_PREFIXES.items():
        if key.startswith(prefix):
            return f"is reserved: {why}"
    return None


def metadata_problems(
    labels: dict[str, str], annotations: dict[str, str], *, pod: bool = False
) -> list[Problem]:
    """Reserved keys among labels and annotations, at ``labels[key]`` and ``annotations[key]``.

    ``pod`` marks pod-level metadata, where Knative's visibility label means nothing.
    """
    problems = [Problem(("labels", k), why, k) for k in labels if (why := reserved_label(k))]
    if pod and "networking.knative.dev/visibility" in labels:
        problems.append(
            Problem(
                ("labels", "networking.knative.dev/visibility"),
                "is a Knative Service label, not a pod label (KServe drops it from revisions: "
                "pkg/constants RevisionTemplateLabelDisallowedList); set it in models[].labels",
                "networking.knative.dev/visibility",
            )
        )
    problems += [Problem(("annotations", k), why, k) for k in annotations if (why := reserved_annotation(k))]
    return problems


class RollingUpdate(StrictModel):
    """How many pods a rolling update may add or take away at once."""

    max_surge: int | str | None = Field(
        default=None, description="Extra pods (number or percent). Default: 25%."
    )
    max_unavailable: int | str | None = Field(
        default=None, description="Pods that may be down (number or percent). Default: 25%."
    )

    @field_validator("max_surge", "max_unavailable")
    @classmethod
    def _count_or_percent(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 0:
            raise ValueError("must not be negative")
        if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,3}%", value):
            raise ValueError("must be a whole number or a percentage such as 25%")
        return value


class DeploymentStrategy(StrictModel):
    """How a Standard-mode component's Deployment replaces its pods (``apps/v1`` DeploymentStrategy)."""

    type: Literal["RollingUpdate", "Recreate"] = Field(default="RollingUpdate", description="Strategy.")
    rolling_update: RollingUpdate | None = Field(default=None, description="Rolling update bounds.")

    @model_validator(mode="after")
    def _as_the_api_server(self) -> DeploymentStrategy:
        # k8s.io/kubernetes pkg/apis/apps/validation ValidateDeploymentStrategy / ValidateRollingUpdateDeployment.
        ru = self.rolling_update
        if self.type == "Recreate" and ru is not None:
            raise ProblemError([Problem(("rollingUpdate",), "may not be set with type Recreate")])
        if ru is not None and ru.max_surge in (0, "0%") and ru.max_unavailable in (0, "0%"):
            raise ProblemError(
                [
                    Problem(
                        ("rollingUpdate",),
                        "maxSurge and maxUnavailable cannot both be 0; the update could not progress",
                    )
                ]
            )
        return self


class Logger(StrictModel):
    """KServe's payload logger: requests and/or responses sent as CloudEvents to a sink."""

    url: str = Field(pattern=r"^https?://\S+$", description="Where the events go (an http(s) URL).")
    mode: Literal["all", "request", "response"] = Field(
        default="all", description="What is logged. Default: all."
    )
    metadata_headers: list[str] = Field(
        default_factory=list, description="Request headers copied into each event. Default: none."
    )
    metadata_annotations: list[str] = Field(
        default_factory=list,
        description="InferenceService annotations copied into each event. Default: none.",
    )

    def manifest(self) -> dict[str, Any]:
        """KServe's ``logger`` spec."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_defaults=True)
        return {"mode": self.mode, **data}


class Batcher(StrictModel):
    """KServe's request batcher: requests collected into one batch for the server."""

    max_batch_size: int | None = Field(
        default=None, ge=1, description="Requests per batch. Default: KServe's 32."
    )
    max_latency: int | None = Field(
        default=None, ge=1, description="Longest wait for a batch to fill, in ms. Default: KServe's 5000."
    )
    timeout: int | None = Field(
        default=None, ge=1, description="Batch timeout in seconds. Default: KServe's 60."
    )

    def manifest(self) -> dict[str, Any]:
        """KServe's ``batcher`` spec."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True)
        return data


class PodSettings(PlacementArgs):
    """What a component's pods get: pull secrets, service account, placement, metadata, knobs.

    A mixin: component settings inherit these fields.
    """

    image_pull_secrets: list[DnsSubdomain] = Field(
        default_factory=list, description="Secrets for pulling private images, by name. Default: none."
    )
    service_account_name: DnsSubdomain | None = Field(
        default=None,
        description="ServiceAccount of the pods. Default: the storage one, or the namespace's default.",
    )
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Pod labels. Default: none.")
    annotations: dict[LabelKey, str] = Field(
        default_factory=dict, description="Pod annotations (sidecar injection, scraping, ...). Default: none."
    )
    timeout: int | None = Field(
        default=None,
        ge=1,
        description="Seconds a request may take (Knative: the revision timeout, at most 600; Standard: the "
        "HTTPRoute timeout). Default: Knative's 300, or none.",
    )
    container_concurrency: int | None = Field(
        default=None, ge=0, le=1000, description="Hard limit of requests per pod (Knative only; 0 = none)."
    )
    deployment_strategy: DeploymentStrategy | None = Field(
        default=None,
        description="How pods are replaced (Standard mode only). Default: Kubernetes' rolling update.",
    )
    logger: Logger | None = Field(default=None, description="Payload logging. Default: none.")
    batcher: Batcher | None = Field(default=None, description="Request batching. Default: none.")

    @model_validator(mode="after")
    def _reserved_metadata(self) -> PodSettings:
        problems = metadata_problems(dict(self.labels), dict(self.annotations), pod=True)
        if problems:
            raise ProblemError(problems)
        return self

    def pod_set(self) -> list[str]:
        """The pod and component fields set, as the file spells them."""
        fields = {
            "imagePullSecrets": bool(self.image_pull_secrets),
            "serviceAccountName": self.service_account_name is not None,
            "labels": bool(self.labels),
            "annotations": bool(self.annotations),
            "timeout": self.timeout is not None,
            "containerConcurrency": self.container_concurrency is not None,
            "deploymentStrategy": self.deployment_strategy is not None,
            "logger": self.logger is not None,
            "batcher": self.batcher is not None,
        }
        return [*(name for name, present in fields.items() if present), *self.placement_set()]

    def pod_fields(self) -> dict[str, Any]:
        """The component fields these settings set (pod spec and KServe's component extension)."""
        result: dict[str, Any] = self.placement_manifest()
        if self.image_pull_secrets:
            result["imagePullSecrets"] = [{"name": n} for n in self.image_pull_secrets]
        if self.service_account_name is not None:
            result["serviceAccountName"] = self.service_account_name
        if self.labels:
            result["labels"] = dict(sorted(self.labels.items()))
        if self.annotations:
            result["annotations"] = dict(sorted(self.annotations.items()))
        if self.timeout is not None:
            result["timeout"] = self.timeout
        if self.container_concurrency is not None:
            result["containerConcurrency"] = self.container_concurrency
        if self.deployment_strategy is not None:
            result["deploymentStrategy"] = self.deployment_strategy.model_dump(
                by_alias=True, exclude_none=True
            )
        if self.logger is not None:
            result["logger"] = self.logger.manifest()
        if self.batcher is not None:
            result["batcher"] = self.batcher.manifest()
        return result


class ComponentSettings(ContainerSettings, PodSettings):
    """Container and pod settings of one InferenceService component."""


KNATIVE_MAX_TIMEOUT_SECONDS = 600
"""Knative's default ``max-revision-timeout-seconds`` (serving config/core/configmaps/defaults.yaml)."""


def mode_problems(settings: ComponentSettings, mode: str, *, path: FieldPath) -> list[Problem]:
    """Settings the component's deployment mode refuses or would drop, each with the rule and the way out.

    ``path`` is where the settings sit in the stack file. ModelMesh predictors are checked by the
    model (a mesh model has no pod of its own); this covers Knative and Standard components.
    """
    found: list[Problem] = []
    if mode == "knative":
        if settings.deployment_strategy is not None:
            found.append(
                Problem(
                    (*path, "deploymentStrategy"),
                    "is only supported in standard mode (KServe's webhook refuses it for Knative: "
                    "inference_service_validation.go:645-648); Knative rolls revisions itself; remove it, or use "
                    "deploymentMode standard",
                    settings.deployment_strategy.type,
                )
            )
        if len(settings.ports) > 1:
            found.append(
                Problem(
                    (*path, "ports"),
                    "Knative serves exactly one port per revision (knative serving pkg/apis/serving/"
                    "k8s_validation.go validateContainersPorts); keep one, or use deploymentMode standard",
                    len(settings.ports),
                )
            )
        if settings.timeout is not None and settings.timeout > KNATIVE_MAX_TIMEOUT_SECONDS:
            found.append(
                Problem(
                    (*path, "timeout"),
                    f"exceeds Knative's max-revision-timeout-seconds ({KNATIVE_MAX_TIMEOUT_SECONDS}); lower it, "
                    "or use deploymentMode standard",
                    settings.timeout,
                )
            )
    elif mode == "standard" and settings.container_concurrency is not None:
        found.append(
            Problem(
                (*path, "containerConcurrency"),
                "is a Knative hard limit enforced by the queue-proxy; KServe's Standard mode ignores it "
                "(only reconcilers/knative/ksvc_reconciler.go:213 reads it); remove it, or use deploymentMode knative",
                settings.container_concurrency,
            )
        )
    return found


def knative_features(settings: ComponentSettings) -> set[str]:
    """The Knative ``config-features`` flags a Knative-mode component with these settings needs.

    Knative refuses these pod-spec fields unless their flag is enabled (knative serving
    pkg/apis/config/features.go defaultFeaturesConfig: all of them ``Disabled``).
    """
    flags: set[str] = set()
    if settings.node_selector:
        flags.add("kubernetes.podspec-nodeselector")
    if settings.tolerations:
        flags.add("kubernetes.podspec-tolerations")
    if settings.affinity is not None:
        flags.add("kubernetes.podspec-affinity")
    if settings.priority_class_name is not None:
        flags.add("kubernetes.podspec-priorityclassname")
    if any(v.field_ref is not None for v in settings.env):
        flags.add("kubernetes.podspec-fieldref")
    for volume in settings.volumes:
        claim = volume.persistent_volume_claim
        if claim is not None:
            flags.add("kubernetes.podspec-persistent-volume-claim")
            if not (claim.read_only or volume.read_only):
                flags.add("kubernetes.podspec-persistent-volume-write")
    return flags
