"""Malformed stack files: each is refused with exactly the problems a user needs to fix it.

Every case is a whole file written to disk and read with ``load_stack``; the expected lines
are the complete ``StackError.problems``, file name included, in file order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.errors import StackError
from modelplane.stack import MAX_STACK_BYTES, load_stack

FILE = "bad.yaml"

HEAD = """\
stack: {name: dev, tier: dev}
tenants:
  - name: fraud
models:
"""
SKLEARN_MODEL = """\
  - name: fraud-detector
    tenant: fraud
    runtime: sklearn
    format: {name: sklearn, version: "1"}
    storage: {uri: "gs://models/fraud"}
    version: v1
"""
TRITON_MODEL = """\
  - name: embedder
    tenant: fraud
    runtime: triton
    format: {name: onnx, version: "1"}
    storage: {uri: "gs://models/embedder"}
    version: v1
"""
MIG_POOL = """\
gpuPools:
  - name: h100
    product: NVIDIA-H100-80GB-HBM3
    sharing: {mode: mig, profiles: {3g.40gb: 1, 1g.10gb: 4}}
    maxNodes: 2
"""
SHARED_POOL = """\
gpuPools:
  - name: l4
    product: NVIDIA-L4
    sharing: {mode: time-slicing, replicas: 4}
    maxNodes: 2
"""
VALID = HEAD + SKLEARN_MODEL


def _alias_bomb() -> str:
    """Nine levels of nine aliases each: a few hundred bytes that expand to 9^9 strings."""
    lines = [f"a: &a [{', '.join(['lol'] * 9)}]"]
    for parent, child in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{child}: &{child} [{', '.join([f'*{parent}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _ten_megabytes() -> bytes:
    return (VALID + "# " + "padding " * (10 * 1024 * 1024 // 8) + "\n").encode()


DNS_LABEL_RULE = (
    "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending alphanumeric"
)
MODEL_KEYS = (
    "annotations, deploymentMode, explainer, format, image, labels, name, predictor, protocol, resources, "
    "rollout, runtime, runtimeVersion, sampleRequest, scaling, slo, storage, tenant, transformer, version, workers"
)
KNATIVE_METRICS = (
    "cannot be expressed in knative mode: Knative's pod autoscaler scales on concurrency or rps; "
    "use one of those, or deploymentMode standard (cpu and memory through an HPA, queue-depth, "
    "gpu-utilization and tokens-per-second through KEDA)"
)
PLAIN_DATA = "stack files hold plain data (mappings, lists, strings, numbers, booleans)"

Content = str | bytes | Callable[[], str | bytes]


def case(case_id: str, content: Content, *problems: str) -> Any:
    return pytest.param(content, list(problems), id=case_id)


CASES = [
    # --- the text itself ---
    case(
        "yaml-syntax-error",
        "stack: {name: dev, tier: dev\ntenants: []\n",
        "bad.yaml: line 2, column 8: YAML error: did not find expected ',' or '}'",
    ),
    case(
        "yaml-tab-indentation",
        "stack:\n\tname: dev\n",
        "bad.yaml: line 2, column 1: YAML error: a tab character; YAML indents with spaces only",
    ),
    case(
        "ten-megabyte-file",
        _ten_megabytes,
        f"bad.yaml: <root>: file is {len(_ten_megabytes()):,} bytes; stack files are limited to {MAX_STACK_BYTES:,}",
    ),
    case(
        "alias-bomb",
        _alias_bomb,
        "bad.yaml: <root>: the document expands to more than 2,000,000 YAML nodes once aliases are "
        "resolved (an alias bomb?); a stack file needs far fewer",
    ),
    case(
        "recursive-alias",
        "stack: &s {name: dev, tier: dev, again: *s}\n",
        "bad.yaml: stack.again: a YAML alias refers to a collection that contains it; "
        "stack files cannot be recursive",
    ),
    case(
        "non-utf8-bytes",
        b"stack: {name: dev, tier: dev}\ndescription: caf\xe9\n",
        "bad.yaml: line 2, column 17: not UTF-8 text (byte 0xe9); save the file as UTF-8",
    ),
    case(
        "empty-file",
        "",
        "bad.yaml: <root>: the file is empty; a stack file is a mapping with at least `stack`",
    ),
    case(
        "only-comments",
        "# the dev stack\n\n# (to be written)\n",
        "bad.yaml: <root>: the file is empty; a stack file is a mapping with at least `stack`",
    ),
    case(
        "multiple-documents",
        VALID + "---\n" + VALID,
        "bad.yaml: <root>: a stack file holds one YAML document; another starts at line 11",
    ),
    case(
        "python-object-tag",
        "stack: !!python/object/apply:os.system ['echo owned']\n",
        f"bad.yaml: stack: YAML tag '!!python/object/apply:os.system' is not allowed; {PLAIN_DATA}",
    ),
    case(
        "explicit-tag-that-cannot-read-its-value",
        "stack: {name: dev, tier: dev}\nmonitoring: {latencyObjectiveMs: !!int fast}\n",
        'bad.yaml: monitoring.latencyObjectiveMs: "fast" is not a valid !!int',
    ),
    case(
        "impossible-date",
        "stack: {name: dev, tier: dev, description: 2024-13-45}\n",
        'bad.yaml: stack.description: "2024-13-45" is not a valid !!timestamp',
    ),
    case(
        "number-too-long-to-read",
        "stack: {name: dev, tier: dev}\nmonitoring: {latencyObjectiveMs: " + "9" * 5000 + "}\n",
        f'bad.yaml: monitoring.latencyObjectiveMs: "{"9" * 76}... is not a valid !!int',
    ),
    case(
        "duplicate-yaml-key-top-level",
        VALID + "stack: {name: prod, tier: prod}\n",
        "bad.yaml: stack: duplicate key (first at line 1, again at line 11)",
    ),
    case(
        "duplicate-yaml-key-in-list-item",
        VALID + "    version: v2\n",
        "bad.yaml: models[0].version: duplicate key (first at line 10, again at line 11)",
    ),
    # --- shapes and types ---
    case(
        "list-at-top-level",
        "- stack: {name: dev, tier: dev}\n",
        "bad.yaml: <root>: a stack file must be a mapping of sections (got a list)",
    ),
    case(
        "list-where-mapping-belongs",
        VALID + "    protocol: [v2, grpc]\n",
        "bad.yaml: models[0].protocol: must be a mapping (got a list)",
    ),
    case(
        "mapping-where-list-belongs",
        VALID.replace("tenants:\n  - name: fraud", "tenants: {name: fraud}"),
        "bad.yaml: tenants: must be a list (got a mapping)",
    ),
    case(
        "empty-section",
        HEAD,
        "bad.yaml: models: must be a list; an empty value is null in YAML, write [] for an empty list (got null)",
    ),
    case(
        "word-for-number",
        VALID + "    scaling: {maxReplicas: lots}\n",
        'bad.yaml: models[0].scaling.maxReplicas: must be a whole number (got "lots")',
    ),
    case(
        "number-for-string",
        VALID.replace("version: v1", "version: 1"),
        'bad.yaml: models[0].version: must be a string; quote it: "1" (got 1)',
    ),
    case(
        "word-for-boolean",
        VALID + "monitoring: {enabled: maybe}\n",
        'bad.yaml: monitoring.enabled: must be true or false (got "maybe")',
    ),
    case(
        "missing-required-fields",
        HEAD + "  - name: fraud-detector\n    runtime: sklearn\n",
        "bad.yaml: models[0].tenant: required field is missing",
        "bad.yaml: models[0].version: required field is missing",
    ),
    # --- unknown keys ---
    case(
        "unknown-key-top-level",
        VALID + "tenant: fraud\n",
        "bad.yaml: tenant: unknown field; did you mean 'tenants'? (got \"fraud\")",
    ),
    case(
        "unknown-key-nested",
        VALID + "controlPlane: {defaultDeployMode: knative}\n",
        "bad.yaml: controlPlane.defaultDeployMode: unknown field; did you mean 'defaultDeploymentMode'? "
        '(got "knative")',
    ),
    case(
        "unknown-key-in-list-item",
        VALID + "    scalling: {maxReplicas: 2}\n",
        "bad.yaml: models[0].scalling: unknown field; did you mean 'scaling'?",
    ),
    case(
        "unknown-key-in-mig-sharing",
        VALID
        + "gpuPools:\n  - name: h100\n    product: H100\n    sharing: {mode: mig, profile: {1g.10gb: 7}}\n",
        "bad.yaml: gpuPools[0].sharing.profile: unknown field; did you mean 'profiles'?",
    ),
    case(
        "unknown-key-in-time-slicing-sharing",
        VALID + "gpuPools:\n  - name: l4\n    product: L4\n    sharing: {mode: time-slicing, replica: 4}\n",
        "bad.yaml: gpuPools[0].sharing.replica: unknown field; did you mean 'replicas'? (got 4)",
    ),
    case(
        "unknown-key-without-close-match",
        VALID + "    owner: team-fraud\n",
        f'bad.yaml: models[0].owner: unknown field (allowed: {MODEL_KEYS}) (got "team-fraud")',
    ),
    case(
        "snake-case-key",
        VALID + "    scaling: {min_replicas: 2}\n",
        "bad.yaml: models[0].scaling.min_replicas: unknown field; did you mean 'minReplicas'? (got 2)",
    ),
    case(
        "key-in-wrong-case",
        VALID.replace("stack: {name: dev, tier: dev}", "stack: {name: dev, TIER: dev}"),
        "bad.yaml: stack.TIER: unknown field; did you mean 'tier'? (got \"dev\")",
    ),
    case(
        "missing-sharing-mode",
        VALID + "gpuPools:\n  - {name: l4, product: L4, sharing: {replicas: 4}}\n",
        "bad.yaml: gpuPools[0].sharing.mode: required field is missing; one of 'exclusive', 'time-slicing', 'mig'",
    ),
    case(
        "unknown-sharing-mode",
        VALID + "gpuPools:\n  - {name: l4, product: L4, sharing: {mode: shared}}\n",
        "bad.yaml: gpuPools[0].sharing.mode: must be one of 'exclusive', 'time-slicing', 'mig' (got \"shared\")",
    ),
    # --- values ---
    case(
        "negative-quantity",
        VALID + "    resources: {cpu: -1}\n",
        "bad.yaml: models[0].resources.cpu: must not be negative (got -1)",
    ),
    case(
        "list-for-quantity",
        VALID + "    resources: {cpu: [1, 2]}\n",
        "bad.yaml: models[0].resources.cpu: must be a Kubernetes quantity such as 500m, 2, 512Mi or 4Gi "
        "(got a list)",
    ),
    case(
        "unparsable-quantity",
        VALID + "    resources: {memory: 2GB}\n",
        "bad.yaml: models[0].resources.memory: unknown unit 'GB'; write 2G or 2Gi (got \"2GB\")",
    ),
    case(
        "dns-name-uppercase",
        VALID.replace("name: fraud\n", "name: Fraud\n").replace("tenant: fraud", "tenant: Fraud"),
        f'bad.yaml: tenants[0].name: {DNS_LABEL_RULE} (got "Fraud")',
        f'bad.yaml: models[0].tenant: {DNS_LABEL_RULE} (got "Fraud")',
    ),
    case(
        "dns-name-too-long",
        VALID.replace("name: fraud-detector", "name: " + "fraud-detector-" * 4 + "version2"),
        "bad.yaml: models[0].name: must be at most 63 characters (has 68) "
        '(got "fraud-detector-fraud-detector-fraud-detector-fraud-detector-version2")',
    ),
    case(
        "model-name-leading-digit",
        VALID.replace("name: fraud-detector", "name: 2fa-detector"),
        "bad.yaml: models[0].name: must start with a lower-case letter (KServe's InferenceService name rule) "
        '(got "2fa-detector")',
    ),
    case(
        "storage-uri-with-credentials-is-not-echoed",
        VALID.replace("gs://models/fraud", "s3://AKIA:hunter2@models/fraud"),
        "bad.yaml: models[0].storage.uri: must not embed credentials; reference a secret with secretName",
    ),
    case(
        "image-latest",
        VALID.replace("runtime: sklearn", "runtime: custom") + "    image: ghcr.io/example/server:latest\n",
        "bad.yaml: models[0].image: must not use ':latest'; pin a version or a digest "
        '(got "ghcr.io/example/server:latest")',
    ),
    case(
        "label-key-with-space",
        VALID + "    labels: {Team Name: fraud, app.kubernetes.io/part-of: fraud}\n",
        'bad.yaml: models[0].labels["Team Name"]: must be a Kubernetes label key: [prefix/]name, the name at '
        'most 63 of [A-Za-z0-9-_.], alphanumeric at both ends (got "Team Name")',
    ),
    # --- references and rules across fields ---
    case(
        "duplicate-model-name-in-namespace",
        VALID + SKLEARN_MODEL.replace("v1", "v2"),
        "bad.yaml: models[1].name: duplicate model name in namespace 'fraud' (also models[0]) "
        '(got "fraud-detector")',
    ),
    case(
        "duplicate-tenant-name",
        VALID.replace("  - name: fraud\n", "  - name: fraud\n  - name: fraud\n"),
        'bad.yaml: tenants[1].name: duplicate tenant name (also tenants[0]) (got "fraud")',
    ),
    case(
        "dangling-tenant",
        VALID.replace("tenant: fraud", "tenant: payments"),
        'bad.yaml: models[0].tenant: unknown tenant (tenants: fraud) (got "payments")',
    ),
    case(
        "dangling-runtime",
        VALID.replace("runtime: sklearn", "runtime: scikit"),
        "bad.yaml: models[0].runtime: unknown runtime (catalog: autogluon, custom, huggingface, "
        "huggingface-multinode, lightgbm, mlserver, openvino, paddle, pmml, predictive, sklearn, tensorflow, "
        'torchserve, triton, vllm, xgboost) (got "scikit")',
    ),
    case(
        "dangling-pool",
        HEAD + TRITON_MODEL + "    resources: {gpu: 1, pool: a100}\n" + SHARED_POOL,
        'bad.yaml: models[0].resources.pool: unknown GPU pool (gpuPools: l4) (got "a100")',
    ),
    case(
        "runtime-cannot-serve-format",
        VALID.replace("{name: sklearn,", "{name: onnx,"),
        "bad.yaml: models[0].format: runtime 'sklearn' does not serve format 'onnx:1'; it serves sklearn:1 "
        '(runtimes that serve it: openvino, triton) (got "onnx:1")',
    ),
    case(
        "runtime-does-not-speak-protocol",
        VALID + "    protocol: {version: v2, transport: grpc}\n",
        "bad.yaml: models[0].protocol: runtime 'sklearn' does not speak 'grpc-v2'; it speaks v1, v2 "
        '(runtimes that speak grpc-v2: mlserver, openvino, torchserve, triton) (got "grpc-v2")',
    ),
    case(
        "min-replicas-above-max",
        VALID + "    scaling: {minReplicas: 5, maxReplicas: 2}\n",
        "bad.yaml: models[0].scaling.minReplicas: is greater than scaling.maxReplicas 2; "
        "lower minReplicas or raise maxReplicas (got 5)",
    ),
    case(
        "gpu-model-without-pool",
        HEAD + TRITON_MODEL + "    resources: {gpu: 1}\n" + SHARED_POOL,
        "bad.yaml: models[0].resources.pool: resources.gpu is 1, so the model needs a GPU pool; "
        "name one of gpuPools here",
    ),
    case(
        "cpu-model-naming-pool",
        VALID + "    resources: {pool: l4}\n" + SHARED_POOL,
        "bad.yaml: models[0].resources.pool: names a GPU pool but resources.gpu is 0 (a CPU model); "
        'set resources.gpu or remove pool (got "l4")',
    ),
    case(
        "mig-profile-not-offered",
        HEAD + TRITON_MODEL + "    resources: {gpu: 1, pool: h100, migProfile: 2g.20gb}\n" + MIG_POOL,
        "bad.yaml: models[0].resources.migProfile: pool 'h100' does not offer MIG profile '2g.20gb' "
        '(it offers 1g.10gb, 3g.40gb) (got "2g.20gb")',
    ),
    case(
        "time-sliced-pool-with-exclusive-memory",
        HEAD + TRITON_MODEL + "    resources: {gpu: 1, pool: l4, exclusiveGpuMemory: true}\n" + SHARED_POOL,
        "bad.yaml: models[0].resources.exclusiveGpuMemory: pool 'l4' is time-sliced (no memory isolation); "
        "use an exclusive or MIG pool (got true)",
    ),
    case(
        "modelmesh-model-with-mesh-disabled",
        HEAD + TRITON_MODEL + "    deploymentMode: modelmesh\n",
        "bad.yaml: models[0].deploymentMode: modelmesh mode needs modelMesh.enabled: true; enable the mesh, "
        'or use deploymentMode knative or standard (got "modelmesh")',
    ),
    case(
        "knative-model-with-cpu-metric",
        VALID + "    deploymentMode: knative\n    scaling: {metric: cpu}\n",
        f"bad.yaml: models[0].scaling.metric: metric 'cpu' {KNATIVE_METRICS} (got \"cpu\")",
    ),
    case(
        "standard-model-scaling-to-zero-on-hpa",
        VALID + "    deploymentMode: standard\n    scaling: {minReplicas: 0, metric: memory}\n",
        "bad.yaml: models[0].scaling.minReplicas: minReplicas 0 cannot be expressed in standard mode with an "
        "HPA (it keeps at least 1 replica); use deploymentMode knative (its activator holds requests while the "
        "first pod starts), or minReplicas 1 (got 0)",
    ),
    case(
        "standard-model-scaling-to-zero-on-keda",
        VALID + "    deploymentMode: standard\n    scaling: {minReplicas: 0, metric: rps}\n",
        "bad.yaml: models[0].scaling.minReplicas: minReplicas 0 cannot scale up again in standard mode: KEDA "
        "would scale on 'rps' measured on the model's own pods, and with no pod the query has no data, which "
        "KEDA reads as 0; use minReplicas 1, or deploymentMode knative (its activator counts requests while no "
        "pod runs) (got 0)",
    ),
    case(
        "transformer-port-in-args",
        VALID + "    transformer: {image: ghcr.io/example/tok:1.0.0, args: [--http_port=9000]}\n",
        "bad.yaml: models[0].transformer.args: sets --http_port; set port instead, which also names the "
        'probes\' port (got "--http_port=9000")',
    ),
    case(
        "model-label-overwrites-the-version-label",
        VALID + "    labels: {modelplane.dev/version: v9, team: fraud, app: scorer}\n",
        'bad.yaml: models[0].labels["modelplane.dev/version"]: is a reserved label key (modelplane\'s own (it '
        'tells models, versions and rollouts apart by them)); choose another key (got "modelplane.dev/version")',
        "bad.yaml: models[0].labels.app: is a reserved label key (KServe's own in Standard mode "
        '(isvc.<component>, its Service selects it)); choose another key (got "app")',
    ),
    case(
        "tenant-label-overwrites-pod-security",
        "stack: {name: dev, tier: dev}\ntenants:\n  - name: fraud\n"
        "    labels: {pod-security.kubernetes.io/enforce: privileged, cost-centre: c42}\nmodels: []\n",
        'bad.yaml: tenants[0].labels["pod-security.kubernetes.io/enforce"]: is a reserved label key (modelplane '
        "enforces Pod Security 'restricted' with these); choose another key (got "
        '"pod-security.kubernetes.io/enforce")',
    ),
    case(
        "standard-model-name-too-long-for-kserve",
        HEAD
        + SKLEARN_MODEL.replace("fraud-detector", "fraud-detector-gradient-boosted-ensemble")
        + "    deploymentMode: standard\n",
        "bad.yaml: models[0].name: is too long for standard mode: KServe derives "
        "'fraud-detector-gradient-boosted-ensemble-<version>-predictor' (8 characters for the version) from "
        "it, 59 characters, and its pods' label app=isvc.<name> and its host <name>-fraud.<domain> allow 57 "
        'characters; use a name of at most 38 characters (got "fraud-detector-gradient-boosted-ensemble")',
    ),
    case(
        "knative-model-name-too-long-for-a-canary",
        HEAD + SKLEARN_MODEL.replace("fraud-detector", "f" * 49) + "    deploymentMode: knative\n",
        f"bad.yaml: models[0].name: is too long for knative mode: KServe derives 'prev-{'f' * 49}-predictor' from "
        "it, 64 characters, and a Kubernetes Service name and a DNS label allow 63 characters; use a name of at "
        f'most 48 characters (got "{"f" * 49}")',
    ),
    case(
        "knative-transformer-on-a-queue-proxy-port",
        VALID
        + "    deploymentMode: knative\n    transformer: {image: ghcr.io/example/tok:1.0.0, port: 9091}\n",
        "bad.yaml: models[0].transformer.port: is reserved by Knative (its queue-proxy and profiling use 8008, "
        "8012, 8013, 8022, 9090, 9091), which refuses it as a container port in knative mode; choose another "
        "port (got 9091)",
    ),
    case(
        "modelmesh-model-on-hugging-face-storage",
        "stack: {name: dev, tier: dev}\nmodelMesh: {enabled: true}\ntenants:\n  - name: fraud\nmodels:\n"
        + SKLEARN_MODEL.replace("sklearn\n", "mlserver\n", 1).replace("gs://models/fraud", "hf://org/fraud")
        + "    deploymentMode: modelmesh\n",
        "bad.yaml: models[0].storage.uri: ModelMesh cannot read hf:// storage (it reads pvc://, s3://, gs://, "
        'https://); copy the model there, or use deploymentMode knative or standard (got "hf://org/fraud")',
    ),
    case(
        "knative-progress-deadline-of-zero",
        VALID + "    deploymentMode: knative\n    scaling: {progressDeadline: 0s}\n",
        "bad.yaml: models[0].scaling.progressDeadline: must be at least 1s: Kubernetes refuses a Deployment whose "
        'progress deadline is 0 (got "0s")',
    ),
    # --- component settings: secrets by reference, keys modelplane or KServe owns, mode limits ---
    case(
        "inline-credential-is-not-echoed",
        VALID
        + "    predictor:\n      env:\n        - {name: HF_TOKEN, value: hf_abcdefghijklmnopqrstuvwxyz}\n",
        "bad.yaml: models[0].predictor.env[0].value: HF_TOKEN names a credential, which must not be written into "
        "the stack; store it in a Secret and reference it with secretKeyRef: {name, key}",
    ),
    case(
        "access-key-under-an-innocent-name-is-not-echoed",
        VALID + "    predictor:\n      env:\n        - {name: MODEL_OPTS, value: AKIAABCDEFGHIJKLMNOP}\n",
        "bad.yaml: models[0].predictor.env[0].value: the value of MODEL_OPTS looks like an access key or token, "
        "which must not be written into the stack; store it in a Secret and reference it with secretKeyRef: "
        "{name, key}",
    ),
    case(
        "environment-kserve-blocks",
        VALID + "    predictor:\n      env:\n        - {name: PYTHONPATH, value: /opt}\n",
        "bad.yaml: models[0].predictor.env[0].name: is a variable no component may set: KServe's webhook refuses "
        'it in every container for security reasons (got "PYTHONPATH")',
    ),
    case(
        "variable-with-two-sources",
        VALID + "    predictor:\n      env:\n        - {name: A, value: x, fieldRef: metadata.name}\n",
        "bad.yaml: models[0].predictor.env[0]: give exactly one of value, secretKeyRef, configMapKeyRef, "
        "fieldRef (got 2)",
    ),
    case(
        "field-reference-kubernetes-cannot-expose",
        VALID + "    predictor:\n      env:\n        - {name: A, fieldRef: spec.containers}\n",
        "bad.yaml: models[0].predictor.env[0].fieldRef: must be a pod field Kubernetes can expose: "
        "metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'], "
        'spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s) (got "spec.containers")',
    ),
    case(
        "reserved-model-label",
        VALID + "    labels: {serving.kserve.io/inferenceservice: x}\n",
        'bad.yaml: models[0].labels["serving.kserve.io/inferenceservice"]: is a reserved label key (KServe\'s own); '
        'choose another key (got "serving.kserve.io/inferenceservice")',
    ),
    case(
        "reserved-pod-label",
        VALID + "    predictor:\n      labels: {component: x}\n",
        "bad.yaml: models[0].predictor.labels.component: is a reserved label key (KServe's own (the component of "
        'each pod)); choose another key (got "component")',
    ),
    case(
        "annotation-a-typed-field-derives",
        VALID + "    annotations: {serving.kserve.io/deploymentMode: Standard}\n",
        'bad.yaml: models[0].annotations["serving.kserve.io/deploymentMode"]: is an annotation modelplane '
        'derives; set models[].deploymentMode instead (got "serving.kserve.io/deploymentMode")',
    ),
    case(
        "knative-scale-annotation",
        VALID + "    predictor:\n      annotations: {autoscaling.knative.dev/min-scale: '3'}\n",
        'bad.yaml: models[0].predictor.annotations["autoscaling.knative.dev/min-scale"]: is reserved: set '
        "models[].scaling (KServe drops min-scale and max-scale annotations: pkg/constants "
        'ServiceAnnotationDisallowedList) (got "autoscaling.knative.dev/min-scale")',
    ),
    case(
        "volume-over-the-model-files",
        VALID
        + "    predictor:\n      volumes:\n        - {name: extra, mountPath: /mnt/models, emptyDir: {}}\n",
        "bad.yaml: models[0].predictor.volumes[0].mountPath: /mnt/models is where KServe puts the model's files; "
        'mount elsewhere (got "/mnt/models")',
    ),
    case(
        "unknown-storage-scheme",
        VALID.replace("gs://models/fraud", "ftp://models/fraud"),
        "bad.yaml: models[0].storage.uri: must be <scheme>://<path> with scheme one of s3, gs, pvc, hf, oci, "
        'oci+native, oci+fetch, https, hdfs, webhdfs (got "ftp://models/fraud")',
    ),
    case(
        "deployment-strategy-in-knative-mode",
        VALID + "    deploymentMode: knative\n    predictor:\n      deploymentStrategy: {type: Recreate}\n",
        "bad.yaml: models[0].predictor.deploymentStrategy: is only supported in standard mode (KServe's webhook "
        "refuses it for Knative: inference_service_validation.go:645-648); Knative rolls revisions itself; "
        'remove it, or use deploymentMode standard (got "Recreate")',
    ),
    case(
        "container-concurrency-in-standard-mode",
        VALID + "    deploymentMode: standard\n    predictor:\n      containerConcurrency: 4\n",
        "bad.yaml: models[0].predictor.containerConcurrency: is a Knative hard limit enforced by the queue-proxy; "
        "KServe's Standard mode ignores it (only reconcilers/knative/ksvc_reconciler.go:213 reads it); remove it, "
        "or use deploymentMode knative (got 4)",
    ),
    case(
        "timeout-beyond-knatives-maximum",
        VALID + "    deploymentMode: knative\n    predictor:\n      timeout: 900\n",
        "bad.yaml: models[0].predictor.timeout: exceeds Knative's max-revision-timeout-seconds (600); lower it, "
        "or use deploymentMode standard (got 900)",
    ),
    case(
        "liveness-probe-success-threshold",
        VALID + "    predictor:\n      livenessProbe: {httpGet: {path: /x}, successThreshold: 2}\n",
        "bad.yaml: models[0].predictor.livenessProbe.successThreshold: must be 1 for a liveness or startup probe "
        "(got 2)",
    ),
    case(
        "rolling-update-that-cannot-progress",
        VALID
        + "    deploymentMode: standard\n    predictor:\n"
        + "      deploymentStrategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: '0%'}}\n",
        "bad.yaml: models[0].predictor.deploymentStrategy.rollingUpdate: maxSurge and maxUnavailable cannot both "
        "be 0; the update could not progress",
    ),
    # --- several at once ---
    case(
        "several-problems-in-file-order",
        """\
models:
  - name: Fraud
    tenant: fraud
    runtime: sklearn
    format: {name: sklearn}
    storage: {uri: gs://models/fraud}
    version: v1
    scaling: {minReplicas: -1}
    owner: me
stack: {name: dev, tier: test}
tenants:
  - name: fraud_team
""",
        f'bad.yaml: models[0].name: {DNS_LABEL_RULE} (got "Fraud")',
        "bad.yaml: models[0].scaling.minReplicas: must be at least 0 (got -1)",
        f'bad.yaml: models[0].owner: unknown field (allowed: {MODEL_KEYS}) (got "me")',
        "bad.yaml: stack.tier: must be 'dev', 'staging' or 'prod' (got \"test\")",
        f'bad.yaml: tenants[0].name: {DNS_LABEL_RULE} (got "fraud_team")',
    ),
    case(
        "several-cross-field-problems",
        HEAD
        + SKLEARN_MODEL.replace("tenant: fraud", "tenant: payments").replace(
            "{name: sklearn,", "{name: onnx,"
        )
        + "    protocol: {transport: grpc}\n"
        + TRITON_MODEL
        + "    deploymentMode: knative\n    scaling: {metric: memory}\n",
        'bad.yaml: models[0].tenant: unknown tenant (tenants: fraud) (got "payments")',
        "bad.yaml: models[0].format: runtime 'sklearn' does not serve format 'onnx:1'; it serves sklearn:1 "
        '(runtimes that serve it: openvino, triton) (got "onnx:1")',
        "bad.yaml: models[0].protocol: runtime 'sklearn' does not speak 'grpc-v2'; it speaks v1, v2 "
        '(runtimes that speak grpc-v2: mlserver, openvino, torchserve, triton) (got "grpc-v2")',
        f"bad.yaml: models[1].scaling.metric: metric 'memory' {KNATIVE_METRICS} (got \"memory\")",
    ),
    # --- field errors and cross-field rules in one run ---
    case(
        "field-error-dangling-reference-and-bad-combination",
        HEAD
        + SKLEARN_MODEL
        + "    scaling: {minReplicas: -1}\n"
        + TRITON_MODEL.replace("tenant: fraud", "tenant: nobody")
        + TRITON_MODEL.replace("name: embedder", "name: ranker")
        + "    deploymentMode: modelmesh\n",
        "bad.yaml: models[0].scaling.minReplicas: must be at least 0 (got -1)",
        'bad.yaml: models[1].tenant: unknown tenant (tenants: fraud) (got "nobody")',
        "bad.yaml: models[2].deploymentMode: modelmesh mode needs modelMesh.enabled: true; enable the mesh, "
        'or use deploymentMode knative or standard (got "modelmesh")',
    ),
    case(
        "a-tenant-with-a-field-error-is-no-dangling-reference",
        HEAD.replace("  - name: fraud\n", "  - name: fraud\n    namespace: Fraud\n")
        + SKLEARN_MODEL
        + TRITON_MODEL.replace("name: embedder", "name: fraud-detector"),
        f'bad.yaml: tenants[0].namespace: {DNS_LABEL_RULE} (got "Fraud")',
    ),
    case(
        "rules-keep-the-file-indexes-of-models-after-an-invalid-one",
        HEAD + SKLEARN_MODEL.replace("version: v1", "version: 'v 1'") + SKLEARN_MODEL + SKLEARN_MODEL,
        "bad.yaml: models[0].version: must be a Kubernetes label value: at most 63 of [A-Za-z0-9-_.], "
        'alphanumeric at both ends (got "v 1")',
        "bad.yaml: models[2].name: duplicate model name in namespace 'fraud' (also models[1]) "
        '(got "fraud-detector")',
    ),
    case(
        "an-invalid-section-holds-the-rules-back",
        HEAD.replace("tenants:", "controlPlane: {namespace: KServe}\ntenants:")
        + SKLEARN_MODEL.replace("tenant: fraud", "tenant: nobody"),
        f'bad.yaml: controlPlane.namespace: {DNS_LABEL_RULE} (got "KServe")',
    ),
]


def _write(directory: Path, content: Content) -> Path:
    data = content() if callable(content) else content
    path = directory / FILE
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path, so that problems name the file as ``bad.yaml``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_base_stack_of_the_cases_is_valid(in_tmp: Path) -> None:
    _write(in_tmp, VALID)
    assert [m.name for m in load_stack(FILE).models] == ["fraud-detector"]


@pytest.mark.parametrize(("content", "problems"), CASES)
def test_malformed_stack_is_refused_with_exact_problems(
    in_tmp: Path, content: Content, problems: list[str]
) -> None:
    _write(in_tmp, content)
    with pytest.raises(StackError) as info:
        load_stack(FILE)
    assert info.value.problems == problems


def test_yaml_merge_keys_share_settings_between_models(in_tmp: Path) -> None:
    _write(
        in_tmp,
        HEAD.replace("models:\n", "models:\n  - &base\n")
        + SKLEARN_MODEL.replace("  - name: fraud-detector", "    name: fraud-detector")
        + "  - <<: *base\n    name: fraud-detector-eu\n    storage: {uri: gs://models/fraud-eu}\n",
    )
    models = load_stack(FILE).models
    assert [(m.name, m.runtime, m.storage.uri) for m in models] == [
        ("fraud-detector", "sklearn", "gs://models/fraud"),
        ("fraud-detector-eu", "sklearn", "gs://models/fraud-eu"),
    ]


def test_utf8_byte_order_mark_is_accepted(in_tmp: Path) -> None:
    _write(in_tmp, b"\xef\xbb\xbf" + VALID.encode())
    assert load_stack(FILE).stack.name == "dev"


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_missing_file_is_one_problem(in_tmp: Path) -> None:
    with pytest.raises(StackError) as info:
        load_stack("absent.yaml")
    assert info.value.problems == ["absent.yaml: <root>: no such file"]


def test_directory_is_one_problem(in_tmp: Path) -> None:
    (in_tmp / "stacks").mkdir()
    with pytest.raises(StackError) as info:
        load_stack("stacks")
    assert info.value.problems == ["stacks: <root>: is a directory, not a stack file"]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero, an endless stream")
def test_endless_stream_is_refused_after_the_size_limit() -> None:
    with pytest.raises(StackError) as info:
        load_stack("/dev/zero")
    assert info.value.problems == [
        f"/dev/zero: <root>: file is more than {MAX_STACK_BYTES:,} bytes; stack files are limited to {MAX_STACK_BYTES:,}"
    ]


def _validate(directory: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelplane.cli", "validate", *files],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


CLI_CASES = [
    c
    for c in CASES
    if c.id
    in {
        "yaml-syntax-error",
        "python-object-tag",
        "alias-bomb",
        "several-problems-in-file-order",
        "field-error-dangling-reference-and-bad-combination",
        "inline-credential-is-not-echoed",
        "reserved-model-label",
        "unknown-storage-scheme",
    }
]


@pytest.mark.parametrize(("content", "problems"), CLI_CASES)
def test_cli_validate_prints_the_problems_on_stderr_and_exits_2(
    in_tmp: Path, content: Content, problems: list[str]
) -> None:
    _write(in_tmp, content)
    result = _validate(in_tmp, FILE)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", "".join(f"{p}\n" for p in problems))


def test_cli_validate_survives_nesting_that_crashes_libyaml(in_tmp: Path) -> None:
    # libyaml's composer overflows the C stack somewhere past 20,000 levels and takes the
    # interpreter down with it; the loader must notice the nesting before libyaml sees it.
    (in_tmp / FILE).write_text("stack: " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = _validate(in_tmp, FILE)
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "bad.yaml: <root>: nested deeper than 200 levels\n",
    )


def test_cli_validate_reports_every_file(in_tmp: Path) -> None:
    _write(in_tmp, "")
    (in_tmp / "good.yaml").write_text(VALID)
    result = _validate(in_tmp, FILE, "good.yaml")
    assert result.returncode == 2
    assert result.stdout.startswith("good.yaml: valid (1 models, ")
    assert (
        result.stderr
        == "bad.yaml: <root>: the file is empty; a stack file is a mapping with at least `stack`\n"
    )


# -- stack files written as JSON (a subset of YAML, read by a faster path) ------------------------


def test_a_json_stack_loads_exactly_like_its_yaml(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parent.parent / "stacks" / "staging.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    as_json = tmp_path / "staging.yaml"
    as_json.write_text(json.dumps(data, indent=1), encoding="utf-8")
    assert load_stack(as_json) == load_stack(source)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '{"stack": {"name": "x", "tier": "dev"}, "stack": {}}',
            "stack: duplicate key (first at line 1, again at line 1)",
        ),
        ('{"stack": {"name": "x", "tier": "dev"}, "models": NaN}', 'models: must be a list (got "NaN")'),
    ],
)
def test_json_that_json_cannot_vouch_for_is_read_as_yaml(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StackError) as raised:
        load_stack(path)
    assert raised.value.problems == [f"{path}: {problem}"]


def test_the_readme_shows_what_validate_prints_for_the_broken_example() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    command = "$ modelplane validate docs/examples/broken.yaml\n"
    shown = readme.split(command, 1)[1].split("```", 1)[0]
    result = _validate(root, "docs/examples/broken.yaml")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == shown
    assert len(shown.splitlines()) == 3, "one field error, one dangling reference, one bad combination"
