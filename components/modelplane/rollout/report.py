"""``modelplane rollout status``: where each model stands, as text, JSON, or a watch of its progress.

One function gathers the facts per model (the lock's record, the traffic the rendered objects
carry, the next step, the gates and the last evaluation); the text, the JSON report and the
watch are three views of the same data, so they never disagree.

The watch re-reads the stack and its lock every few seconds. On a terminal it redraws the whole
status; piped, it prints one line per change, so a CI log or ``tail`` shows the rollout's steps
as they happen. It ends by itself once no watched model has a rollout in progress (promoted,
rolled back or never started), or on Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from modelplane import console
from modelplane.build import build
from modelplane.rollout import state
from modelplane.rollout.compile import rendered_mirrors, rendered_traffic
from modelplane.rollout.diff import DECISION_TEXT
from modelplane.rollout.lock import ModelRecord
from modelplane.rollout.session import SETTLED, Session

SCHEMA_VERSION = 1
HISTORY_SHOWN = 3
"""Events the text view shows per model (the JSON report carries the whole history)."""


def _version(record: Any) -> dict[str, str]:
    return {"version": record.version, "name": record.name}


def _rollout(record: ModelRecord, failure_limit: int | None) -> dict[str, Any] | None:
    rollout = record.rollout
    if rollout is None:
        return None
    return {
        "candidate": _version(rollout.candidate),
        "strategy": rollout.strategy,
        "phase": rollout.phase,
        "state": rollout.state,
        "step": rollout.step + 1 if rollout.phase == "canary" else None,
        "steps": list(rollout.steps),
        "startedAt": rollout.started_at,
        "since": rollout.since,
        "failures": rollout.failures or 0,
        "failureLimit": failure_limit,
    }


def status_data(session: Session, keys: list[str]) -> dict[str, Any]:
    """The facts ``rollout status`` shows, per model, as the JSON report carries them."""
    lock = session.current
    rendered = build(session.args, lock=lock)
    stable = {k: r.stable.version for k, r in (rendered.rollouts or {}).items()}
    routed = rendered_traffic(rendered.objects, stable)
    mirrors = rendered_mirrors(rendered.objects)
    models = []
    for key in keys:
        decision = session.decisions[key]
        record = lock.models.get(key)
        wanted = session.desired.get(key)
        policy = wanted.policy if wanted is not None else None
        entry: dict[str, Any] = {
            "model": key,
            "mode": decision.mode,
            "decision": decision.kind,
            "pending": None if decision.kind in SETTLED else DECISION_TEXT[decision.kind],
            "deployed": record is not None,
            "state": state.describe(record) if record is not None else "not deployed yet",
            "stable": _version(record.stable) if record is not None else None,
            "rollout": _rollout(record, policy.failure_limit if policy else None) if record else None,
            "traffic": [{"version": v.version, "percent": p} for v, p in state.traffic(record)]
            if record
            else [],
            "renderedTraffic": [{"version": v, "percent": p} for v, p in routed.get(key, {}).items()],
            "mirrorPercent": mirrors.get(key, 0),
            "next": None,
            "gates": [],
            "history": [
                {
                    "at": e.at,
                    "event": e.event,
                    "version": e.version,
                    "trafficPercent": e.traffic_percent,
                    "detail": e.detail,
                }
                for e in (record.history if record is not None else [])
            ],
        }
        active = (
            record is not None
            and record.rollout is not None
            and decision.kind in SETTLED
            and record.rollout.state != "rolled-back"
            and policy is not None
        )
        if active:
            assert record is not None and policy is not None
            ready = state.readiness(record, key, policy, now=session.now)
            entry["next"] = {"ready": ready.ready, "reason": ready.reason}
            entry["gates"] = [
                {
                    "name": g.name,
                    "metric": g.metric,
                    "threshold": g.threshold,
                    "query": g.query,
                    "unmeasurable": g.unmeasurable or None,
                }
                for g in session.gates(key, record)
            ]
            if policy.probe is not None:
                entry["probe"] = policy.probe.url
        models.append(entry)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "stack": session.stack,
        "file": session.file,
        "lock": str(session.path),
        "lockExists": session.lock is not None,
        "now": session.now,
        "models": models,
    }


BAR_WIDTH = 40
"""Cells of the traffic bar."""
BAR_GLYPHS = ("█", "▒", "░")
"""One glyph per version, in the rendered order (stable first)."""


def traffic_bar(split: list[tuple[str, int]], width: int = BAR_WIDTH) -> str:
    """The traffic split as a bar of ``width`` cells, one glyph per version.

    Cells are shared by the largest remainder, so they always fill the width, and a version
    with any traffic gets at least one cell.
    """
    total = sum(p for _, p in split) or 1
    exact = [p * width / total for _, p in split]
    cells = [max(1, int(e)) if p else 0 for e, (_, p) in zip(exact, split, strict=True)]
    by_remainder = sorted(range(len(split)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in by_remainder:
        if sum(cells) >= width:
            break
        if split[i][1]:
            cells[i] += 1
    while sum(cells) > width:
        cells[cells.index(max(cells))] -= 1
    bar = "".join(BAR_GLYPHS[i % len(BAR_GLYPHS)] * n for i, n in enumerate(cells))
    legend = "  ".join(f"{BAR_GLYPHS[i % len(BAR_GLYPHS)]} {v} {p}%" for i, (v, p) in enumerate(split))
    return f"[{bar}]  {legend}"


def status_text(data: dict[str, Any], *, bar: bool = False) -> str:
    """The terminal view of ``status_data``; ``bar`` draws each traffic split (for a terminal only)."""
    lines: list[str] = []
    if not data["lockExists"]:
        lines.append(f"{data['lock']}: no lock yet: nothing is deployed")
    for m in data["models"]:
        lines.append(f"{m['model']} ({m['mode']})")
        lines.append(f"  {m['state']}")
        if m["pending"]:
            lines.append(f"  pending: {m['pending']}; run `modelplane rollout apply {data['file']}`")
        if m["renderedTraffic"]:
            split = ", ".join(f"{t['version']} {t['percent']}%" for t in m["renderedTraffic"])
            mirror = f"; {m['mirrorPercent']}% mirrored to the candidate" if m["mirrorPercent"] else ""
            lines.append(f"  rendered traffic: {split}{mirror}")
            if bar:
                shares = [(str(t["version"]), int(t["percent"])) for t in m["renderedTraffic"]]
                lines.append(f"  {traffic_bar(shares)}")
        if m["next"] is not None:
            lines.append(f"  next: {'ready to advance' if m['next']['ready'] else m['next']['reason']}")
        rollout = m["rollout"]
        if rollout is not None and m["next"] is not None:
            limit = rollout["failureLimit"]
            if rollout["failures"]:
                of = f" of {limit} (then it rolls back)" if limit else " (no failureLimit: it holds)"
                lines.append(f"  analysis: {rollout['failures']} failed evaluation(s){of} at this step")
            elif limit:
                lines.append(f"  analysis: no failed evaluation at this step; rolls back after {limit}")
        for gate in m["gates"]:
            query = gate["query"] if gate["query"] is not None else f"unmeasurable: {gate['unmeasurable']}"
            lines.append(f"  gate {gate['name']} [{gate['threshold']}]: {query}")
        if m.get("probe"):
            lines.append(f"  probe: {m['probe']}")
        for event in m["history"][-HISTORY_SHOWN:]:
            detail = f" ({event['detail']})" if event["detail"] else ""
            lines.append(
                f"  {event['at']} {event['event']} {event['version']} at {event['trafficPercent']}%{detail}"
            )
    return "\n".join(lines) + "\n" if lines else ""


def _in_progress(data: dict[str, Any]) -> bool:
    """Whether a watched model has a rollout that can still move (progressing or paused)."""
    return any(
        (m["rollout"] is not None and m["rollout"]["state"] != "rolled-back") or m["pending"]
        for m in data["models"]
    )


def _change_line(model: dict[str, Any]) -> str:
    """One line per model for a piped watch: its state and, when it says more, its last event."""
    line = f"{model['model']}: {model['state']}"
    if model["pending"]:
        line += f"; pending: {model['pending']}"
    if model["history"]:
        last = model["history"][-1]
        if last["event"] in ("held", "inconclusive", "rolled-back") and last["detail"]:
            line += f"; {last['event']}: {last['detail']}"
    return line


def watch(
    load: Callable[[], dict[str, Any]],
    *,
    interval: float,
    json_lines: bool = False,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Show ``load()``'s status until no watched rollout is in progress; returns the exit code.

    On a terminal the whole status is redrawn each time; otherwise one line per model whose
    state changed (``json_lines``: one JSON report per change).
    """
    stream = out if out is not None else sys.stdout
    redraw = console.is_terminal(stream) and not json_lines
    seen: dict[str, str] = {}
    while True:
        data = load()
        if redraw:
            stream.write("\033[H\033[2J" + status_text(data, bar=True))
            stream.write(f"\nwatching {data['lock']} every {interval:g}s; Ctrl-C to stop\n")
        elif json_lines:
            text = json.dumps(data, sort_keys=True, ensure_ascii=False)
            # The time to the next step changes every tick; a change is anything else.
            key = json.dumps(
                [{k: v for k, v in m.items() if k != "next"} for m in data["models"]], sort_keys=True
            )
            if seen.get("") != key:
                seen[""] = key
                stream.write(text + "\n")
        else:
            for model in data["models"]:
                line = _change_line(model)
                if seen.get(model["model"]) != line:
                    seen[model["model"]] = line
                    stream.write(f"{data['now']} {line}\n")
        stream.flush()
        if not _in_progress(data):
            return 0
        sleep(interval)
