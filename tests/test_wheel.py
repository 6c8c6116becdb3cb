"""The package as users install it: a wheel built from the source, in a venv of its own.

The source tree hides what a wheel leaves out: an editable install reads ``runtimes/`` and the
preview templates from the checkout. So this builds the wheel (``pip wheel``, with build
isolation, exactly as ``pip install .`` would), installs it into a venv that holds only the
runtime dependencies pyproject.toml declares, and runs ``modelplane`` from a directory outside
the source tree on copies of the example stacks: validate, render, plan, preview, and the preview
step of the shipped ``.github/workflows/preview.yml`` in a git repository of its own.

The dependency venv is cached under ``${XDG_CACHE_HOME:-~/.cache}/modelplane/wheel/`` and rebuilt
only when the dependency list or Python changes; the wheel is rebuilt and reinstalled every run.
Both need the package index once; without it the tests skip and say so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE_STACKS, ROOT

SOURCES = ("pyproject.toml", "README.md", "components", "runtimes")
"""What the build reads from the project (pyproject.toml names README.md as the long description)."""

_UNREACHABLE = (
    "Could not find a version",
    "No matching distribution",
    "Network is unreachable",
    "Temporary failure in name resolution",
)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelplane" / "wheel"


def _dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"])


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points Python or modelplane at the source tree."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODELPLANE_RUNTIMES", "VIRTUAL_ENV")
    }
    return env | extra


def _run_or_skip(command: list[str], what: str, *, timeout: int) -> None:
    """Run a step that needs the package index; skip (saying why) only when the index is unreachable."""
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=_clean_env(), timeout=timeout
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(sign in output for sign in _UNREACHABLE):
            pytest.skip(f"{what} needs the package index, which is unreachable here: {output.strip()[-300:]}")
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{output[-4000:]}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the project's sources (the source tree gets no build files)."""
    work = tmp_path_factory.mktemp("wheel-build")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        item = ROOT / name
        if item.is_dir():
            shutil.copytree(item, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(item, source / name)
    out = work / "dist"
    _run_or_skip(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--quiet", "--wheel-dir", str(out)],
        "building the wheel",
        timeout=600,
    )
    (built,) = out.glob("modelplane-*.whl")
    return built


@dataclass(frozen=True)
class Installed:
    """A venv with the runtime dependencies and the freshly built wheel."""

    venv: Path

    @property
    def modelplane(self) -> str:
        return str(self.venv / "bin" / "modelplane")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


def _dependency_venv() -> Path:
    deps = _dependencies()
    stamp = hashlib.sha256("\n".join((sys.version.split()[0], *deps)).encode()).hexdigest()
    venv = _cache_root() / f"deps-{stamp[:16]}"
    marker = venv / ".modelplane-stamp"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == stamp:
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    _run_or_skip(
        [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        "upgrading pip in the wheel venv",
        timeout=600,
    )
    _run_or_skip(
        [python, "-m", "pip", "install", "--quiet", *deps],
        "installing modelplane's runtime dependencies",
        timeout=1200,
    )
    marker.write_text(stamp + "\n", encoding="utf-8")
    return venv


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Installed:
    venv = _dependency_venv()
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)],
        check=True,
        env=_clean_env(),
        timeout=300,
    )
    # The wheel's own dependency metadata is met by what the venv holds, and nothing else is needed.
    check = subprocess.run(
        [python, "-m", "pip", "check"], capture_output=True, text=True, check=False, env=_clean_env()
    )
    assert check.returncode == 0, check.stdout + check.stderr
    return Installed(venv)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the source tree holding copies of the example stacks (and locks)."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for stack in EXAMPLE_STACKS:
        shutil.copy2(stack, stacks / stack.name)
        lock = stack.with_suffix(".lock.yaml")
        if lock.is_file():
            shutil.copy2(lock, stacks / lock.name)
    return tmp_path


def _modelplane(installed: Installed, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed.modelplane, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=_clean_env(),
        timeout=300,
    )


def test_the_wheel_holds_every_module_the_catalog_and_the_templates(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    package = ROOT / "components" / "modelplane"
    modules = {f"modelplane/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
    assert modules - names == set(), "modules the wheel leaves out (add their package to pyproject.toml)"
    catalog = {f"modelplane/_catalog/{p.name}" for p in (ROOT / "runtimes").iterdir() if p.is_file()}
    assert catalog and catalog <= names
    assert "modelplane/preview/templates/preview.md.j2" in names
    assert "modelplane/preview/preview.schema.json" in names
    assert "modelplane/py.typed" in names
    # The JSON Schemas of the stack file and of every --output json report ship with the package.
    schemas = {f"modelplane/schemas/{p.name}" for p in (package / "schemas").glob("*.schema.json")}
    assert "modelplane/schemas/stack.schema.json" in schemas
    assert schemas - names == set(), "schemas the wheel leaves out (pyproject.toml's package-data)"


def test_the_installed_package_reads_its_own_catalog(installed: Installed, tmp_path: Path) -> None:
    probe = "import modelplane, modelplane.runtimes as r; print(modelplane.__file__); print(r.catalog_dir())"
    result = subprocess.run(
        [installed.python, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=_clean_env(),
    )
    module, catalog = result.stdout.split()
    site = installed.venv / "lib"
    assert Path(module).is_relative_to(site), module
    assert Path(catalog).is_relative_to(site) and Path(catalog).name == "_catalog", catalog


def test_validate_render_plan_and_preview_from_the_install(installed: Installed, outside: Path) -> None:
    stacks = sorted((outside / "stacks").glob("*.yaml"))
    stacks = [s for s in stacks if not s.name.endswith(".lock.yaml")]
    assert [s.name for s in stacks] == [s.name for s in EXAMPLE_STACKS]
    result = _modelplane(installed, "validate", *[str(s) for s in stacks], cwd=outside)
    assert result.returncode == 0, result.stderr
    for stack in stacks:
        rendered = _modelplane(installed, "render", str(stack), "-o", "-", cwd=outside)
        assert rendered.returncode == 0, rendered.stderr
        # The same bytes as the source tree renders: nothing the install reads differs.
        from_source = subprocess.run(
            [sys.executable, "-m", "modelplane.cli", "render", str(ROOT / "stacks" / stack.name), "-o", "-"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        assert rendered.stdout == from_source.stdout, stack.name
        plan = _modelplane(installed, "plan", str(stack), "--format", "json", cwd=outside)
        assert plan.returncode == 0, plan.stderr
        out = outside / "deploy" / stack.stem
        written = _modelplane(installed, "render", str(stack), "-o", str(out), cwd=outside)
        assert written.returncode == 0, written.stderr
        assert sorted(out.rglob("kustomization.yaml"))
    prod = outside / "stacks" / "prod.yaml"
    base = outside / "base-prod.yaml"
    shutil.copy2(prod, base)
    data = yaml.safe_load(prod.read_text(encoding="utf-8"))
    data["models"][0]["version"] = "v999"
    data["models"][0]["storage"]["uri"] += "-v999"
    prod.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    preview = _modelplane(
        installed, "preview", str(prod), "--base", str(base), "--format", "markdown", cwd=outside
    )
    assert preview.returncode == 0, preview.stderr
    assert "### modelplane preview: `prod`" in preview.stdout
    assert "v999" in preview.stdout


def _git(cwd: Path, *args: str) -> str:
    env = _clean_env(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env)
    return result.stdout.strip()


def test_the_preview_workflow_step_runs_from_the_install(installed: Installed, outside: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "preview.yml").read_text(encoding="utf-8"))
    steps = {s.get("name", ""): s for s in workflow["jobs"]["modelplane"]["steps"]}
    assert steps["Install modelplane"]["run"].strip() == "python -m pip install --quiet ."
    script = steps["Preview every changed stack"]["run"]
    _git(outside, "init", "--quiet", "--initial-branch=main")
    _git(outside, "add", "stacks")
    _git(outside, "commit", "--quiet", "-m", "base")
    base_sha = _git(outside, "rev-parse", "HEAD")
    staging = outside / "stacks" / "staging.yaml"
    data = yaml.safe_load(staging.read_text(encoding="utf-8"))
    model = data["models"][0]
    model["version"] = "v-next"
    model["storage"]["uri"] += "-next"
    staging.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    _git(outside, "commit", "--quiet", "-am", "bump a model")
    runner_temp = outside / "runner"
    runner_temp.mkdir()
    output = outside / "github-output"
    env = _clean_env(
        BASE_SHA=base_sha,
        RUNNER_TEMP=str(runner_temp),
        GITHUB_OUTPUT=str(output),
        PATH=f"{installed.venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=outside,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines())
    body = Path(outputs["body"]).read_text(encoding="utf-8")
    assert body.startswith("<!-- modelplane-preview-comment -->")
    assert "### modelplane preview: `staging`" in body
    assert model["name"] in body and "v-next" in body
    assert outputs["destructive"] == "0"
