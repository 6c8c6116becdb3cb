"""The pull-request workflow runs the preview on stack changes and keeps one comment."""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps() -> dict[str, dict[str, Any]]:
    return {s.get("name", s.get("uses", "")): s for s in workflow()["jobs"]["modelplane"]["steps"]}


def test_runs_on_pull_requests_that_touch_stacks() -> None:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as `on`.
    assert workflow()[True] == {"pull_request": {"paths": ["stacks/**"]}}


def test_previews_against_the_base_revision_and_fails_on_destructive() -> None:
    script = steps()["Preview every changed stack"]["run"]
    assert 'modelplane preview "$stack" --base "$BASE_SHA" --fail-on destructive' in script


def test_the_comment_is_found_by_the_marker_the_preview_step_writes() -> None:
    marker = "<!-- modelplane-preview-comment -->"
    assert f'echo "{marker}"' in steps()["Preview every changed stack"]["run"]
    assert (
        f'const marker = "{marker}";'
        in steps()["Create or update the pull-request comment"]["with"]["script"]
    )


def test_can_write_pull_request_comments_only() -> None:
    assert workflow()["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_both_jobs_preview_the_stacks_modelplane_says_changed() -> None:
    # A pathspec like 'stacks/*.yaml' also matches included fragments and misses a stack whose
    # only change is in a file it includes (tests/test_changed.py shows both).
    script = steps()["Preview every changed stack"]["run"]
    pulumi = "\n".join(s.get("run", "") for s in workflow()["jobs"]["pulumi"]["steps"])
    for run in (script, pulumi):
        assert 'modelplane changed stacks --base "$BASE_SHA"' in run
        assert "git diff" not in run
