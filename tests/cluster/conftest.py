"""Fixtures for the cluster tests: the built tools, and one running platform per example stack.

Each example stack gets a fresh control plane (module-scoped and parametrized, so pytest runs
one stack's tests together and only one control plane is alive at a time), KServe and Knative
configured as that stack configures them, and kwok nodes shaped like its GPU pools.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import build, load_stack
from modelplane.build import PlatformObjects
from modelplane.rollout.lock import Lock, empty_lock, lock_path, read_lock
from modelplane.serving_platform import ServingPlatformArgs
from tests.cluster.controlplane import ControlPlane, control_plane, namespaces_available, wait_for
from tests.cluster.kubectl import ApplyError, Kube, identity
from tests.cluster.nodes import pool_nodes
from tests.cluster.platform import (
    KSERVE_NAMESPACE,
    keda_crds,
    knative_env,
    knative_modules,
    knative_objects,
    kserve_objects,
    loopback_twin,
    module_dir,
    reconciled_webhooks,
    start_keda,
    start_kserve,
    webhook_secret,
)
from tests.conftest import CRD_DIR, EXAMPLE_STACKS, REFERENCE_DIR, ROOT

CHARTS_DIR = REFERENCE_DIR / "charts"
BUILD_SCRIPT = ROOT / "scripts" / "build_tools.py"
OWN_CRD_GROUPS = ("serving.kserve.io", "serving.knative.dev")
"""CRDs that come from the pinned KServe chart and Knative module, not from ../shared."""


@pytest.fixture(scope="session")
def tool_bins() -> dict[str, Path]:
    if shutil.which("go") is None:
        pytest.skip(
            "Go is not installed: the cluster tests build kube-apiserver, KServe and Knative from Go modules"
        )
    reason = namespaces_available()
    if reason:
        pytest.skip(f"cannot isolate the control plane's webhooks in a network namespace: {reason}")
    if not CRD_DIR.is_dir() or not CHARTS_DIR.is_dir():
        pytest.skip(
            f"upstream reference data not found at {REFERENCE_DIR.parent} (the shared/ directory beside the project)"
        )
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "build", "--json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"building the control-plane tools failed:\n{result.stderr[-4000:]}")
    return {name: Path(d) for name, d in json.loads(result.stdout).items()}


@dataclass
class Platform:
    """A running control plane with KServe and Knative, and the stack it serves."""

    cp: ControlPlane
    kube: Kube
    stack_file: Path
    args: ServingPlatformArgs
    rendered: PlatformObjects
    applied: dict[str, str] = field(default_factory=dict)
    """identity -> resourceVersion after the first apply."""
    refused: dict[str, str] = field(default_factory=dict)
    """identity -> the API server's message for objects it refused."""


def shared_crds() -> list[dict[str, Any]]:
    crds = []
    for path in sorted(CRD_DIR.glob("*/*.yaml")):
        if path.parent.name in OWN_CRD_GROUPS:
            continue
        crds += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return crds


def apply_all(kube: Kube, objects: list[dict[str, Any]]) -> None:
    problems = []
    for obj in objects:
        try:
            kube.apply(obj)
        except ApplyError as error:
            problems.append(str(error))
    if problems:
        raise ApplyError("\n".join(problems))


def wait_established(cp: ControlPlane, kube: Kube, crds: list[dict[str, Any]]) -> None:
    names = [c["metadata"]["name"] for c in crds]

    def established() -> bool:
        for name in names:
            crd = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
            conditions = {c["type"]: c["status"] for c in (crd or {}).get("status", {}).get("conditions", [])}
            if conditions.get("Established") != "True":
                return False
        return True

    wait_for("CRDs to be established", established, timeout=120, alive=cp.check_alive)
    kube.client.resources.invalidate_cache()


def install_platform(cp: ControlPlane, kube: Kube, rendered: PlatformObjects, stack_file: Path) -> None:
    """CRDs, KServe and Knative as the stack configures them; kwok nodes; then the controllers."""
    releases = {c.release: c for c in rendered.charts}
    knative_release = releases.get("knative-operator")
    knative_serving = next(
        (o for o in (knative_release.objects if knative_release else []) if o["kind"] == "KnativeServing"),
        None,
    )
    ca = cp.certs.path("ca.crt").read_bytes()
    kserve = kserve_objects(CHARTS_DIR, releases, ca)
    modules = knative_modules(module_dir("knative.dev/serving", _wrapper_version("knative")))
    knative = knative_objects(modules, (knative_serving or {}).get("spec", {}).get("config", {}))
    crds = shared_crds() + [o for o in kserve if o["kind"] == "CustomResourceDefinition"] + knative["crds"]
    if "keda" in cp.bins:  # the operator watches all of its kinds: its CRDs at the built version
        crds += keda_crds(module_dir("github.com/kedacore/keda/v2", _wrapper_version("keda")))
    apply_all(kube, crds)
    wait_established(cp, kube, crds)
    # Each upstream release creates its namespace (Flux's install.createNamespace, Helm's
    # --create-namespace); modelplane's objects in it (ModelMesh's etcd) rely on that.
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        for name in sorted({KSERVE_NAMESPACE, *(c.namespace for c in rendered.charts)})
    ]
    apply_all(kube, namespaces + knative["namespace"])
    apply_all(
        kube, [o for o in kserve if o["kind"] == "ConfigMap"] + knative["configmaps"] + [webhook_secret(cp)]
    )
    apply_all(kube, pool_nodes(stack_file))
    # Knative's webhook first: it fills in its webhook configurations, which then get loopback twins.
    apply_all(kube, knative["webhooks"])
    cp.start("knative-webhook", [cp.binary("webhook")], env=knative_env(cp, "webhook"))
    names = [(o["kind"], o["metadata"]["name"]) for o in knative["webhooks"]]
    apply_all(kube, [loopback_twin(o, ca) for o in reconciled_webhooks(cp, names)])
    cp.start("knative-controller", [cp.binary("controller")], env=knative_env(cp, "controller"))
    apply_all(kube, [o for o in kserve if o["kind"].endswith("WebhookConfiguration")])
    start_kserve(cp)
    if "keda" in releases and "keda" in cp.bins:
        start_keda(cp, releases["keda"].namespace)
    wait_for(
        "KServe's manager to be ready",
        lambda: _http_ok(cp, "http://127.0.0.1:8081/readyz"),
        timeout=120,
        alive=cp.check_alive,
    )


def _http_ok(cp: ControlPlane, url: str) -> bool:
    result = subprocess.run(
        [
            "nsenter",
            f"--net={cp.netns}",
            "--",
            sys.executable,
            "-c",
            f"import urllib.request as u; u.urlopen({url!r}, timeout=5)",
        ],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _wrapper_version(name: str) -> str:
    sys.path.insert(0, str(BUILD_SCRIPT.parent))
    try:
        import build_tools  # noqa: PLC0415 (scripts/ is no package: imported from its path)
    finally:
        sys.path.pop(0)
    return str(build_tools.WRAPPERS[name].version)


def deployed_lock(stack_file: Path, args: ServingPlatformArgs) -> Lock:
    """The lock ``modelplane render`` renders under: the committed one, or an empty one."""
    return read_lock(lock_path(stack_file), stack=args.stack.name) or empty_lock(args.stack.name)


def user_secrets(rendered: PlatformObjects) -> list[dict[str, Any]]:
    """The storage secrets a stack names by reference, as its users create them (dummy keys).

    modelplane never renders a secret value; KServe's pod mutator reads the secrets a model's
    service account lists and refuses the pod while one is missing.
    """
    wanted = {
        (o["metadata"]["namespace"], name["name"])
        for o in rendered.objects
        if o["kind"] == "ServiceAccount"
        for name in o.get("secrets", [])
    }
    secrets: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
        }
        for namespace, name in sorted(wanted)
    ]
    # A `storage: {key: ...}` model reads its entry of the namespace's `storage-config` secret;
    # KServe's pod mutator refuses the pod while it is missing (pkg/credentials/
    # service_account_credentials.go:117-137) and reads the entry as JSON with a type.
    entries: dict[str, set[str]] = {}
    for obj in rendered.objects:
        if obj["kind"] == "InferenceService":
            key = obj["spec"]["predictor"].get("model", {}).get("storage", {}).get("key")
            if key:
                entries.setdefault(obj["metadata"]["namespace"], set()).add(key)
    entry = json.dumps({"type": "s3", "access_key_id": "test", "secret_access_key": "test"})
    secrets += [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "storage-config", "namespace": namespace},
            "stringData": dict.fromkeys(sorted(keys), entry),
        }
        for namespace, keys in sorted(entries.items())
    ]
    return secrets


def user_claims(rendered: PlatformObjects) -> list[dict[str, Any]]:
    """The PersistentVolumeClaims ``pvc://`` models name, as their users create them, each bound.

    Each claim is bound to a PersistentVolume of its own (an NFS volume nothing mounts: kwok
    runs no kubelet), so the scheduler places the model's pods as it would on a real cluster.
    """
    wanted: set[tuple[str, str]] = set()

    def walk(node: Any, namespace: str) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value, namespace)
        elif isinstance(node, list):
            for value in node:
                walk(value, namespace)
        elif isinstance(node, str) and node.startswith("pvc://"):
            wanted.add((namespace, node.removeprefix("pvc://").split("/", 1)[0]))

    for obj in rendered.objects:
        if obj["kind"] == "InferenceService":
            walk(obj["spec"], obj["metadata"]["namespace"])
    objects: list[dict[str, Any]] = []
    for namespace, claim in sorted(wanted):
        volume = f"{namespace}-{claim}"
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": volume},
                "spec": {
                    "capacity": {"storage": "1Ti"},
                    "accessModes": ["ReadOnlyMany", "ReadWriteOnce"],
                    "nfs": {"server": "nfs.invalid", "path": f"/{claim}"},
                    "claimRef": {"namespace": namespace, "name": claim},
                    "storageClassName": "",
                },
            }
        )
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": namespace},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "resources": {"requests": {"storage": "1Ti"}},
                    "storageClassName": "",
                    "volumeName": volume,
                },
            }
        )
    return objects


def user_priority_classes(rendered: PlatformObjects) -> list[dict[str, Any]]:
    """The PriorityClasses models name (``predictor.priorityClassName``) that the stack does not render.

    A platform team creates them; without one the API server refuses the model's pods
    ("no PriorityClass with name ... was found").
    """
    named: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "priorityClassName" and isinstance(value, str):
                    named.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for obj in rendered.objects:
        if obj["kind"] == "InferenceService":
            walk(obj["spec"])
    rendered_names = {o["metadata"]["name"] for o in rendered.objects if o["kind"] == "PriorityClass"}
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": 1000,
        }
        for name in sorted(named - rendered_names)
    ]


def cluster_runtimes(args: ServingPlatformArgs) -> list[dict[str, Any]]:
    """The ClusterServingRuntimes a stack's ``externalRuntimes`` name, as KServe's release installs them.

    Read from the reference copy of KServe's ``config/runtimes`` (images set as its
    kustomization sets them), with the formats the stack says the cluster's copy serves (a
    platform team may change their priority); a runtime not there is left out, and its models'
    tests say so.
    """
    directory = REFERENCE_DIR / "runtimes"
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    images = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in kustomization.get("images", [])}
    objects: list[dict[str, Any]] = []
    for runtime in args.external_runtimes:
        path = directory / f"{runtime.name}.yaml"
        if runtime.kind != "ClusterServingRuntime" or not path.is_file():
            continue
        obj = yaml.safe_load(path.read_text(encoding="utf-8"))
        obj["spec"]["supportedModelFormats"] = [
            f.model_dump(by_alias=True, exclude_none=True) for f in runtime.formats
        ]
        for container in obj["spec"]["containers"]:
            container["image"] = images.get(container["image"].split(":", 1)[0], container["image"])
        objects.append(obj)
    return objects


@contextlib.contextmanager
def running_platform(stack_file: Path, bins: dict[str, Path], workdir: Path) -> Iterator[Platform]:
    """A control plane with KServe and Knative as ``stack_file`` configures them, its objects applied.

    Objects are applied as ``modelplane render`` renders them (under the stack's lock), one by
    one in render order; what the API server refuses is recorded in ``Platform.refused``.
    """
    args = load_stack(stack_file)
    rendered = build(args, lock=deployed_lock(stack_file, args))
    # The cluster the stack describes: image volumes only where it says it has them.
    gates = {"ImageVolume": True} if args.control_plane.image_volume else {}
    with control_plane(workdir, bins, gates) as cp:
        kube = Kube(cp.kubeconfig)
        install_platform(cp, kube, rendered, stack_file)
        platform = Platform(cp, kube, stack_file, args, rendered)
        secrets_applied = False
        for obj in rendered.objects:
            if obj["kind"] != "Namespace" and not secrets_applied:
                # What the stack names and its users create: secrets, claims, priority classes,
                # the cluster's runtimes.
                apply_all(
                    kube,
                    user_secrets(rendered)
                    + user_claims(rendered)
                    + user_priority_classes(rendered)
                    + cluster_runtimes(args),
                )
                secrets_applied = True
            try:
                applied = kube.apply(obj)
                platform.applied[identity(obj)] = applied["metadata"]["resourceVersion"]
            except ApplyError as error:
                platform.refused[identity(obj)] = str(error)
        yield platform


@pytest.fixture(scope="module", params=EXAMPLE_STACKS, ids=[p.stem for p in EXAMPLE_STACKS])
def platform(
    request: pytest.FixtureRequest, tool_bins: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    stack_file: Path = request.param
    with running_platform(
        stack_file, tool_bins, tmp_path_factory.mktemp(f"cluster-{stack_file.stem}")
    ) as platform:
        yield platform
