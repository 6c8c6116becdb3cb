"""The ``modelplane`` command line: exit codes, output, and errors without tracebacks.

Contracts: exit 0 on success; exit 2 for usage and input errors, one line per problem on
stderr; exit 1 only for internal failures, with a traceback only under ``--debug``.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelplane import cli
from modelplane.build import build
from modelplane.render import stream_objects, to_yaml_stream
from modelplane.rollout.lock import lock_path, read_lock
from modelplane.stack import load_stack
from tests.conftest import CRD_DIR, EXAMPLE_STACKS, STACKS

SUBCOMMANDS = [["validate"], ["render"], ["summary"], ["schemas"], ["schemas", "fetch"]]
BAD_STACK = "stack: {name: dev, tier: qa}\nmodels: 3\n"


@pytest.fixture
def bad_stack(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_STACK, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- validate --------------------------------------------------------------------------------------


def test_validate_prints_a_line_per_valid_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", *map(str, EXAMPLE_STACKS))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(p) for p in EXAMPLE_STACKS]
    assert all(": valid (" in line and " models, " in line for line in lines)


def test_validate_quiet_prints_nothing_for_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", "-q", *map(str, EXAMPLE_STACKS)) == (0, "", "")


def test_validate_reports_every_problem_on_stderr_and_exits_2(
    capsys: pytest.CaptureFixture[str], bad_stack: Path
) -> None:
    good = EXAMPLE_STACKS[0]
    code, out, err = run(capsys, "validate", str(bad_stack), str(good))
    assert code == 2
    assert out.splitlines() == [next(line for line in out.splitlines() if line.startswith(f"{good}: valid"))]
    assert err.splitlines() == [
        f"{bad_stack}: stack.tier: must be 'dev', 'staging' or 'prod' (got \"qa\")",
        f"{bad_stack}: models: must be a list (got 3)",
    ]
    assert "Traceback" not in err


def test_validate_of_a_missing_file_is_an_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yaml"
    assert run(capsys, "validate", str(missing)) == (2, "", f"{missing}: <root>: no such file\n")


def test_validate_with_the_upstream_schemas(capsys: pytest.CaptureFixture[str], schema_dir: Path) -> None:
    if schema_dir == CRD_DIR:
        pytest.skip(
            "the LLMInferenceService CRD is read from KServe's Go module, which is not available here"
        )
    code, out, err = run(capsys, "validate", "--schemas", str(schema_dir), *map(str, EXAMPLE_STACKS))
    assert (code, err) == (0, "")
    assert [line.split(": valid (")[0] for line in out.splitlines()] == [str(p) for p in EXAMPLE_STACKS]


def test_validate_reports_rendered_objects_that_break_a_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A CRD directory whose InferenceService schema allows no spec at all.
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "group": "serving.kserve.io",
            "names": {"kind": "InferenceService"},
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "string"}}}
                    },
                }
            ],
        },
    }
    (tmp_path / "isvc.yaml").write_text(yaml.safe_dump(crd), encoding="utf-8")
    dev = STACKS / "dev.yaml"
    code, out, err = run(capsys, "validate", "--schemas", str(tmp_path), str(dev))
    assert code == 2
    # A file with schema problems is not called valid.
    assert out == ""
    lines = err.splitlines()
    assert lines
    assert all(line.startswith(f"{dev}: rendered ") for line in lines)
    assert any("InferenceService fraud/" in line and ": spec: " in line for line in lines)
    assert "Traceback" not in err


def test_validate_with_a_missing_schema_directory_is_an_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "crds"
    code, _, err = run(capsys, "validate", "--schemas", str(missing), str(EXAMPLE_STACKS[0]))
    assert (code, err) == (2, f"modelplane: {missing}: schema directory not found\n")


# -- render ----------------------------------------------------------------------------------------


def test_render_writes_deploy_stack_under_the_working_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    dev = STACKS / "dev.yaml"
    code, out, err = run(capsys, "render", str(dev))
    assert (code, err) == (0, "")
    assert out.startswith(f"{dev}: wrote ")
    assert " files to deploy/dev/ (" in out
    assert (tmp_path / "deploy" / "dev" / "kustomization.yaml").is_file()
    sync = list(yaml.safe_load_all((tmp_path / "deploy" / "dev" / "sync.yaml").read_text(encoding="utf-8")))
    # dev serves models in Knative mode, so KnativeServing and the KServe controller get stages of their own.
    assert [k["spec"]["path"] for k in sync] == [
        "./deploy/dev/infrastructure",
        "./deploy/dev/configuration",
        "./deploy/dev/controllers",
        "./deploy/dev/platform",
    ]


def test_render_to_another_directory_points_flux_at_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "render", str(STACKS / "dev.yaml"), "-o", "clusters/dev")
    assert code == 0
    assert " files to clusters/dev/ (" in out
    sync = list(yaml.safe_load_all((tmp_path / "clusters" / "dev" / "sync.yaml").read_text(encoding="utf-8")))
    assert [k["spec"]["path"] for k in sync] == [
        f"./clusters/dev/{stage}" for stage in ("infrastructure", "configuration", "controllers", "platform")
    ]
    assert not (tmp_path / "deploy").exists()


def test_render_counts_the_files_it_wrote(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "render", str(STACKS / "prod.yaml"), "-o", str(out_dir))
    written = [p for p in out_dir.rglob("*") if p.is_file()]
    assert code == 0
    assert f": wrote {len(written)} files to {out_dir}/ (" in out


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_render_to_stdout_writes_the_sorted_stream(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    monkeypatch.chdir(tmp_path)
    prod = STACKS / "prod.yaml"
    code, out, err = run(capsys, "render", str(prod), "-o", "-", "--gitops", engine)
    stack = load_stack(prod)
    # The render follows the committed lock: the deployed state decides the traffic split.
    rendered = build(stack, lock=read_lock(lock_path(prod), stack="prod"))
    assert (code, err) == (0, "")
    assert out == to_yaml_stream(
        stream_objects(rendered.objects, rendered.charts, stack="prod", engine=engine)
    )  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_render_for_argocd_writes_applications_and_no_flux_sync(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, _ = run(
        capsys, "render", str(STACKS / "dev.yaml"), "-o", str(tmp_path / "out"), "--gitops", "argocd"
    )
    assert code == 0
    assert not (tmp_path / "out" / "sync.yaml").exists()
    kinds = {
        yaml.safe_load(p.read_text(encoding="utf-8"))["kind"]
        for p in (tmp_path / "out" / "infrastructure").glob("*--*")
    }
    assert kinds == {"Application"}


def test_render_of_an_invalid_stack_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_stack: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "render", str(bad_stack))
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == f"{bad_stack}: stack.tier: must be 'dev', 'staging' or 'prod' (got \"qa\")"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_render_refusing_a_foreign_directory_is_an_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    code, _, err = run(capsys, "render", str(STACKS / "dev.yaml"), "-o", str(tmp_path))
    assert code == 2
    assert err == (
        f"modelplane: {tmp_path}: not a modelplane render (it holds notes.txt); choose an empty or new directory\n"
    )
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine\n"


# -- summary ---------------------------------------------------------------------------------------


def test_summary_counts_objects_per_kind_and_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    staging = STACKS / "staging.yaml"
    stack = load_stack(staging)
    rendered = build(stack)
    code, out, err = run(capsys, "summary", str(staging))
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0] == f"{staging}: stack staging (staging), {len(stack.models)} models"
    counted = sum(int(line.split()[-1]) for line in lines[1:] if not line.strip().startswith("upstream "))
    assert counted == len(rendered.objects)
    assert [line.split()[1] for line in lines if line.strip().startswith("upstream ")] == [
        c.chart for c in rendered.charts
    ]


# -- usage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], *SUBCOMMANDS], ids=lambda a: " ".join(a) or "modelplane")
def test_help_exits_0(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: {' '.join(['modelplane', *argv])} ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frob"], "modelplane: error: argument COMMAND: invalid choice: 'frob'"),
        ([], "modelplane: error: the following arguments are required: COMMAND"),
        (["render"], "modelplane render: error: the following arguments are required: FILE"),
        (["validate"], "modelplane validate: error: the following arguments are required: FILE"),
        (["summary"], "modelplane summary: error: the following arguments are required: FILE"),
        (
            ["schemas", "fetch", "x.yaml"],
            "modelplane schemas fetch: error: the following arguments are required: --out",
        ),
        (
            ["render", "x.yaml", "--gitops", "jenkins"],
            "modelplane render: error: argument --gitops: invalid choice",
        ),
    ],
)
def test_usage_errors_exit_2_with_usage_and_no_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("usage: modelplane")
    assert message in err
    assert "Traceback" not in err


def test_a_missing_runtime_catalog_is_an_installation_error_not_a_problem_of_the_stack(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-catalog"
    monkeypatch.setenv("MODELPLANE_RUNTIMES", str(missing))
    code, out, err = run(capsys, "validate", str(STACKS / "dev.yaml"))
    assert (code, out) == (2, "")
    assert err == f"modelplane: {missing}: runtime catalog directory not found (set MODELPLANE_RUNTIMES)\n"


# -- internal errors -------------------------------------------------------------------------------


@pytest.fixture
def broken_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    # The module, not the facade's ``modelplane.build`` (the function of the same name).
    monkeypatch.setattr(importlib.import_module("modelplane.build"), "build", build)


@pytest.mark.usefixtures("broken_build")
def test_an_internal_error_exits_1_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "summary", str(STACKS / "dev.yaml"))
    assert (code, out) == (1, "")
    assert err == "modelplane: internal error: RuntimeError: boom (run with --debug for details)\n"


@pytest.mark.usefixtures("broken_build")
@pytest.mark.parametrize("argv", [["--debug", "summary", "STACK"], ["summary", "STACK", "--debug"]])
def test_debug_shows_the_traceback_of_an_internal_error(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = run(capsys, *[str(STACKS / "dev.yaml") if a == "STACK" else a for a in argv])
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert err.rstrip().endswith("RuntimeError: boom")


# -- the console script ----------------------------------------------------------------------------


def test_the_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "modelplane"
    assert script.is_file(), "pip install -e . installs the modelplane console script beside python"
    done = subprocess.run(
        [str(script), "validate", str(STACKS / "dev.yaml"), str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout.startswith(f"{STACKS / 'dev.yaml'}: valid (")
    assert done.stderr == f"{tmp_path / 'missing.yaml'}: <root>: no such file\n"
