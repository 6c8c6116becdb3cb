"""A checker for the Pod Security Standards "restricted" profile, and KServe's pod merge.

Pod Security admission is a cluster feature; without a cluster, this module applies the
same rules (kubernetes.io/docs/concepts/security/pod-security-standards, the "restricted"
profile: every baseline control plus the restricted-only ones) to the pod templates
modelplane authors. KServe builds a model's pod from two objects, the ServingRuntime's
container and pod fields and the InferenceService predictor's, so ``predictor_pod`` merges
them as KServe does before the check.

Each violation is one line: ``<where>: <field path>: <rule> (got VALUE)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _containers(pod: Obj) -> list[tuple[str, Obj]]:
    return [
        (f"{field}[{c.get('name', i)}]", c)
        for field in CONTAINER_LISTS
        for i, c in enumerate(pod.get(field) or [])
    ]


def _probe_hosts(container: Obj) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    handlers = {p: container.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")}
    lifecycle = container.get("lifecycle") or {}
    handlers |= {f"lifecycle.{h}": lifecycle.get(h) for h in ("postStart", "preStop")}
    for name, handler in handlers.items():
        for action in ("httpGet", "tcpSocket"):
            host = ((handler or {}).get(action) or {}).get("host")
            if host:
                found.append((f"{name}.{action}.host", host))
    return found


def violations(pod: Obj, *, where: str) -> list[str]:
    """Every "restricted" violation of a pod spec (``spec`` of a Pod, or a pod template's ``spec``)."""
    out: list[str] = []

    def bad(path: str, rule: str, value: Any) -> None:
        out.append(f"{where}: {path}: {rule} (got {value!r})")

    pod_sc: Obj = pod.get("securityContext") or {}
    # Baseline: host namespaces, HostProcess, sysctls, volumes.
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            bad(field, "host namespaces are forbidden", pod[field])
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        bad("securityContext.windowsOptions.hostProcess", "HostProcess pods are forbidden", True)
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            bad("securityContext.sysctls", "only the safe sysctls are allowed", sysctl.get("name"))
    for volume in pod.get("volumes") or []:
        kinds = sorted(set(volume) - {"name"})
        if "hostPath" in kinds:
            bad(
                f"volumes[{volume.get('name')}].hostPath",
                "hostPath volumes are forbidden",
                volume["hostPath"],
            )
        elif not set(kinds) <= RESTRICTED_VOLUME_TYPES:
            bad(f"volumes[{volume.get('name')}]", "volume type not allowed in restricted", kinds)
    _context_rules(pod_sc, "securityContext", bad, pod_level=True)

    containers = _containers(pod)
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for name, container in containers:
        sc: Obj = container.get("securityContext") or {}
        _context_rules(sc, f"{name}.securityContext", bad, pod_level=False)
        if sc.get("privileged"):
            bad(f"{name}.securityContext.privileged", "privileged containers are forbidden", True)
        if sc.get("allowPrivilegeEscalation") is not False:
            bad(
                f"{name}.securityContext.allowPrivilegeEscalation",
                "must be set to false",
                sc.get("allowPrivilegeEscalation"),
            )
        caps: Obj = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad(f"{name}.securityContext.capabilities.drop", "must contain ALL", caps.get("drop"))
        added = set(caps.get("add") or [])
        if not added <= RESTRICTED_CAPABILITIES:
            bad(
                f"{name}.securityContext.capabilities.add",
                "only NET_BIND_SERVICE may be added",
                sorted(added - RESTRICTED_CAPABILITIES),
            )
        if sc.get("procMount", "Default") != "Default":
            bad(f"{name}.securityContext.procMount", "must be Default", sc["procMount"])
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            bad(f"{name}.securityContext.runAsNonRoot", "must be true (here or on the pod)", non_root)
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in RESTRICTED_SECCOMP:
            bad(
                f"{name}.securityContext.seccompProfile.type",
                "must be RuntimeDefault or Localhost (here or on the pod)",
                seccomp,
            )
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                bad(
                    f"{name}.ports[{port.get('containerPort')}].hostPort",
                    "host ports are forbidden",
                    port["hostPort"],
                )
        for path, host in _probe_hosts(container):
            bad(f"{name}.{path}", "probe and hook hosts must be unset", host)
    if not containers:
        bad("containers", "a pod has at least one container", [])
    return out


def _context_rules(sc: Obj, path: str, bad: Callable[[str, str, Any], None], *, pod_level: bool) -> None:
    """Rules shared by pod and container security contexts; ``bad`` records a violation."""
    if sc.get("runAsUser") == 0:
        bad(f"{path}.runAsUser", "must not be 0 (root)", 0)
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp == "Unconfined":
        bad(f"{path}.seccompProfile.type", "Unconfined is forbidden", seccomp)
    selinux: Obj = sc.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES:
        bad(f"{path}.seLinuxOptions.type", "SELinux type not allowed", selinux.get("type"))
    for field in ("user", "role"):
        if selinux.get(field):
            bad(f"{path}.seLinuxOptions.{field}", "must be unset", selinux[field])
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor not in (None, "RuntimeDefault", "Localhost"):
        bad(f"{path}.appArmorProfile.type", "must be RuntimeDefault or Localhost", apparmor)
    if not pod_level and (sc.get("windowsOptions") or {}).get("hostProcess"):
        bad(f"{path}.windowsOptions.hostProcess", "HostProcess containers are forbidden", True)


# -- KServe's merge ------------------------------------------------------------------------------

_LIST_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes' strategic merge for the fields pod specs use: keyed lists merge, other lists and scalars replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value, key) if key in base else copy.deepcopy(value)
        return merged
    key = _LIST_KEYS.get(field)
    if key and isinstance(base, list) and isinstance(patch, list):
        merged_list = [copy.deepcopy(item) for item in base]
        index = {item.get(key): i for i, item in enumerate(merged_list)}
        for item in patch:
            if item.get(key) in index:
                merged_list[index[item[key]]] = strategic_merge(merged_list[index[item[key]]], item)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


PREDICTOR_NON_POD_FIELDS = frozenset(
    {
        "model",
        "minReplicas",
        "maxReplicas",
        "scaleMetric",
        "scaleMetricType",
        "scaleTarget",
        "autoScaling",
        "containerConcurrency",
        "timeout",
        "canaryTrafficPercent",
        "labels",
        "annotations",
        "logger",
        "batcher",
        "deploymentStrategy",
        "workerSpec",
        "storageUris",
        "storageContainerName",
    }
)
RUNTIME_NON_POD_FIELDS = frozenset(
    {
        "annotations",
        "labels",
        "builtInAdapter",
        "disabled",
        "grpcDataEndpoint",
        "grpcEndpoint",
        "httpDataEndpoint",
        "multiModel",
        "protocolVersions",
        "replicas",
        "storageHelper",
        "supportedModelFormats",
        "workerSpec",
    }
)


def find_runtime(isvc: Obj, runtimes: list[Obj]) -> Obj:
    """The runtime a predictor names: a ServingRuntime of its namespace first, then a ClusterServingRuntime."""
    name = isvc["spec"]["predictor"]["model"]["runtime"]
    namespace = isvc["metadata"]["namespace"]
    for kind, ns in (("ServingRuntime", namespace), ("ClusterServingRuntime", None)):
        for runtime in runtimes:
            meta = runtime["metadata"]
            if runtime["kind"] == kind and meta["name"] == name and meta.get("namespace") == ns:
                return runtime
    raise LookupError(f"InferenceService {namespace}/{isvc['metadata']['name']}: no runtime named {name!r}")


def predictor_pod(isvc: Obj, runtimes: list[Obj]) -> Obj:
    """The predictor's pod spec as KServe builds it: the runtime's, overridden by the predictor's.

    The runtime container named ``kserve-container`` is merged with the predictor's
    ``model`` container (the predictor wins); pod fields of the runtime are merged with the
    predictor's pod fields the same way.
    """
    predictor: Obj = isvc["spec"]["predictor"]
    if "model" not in predictor:
        return {k: v for k, v in predictor.items() if k not in PREDICTOR_NON_POD_FIELDS}
    runtime = find_runtime(isvc, runtimes)["spec"]
    model = {
        k: v
        for k, v in predictor["model"].items()
        if k not in ("modelFormat", "runtime", "storageUri", "protocolVersion")
    }
    containers = [
        strategic_merge(c, model) if c["name"] == "kserve-container" else copy.deepcopy(c)
        for c in runtime["containers"]
    ]
    pod = {k: v for k, v in runtime.items() if k not in RUNTIME_NON_POD_FIELDS} | {"containers": containers}
    return strategic_merge(pod, {k: v for k, v in predictor.items() if k not in PREDICTOR_NON_POD_FIELDS})


def inference_service_pods(isvc: Obj, runtimes: list[Obj]) -> dict[str, Obj]:
    """Every pod an InferenceService makes (predictor, transformer, explainer), by component.

    ModelMesh-mode services make no pods of their own: their models load into the mesh
    runtime's pods, which the runtime check covers.
    """
    annotations = isvc["metadata"].get("annotations", {})
    if annotations.get("serving.kserve.io/deploymentMode") == "ModelMesh":
        return {}
    pods = {"predictor": predictor_pod(isvc, runtimes)}
    for component in ("transformer", "explainer"):
        if component in isvc["spec"]:
            pods[component] = {
                k: v for k, v in isvc["spec"][component].items() if k not in PREDICTOR_NON_POD_FIELDS
            }
    return pods


def runtime_pod(runtime: Obj) -> Obj:
    """A serving runtime's pod fields as a pod spec (its containers and volumes)."""
    return {k: v for k, v in runtime["spec"].items() if k not in RUNTIME_NON_POD_FIELDS}
