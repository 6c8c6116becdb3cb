"""Run the real Pulumi CLI on a copy of this project, against the local control plane.

The engine, the Python language host and the Kubernetes provider are the binaries
``scripts/build_pulumi.py`` builds from their Go modules; the state lives in a local file
backend and ``PULUMI_HOME`` in a temporary directory; plugin downloads are disabled and plugins
on ``PATH`` ignored, so the engine runs exactly those binaries or fails.

What is substituted, and why: the stack's upstream releases (cert-manager, Envoy Gateway,
KServe, the Knative operator, kube-prometheus-stack, ...) cannot be installed here (no chart
repository, no image, no pod network), so the Pulumi stack names them all in
``modelplane:externalReleases``: the control plane fixture has installed their CRDs and runs
KServe's and Knative's own controllers and webhooks instead (``tests/cluster/platform.py``).
Every object modelplane authors, including the ``KnativeServing`` the operator would reconcile,
goes through the real engine and provider. The Knative operator itself cannot be built (the
module proxy serves no ``knative.dev/operator`` of the 1.21 line), so :func:`knative_operator_stand_in`
reports a ``KnativeServing`` Ready once it exists, as the operator would once the ConfigMaps it
writes are in place (the fixture has written them from the same ``spec.config``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.controlplane import _die_with_parent
from tests.cluster.kubectl import Kube
from tests.conftest import ROOT

BUILD_SCRIPT = ROOT / "scripts" / "build_pulumi.py"
PASSPHRASE = "modelplane-local-test"
"""Encrypts the test stack's (absent) secrets; a fixed, public test value."""
COMMAND_TIMEOUT = 900
PULUMI_COLD_BUILD = "about 20 CPU-minutes"
"""The CLI and the provider from empty Go caches, as measured in docs/pulumi.md."""


class PulumiError(AssertionError):
    """A Pulumi command failed; the message carries its output."""


def pulumi_built() -> bool:
    """Whether the CLI, language host and provider are in the cache (nothing is built)."""
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0


def build_pulumi() -> dict[str, str]:
    """Build (or find in the cache) the CLI, language host and provider; where they are."""
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "build", "--json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PulumiError(f"building Pulumi failed:\n{result.stderr[-4000:]}")
    built: dict[str, str] = json.loads(result.stdout)
    return built


def copy_project(target: Path) -> Path:
    """What a Pulumi project run needs: Pulumi.yaml, the program, the stacks, and the venv."""
    target.mkdir(parents=True)
    shutil.copy2(ROOT / "Pulumi.yaml", target / "Pulumi.yaml")
    shutil.copytree(ROOT / "platform", target / "platform", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "stacks", target / "stacks", ignore=shutil.ignore_patterns("Pulumi.*.yaml"))
    # Pulumi.yaml names `.venv`: the environment these tests run in, with modelplane installed.
    (target / ".venv").symlink_to(Path(sys.prefix))
    return target


@dataclass
class Pulumi:
    """The Pulumi CLI bound to one project copy, one PULUMI_HOME and one kubeconfig."""

    project: Path
    env: dict[str, str]

    @classmethod
    def create(cls, workdir: Path, built: dict[str, str], kubeconfig: Path) -> Pulumi:
        home = workdir / "pulumi-home"
        subprocess.run(
            [sys.executable, str(BUILD_SCRIPT), "home", str(home)], check=True, capture_output=True, text=True
        )
        env = {
            "PATH": os.pathsep.join([built["bin"], str(Path(sys.prefix) / "bin"), "/usr/bin", "/bin"]),
            "HOME": str(workdir),
            "PULUMI_HOME": str(home),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            "PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS": "true",
            "KUBECONFIG": str(kubeconfig),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        state = workdir / "state"
        state.mkdir()
        pulumi = cls(copy_project(workdir / "project"), env)
        pulumi("login", f"file://{state}")
        return pulumi

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # Its own process group: on a timeout the engine goes with its plugins and the program;
        # and it dies with this process if the test run is killed.
        with subprocess.Popen(
            ["pulumi", *args, "--non-interactive"],
            cwd=self.project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
                raise PulumiError(
                    f"pulumi {' '.join(args)} did not finish in {COMMAND_TIMEOUT} s:\n{stdout[-6000:]}\n{stderr[-4000:]}"
                ) from None
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            raise PulumiError(
                f"pulumi {' '.join(args)} exited {result.returncode}:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def modelplane(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The modelplane CLI in the project copy, as a user runs it beside Pulumi."""
        return subprocess.run(
            [sys.executable, "-m", "modelplane.cli", *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )


@contextlib.contextmanager
def knative_operator_stand_in(kube: Kube) -> Iterator[None]:
    """Report every KnativeServing Ready (observed at its generation) while the block runs."""
    stop = threading.Event()

    def mark_ready() -> None:
        resource = kube.resource("operator.knative.dev/v1beta1", "KnativeServing")
        while not stop.wait(0.5):
            with contextlib.suppress(Exception):
                for item in resource.get().items:
                    obj = item.to_dict()
                    meta = obj["metadata"]
                    status = obj.get("status") or {}
                    if status.get("observedGeneration") == meta.get("generation"):
                        continue
                    resource.status.patch(
                        name=meta["name"],
                        namespace=meta["namespace"],
                        content_type="application/merge-patch+json",
                        body={
                            "status": {
                                "observedGeneration": meta.get("generation"),
                                "version": obj.get("spec", {}).get("version", ""),
                                "conditions": [
                                    {
                                        "type": "Ready",
                                        "status": "True",
                                        "reason": "StandIn",
                                        "message": "reported by the test's stand-in for the Knative operator",
                                    }
                                ],
                            }
                        },
                    )

    thread = threading.Thread(target=mark_ready, name="knative-operator-stand-in", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
