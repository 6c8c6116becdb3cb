"""The etcd ModelMesh keeps its state in: models, vmodels, placements and runtime pods.

Losing it loses every model registration (kserve/modelmesh-serving#249), and upstream's
quickstart etcd is one member with its data in ``/tmp``, no TLS and no auth. So outside the
dev tier this is a StatefulSet of an odd number of members with persistent volumes, TLS on
both the client and the peer port with client-certificate auth (certificates from
cert-manager, signed by a private CA of its own unless the stack names an issuer),
anti-affinity across nodes, a PodDisruptionBudget that keeps quorum, NetworkPolicies, and a
CronJob that snapshots the keyspace to a volume. ``mode: external`` renders nothing: the
``model-serving-etcd`` secret names the endpoints. The secret is always referenced by name,
never rendered, because it holds credentials.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelplane.base import StrictModel
from modelplane.kube import Obj, labels, restricted_pod_security_context, restricted_security_context
from modelplane.types import DnsSubdomain, ImageRef, Quantity, parse_quantity

NAME = "modelmesh-etcd"
APP_LABEL = {"app.kubernetes.io/name": NAME}
SNAPSHOT_LABEL = {"app.kubernetes.io/name": f"{NAME}-snapshot"}
RUN_AS = 65532
"""Non-root user etcd runs as; its data volume is group-owned through fsGroup."""
CLIENT_PORT, PEER_PORT, METRICS_PORT = 2379, 2380, 2381
TLS_DIR = "/etc/etcd/tls"
DATA_DIR = "/var/run/etcd"


class IssuerRef(StrictModel):
    """A cert-manager issuer that signs etcd's certificates."""

    name: DnsSubdomain = Field(description="Issuer name.")
    kind: Literal["Issuer", "ClusterIssuer"] = Field(default="ClusterIssuer", description="Issuer kind.")


class EtcdArgs(StrictModel):
    """Where ModelMesh keeps its cluster state."""

    mode: Literal["quickstart", "statefulset", "external"] = Field(
        default="statefulset",
        description="`statefulset`: 3 members with volumes and TLS; `external`: by secret reference; "
        "`quickstart`: a single member, dev tier only.",
    )
    secret_name: DnsSubdomain = Field(
        default="model-serving-etcd",
        description="Secret holding `etcd_connection` (endpoints, credentials), referenced, never rendered.",
    )
    members: int = Field(default=3, ge=1, le=7, description="Members of the etcd StatefulSet (odd).")
    storage: Quantity = Field(default="10Gi", description="Volume size per etcd member.")
    storage_class: DnsSubdomain | None = Field(
        default=None,
        description="StorageClass of the members' volumes. Default: the cluster's default class.",
    )
    image: ImageRef = Field(default="quay.io/coreos/etcd:v3.5.21", description="etcd image.")
    cpu: Quantity = Field(default="250m", description="CPU request per member (limit: 4x).")
    memory: Quantity = Field(default="512Mi", description="Memory request and limit per member.")
    snapshot_schedule: str = Field(
        default="0 */6 * * *",
        pattern=r"^(@(hourly|daily|weekly|monthly))|(\S+ \S+ \S+ \S+ \S+)$",
        description="Cron schedule of etcd snapshots.",
    )
    snapshot_storage: Quantity = Field(default="5Gi", description="Volume size for snapshots.")
    issuer: IssuerRef | None = Field(
        default=None,
        description="Issuer of etcd's TLS certificates. Default: a private CA of its own (self-signed root).",
    )

    @model_validator(mode="after")
    def _odd_members(self) -> EtcdArgs:
        if self.mode == "statefulset" and self.members % 2 == 0:
            raise ValueError(f"members must be odd for an etcd quorum (got {self.members})")
        return self


def member_host(index: int, namespace: str) -> str:
    """The stable DNS name of one member."""
    return f"{NAME}-{index}.{NAME}.{namespace}.svc"


def client_endpoints(etcd: EtcdArgs, *, namespace: str) -> list[str]:
    """The client URLs of the members, for the ``endpoints`` of the ``model-serving-etcd`` secret."""
    if etcd.mode == "external":
        return []
    scheme = "http" if etcd.mode == "quickstart" else "https"
    members = 1 if etcd.mode == "quickstart" else etcd.members
    return [f"{scheme}://{member_host(i, namespace)}:{CLIENT_PORT}" for i in range(members)]


def connection_template(etcd: EtcdArgs, *, namespace: str) -> dict[str, Any]:
    """What the ``model-serving-etcd`` secret's ``etcd_connection`` must hold, without any secret value."""
    template: dict[str, Any] = {
        "endpoints": ",".join(client_endpoints(etcd, namespace=namespace)),
        "root_prefix": "modelmesh-serving",
    }
    if etcd.mode == "statefulset":
        template |= {
            "certificate": f"<ca.crt of secret {NAME}-client-tls>",
            "client_certificate": f"<tls.crt of secret {NAME}-client-tls>",
            "client_key": f"<tls.key of secret {NAME}-client-tls>",
        }
    return template


def _certificates(etcd: EtcdArgs, namespace: str, common: dict[str, str]) -> list[Obj]:
    ns = namespace
    issuer = etcd.issuer
    result: list[Obj] = []
    if issuer is None:
        issuer_ref = {"name": f"{NAME}-ca", "kind": "Issuer", "group": "cert-manager.io"}
        result += [
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Issuer",
                "metadata": {"name": f"{NAME}-selfsigned", "namespace": ns, "labels": common},
                "spec": {"selfSigned": {}},
            },
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": {"name": f"{NAME}-ca", "namespace": ns, "labels": common},
                "spec": {
                    "isCA": True,
                    "commonName": f"{NAME}-ca",
                    "secretName": f"{NAME}-ca",
                    "duration": "87600h",
                    "privateKey": {"algorithm": "ECDSA", "size": 256},
                    "issuerRef": {"name": f"{NAME}-selfsigned", "kind": "Issuer", "group": "cert-manager.io"},
                },
            },
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Issuer",
                "metadata": {"name": f"{NAME}-ca", "namespace": ns, "labels": common},
                "spec": {"ca": {"secretName": f"{NAME}-ca"}},
            },
        ]
    else:
        issuer_ref = {"name": issuer.name, "kind": issuer.kind, "group": "cert-manager.io"}
    hosts = [f"*.{NAME}.{ns}.svc", f"*.{NAME}.{ns}.svc.cluster.local", f"{NAME}.{ns}.svc", "localhost"]
    for role, usages, dns in (
        ("server", ["server auth", "client auth"], hosts),
        ("peer", ["server auth", "client auth"], hosts),
        ("client", ["client auth"], []),
    ):
        spec: dict[str, Any] = {
            "secretName": f"{NAME}-{role}-tls",
            "commonName": f"{NAME}-{role}" if role != "client" else "modelmesh",
            "duration": "2160h",
            "renewBefore": "360h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": usages,
            "issuerRef": issuer_ref,
        }
        if dns:
            spec["dnsNames"] = dns
            spec["ipAddresses"] = ["127.0.0.1"]
        result.append(
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": {"name": f"{NAME}-{role}", "namespace": ns, "labels": common},
                "spec": spec,
            }
        )
    return result


def _etcd_args(etcd: EtcdArgs, namespace: str, *, tls: bool, members: int) -> list[str]:
    ns = namespace
    scheme = "https" if tls else "http"
    cluster = ",".join(f"{NAME}-{i}={scheme}://{member_host(i, ns)}:{PEER_PORT}" for i in range(members))
    flags = [
        "--name=$(POD_NAME)",
        f"--data-dir={DATA_DIR}/data",
        f"--listen-client-urls={scheme}://0.0.0.0:{CLIENT_PORT}",
        f"--advertise-client-urls={scheme}://$(POD_NAME).{NAME}.{ns}.svc:{CLIENT_PORT}",
        f"--listen-peer-urls={scheme}://0.0.0.0:{PEER_PORT}",
        f"--initial-advertise-peer-urls={scheme}://$(POD_NAME).{NAME}.{ns}.svc:{PEER_PORT}",
        f"--listen-metrics-urls=http://0.0.0.0:{METRICS_PORT}",
        f"--initial-cluster={cluster}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={NAME}-{ns}",
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=1h",
        "--quota-backend-bytes=4294967296",
    ]
    if tls:
        flags += [
            "--client-cert-auth=true",
            f"--trusted-ca-file={TLS_DIR}/server/ca.crt",
            f"--cert-file={TLS_DIR}/server/tls.crt",
            f"--key-file={TLS_DIR}/server/tls.key",
            "--peer-client-cert-auth=true",
            f"--peer-trusted-ca-file={TLS_DIR}/peer/ca.crt",
            f"--peer-cert-file={TLS_DIR}/peer/tls.crt",
            f"--peer-key-file={TLS_DIR}/peer/tls.key",
        ]
    return flags


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": METRICS_PORT},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _statefulset(etcd: EtcdArgs, namespace: str, common: dict[str, str], *, tls: bool, members: int) -> Obj:
    cpu_limit = format(parse_quantity(etcd.cpu) * 4, "f").rstrip("0").rstrip(".")
    mounts: list[dict[str, Any]] = [{"name": "data", "mountPath": DATA_DIR}]
    volumes: list[dict[str, Any]] = []
    if tls:
        for role in ("server", "peer"):
            mounts.append({"name": f"{role}-tls", "mountPath": f"{TLS_DIR}/{role}", "readOnly": True})
            volumes.append(
                {"name": f"{role}-tls", "secret": {"secretName": f"{NAME}-{role}-tls", "defaultMode": 0o440}}
            )
    container = {
        "name": "etcd",
        "image": etcd.image,
        "command": ["/usr/local/bin/etcd"],
        "args": _etcd_args(etcd, namespace, tls=tls, members=members),
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [
            {"name": "client", "containerPort": CLIENT_PORT, "protocol": "TCP"},
            {"name": "peer", "containerPort": PEER_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "resources": {
            "requests": {"cpu": etcd.cpu, "memory": etcd.memory},
            "limits": {"cpu": cpu_limit, "memory": etcd.memory},
        },
        "securityContext": restricted_security_context(
            run_as_user=RUN_AS, run_as_group=RUN_AS, read_only_root=True
        ),
        # /livez answers while the process is healthy even without quorum, so a lost quorum does
        # not restart every member at once; /readyz takes a member out of the Service until it serves.
        "livenessProbe": _probe("/livez", period=10, failures=6),
        "readinessProbe": _probe("/readyz", period=5, failures=3),
        "startupProbe": _probe("/livez", period=10, failures=30),
        "volumeMounts": mounts,
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security_context(
            run_as_user=RUN_AS, run_as_group=RUN_AS, fs_group=RUN_AS
        ),
        "terminationGracePeriodSeconds": 60,
        "containers": [container],
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": APP_LABEL}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": APP_LABEL},
            }
        ],
    }
    spec: dict[str, Any] = {
        "serviceName": NAME,
        "replicas": members,
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": APP_LABEL},
        "template": {"metadata": {"labels": common | APP_LABEL}, "spec": pod_spec},
    }
    if etcd.mode == "quickstart":
        volumes.append({"name": "data", "emptyDir": {"sizeLimit": "1Gi"}})
    else:
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": etcd.storage}},
        }
        if etcd.storage_class:
            claim_spec["storageClassName"] = etcd.storage_class
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": claim_spec}]
        spec["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Retain", "whenScaled": "Retain"}
    pod_spec["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": NAME, "namespace": namespace, "labels": common | APP_LABEL},
        "spec": spec,
    }


def _snapshot(etcd: EtcdArgs, namespace: str, common: dict[str, str]) -> list[Obj]:
    """A CronJob that saves a snapshot of the keyspace to a volume (atomically replaced each run)."""
    ns = namespace
    claim = f"{NAME}-snapshots"
    container = {
        "name": "snapshot",
        "image": etcd.image,
        "command": ["/usr/local/bin/etcdctl"],
        "args": [
            f"--endpoints=https://{NAME}.{ns}.svc:{CLIENT_PORT}",
            f"--cacert={TLS_DIR}/client/ca.crt",
            f"--cert={TLS_DIR}/client/tls.crt",
            f"--key={TLS_DIR}/client/tls.key",
            "snapshot",
            "save",
            "/snapshots/snapshot.db",
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": restricted_security_context(
            run_as_user=RUN_AS, run_as_group=RUN_AS, read_only_root=True
        ),
        "volumeMounts": [
            {"name": "snapshots", "mountPath": "/snapshots"},
            {"name": "client-tls", "mountPath": f"{TLS_DIR}/client", "readOnly": True},
        ],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": ns, "labels": common},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": etcd.snapshot_storage}},
                **({"storageClassName": etcd.storage_class} if etcd.storage_class else {}),
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": f"{NAME}-snapshot", "namespace": ns, "labels": common},
            "spec": {
                "schedule": etcd.snapshot_schedule,
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 2,
                        "activeDeadlineSeconds": 600,
                        "template": {
                            "metadata": {"labels": common | SNAPSHOT_LABEL},
                            "spec": {
                                "restartPolicy": "OnFailure",
                                "automountServiceAccountToken": False,
                                "securityContext": restricted_pod_security_context(
                                    run_as_user=RUN_AS, run_as_group=RUN_AS, fs_group=RUN_AS
                                ),
                                "containers": [container],
                                "volumes": [
                                    {"name": "snapshots", "persistentVolumeClaim": {"claimName": claim}},
                                    {
                                        "name": "client-tls",
                                        "secret": {"secretName": f"{NAME}-client-tls", "defaultMode": 0o440},
                                    },
                                ],
                            },
                        },
                    }
                },
            },
        },
    ]


def _network_policies(namespace: str, common: dict[str, str], monitoring_namespace: str) -> list[Obj]:
    dns = {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }
    client = [{"port": CLIENT_PORT, "protocol": "TCP"}]
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": NAME, "namespace": namespace, "labels": common},
            "spec": {
                "podSelector": {"matchLabels": APP_LABEL},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": APP_LABEL}}],
                        "ports": [*client, {"port": PEER_PORT, "protocol": "TCP"}],
                    },
                    # the controller and snapshot jobs beside etcd, and runtime pods in mesh namespaces
                    {"from": [{"podSelector": {}}], "ports": client},
                    {
                        "from": [{"namespaceSelector": {"matchLabels": {"modelmesh-enabled": "true"}}}],
                        "ports": client,
                    },
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": monitoring_namespace}
                                }
                            }
                        ],
                        "ports": [{"port": METRICS_PORT, "protocol": "TCP"}],
                    },
                ],
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": APP_LABEL}}],
                        "ports": [*client, {"port": PEER_PORT, "protocol": "TCP"}],
                    },
                    dns,
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"{NAME}-snapshot", "namespace": namespace, "labels": common},
            "spec": {
                "podSelector": {"matchLabels": SNAPSHOT_LABEL},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": APP_LABEL}}], "ports": client}, dns],
            },
        },
    ]


def objects(
    etcd: EtcdArgs, *, namespace: str, stack: str, monitoring_namespace: str = "monitoring"
) -> list[Obj]:
    """Etcd's objects for the mesh's etcd mode (none for an external etcd)."""
    if etcd.mode == "external":
        return []
    common = labels(stack, "modelmesh")
    tls = etcd.mode == "statefulset"
    members = etcd.members if tls else 1
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": namespace, "labels": common | APP_LABEL},
        "spec": {
            "clusterIP": "None",
            # peers must find each other before they are ready, or a new cluster never forms
            "publishNotReadyAddresses": True,
            "selector": APP_LABEL,
            "ports": [
                {"name": "client", "port": CLIENT_PORT, "targetPort": "client", "protocol": "TCP"},
                {"name": "peer", "port": PEER_PORT, "targetPort": "peer", "protocol": "TCP"},
                {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }
    result: list[Obj] = [service, _statefulset(etcd, namespace, common, tls=tls, members=members)]
    result += _network_policies(namespace, common, monitoring_namespace)
    if tls:
        result += _certificates(etcd, namespace, common)
        result.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": NAME, "namespace": namespace, "labels": common},
                "spec": {"minAvailable": members // 2 + 1, "selector": {"matchLabels": APP_LABEL}},
            }
        )
        result += _snapshot(etcd, namespace, common)
    return result
