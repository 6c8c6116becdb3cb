"""Live status of a stack's models, and drift between what Git says is deployed and what runs.

``modelplane status FILE`` answers two questions without a Pulumi state or a GitOps engine:
is each model ready (and where does its traffic go), and does the cluster hold what Git says
is deployed? "What Git says" is the stack rendered under its lock, exactly what ``render``
writes and ``pulumi up`` applies: during a rollout that is the canary split the lock records
(Standard mode's ``spec.canary[]``, Knative's ``canaryTrafficPercent``, a ModelMesh candidate
beside its stable model, a shadow route), so a correctly synced cluster is in sync at every
phase of every rollout, and drift means the cluster differs from Git, nothing else.

The objects compared are those a model's rollout renders: InferenceServices, ServingRuntimes
and HTTPRoutes in the models' namespaces. The logic is pure over API objects (plain dicts as
the API server returns them); ``read_live`` is the thin part that fetches them with the
``kubernetes`` client.

Drift compares only the fields modelplane renders: what the API server or a webhook adds
(``status``, ``metadata.uid``, defaulted fields such as a predictor's ``runtimeVersion``) is
not drift, since the rendered object never says anything about it (failure mode 12). An
object of the cluster that carries this stack's label but is not rendered is drift only when
nothing owns it: KServe copies an InferenceService's labels onto the HTTPRoutes it creates and
sets itself as their controller (kserve v0.20.0,
``pkg/controller/v1beta1/inferenceservice/reconcilers/ingress/httproute_reconciler.go``, lines
303-312 and 734), and such children are KServe's to reconcile, not Git's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from modelplane.errors import PlatformError
from modelplane.kube import LABEL_STACK, Obj, ObjectKey, key_of
from modelplane.types import parse_quantity

ISVC_API_VERSION = "serving.kserve.io/v1beta1"
ISVC_GROUP = "serving.kserve.io"

LIVE_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"),
    ("serving.kserve.io", "v1alpha1", "servingruntimes", "ServingRuntime"),
    ("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
)
"""(group, version, plural, kind) of what ``status`` compares: what a model's rollout renders."""

COMPARED_KINDS = frozenset(kind for *_, kind in LIVE_KINDS)


@dataclass(frozen=True)
class Difference:
    """One spec field that differs: its dotted path, the rendered value and the live one."""

    path: str
    rendered: Any
    live: Any


@dataclass(frozen=True)
class ModelStatus:
    """What the cluster says about one InferenceService."""

    namespace: str
    name: str
    ready: bool
    reason: str
    url: str | None
    latest_ready_revision: str | None
    traffic: tuple[tuple[str, int], ...]
    """(revision or tag, percent) of the predictor's traffic split."""
    canaries: tuple[tuple[str, bool, int], ...]
    """(name, ready, traffic percent) of each Standard-mode canary."""


@dataclass
class StatusReport:
    """Model statuses and drift of one stack."""

    models: list[ModelStatus] = field(default_factory=list)
    missing: list[ObjectKey] = field(default_factory=list)
    unexpected: list[ObjectKey] = field(default_factory=list)
    changed: dict[ObjectKey, list[Difference]] = field(default_factory=dict)

    @property
    def in_sync(self) -> bool:
        """Whether the cluster holds exactly what the stack renders."""
        return not (self.missing or self.unexpected or self.changed)


def _condition(obj: Obj, kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            result: dict[str, Any] = cond
            return result
    return None


def model_status(isvc: Obj) -> ModelStatus:
    """The status of one live InferenceService."""
    status = isvc.get("status") or {}
    ready = _condition(isvc, "Ready")
    predictor = (status.get("components") or {}).get("predictor") or {}
    traffic: list[tuple[str, int]] = []
    for target in predictor.get("traffic") or []:
        label = target.get("tag") or target.get("revisionName") or "latest"
        if target.get("latestRevision") and not target.get("tag"):
            label = f"{target.get('revisionName', 'latest')} (latest)"
        traffic.append((label, int(target.get("percent", 0))))
    canaries = tuple(
        (str(c.get("name", "")), bool(c.get("ready", False)), int(c.get("trafficPercent", 0)))
        for c in status.get("canaryStatuses") or []
    )
    meta = isvc["metadata"]
    return ModelStatus(
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        ready=bool(ready and ready.get("status") == "True"),
        reason=str(
            (ready or {}).get("reason") or (ready or {}).get("message") or ("" if ready else "no status")
        ),
        url=status.get("url"),
        latest_ready_revision=predictor.get("latestReadyRevision"),
        traffic=tuple(traffic),
        canaries=canaries,
    )


def differences(rendered: Any, live: Any, path: str = "") -> list[Difference]:
    """Fields set in ``rendered`` whose live value differs; fields only the server set are ignored."""
    if isinstance(rendered, dict) and isinstance(live, dict):
        result: list[Difference] = []
        for key in sorted(rendered):
            sub = f"{path}.{key}" if path else str(key)
            if key not in live:
                result.append(Difference(sub, rendered[key], None))
            else:
                result += differences(rendered[key], live[key], sub)
        return result
    if isinstance(rendered, list) and isinstance(live, list) and len(rendered) == len(live):
        result = []
        for i, (r, v) in enumerate(zip(rendered, live, strict=True)):
            result += differences(r, v, f"{path}[{i}]")
        return result
    if _same_scalar(rendered, live) or _same_quantity(path, rendered, live):
        return []
    return [Difference(path, rendered, live)]


def _same_quantity(path: str, rendered: Any, live: Any) -> bool:
    # KServe's defaulting webhook re-encodes resource quantities canonically ("0.5" -> "500m").
    if not re.search(r"(^|\.)resources\.(requests|limits)\.[^.]+$", path):
        return False
    try:
        return parse_quantity(str(rendered)) == parse_quantity(str(live))
    except ValueError:
        return False


def _same_scalar(rendered: Any, live: Any) -> bool:
    # The API server returns quantities and numbers in canonical forms ("1" for 1, 1 for "1").
    if rendered == live:
        return True
    if isinstance(rendered, bool) or isinstance(live, bool):
        return False
    if isinstance(rendered, (int, float, str)) and isinstance(live, (int, float, str)):
        return str(rendered) == str(live)
    return False


def _comparable(obj: Obj) -> Obj:
    """The parts of an object drift is judged on: metadata labels/annotations and the spec."""
    meta = obj.get("metadata", {})
    result: Obj = {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    kept = {k: v for k, v in meta.items() if k in ("labels", "annotations")}
    if kept:
        result["metadata"] = kept
    return result


def drift(
    rendered: list[Obj], live: list[Obj], *, managed_label: tuple[str, str] | None = None
) -> StatusReport:
    """Compare rendered objects with live ones.

    ``live`` holds what the cluster returned for the kinds being compared. An object is
    unexpected only when it carries ``managed_label`` (this stack's label) and no owner:
    objects others created in the same namespaces, and children a controller created for
    ours, are none of this stack's business.
    """
    report = StatusReport()
    live_by_key = {key_of(obj): obj for obj in live}
    rendered_keys = {key_of(obj) for obj in rendered}
    for obj in rendered:
        key = key_of(obj)
        current = live_by_key.get(key)
        if current is None:
            report.missing.append(key)
            continue
        diffs = differences(_comparable(obj), _comparable(current))
        if diffs:
            report.changed[key] = diffs
    for key, obj in live_by_key.items():
        if key in rendered_keys:
            continue
        meta = obj.get("metadata", {})
        if meta.get("ownerReferences"):
            continue  # a controller's child (KServe's HTTPRoutes copy the model's labels)
        obj_labels = meta.get("labels") or {}
        if managed_label is None or obj_labels.get(managed_label[0]) == managed_label[1]:
            report.unexpected.append(key)
    report.missing.sort()
    report.unexpected.sort()
    return report


def compared(rendered: list[Obj]) -> list[Obj]:
    """The rendered objects ``status`` compares: those of the kinds a model's rollout renders, in models' namespaces."""
    namespaces = {o["metadata"]["namespace"] for o in rendered if o["kind"] == "InferenceService"}
    return [
        o for o in rendered if o["kind"] in COMPARED_KINDS and o["metadata"].get("namespace") in namespaces
    ]


def stack_status(rendered: list[Obj], live: list[Obj], *, stack: str) -> StatusReport:
    """Status and drift of a stack's models against the live objects of their namespaces.

    ``rendered`` is the stack rendered under its lock (what Git says is deployed).
    """
    wanted = compared(rendered)
    live_objects = [o for o in live if o.get("kind") in COMPARED_KINDS]
    report = drift(wanted, live_objects, managed_label=(LABEL_STACK, stack))
    isvcs = {key_of(o) for o in wanted if o["kind"] == "InferenceService"}
    report.models = [model_status(o) for o in sorted(live_objects, key=key_of) if key_of(o) in isvcs]
    return report


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def format_report(report: StatusReport) -> str:
    """A plain-text report: one line per model, then drift in the shape of ``pulumi preview --diff``.

    ``+`` an object Git has and the cluster does not, ``-`` one the cluster has and Git does not,
    ``~`` a changed object with each field as ``path: live => rendered`` (what syncing would do).
    """
    lines: list[str] = []
    for m in report.models:
        state = "Ready" if m.ready else f"NotReady ({m.reason})"
        traffic = ", ".join(f"{name} {pct}%" for name, pct in m.traffic) or "-"
        line = f"{m.namespace}/{m.name}: {state}; latestReadyRevision {m.latest_ready_revision or '-'}; traffic {traffic}"
        if m.canaries:
            line += "; canaries " + ", ".join(
                f"{name} {pct}% {'ready' if ok else 'not ready'}" for name, ok, pct in m.canaries
            )
        lines.append(line)
    for key in report.missing:
        lines.append(f"+ {key} (in Git, not in the cluster)")
    for key in report.unexpected:
        lines.append(f"- {key} (in the cluster, not in Git)")
    for key, diffs in sorted(report.changed.items()):
        lines.append(f"~ {key}")
        for d in diffs:
            if d.live is None:
                lines.append(f"    + {d.path}: {_show(d.rendered)}")
            else:
                lines.append(f"    ~ {d.path}: {_show(d.live)} => {_show(d.rendered)}")
    if report.in_sync:
        lines.append("in sync")
    else:
        counts = [
            f"{len(report.changed)} changed" if report.changed else "",
            f"{len(report.missing)} missing" if report.missing else "",
            f"{len(report.unexpected)} unexpected" if report.unexpected else "",
        ]
        lines.append(f"drift: {', '.join(c for c in counts if c)} (live => Git)")
    return "\n".join(lines) + "\n"


def to_dict(report: StatusReport, *, stack: str, file: str, lock: str) -> dict[str, Any]:
    """The JSON report of ``modelplane status --output json``."""
    return {
        "schemaVersion": 1,
        "stack": stack,
        "file": file,
        "lock": lock,
        "inSync": report.in_sync,
        "models": [
            {
                "namespace": m.namespace,
                "name": m.name,
                "ready": m.ready,
                "reason": m.reason,
                "url": m.url,
                "latestReadyRevision": m.latest_ready_revision,
                "traffic": [{"target": t, "percent": p} for t, p in m.traffic],
                "canaries": [{"name": n, "ready": r, "trafficPercent": p} for n, r, p in m.canaries],
            }
            for m in report.models
        ],
        "missing": [_key_dict(k) for k in report.missing],
        "unexpected": [_key_dict(k) for k in report.unexpected],
        "changed": [
            {
                **_key_dict(key),
                "differences": [{"path": d.path, "rendered": d.rendered, "live": d.live} for d in diffs],
            }
            for key, diffs in sorted(report.changed.items())
        ],
    }


def _key_dict(key: ObjectKey) -> dict[str, Any]:
    return {"apiVersion": key.api_version, "kind": key.kind, "namespace": key.namespace, "name": key.name}


def read_live(namespaces: list[str], *, context: str | None = None) -> list[Obj]:
    """Read the objects ``status`` compares (``LIVE_KINDS``) in these namespaces with the ``kubernetes`` client.

    A kind the cluster does not serve (no Gateway API CRDs, say) is skipped: it holds nothing.
    """
    # The client takes about a second to import and only `modelplane status` needs it.
    try:
        from kubernetes import client, config  # noqa: PLC0415
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
        from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise PlatformError("the kubernetes Python client is not installed") from err
    try:
        api_client = config.new_client_from_config(context=context)  # type: ignore[no-untyped-call]
    except (ConfigException, FileNotFoundError) as err:
        raise PlatformError(
            f"cannot load kubeconfig{f' context {context!r}' if context else ''}: {err}"
        ) from err
    api = client.CustomObjectsApi(api_client)
    result: list[Obj] = []
    for group, version, plural, kind in LIVE_KINDS:
        for namespace in sorted(set(namespaces)):
            try:
                listing = api.list_namespaced_custom_object(group, version, namespace, plural)
            except ApiException as err:
                if err.status == 404:
                    continue
                raise PlatformError(
                    f"cannot list {kind}s in {namespace!r}: {err.status} {err.reason}"
                ) from err
            items: list[Obj] = listing.get("items", []) if isinstance(listing, dict) else []
            for item in items:
                item.setdefault("apiVersion", f"{group}/{version}")
                item.setdefault("kind", kind)
                result.append(item)
    return result
