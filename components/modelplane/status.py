"""Live status of a stack's InferenceServices, and drift between what is rendered and what runs.

``modelplane status FILE`` answers two questions without a Pulumi state or a GitOps engine:
is each model ready (and where does its traffic go), and does the cluster still hold what
the stack renders? The logic is pure over API objects (plain dicts as the API server returns
them); ``read_live`` is the thin part that fetches them with the ``kubernetes`` client.

Drift compares only the fields modelplane renders: what the API server or a webhook adds
(``status``, ``metadata.uid``, defaulted fields such as a predictor's ``runtimeVersion``) is
not drift, since the rendered object never says anything about it (failure mode 12).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modelplane.errors import PlatformError
from modelplane.kube import LABEL_STACK, Obj, ObjectKey, key_of
from modelplane.types import parse_quantity

ISVC_API_VERSION = "serving.kserve.io/v1beta1"
ISVC_GROUP = "serving.kserve.io"


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
    unexpected only when it carries ``managed_label`` (this stack's label): objects others
    created in the same namespaces are none of this stack's business.
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
        obj_labels = obj.get("metadata", {}).get("labels") or {}
        if managed_label is None or obj_labels.get(managed_label[0]) == managed_label[1]:
            report.unexpected.append(key)
    report.missing.sort()
    report.unexpected.sort()
    return report


def stack_status(rendered: list[Obj], live: list[Obj], *, stack: str) -> StatusReport:
    """Status and drift of a stack's InferenceServices against the live ones of their namespaces."""
    isvcs = [o for o in rendered if o["kind"] == "InferenceService"]
    live_isvcs = [o for o in live if o.get("kind") == "InferenceService"]
    report = drift(isvcs, live_isvcs, managed_label=(LABEL_STACK, stack))
    wanted = {key_of(o) for o in isvcs}
    report.models = [model_status(o) for o in sorted(live_isvcs, key=key_of) if key_of(o) in wanted]
    return report


def format_report(report: StatusReport) -> str:
    """A plain-text report: one line per model, then drift."""
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
        lines.append(f"missing: {key}")
    for key in report.unexpected:
        lines.append(f"unexpected: {key}")
    for key, diffs in sorted(report.changed.items()):
        for d in diffs:
            lines.append(f"changed: {key}: {d.path}: rendered {d.rendered!r}, live {d.live!r}")
    lines.append("in sync" if report.in_sync else "drift")
    return "\n".join(lines) + "\n"


def read_live(namespaces: list[str], *, context: str | None = None) -> list[Obj]:
    """Read the InferenceServices of these namespaces with the ``kubernetes`` client."""
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
    for namespace in sorted(set(namespaces)):
        try:
            listing = api.list_namespaced_custom_object(ISVC_GROUP, "v1beta1", namespace, "inferenceservices")
        except ApiException as err:
            if err.status == 404:
                continue
            raise PlatformError(
                f"cannot list InferenceServices in {namespace!r}: {err.status} {err.reason}"
            ) from err
        items: list[Obj] = listing.get("items", []) if isinstance(listing, dict) else []
        for item in items:
            item.setdefault("apiVersion", ISVC_API_VERSION)
            item.setdefault("kind", "InferenceService")
            result.append(item)
    return result
