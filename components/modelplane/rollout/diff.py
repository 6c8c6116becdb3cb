"""The diff of desired against deployed: per object (fields) and per model (what happens to it).

Object level: two sets of rendered objects, keyed by identity (apiVersion, kind, namespace,
name), compared in linear time. Each changed object lists kopf-style items
``(operation, path, old, new)`` in a stable order; an object whose change touches a field
Kubernetes (or KServe's webhook) will not update in place is *replaced*: deleted and created,
which is destructive. Text diffs are not used: at 20,000 models a line diff is quadratic and a
YAML re-parse alone costs seconds.

Model level: the stack against the lock decides, per model, whether it is steady, new, changed
in place, starts a rollout, continues one, restarts one (the candidate changed), aborts one (the
stack went back to the stable version), stays rolled back, is replaced (its deployment mode
changed) or is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic.alias_generators import to_snake

from modelplane.base import format_path
from modelplane.kube import Obj, ObjectKey, key_of, model_key, sort_key
from modelplane.model import ModelArgs
from modelplane.rollout.lock import Lock, VersionRecord
from modelplane.rollout.policy import RolloutPolicy
from modelplane.rollout.version import IN_PLACE_FIELDS, changed_fields, digest_of, version_spec
from modelplane.types import DeploymentMode

Path = tuple[str | int, ...]
Operation = Literal["add", "change", "remove"]
Action = Literal["added", "changed", "removed", "replaced"]


@dataclass(frozen=True)
class DiffItem:
    """One field change: kopf's ``(operation, path, old, new)``."""

    operation: Operation
    path: Path
    old: Any
    new: Any

    def as_tuple(self) -> tuple[Operation, Path, Any, Any]:
        """The kopf-style tuple."""
        return (self.operation, self.path, self.old, self.new)


@dataclass(frozen=True)
class ObjectChange:
    """What happens to one object."""

    key: ObjectKey
    action: Action
    items: tuple[DiffItem, ...] = ()
    reasons: tuple[str, ...] = ()
    """Why an object is replaced (the immutable fields touched), or why a removal is severe."""

    @property
    def destructive(self) -> bool:
        """Whether the change deletes something that exists."""
        return self.action in ("removed", "replaced")


# Fields Kubernetes refuses to update in place (or KServe's webhook refuses), per kind:
# changing one means delete and create. A path ending in "*" covers everything below it.
IMMUTABLE_FIELDS: dict[str, tuple[Path, ...]] = {
    "Deployment": (("spec", "selector"),),
    "DaemonSet": (("spec", "selector"),),
    "ReplicaSet": (("spec", "selector"),),
    "StatefulSet": (
        ("spec", "selector"),
        ("spec", "volumeClaimTemplates"),
        ("spec", "serviceName"),
        ("spec", "podManagementPolicy"),
    ),
    "Service": (("spec", "clusterIP"), ("spec", "clusterIPs"), ("spec", "ipFamilies")),
    "Job": (("spec", "template"), ("spec", "selector"), ("spec", "completionMode")),
    "PersistentVolumeClaim": (
        ("spec", "storageClassName"),
        ("spec", "accessModes"),
        ("spec", "volumeName"),
        ("spec", "volumeMode"),
        ("spec", "selector"),
        ("spec", "dataSource"),
    ),
    "RoleBinding": (("roleRef",),),
    "ClusterRoleBinding": (("roleRef",),),
    "InferenceService": (("metadata", "annotations", "serving.kserve.io/deploymentMode"),),
    "CustomResourceDefinition": (("spec", "scope"), ("spec", "names", "kind")),
}

SEVERE_REMOVALS: dict[str, str] = {
    "Namespace": "deleting a Namespace deletes every object in it",
    "CustomResourceDefinition": "deleting a CRD deletes every custom resource of its kind",
    "PersistentVolumeClaim": "deleting a PersistentVolumeClaim can delete its data",
    "InferenceService": "deleting an InferenceService stops serving the model",
    "HelmRelease": "removing a HelmRelease uninstalls the release: everything it created is deleted, "
    "its storage with it",
    "Kustomization": "removing a Kustomization prunes every object it applied",
    "StatefulSet": "deleting a StatefulSet stops its pods; its PersistentVolumeClaims hold its data",
}


def _diff_values(old: Any, new: Any, path: Path, out: list[DiffItem]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(old.keys() | new.keys()):
            if k not in new:
                out.append(DiffItem("remove", (*path, k), old[k], None))
            elif k not in old:
                out.append(DiffItem("add", (*path, k), None, new[k]))
            else:
                _diff_values(old[k], new[k], (*path, k), out)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff_values(a, b, (*path, i), out)
        return
    out.append(DiffItem("change", path, old, new))


def diff_values(old: Any, new: Any) -> list[DiffItem]:
    """Field changes from ``old`` to ``new``.

    Mappings compare key by key (sorted), equal-length lists item by item, anything else as one
    change, so the order is stable and the work linear in the size of the objects.
    """
    out: list[DiffItem] = []
    _diff_values(old, new, (), out)
    return out


def _touches(item_path: Path, immutable: Path) -> bool:
    n = min(len(item_path), len(immutable))
    return item_path[:n] == immutable[:n]


def replacement_reasons(kind: str, items: list[DiffItem]) -> list[str]:
    """Immutable fields of a kind that these changes touch, as dotted paths."""
    reasons: list[str] = []
    for immutable in IMMUTABLE_FIELDS.get(kind, ()):
        if any(_touches(item.path, immutable) for item in items):
            reasons.append(f"{format_path(immutable)} cannot change in place")
    return reasons


def diff_objects(old: list[Obj], new: list[Obj]) -> list[ObjectChange]:
    """Every object added, changed, removed or replaced from ``old`` to ``new``, in render order."""
    before = {key_of(o): o for o in old}
    after = {key_of(o): o for o in new}
    changes: list[tuple[tuple[int, str, str, str], ObjectChange]] = []
    for key, obj in after.items():
        prior = before.get(key)
        if prior is None:
            changes.append((sort_key(obj), ObjectChange(key, "added")))
        elif prior != obj:
            items = diff_values(prior, obj)
            reasons = replacement_reasons(key.kind, items)
            action: Action = "replaced" if reasons else "changed"
            changes.append((sort_key(obj), ObjectChange(key, action, tuple(items), tuple(reasons))))
    for key, obj in before.items():
        if key not in after:
            severe = SEVERE_REMOVALS.get(key.kind)
            changes.append((sort_key(obj), ObjectChange(key, "removed", reasons=(severe,) if severe else ())))
    changes.sort(key=lambda pair: (pair[0], pair[1].action))
    return [change for _, change in changes]


# --- model level -------------------------------------------------------------------------

DecisionKind = Literal[
    "steady", "new", "in-place", "start", "continue", "restart", "abort", "held", "replace", "removal"
]

DECISION_TEXT: dict[str, str] = {
    "steady": "no change",
    "new": "new model, deployed directly",
    "in-place": "changed in place, no canary",
    "start": "starts a rollout",
    "continue": "rollout continues",
    "restart": "candidate changed mid-rollout: the rollout restarts",
    "abort": "stack is back on the stable version: the rollout is cancelled",
    "held": "rolled back: stays on the stable version until the stack changes",
    "replace": "deployment mode changed: the InferenceService is deleted and created",
    "removal": "removed from the stack: it stops serving",
}


@dataclass(frozen=True)
class ModelDecision:
    """What a change of the stack does to one model."""

    key: str
    namespace: str
    name: str
    kind: DecisionKind
    mode: str
    from_version: str | None = None
    to_version: str | None = None
    fields: tuple[str, ...] = ()
    """The fields behind the decision: version-defining ones for a rollout, in-place ones otherwise."""
    detail: str = ""

    @property
    def destructive(self) -> bool:
        """Whether the decision stops something that serves."""
        return self.kind in ("removal", "replace")


@dataclass
class DesiredModel:
    """A model as the stack wants it: its entry, where it lives, its mode and its effective rollout policy.

    What the rollout engine decides from, with nothing else of the stack (``modelplane.build.desired_models``
    makes them from a stack). Its version spec and digest are computed when first needed.
    """

    model: ModelArgs
    namespace: str
    mode: DeploymentMode
    policy: RolloutPolicy
    """The model's rollout policy: the stack's, with the model's override applied."""

    @property
    def key(self) -> str:
        """The lock key, ``<namespace>/<name>``."""
        return model_key(self.namespace, self.model.name)

    @cached_property
    def spec(self) -> dict[str, Any]:
        """The version-defining fields (``modelplane.rollout.version.version_spec``)."""
        return version_spec(self.model)

    @cached_property
    def digest(self) -> str:
        """The digest of the model's version spec."""
        return digest_of(self.spec)

    def defines(self, version: VersionRecord) -> bool:
        """Whether the model is that version.

        Equal specs need no hashing; a lock's digests were checked against its specs when read.
        """
        return self.spec == version.spec or self.digest == version.digest


Desired = dict[str, DesiredModel]
"""Every model a stack wants, by lock key."""


_IN_PLACE_ATTRS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (name, tuple(to_snake(part) for part in name.split("."))) for name in IN_PLACE_FIELDS
)


def _in_place_fields(old: ModelArgs, new: ModelArgs) -> tuple[str, ...]:
    if old == new:
        return ()
    fields: list[str] = []
    for name, attrs in _IN_PLACE_ATTRS:
        a: Any = old
        b: Any = new
        for attr in attrs:
            a, b = getattr(a, attr), getattr(b, attr)
        if a != b:
            fields.append(name)
    return tuple(fields)


def model_decisions(
    desired: Desired, lock: Lock | None, *, before: Desired | None = None
) -> list[ModelDecision]:
    """Per model, what the ``desired`` models do against the deployed state in ``lock``.

    ``lock`` None means nothing is deployed. ``before``, the models as the stack wanted them
    before the change, lets in-place changes be told from steady ones. Sorted by key; linear in
    the number of models.
    """
    records = lock.models if lock is not None else {}
    before = before or {}
    decisions: list[ModelDecision] = []
    for key, wanted in desired.items():
        ns, name = wanted.namespace, wanted.model.name
        record = records.get(key)
        version = wanted.model.version
        if record is None:
            decisions.append(ModelDecision(key, ns, name, "new", wanted.mode, None, version))
            continue
        stable = record.stable
        if record.mode != wanted.mode:
            decisions.append(
                ModelDecision(
                    key,
                    ns,
                    name,
                    "replace",
                    wanted.mode,
                    stable.version,
                    version,
                    detail=f"deployment mode {record.mode} -> {wanted.mode}",
                )
            )
            continue
        rollout = record.rollout
        if rollout is None or rollout.state == "rolled-back":
            if wanted.defines(stable):
                prior = before.get(key)
                fields = _in_place_fields(prior.model, wanted.model) if prior is not None else ()
                kind: DecisionKind = "in-place" if fields else "steady"
                decisions.append(ModelDecision(key, ns, name, kind, wanted.mode, version, version, fields))
            elif rollout is not None and wanted.defines(rollout.candidate):
                decisions.append(ModelDecision(key, ns, name, "held", wanted.mode, stable.version, version))
            else:
                fields = tuple(changed_fields(stable.spec, wanted.spec))
                decisions.append(
                    ModelDecision(key, ns, name, "start", wanted.mode, stable.version, version, fields)
                )
            continue
        candidate = rollout.candidate
        if wanted.defines(candidate):
            decisions.append(ModelDecision(key, ns, name, "continue", wanted.mode, stable.version, version))
        elif wanted.defines(stable):
            decisions.append(
                ModelDecision(
                    key,
                    ns,
                    name,
                    "abort",
                    wanted.mode,
                    candidate.version,
                    version,
                    detail=f"candidate {candidate.version} withdrawn",
                )
            )
        else:
            fields = tuple(changed_fields(candidate.spec, wanted.spec))
            decisions.append(
                ModelDecision(
                    key,
                    ns,
                    name,
                    "restart",
                    wanted.mode,
                    stable.version,
                    version,
                    fields,
                    detail=f"candidate {candidate.version} replaced by {version}",
                )
            )
    for key, record in records.items():
        if key not in desired:
            ns, _, name = key.partition("/")
            decisions.append(
                ModelDecision(key, ns, name, "removal", record.mode, record.stable.version, None)
            )
    decisions.sort(key=lambda d: d.key)
    return decisions
