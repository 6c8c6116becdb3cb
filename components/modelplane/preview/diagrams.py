"""Mermaid diagrams for the pull-request comment: each rollout's plan, and the capacity delta per pool.

GitHub renders fenced ``mermaid`` blocks in comments, so a reviewer sees how traffic moves step
by step and which gates stand between the steps, and how each pool's GPUs change, where the
tables only list them; the tables stay for terminals and for what a diagram leaves out. The
diagrams are plain text computed from the preview's JSON, so the same preview gives the same
bytes. Every string that comes from a stack file (names, versions, gate names and thresholds)
goes through ``label``, which cuts it to ``MAX_LABEL`` characters and escapes it with
``modelplane.untrusted.mermaid_text`` (the project's one Mermaid escaper): a small set of safe
characters kept, every other one as Mermaid's ``#<code>;`` entity, so no user text can close a
label, start a directive or inject HTML. ``tests/preview/test_diagrams.py`` parses the
diagrams with the real Mermaid parser.
"""

from __future__ import annotations

from typing import Any

from modelplane.types import format_duration, parse_duration
from modelplane.untrusted import mermaid_text

MAX_DIAGRAMS = 10
"""Rollouts drawn; the rest are in the table only (each diagram is a few hundred characters)."""

MAX_LABEL = 60
"""Characters of one label before it is cut."""


def label(value: object) -> str:
    """Text for a Mermaid label or title: safe characters kept, every other one as ``#<code>;``."""
    text = str(value)
    if len(text) > MAX_LABEL:
        text = text[: MAX_LABEL - 1] + "…"
    return mermaid_text(text)


def _gates(r: dict[str, Any]) -> str:
    if not r["gates"]:
        return "no gates"
    names = ", ".join(f"{g['name']} {g['threshold']}" for g in r["gates"])
    return names + (" (dry run)" if r["dryRun"] else "")


def rollout_plan(r: dict[str, Any]) -> str | None:
    """A rollout's steps left to right: when, what share the candidate has, the gates between steps.

    Only staged rollouts (canary steps, or a ModelMesh candidate loading beside the stable one)
    have a plan to draw; the step the merge leaves the rollout at is highlighted.
    """
    new, old = label(r["to"] or "new"), label(r["from"] or "old")
    gates = label(_gates(r))
    lines = ["flowchart LR"]
    if r["phase"] == "loading":
        lines += [
            f'  s0["merge: {new} loads beside {old}, 0%"]:::current',
            f'  s0 -- "loaded, then {gates}" --> s1["{new} 100%"]',
        ]
    elif r["phase"] == "canary" and r["steps"]:
        interval = parse_duration(r["stepInterval"] or "0s")
        for i, share in enumerate(r["steps"]):
            when = "merge" if i == 0 else f"+{format_duration(interval * i)}"
            rest = f", {old} {100 - share}%" if share < 100 else " (promoted)"
            current = ":::current" if r["step"] == i + 1 else ""
            node = f's{i}["{when}: {new} {share}%{rest}"]{current}'
            lines.append(f"  {node}" if i == 0 else f'  s{i - 1} -- "{gates}" --> {node}')
        if r["steps"][-1] < 100:
            last = len(r["steps"]) - 1
            lines.append(f'  s{last} -- "{gates}" --> s{last + 1}["{new} 100% (promoted)"]')
    else:
        return None
    lines.append("  classDef current stroke-width:3px")
    return "\n".join(lines)


def capacity_chart(capacity: dict[str, Any]) -> str | None:
    """GPUs (or pods, without GPU pools) at max replicas per pool: bars after the merge, a line before.

    None when nothing changes.
    """
    pools = capacity["pools"]
    if not any(any(p["delta"].values()) for p in pools):
        return None
    gpu_pools = [p for p in pools if p["head"]["gpusMax"] or p["base"]["gpusMax"]]
    shown, count, what = (gpu_pools, "gpusMax", "GPUs") if gpu_pools else (pools, "podsMax", "Pods")
    names = ", ".join(f'"{label(p["pool"])}"' for p in shown)
    top = max([p["head"][count] for p in shown] + [p["base"][count] for p in shown] + [1])
    return "\n".join(
        [
            "xychart-beta",
            f'  title "{what} at max replicas per pool: bars after the merge, line before"',
            f"  x-axis [{names}]",
            f'  y-axis "{what}" 0 --> {top}',
            f"  bar [{', '.join(str(p['head'][count]) for p in shown)}]",
            f"  line [{', '.join(str(p['base'][count]) for p in shown)}]",
        ]
    )


def diagrams(preview: dict[str, Any]) -> dict[str, Any]:
    """The rollout plans (model and Mermaid text, at most ``MAX_DIAGRAMS``) and the capacity chart."""
    plans = []
    for r in preview["rollouts"]:
        text = rollout_plan(r)
        if text is not None:
            plans.append({"model": f"{r['namespace']}/{r['model']}", "mermaid": text})
    more = len(plans) - MAX_DIAGRAMS
    return {
        "plans": plans[:MAX_DIAGRAMS],
        "more_plans": f"{more} more rollout plans in the table above" if more > 0 else "",
        "capacity_chart": capacity_chart(preview["capacity"]),
    }
