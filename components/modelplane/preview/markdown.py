"""The preview as Markdown for a pull-request comment.

The template only lays out what Python computed: a one-line summary, destructive changes first
and loud, the model rollouts with each one's plan as a Mermaid diagram, the capacity delta (and
its chart), warnings, and the per-object field diff folded in ``<details>``. A hidden marker names the stack, so CI can find and update its own comment.
Everything a stack or the command line controls reaches the template through
``modelplane.untrusted`` (code spans, fenced blocks, escaped prose), never raw.
GitHub caps a comment at 65,536 characters; past a budget the field diff is cut, never the
summary, the destructive list or the rollouts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from modelplane.preview.diagrams import diagrams
from modelplane.untrusted import code_block, code_span, plain

MAX_VALUE = 80
"""Longest value shown in a table cell before it is cut."""

MAX_ROWS_PER_OBJECT = 40
MAX_LIST = 50
"""Most destructive changes, rollouts, gate queries or warnings listed; the rest are counted."""
MAX_COMMENT = 60_000
"""Characters the comment may reach (GitHub's limit is 65,536)."""

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

SIGNS = {"added": "+", "changed": "~", "removed": "-", "replaced": "-/+"}


def marker(stack: str) -> str:
    """The hidden HTML comment that identifies a stack's preview comment."""
    return f"<!-- modelplane-preview stack={stack} -->"


def cell(value: Any) -> str:
    """A value for a Markdown table cell: compact JSON, cut to ``MAX_VALUE``, as inline code."""
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_VALUE:
        text = text[: MAX_VALUE - 1] + "…"
    return code_span(text, table=True)


def _traffic(r: dict[str, Any]) -> str:
    if r["decision"] == "removal":
        return "stops serving"
    if r["strategy"] in (None, "direct"):
        return "100% (at once)" if r["strategy"] == "direct" else "unchanged"
    if r["state"] == "rolled-back":
        return f"0%: rolled back, {r['from']} serves all"
    paused = " (paused)" if r["state"] == "paused" else ""
    if r["phase"] == "shadow":
        return f"0%, {r['mirrorPercent']}% of requests mirrored (shadow){paused}"
    if r["phase"] == "loading":
        return f"0%: loads beside {r['from']}, switches on advance{paused}"
    if r["phase"] == "ab":
        return f"{r['trafficPercent']}% (fixed A/B split){paused}"
    plan = " → ".join(str(s) for s in r["steps"])
    return f"{r['trafficPercent']}% (step {r['step']} of {len(r['steps'])}: {plan}, every {r['stepInterval']}){paused}"


def _gates(r: dict[str, Any]) -> str:
    if not r["gates"]:
        return "—"
    names = ", ".join(
        f"{g['name']} {g['threshold']}" + ("" if g["measurable"] else " ⚠ unmeasurable") for g in r["gates"]
    )
    return names + (" (dry run)" if r["dryRun"] else "")


def _versions(r: dict[str, Any]) -> str:
    return f"{r['from'] or '—'} → {r['to'] or '—'}"


def _strategy(r: dict[str, Any]) -> str:
    if r["strategy"] is None:
        return "—"
    return str(r["strategy"]) + (f" ({r['phase']})" if r["phase"] and r["phase"] != r["strategy"] else "")


def _change(r: dict[str, Any]) -> str:
    text: str = r["description"]
    if r["fields"]:
        text += f" ({', '.join(r['fields'])})"
    return text


def _title(o: dict[str, Any]) -> str:
    where = f"{o['namespace']}/" if o["namespace"] else ""
    return f"{o['kind']} {where}{o['name']}"


def _leaves(field: str, value: Any) -> list[tuple[str, Any]]:
    """A subtree as (field, leaf value) pairs, so an added block reads field by field."""
    if isinstance(value, dict) and value:
        return [pair for k in sorted(value) for pair in _leaves(_join(field, k), value[k])]
    if isinstance(value, list) and value:
        return [pair for i, v in enumerate(value) for pair in _leaves(f"{field}[{i}]", v)]
    return [(field, value)]


def _join(field: str, key: str) -> str:
    if key.replace("_", "").replace("-", "").isalnum():
        return f"{field}.{key}" if field else key
    return f'{field}["{key}"]'


def _rows(change: dict[str, Any]) -> list[dict[str, str]]:
    if change["op"] == "add":
        return [
            {"field": f, "old": cell(None), "new": cell(v)}
            for f, v in _leaves(change["field"], change["new"])
        ]
    if change["op"] == "remove":
        return [
            {"field": f, "old": cell(v), "new": cell(None)}
            for f, v in _leaves(change["field"], change["old"])
        ]
    return [{"field": change["field"], "old": cell(change["old"]), "new": cell(change["new"])}]


def _shown_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows with their field paths as inline code (the values already are)."""
    return [{**row, "field": code_span(row["field"], table=True)} for row in rows]


def _objects(objects: list[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], str]:
    shown: list[dict[str, Any]] = []
    used = 0
    for i, o in enumerate(objects):
        all_rows = [row for c in o["changes"] for row in _rows(c)]
        rows = _shown_rows(all_rows[:MAX_ROWS_PER_OBJECT])
        if len(all_rows) > MAX_ROWS_PER_OBJECT:
            rows.append({"field": "…", "old": f"{len(all_rows) - MAX_ROWS_PER_OBJECT} more", "new": ""})
        reasons = f": {plain('; '.join(o['reasons']))}" if o["reasons"] else ""
        entry = {
            "sign": SIGNS[o["action"]],
            "title": plain(_title(o)),
            "action": o["action"],
            "reasons": reasons,
            "rows": rows,
        }
        size = 80 + sum(len(r["field"]) + len(r["old"]) + len(r["new"]) + 12 for r in rows)
        if used + size > budget:
            return (
                shown,
                f"{len(objects) - i} more objects not shown; run `modelplane preview --format json` for all",
            )
        used += size
        shown.append(entry)
    return shown, ""


def _capped(items: list[Any], what: str) -> tuple[list[Any], str]:
    """At most ``MAX_LIST`` items, and a note of how many more there are."""
    if len(items) <= MAX_LIST:
        return items, ""
    return items[
        :MAX_LIST
    ], f"{len(items) - MAX_LIST} more {what}; run `modelplane preview --format json` for all"


def _nodes(plan: dict[str, Any] | None) -> list[dict[str, str]]:
    """Rows of nodes per GPU pool from the capacity planner's summary, base → head."""
    if not plan:
        return []
    base = {p.get("name"): p for p in (plan.get("base") or {}).get("pools", [])}
    rows = []
    for pool in plan["head"].get("pools", []):
        before = base.get(pool.get("name"), {})
        row = {"pool": str(pool.get("name")), "limit": str(pool.get("nodeLimit", "—"))}
        for level in ("min", "max"):
            after_n = (pool.get(level) or {}).get("nodes")
            before_n = (before.get(level) or {}).get("nodes")
            row[level] = f"{before_n} → {after_n}" if before_n not in (None, after_n) else str(after_n)
        rows.append(row)
    return rows


def to_markdown(preview: dict[str, Any]) -> str:
    """The preview as a pull-request comment."""
    destructive = [
        f"**{o['action']}** {code_span(_title(o))}"
        + (f": {plain('; '.join(o['reasons']))}" if o["reasons"] else "")
        for o in preview["objects"]
        if o["destructive"]
    ]
    stopping = [
        f"{code_span(r['namespace'] + '/' + r['model'])} ({plain(r['decision'])})"
        for r in preview["rollouts"]
        if r["destructive"]
    ]
    rollouts = [
        {
            "model": code_span(f"{r['namespace']}/{r['model']}", table=True),
            "change": plain(_change(r)),
            "versions": plain(_versions(r)),
            "strategy": plain(_strategy(r)),
            "traffic": plain(_traffic(r)),
            "gates": plain(_gates(r)),
        }
        for r in preview["rollouts"]
    ]
    queries = [
        {
            "model": plain(f"{r['namespace']}/{r['model']}"),
            "name": code_span(g["name"]),
            "threshold": plain(g["threshold"]),
            "query": code_block(g["query"], "promql", indent="  "),
        }
        for r in preview["rollouts"]
        for g in r["gates"]
        if g["measurable"]
    ]
    capacity = []
    for pool in preview["capacity"]["pools"] + [{"pool": "**total**", **preview["capacity"]["total"]}]:
        row = {"pool": pool["pool"] if pool["pool"] == "**total**" else plain(pool["pool"])}
        for count in ("podsMin", "podsMax", "gpusMin", "gpusMax"):
            before, after, delta = pool["base"][count], pool["head"][count], pool["delta"][count]
            row[count] = f"{before} → {after} ({delta:+d})" if delta else str(after)
        capacity.append(row)
    destructive, more_destructive = _capped(destructive, "destructive changes")
    stopping, more_stopping = _capped(stopping, "models")
    rollouts, more_rollouts = _capped(rollouts, "model changes")
    queries, more_queries = _capped(queries, "gate queries")
    warnings, more_warnings = _capped([plain(w) for w in preview["warnings"]], "warnings")
    graphs, more_graphs = _capped(
        [
            {
                "graph": code_span(f"{g['namespace']}/{g['graph']}", table=True),
                "step": plain(f"{g['node']} / {g['step']}"),
                "model": f"{code_span(g['model'], table=True)} {plain(g['from'] + ' → ' + g['to'])}",
                "traffic": plain(
                    f"{g['mirrorPercent']}% mirrored"
                    if g["phase"] == "shadow"
                    else f"{g['trafficPercent']}% to {g['to']} ({g['strategy']})"
                ),
            }
            for g in preview.get("graphs", [])
        ],
        "graph steps",
    )
    nodes = _nodes(preview["capacity"].get("plan"))
    counts = preview["summary"]["objects"]
    object_counts = ", ".join(f"{n} {action}" for action, n in counts.items() if n) or "none"
    context = {
        "marker": marker(preview["stack"]),
        "stack": code_span(preview["stack"]),
        "summary": plain(preview["summary"]["text"]),
        "destructive": destructive,
        "destructive_total": preview["summary"]["destructive"],
        "more_destructive": more_destructive,
        "stopping": stopping,
        "more_stopping": more_stopping,
        "rollouts": rollouts,
        "more_rollouts": more_rollouts,
        "graphs": graphs,
        "more_graphs": more_graphs,
        "queries": queries,
        "more_queries": more_queries,
        "capacity": capacity,
        "nodes": nodes,
        "warnings": warnings,
        "more_warnings": more_warnings,
        "object_counts": object_counts,
        **diagrams(preview),
        "base": code_span(preview["base"]["source"]),
        "head": code_span(preview["head"]["source"]),
    }
    template = _ENV.get_template("preview.md.j2")
    frame = template.render(**context, objects=[], hidden="")
    objects, hidden = _objects(preview["objects"], MAX_COMMENT - len(frame))
    return template.render(**context, objects=objects, hidden=hidden)
