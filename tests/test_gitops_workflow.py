"""The shipped GitOps workflow, run for real: its very steps drive temporary Git repositories.

A bare repository stands for the remote; a developer's clone merges a version bump; each CI run
is a fresh clone (as ``actions/checkout`` makes one) in which the workflow's own ``run:`` steps
are executed by bash, with the environment the workflow declares. A real Prometheus answers the
gates. The rollout goes from the merged bump to promoted with one commit per step, each holding
both the lock and the render, and ``render --check`` passes at every commit. Two runs that start
at once never both commit.

The workflow file is also validated against GitHub's workflow schema (SchemaStore's, vendored
by ``check-jsonschema``), offline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelplane.cli import make_parser
from modelplane.rollout import state
from modelplane.rollout.lock import lock_from_bytes
from tests.conftest import ROOT
from tests.prometheus import series, serving_openmetrics
from tests.rollout.builders import T0, T1, T2, T3, T4, bump, stack_data

WORKFLOWS = ROOT / ".github" / "workflows"
GITOPS = WORKFLOWS / "gitops.yml"
BIN = Path(sys.executable).parent
STACK_FILE = "stacks/test.yaml"
LOCK_FILE = "stacks/test.lock.yaml"
RENDER_DIR = "deploy/test"


def load_workflow(path: Path) -> dict[str, Any]:
    """A workflow as GitHub reads it: PyYAML reads the key `on` as True (YAML 1.1), GitHub as `on`."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow() -> dict[str, Any]:
    return load_workflow(GITOPS)


# --- the file itself -----------------------------------------------------------------------


def _workflow_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "github-workflows.json").read_text(encoding="utf-8"))
    return schema


def _schema_errors(data: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(_workflow_schema())
    return sorted(f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data))


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_workflows_match_githubs_schema(path: Path) -> None:
    assert _schema_errors(load_workflow(path)) == []


def test_the_schema_check_catches_a_broken_workflow() -> None:
    broken = workflow()
    broken["jobs"]["reconcile"]["steps"][0]["with"] = "ref"  # `with` must be a mapping
    del broken["jobs"]["reconcile"]["runs-on"]
    assert _schema_errors(broken) != []


def test_triggers_concurrency_and_permissions() -> None:
    data = workflow()
    on = data["on"]
    assert on["push"] == {"branches": ["main"], "paths": ["stacks/**"]}
    assert on["schedule"] == [{"cron": "*/10 * * * *"}]
    assert data["concurrency"] == {"group": "modelplane-gitops", "cancel-in-progress": False}
    assert data["permissions"] == {"contents": "write"}


def test_run_steps_name_real_commands() -> None:
    parser = make_parser()
    found = []
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                match = re.search(r"\bmodelplane ([a-z]+(?: [a-z]+)?)", line)
                if match and "modelplane.dev" not in line:
                    found.append(match.group(1))
    assert found == ["validate", "rollout reconcile"]
    # Each command line the workflow runs is accepted by the parser.
    parser.parse_args(["validate", "--quiet", "stacks/x.yaml"])
    parser.parse_args(["rollout", "reconcile", "stacks/", "--advance", "--commit", "--push", "origin"])


# --- the loop, run ---------------------------------------------------------------------------


def git(cwd: Path, *argv: str) -> str:
    done = subprocess.run(
        ["git", *argv], cwd=cwd, capture_output=True, text=True, check=True, timeout=60, env=_git_env()
    )
    return done.stdout


def _git_env() -> dict[str, str]:
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.invalid",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }


EXPRESSIONS = {
    "${{ github.event_name }}": None,  # the event of the run
    "${{ secrets.MODELPLANE_PROMETHEUS_TOKEN }}": "",  # unset secrets are empty strings
    "${{ secrets.MODELPLANE_NOTIFY_URL }}": "",
}


def _step_env(step: dict[str, Any], event: str) -> dict[str, str]:
    env = {}
    for name, value in (step.get("env") or {}).items():
        assert value in EXPRESSIONS, f"the test does not know the expression {value!r} of {name}"
        resolved = EXPRESSIONS[value]
        env[name] = event if resolved is None else resolved
    return env


def run_workflow(clone: Path, *, event: str, now: str, log: list[str] | None = None) -> int:
    """Run the reconcile job's steps in ``clone`` as GitHub would (checkout and setup done, install skipped)."""
    job = workflow()["jobs"]["reconcile"]
    code = 0
    for step in job["steps"]:
        if "run" not in step or step["name"] == "Install modelplane":
            continue
        script = clone / ".step.sh"
        script.write_text(step["run"])
        env = {
            **_git_env(),
            **_step_env(step, event),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "MODELPLANE_NOW": now,
            "GITHUB_OUTPUT": str(clone.parent / f"{clone.name}.outputs"),
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-e", str(script)],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        script.unlink()
        code = done.returncode
        if log is not None:
            log.append(done.stdout + done.stderr)
        if code not in (0, 3):
            raise AssertionError(f"step {step['name']!r} exited {code}:\n{done.stdout}\n{done.stderr}")
    return code


def checkout(origin: Path, where: Path) -> Path:
    """A fresh clone of the remote's main branch: what actions/checkout gives a run."""
    subprocess.run(
        ["git", "clone", "--quiet", "--branch", "main", str(origin), str(where)],
        check=True,
        capture_output=True,
        timeout=60,
        env=_git_env(),
    )
    return where


def knative_metrics() -> str:
    """A healthy Knative candidate v2 of `kn`, from T1 to T4."""
    start, end = (int(state.parse_time(t).timestamp()) for t in (T1, T4))
    labels = 'namespace="team",configuration_name="kn-predictor",modelplane_dev_version="v2"'
    lines = ["# TYPE revision_app_request_count unknown"]
    lines += series("revision_app_request_count", f'{labels},response_code_class="2xx"', 10.0, start, end)
    lines += series("revision_app_request_count", f'{labels},response_code_class="5xx"', 0.001, start, end)
    lines.append("# TYPE revision_app_request_latencies_bucket unknown")
    for le, rate in {"50": 9.0, "100": 9.995, "250": 10.01, "+Inf": 10.01}.items():
        lines += series("revision_app_request_latencies_bucket", f'{labels},le="{le}"', rate, start, end)
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serving_openmetrics(tmp_path_factory.mktemp("prometheus"), knative_metrics()) as url:
        yield url


def _stack(prometheus: str) -> dict[str, Any]:
    policy = {
        "strategy": "canary",
        "steps": [10, 50, 100],
        "stepInterval": "10m",
        "prometheus": prometheus,
        "gates": [
            {"name": "error-rate", "metric": "error-rate", "max": 0.01},
            {"name": "latency-p99", "metric": "latency-p99", "max": 0.5},
        ],
    }
    return stack_data("knative", rollout=policy)


@pytest.fixture
def remote(tmp_path: Path, prometheus: str) -> Path:
    """A remote whose main holds the stack with kn v1, as the first merge left it (nothing deployed yet)."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(origin)], check=True, timeout=60)
    dev = tmp_path / "dev"
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(dev)], check=True, timeout=60)
    (dev / "stacks").mkdir()
    (dev / STACK_FILE).write_text(yaml.safe_dump(_stack(prometheus), sort_keys=False))
    git(dev, "add", "-A")
    git(dev, "commit", "--quiet", "-m", "the test stack")
    git(dev, "remote", "add", "origin", str(origin))
    git(dev, "push", "--quiet", "origin", "main")
    return origin


def merge_bump(origin: Path, tmp_path: Path, prometheus: str) -> None:
    """A developer merges kn v1 -> v2."""
    dev = checkout(origin, tmp_path / "dev-bump")
    (dev / STACK_FILE).write_text(yaml.safe_dump(bump(_stack(prometheus), "kn", "v2"), sort_keys=False))
    git(dev, "commit", "--quiet", "-am", "kn v2")
    git(dev, "push", "--quiet", "origin", "main")


def commits(origin: Path) -> list[str]:
    return git(origin, "rev-list", "--reverse", "main").split()


def lock_at(origin: Path, sha: str) -> Any:
    return lock_from_bytes(git(origin, "show", f"{sha}:{LOCK_FILE}").encode(), LOCK_FILE)


def render_check_at(origin: Path, sha: str, where: Path) -> subprocess.CompletedProcess[str]:
    clone = checkout(origin, where)
    git(clone, "checkout", "--quiet", sha)
    return subprocess.run(
        [str(BIN / "modelplane"), "render", STACK_FILE, "--check"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_from_a_merged_bump_to_promoted(remote: Path, tmp_path: Path, prometheus: str) -> None:
    runs = iter(range(100))

    def ci(event: str, now: str) -> int:
        return run_workflow(checkout(remote, tmp_path / f"ci-{next(runs)}"), event=event, now=now)

    assert ci("push", T0) == 0  # the first deploy: kn v1, lock and render
    merge_bump(remote, tmp_path, prometheus)
    bumped = commits(remote)[-1]
    assert ci("push", T1) == 0  # the merged bump: the canary starts at 10%
    assert ci("schedule", "2026-03-01T10:25:00Z") == 0  # too early: nothing changes
    assert ci("schedule", T2) == 0  # gates pass: 50%
    assert ci("schedule", T3) == 0  # gates pass: promoted
    assert ci("schedule", T4) == 0  # steady: nothing to commit
    history = commits(remote)
    steps = history[history.index(bumped) + 1 :]
    shares = []
    for sha in steps:
        changed = git(remote, "show", "--name-only", "--format=", sha).split()
        assert LOCK_FILE in changed
        assert any(path.startswith(f"{RENDER_DIR}/") for path in changed), changed
        assert set(changed) <= {LOCK_FILE} | {p for p in changed if p.startswith(f"{RENDER_DIR}/")}
        record = lock_at(remote, sha).models["team/kn"]
        shares.append((record.stable.version, state.candidate_share(record)))
    assert shares == [("v1", 10), ("v1", 50), ("v2", 0)]
    promoted = lock_at(remote, steps[-1]).models["team/kn"]
    assert (promoted.rollout, [e.event for e in promoted.history]) == (
        None,
        ["deployed", "started", "advanced", "promoted"],
    )
    assert promoted.history[-2].detail == (
        "error-rate = 9.999e-05 [<= 0.01]: pass; latency-p99 = 0.0957236 [<= 0.5]: pass"
    )
    for i, sha in enumerate(history[1:]):
        if sha == bumped:
            continue  # the merge itself: the loop has not run yet
        check = render_check_at(remote, sha, tmp_path / f"check-{i}")
        assert check.returncode == 0, (sha, check.stderr)
        assert check.stdout.startswith(f"{RENDER_DIR}/: up to date (")


def test_render_check_fails_on_the_merge_before_the_loop_runs(
    remote: Path, tmp_path: Path, prometheus: str
) -> None:
    run_workflow(checkout(remote, tmp_path / "ci-0"), event="push", now=T0)
    merge_bump(remote, tmp_path, prometheus)
    check = render_check_at(remote, commits(remote)[-1], tmp_path / "check")
    assert check.returncode == 3
    assert f"{RENDER_DIR}/platform/team--inferenceservice--kn.yaml: differs" in check.stderr


def test_two_runs_at_once_commit_one_step(remote: Path, tmp_path: Path, prometheus: str) -> None:
    run_workflow(checkout(remote, tmp_path / "ci-0"), event="push", now=T0)
    merge_bump(remote, tmp_path, prometheus)
    run_workflow(checkout(remote, tmp_path / "ci-1"), event="push", now=T1)
    before = commits(remote)
    clones = [checkout(remote, tmp_path / f"ci-race-{i}") for i in range(2)]
    codes: list[int] = []
    log: list[str] = []
    threads = [
        threading.Thread(target=lambda c=c: codes.append(run_workflow(c, event="schedule", now=T2, log=log)))
        for c in clones
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [0, 0]
    after = commits(remote)
    # One step, one commit on the remote. The run that pushed second either lost the race and found
    # the step taken when it started again, or (same second, same parent) made the very same commit.
    pushed = {m.group(1) for out in log for m in re.finditer(r"committed ([0-9a-f]{12}): .*\npushed", out)}
    assert pushed == {after[-1][:12]}
    for out in log:
        if "moved on (another run committed first)" in out:
            assert "nothing to commit" in out
    after = commits(remote)
    assert len(after) == len(before) + 1
    assert state.candidate_share(lock_at(remote, after[-1]).models["team/kn"]) == 50


def test_two_runs_in_one_clone_commit_one_step(remote: Path, tmp_path: Path, prometheus: str) -> None:
    run_workflow(checkout(remote, tmp_path / "ci-0"), event="push", now=T0)
    merge_bump(remote, tmp_path, prometheus)
    clone = checkout(remote, tmp_path / "ci-1")
    run_workflow(clone, event="push", now=T1)
    git(clone, "pull", "--quiet", "--ff-only")
    before = commits(remote)
    argv = [
        str(BIN / "modelplane"),
        "rollout",
        "reconcile",
        "stacks/",
        "--advance",
        "--commit",
        "--push",
        "origin",
    ]
    env = {**_git_env(), "MODELPLANE_NOW": T2}
    processes = [
        subprocess.Popen(argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert len(commits(remote)) == len(before) + 1
    assert sorted("nothing to commit" in out for out, _ in outputs) == [False, True]
