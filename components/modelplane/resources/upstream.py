"""Registering upstream releases (Helm charts, kustomize releases), and the objects they carry, safely.

A release that installs CRDs is retained when a stack is removed and protected outside the
dev tier, because deleting a CRD deletes every custom resource of its kind: removing a
stack must never delete every InferenceService. Releases go through Helm (``helm.v3.Release``),
which creates and patches objects without the ``last-applied-configuration`` annotation, so
the InferenceService CRD (~638 KB, over the 256 KiB annotation limit) installs; modelplane's
own objects are applied by pulumi-kubernetes with server-side apply, which this module
refuses to run without.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pulumi
import pulumi_kubernetes as k8s
import yaml

from modelplane.errors import PlatformError
from modelplane.kube import resource_name
from modelplane.resources._register import KubeObject, keep_options
from modelplane.upstream import Chart, KustomizeRelease


class ServerSideApplyDisabledError(PlatformError):
    """The Kubernetes provider is configured for client-side apply, which cannot install KServe's CRDs."""


def require_server_side_apply() -> None:
    """Refuse a stack whose Kubernetes provider has server-side apply turned off."""
    enabled = pulumi.Config("kubernetes").get_bool("enableServerSideApply")
    if enabled is False:
        raise ServerSideApplyDisabledError(
            "kubernetes:enableServerSideApply is false: client-side apply stores every object in a "
            "last-applied annotation limited to 256 KiB, and KServe's InferenceService CRD is ~638 KB; "
            "remove the setting (server-side apply is pulumi-kubernetes' default)"
        )


def register_release(
    parent: pulumi.Resource,
    prefix: str,
    chart: Chart,
    *,
    depends_on: Sequence[pulumi.Resource],
    protect: bool,
) -> k8s.helm.v3.Release:
    """Install an upstream chart as a Helm release that waits until its workloads are ready."""
    oci = chart.repository.startswith("oci://")
    values: dict[str, Any] = dict(chart.values)
    return k8s.helm.v3.Release(
        f"{prefix}-{chart.release}",
        k8s.helm.v3.ReleaseArgs(
            name=chart.release,
            chart=f"{chart.repository}/{chart.chart}" if oci else chart.chart,
            version=chart.version,
            repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
            namespace=chart.namespace,
            create_namespace=True,
            values=values,
            skip_crds=False,
            skip_await=False,
            atomic=False,
            timeout=900,
        ),
        pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            protect=protect and (chart.crds or holds_storage(chart)),
            retain_on_delete=chart.crds or (protect and holds_storage(chart)),
        ),
    )


def holds_storage(chart: Chart) -> bool:
    """Whether a chart's values give it persistent storage (Prometheus's volume claim template).

    Uninstalling such a release deletes the volume's claim and, with the default reclaim policy,
    its data: outside dev the release is protected and retained like a CRD release.
    """
    pending: list[Any] = [chart.values]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if "volumeClaimTemplate" in value or "volumeClaimTemplates" in value:
                return True
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def register_chart_objects(
    parent: pulumi.Resource,
    chart: Chart,
    release: pulumi.Resource | None,
    *,
    protect: bool,
) -> list[KubeObject]:
    """Register the objects an upstream release carries, each after the release is ready.

    ``release`` is None when the release is installed by someone else (``external``).

    Each object depends on the one before it (the ``knative-serving`` Namespace before the
    ``KnativeServing`` inside it), and custom resources carry ``pulumi.com/waitFor`` so that
    whatever depends on them waits until the upstream operator reports them Ready.
    """
    result: list[KubeObject] = []
    previous = release
    for obj in chart.objects:
        registered = KubeObject(
            f"{chart.release}-{resource_name(obj)}",
            obj,
            pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=parent, depends_on=[previous] if previous else []),
                keep_options(obj, protect),
            ),
        )
        result.append(registered)
        previous = registered
    return result


OVERLAY_DIR_NAME = "modelplane-kustomize"


def overlay_dir(release: KustomizeRelease, path: str, root: Path | None = None) -> Path:
    """Write the overlay of one path of a release; the directory name is a hash of its content.

    The same release always gives the same directory, so the ``directory`` input of the
    Pulumi resource does not change between runs on one machine.
    """
    text = yaml.safe_dump(release.overlay(path), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    directory = (
        (root or Path(tempfile.gettempdir())) / OVERLAY_DIR_NAME / f"{release.path_name(path)}-{digest}"
    )
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "kustomization.yaml"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return directory


class KustomizeInstall(NamedTuple):
    """A kustomize release as registered: its Namespace, and the last of its paths."""

    namespace: KubeObject
    release: pulumi.Resource


def register_kustomize(
    parent: pulumi.Resource,
    prefix: str,
    release: KustomizeRelease,
    *,
    depends_on: Sequence[pulumi.Resource],
    protect: bool,
    overlay_root: Path | None = None,
) -> KustomizeInstall:
    """Install a kustomize release: its namespace, then each path in order.

    The Namespace is the release's ``namespace_object`` (what GitOps applies too), named like
    the objects a chart carries (``<release>-<resource name>``). A release is kept when the
    stack is destroyed (and protected with ``protect``) only if it installs CRDs that
    modelplane's objects need, like chart releases (``KustomizeRelease.crds``).
    """
    obj = release.namespace_object
    namespace = KubeObject(
        f"{release.release}-{resource_name(obj)}",
        obj,
        pulumi.ResourceOptions.merge(
            pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)), keep_options(obj, protect)
        ),
    )
    previous: pulumi.Resource = namespace
    for path in release.paths:
        previous = k8s.kustomize.v2.Directory(
            f"{prefix}-{release.path_name(path)}",
            directory=str(overlay_dir(release, path, overlay_root)),
            opts=pulumi.ResourceOptions(
                parent=parent,
                depends_on=[*depends_on, previous],
                protect=protect and release.crds,
                retain_on_delete=release.crds,
            ),
        )
    return KustomizeInstall(namespace, previous)
