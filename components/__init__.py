"""modelplane: a model-serving platform on Kubernetes as typed, versioned code.

The public API. Pure parts (stack loading, ``objects()``, render, rollout, preview) import
without Pulumi; the Pulumi components (``ServingPlatform``, ``ControlPlane``, ``Model``, ...)
are imported on first use, so the CLI and tests of pure code never pay for Pulumi.
"""

from __future__ import annotations

import importlib
from typing import Any

from components.errors import (
    CapacityError,
    LockError,
    PlatformError,
    PreviewError,
    RenderError,
    RolloutError,
    StackError,
)
from components.model import ModelArgs
from components.serving_platform import ServingPlatformArgs, build
from components.stack import load_stack

_PULUMI_COMPONENTS = {
    "ServingPlatform": "components.resources.platform",
    "ControlPlane": "components.resources.platform",
    "Tenants": "components.resources.platform",
    "RuntimeCatalog": "components.resources.platform",
    "ModelCatalog": "components.resources.platform",
    "Model": "components.resources.model",
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
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
