"""`modelplane status`: live InferenceService status and drift, on API objects built to the CRD schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelplane import cli, status
from modelplane.build import build
from modelplane.kube import Obj
from modelplane.stack import load_stack
from modelplane.status import differences, drift, model_status, stack_status
from modelplane.validation import CrdSchemas
from tests.conftest import STACKS

DEV = STACKS / "dev.yaml"


def _rendered() -> list[Obj]:
    return build(load_stack(DEV)).objects


def _isvcs() -> list[Obj]:
    return [o for o in _rendered() if o["kind"] == "InferenceService"]


def _live(obj: Obj, *, ready: bool = True, **status_fields: Any) -> Obj:
    """What the API server returns for a rendered object: server metadata, defaults and status added."""
    live = copy.deepcopy(obj)
    live["metadata"] |= {
        "uid": "0f5c1f5e-2c59-4c2e-9a4e-1c1c1c1c1c1c",
        "resourceVersion": "4711",
        "generation": 2,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "finalizers": ["inferenceservice.finalizers"],
    }
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
    assert (
        "changed: InferenceService fraud/churn-xgb: spec.predictor.minReplicas: rendered 0, live 5"
        in capsys.readouterr().out
    )


def test_cli_exit_2_on_input_error(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", str(tmp_path / "nope.yaml")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_exit_2_without_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert cli.main(["status", str(DEV)]) == 2
    assert capsys.readouterr().err.startswith("modelplane: cannot load kubeconfig")
