"""modelplane: a model-serving platform on Kubernetes as typed, versioned code.

The public API. The pure parts (stack loading, the cross-field rules, ``build``, the lock) import
without Pulumi. The Pulumi components (``ServingPlatform``, ``ControlPlane``, ``Tenants``,
``RuntimeCatalog``, ``ModelCatalog``, ``ModelMesh``, ``GpuRuntimePool``, ``Monitoring``,
``PlatformConfig``, ``Model``, ``ModelMeshInstall``) are imported on first use through
``__getattr__``, so the CLI and programs that only render never load Pulumi; type checkers and
IDEs see their real classes through the ``TYPE_CHECKING`` imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelplane.build import PlatformObjects, build, desired_models
from modelplane.errors import (
    CapacityError,
    LockError,
    PlatformError,
    PreviewError,
    ProblemError,
    RenderError,
    RolloutError,
    StackError,
)
from modelplane.kube import Part
from modelplane.model import ModelArgs
from modelplane.rollout.lock import Lock, load_lock
from modelplane.rules import check
from modelplane.runtimes import RuntimeSpec, catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack, parse_stack

if TYPE_CHECKING:
    from modelplane.resources._register import KubeObject, ObjectGroup
    from modelplane.resources.mesh import GpuRuntimePool, ModelMesh, ModelMeshInstall
    from modelplane.resources.model import Model
    from modelplane.resources.platform import (
        ControlPlane,
        ModelCatalog,
        Monitoring,
        PlatformConfig,
        RuntimeCatalog,
        ServingPlatform,
        Tenants,
    )

_PULUMI_COMPONENTS = {
    "ServingPlatform": "modelplane.resources.platform",
    "ControlPlane": "modelplane.resources.platform",
    "Tenants": "modelplane.resources.platform",
    "RuntimeCatalog": "modelplane.resources.platform",
    "ModelCatalog": "modelplane.resources.platform",
    "Monitoring": "modelplane.resources.platform",
    "PlatformConfig": "modelplane.resources.platform",
    "ModelMesh": "modelplane.resources.mesh",
    "GpuRuntimePool": "modelplane.resources.mesh",
    "ModelMeshInstall": "modelplane.resources.mesh",
    "Model": "modelplane.resources.model",
    "KubeObject": "modelplane.resources._register",
    "ObjectGroup": "modelplane.resources._register",
}
"""The Pulumi classes of the public API, and the module each is imported from on first use."""

__all__ = [
    "CapacityError",
    "ControlPlane",
    "GpuRuntimePool",
    "KubeObject",
    "Lock",
    "LockError",
    "Model",
    "ModelArgs",
    "ModelCatalog",
    "ModelMesh",
    "ModelMeshInstall",
    "Monitoring",
    "ObjectGroup",
    "Part",
    "PlatformConfig",
    "PlatformError",
    "PlatformObjects",
    "PreviewError",
    "ProblemError",
    "RenderError",
    "RolloutError",
    "RuntimeCatalog",
    "RuntimeSpec",
    "ServingPlatform",
    "ServingPlatformArgs",
    "StackError",
    "Tenants",
    "build",
    "catalog_dir",
    "check",
    "desired_models",
    "load_catalog",
    "load_lock",
    "load_stack",
    "parse_stack",
]


def __getattr__(name: str) -> Any:
    module = _PULUMI_COMPONENTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelplane' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
