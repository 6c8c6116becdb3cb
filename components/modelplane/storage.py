"""Where a model's files come from, in every form the pinned KServe's storage initializer reads.

A model names its files by one URI (``storageUri``), by several URIs each mounted at its own
path (``storageUris``), or by an entry of the namespace's ``storage-config`` secret with a path
and parameters (KServe's ``storage`` spec). Credentials are only ever referenced: a Secret that
a ServiceAccount carries, an existing ServiceAccount, or the ``storage-config`` entry's key.
Each scheme is one the storage initializer of KServe v0.20.0 handles
(``python/storage/kserve_storage/kserve_storage.py``, and ``oci+native://``/``oci+fetch://``
resolved by the webhook: ``pkg/webhook/admission/pod/storage_initializer_injector.go``); an
unknown scheme is refused with the list, before anything is rendered.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from pydantic import Field, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.errors import ProblemError
from modelplane.types import DnsSubdomain

STORAGE_SCHEMES: tuple[str, ...] = (
    "s3",
    "gs",
    "pvc",
    "hf",
    "oci",
    "oci+native",
    "oci+fetch",
    "https",
    "hdfs",
    "webhdfs",
)
"""URI schemes a model may name (``http://`` is refused: model files travel unencrypted)."""

SPEC_SCHEMES: tuple[str, ...] = ("s3", "hdfs", "webhdfs")
"""Schemes KServe's ``storage`` spec form accepts (v1beta1 component.go:59, SupportedStorageSpecURIPrefixList)."""

IMAGE_VOLUME_MIN_KUBERNETES = (1, 33)
"""``oci+native://`` mounts the model as an ImageVolume with ``subPath: models`` (KServe v0.20.0
pkg/utils/storage.go:641-693), which Kubernetes supports from 1.33, where the ``ImageVolume``
feature gate is beta but off by default (k8s.io/kubernetes v1.33.13
pkg/features/kube_features.go:1380-1383)."""

IMAGE_VOLUME_DEFAULT_ON_KUBERNETES = (1, 35)
"""The first Kubernetes minor whose ``ImageVolume`` gate is on by default (beta, enabled by default
from v1.35: Kubernetes' "Use an Image Volume With a Pod" task page). Not checked by code here:
the module cache pins k8s.io/kubernetes v1.33.13 only."""

MODELCAR_SCHEMES: tuple[str, ...] = ("oci", "oci+fetch")
"""Schemes KServe v0.20.0 materialises as a modelcar: a sidecar and an init container
(pkg/utils/storage.go:385-441, CreateModelcarContainer/CreateModelcarInitContainer) with no
``allowPrivilegeEscalation: false`` and no ``capabilities.drop: [ALL]`` (at most ``runAsUser``
from ``uidModelcar``), which Pod Security "restricted" refuses. ``oci://`` is one whenever the
storage initializer's ``ociModelMode`` is unset, and kserve-resources v0.20.0 has no value for it
(files/common/configmap-patch.yaml:101-114); ``oci+fetch://`` still falls to the modelcar branch
(pkg/webhook/admission/pod/storage_initializer_injector.go:372)."""

_URI = re.compile(r"^(?P<scheme>[a-z0-9+]+)://(?P<rest>\S+)$")


def uri_problem(uri: str) -> str | None:
    """Why a storage URI is refused, or None; the message never repeats the URI's credentials."""
    match = _URI.fullmatch(uri)
    if match is None or match.group("scheme") not in STORAGE_SCHEMES:
        hint = "; use https://" if uri.startswith("http://") else ""
        return f"must be <scheme>://<path> with scheme one of {', '.join(STORAGE_SCHEMES)}{hint}"
    if "@" in match.group("rest").split("/", 1)[0]:
        return "must not embed credentials; reference a secret with secretName"
    return None


def scheme_of(uri: str) -> str:
    """The scheme of a valid storage URI."""
    return uri.split("://", 1)[0]


def minor_of(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a Kubernetes version such as ``1.33`` or ``v1.33.2``."""
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def image_volume_problem(kubernetes: str, image_volume: bool | None) -> str | None:
    """Why a cluster cannot mount ``oci+native://`` models as image volumes, or None.

    ``image_volume`` is the stack's ``controlPlane.imageVolume``: None follows the Kubernetes
    version's default for the ``ImageVolume`` feature gate.
    """
    minor = minor_of(kubernetes)
    if minor < IMAGE_VOLUME_MIN_KUBERNETES:
        return (
            f"oci+native:// mounts the model as an ImageVolume with a subPath, which Kubernetes supports from 1.33 "
            f"(versions.kubernetes is {kubernetes}; KServe v0.20.0 pkg/utils/storage.go:641-693)"
        )
    if image_volume is False:
        return "oci+native:// mounts the model as an ImageVolume, and controlPlane.imageVolume says the cluster has none"
    if image_volume is None and minor < IMAGE_VOLUME_DEFAULT_ON_KUBERNETES:
        return (
            f"oci+native:// mounts the model as an ImageVolume, and the ImageVolume feature gate is off by default "
            f"in Kubernetes {kubernetes} (beta from 1.33, on by default from 1.35: k8s.io/kubernetes v1.33.13 "
            "pkg/features/kube_features.go:1380-1383); once the cluster's API servers and kubelets run with "
            "--feature-gates=ImageVolume=true, set controlPlane.imageVolume: true"
        )
    return None


class StorageUri(StrictModel):
    """One of several model locations, and where its files are mounted."""

    uri: str = Field(description=f"Location; schemes: {', '.join(STORAGE_SCHEMES)}.")
    mount_path: str = Field(
        default="/mnt/models", pattern=r"^/\S*$", description="Absolute mount path. Default: /mnt/models."
    )

    @model_validator(mode="after")
    def _valid(self) -> StorageUri:
        problems: list[Problem] = []
        why = uri_problem(self.uri)
        if why is not None:
            problems.append(Problem(("uri",), why, None if "credentials" in why else self.uri))
        # kserve v0.20.0 inference_service_validation.go:727-748 validateStorageURISpec.
        if self.mount_path == "/" or ".." in self.mount_path.split("/"):
            problems.append(Problem(("mountPath",), "must be a path below / without '..'", self.mount_path))
        if problems:
            raise ProblemError(problems)
        return self


class StorageArgs(StrictModel):
    """Where the model's files live and which credentials read them (by reference only)."""

    uri: str | None = Field(
        default=None,
        description=f"Model location; schemes: {', '.join(STORAGE_SCHEMES)}. Give uri, uris, or key.",
    )
    uris: list[StorageUri] = Field(
        default_factory=list,
        description="Several locations, each at its own mount path (KServe's `storageUris`); non-PVC paths must "
        "share a parent directory. Default: none.",
    )
    key: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][-._A-Za-z0-9]*$",
        description="Entry of the namespace's `storage-config` secret that holds the credentials and endpoint "
        "(KServe's storage spec; ModelMesh's storage key). Default: none.",
    )
    path: str | None = Field(default=None, description="Path of the model under the `key` entry's bucket.")
    parameters: dict[str, str] = Field(
        default_factory=dict, description="Overrides of the `key` entry's settings (bucket, region...)."
    )
    secret_name: DnsSubdomain | None = Field(
        default=None,
        description="Secret with storage credentials (KServe's annotations); modelplane references it by name.",
    )
    service_account_name: DnsSubdomain | None = Field(
        default=None, description="Existing ServiceAccount that carries storage credentials."
    )
    read_only: bool | None = Field(
        default=None,
        description="Mount a pvc:// model read-only (KServe's `storage.kserve.io/readonly`). Default: KServe's, "
        "read-only.",
    )

    @model_validator(mode="after")
    def _location_and_credentials(self) -> StorageArgs:
        problems: list[Problem] = []
        forms = [name for name, given in (("uri", self.uri), ("uris", self.uris), ("key", self.key)) if given]
        if len(forms) != 1 and forms != ["uri", "key"]:
            problems.append(
                Problem((), f"give one of uri, uris or key (got {', '.join(forms) or 'none'})", None)
            )
        if self.uri is not None:
            why = uri_problem(self.uri)
            if why is not None:
                # The value itself may be the secret, so it is not echoed back.
                problems.append(Problem(("uri",), why, None if "credentials" in why else self.uri))
        if self.key is not None and self.uri is not None and scheme_of(self.uri) not in SPEC_SCHEMES:
            problems.append(
                Problem(
                    ("uri",),
                    f"with key (KServe's storage spec) the uri must be {', '.join(s + '://' for s in SPEC_SCHEMES)} "
                    "(v1beta1 component.go validateStorageSpec); remove key, or the uri",
                    self.uri,
                )
            )
        if (self.path is not None or self.parameters) and self.key is None:
            problems.append(
                Problem(("key",), "path and parameters belong to a storage-config entry; name it with key")
            )
        problems += self._uris_problems()
        if self.read_only is not None and not self._pvc():
            problems.append(Problem(("readOnly",), "only applies to pvc:// models", self.read_only))
        if self.secret_name and self.service_account_name:
            problems.append(
                Problem(
                    ("serviceAccountName",),
                    f"set secretName ({self.secret_name!r}) or serviceAccountName, not both",
                    self.service_account_name,
                )
            )
        if problems:
            raise ProblemError(problems)
        return self

    def _pvc(self) -> bool:
        uris = [self.uri] if self.uri else [u.uri for u in self.uris]
        return any(u.startswith("pvc://") for u in uris)

    def _uris_problems(self) -> list[Problem]:
        # kserve v0.20.0 inference_service_validation.go:761-804 validateMultipleStorageURIsSpec.
        problems: list[Problem] = []
        pvc_paths: dict[str, int] = {}
        other: list[str] = []
        for i, entry in enumerate(self.uris):
            if entry.uri.startswith("pvc://"):
                if entry.mount_path in pvc_paths:
                    problems.append(
                        Problem(
                            ("uris", i, "mountPath"),
                            f"PVC paths must be unique (also uris[{pvc_paths[entry.mount_path]}])",
                            entry.mount_path,
                        )
                    )
                pvc_paths.setdefault(entry.mount_path, i)
            else:
                other.append(entry.mount_path)
        if len(other) > 1 and posixpath.commonpath(other) == "/":
            problems.append(
                Problem(
                    ("uris",), f"mount paths {', '.join(other)} must share a parent directory below /", other
                )
            )
        return problems

    @property
    def schemes(self) -> list[str]:
        """The schemes this storage reads from."""
        uris = ([self.uri] if self.uri else []) + [u.uri for u in self.uris]
        return sorted({scheme_of(u) for u in uris})

    def location(self) -> dict[str, Any]:
        """What the model reads, as data: for a plain URI just ``{"uri": ...}``; the version spec keeps it."""
        data: dict[str, Any] = self.model_dump(
            by_alias=True, include={"uri", "uris", "key", "path", "parameters"}, exclude_defaults=True
        )
        return data

    def model_fields_for_isvc(self) -> dict[str, Any]:
        """The fields of KServe's ``model`` spec that say where the files are (storageUri and/or storage)."""
        result: dict[str, Any] = {}
        if self.uri is not None:
            result["storageUri"] = self.uri
        if self.key is not None:
            spec: dict[str, Any] = {"key": self.key}
            if self.path is not None:
                spec["path"] = self.path
            if self.parameters:
                spec["parameters"] = dict(sorted(self.parameters.items()))
            result["storage"] = spec
        return result

    def predictor_fields_for_isvc(self) -> dict[str, Any]:
        """The predictor-level fields of several URIs (``storageUris``), when used."""
        if not self.uris:
            return {}
        return {"storageUris": [{"uri": u.uri, "mountPath": u.mount_path} for u in self.uris]}
