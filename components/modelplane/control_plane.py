"""The serving control plane: KServe, cert-manager, Knative and KEDA, from their pinned releases.

What this module authors is their configuration, computed from typed arguments rather than raw
chart values, the objects the platform owns around them (the hardened storage initializer,
controller availability policy, the ``KnativeServing`` the Knative operator reconciles) and the
order they install in (docs/control-plane.md, "Install order", says why). The inference Gateway
is ``modelplane.ingress``'s.

Chart values are checked by the charts themselves: ``tests/upstream`` renders every release
with the real Helm engine at its pinned version and fails on a value path the chart does not
define, on an object both a chart and modelplane render, and on a chart object that fails
strict schema validation. Controller replicas and their disruption budget are authored
objects, since KServe's chart has no replica value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from modelplane.base import StrictModel
from modelplane.ingress import IngressArgs
from modelplane.kube import KSERVE_MODE_NAMES, Obj, labels, restricted_security_context
from modelplane.types import DeploymentMode, DnsLabel, Quantity
from modelplane.upstream import Chart, Versions

KNATIVE_NAMESPACE = "knative-serving"
RUNTIME_DEFAULT_SECCOMP: dict[str, str] = {"type": "RuntimeDefault"}
"""The seccomp profile Pod Security "restricted" asks of every pod, set through charts that allow it."""
KSERVE_CONTROLLER = "kserve-controller-manager"
"""Deployment (and ``control-plane`` pod label) of KServe's controller and webhook server."""

WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
"""Makes Pulumi wait for a custom resource's Ready condition (pulumi-kubernetes >= 4.18)."""

STORAGE_URI_PREFIXES: tuple[str, ...] = ("gs://", "s3://", "hdfs://", "hf://", "webhdfs://")
STORAGE_URI_REGEXES: tuple[str, ...] = (
    "https://(.+?).blob.core.windows.net/(.+)",
    "https://(.+?).file.core.windows.net/(.+)",
    "https?://(.+)/(.+)",
)
"""The storage URIs KServe's shipped ``default`` ClusterStorageContainer serves, in its order
(kserve-resources v0.20.0 files/common/storagecontainer.yaml). Not ``modelscope://``: the
v0.20.0 storage initializer has no handler for it (python/storage/kserve_storage/kserve_storage.py)."""

STORAGE_SPEC_PREFIX = "<scheme-placeholder>://"
"""What KServe matches ClusterStorageContainers against for a model read through a storage-config
entry (``storage: {key, path}``): the pod's source URI is ``<scheme-placeholder>://<path>`` until
the injector reads the entry (v0.20.0 pkg/controller/v1beta1/inferenceservice/components/
component.go:53-56, pkg/credentials/service_account_credentials.go:45), and the container is
chosen before that (pkg/webhook/admission/pod/storage_initializer_injector.go:760-768). KServe's
own ``default`` container does not list it, so such a model's storage-initializer is the bare
one of ``inferenceservice-config`` (pkg/utils/storage.go:311-334: no security context), which
Pod Security "restricted" refuses; listing it gives those pods the hardened container too."""


LOGGER_URL_REFUSED = (
    "no cluster-wide inference logger URL can be set: KServe's chart fixes inferenceservice-config "
    "logger.defaultUrl to http://default-broker (kserve-resources files/common/configmap-patch.yaml); "
    "remove controlPlane.loggerUrl and send a model's requests to a sink with its InferenceService's "
    "spec.predictor.logger.url"
)
"""Why ``controlPlane.loggerUrl`` is refused, naming the per-model alternative."""


class StorageInitializerArgs(StrictModel):
    """Resources of KServe's storage-initializer, which downloads models before a server starts."""

    cpu: Quantity = Field(default="100m", description="CPU request of the storage initializer.")
    memory: Quantity = Field(default="256Mi", description="Memory request of the storage initializer.")
    cpu_limit: Quantity = Field(default="1", description="CPU limit of the storage initializer.")
    memory_limit: Quantity = Field(default="1Gi", description="Memory limit of the storage initializer.")


class ControlPlaneArgs(StrictModel):
    """KServe's controller and its dependencies."""

    namespace: DnsLabel = Field(default="kserve", description="Namespace of the KServe controller.")
    default_deployment_mode: DeploymentMode = Field(
        default="standard",
        description="Mode of models that name none. `standard` needs no Knative; `knative` scales to zero.",
    )
    network_layer: Literal["kourier", "istio"] = Field(
        default="kourier",
        description="Knative networking layer, installed only when a model uses Knative mode. "
        "`istio` also installs Istio (base, istiod, ingress gateway).",
    )
    controller_replicas: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="KServe controller replicas. Default: 1 in the dev tier, 2 in staging and prod (with a PDB).",
    )
    ingress: IngressArgs = Field(default_factory=IngressArgs, description="Inference ingress.")
    storage_initializer: StorageInitializerArgs = Field(
        default_factory=StorageInitializerArgs, description="Storage-initializer resources."
    )
    logger_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="Refused when set: KServe's chart has no value for a cluster-wide inference logger URL "
        "(it is fixed to `http://default-broker`); a sink is set per InferenceService "
        "(`spec.predictor.logger.url`).",
    )
    leader_worker_set: bool = Field(
        default=False,
        description="The cluster runs LeaderWorkerSet (KServe pins v0.8.0), which multi-node LLM services need; "
        "modelplane does not install it. Default: false.",
    )
    image_volume: bool | None = Field(
        default=None,
        description="The cluster mounts image volumes (its API servers and kubelets run with the `ImageVolume` "
        "feature gate, and its container runtime supports them), which `oci+native://` models need. Default: "
        "on from Kubernetes 1.35, where the gate is on by default; off before (beta and off by default in 1.33 "
        "and 1.34).",
    )
    allowed_runtimes: list[str] | None = Field(
        default=None,
        description="Runtime catalog names models may use (e.g. `[sklearn, triton]`); every catalog runtime "
        "when unset. KServe's own built-in ClusterServingRuntimes are never installed.",
    )

    @field_validator("logger_url")
    @classmethod
    def _no_cluster_logger_url(cls, value: str | None) -> str | None:
        # kserve-resources v0.20.0 has no `logger` value; inferenceservice-config's
        # `logger.defaultUrl` is the literal "http://default-broker"
        # (files/common/configmap-patch.yaml:92-100), so a value here would be silently ignored.
        if value is not None:
            raise ValueError(LOGGER_URL_REFUSED)
        return value


def controller_replicas(args: ControlPlaneArgs, tier: str) -> int:
    """KServe controller replicas: the stack's, else 1 in dev and 2 elsewhere."""
    if args.controller_replicas is not None:
        return args.controller_replicas
    return 1 if tier == "dev" else 2


def _anti_affinity(match_labels: dict[str, str]) -> dict[str, Any]:
    """Prefer spreading replicas over nodes; preferred, so a small cluster still schedules them."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": match_labels},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }


def _waves(charts: list[Chart]) -> list[Chart]:
    """Charts with waves derived from their dependencies, so GitOps order matches ``depends_on``.

    A chart comes one wave after each dependency, and two after one that carries objects
    (those objects take the wave in between).
    """
    by_name = {c.release: c for c in charts}
    waves: dict[str, int] = {}

    def wave(name: str) -> int:
        if name not in waves:
            chart = by_name[name]
            deps = [d for d in chart.depends_on if d in by_name]
            waves[name] = max((wave(d) + (2 if by_name[d].objects else 1) for d in deps), default=0)
        return waves[name]

    return [c.model_copy(update={"wave": wave(c.release)}) for c in charts]


def knative_serving(
    args: ControlPlaneArgs,
    versions: Versions,
    *,
    stack: str,
    tier: str,
    config: dict[str, dict[str, str]],
) -> list[Obj]:
    """The ``knative-serving`` namespace and the ``KnativeServing`` the Knative operator reconciles.

    ``config`` holds the ``spec.config`` sections other parts own (the autoscaler's and the
    feature flags GPU pools need); this function adds networking and the domain.
    """
    common = labels(stack, "control-plane")
    istio = args.network_layer == "istio"
    sections: dict[str, dict[str, str]] = {
        "domain": {args.ingress.domain: ""},
        "network": {
            "ingress-class": f"{'istio' if istio else 'kourier'}.ingress.networking.knative.dev",
        },
        # As KServe's own KnativeServing template: large serving images are not resolved to digests.
        "deployment": {"registries-skipping-tag-resolving": "nvcr.io,index.docker.io"},
        **config,
    }
    spec: dict[str, Any] = {
        "version": versions.knative.lstrip("v"),
        "ingress": {"istio" if istio else "kourier": {"enabled": True}},
        "config": {name: dict(sorted(data.items())) for name, data in sorted(sections.items())},
    }
    if tier != "dev":
        spec["high-availability"] = {"replicas": 2}
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": KNATIVE_NAMESPACE, "labels": common},
        },
        {
            "apiVersion": "operator.knative.dev/v1beta1",
            "kind": "KnativeServing",
            "metadata": {
                "name": "knative-serving",
                "namespace": KNATIVE_NAMESPACE,
                "labels": common,
                "annotations": {WAIT_FOR_ANNOTATION: "condition=Ready"},
            },
            "spec": spec,
        },
    ]


def _kserve_values(args: ControlPlaneArgs, *, knative: bool, ha: bool) -> dict[str, Any]:
    ingress = args.ingress
    gateway: dict[str, Any] = {
        "domain": ingress.domain,
        "urlScheme": ingress.url_scheme,
        "ingressGateway": {
            "enableGatewayApi": ingress.gateway_api,
            "kserveGateway": f"{ingress.gateway_namespace}/{ingress.gateway_name}",
            # modelplane authors the Gateway itself (hardened, listeners it controls).
            "createGateway": False,
        },
    }
    if knative and args.network_layer != "istio":
        # Without Istio, KServe must not create Istio VirtualServices for Knative-mode models.
        gateway["disableIstioVirtualHost"] = True
    controller: dict[str, Any] = {
        "deploymentMode": KSERVE_MODE_NAMES[args.default_deployment_mode],
        "gateway": gateway,
    }
    if ha:
        controller["affinity"] = _anti_affinity({"control-plane": KSERVE_CONTROLLER})
        controller["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"control-plane": KSERVE_CONTROLLER}},
            }
        ]
    kserve: dict[str, Any] = {
        "controller": controller,
        # modelplane authors a hardened `default` ClusterStorageContainer (storage_container()),
        # so the chart must not render its own: two owners of one object overwrite each other.
        # `storagecontainer.enabled: false` alone does not do it: the chart's gate is
        # `enabled | default createSharedResources` (kserve-resources v0.20.0
        # templates/common/clusterstoragecontainer.yaml:1) and sprig's `default` treats false as
        # empty. So shared resources are off and the two others they gate are turned back on
        # (templates/common/certmanager.yaml:1, templates/common/configmap.yaml:1).
        "createSharedResources": False,
        "storagecontainer": {"enabled": False},
        # KServe's pod webhook mounts oci+native:// models only while an OCI mode is on
        # (v0.20.0 pkg/webhook/admission/pod/mutator.go:141-143, types/config.go:48-56); the chart's
        # only switch for it is enableModelcar (files/common/configmap-patch.yaml:110), on by
        # default and pinned here. Plain oci:// modelcars are refused at load time all the same.
        "storage": {"enableModelcar": True},
        "inferenceServiceConfig": {"enabled": True},
        "certManager": {"enabled": True},
    }
    return {"kserve": kserve}


def charts(
    args: ControlPlaneArgs,
    versions: Versions,
    *,
    tier: str,
    knative: bool,
    keda: bool,
    llm: bool = False,
    stack: str = "modelplane",
    knative_config: dict[str, dict[str, str]] | None = None,
) -> list[Chart]:
    """The upstream releases of the control plane, with dependencies and derived install waves."""
    replicas = controller_replicas(args, tier)
    ha = replicas > 1
    # No minAvailable: the chart's PDBs default to minAvailable 1 when neither bound is set
    # (cert-manager v1.17.0 templates/*poddisruptionbudget.yaml).
    pdb = {"enabled": ha}
    result = [
        Chart(
            release="cert-manager",
            namespace="cert-manager",
            repository="https://charts.jetstack.io",
            chart="cert-manager",
            version=versions.cert_manager,
            values={
                "crds": {"enabled": True, "keep": True},
                "replicaCount": 2 if ha else 1,
                "podDisruptionBudget": pdb,
                "webhook": {"replicaCount": 2 if ha else 1, "podDisruptionBudget": pdb},
                "cainjector": {"replicaCount": 2 if ha else 1, "podDisruptionBudget": pdb},
            },
            needed_by_groups=("cert-manager.io",),
            crds=True,
        ),
        Chart(
            release="kserve-crd",
            namespace=args.namespace,
            repository="oci://ghcr.io/kserve/charts",
            chart="kserve-crd",
            version=versions.kserve,
            needed_by_groups=("serving.kserve.io",),
            depends_on=("cert-manager",),
            crds=True,
        ),
    ]
    kserve_depends = ["cert-manager", "kserve-crd"]
    if args.ingress.install_gateway:
        values: dict[str, Any] = {"deployment": {"replicas": 2 if ha else 1}}
        if ha:
            # The chart's pod selector labels: `app.kubernetes.io/name` is the chart's name, not
            # the release's (gateway-helm v1.8.1 templates/_helpers.tpl:11-13, 58-61).
            values["deployment"]["pod"] = {
                "affinity": _anti_affinity(
                    {"app.kubernetes.io/name": "gateway-helm", "app.kubernetes.io/instance": "envoy-gateway"}
                )
            }
            values["podDisruptionBudget"] = {"minAvailable": 1}
        result.append(
            Chart(
                release="envoy-gateway",
                namespace="envoy-gateway-system",
                repository="oci://docker.io/envoyproxy",
                chart="gateway-helm",
                version=versions.envoy_gateway,
                values=values,
                needed_by_groups=("gateway.networking.k8s.io", "gateway.envoyproxy.io"),
                crds=True,
            )
        )
        kserve_depends.append("envoy-gateway")
    if keda:
        result.append(
            Chart(
                release="keda",
                namespace="keda",
                repository="https://kedacore.github.io/charts",
                chart="keda",
                version=versions.keda,
                values={"operator": {"replicaCount": 2 if ha else 1}},
                needed_by_groups=("keda.sh",),
                crds=True,
            )
        )
        kserve_depends.append("keda")
    if knative:
        operator_depends: tuple[str, ...] = ()
        if args.network_layer == "istio":
            istio_repo = "https://istio-release.storage.googleapis.com/charts"
            result += [
                Chart(
                    release="istio-base",
                    namespace="istio-system",
                    repository=istio_repo,
                    chart="base",
                    version=versions.istio,
                    needed_by_groups=("networking.istio.io", "security.istio.io"),
                    crds=True,
                ),
                Chart(
                    release="istiod",
                    namespace="istio-system",
                    repository=istio_repo,
                    chart="istiod",
                    version=versions.istio,
                    # The chart sets no seccomp profile unless asked (istiod values.yaml:26-27).
                    values={"autoscaleMin": 2 if ha else 1, "seccompProfile": RUNTIME_DEFAULT_SECCOMP},
                    depends_on=("istio-base",),
                ),
                Chart(
                    release="istio-ingressgateway",
                    namespace="istio-system",
                    repository=istio_repo,
                    chart="gateway",
                    version=versions.istio,
                    values={
                        "autoscaling": {"minReplicas": 2 if ha else 1},
                        # A pod securityContext replaces the chart's default one, which only
                        # opens low ports (gateway templates/deployment.yaml:53-61): keep that.
                        "securityContext": {
                            "seccompProfile": RUNTIME_DEFAULT_SECCOMP,
                            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
                        },
                    },
                    depends_on=("istiod",),
                ),
            ]
            operator_depends = ("istio-ingressgateway",)
        result.append(
            Chart(
                release="knative-operator",
                namespace="knative-operator",
                repository="https://knative.github.io/operator",
                chart="knative-operator",
                version=versions.knative,
                # The chart's pods set no seccomp profile; its templates take a pod securityContext
                # that values.yaml does not list (templates/operator.yaml, both Deployments).
                values={
                    "knative_operator": {
                        component: {"securityContext": {"seccompProfile": RUNTIME_DEFAULT_SECCOMP}}
                        for component in ("knative_operator", "operator_webhook")
                    }
                },
                needed_by_groups=("operator.knative.dev",),
                depends_on=operator_depends,
                crds=True,
                objects=tuple(
                    knative_serving(args, versions, stack=stack, tier=tier, config=knative_config or {})
                ),
            )
        )
        kserve_depends.append("knative-operator")
    result.append(
        Chart(
            release="kserve",
            namespace=args.namespace,
            repository="oci://ghcr.io/kserve/charts",
            chart="kserve-resources",
            version=versions.kserve,
            values=_kserve_values(args, knative=knative, ha=ha),
            needed_by_groups=("serving.kserve.io",),
            depends_on=tuple(kserve_depends),
        )
    )
    if llm:
        result += _llm_charts(args, versions, kserve_depends=kserve_depends)
    return sorted(_waves(result), key=lambda c: (c.wave, c.release))


def _llm_charts(args: ControlPlaneArgs, versions: Versions, *, kserve_depends: list[str]) -> list[Chart]:
    """KServe's LLMInferenceService controller, its CRDs and its well-known configs, for stacks with LLM services.

    The controller's chart would recreate what the kserve release already owns (the
    inferenceservice-config ConfigMap, the cert-manager Issuer, the default ClusterStorageContainer),
    so its shared resources are off (kserve-llmisvc-resources v0.20.0 values.yaml: createSharedResources);
    it brings the Gateway API Inference Extension CRDs its InferencePools need (createGIECRDs).
    The presets (LLMInferenceServiceConfigs) come from kserve-runtime-configs with its runtimes off.
    """
    repository = "oci://ghcr.io/kserve/charts"
    return [
        Chart(
            release="kserve-llmisvc-crd",
            namespace=args.namespace,
            repository=repository,
            chart="kserve-llmisvc-crd",
            version=versions.kserve,
            needed_by_groups=("serving.kserve.io",),
            # After kserve-crd: both carry the ClusterStorageContainer CRD and the second skips
            # it when a Helm lookup finds it owned (templates/serving.kserve.io_clusterstoragecontainers.yaml:1-8).
            depends_on=("cert-manager", "kserve-crd"),
            crds=True,
        ),
        Chart(
            release="kserve-llmisvc",
            namespace=args.namespace,
            repository=repository,
            chart="kserve-llmisvc-resources",
            version=versions.kserve,
            values={"kserve": {"createSharedResources": False}},
            needed_by_groups=("serving.kserve.io", "inference.networking.k8s.io"),
            depends_on=(*kserve_depends, "kserve", "kserve-llmisvc-crd"),
            crds=True,
        ),
        Chart(
            release="kserve-llmisvc-configs",
            namespace=args.namespace,
            repository=repository,
            chart="kserve-runtime-configs",
            version=versions.kserve,
            values={"kserve": {"llmisvcConfigs": {"enabled": True}}},
            needed_by_groups=("serving.kserve.io",),
            depends_on=("kserve-llmisvc",),
        ),
    ]


def storage_container(args: ControlPlaneArgs, versions: Versions, *, stack: str) -> Obj:
    """KServe's ``default`` ClusterStorageContainer, hardened to Pod Security "restricted".

    The storage initializer runs as an init container inside every model pod, so a pod in a
    namespace that enforces "restricted" is rejected unless this container complies too.
    Its root filesystem stays writable: the downloader keeps caches under its home directory.
    """
    si = args.storage_initializer
    formats: list[dict[str, str]] = [{"prefix": p} for p in STORAGE_URI_PREFIXES]
    formats += [{"regex": r} for r in STORAGE_URI_REGEXES]
    formats.append({"prefix": STORAGE_SPEC_PREFIX})
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterStorageContainer",
        "metadata": {"name": "default", "labels": labels(stack, "control-plane")},
        "spec": {
            "container": {
                "name": "storage-initializer",
                "image": f"kserve/storage-initializer:{versions.kserve}",
                "resources": {
                    "requests": {"cpu": si.cpu, "memory": si.memory},
                    "limits": {"cpu": si.cpu_limit, "memory": si.memory_limit},
                },
                "securityContext": restricted_security_context(run_as_user=1000),
            },
            "supportedUriFormats": formats,
            "supportsMultiModelDownload": True,
            "workloadType": "initContainer",
        },
    }


def availability_objects(args: ControlPlaneArgs, *, stack: str, tier: str) -> list[Obj]:
    """A PodDisruptionBudget and a replica floor for the KServe controller outside the dev tier.

    The controller also serves every KServe admission webhook (``failurePolicy: Fail``), so one
    pod means no InferenceService can change while it restarts. KServe's chart has no replica
    value, so an HPA with ``minReplicas == maxReplicas`` holds the count: the HPA controller
    raises a Deployment to ``minReplicas`` before it reads any metric, so this works without a
    metrics server, and it works the same in Pulumi, Flux and Argo CD.
    """
    replicas = controller_replicas(args, tier)
    if replicas < 2:
        return []
    common = labels(stack, "control-plane")
    meta = {"name": KSERVE_CONTROLLER, "namespace": args.namespace, "labels": common}
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"control-plane": KSERVE_CONTROLLER}}},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": KSERVE_CONTROLLER},
                "minReplicas": replicas,
                "maxReplicas": replicas,
            },
        },
    ]
