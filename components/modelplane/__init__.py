"""modelplane: a model-serving platform on Kubernetes as typed, versioned code.

The public API. Pure parts (stack loading, ``objects()``, render, rollout, preview) import
without Pulumi; the Pulumi components (``ServingPlatform``, ``ControlPlane``, ``Model``, ...)
are imported on first use, so the CLI and tests of pure code never pay for Pulumi.
"""

from __future__ import annotations

import importlib
from typing import Any

from modelplane.build import build
from modelplane.errors import (
    CapacityError,
    LockError,
    PlatformError,
    PreviewError,
    RenderError,
    RolloutError,
    StackError,
)
from modelplane.model import ModelArgs
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack

_PULUMI_COMPONENTS = {
    "ServingPlatform": "modelplane.resources.platform",
    "ControlPlane": "modelplane.resources.platform",
    "Tenants": "modelplane.resources.platform",
    "RuntimeCatalog": "modelplane.resources.platform",
    "ModelCatalog": "modelplane.resources.platform",
    "Model": "modelplane.resources.model",
}

__all__ = [
    "CapacityError",
    "ControlPlane",
    "LockError",
    "Model",
    "ModelArgs",
    "ModelCatalog",
    "PlatformError",
    "PreviewError",
    "RenderError",
    "RolloutError",
    "RuntimeCatalog",
    "ServingPlatform",
    "ServingPlatformArgs",
    "StackError",
    "Tenants",
    "build",
    "load_stack",
]


def __getattr__(name: str) -> Any:
    module = _PULUMI_COMPONENTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelplane' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
