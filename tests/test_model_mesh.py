"""The model mesh: upstream install from its tag, etcd per tier, mesh runtimes against upstream, checks."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from modelplane import mesh_etcd, model_mesh
from modelplane.build import build
from modelplane.errors import StackError
from modelplane.model_mesh import ModelMeshArgs
from modelplane.render import argocd_objects, flux_objects
from modelplane.resources import mesh
from modelplane.resources.mesh import ModelMesh
from modelplane.resources.platform import ServingPlatform
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import parse_stack
from modelplane.upstream import Versions
from modelplane.validation import CrdSchemas
from tests.conftest import REFERENCE_DIR, schema_problems
from tests.pulumi_mocks import ResourceRecorder as _Recorder
from tests.pulumi_mocks import install_recorder

POOL = {
    "name": "l4",
    "product": "NVIDIA-L4",
    "gpusPerNode": 4,
    "sharing": {"mode": "time-slicing", "replicas": 4},
    "minNodes": 1,
    "maxNodes": 2,
}


def _mesh_model(name: str, runtime: str = "mlserver", **extra: Any) -> dict[str, Any]:
    fmt = {"name": "sklearn", "version": "1"} if runtime == "mlserver" else {"name": "onnx", "version": "1"}
    return {
        "name": name,
        "tenant": "team",
        "runtime": runtime,
        "deploymentMode": "modelmesh",
        "format": fmt,
        "storage": {"uri": f"s3://b/{name}", "secretName": "s3-prod"},
        "version": "v1",
        **extra,
    }


def _stack(
    tier: str = "prod", mesh: dict[str, Any] | None = None, models: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "stack": {"name": "t", "tier": tier},
        "modelMesh": {"enabled": True} | (mesh or {}),
        "gpuPools": [copy.deepcopy(POOL)],
        "tenants": [{"name": "team"}],
        "models": models if models is not None else [_mesh_model("a"), _mesh_model("b", "triton")],
    }


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(StackError) as err:
        parse_stack(data, "s.yaml")
    return err.value.problems


def _release(tier: str = "prod", **mesh: Any) -> Any:
    return model_mesh.release(
        ModelMeshArgs.model_validate({"enabled": True} | mesh), Versions(), tier=tier, stack="t"
    )


def test_release_installs_cluster_scope_rbac_then_default_at_the_pinned_tag() -> None:
    release = _release()
    assert (release.repository, release.ref, release.paths) == (
        "https://github.com/kserve/modelmesh-serving",
        "v0.12.0",
        ("config/rbac/cluster-scope", "config/default"),
    )
    assert release.namespace == "modelmesh-serving"


def test_release_drops_the_kserve_crds_modelmesh_bundles() -> None:
    deleted = {
        p.target["name"]
        for p in _release().patches
        if p.target["kind"] == "CustomResourceDefinition" and yaml.safe_load(p.patch)["$patch"] == "delete"
    }
    assert deleted == {
        "inferenceservices.serving.kserve.io",
        "servingruntimes.serving.kserve.io",
        "clusterservingruntimes.serving.kserve.io",
    }


@pytest.mark.parametrize(("tier", "replicas"), [("dev", 1), ("staging", 2), ("prod", 2)])
def test_controller_is_hardened_and_scaled_per_tier(tier: str, replicas: int) -> None:
    patch = next(p for p in _release(tier).patches if p.target["kind"] == "Deployment")
    spec = yaml.safe_load(patch.patch)["spec"]
    assert spec["replicas"] == replicas
    assert spec["template"]["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 2000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = spec["template"]["spec"]["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["env"] == [{"name": "ETCD_SECRET_NAME", "value": "model-serving-etcd"}]


def test_overlay_sets_the_namespace_inside_kustomize() -> None:
    overlay = _release().overlay("config/default")
    assert overlay["namespace"] == "modelmesh-serving"
    assert overlay["resources"] == ["https://github.com/kserve/modelmesh-serving//config/default?ref=v0.12.0"]
    assert len(overlay["patches"]) == 4


def test_flux_output_is_a_git_repository_at_the_tag_and_ordered_kustomizations() -> None:
    objects = flux_objects([_release()], stack="t")
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds == [
        ("Namespace", "modelmesh-serving"),
        ("GitRepository", "modelmesh-source"),
        ("Kustomization", "modelmesh-cluster-scope"),
        ("Kustomization", "modelmesh-default"),
    ]
    assert objects[1]["spec"]["ref"] == {"tag": "v0.12.0"}
    default = objects[3]["spec"]
    assert default["dependsOn"] == [{"name": "modelmesh-cluster-scope"}]
    assert (default["path"], default["targetNamespace"]) == ("./config/default", "modelmesh-serving")


def test_gitops_objects_of_the_release_pass_schemas(crd_schemas: CrdSchemas) -> None:
    args = ServingPlatformArgs.model_validate(_stack())
    objects = flux_objects([_release()], stack="t") + argocd_objects([_release()], stack="t")
    assert schema_problems(objects, args, crd_schemas) == []


def _etcd(mode: str, tier_members: int = 3) -> dict[str, Any]:
    args = ModelMeshArgs.model_validate({"enabled": True, "etcd": {"mode": mode, "members": tier_members}})
    return {
        (o["kind"], o["metadata"]["name"]): o
        for o in mesh_etcd.objects(args.etcd, namespace=args.namespace, stack="t")
    }


def test_statefulset_etcd_has_three_members_tls_client_auth_and_volumes() -> None:
    objects = _etcd("statefulset")
    sts = objects[("StatefulSet", "modelmesh-etcd")]
    assert sts["spec"]["replicas"] == 3
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--client-cert-auth=true" in args and "--peer-client-cert-auth=true" in args
    assert (
        "--initial-cluster="
        + ",".join(
            f"modelmesh-etcd-{i}=https://modelmesh-etcd-{i}.modelmesh-etcd.modelmesh-serving.svc:2380"
            for i in range(3)
        )
        in args
    )
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"] == {"requests": {"storage": "10Gi"}}
    affinity = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert (
        affinity["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"]
        == "kubernetes.io/hostname"
    )


def test_statefulset_etcd_has_quorum_pdb_snapshots_and_certificates() -> None:
    objects = _etcd("statefulset")
    assert objects[("PodDisruptionBudget", "modelmesh-etcd")]["spec"]["minAvailable"] == 2
    assert objects[("CronJob", "modelmesh-etcd-snapshot")]["spec"]["schedule"] == "0 */6 * * *"
    certificates = sorted(name for kind, name in objects if kind == "Certificate")
    assert certificates == [
        "modelmesh-etcd-ca",
        "modelmesh-etcd-client",
        "modelmesh-etcd-peer",
        "modelmesh-etcd-server",
    ]


def test_quickstart_etcd_is_one_member_without_tls_or_volume() -> None:
    objects = _etcd("quickstart")
    sts = objects[("StatefulSet", "modelmesh-etcd")]
    assert sts["spec"]["replicas"] == 1
    assert "volumeClaimTemplates" not in sts["spec"]
    assert not any(kind in ("Certificate", "CronJob", "PodDisruptionBudget") for kind, _ in objects)


def test_external_etcd_renders_nothing() -> None:
    assert _etcd("external") == {}


def test_etcd_secret_is_referenced_never_rendered() -> None:
    objects = build(ServingPlatformArgs.model_validate(_stack())).objects
    assert not [o for o in objects if o["kind"] == "Secret"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            _stack("staging", {"etcd": {"mode": "quickstart"}}),
            "s.yaml: modelMesh.etcd.mode: the quickstart etcd (one member, no persistence, no TLS) is for the dev "
            "tier only; this stack's tier is 'staging': use statefulset or external (got \"quickstart\")",
        ),
        (
            _stack("prod", {"etcd": {"mode": "statefulset", "members": 1}}),
            "s.yaml: modelMesh.etcd.members: the prod tier needs an etcd quorum that survives losing a member: 3 or "
            "more members (or mode external) (got 1)",
        ),
        (
            _stack("prod", {"runtimes": {"sklearn": {"pods": 2}}}),
            's.yaml: modelMesh.runtimes.sklearn: not a mesh runtime (mesh runtimes: mlserver, triton) (got "sklearn")',
        ),
        (
            _stack("prod", {"runtimes": {"mlserver": {"gpu": 1, "pool": "l4"}}}),
            "s.yaml: modelMesh.runtimes.mlserver.gpu: runtime 'mlserver' cannot use GPUs (got 1)",
        ),
        (
            _stack("prod", models=[_mesh_model("a", resources={"memory": "2Gi"})]),
            "s.yaml: models[0].resources.memory: the model takes 2Gi but a modelplane-mlserver-mesh pod holds 896Mi "
            "of models (memory 1Gi minus buffer 128Mi); raise modelMesh.runtimes.mlserver.memory, or serve it in "
            'knative or standard mode (got "2Gi")',
        ),
    ],
    ids=[
        "quickstart-outside-dev",
        "one-member-in-prod",
        "not-a-mesh-runtime",
        "cpu-runtime-on-gpu",
        "model-too-big",
    ],
)
def test_mesh_inconsistency_is_refused(data: dict[str, Any], expected: str) -> None:
    assert expected in _errors(data)


def test_quickstart_in_dev_is_allowed_with_a_warning() -> None:
    rendered = build(ServingPlatformArgs.model_validate(_stack("dev", {"etcd": {"mode": "quickstart"}})))
    assert any(w.startswith("modelMesh.etcd: quickstart etcd is a single member") for w in rendered.warnings)


def test_model_serving_config_sets_pods_rest_proxy_and_scale_to_zero() -> None:
    objects = build(
        ServingPlatformArgs.model_validate(_stack(mesh={"podsPerRuntime": 3, "restProxy": False}))
    ).objects
    config = next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "model-serving-config"
    )
    assert config["metadata"]["namespace"] == "modelmesh-serving"
    data = yaml.safe_load(config["data"]["config.yaml"])
    assert (data["podsPerRuntime"], data["restProxy"], data["scaleToZero"]["enabled"]) == (
        3,
        {"enabled": False},
        True,
    )


def _runtime(stack: dict[str, Any], name: str) -> dict[str, Any]:
    objects = build(ServingPlatformArgs.model_validate(stack)).objects
    return next(o for o in objects if o["metadata"]["name"] == f"modelplane-{name}-mesh")


def _reference(name: str) -> dict[str, Any]:
    path = REFERENCE_DIR / "modelmesh-runtimes" / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(
            f"upstream ModelMesh runtimes not found at {path.parent} (the shared/ directory beside the project)"
        )
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(("runtime", "reference"), [("mlserver", "mlserver-1.x"), ("triton", "triton-2.x")])
def test_mesh_runtime_endpoints_and_adapter_match_upstream(runtime: str, reference: str) -> None:
    upstream = _reference(reference)["spec"]
    ours = _runtime(_stack(), runtime)["spec"]
    assert (ours["grpcEndpoint"], ours["grpcDataEndpoint"], ours["multiModel"]) == (
        upstream["grpcEndpoint"],
        upstream["grpcDataEndpoint"],
        True,
    )
    for key in ("serverType", "runtimeManagementPort", "modelLoadingTimeoutMillis"):
        assert ours["builtInAdapter"][key] == upstream["builtInAdapter"][key]
    assert ours["builtInAdapter"]["memBufferBytes"] == 128 * 2**20


def test_mlserver_mesh_environment_matches_upstream() -> None:
    upstream = {e["name"]: e["value"] for e in _reference("mlserver-1.x")["spec"]["containers"][0]["env"]}
    ours = {e["name"]: e["value"] for e in _runtime(_stack(), "mlserver")["spec"]["containers"][0]["env"]}
    assert ours == upstream


def test_triton_mesh_command_creates_its_model_repository_like_upstream() -> None:
    upstream = _reference("triton-2.x")["spec"]["containers"][0]
    ours = _runtime(_stack(), "triton")["spec"]["containers"][0]
    assert ours["command"] == upstream["command"]
    assert ours["args"][1].split() == upstream["args"][1].replace("'", "").split()
    assert ours["livenessProbe"]["exec"] == upstream["livenessProbe"]["exec"]


def test_mesh_runtime_memory_request_equals_limit_and_can_be_set_per_runtime() -> None:
    container = _runtime(_stack(mesh={"runtimes": {"mlserver": {"memory": "8Gi"}}}), "mlserver")["spec"][
        "containers"
    ][0]
    assert container["resources"]["requests"]["memory"] == container["resources"]["limits"]["memory"] == "8Gi"


def test_gpu_mesh_runtime_is_placed_on_its_pool() -> None:
    spec = _runtime(_stack(mesh={"runtimes": {"triton": {"pool": "l4", "gpu": 1, "pods": 2}}}), "triton")[
        "spec"
    ]
    assert spec["replicas"] == 2
    assert spec["nodeSelector"] == {"modelplane.dev/gpu-pool": "l4"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    ]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu.shared"] == "1"


def test_mesh_model_names_its_storage_key_and_gets_no_service_account() -> None:
    objects = build(ServingPlatformArgs.model_validate(_stack())).objects
    isvc = next(o for o in objects if o["kind"] == "InferenceService" and o["metadata"]["name"] == "a")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/secretKey"] == "s3-prod"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "ModelMesh"
    assert "serviceAccountName" not in isvc["spec"]["predictor"]
    assert not [o for o in objects if o["kind"] == "ServiceAccount"]


def test_mesh_tenant_may_reach_etcd() -> None:
    objects = build(ServingPlatformArgs.model_validate(_stack())).objects
    policy = next(
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and o["metadata"]["namespace"] == "team"
        and o["metadata"]["name"] == "allow-serving"
    )
    assert {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "modelmesh-serving"}}}],
        "ports": [{"port": 2379, "protocol": "TCP"}],
    } in policy["spec"]["egress"]


@pytest.mark.parametrize("mode", ["statefulset", "quickstart"])
def test_mesh_objects_pass_both_schema_checks(mode: str, crd_schemas: CrdSchemas) -> None:
    tier = "dev" if mode == "quickstart" else "prod"
    args = ServingPlatformArgs.model_validate(
        _stack(tier, {"etcd": {"mode": mode}, "runtimes": {"triton": {"pool": "l4", "gpu": 1}}})
    )
    assert schema_problems(build(args).objects, args, crd_schemas) == []


def _pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "StatefulSet":
            result.append(spec["template"]["spec"])
        elif obj["kind"] == "CronJob":
            result.append(spec["jobTemplate"]["spec"]["template"]["spec"])
    return result


def test_etcd_pods_meet_pod_security_restricted() -> None:
    pods = _pods(list(_etcd("statefulset").values()))
    assert len(pods) == 2
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert (sc["allowPrivilegeEscalation"], sc["capabilities"], sc["readOnlyRootFilesystem"]) == (
                False,
                {"drop": ["ALL"]},
                True,
            )
            assert container["resources"]["limits"] and container["resources"]["requests"]


@pytest.fixture
def recorder() -> _Recorder:
    return install_recorder()


@pulumi.runtime.test
def test_model_mesh_install_applies_each_path_through_its_overlay(recorder: _Recorder, tmp_path: Path) -> Any:
    release = _release()
    install = mesh.ModelMeshInstall("mm", release, overlay_root=tmp_path)

    def check(_: Any) -> None:
        directories = [r for r in recorder.resources if r.typ == "kubernetes:kustomize/v2:Directory"]
        assert [r.name for r in directories] == ["mm-modelmesh-cluster-scope", "mm-modelmesh-default"]
        assert "modelplane:index:ModelMeshInstall" in {r.typ for r in recorder.resources}
        overlay = yaml.safe_load(
            (Path(directories[1].inputs["directory"]) / "kustomization.yaml").read_text()
        )
        assert overlay == release.overlay("config/default")
        namespace = next(r for r in recorder.resources if r.typ == "kubernetes:core/v1:Namespace")
        assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    return install.release.urn.apply(check)


@pulumi.runtime.test
def test_model_mesh_component_registers_namespaced_objects(recorder: _Recorder) -> Any:
    objects = model_mesh.objects(ModelMeshArgs.model_validate({"enabled": True}), stack="t", tier="prod")
    component = ModelMesh("mesh", objects)

    def check(_: Any) -> None:
        kinds = sorted(
            r.typ.rsplit(":", 1)[-1] for r in recorder.resources if r.typ.startswith("kubernetes:")
        )
        assert kinds.count("Certificate") == 4
        assert kinds.count("StatefulSet") == 1
        assert "modelmesh-etcd-server" in {
            r.inputs["metadata"]["name"] for r in recorder.resources if r.typ.endswith(":Certificate")
        }

    return pulumi.Output.all(*(o.urn for o in component.objects.values())).apply(check)


def test_connection_template_lists_every_member_without_secret_values() -> None:
    mesh = ModelMeshArgs.model_validate({"enabled": True})
    template = mesh_etcd.connection_template(mesh.etcd, namespace=mesh.namespace)
    assert template["endpoints"].split(",") == [
        f"https://modelmesh-etcd-{i}.modelmesh-etcd.modelmesh-serving.svc:2379" for i in range(3)
    ]
    assert template["client_key"] == "<tls.key of secret modelmesh-etcd-client-tls>"


def test_catalog_mesh_runtimes_are_the_upstream_server_types() -> None:
    mesh_runtimes = {
        name: spec.mesh.server_type for name, spec in load_catalog(catalog_dir()).items() if spec.mesh
    }
    assert mesh_runtimes == {"mlserver": "mlserver", "triton": "triton"}


@pulumi.runtime.test
def test_serving_platform_installs_the_mesh_and_registers_its_groups(
    recorder: _Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    platform = ServingPlatform("t", ServingPlatformArgs.model_validate(_stack()))

    def check(_: Any) -> None:
        assert sorted(platform.groups) == [
            "control-plane",
            "gpu-pool",
            "model",
            "modelmesh",
            "monitoring",
            "runtime",
            "tenant",
        ]
        assert type(platform.groups["modelmesh"]).__name__ == "ModelMesh"
        assert type(platform.groups["gpu-pool"]).__name__ == "GpuRuntimePool"
        assert type(platform.groups["control-plane"]).__name__ == "PlatformConfig"
        assert platform.outputs["charts"]["modelmesh"] == "modelmesh-serving@v0.12.0"
        directories = sorted(
            r.name for r in recorder.resources if r.typ == "kubernetes:kustomize/v2:Directory"
        )
        assert directories == ["t-control-plane-modelmesh-cluster-scope", "t-control-plane-modelmesh-default"]

    urns = [r.urn for g in platform.groups.values() for r in g.objects.values()]
    return pulumi.Output.all(*urns, platform.control_plane.releases["modelmesh"].urn).apply(check)
