"""`modelplane status`: live InferenceService status and drift, on API objects built to the CRD schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from modelplane import cli, status
from modelplane.build import build
from modelplane.kube import Obj
from modelplane.rollout import state
from modelplane.rollout.lock import lock_path, read_lock, write_lock
from modelplane.stack import load_stack
from modelplane.status import differences, drift, model_status, stack_status
from modelplane.validation import CrdSchemas
from tests.conftest import STACKS
from tests.rollout.builders import T0, T1, T2, bump, desired, stack_data, write_stack
from tests.rollout.test_compile import PHASES, SHADOW, scenario

DEV = STACKS / "dev.yaml"


def _rendered() -> list[Obj]:
    return build(load_stack(DEV)).objects


SERVER_METADATA = {
    "uid": "0f5c1f5e-2c59-4c2e-9a4e-1c1c1c1c1c1c",
    "resourceVersion": "4711",
    "generation": 2,
    "creationTimestamp": "2026-01-01T00:00:00Z",
}
"""What the API server adds to every object's metadata."""


def _isvcs() -> list[Obj]:
    return [o for o in _rendered() if o["kind"] == "InferenceService"]


def _live(obj: Obj, *, ready: bool = True, **status_fields: Any) -> Obj:
    """What the API server returns for a rendered object: server metadata, defaults and status added."""
    live = copy.deepcopy(obj)
    live["metadata"] |= SERVER_METADATA | {"finalizers": ["inferenceservice.finalizers"]}
    live["spec"]["predictor"]["model"]["runtimeVersion"] = "defaulted-by-server"
    name = obj["metadata"]["name"]
    live["status"] = {
        "url": f"http://{name}-fraud.dev.modelplane.local",
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "" if ready else "RevisionMissing",
            }
        ],
        "components": {
            "predictor": {
                "latestReadyRevision": f"{name}-predictor-00002",
                "traffic": [
                    {"revisionName": f"{name}-predictor-00002", "percent": 90, "latestRevision": True},
                    {
                        "revisionName": f"{name}-predictor-00001",
                        "percent": 10,
                        "tag": "prev",
                        "latestRevision": False,
                    },
                ],
            }
        },
        **status_fields,
    }
    return live


def test_fixtures_match_the_crd_schema(crd_schemas: CrdSchemas) -> None:
    for obj in _isvcs():
        assert (
            crd_schemas.validate(
                _live(obj, canaryStatuses=[{"name": "c", "ready": True, "trafficPercent": 10}])
            )
            == []
        )


def test_in_sync_ignores_server_defaulted_fields() -> None:
    report = stack_status(_rendered(), [_live(o) for o in _isvcs()], stack="dev")
    assert report.in_sync
    assert [m.name for m in report.models] == ["churn-xgb", "fraud-detector", "iris-lgbm"]


def test_model_status_reads_readiness_revision_and_traffic() -> None:
    m = model_status(
        _live(_isvcs()[0], canaryStatuses=[{"name": "cand", "ready": False, "trafficPercent": 25}])
    )
    assert m.ready is True
    assert m.latest_ready_revision == "churn-xgb-predictor-00002"
    assert m.traffic == (("churn-xgb-predictor-00002 (latest)", 90), ("prev", 10))
    assert m.canaries == (("cand", False, 25),)


def test_not_ready_model_reports_its_reason() -> None:
    m = model_status(_live(_isvcs()[0], ready=False))
    assert (m.ready, m.reason) == (False, "RevisionMissing")


def test_missing_model_is_drift() -> None:
    report = stack_status(_rendered(), [_live(o) for o in _isvcs()[1:]], stack="dev")
    assert [str(k) for k in report.missing] == ["InferenceService fraud/churn-xgb"]
    assert not report.in_sync


def test_unexpected_model_of_this_stack_is_drift_but_others_are_not() -> None:
    ours = _live(_isvcs()[0])
    ours["metadata"]["name"] = "left-over"
    theirs = copy.deepcopy(ours)
    theirs["metadata"]["name"] = "someone-elses"
    theirs["metadata"]["labels"] = {"team": "other"}
    report = stack_status(_rendered(), [_live(o) for o in _isvcs()] + [ours, theirs], stack="dev")
    assert [str(k) for k in report.unexpected] == ["InferenceService fraud/left-over"]


def test_changed_spec_field_is_drift_with_both_values() -> None:
    live = [_live(o) for o in _isvcs()]
    live[0]["spec"]["predictor"]["maxReplicas"] = 9
    report = stack_status(_rendered(), live, stack="dev")
    ((key, diffs),) = report.changed.items()
    assert str(key) == "InferenceService fraud/churn-xgb"
    assert [(d.path, d.rendered, d.live) for d in diffs] == [("spec.predictor.maxReplicas", 2, 9)]


def test_canonical_quantities_are_not_drift() -> None:
    assert differences({"cpu": 1, "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}) == []
    assert differences({"on": True}, {"on": "true"}) != []


def test_resource_quantities_compare_by_value_as_kserves_webhook_reencodes_them() -> None:
    # Seen against KServe's real defaulting webhook (tests/cluster): a transformer's 0.5 CPU comes back as 500m.
    rendered = {"resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}}}
    assert differences(rendered, {"resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}) == []
    assert [
        d.path for d in differences(rendered, {"resources": {"limits": {"cpu": "600m", "memory": "1Gi"}}})
    ] == ["resources.limits.cpu"]
    assert differences({"image": "0.5"}, {"image": "500m"}) != []


def test_drift_of_any_kind() -> None:
    rendered = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "n"},
            "data": {"k": "v"},
        }
    ]
    live = copy.deepcopy(rendered)
    live[0]["data"]["k"] = "w"
    assert [d.path for d in drift(rendered, live).changed[next(iter(drift(rendered, live).changed))]] == [
        "data.k"
    ]


@pytest.fixture
def live_cluster(monkeypatch: pytest.MonkeyPatch) -> list[Obj]:
    objects = [_live(o) for o in _isvcs()]

    def read_live(namespaces: list[str], *, context: str | None = None) -> list[Obj]:
        assert namespaces and context in (None, "kind-modelplane")
        return objects

    monkeypatch.setattr(status, "read_live", read_live)
    return objects


def test_cli_exit_0_in_sync(live_cluster: list[Obj], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", str(DEV), "--context", "kind-modelplane"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("in sync\n")
    assert "fraud/churn-xgb: Ready; latestReadyRevision churn-xgb-predictor-00002" in out


def test_cli_exit_3_on_drift(live_cluster: list[Obj], capsys: pytest.CaptureFixture[str]) -> None:
    live_cluster[0]["spec"]["predictor"]["minReplicas"] = 5
    assert cli.main(["status", str(DEV)]) == 3
    out = capsys.readouterr().out
    assert "~ InferenceService fraud/churn-xgb\n    ~ spec.predictor.minReplicas: 5 => 0\n" in out
    assert out.endswith("drift: 1 changed (live => Git)\n")


def test_cli_exit_2_on_input_error(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", str(tmp_path / "nope.yaml")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_exit_2_without_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert cli.main(["status", str(DEV)]) == 2
    assert capsys.readouterr().err.startswith("modelplane: cannot load kubeconfig")


# --- drift against the lock: in sync at every phase of every rollout ---------------------------


def _as_served(obj: Obj) -> Obj:
    """A rendered object as the API server returns it: server metadata, defaults and a status."""
    live = copy.deepcopy(obj)
    live["metadata"] |= SERVER_METADATA
    if obj["kind"] == "InferenceService":
        live["spec"]["predictor"].setdefault("model", {})["runtimeVersion"] = "defaulted-by-server"
        live["status"] = {
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-01T10:05:00Z"}],
            "url": f"http://{obj['metadata']['name']}.team.models.example.com",
        }
        canaries = obj["spec"].get("canary") or []
        if canaries:
            live["status"]["canaryStatuses"] = [
                {"name": c["predictor"]["name"], "ready": True, "trafficPercent": c["trafficPercent"]}
                for c in canaries
            ]
    return live


def _kserve_child_route(isvc: Obj) -> Obj:
    """The HTTPRoute KServe creates for a Standard-mode model: the model's labels and an owner."""
    meta = isvc["metadata"]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": f"{meta['name']}-predictor",
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "serving.kserve.io/v1beta1",
                    "kind": "InferenceService",
                    "name": meta["name"],
                    "uid": SERVER_METADATA["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"parentRefs": [{"name": "kserve-ingress-gateway", "namespace": "kserve"}]},
    }


def _synced(mode: str, phase: str, rollout: dict[str, Any] | None = None) -> tuple[list[Obj], list[Obj]]:
    """The render under the lock, and a cluster that a GitOps engine synced to it."""
    args, lock = scenario(mode, phase, rollout)
    objects = build(args, lock=lock).objects
    live = [_as_served(o) for o in status.compared(objects)]
    live += [_kserve_child_route(o) for o in live if o["kind"] == "InferenceService" and mode == "standard"]
    return objects, live


CASES = [(mode, phase, None) for mode in ("knative", "standard", "modelmesh") for phase in PHASES] + [
    ("standard", "started", SHADOW),
    ("standard", "started", {"strategy": "ab", "abSplit": 30}),
]


@pytest.mark.parametrize(
    ("mode", "phase", "rollout"), CASES, ids=[f"{m}-{p}-{r and r['strategy']}" for m, p, r in CASES]
)
def test_a_synced_cluster_is_in_sync_at_every_phase(
    mode: str, phase: str, rollout: dict[str, Any] | None, crd_schemas: CrdSchemas
) -> None:
    objects, live = _synced(mode, phase, rollout)
    assert [problem for o in live for problem in crd_schemas.validate(o)] == []
    report = stack_status(objects, live, stack="test")
    assert (report.missing, report.unexpected, report.changed) == ([], [], {})


@pytest.mark.parametrize(
    ("mode", "phase"), [("standard", "started"), ("standard", "rolled-back"), ("modelmesh", "started")]
)
def test_the_render_without_the_lock_calls_a_synced_cluster_drifted(mode: str, phase: str) -> None:
    # What `status` compared with before: the stack rendered as if nothing were rolling out.
    args, _ = scenario(mode, phase)
    _, live = _synced(mode, phase)
    assert not stack_status(build(args).objects, live, stack="test").in_sync


def test_status_cli_reads_the_lock(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = stack_data("standard", "modelmesh")
    path = write_stack(tmp_path, data)
    lock = state.apply(None, desired(data), stack="test", now=T0)
    head = bump(bump(data, "std", "v2"), "mesh", "v2")
    path.write_text(yaml.safe_dump(head, sort_keys=False))
    write_lock(state.apply(lock, desired(head), stack="test", now=T1), lock_path(path))
    served = [
        _as_served(o)
        for o in status.compared(build(load_stack(path), lock=read_lock(lock_path(path))).objects)
    ]
    monkeypatch.setattr(status, "read_live", lambda namespaces, *, context=None: served)
    assert cli.main(["status", str(path)]) == 0
    assert capsys.readouterr().out.endswith("in sync\n")
    assert cli.main(["rollout", "advance", str(path), "--skip-gates", "--now", T2]) == 0
    capsys.readouterr()
    assert cli.main(["status", str(path)]) == 3  # Git moved on (50%); the cluster has not synced yet
    out = capsys.readouterr().out
    assert "~ InferenceService team/std\n    ~ spec.canary[0].trafficPercent: 10 => 25\n" in out
