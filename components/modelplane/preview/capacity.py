"""What a change costs in pods and GPUs: per pool, at minimum and at maximum replicas.

A reviewer should see that a canary of a GPU model needs GPUs of its own before the change
merges (no peer tool shows it). This is the preview's own simple count, from the stack and the
rollout state, not a placement plan: pods and GPU devices (or slices) requested per pool, with
the canary's replicas as KServe and Knative create them.

- Standard mode: a canary runs fixed replicas, ``ceil(stable minReplicas x share / 100)`` (or
  the shadow phase's explicit count), and once Ready KServe lowers the stable minimum by as many
  (never below 1). Its GPUs come from the candidate's resources.
- Knative mode: each routed revision keeps its own min and max scale, so while both have
  traffic the count is the stable's plus the candidate's (the maximum is an upper bound).
- ModelMesh mode: models share the mesh's runtime pods, so a model adds none here.
"""

from __future__ import annotations

from typing import Any

from modelplane import capacity
from modelplane.kube import model_key
from modelplane.model import ModelArgs
from modelplane.rollout.lock import ModelRecord
from modelplane.rollout.state import candidate_share, mirror_percent
from modelplane.serving_platform import ServingPlatformArgs

CPU_POOL = "(no GPU)"
"""The pool name under which models without GPUs are counted."""

COUNTS: tuple[str, ...] = ("podsMin", "podsMax", "gpusMin", "gpusMax")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _add(pools: dict[str, dict[str, int]], pool: str, pods_min: int, pods_max: int, gpus: int) -> None:
    entry = pools.setdefault(pool, dict.fromkeys(COUNTS, 0))
    entry["podsMin"] += pods_min
    entry["podsMax"] += pods_max
    entry["gpusMin"] += pods_min * gpus
    entry["gpusMax"] += pods_max * gpus


def _pool_of(resources: dict[str, Any]) -> tuple[str, int]:
    gpus = int(resources.get("gpu", 0))
    return (str(resources["pool"]) if gpus and resources.get("pool") else CPU_POOL), gpus


def _model(pools: dict[str, dict[str, int]], model: ModelArgs, mode: str, record: ModelRecord | None) -> None:
    if mode == "modelmesh":
        return
    low, high = model.scaling.min_replicas, model.scaling.max_replicas
    for part in (model.transformer, model.explainer):
        if part is not None:
            _add(pools, CPU_POOL, low, high, 0)
    rollout = record.rollout if record is not None else None
    stable_res = record.stable.spec.get("resources", {}) if record is not None else None
    if stable_res is None:
        stable_res = model.resources.model_dump(by_alias=True, exclude_defaults=True)
    stable_pool, stable_gpus = _pool_of(stable_res)
    share = candidate_share(record) if record is not None else 0
    mirror = mirror_percent(record) if record is not None else 0
    if rollout is None or (share == 0 and mirror == 0):
        _add(pools, stable_pool, low, high, stable_gpus)
        return
    cand_pool, cand_gpus = _pool_of(rollout.candidate.spec.get("resources", {}))
    if mode == "knative":
        _add(pools, stable_pool, low, high, stable_gpus)
        _add(pools, cand_pool, low, high, cand_gpus)
        return
    canary = min(low, max(1, _ceil_div(low * mirror, 100))) if mirror else _ceil_div(low * share, 100)
    stable_low = max(1, low - canary) if low >= 1 else low
    _add(pools, stable_pool, stable_low, high, stable_gpus)
    _add(pools, cand_pool, canary, canary, cand_gpus)


def capacity_summary(args: ServingPlatformArgs, records: dict[str, ModelRecord] | None) -> dict[str, Any]:
    """Pods and GPUs per pool at min and max replicas for a stack in a rollout state.

    ``records`` is the deployed state with the stack applied (None: every model alone).
    """
    pools: dict[str, dict[str, int]] = {}
    tenants = {t.name: t.namespace_name for t in args.tenants}
    for model in args.models:
        record = records.get(model_key(tenants[model.tenant], model.name)) if records is not None else None
        _model(pools, model, args.mode(model), record)
    total = {c: sum(p[c] for p in pools.values()) for c in COUNTS}
    return {"pools": {name: pools[name] for name in sorted(pools)}, "total": total}


def capacity_delta(base: dict[str, Any] | None, head: dict[str, Any]) -> dict[str, Any]:
    """Base, head and the difference, per pool and in total."""
    base = base or {"pools": {}, "total": dict.fromkeys(COUNTS, 0)}
    zero = dict.fromkeys(COUNTS, 0)
    pools = []
    for name in sorted(base["pools"].keys() | head["pools"].keys()):
        before, after = base["pools"].get(name, zero), head["pools"].get(name, zero)
        pools.append(
            {
                "pool": name,
                "base": dict(before),
                "head": dict(after),
                "delta": {c: after[c] - before[c] for c in COUNTS},
            }
        )
    total = {
        "base": dict(base["total"]),
        "head": dict(head["total"]),
        "delta": {c: head["total"][c] - base["total"][c] for c in COUNTS},
    }
    return {"pools": pools, "total": total}


def placement(args: ServingPlatformArgs) -> dict[str, Any]:
    """The capacity planner's summary of a stack (``modelplane.capacity``): nodes per pool, whether it fits.

    The planner places the stack's models onto nodes; it does not know about canaries, which
    ``capacity_summary`` counts. The preview shows both.
    """
    return capacity.summary(args)
