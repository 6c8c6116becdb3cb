"""The preview as a pull-request comment."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest

from modelplane.preview import markdown
from modelplane.preview.markdown import cell, marker, to_markdown
from tests.preview.test_preview import BASE, preview
from tests.rollout.builders import bump, edit


def sections(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("### ", "#### ", "> [!", "<details>"))]


def test_comment_starts_with_its_hidden_marker() -> None:
    assert to_markdown(preview(BASE)).splitlines()[0] == "<!-- modelplane-preview stack=test -->"
    assert marker("prod") == "<!-- modelplane-preview stack=prod -->"


def test_unchanged_stack() -> None:
    text = to_markdown(preview(BASE))
    assert "No model changes." in text
    assert sections(text) == [
        "### modelplane preview: `test`",
        "#### Capacity (pods and GPUs at min / max replicas)",
    ]


def test_destructive_changes_come_first() -> None:
    text = to_markdown(preview({**BASE, "models": BASE["models"][:1]}))
    assert sections(text)[:2] == ["### modelplane preview: `test`", "> [!CAUTION]"]
    assert (
        "> - **removed** `InferenceService team/kn`: deleting an InferenceService stops serving the model"
        in text
    )


def test_rollout_row() -> None:
    text = to_markdown(preview(bump(BASE, "std", "v2")))
    assert (
        "| `team/std` | starts a rollout (version, storageUri) | v1 → v2 | canary | "
        "5% (step 1 of 4: 5 → 25 → 50 → 100, every 15m) | "
        "error-rate &lt;= 0.01 ⚠ unmeasurable, latency-p99 &lt;= 0.5 |"
    ) in text


def test_gate_queries_are_listed() -> None:
    text = to_markdown(preview(bump(BASE, "kn", "v2")))
    assert "```promql" in text
    assert 'revision_app_request_count{namespace="team",configuration_name="kn-predictor"' in text


def test_field_diff_is_folded_and_expanded_leaf_by_leaf() -> None:
    text = to_markdown(preview(bump(BASE, "std", "v2")))
    assert "<details><summary>Object changes: 1 changed</summary>" in text
    assert "| `spec.canary[0].trafficPercent` | — | `5` |" in text
    assert "| `spec.canary[0].predictor.name` | — | `v2` |" in text


def test_capacity_row_shows_base_head_and_delta() -> None:
    text = to_markdown(preview(edit(BASE, "std", scaling={"minReplicas": 4, "maxReplicas": 8})))
    assert "| (no GPU) | 4 → 6 (+2) | 12 → 14 (+2) | 0 | 0 |" in text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        ("a|b", "`a\\|b`"),
        ({"b": 1, "a": [1]}, '`{"a":[1],"b":1}`'),
        ("x" * 100, "`" + "x" * 79 + "…`"),
    ],
)
def test_cell(value: Any, shown: str) -> None:
    assert cell(value) == shown


def test_long_diffs_are_cut_to_fit_a_comment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(markdown, "MAX_COMMENT", 2000)
    text = to_markdown(preview(bump(bump(BASE, "std", "v2"), "mesh", "v2")))
    assert "more objects not shown; run `modelplane preview --format json` for all" in text


def test_templates_refuse_undefined_values() -> None:
    with pytest.raises(jinja2.UndefinedError):
        markdown._ENV.get_template("preview.md.j2").render()


def test_long_lists_are_capped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(markdown, "MAX_LIST", 1)
    text = to_markdown(preview(bump(bump(BASE, "std", "v2"), "kn", "v2")))
    assert "_1 more model changes; run `modelplane preview --format json` for all_" in text
    assert text.count("| `team/") == 1


def test_destructive_count_is_the_total_even_when_the_list_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(markdown, "MAX_LIST", 1)
    text = to_markdown(preview({**BASE, "models": BASE["models"][:1]}))
    # Two InferenceServices, the mesh runtime and the mesh's ServiceMonitor go with the two models,
    # and with the last Knative model Knative itself: its operator's release and source, its
    # KnativeServing and its namespace.
    assert "> **8 destructive changes**: merging deletes or recreates what serves now." in text
    assert "> - _7 more destructive changes; run `modelplane preview --format json` for all_" in text
