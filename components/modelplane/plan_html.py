"""The capacity plan as one self-contained HTML page with charts, for a browser or a CI artifact.

``modelplane plan FILE --format html`` writes it: the GPU pools (nodes against their limit,
GPUs used and free, each GPU resource against what the nodes offer), mesh density, pod and pod
IP budgets, and each tenant's GPU quota use, at minimum and maximum replicas. The charts are
inline SVG and the style inline CSS: no script, no font, nothing fetched, so the page opens
offline and in a sandboxed artifact viewer. It is built from ``capacity.to_dict`` (the JSON
report), every text escaped, in a fixed order: the same plan gives the same bytes.
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#1f2328;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#59636e;margin:0 0 12px}.ok{color:#1a7f37}.bad{color:#cf222e}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 12px}
.card h3{font-size:15px;margin:0 0 2px}.card p{margin:0 0 6px;color:#59636e;font-size:12px}
.row{display:grid;grid-template-columns:92px 1fr 190px;align-items:center;gap:8px;margin:3px 0;font-size:12px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}.legend span{display:inline-block;margin-right:12px;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
ul{margin:4px 0;padding-left:20px}
"""

COLORS = {"min": "#0969da", "max": "#8250df", "free": "#d8dee4", "over": "#cf222e"}
"""Minimum replicas, maximum replicas, what is left, and what does not fit."""

BAR_WIDTH = 220
BAR_HEIGHT = 14


def bar(used: float, total: float, color: str, text: str) -> str:
    """A bar with its text: ``used`` of ``total`` filled in ``color``, red past the total."""
    scale = max(total, used, 1)
    filled = round(BAR_WIDTH * min(used, total) / scale) if total else 0
    over = round(BAR_WIDTH * max(used - total, 0) / scale)
    rest = BAR_WIDTH - filled - over
    parts = [
        f'<rect x="0" y="0" width="{filled}" height="{BAR_HEIGHT}" fill="{color}"/>',
        f'<rect x="{filled}" y="0" width="{rest}" height="{BAR_HEIGHT}" fill="{COLORS["free"]}"/>',
    ]
    if over:
        parts.append(
            f'<rect x="{filled + rest}" y="0" width="{over}" height="{BAR_HEIGHT}" fill="{COLORS["over"]}"/>'
        )
    label = escape(text)
    return (
        f'<svg role="img" aria-label="{label}" width="100%" height="{BAR_HEIGHT}" '
        f'viewBox="0 0 {BAR_WIDTH} {BAR_HEIGHT}" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{label}</title>{''.join(parts)}</svg><span>{label}</span>"
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _row(name: str, chart: str) -> str:
    return f'<div class="row"><span>{escape(name)}</span>{chart}</div>'


def _levels(used: dict[str, float], total: float, unit: str) -> str:
    """Bars for minimum and maximum replicas against one total."""
    return "".join(
        _row(
            f"{level} replicas",
            bar(used[level], total, COLORS[level], f"{used[level]:g} of {total:g} {unit}"),
        )
        for level in ("min", "max")
    )


def _pool(p: dict[str, Any]) -> str:
    nodes = {level: p[level]["nodes"] for level in ("min", "max")}
    gpus = {level: p[level]["gpus"] for level in ("min", "max")}
    capacity = p["nodeLimit"] * p["gpusPerNode"]
    parts = [
        f"<h3>{escape(p['name'])}</h3>",
        f"<p>{escape(p['product'])} · {escape(p['sharing'])} · {p['gpusPerNode']} GPUs per node · "
        f"{escape(p['provisioner'])}, {p['minNodes']} to {p['nodeLimit']} nodes</p>",
        "<b>nodes</b>",
        _levels(nodes, p["nodeLimit"], "nodes (limit)"),
        "<b>GPUs of the planned nodes</b>",
        _levels(gpus, capacity, "GPUs at the node limit"),
    ]
    for resource in sorted(set(p["min"]["units"]) | set(p["max"]["units"])):
        per_node = p["nodeCapacity"].get(resource, 0)
        used = {level: p[level]["units"].get(resource, 0) for level in ("min", "max")}
        free = {level: p[level]["nodes"] * per_node for level in ("min", "max")}
        parts.append(f"<b>{escape(resource)}</b>")
        parts += [
            _row(
                f"{level} replicas",
                bar(
                    used[level],
                    free[level],
                    COLORS[level],
                    f"{used[level]} used of {free[level]} on {_count(nodes[level], 'node')}",
                ),
            )
            for level in ("min", "max")
        ]
    return f'<div class="card">{"".join(parts)}</div>'


def _mesh(m: dict[str, Any]) -> str:
    per_pod = m["models"] / max(m["pods"], 1)
    capacity = m["podCapacityBytes"] * m["pods"]
    where = f" on pool {m['pool']}" if m["pool"] else ""
    return (
        f'<div class="card"><h3>{escape(m["namespace"])}/{escape(m["runtime"])}</h3>'
        f"<p>{m['models']} models in {m['pods']} runtime pods{escape(where)}: {per_pod:.0f} models per pod</p>"
        + _row(
            "model memory",
            bar(
                m["modelBytes"] / 2**30,
                capacity / 2**30,
                COLORS["max"],
                f"{m['modelBytes'] / 2**30:.1f} of {capacity / 2**30:.1f} GiB",
            ),
        )
        + _levels(m["podsNeeded"], m["pods"], "pods needed")
        + "</div>"
    )


def _quota(q: dict[str, Any]) -> str:
    return (
        f'<div class="card"><h3>{escape(q["tenant"])}</h3><p>{escape(q["resource"])} quota {q["limit"]}</p>'
        + _levels({"min": q["min"], "max": q["max"]}, q["limit"], "of the quota")
        + "</div>"
    )


def to_html(plan: dict[str, Any]) -> str:
    """The plan (``capacity.to_dict``) as one HTML page."""
    fits = plan["fits"]

    def verdict(ok: bool) -> str:
        return '<span class="ok">fits</span>' if ok else '<span class="bad">does not fit</span>'

    legend = "".join(
        f'<span><i class="sw" style="background:{COLORS[k]}"></i>{text}</span>'
        for k, text in (
            ("min", "at minimum replicas"),
            ("max", "at maximum replicas"),
            ("free", "free"),
            ("over", "short"),
        )
    )
    pods = plan["pods"]
    body = [
        f"<h1>Capacity plan: {escape(plan['stack'])}</h1>",
        f'<p class="meta">minimum replicas: {verdict(fits["min"])} · maximum replicas: {verdict(fits["max"])}</p>',
        f'<p class="legend">{legend}</p>',
    ]
    if plan["pools"]:
        body += ["<h2>GPU pools</h2>", '<div class="cards">', *(_pool(p) for p in plan["pools"]), "</div>"]
    if plan["mesh"]:
        saved = plan["meshSavings"]
        body += [
            "<h2>Model mesh density</h2>",
            f'<p class="meta">{saved["meshModels"]} models in {saved["meshPods"]} runtime pods instead of '
            f"{saved['isvcPods']} InferenceServices: {saved['savedPods']} pods and {saved['savedCpu']:g} CPU saved</p>",
            '<div class="cards">',
            *(_mesh(m) for m in plan["mesh"]),
            "</div>",
        ]
    budget = pods["nodesByPodLimit"] * pods["maxPodsPerNode"]
    body += [
        "<h2>Pods and pod IPs</h2>",
        '<div class="card">',
        _levels(
            {"min": pods["min"], "max": pods["max"]},
            budget,
            f"pods ({_count(pods['nodesByPodLimit'], 'node')} x {pods['maxPodsPerNode']})",
        ),
        f"<p>{pods['podIps']} pod IPs at maximum replicas; {pods['meshRuntime']} mesh runtime pods, {pods['etcd']} etcd</p>",
        "</div>",
    ]
    if plan["quotas"]:
        body += [
            "<h2>Tenant GPU quotas</h2>",
            '<div class="cards">',
            *(_quota(q) for q in plan["quotas"]),
            "</div>",
        ]
    for title, items in (("Errors", plan["errors"]), ("Warnings", plan["warnings"])):
        if items:
            body += [f"<h2>{title}</h2><ul>", *(f"<li>{escape(i)}</li>" for i in items), "</ul>"]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>modelplane capacity plan: {escape(plan['stack'])}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
