"""KServe and Knative Serving on the local control plane, configured from upstream's own data.

What a real install gets from a chart or an operator, the tests get from the same source:
- KServe: the ``kserve-crd`` and ``kserve-resources`` charts of the pinned version, rendered by
  the real Helm engine (``helm-python-sdk``) with exactly the values modelplane computes; the
  tests take the CRDs, ``inferenceservice-config`` and the webhook configurations from it, and
  run ``cmd/manager`` (controllers and webhooks) as a local process.
- Knative Serving: the ``config/`` YAML of the Go modules the binaries were built from (read from
  the module cache at test time, never copied): CRDs, ``config-*`` ConfigMaps, webhook
  configurations. modelplane configures Knative through ``KnativeServing.spec.config``; the
  operator that turns it into ConfigMaps cannot be built here (the module proxy serves no
  ``knative.dev/operator`` of the 1.21 line), so :func:`operator_config_transform` applies what
  the operator does, cited there.

Webhook configurations point at 127.0.0.1 instead of a Service (nothing routes to a Service
without kube-proxy). Knative's webhook rewrites its own configurations and refuses any without a
Service reference (knative.dev/pkg ``webhook/resourcesemantics/defaulting/defaulting.go:257``),
so its upstream configurations stay Service-based but select no namespace, and once the webhook
has filled in their rules a twin with the same rules and a 127.0.0.1 URL is created.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from tests.cluster.controlplane import ControlPlane, wait_for
from tests.cluster.kubectl import Kube

Obj = dict[str, Any]

KSERVE_NAMESPACE = "kserve"
KSERVE_MODULE = "github.com/kserve/kserve"
KNATIVE_NAMESPACE = "knative-serving"
KSERVE_WEBHOOK_PORT = 9443
KNATIVE_WEBHOOK_PORT = 8443
NEVER = {"key": "modelplane.dev/loopback-webhook-twin", "operator": "Exists"}
"""Added to upstream's Service-based Knative webhooks: no namespace carries it."""


def module_dir(module: str, version: str) -> Path:
    """The Go module cache directory of ``module@version`` (downloaded by the tools build)."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return Path(json.loads(result.stdout)["Dir"])


def required_version(gomod: Path, module: str) -> str:
    """The version of ``module`` a go.mod requires."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", gomod.read_text(), re.M)
    if not match:
        raise LookupError(f"{gomod} does not require {module}")
    return match.group(1)


def yaml_documents(path: Path) -> Iterator[Obj]:
    for document in yaml.safe_load_all(path.read_text()):
        if isinstance(document, dict) and "kind" in document:
            yield document


# --- KServe -----------------------------------------------------------------------------------


def render_chart(chart_dir: Path, values: dict[str, Any], *, name: str, namespace: str) -> list[Obj]:
    """Render a chart with the real Helm engine, CRDs under ``crds/`` included first."""
    with helm.Chart.load(chart_dir) as chart:  # a fresh handle per render: render() mutates it
        crds = [d for crd in chart.crds for d in yaml.safe_load_all(crd["data"]) if isinstance(d, dict)]
        manifests = chart.render(values, name=name, namespace=namespace)
    documents = [
        d
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for d in re.split(r"(?:^|\s*\n)---\s*", text)
        if d.strip()
    ]
    rendered = [o for o in map(yaml.safe_load, documents) if isinstance(o, dict) and "kind" in o]
    return crds + rendered


def kserve_chart_dir(charts_dir: Path, chart: str, version: str) -> Path:
    """A KServe chart: the reference copy beside the project, else the one in KServe's Go module.

    The reference copies hold kserve-crd and kserve-resources; the LLMInferenceService charts
    (kserve-llmisvc-crd) are only in the module's ``charts/`` (byte-identical for the other two).
    """
    local = charts_dir / chart / version
    return local if local.is_dir() else module_dir(KSERVE_MODULE, version) / "charts" / chart


def kserve_objects(charts_dir: Path, releases: dict[str, Any], ca_bundle: bytes) -> list[Obj]:
    """CRDs, ``inferenceservice-config`` and webhook configurations (pointing at 127.0.0.1).

    The LLMInferenceService CRDs come with them when the stack installs LLM services. Their
    webhooks (served by KServe's separate ``llmisvc`` manager, which is not built here) are left
    out; ``tests/upstream/test_kserve_webhooks.py`` runs those validators on the same objects.
    The CRDs' conversion webhook is not needed: modelplane writes v1alpha2, the stored version.
    """
    objects: list[Obj] = []
    crds: set[str] = set()
    llm_crds = ["kserve-llmisvc-crd"] if "kserve-llmisvc-crd" in releases else []
    for release in ["kserve-crd", "kserve", *llm_crds]:
        chart = releases[release]
        rendered = render_chart(
            kserve_chart_dir(charts_dir, chart.chart, chart.version),
            chart.values,
            name=release,
            namespace=chart.namespace,
        )
        for obj in rendered:
            kind = obj["kind"]
            if kind == "CustomResourceDefinition":
                if obj["metadata"]["name"] not in crds:  # ClusterStorageContainer is in both CRD charts
                    crds.add(obj["metadata"]["name"])
                    objects.append(obj)
            elif kind == "ConfigMap" and obj["metadata"]["name"] == "inferenceservice-config":
                objects.append(obj)
            elif kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
                objects.append(loopback_webhooks(obj, KSERVE_WEBHOOK_PORT, ca_bundle))
    return objects


def loopback_webhooks(config: Obj, port: int, ca_bundle: bytes) -> Obj:
    """A webhook configuration whose every webhook calls https://127.0.0.1:port<its path>."""
    config = copy.deepcopy(config)
    config["metadata"].pop("annotations", None)  # cert-manager's CA injection: we set caBundle
    for webhook in config["webhooks"]:
        path = webhook["clientConfig"].get("service", {}).get("path", "/")
        webhook["clientConfig"] = {
            "url": f"https://127.0.0.1:{port}{path}",
            "caBundle": base64.b64encode(ca_bundle).decode(),
        }
    return config


def start_kserve(cp: ControlPlane) -> None:
    certs = cp.workdir / "kserve-tmp" / "k8s-webhook-server" / "serving-certs"
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "tls.crt").write_bytes(cp.certs.path("webhook.crt").read_bytes())
    (certs / "tls.key").write_bytes(cp.certs.path("webhook.key").read_bytes())
    cp.start(
        "kserve-manager",
        [
            cp.binary("manager"),
            "--metrics-addr=0",
            "--health-probe-addr=127.0.0.1:8081",
            f"--webhook-port={KSERVE_WEBHOOK_PORT}",
            "--leader-elect=false",
        ],
        # controller-runtime's webhook server reads its certificate from $TMPDIR/k8s-webhook-server.
        env={
            "KUBECONFIG": str(cp.inner_kubeconfig),
            "POD_NAMESPACE": KSERVE_NAMESPACE,
            "TMPDIR": str(certs.parents[1]),
        },
    )


# --- Knative Serving --------------------------------------------------------------------------


def knative_modules(serving_dir: Path) -> dict[str, Path]:
    """The module directories of Knative Serving and the modules its config/ links to."""
    gomod = serving_dir / "go.mod"
    dirs = {"serving": serving_dir}
    for name in ("networking", "caching"):
        module = f"knative.dev/{name}"
        dirs[name] = module_dir(module, required_version(gomod, module))
    return dirs


def operator_config_transform(configmaps: list[Obj], spec_config: dict[str, dict[str, str]]) -> list[Obj]:
    """What the Knative operator does with ``KnativeServing.spec.config``.

    knative/operator ``pkg/reconciler/common/config_maps.go:27-62`` (``ConfigMapTransform`` and
    ``UpdateConfigMap``): ``spec.config.<name>`` applies to the ConfigMap named ``<name>`` or,
    the prefix being optional, ``config-<name>``; each key is set in its ``data``, overwriting a
    key of the same name and keeping every other key (``_example`` included).
    """
    out = []
    for cm in configmaps:
        cm = copy.deepcopy(cm)
        name = cm["metadata"]["name"]
        data = spec_config.get(name, spec_config.get(name.removeprefix("config-")))
        if data is not None:
            cm.setdefault("data", {}).update(data)
        out.append(cm)
    return out


def knative_objects(modules: dict[str, Path], spec_config: dict[str, dict[str, str]]) -> dict[str, list[Obj]]:
    """Knative's CRDs, namespace, ConfigMaps and (Service-based, inert) webhook configurations."""
    core = modules["serving"] / "config" / "core"
    crds = [o for f in sorted((core / "300-resources").glob("*.yaml")) for o in yaml_documents(f)]
    for name in ("certificate", "ingress", "serverlessservice", "domain-claim"):
        crds += yaml_documents(modules["networking"] / "config" / f"{name}.yaml")
    crds += yaml_documents(modules["caching"] / "config" / "image.yaml")
    configmaps = [o for f in sorted((core / "configmaps").glob("*.yaml")) for o in yaml_documents(f)]
    configmaps += yaml_documents(modules["networking"] / "config" / "config-network.yaml")
    webhooks = []
    for f in ("defaulting", "resource-validation", "configmap-validation"):
        for config in yaml_documents(core / "webhooks" / f"{f}.yaml"):
            for webhook in config["webhooks"]:
                selector = webhook.setdefault("namespaceSelector", {})
                selector.setdefault("matchExpressions", []).append(NEVER)
            webhooks.append(config)
    return {
        "crds": crds,
        "namespace": list(yaml_documents(core / "100-namespace.yaml")),
        "configmaps": operator_config_transform(configmaps, spec_config),
        "webhooks": webhooks,
    }


def webhook_secret(cp: ControlPlane) -> Obj:
    """``webhook-certs`` filled in as Knative's certificate reconciler would, with a 127.0.0.1 SAN.

    knative.dev/pkg ``webhook/certificates/certificates.go`` keeps a secret whose certificate is
    valid for more than a day; ``certificates/resources/secret.go:29-34`` names the keys.
    """
    data = {
        "server-cert.pem": cp.certs.path("webhook.crt").read_bytes(),
        "server-key.pem": cp.certs.path("webhook.key").read_bytes(),
        "ca-cert.pem": cp.certs.path("ca.crt").read_bytes(),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "webhook-certs", "namespace": KNATIVE_NAMESPACE},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def knative_env(cp: ControlPlane, component: str) -> dict[str, str]:
    # The env of config/core/deployments/<component>.yaml, less what only a pod has.
    return {
        "KUBECONFIG": str(cp.inner_kubeconfig),
        "SYSTEM_NAMESPACE": KNATIVE_NAMESPACE,
        "CONFIG_LOGGING_NAME": "config-logging",
        "CONFIG_OBSERVABILITY_NAME": "config-observability",
        "METRICS_DOMAIN": "knative.dev/internal/serving",
        "POD_NAME": f"{component}-0",
        "WEBHOOK_NAME": "webhook",
        "WEBHOOK_PORT": str(KNATIVE_WEBHOOK_PORT),
        "KUBERNETES_MIN_VERSION": "",
    }


def loopback_twin(reconciled: Obj, ca_bundle: bytes) -> Obj:
    """A copy of a webhook configuration Knative's webhook reconciled, calling 127.0.0.1 instead."""
    twin = loopback_webhooks(reconciled, KNATIVE_WEBHOOK_PORT, ca_bundle)
    twin["metadata"] = {"name": f"{reconciled['metadata']['name']}.loopback"}
    for webhook in twin["webhooks"]:
        expressions = webhook["namespaceSelector"]["matchExpressions"]
        webhook["namespaceSelector"]["matchExpressions"] = [e for e in expressions if e != NEVER]
    return twin


def reconciled_webhooks(cp: ControlPlane, names: list[tuple[str, str]]) -> list[Obj]:
    """Wait until Knative's webhook has filled in rules and CA of each of its configurations."""
    kube = Kube(cp.kubeconfig)
    found: dict[str, Obj] = {}

    def ready() -> bool:
        for kind, name in names:
            obj = kube.get("admissionregistration.k8s.io/v1", kind, name)
            if obj and all(w.get("rules") and w["clientConfig"].get("caBundle") for w in obj["webhooks"]):
                found[name] = obj
        return len(found) == len(names)

    wait_for("Knative's webhook to reconcile its configurations", ready, timeout=120, alive=cp.check_alive)
    return [found[name] for _, name in names]


# --- KEDA -------------------------------------------------------------------------------------


def keda_crds(keda_dir: Path) -> list[Obj]:
    """KEDA's CRDs from its module's ``config/crd/bases`` (ScaledObject and the kinds it also watches)."""
    return [
        o for f in sorted((keda_dir / "config" / "crd" / "bases").glob("*.yaml")) for o in yaml_documents(f)
    ]


def start_keda(cp: ControlPlane, namespace: str) -> None:
    """KEDA's operator: it turns the ScaledObjects KServe creates into HPAs (minReplicaCount)."""
    certs = cp.workdir / "keda-certs"
    certs.mkdir(parents=True, exist_ok=True)
    for source, target in (("webhook.crt", "tls.crt"), ("webhook.key", "tls.key"), ("ca.crt", "ca.crt")):
        (certs / target).write_bytes(cp.certs.path(source).read_bytes())
    cp.start(
        "keda-operator",
        [
            cp.binary("operator"),
            "--leader-elect=false",
            "--metrics-bind-address=0",
            "--health-probe-bind-address=127.0.0.1:8082",
            "--metrics-service-bind-address=127.0.0.1:9666",
            f"--cert-dir={certs}",
            f"--ca-dir={certs}",
            "--enable-webhook-patching=false",
        ],
        env={
            "KUBECONFIG": str(cp.inner_kubeconfig),
            "WATCH_NAMESPACE": "",
            "POD_NAMESPACE": namespace,
            "KEDA_CLUSTER_OBJECT_NAMESPACE": namespace,
            "OPERATOR_NAME": "keda-operator",
        },
    )
