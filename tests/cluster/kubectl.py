"""A small client for the cluster tests: server-side apply, get and list through the dynamic client.

Server-side apply is what Flux, Argo CD (with ServerSideApply) and pulumi-kubernetes use, so the
tests apply with it too: the API server then checks field ownership, immutable fields and the
admission webhooks exactly as on a real deploy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes import config as kube_config
from kubernetes import dynamic
from kubernetes.client import api_client
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

Obj = dict[str, Any]
FIELD_MANAGER = "modelplane"


class ApplyError(RuntimeError):
    """The API server refused an object; the message names it and quotes the server."""


class Kube:
    """Dynamic client bound to one kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        client = kube_config.new_client_from_config(config_file=str(kubeconfig))
        self.client = dynamic.DynamicClient(client)

    def resource(self, api_version: str, kind: str) -> Any:
        try:
            return self.client.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self.client.resources.invalidate_cache()
            return self.client.resources.get(api_version=api_version, kind=kind)

    def apply(self, obj: Obj, *, manager: str = FIELD_MANAGER, force: bool = True) -> Obj:
        """Server-side apply one object; raise :class:`ApplyError` with the server's message."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        try:
            result = resource.server_side_apply(
                body=obj,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=manager,
                force_conflicts=force,
            )
        except api_client.ApiException as error:
            raise ApplyError(f"{identity(obj)}: {error.status} {_message(error)}") from None
        except dynamic.exceptions.DynamicApiError as error:
            raise ApplyError(f"{identity(obj)}: {error.status} {_message(error)}") from None
        applied: Obj = result.to_dict()
        return applied

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            found = self.resource(api_version, kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        obj: Obj = found.to_dict()
        return obj

    def list(self, api_version: str, kind: str, namespace: str | None = None, **selectors: str) -> list[Obj]:
        found = self.resource(api_version, kind).get(namespace=namespace, **selectors)
        return [item.to_dict() for item in found.items]

    def patch(self, obj: Obj, patch: Obj) -> None:
        meta = obj["metadata"]
        self.resource(obj["apiVersion"], obj["kind"]).patch(
            name=meta["name"],
            namespace=meta.get("namespace"),
            body=patch,
            content_type="application/merge-patch+json",
        )


def identity(obj: Obj) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta['name']}"


def _message(error: Any) -> str:
    body = getattr(error, "body", None) or getattr(error, "summary", lambda: "")()
    try:
        return str(json.loads(body).get("message", body))
    except (TypeError, ValueError):
        return str(body)
