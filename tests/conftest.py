"""Shared test fixtures: project paths, example stacks, and schema validators.

The upstream CRD schemas live beside the project in ``../shared/schemas/crds``; tests that
need them skip with a clear reason when that directory is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelplane.build import build
from modelplane.kube import Obj
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from modelplane.validation import CrdSchemas, validate_objects
from tests.upstream import samples

ROOT = Path(__file__).resolve().parent.parent
STACKS = ROOT / "stacks"
SHARED = ROOT.parent / "shared"
CRD_DIR = SHARED / "schemas" / "crds"
REFERENCE_DIR = SHARED / "reference"
EXAMPLE_STACKS = sorted(p for p in STACKS.glob("*.yaml") if not p.name.endswith(".lock.yaml"))


def example_stack_ids() -> list[str]:
    return [p.stem for p in EXAMPLE_STACKS]


LLMISVC_CRD = "config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml"
"""The LLMInferenceService CRD in KServe's Go module (not among the schemas beside the project)."""


@pytest.fixture(scope="session")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The upstream CRD schemas: those beside the project, and KServe's LLMInferenceService CRD.

    The LLMInferenceService CRD (2.2 MB) is read from the pinned KServe Go module; without Go,
    LLM services are left out of the schema checks (``UNAVAILABLE_SCHEMAS``).
    """
    if not CRD_DIR.is_dir():
        pytest.skip(f"upstream CRD schemas not found at {CRD_DIR} (the shared/ directory beside the project)")
    try:
        module = samples.kserve_module()
    except samples.ModuleMissingError:
        return CRD_DIR
    directory = tmp_path_factory.mktemp("crds")
    shutil.copytree(CRD_DIR, directory, dirs_exist_ok=True)
    target = directory / "serving.kserve.io" / "llminferenceservice.yaml"
    shutil.copyfile(module / LLMISVC_CRD, target)
    return directory


@pytest.fixture(scope="session")
def crd_schemas(schema_dir: Path) -> CrdSchemas:
    return CrdSchemas.from_dir(schema_dir)


@pytest.fixture(params=EXAMPLE_STACKS, ids=example_stack_ids())
def example_stack(request: pytest.FixtureRequest) -> ServingPlatformArgs:
    stack: ServingPlatformArgs = load_stack(request.param)
    return stack


UNAVAILABLE_SCHEMAS: frozenset[tuple[str, str]] = frozenset(
    {
        ("operator.knative.dev/v1beta1", "KnativeServing"),
        ("serving.kserve.io/v1alpha2", "LLMInferenceService"),
    }
)
"""Custom resources whose CRD is not among the upstream schemas beside the project.

They are checked against their schema by their own tests when it is present (``modelplane
schemas fetch`` downloads it) and skipped there with that reason; every other custom
resource must have its schema here.
"""


def schema_problems(objects: list[Obj], stack: ServingPlatformArgs, crds: CrdSchemas) -> list[str]:
    """Both schema checks: kubernetes-validate --strict for built-ins, CRD schemas for the rest."""
    checkable = [
        o
        for o in objects
        if (o["apiVersion"], o["kind"]) not in UNAVAILABLE_SCHEMAS
        or (o["apiVersion"], o["kind"]) in crds.schemas
    ]
    return validate_objects(checkable, kubernetes_version=stack.versions.kubernetes, crds=crds)


def rendered(stack: ServingPlatformArgs) -> list[Obj]:
    return build(stack).objects
