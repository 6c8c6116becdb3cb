"""The preview of a change to a stack: what merging it would do, as data.

Both sides render from files alone (the base from Git or a file, the head from the working
tree), each with its own lock, and with the stack's changes applied to the lock the way
``modelplane rollout apply`` will apply them after merge. So the objects compared are exactly
what GitOps would commit and Pulumi would apply, and no cluster credentials are needed.

Upstream releases are compared too, as the GitOps objects that install them (Flux sources,
``HelmRelease``s, a kustomize release's Namespace and ``Kustomization``s, and the custom
resources staged with them): turning ``installPrometheus`` off or removing the mesh uninstalls
a release, and Flux then prunes what it created (Prometheus's storage, etcd's volumes, the
``modelmesh-serving`` Namespace). Such removals are destructive and listed first.

The result is one dict (``PREVIEW_SCHEMA_VERSION``, documented by ``preview.schema.json``) that
the Markdown and JSON outputs both come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplane.base import format_path
from modelplane.build import build, desired_models
from modelplane.image_lock import ImageLock
from modelplane.kube import Obj, model_key
from modelplane.preview.capacity import capacity_delta, capacity_summary, placement
from modelplane.render import chart_objects, flux_objects
from modelplane.rollout import state
from modelplane.rollout.diff import (
    DECISION_TEXT,
    Desired,
    DesiredModel,
    ModelDecision,
    ObjectChange,
    diff_objects,
    model_decisions,
)
from modelplane.rollout.gates import candidate_target, compile_gates
from modelplane.rollout.lock import Lock, ModelRecord, empty_lock
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.upstream import Release

PREVIEW_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Side:
    """One side of a preview: a stack (None when it does not exist there), its lock, its source."""

    args: ServingPlatformArgs | None
    lock: Lock | None
    source: str
    images: ImageLock | None = None
    """Its image lock: the head's pins and must pin every image its policy asks for; the base's only pins."""


def _object_entry(change: ObjectChange) -> dict[str, Any]:
    key = change.key
    return {
        "apiVersion": key.api_version,
        "kind": key.kind,
        "namespace": key.namespace,
        "name": key.name,
        "action": change.action,
        "destructive": change.destructive,
        "reasons": list(change.reasons),
        "changes": [
            {
                "op": item.operation,
                "path": list(item.path),
                "field": format_path(item.path),
                "old": item.old,
                "new": item.new,
            }
            for item in change.items
        ],
    }


def _gates(wanted: DesiredModel, record: ModelRecord) -> list[dict[str, Any]]:
    rollout = record.rollout
    if rollout is None:
        return []
    policy = wanted.policy
    target = candidate_target(wanted, record)
    return [
        {
            "name": g.name,
            "metric": g.metric,
            "threshold": g.threshold,
            "query": g.query,
            "measurable": g.query is not None,
            "reason": g.unmeasurable,
        }
        for g in compile_gates(policy.gates, target)
    ]


def _rollout_entry(desired: Desired, decision: ModelDecision, record: ModelRecord | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model": decision.name,
        "namespace": decision.namespace,
        "mode": decision.mode,
        "decision": decision.kind,
        "description": DECISION_TEXT[decision.kind],
        "destructive": decision.destructive,
        "from": decision.from_version,
        "to": decision.to_version,
        "fields": list(decision.fields),
        "strategy": None,
        "phase": None,
        "state": None,
        "step": None,
        "steps": [],
        "trafficPercent": 0,
        "mirrorPercent": 0,
        "stepInterval": None,
        "dryRun": False,
        "gates": [],
        "detail": decision.detail,
    }
    if decision.kind == "removal" or record is None:
        return entry
    if decision.kind in ("new", "replace"):
        return entry | {"strategy": "direct", "trafficPercent": 100}
    rollout = record.rollout
    wanted = desired[decision.key]
    policy = wanted.policy
    if rollout is None:
        if decision.kind in ("start", "restart"):
            entry |= {"strategy": "direct", "trafficPercent": 100}
        return entry
    entry |= {
        "strategy": rollout.strategy,
        "phase": rollout.phase,
        "state": rollout.state,
        "steps": list(rollout.steps),
        "step": rollout.step + 1 if rollout.phase == "canary" else None,
        "trafficPercent": state.candidate_share(record),
        "mirrorPercent": state.mirror_percent(record),
        "stepInterval": policy.step_interval,
        "dryRun": policy.dry_run,
        "gates": _gates(wanted, record),
    }
    return entry


def _warnings(rollouts: list[dict[str, Any]], records: dict[str, ModelRecord]) -> list[str]:
    warnings: list[str] = []
    for r in rollouts:
        key = model_key(r["namespace"], r["model"])
        if r["state"] in ("progressing", "paused") and not r["dryRun"]:
            for gate in r["gates"]:
                if not gate["measurable"]:
                    warnings.append(
                        f"{key}: gate {gate['name']} cannot be measured ({gate['reason']}); "
                        "it will hold the rollout at its first step"
                    )
        record = records.get(key)
        if (
            record is not None
            and record.rollout is not None
            and record.mode == "standard"
            and r["decision"] in ("start", "restart")
            and record.rollout.candidate.spec.get("storageUri") == record.stable.spec.get("storageUri")
        ):
            warnings.append(
                f"{key}: the candidate keeps the stable storage URI, so promotion restarts the stable pods "
                "(KServe refuses a predictor.name change without a model change)"
            )
    return warnings


def graph_steps(head: ServingPlatformArgs, rollouts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Graph steps that call a model whose new version is rolling out: their requests split as the model's do.

    A graph calls a model by name, so a canary of that model serves the share of the graph's
    requests the canary has; reviewers of the model's change see which graphs it reaches.
    """
    active = {
        model_key(r["namespace"], r["model"]): r
        for r in rollouts
        if r["state"] in ("progressing", "paused") and r["strategy"] not in (None, "direct")
    }
    result: list[dict[str, Any]] = []
    for graph in head.graphs:
        namespace = head.tenant(graph.tenant).namespace_name
        for node, index, step in graph.model_steps():
            rollout = active.get(model_key(namespace, step.model or ""))
            if rollout is None:
                continue
            result.append(
                {
                    "graph": graph.name,
                    "namespace": namespace,
                    "node": node,
                    "step": step.name or str(index),
                    "model": step.model,
                    "from": rollout["from"],
                    "to": rollout["to"],
                    "strategy": rollout["strategy"],
                    "phase": rollout["phase"],
                    "trafficPercent": rollout["trafficPercent"],
                    "mirrorPercent": rollout["mirrorPercent"],
                }
            )
    return result


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary_text(
    stack: str, rollouts: list[dict[str, Any]], objects: list[dict[str, Any]], capacity: dict[str, Any]
) -> str:
    """The preview's one-line summary."""
    parts: list[str] = []
    started = [r for r in rollouts if r["decision"] in ("start", "restart")]
    for r in started[:3]:
        how = (
            f"{r['strategy']} at {r['trafficPercent']}%"
            if r["strategy"] != "direct"
            else "direct, 100% at once"
        )
        if r["phase"] == "shadow":
            how = f"shadow, {r['mirrorPercent']}% mirrored"
        elif r["phase"] == "loading":
            how = "loaded beside, then switched"
        parts.append(f"{r['model']} {r['from']} → {r['to']} ({how})")
    if len(started) > 3:
        parts.append(f"{len(started) - 3} more rollouts")
    for kind, one, many in (
        ("new", "new model", "new models"),
        ("removal", "model removed", "models removed"),
        ("replace", "model recreated", "models recreated"),
        ("in-place", "in-place change", "in-place changes"),
    ):
        n = sum(1 for r in rollouts if r["decision"] == kind)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    destructive = sum(1 for o in objects if o["destructive"])
    parts.append(_plural(len(objects), "object") + " changed" if objects else "no object changes")
    parts.append(_plural(destructive, "destructive change"))
    delta = capacity["total"]["delta"]
    parts.append(f"{delta['podsMin']:+d} pods / {delta['gpusMin']:+d} GPUs at min replicas")
    return f"{stack}: " + "; ".join(parts)


def release_objects(charts: list[Release], *, stack: str) -> list[Obj]:
    """The GitOps objects that install a stack's upstream releases (as ``modelplane render`` writes them for Flux)."""
    return flux_objects(charts, stack=stack) + chart_objects(charts)


def _same_settings(head: ServingPlatformArgs, base: ServingPlatformArgs) -> bool:
    """Whether two stacks are the same but for their models."""
    return all(
        getattr(head, name) == getattr(base, name) for name in type(head).model_fields if name != "models"
    )


def affected_models(head: Side, base: Side, desired: Desired, before: Desired | None) -> set[str] | None:
    """The models whose objects can differ between ``base`` and ``head``; None when any can.

    A model's objects depend on its entry, its lock record and the stack's other settings. So when
    the settings are the same on both sides, only models whose entry or record changed (added and
    removed ones too) can render differently; models in a rollout are counted in as well. Any other
    change to the stack may touch every model, and everything is rendered.
    """
    if base.args is None or before is None or head.args is None or not _same_settings(head.args, base.args):
        return None
    keys = {key for key in desired.keys() | before.keys() if desired.get(key) != before.get(key)}
    head_records = head.lock.models if head.lock is not None else {}
    base_records = base.lock.models if base.lock is not None else {}
    for key in head_records.keys() | base_records.keys():
        new, old = head_records.get(key), base_records.get(key)
        in_flight = new is None or old is None or new.rollout is not None or old.rollout is not None
        # When both sides have the same lock, it is read once and their records are the same objects.
        if in_flight or (new is not old and new != old):
            keys.add(key)
    return keys


def build_preview(head: Side, base: Side, *, incremental: bool = True) -> dict[str, Any]:
    """The whole preview of changing ``base`` into ``head``.

    ``incremental`` renders only the models whose objects can differ (``affected_models``) besides
    the objects of the stack as a whole; the preview is the same as a full one (a property test
    compares them), for a fraction of the work when a change touches a few of many models.
    """
    assert head.args is not None
    stack = head.args.stack.name
    desired = desired_models(head.args)
    before = desired_models(base.args) if base.args is not None else None
    only = affected_models(head, base, desired, before) if incremental else None
    head_lock = head.lock or empty_lock(stack)
    head_render = build(head.args, lock=head_lock, only_models=only, images=head.images)
    head_records = head_render.rollouts or {}
    base_objects: list[dict[str, Any]] = []
    base_capacity = None
    if base.args is not None:
        base_render = build(
            base.args,
            lock=base.lock or empty_lock(base.args.stack.name),
            only_models=only,
            images=base.images,
            refuse_unpinned=False,
        )
        base_objects = base_render.objects + release_objects(base_render.charts, stack=base.args.stack.name)
        base_capacity = capacity_summary(base.args, base_render.rollouts)
    changes = diff_objects(
        base_objects, head_render.objects + release_objects(head_render.charts, stack=stack)
    )
    objects = [_object_entry(c) for c in changes]
    decisions = model_decisions(desired, head.lock, before=before)
    rollouts = [_rollout_entry(desired, d, head_records.get(d.key)) for d in decisions if d.kind != "steady"]
    capacity = capacity_delta(base_capacity, capacity_summary(head.args, head_records))
    warnings = list(head_render.warnings) + _warnings(rollouts, head_records)
    head_plan = placement(head.args)
    capacity["plan"] = {
        "base": placement(base.args) if base.args is not None else None,
        "head": head_plan,
    }
    fits = head_plan.get("fits", {})
    if fits.get("min") is False:
        warnings.insert(
            0, f"{stack}: the stack does not fit its pools at minimum replicas (see `modelplane plan`)"
        )
    elif fits.get("max") is False:
        warnings.append(
            f"{stack}: the stack does not fit its pools at maximum replicas (see `modelplane plan`)"
        )
    if head.lock is None:
        warnings.insert(0, f"{stack}: no lock file: every model is treated as new (nothing deployed yet)")
    counts = {
        a: sum(1 for o in objects if o["action"] == a) for a in ("added", "changed", "removed", "replaced")
    }
    decision_counts = {k: sum(1 for d in decisions if d.kind == k) for k in DECISION_TEXT}
    # A model removed or recreated is also an object removed or replaced: count the objects.
    destructive = max(
        sum(1 for o in objects if o["destructive"]), sum(1 for r in rollouts if r["destructive"])
    )
    return {
        "schemaVersion": PREVIEW_SCHEMA_VERSION,
        "stack": stack,
        "base": {"source": base.source, "exists": base.args is not None},
        "head": {"source": head.source},
        "summary": {
            "text": summary_text(stack, rollouts, objects, capacity),
            "destructive": destructive,
            "objects": counts,
            "models": decision_counts,
        },
        "objects": objects,
        "rollouts": rollouts,
        "graphs": graph_steps(head.args, rollouts),
        "capacity": capacity,
        "warnings": warnings,
    }


def is_destructive(preview: dict[str, Any]) -> bool:
    """Whether anything in the preview deletes or recreates something live."""
    return bool(preview["summary"]["destructive"])
