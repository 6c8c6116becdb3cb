"""ModelMesh's own reading of a user configuration (``tools/mmconfig``, built on demand)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReadConfig:
    """What ModelMesh's loader made of a configuration."""

    error: str
    """Its error ("" when it accepts the configuration)."""
    unknown: list[str]
    """Keys its Config struct has no field for (ModelMesh ignores them silently)."""
    config: dict[str, Any]
    """The merged configuration, ModelMesh's defaults under the user's keys."""


def read_config(binary: Path, text: str) -> ReadConfig:
    """Run ModelMesh's configuration loader on a ``config.yaml`` text."""
    result = subprocess.run([str(binary)], input=text, capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(result.stdout)
    return ReadConfig(error=data["error"], unknown=data["unknown"], config=data["config"] or {})
