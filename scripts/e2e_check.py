"""Check a cluster after `pulumi up`: platform deployments become ready and every model's InferenceService exists.

Usage: e2e_check.py STACK_FILE [--context CTX] [--timeout SECONDS]. Exit 0 when everything is
there, 1 when something is not ready or missing by the deadline (each problem on one line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes import client, config

from modelplane.build import build
from modelplane.stack import load_stack
from modelplane.status import read_live, stack_status

PLATFORM_NAMESPACES = ("cert-manager", "envoy-gateway-system", "kserve")


def unready_deployments(apps: object, namespaces: list[str]) -> list[str]:
    """Deployments of these namespaces whose available replicas fall short of the desired ones."""
    problems: list[str] = []
    for namespace in namespaces:
        items = apps.list_namespaced_deployment(namespace).items  # type: ignore[attr-defined]
        if not items:
            problems.append(f"{namespace}: no deployments yet")
        for d in items:
            want = d.spec.replicas or 0
            have = (d.status.available_replicas or 0) if d.status else 0
            if have < want:
                problems.append(f"{namespace}/{d.metadata.name}: {have}/{want} available")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stack")
    parser.add_argument("--context")
    parser.add_argument("--timeout", type=int, default=1200)
    args = parser.parse_args()

    stack = load_stack(args.stack)
    rendered = build(stack)
    namespaces = list(PLATFORM_NAMESPACES)
    if any(c.release == "knative-operator" for c in rendered.charts):
        namespaces += ["knative-operator", "knative-serving"]
    apps = client.AppsV1Api(config.new_client_from_config(context=args.context))
    model_namespaces = sorted(
        {o["metadata"]["namespace"] for o in rendered.objects if o["kind"] == "InferenceService"}
    )

    deadline = time.monotonic() + args.timeout
    while True:
        problems = unready_deployments(apps, namespaces)
        report = stack_status(
            rendered.objects, read_live(model_namespaces, context=args.context), stack=stack.stack.name
        )
        problems += [f"missing: {key}" for key in report.missing]
        if not problems:
            print(f"e2e: platform ready, {len(report.models)} InferenceServices present")
            return 0
        if time.monotonic() > deadline:
            for line in problems:
                print(f"e2e: {line}", file=sys.stderr)
            return 1
        time.sleep(10)


if __name__ == "__main__":
    sys.exit(main())
