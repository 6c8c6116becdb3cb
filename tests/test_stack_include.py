"""Stacks made of several files (``include:``): merge semantics, origins in errors, refusals, Git bases."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.cli import main
from modelplane.errors import StackError
from modelplane.stack import load_stack, stack_sources
from modelplane.stack_yaml import MAX_STACK_BYTES

BASE = """\
versions:
  kubernetes: "1.33"
controlPlane:
  ingress: {domain: models.example.com}
tenants:
  - name: payments
  - name: search
rollout:
  strategy: canary
  steps: [10, 25, 50, 100]
  stepInterval: 10m
models:
  - name: fraud
    tenant: payments
    runtime: sklearn
    format: {name: sklearn, version: "1"}
    storage: {uri: "s3://models/fraud/v1"}
    version: v1
    scaling: {minReplicas: 1, maxReplicas: 4}
  - name: ranker
    tenant: search
    runtime: xgboost
    format: {name: xgboost, version: "2"}
    storage: {uri: "s3://models/ranker/v3"}
    version: v3
"""

PROD = """\
include: [shared/base.yaml]
stack: {name: prod, tier: prod}
rollout:
  steps: [5, 50, 100]
models:
  - name: fraud
    tenant: payments
    version: v2
    storage: {uri: "s3://models/fraud/v2"}
    scaling: {maxReplicas: 12}
  - name: embedder
    tenant: search
    runtime: sklearn
    format: {name: sklearn, version: "1"}
    storage: {uri: "s3://models/embedder/v1"}
    version: v1
images: {pinning: tag}
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    write(tmp_path, {"stacks/shared/base.yaml": BASE, "stacks/prod.yaml": PROD})
    return tmp_path / "stacks"


def test_mappings_merge_named_items_merge_other_lists_are_replaced(stacks: Path) -> None:
    args = load_stack(stacks / "prod.yaml")
    assert (args.stack.name, args.versions.kubernetes) == ("prod", "1.33")
    assert args.rollout.steps == [5, 50, 100]  # replaced
    assert (args.rollout.step_interval, args.rollout.strategy) == ("10m", "canary")  # kept from the base
    assert [t.name for t in args.tenants] == ["payments", "search"]
    assert [m.name for m in args.models] == ["fraud", "ranker", "embedder"]  # first appearance order
    fraud = args.models[0]
    assert (fraud.version, fraud.storage.uri, fraud.runtime) == ("v2", "s3://models/fraud/v2", "sklearn")
    assert (fraud.scaling.min_replicas, fraud.scaling.max_replicas) == (1, 12)  # merged key by key


def test_files_read_again_give_the_same_stack(stacks: Path, tmp_path: Path) -> None:
    """A file's data is read once per content and shared (a preview reads base and head): never changed."""
    first = load_stack(stacks / "prod.yaml")
    assert load_stack(stacks / "prod.yaml") == first
    # The same bytes under another name (a Git base) give the same data too, and merge alike.
    write(tmp_path, {"base/shared/base.yaml": BASE, "base/prod.yaml": PROD})
    assert load_stack(tmp_path / "base" / "prod.yaml") == first
    assert [m.name for m in first.models] == ["fraud", "ranker", "embedder"]


def test_sources_are_the_included_files_then_the_stack(stacks: Path) -> None:
    assert stack_sources(stacks / "prod.yaml") == [stacks / "shared" / "base.yaml", stacks / "prod.yaml"]


def test_same_name_in_another_tenant_is_another_model(stacks: Path) -> None:
    (stacks / "prod.yaml").write_text(PROD.replace("name: embedder", "name: fraud"))
    args = load_stack(stacks / "prod.yaml")
    assert [(m.tenant, m.name) for m in args.models] == [
        ("payments", "fraud"),
        ("search", "ranker"),
        ("search", "fraud"),
    ]


def problems(path: Path) -> list[str]:
    with pytest.raises(StackError) as err:
        load_stack(path)
    return err.value.problems


def test_a_problem_names_the_file_path_and_line_that_set_the_value(stacks: Path) -> None:
    (stacks / "shared" / "base.yaml").write_text(
        BASE.replace("maxReplicas: 4}", "maxReplicas: 4, minReplica: 1}")
    )
    (stacks / "prod.yaml").write_text(
        PROD.replace("tenant: search\n    runtime: sklearn", "tenant: ads\n    runtime: sklearn")
    )
    assert problems(stacks / "prod.yaml") == [
        f"{stacks}/shared/base.yaml:19: models[0].scaling.minReplica: unknown field; did you mean 'minReplicas'? (got 1)",
        f'{stacks}/prod.yaml:12: models[1].tenant: unknown tenant (tenants: payments, search) (got "ads")',
    ]


def test_a_value_overridden_is_reported_where_it_was_overridden(stacks: Path) -> None:
    (stacks / "prod.yaml").write_text(
        PROD.replace("scaling: {maxReplicas: 12}", "scaling: {maxReplicas: -3}")
    )
    assert problems(stacks / "prod.yaml") == [
        f"{stacks}/prod.yaml:10: models[0].scaling.maxReplicas: must be at least 1 (got -3)"
    ]


def test_a_stack_of_one_file_reports_as_before(tmp_path: Path) -> None:
    write(tmp_path, {"one.yaml": "stack: {name: one, tier: dev}\nrollout: {steps: [50]}\n"})
    assert problems(tmp_path / "one.yaml") == [
        f"{tmp_path}/one.yaml: rollout: the last step must be 100 (got 50)"
    ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"prod.yaml": "include: missing.yaml\n"}, "prod.yaml: include: no such file: {dir}/missing.yaml"),
        (
            {"prod.yaml": "include: /etc/hosts\n"},
            "prod.yaml: include: '/etc/hosts' must be relative to the file that includes it",
        ),
        (
            {"prod.yaml": "include: ../secret.yaml\n"},
            "prod.yaml: include: '../secret.yaml' is outside {dir}/, the stack file's directory",
        ),
        (
            {"prod.yaml": "include: [a.yaml]\n", "a.yaml": "include: prod.yaml\n"},
            "a.yaml: include: includes itself: {dir}/prod.yaml -> {dir}/a.yaml -> {dir}/prod.yaml",
        ),
        (
            {"prod.yaml": "include: [a.yaml, b.yaml]\n", "a.yaml": "include: b.yaml\n", "b.yaml": "{}\n"},
            "prod.yaml: include: {dir}/b.yaml is included twice (first by {dir}/a.yaml)",
        ),
        ({"prod.yaml": "include: 3\n"}, "prod.yaml: include: must be a file name or a list of file names"),
    ],
)
def test_refused_includes_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], message: str
) -> None:
    write(tmp_path, files)
    assert main(["validate", str(tmp_path / "prod.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/{message.format(dir=tmp_path)}" in err
    assert "Traceback" not in err


def test_the_size_cap_applies_to_each_file(stacks: Path) -> None:
    (stacks / "shared" / "big.yaml").write_text("# " + "x" * MAX_STACK_BYTES + "\n")
    (stacks / "prod.yaml").write_text(
        PROD.replace("[shared/base.yaml]", "[shared/base.yaml, shared/big.yaml]")
    )
    (line,) = problems(stacks / "prod.yaml")
    assert line.startswith(f"{stacks}/shared/big.yaml: <root>: file is ")


def test_a_catalog_from_many_files(tmp_path: Path) -> None:
    files = {
        "stacks/prod.yaml": "include: ["
        + ", ".join(f"catalog/{i:03}.yaml" for i in range(200))
        + "]\n"
        + "stack: {name: prod, tier: prod}\ntenants: [{name: t}]\n"
    }
    for i in range(200):
        models = [
            {
                "name": f"m{i:03}-{j}",
                "tenant": "t",
                "runtime": "sklearn",
                "format": {"name": "sklearn", "version": "1"},
                "storage": {"uri": f"s3://m/{i}/{j}"},
                "version": "v1",
                "deploymentMode": "standard",
            }
            for j in range(10)
        ]
        files[f"stacks/catalog/{i:03}.yaml"] = yaml.safe_dump({"models": models}, sort_keys=False)
    write(tmp_path, files)
    assert len(load_stack(tmp_path / "stacks" / "prod.yaml").models) == 2000
    broken = yaml.safe_load(files["stacks/catalog/150.yaml"])
    broken["models"][3]["runtime"] = "nope"
    (tmp_path / "stacks" / "catalog" / "150.yaml").write_text(yaml.safe_dump(broken, sort_keys=False))
    (line,) = problems(tmp_path / "stacks" / "prod.yaml")
    assert line.startswith(f"{tmp_path}/stacks/catalog/150.yaml:34: models[3].runtime: ")


def test_a_git_base_reads_included_files_at_its_revision(
    stacks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = stacks.parent

    def git(*argv: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *argv],
            cwd=root,
            check=True,
            capture_output=True,
            timeout=60,
        )

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "base")
    # The head changes the shared file: the ranker moves to v4.
    (stacks / "shared" / "base.yaml").write_text(
        BASE.replace("ranker/v3", "ranker/v4").replace("version: v3", "version: v4")
    )
    assert main(["preview", str(stacks / "prod.yaml"), "--base", "HEAD", "--output", "json"]) == 0
    report: dict[str, Any] = yaml.safe_load(capsys.readouterr().out)
    (isvc,) = [o for o in report["objects"] if o["kind"] == "InferenceService" and o["name"] == "ranker"]
    changes = {(c["field"], c["old"], c["new"]) for c in isvc["changes"]}
    assert ("spec.predictor.model.storageUri", "s3://models/ranker/v3", "s3://models/ranker/v4") in changes


def test_a_catalog_in_json_model_files_names_each_files_own_line(tmp_path: Path) -> None:
    """A generated catalog split over JSON model files: a problem names its file, its index there, its line."""

    def models(start: int, count: int) -> list[dict[str, Any]]:
        return [
            {
                "name": f"m{i:05d}",
                "tenant": "payments",
                "runtime": "sklearn",
                "format": {"name": "sklearn", "version": "1"},
                "storage": {"uri": f"s3://models/m{i:05d}/v1"},
                "version": "v1",
            }
            for i in range(start, start + count)
        ]

    first, second = models(0, 300), models(300, 300)
    second[250]["scaling"] = {"minReplicas": -1}
    write(
        tmp_path,
        {
            "stacks/shared/base.yaml": BASE,
            "stacks/models/a.json": json.dumps({"models": first}, indent=1),
            "stacks/models/b.json": json.dumps({"models": second}, indent=1),
            "stacks/big.yaml": "include: [shared/base.yaml, models/a.json, models/b.json]\n"
            "stack: {name: big, tier: staging}\n",
        },
    )
    text = (tmp_path / "stacks/models/b.json").read_text().splitlines()
    line = next(n for n, t in enumerate(text, 1) if '"minReplicas": -1' in t)
    assert problems(tmp_path / "stacks" / "big.yaml") == [
        f"{tmp_path}/stacks/models/b.json:{line}: models[250].scaling.minReplicas: must be at least 0 (got -1)"
    ]
