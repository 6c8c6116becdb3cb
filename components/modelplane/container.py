"""The container of a component: command, arguments, environment, ports, probes and volumes, typed.

KServe users write these straight into an InferenceService; modelplane carries them with one
spelling each and refuses what would leak a secret or break the model: a credential written
inline (a Secret is referenced instead, and the value is never echoed in an error), KServe's
blocked environment, a volume over the model's own mount. Every model keeps Kubernetes' own
shape and key names, so what a team already writes pastes in.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.errors import ProblemError
from modelplane.types import DnsLabel, DnsSubdomain, Quantity

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_FIELD_PATH = re.compile(
    r"^(metadata\.(name|namespace|uid)|metadata\.(labels|annotations)\['[^']+'\]|"
    r"spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$"
)
_CREDENTIAL_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL", "CREDENTIALS"}
)
_CREDENTIAL_PAIRS = frozenset({("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY")})
_CREDENTIAL_VALUE = re.compile(
    r"^(hf_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,})$"
)

BLOCKED_ENV: dict[str, str] = {
    # kserve v0.20.0 pkg/validation/env_policy.go:25 DefaultBlockedEnvVars, applied by the
    # InferenceService webhook to every container (inference_service_validation.go:302-354).
    "PYTHONPATH": "KServe's webhook refuses it in every container for security reasons",
    # A custom container's STORAGE_URI makes KServe inject the storage initializer
    # (pkg/constants CustomSpecStorageUriEnvVarKey); modelplane states model storage once.
    "STORAGE_URI": "model files are given by storage.uri, which renders what KServe needs",
}
"""Environment variables no component may set, and why."""

MODEL_MOUNT_PATH = "/mnt/models"
"""Where KServe's storage initializer puts a model's files (pkg/constants DefaultModelLocalMountPath)."""


def _looks_like_credential(name: str) -> bool:
    parts = name.upper().replace("-", "_").replace(".", "_").split("_")
    return bool(_CREDENTIAL_WORDS.intersection(parts)) or any(
        pair in _CREDENTIAL_PAIRS for pair in itertools.pairwise(parts)
    )


class KeyRef(StrictModel):
    """One key of a Secret or ConfigMap, by reference."""

    name: DnsSubdomain = Field(description="Name of the Secret or ConfigMap, in the component's namespace.")
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", description="Key within it.")
    optional: bool = Field(default=False, description="Start even when the key is missing. Default: false.")


class EnvVar(StrictModel):
    """One environment variable: a plain value, or a reference (secrets only by reference)."""

    name: str = Field(description="Variable name.")
    value: str | None = Field(default=None, description="A plain value; never a credential.")
    secret_key_ref: KeyRef | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: KeyRef | None = Field(default=None, description="A key of a ConfigMap.")
    field_ref: str | None = Field(
        default=None,
        description="A pod field (`metadata.name`, `metadata.namespace`, `status.podIP`, "
        "`metadata.labels['key']`, ...).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError("must be an environment variable name: letters, digits, '_', '-' and '.'")
        if value in BLOCKED_ENV:
            raise ValueError(f"is a variable no component may set: {BLOCKED_ENV[value]}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        sources = [
            k
            for k, v in (
                ("value", self.value),
                ("secretKeyRef", self.secret_key_ref),
                ("configMapKeyRef", self.config_map_key_ref),
                ("fieldRef", self.field_ref),
            )
            if v is not None
        ]
        if len(sources) != 1:
            raise ProblemError(
                [
                    Problem(
                        (),
                        f"give exactly one of value, secretKeyRef, configMapKeyRef, fieldRef (got {len(sources)})",
                    )
                ]
            )
        if self.value is not None and (
            _looks_like_credential(self.name) or _CREDENTIAL_VALUE.match(self.value)
        ):
            # The value itself may be the secret, so it is never echoed back.
            what = (
                f"{self.name} names a credential"
                if _looks_like_credential(self.name)
                else f"the value of {self.name} looks like an access key or token"
            )
            raise ProblemError(
                [
                    Problem(
                        ("value",),
                        f"{what}, which must not be written into the stack; "
                        "store it in a Secret and reference it with secretKeyRef: {name, key}",
                    )
                ]
            )
        if self.field_ref is not None and not _FIELD_PATH.fullmatch(self.field_ref):
            raise ProblemError(
                [
                    Problem(
                        ("fieldRef",),
                        "must be a pod field Kubernetes can expose: metadata.name, metadata.namespace, "
                        "metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.nodeName, "
                        "spec.serviceAccountName, status.hostIP(s), status.podIP(s)",
                        self.field_ref,
                    )
                ]
            )
        return self

    def manifest(self) -> dict[str, Any]:
        """The variable as Kubernetes spells it."""
        if self.value is not None:
            return {"name": self.name, "value": self.value}
        if self.secret_key_ref is not None:
            return {
                "name": self.name,
                "valueFrom": {"secretKeyRef": self.secret_key_ref.model_dump(by_alias=True)},
            }
        if self.config_map_key_ref is not None:
            ref = self.config_map_key_ref.model_dump(by_alias=True)
            return {"name": self.name, "valueFrom": {"configMapKeyRef": ref}}
        return {"name": self.name, "valueFrom": {"fieldRef": {"fieldPath": self.field_ref}}}


class EnvFrom(StrictModel):
    """Every key of a Secret or ConfigMap as environment variables."""

    secret_ref: DnsSubdomain | None = Field(default=None, description="Secret whose keys become variables.")
    config_map_ref: DnsSubdomain | None = Field(
        default=None, description="ConfigMap whose keys become variables."
    )
    prefix: str | None = Field(
        default=None, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", description="Name prefix."
    )

    @model_validator(mode="after")
    def _one_source(self) -> EnvFrom:
        if (self.secret_ref is None) == (self.config_map_ref is None):
            raise ProblemError([Problem((), "give exactly one of secretRef, configMapRef")])
        return self

    def manifest(self) -> dict[str, Any]:
        """The source as Kubernetes spells it."""
        kind, name = (
            ("secretRef", self.secret_ref) if self.secret_ref else ("configMapRef", self.config_map_ref)
        )
        result: dict[str, Any] = {kind: {"name": name}}
        if self.prefix:
            result["prefix"] = self.prefix
        return result


class Port(StrictModel):
    """The port a component serves on, and how it speaks there."""

    container_port: int = Field(ge=1, le=65535, description="Port number.")
    name: Literal["http1", "h2c"] = Field(
        default="http1",
        description="`http1` for REST, `h2c` for gRPC (Knative then speaks HTTP/2, KServe's Service sets "
        "appProtocol h2c). Default: http1.",
    )

    def manifest(self) -> dict[str, Any]:
        """The container port as Kubernetes spells it."""
        return {"containerPort": self.container_port, "name": self.name, "protocol": "TCP"}


class HttpGet(StrictModel):
    """An HTTP probe."""

    path: str = Field(pattern=r"^/\S*$", description="Path to GET.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Port. Default: the component's port.")
    scheme: Literal["HTTP", "HTTPS"] = Field(default="HTTP", description="Scheme. Default: HTTP.")


class TcpSocket(StrictModel):
    """A TCP probe."""

    port: int | None = Field(default=None, ge=1, le=65535, description="Port. Default: the component's port.")


class ExecAction(StrictModel):
    """A command probe."""

    command: list[str] = Field(min_length=1, description="Command run in the container.")


class GrpcAction(StrictModel):
    """A gRPC health probe."""

    port: int = Field(ge=1, le=65535, description="Port of the gRPC health service.")
    service: str | None = Field(
        default=None, description="Service name. Default: the server's overall health."
    )


class Probe(StrictModel):
    """A readiness, liveness or startup probe (Kubernetes' ``Probe``)."""

    http_get: HttpGet | None = Field(default=None, description="HTTP GET.")
    tcp_socket: TcpSocket | None = Field(default=None, description="TCP connect.")
    exec: ExecAction | None = Field(default=None, description="Command.")
    grpc: GrpcAction | None = Field(default=None, description="gRPC health check.")
    initial_delay_seconds: int | None = Field(default=None, ge=0, description="Delay before the first probe.")
    period_seconds: int | None = Field(default=None, ge=1, description="Seconds between probes. Default: 10.")
    timeout_seconds: int | None = Field(
        default=None, ge=1, description="Seconds a probe may take. Default: 1."
    )
    failure_threshold: int | None = Field(default=None, ge=1, description="Failures in a row that count.")
    success_threshold: int | None = Field(
        default=None, ge=1, description="Successes in a row that count (1 for liveness and startup)."
    )

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        handlers = [self.http_get, self.tcp_socket, self.exec, self.grpc]
        if sum(h is not None for h in handlers) != 1:
            raise ProblemError([Problem((), "give exactly one of httpGet, tcpSocket, exec, grpc")])
        return self

    def manifest(self, default_port: int) -> dict[str, Any]:
        """The probe as Kubernetes spells it; an HTTP or TCP probe without a port probes ``default_port``."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True)
        for handler in ("httpGet", "tcpSocket"):
            if handler in data:
                data[handler].setdefault("port", default_port)
        return data


class ConfigMapSource(StrictModel):
    """A ConfigMap mounted as files."""

    name: DnsSubdomain = Field(description="ConfigMap name.")
    default_mode: int | None = Field(default=None, ge=0, le=0o777, description="File mode. Default: 0644.")


class SecretSource(StrictModel):
    """A Secret mounted as files (by reference; its values never appear in the stack)."""

    secret_name: DnsSubdomain = Field(description="Secret name.")
    default_mode: int | None = Field(default=None, ge=0, le=0o777, description="File mode. Default: 0644.")


class PvcSource(StrictModel):
    """A PersistentVolumeClaim."""

    claim_name: DnsSubdomain = Field(description="Claim name, in the component's namespace.")
    read_only: bool = Field(default=True, description="Mount it read-only. Default: true.")


class EmptyDirSource(StrictModel):
    """Scratch space that lives as long as the pod."""

    medium: Literal["", "Memory"] = Field(
        default="", description="`Memory` for tmpfs. Default: the node's disk."
    )
    size_limit: Quantity | None = Field(default=None, description="Most it may hold. Default: no limit.")


class Volume(StrictModel):
    """A volume and where it is mounted in the component's container."""

    name: DnsLabel = Field(description="Volume name.")
    mount_path: str = Field(pattern=r"^/\S*$", description="Absolute path in the container.")
    read_only: bool = Field(default=False, description="Mount read-only. Default: false.")
    sub_path: str | None = Field(default=None, description="Path within the volume. Default: its root.")
    config_map: ConfigMapSource | None = Field(default=None, description="A ConfigMap.")
    secret: SecretSource | None = Field(default=None, description="A Secret.")
    persistent_volume_claim: PvcSource | None = Field(default=None, description="A PersistentVolumeClaim.")
    empty_dir: EmptyDirSource | None = Field(default=None, description="An emptyDir.")

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        problems: list[Problem] = []
        sources = [self.config_map, self.secret, self.persistent_volume_claim, self.empty_dir]
        if sum(s is not None for s in sources) != 1:
            problems.append(
                Problem((), "give exactly one of configMap, secret, persistentVolumeClaim, emptyDir")
            )
        if ".." in self.mount_path.split("/"):
            problems.append(Problem(("mountPath",), "must not contain '..'", self.mount_path))
        if self.mount_path.rstrip("/") == MODEL_MOUNT_PATH:
            problems.append(
                Problem(
                    ("mountPath",),
                    f"{MODEL_MOUNT_PATH} is where KServe puts the model's files; mount elsewhere",
                    self.mount_path,
                )
            )
        if problems:
            raise ProblemError(problems)
        return self

    def volume(self) -> dict[str, Any]:
        """The pod's volume."""
        source: dict[str, Any]
        if self.config_map is not None:
            source = {"configMap": self.config_map.model_dump(by_alias=True, exclude_none=True)}
        elif self.secret is not None:
            source = {"secret": self.secret.model_dump(by_alias=True, exclude_none=True)}
        elif self.persistent_volume_claim is not None:
            source = {"persistentVolumeClaim": self.persistent_volume_claim.model_dump(by_alias=True)}
        else:
            assert self.empty_dir is not None
            empty: dict[str, Any] = {}
            if self.empty_dir.medium:
                empty["medium"] = self.empty_dir.medium
            if self.empty_dir.size_limit is not None:
                empty["sizeLimit"] = self.empty_dir.size_limit
            source = {"emptyDir": empty}
        return {"name": self.name, **source}

    def mount(self) -> dict[str, Any]:
        """The container's volume mount."""
        mount: dict[str, Any] = {"name": self.name, "mountPath": self.mount_path}
        read_only = self.read_only or (
            self.persistent_volume_claim is not None and self.persistent_volume_claim.read_only
        )
        if read_only:
            mount["readOnly"] = True
        if self.sub_path:
            mount["subPath"] = self.sub_path
        return mount


class ContainerSettings(StrictModel):
    """What a component's container gets beside its image.

    Command, arguments, environment, ports, probes and volumes. A mixin: component settings
    inherit these fields.
    """

    command: list[str] = Field(
        default_factory=list, description="Entrypoint. Default: the image's (or runtime's)."
    )
    args: list[str] = Field(
        default_factory=list,
        description="Arguments; on a catalog runtime they follow the runtime's own (KServe concatenates). Default: none.",
    )
    env: list[EnvVar] = Field(default_factory=list, description="Environment variables. Default: none.")
    env_from: list[EnvFrom] = Field(default_factory=list, description="Secrets or ConfigMaps as variables.")
    ports: list[Port] = Field(
        default_factory=list,
        description="The port served (Knative allows exactly one). Default: the runtime's port for the model's "
        "protocol (an `h2c` port for gRPC).",
    )
    readiness_probe: Probe | None = Field(
        default=None, description="Readiness probe. Default: the runtime's."
    )
    liveness_probe: Probe | None = Field(default=None, description="Liveness probe. Default: the runtime's.")
    startup_probe: Probe | None = Field(default=None, description="Startup probe. Default: the runtime's.")
    volumes: list[Volume] = Field(
        default_factory=list, description="Volumes and their mounts. Default: none."
    )
    shared_memory: Quantity | None = Field(
        default=None, description="Size of a memory-backed /dev/shm. Default: the runtime's, or none."
    )

    @model_validator(mode="after")
    def _container_shape(self) -> ContainerSettings:
        problems: list[Problem] = []
        seen: dict[str, int] = {}
        for i, var in enumerate(self.env):
            if var.name in seen:
                problems.append(
                    Problem(("env", i, "name"), f"duplicate variable (also env[{seen[var.name]}])", var.name)
                )
            seen.setdefault(var.name, i)
        names: dict[str, int] = {}
        paths: dict[str, int] = {}
        for i, volume in enumerate(self.volumes):
            if volume.name in names or volume.name in ("devshm", "tmp"):
                problems.append(
                    Problem(("volumes", i, "name"), "duplicate or reserved volume name", volume.name)
                )
            if volume.mount_path in paths:
                problems.append(
                    Problem(
                        ("volumes", i, "mountPath"),
                        f"already mounted by volumes[{paths[volume.mount_path]}]",
                        volume.mount_path,
                    )
                )
            if self.shared_memory is not None and volume.mount_path.rstrip("/") == "/dev/shm":
                problems.append(
                    Problem(
                        ("volumes", i, "mountPath"),
                        "is sharedMemory's; set one or the other",
                        volume.mount_path,
                    )
                )
            names.setdefault(volume.name, i)
            paths.setdefault(volume.mount_path, i)
        for name in ("liveness", "startup"):
            probe: Probe | None = getattr(self, f"{name}_probe")
            if probe is not None and probe.success_threshold not in (None, 1):
                problems.append(
                    Problem(
                        (f"{name}Probe", "successThreshold"),
                        "must be 1 for a liveness or startup probe",
                        probe.success_threshold,
                    )
                )
        if problems:
            raise ProblemError(problems)
        return self

    def container_set(self) -> list[str]:
        """The container fields set, as the file spells them."""
        fields = {
            "command": bool(self.command),
            "args": bool(self.args),
            "env": bool(self.env),
            "envFrom": bool(self.env_from),
            "ports": bool(self.ports),
            "readinessProbe": self.readiness_probe is not None,
            "livenessProbe": self.liveness_probe is not None,
            "startupProbe": self.startup_probe is not None,
            "volumes": bool(self.volumes),
            "sharedMemory": self.shared_memory is not None,
        }
        return [name for name, present in fields.items() if present]

    def pod_volumes(self) -> list[dict[str, Any]]:
        """The pod volumes these settings bring (shared memory included)."""
        volumes = [v.volume() for v in self.volumes]
        if self.shared_memory is not None:
            volumes.append(
                {"name": "devshm", "emptyDir": {"medium": "Memory", "sizeLimit": self.shared_memory}}
            )
        return volumes

    def container_fields(self, port: int) -> dict[str, Any]:
        """The container fields these settings set; probes without a port probe ``port``."""
        result: dict[str, Any] = {}
        if self.command:
            result["command"] = list(self.command)
        if self.args:
            result["args"] = list(self.args)
        if self.env:
            result["env"] = [v.manifest() for v in self.env]
        if self.env_from:
            result["envFrom"] = [e.manifest() for e in self.env_from]
        if self.ports:
            result["ports"] = [p.manifest() for p in self.ports]
        for name in ("readiness", "liveness", "startup"):
            probe: Probe | None = getattr(self, f"{name}_probe")
            if probe is not None:
                result[f"{name}Probe"] = probe.manifest(port)
        mounts = [v.mount() for v in self.volumes]
        if self.shared_memory is not None:
            mounts.append({"name": "devshm", "mountPath": "/dev/shm"})
        if mounts:
            result["volumeMounts"] = mounts
        return result
