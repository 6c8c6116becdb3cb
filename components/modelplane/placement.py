"""Where a component's pods may run: node selector, tolerations, affinity and priority, typed.

GPU models are placed by their pool; every other pod (a CPU model, a transformer, an explainer,
an inference graph's router, an LLM service's workers) is placed by these settings. They keep
Kubernetes' own shape and key names, so a team's existing affinity block pastes in unchanged,
and they are checked here with the API server's own rules (``k8s.io/kubernetes`` pkg/apis/core/
validation: ``validateNodeSelectorRequirement``, ``ValidateTolerations``,
``validatePodAffinityTerm``), so a malformed block is an error in the stack file rather than a
rejection at apply time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.errors import ProblemError
from modelplane.types import DnsLabel, DnsSubdomain, LabelKey, LabelValue


def _fail(problems: list[Problem]) -> None:
    if problems:
        raise ProblemError(problems)


class NodeSelectorRequirement(StrictModel):
    """One node label condition (Kubernetes' ``NodeSelectorRequirement``)."""

    key: LabelKey = Field(description="Node label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="How the label is compared."
    )
    values: list[str] = Field(
        default_factory=list,
        description="Values for In and NotIn (at least one), one integer for Gt and Lt, none for Exists and "
        "DoesNotExist. Default: none.",
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> NodeSelectorRequirement:
        op, values = self.operator, self.values
        if op in ("In", "NotIn") and not values:
            _fail([Problem(("values",), f"operator {op} needs at least one value")])
        if op in ("Exists", "DoesNotExist") and values:
            _fail([Problem(("values",), f"operator {op} takes no values; remove them", values)])
        if op in ("Gt", "Lt") and (len(values) != 1 or not values[0].lstrip("-").isdigit()):
            _fail([Problem(("values",), f"operator {op} takes exactly one integer value", values)])
        return self


class NodeSelectorTerm(StrictModel):
    """Conditions that all hold on a node (Kubernetes' ``NodeSelectorTerm``)."""

    match_expressions: list[NodeSelectorRequirement] = Field(
        default_factory=list, description="Node label conditions. Default: none."
    )
    match_fields: list[NodeSelectorRequirement] = Field(
        default_factory=list, description="Node field conditions (`metadata.name`). Default: none."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> NodeSelectorTerm:
        if not self.match_expressions and not self.match_fields:
            _fail([Problem((), "a node selector term needs matchExpressions or matchFields")])
        return self


class NodeSelector(StrictModel):
    """Terms of which at least one must hold (Kubernetes' ``NodeSelector``)."""

    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1, description="The terms (any may hold).")


class PreferredSchedulingTerm(StrictModel):
    """A preferred node term and its weight."""

    weight: int = Field(ge=1, le=100, description="Weight of the preference, 1-100.")
    preference: NodeSelectorTerm = Field(description="The node term preferred.")


class NodeAffinity(StrictModel):
    """Node affinity: required and preferred node terms."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        default=None, description="Nodes the pod may only run on. Default: any node."
    )
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = Field(
        default_factory=list, description="Nodes the scheduler prefers. Default: none."
    )


class LabelSelectorRequirement(StrictModel):
    """One label condition of a label selector."""

    key: LabelKey = Field(description="Label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the label is compared."
    )
    values: list[str] = Field(
        default_factory=list,
        description="Values for In and NotIn (at least one); none for Exists and DoesNotExist. Default: none.",
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            _fail([Problem(("values",), f"operator {self.operator} needs at least one value")])
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            _fail([Problem(("values",), f"operator {self.operator} takes no values", self.values)])
        return self


class LabelSelector(StrictModel):
    """A label selector (Kubernetes' ``LabelSelector``)."""

    match_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Labels that must match."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Label conditions. Default: none."
    )


class PodAffinityTerm(StrictModel):
    """Pods (by label) near or away from which a pod runs, within a topology domain."""

    label_selector: LabelSelector | None = Field(default=None, description="Which pods. Default: none.")
    topology_key: LabelKey = Field(
        description="Node label that defines the domain (`kubernetes.io/hostname`)."
    )
    namespaces: list[DnsLabel] = Field(
        default_factory=list, description="Namespaces of those pods. Default: the pod's own."
    )
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Namespaces of those pods, by label. Default: the pod's own namespace."
    )


class WeightedPodAffinityTerm(StrictModel):
    """A preferred pod affinity term and its weight."""

    weight: int = Field(ge=1, le=100, description="Weight of the preference, 1-100.")
    pod_affinity_term: PodAffinityTerm = Field(description="The term preferred.")


class PodAffinity(StrictModel):
    """Pod affinity or anti-affinity: required and preferred pod terms."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = Field(
        default_factory=list, description="Terms that must hold. Default: none."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list, description="Terms the scheduler prefers. Default: none."
    )


class Affinity(StrictModel):
    """Kubernetes' pod ``affinity``, in its own shape."""

    node_affinity: NodeAffinity | None = Field(default=None, description="Node affinity. Default: none.")
    pod_affinity: PodAffinity | None = Field(default=None, description="Pod affinity. Default: none.")
    pod_anti_affinity: PodAffinity | None = Field(
        default=None, description="Pod anti-affinity. Default: none."
    )

    def manifest(self) -> dict[str, Any]:
        """The affinity as Kubernetes spells it (unset fields left out)."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_defaults=True)
        return data


class Toleration(StrictModel):
    """A toleration of a node taint (Kubernetes' ``Toleration``)."""

    key: LabelKey | None = Field(default=None, description="Taint key. Default: every key (operator Exists).")
    operator: Literal["Equal", "Exists"] = Field(
        default="Equal", description="How the taint value is compared."
    )
    value: LabelValue | None = Field(default=None, description="Taint value, for Equal. Default: empty.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect tolerated. Default: every effect."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="How long a NoExecute taint is tolerated. Default: forever."
    )

    @model_validator(mode="after")
    def _as_the_api_server(self) -> Toleration:
        # k8s.io/kubernetes pkg/apis/core/validation/validation.go ValidateTolerations.
        problems: list[Problem] = []
        if self.key is None and self.operator != "Exists":
            problems.append(
                Problem(("operator",), "a toleration without key must use operator Exists", "Equal")
            )
        if self.operator == "Exists" and self.value:
            problems.append(Problem(("value",), "operator Exists takes no value; remove it", self.value))
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            problems.append(
                Problem(("tolerationSeconds",), "is only for effect NoExecute", self.toleration_seconds)
            )
        _fail(problems)
        return self

    def manifest(self) -> dict[str, Any]:
        """The toleration as Kubernetes spells it."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True)
        return data


class PlacementArgs(StrictModel):
    """Where a component's pods run: nodes, taints tolerated, affinity and scheduling priority.

    A mixin: component settings inherit these fields.
    """

    node_selector: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Node labels the pods must run on. Default: none (any node)."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints tolerated. Default: none."
    )
    affinity: Affinity | None = Field(default=None, description="Node and pod affinity. Default: none.")
    priority_class_name: DnsSubdomain | None = Field(
        default=None, description="PriorityClass of the pods. Default: the cluster's default priority."
    )

    def placement_set(self) -> list[str]:
        """The placement fields this component sets, as the file spells them."""
        fields = {
            "nodeSelector": bool(self.node_selector),
            "tolerations": bool(self.tolerations),
            "affinity": self.affinity is not None,
            "priorityClassName": self.priority_class_name is not None,
        }
        return [name for name, present in fields.items() if present]

    def placement_manifest(self) -> dict[str, Any]:
        """The pod-spec fields of this placement (only those set)."""
        result: dict[str, Any] = {}
        if self.node_selector:
            result["nodeSelector"] = dict(sorted(self.node_selector.items()))
        if self.tolerations:
            result["tolerations"] = [t.manifest() for t in self.tolerations]
        if self.affinity is not None:
            result["affinity"] = self.affinity.manifest()
        if self.priority_class_name is not None:
            result["priorityClassName"] = self.priority_class_name
        return result
