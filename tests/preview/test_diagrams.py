"""Mermaid diagrams in the pull-request comment: parsed by the real Mermaid parser, escaped, deterministic, capped."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from modelplane.preview import diagrams, markdown
from modelplane.preview.markdown import to_markdown
from tests.mermaid import parse
from tests.preview.test_preview import BASE, preview
from tests.rollout.builders import bump, edit

HEAD = edit(bump(bump(BASE, "kn", "v2"), "mesh", "v2"), "std", scaling={"minReplicas": 4, "maxReplicas": 10})
"""A Knative canary, a ModelMesh candidate loading beside its stable version, and more pods."""


def _blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)\n```", text, flags=re.S)


def test_the_comment_draws_each_rollout_and_the_capacity_delta() -> None:
    blocks = _blocks(to_markdown(preview(HEAD)))
    assert [b.splitlines()[0] for b in blocks] == ["flowchart LR", "flowchart LR", "xychart-beta"]


def test_every_diagram_parses_with_mermaid() -> None:
    blocks = _blocks(to_markdown(preview(HEAD)))
    assert [a.get("type") for a in parse(blocks)] == ["flowchart-v2", "flowchart-v2", "xychart"]


def test_a_canary_plan_shows_each_step_its_time_share_and_gates() -> None:
    (kn,) = [r for r in preview(HEAD)["rollouts"] if r["model"] == "kn"]
    gates = "error-rate #60;= 0.01, latency-p99 #60;= 0.5"
    assert diagrams.rollout_plan(kn) == "\n".join(
        [
            "flowchart LR",
            '  s0["merge: v2 5%, v1 95%"]:::current',
            f'  s0 -- "{gates}" --> s1["+15m: v2 25%, v1 75%"]',
            f'  s1 -- "{gates}" --> s2["+30m: v2 50%, v1 50%"]',
            f'  s2 -- "{gates}" --> s3["+45m: v2 100% (promoted)"]',
            "  classDef current stroke-width:3px",
        ]
    )


def test_an_in_place_change_has_no_plan_to_draw() -> None:
    (std,) = [r for r in preview(HEAD)["rollouts"] if r["model"] == "std"]
    assert diagrams.rollout_plan(std) is None


def test_no_capacity_change_draws_no_chart() -> None:
    assert diagrams.capacity_chart(preview(BASE)["capacity"]) is None


HOSTILE = [
    'v2"] --> x["owned',
    "<img src=x onerror=alert(1)>",
    "%%{init: {'theme': 'dark'}}%%",
    "a`b|c;d\nclick s0 call alert()",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_labels_keep_only_safe_characters(text: str) -> None:
    escaped = diagrams.label(text)
    assert re.fullmatch(r"(?:[A-Za-z0-9 .,:/%=+()_\-…]|#\d+;)*", escaped), escaped


def _with_hostile_versions(text: str) -> dict[str, Any]:
    r = copy.deepcopy(next(r for r in preview(HEAD)["rollouts"] if r["model"] == "kn"))
    r["to"], r["gates"][0]["name"] = text, text
    return r


def test_hostile_text_stays_inside_its_label() -> None:
    plans = [diagrams.rollout_plan(_with_hostile_versions(t)) or "" for t in HOSTILE]
    answers = parse(plans)
    assert all(a["ok"] for a in answers), answers
    # Six lines and three edges, whatever the text: no label closed early, no statement added.
    assert [(len(p.splitlines()), p.count(" --> ")) for p in plans] == [(6, 3)] * len(HOSTILE)


def test_without_escaping_the_same_text_breaks_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # The check above is only worth something if unescaped text would break the diagram.
    monkeypatch.setattr(diagrams, "label", str)
    plans = [diagrams.rollout_plan(_with_hostile_versions(t)) or "" for t in HOSTILE]
    broken = [
        (len(p.splitlines()), p.count(" --> ")) != (6, 3) or not a["ok"]
        for p, a in zip(plans, parse(plans), strict=True)
    ]
    assert broken == [True, False, False, True]


def test_diagrams_are_the_same_every_time() -> None:
    assert to_markdown(preview(HEAD)) == to_markdown(preview(HEAD))


def test_many_rollouts_draw_a_capped_number_of_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagrams, "MAX_DIAGRAMS", 1)
    text = to_markdown(preview(HEAD))
    assert len([b for b in _blocks(text) if b.startswith("flowchart")]) == 1
    assert "_1 more rollout plans in the table above_" in text
    assert len(text) <= markdown.MAX_COMMENT
