"""Programs that compose modelplane's parts themselves: the documented example, typed and run under mocks.

``docs/examples/compose.py`` builds only some parts (control plane, tenants, runtimes, model
catalog, one ``Model``) next to a Namespace of its own. It runs here exactly as ``pulumi up``
would run it, under the recording mocks; ``make lint`` type-checks it with ``mypy --strict``. A
Pulumi project that has its own ``components`` package, the usual name, must still be able to
import modelplane: that runs in a subprocess whose path starts with such a project.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from modelplane.kube import resource_name
from tests.pulumi_mocks import Recording, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "compose.py"
NAMESPACE = "kubernetes:core/v1:Namespace"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"


@pytest.fixture(scope="module")
def example() -> Recording:
    return run(lambda: runpy.run_path(str(EXAMPLE), run_name="__main__"), stack="dev")


def test_the_example_composes_only_the_parts_it_names(example: Recording) -> None:
    components = sorted({r.type for r in example if not r.custom and r.type.startswith("modelplane:")})
    assert components == [
        "modelplane:index:ControlPlane",
        "modelplane:index:Model",
        "modelplane:index:ModelCatalog",
        "modelplane:index:RuntimeCatalog",
        "modelplane:index:Tenants",
    ]
    assert all(example.ancestry(r) == ["pulumi:pulumi:Stack"] for r in example if r.type in components)


def test_the_teams_own_namespace_sits_beside_the_components(example: Recording) -> None:
    (own,) = [r for r in example.of_type(NAMESPACE) if r.name == "feature-store"]
    assert example.ancestry(own) == ["pulumi:pulumi:Stack"]


def test_the_programs_own_model_waits_for_its_namespace_and_kserve(example: Recording) -> None:
    (own,) = [r for r in example.of_type(NAMESPACE) if r.name == "feature-store"]
    (kserve,) = [r for r in example if r.inputs.get("name") == "kserve" and r.type.endswith(":Release")]
    (isvc,) = [r for r in example.of_type(ISVC) if r.inputs["metadata"]["namespace"] == "feature-store"]
    assert example.parent_of(isvc) == example.one("modelplane:index:Model")
    assert {own.urn, kserve.urn} <= set(isvc.dependencies)


def test_the_catalog_models_wait_for_their_tenant_namespace(example: Recording) -> None:
    (isvc,) = [r for r in example.of_type(ISVC) if r.inputs["metadata"]["namespace"] == "search"]
    assert example.parent_of(isvc) == example.one("modelplane:index:ModelCatalog")
    (tenant,) = [r for r in example.of_type(NAMESPACE) if r.inputs["metadata"]["name"] == "search"]
    assert tenant.urn in isvc.dependencies


def test_the_example_exports_what_it_composed(example: Recording) -> None:
    assert "kserve" in example.exports["releases"]
    assert example.exports["tenants"] == ["search"]
    (isvc,) = [r for r in example.of_type(ISVC) if r.inputs["metadata"]["namespace"] == "search"]
    assert resource_name(isvc.inputs) in example.exports["models"]


def test_type_checkers_see_the_real_components_through_the_public_api(tmp_path: Path) -> None:
    # With the components typed as Any (a bare lazy __getattr__) mypy would accept this call.
    program = tmp_path / "misuse.py"
    program.write_text(
        "from modelplane import ControlPlane, ServingPlatformArgs, build\n\n"
        'stack = ServingPlatformArgs.model_validate({"stack": {"name": "s", "tier": "dev"}})\n'
        "ControlPlane('cp', build(stack).objects, protect_crds=False)\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(program),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Argument 2 to "ControlPlane" has incompatible type "list[dict[str, Any]]"' in result.stdout


PROJECT_PROGRAM = """\
import components
from components.naming import team_name

import pulumi
from modelplane import ServingPlatform, ServingPlatformArgs

args = ServingPlatformArgs.model_validate(
    {
        "stack": {"name": pulumi.get_stack(), "tier": "dev"},
        "tenants": [{"name": team_name()}],
        "models": [
            {
                "name": "clf",
                "tenant": team_name(),
                "runtime": "sklearn",
                "format": {"name": "sklearn", "version": "1"},
                "storage": {"uri": "gs://bucket/clf"},
                "version": "v1",
            }
        ],
    }
)
ServingPlatform(pulumi.get_stack(), args)
pulumi.export("components", components.__file__)
"""

DRIVER = """\
import json, runpy, sys

sys.path.append(sys.argv[1])  # the test helpers, after the project's own modules
import modelplane
from tests.pulumi_mocks import run

recording = run(lambda: runpy.run_path("__main__.py", run_name="__main__"), stack="dev")
print(json.dumps({
    "components": recording.exports["components"],
    "modelplane": modelplane.__file__,
    "types": sorted({r.type for r in recording.registrations}),
}))
"""


def test_a_pulumi_project_with_its_own_components_package_can_use_modelplane(tmp_path: Path) -> None:
    package = tmp_path / "components"
    package.mkdir()
    (package / "__init__.py").write_text('"""The team\'s own components."""\n', encoding="utf-8")
    (package / "naming.py").write_text("def team_name() -> str:\n    return 'search'\n", encoding="utf-8")
    (tmp_path / "__main__.py").write_text(PROJECT_PROGRAM, encoding="utf-8")
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    # As Pulumi runs a program: its directory first on the path (here, the driver's).
    result = subprocess.run(
        [sys.executable, "driver.py", str(ROOT)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["components"] == str(package / "__init__.py")
    assert Path(found["modelplane"]).parent == ROOT / "components" / "modelplane"
    assert {"modelplane:index:ServingPlatform", ISVC} <= set(found["types"])
