"""A real Kubernetes control plane on this machine, for tests and scripts.

Schema checks cannot see admission webhooks, defaulting, server-side-apply ownership,
immutable fields or what controllers build, so the cluster tests run the real thing: etcd,
kube-apiserver, kube-controller-manager and kube-scheduler built from ``k8s.io/kubernetes``
(``scripts/build_tools.py``), kwok for nodes, and (``tests/cluster/platform.py``) KServe's
manager and Knative Serving's webhook and controller, all as local processes.

Everything runs inside a private network namespace of its own. KServe's and Knative's
webhook servers listen on every interface and offer no flag to bind one address
(controller-runtime's ``webhook.Options.Host`` is left empty by ``cmd/manager/main.go:131`` of
KServe v0.20.0; knative.dev/pkg's webhook listens on ``":" + port``); inside a namespace whose
only interface is loopback nothing can reach them from outside. For the same reason the ports
inside are fixed. The caller's process reaches the API server through a relay that listens on
127.0.0.1 (a random free port) and connects into the namespace, so the kubeconfig this yields
works from pytest, a script, or ``modelplane status``.

``control_plane(workdir, bins)`` is a context manager: it yields a :class:`ControlPlane` and
stops every process (process groups, killed with their parent too) whatever happens. Feature
gates the stack says its cluster runs with (``feature_gates``) go to every component, as on a
real cluster: ``ImageVolume`` for a stack with ``controlPlane.imageVolume``, without which the
API server drops a pod's image volumes and refuses the pod.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ETCD_PORT = 2379
ETCD_PEER_PORT = 2380
API_PORT = 6443
"""Fixed ports inside the private network namespace (nothing else lives there)."""

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """A component did not start or become ready; the message carries its log tail."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a test run killed hard takes its servers along.
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def namespaces_available() -> str | None:
    """Why a private network namespace cannot be made here, or None when it can."""
    try:
        result = subprocess.run(
            ["unshare", "--net", "--", "true"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`unshare --net` cannot run: {error}"
    if result.returncode != 0:
        return f"`unshare --net` is refused (needs root or user namespaces): {result.stderr.strip()}"
    return None


@dataclass
class Process:
    """One server process: its command, log file and handle."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


@dataclass
class Certs:
    """A test CA and what it signs: the API server's, the admin's and the webhooks' certificates."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    def create(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        self._openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d / "ca.key", "-out", d / "ca.crt", "-days", "2", "-subj", "/CN=modelplane-test-ca",
        )  # fmt: skip
        self.sign("apiserver", "/CN=kube-apiserver", "IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc")
        self.sign("admin", "/O=system:masters/CN=modelplane-admin", None)
        self.sign(
            "webhook",
            "/CN=webhooks",
            "IP:127.0.0.1,DNS:webhook.knative-serving.svc,DNS:kserve-webhook-server-service.kserve.svc",
        )
        self._openssl("genrsa", "-out", d / "sa.key", "2048")
        self._openssl("rsa", "-in", d / "sa.key", "-pubout", "-out", d / "sa.pub")

    def sign(self, name: str, subject: str, san: str | None) -> None:
        d = self.directory
        args: list[str | Path] = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d / f"{name}.key", "-out", d / f"{name}.crt", "-days", "2", "-subj", subject,
            "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
        ]  # fmt: skip
        if san:
            args += ["-addext", f"subjectAltName={san}"]
        self._openssl(*args)

    @staticmethod
    def _openssl(*args: str | Path) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def kubeconfig(server: str, certs: Certs) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority": str(certs.path("ca.crt"))},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate": str(certs.path("admin.crt")),
                    "client-key": str(certs.path("admin.key")),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }


class Relay:
    """Forwards 127.0.0.1:<random> in this process's namespace to a port inside the private one."""

    def __init__(self, netns: Path, port: int) -> None:
        self._netns_fd = os.open(netns, os.O_RDONLY)
        self._target = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="netns-relay", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        # setns moves only this thread; sockets it creates belong to the private namespace.
        if _libc().setns(self._netns_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the control plane's network namespace")
        self._listener.settimeout(0.5)
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), timeout=10)
            except OSError:
                client.close()
                continue
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()
        os.close(self._netns_fd)


def _pump(a: socket.socket, b: socket.socket) -> None:
    a.settimeout(None)
    b.settimeout(None)
    try:
        while True:
            readable, _, _ = select.select([a, b], [], [], 60)
            if not readable:
                continue
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)
    except OSError:
        return
    finally:
        a.close()
        b.close()


@dataclass
class ControlPlane:
    """A running control plane: where its files are and how to reach it."""

    workdir: Path
    bins: dict[str, Path]
    certs: Certs
    netns: Path
    kubeconfig: Path
    """For this process (through the relay on 127.0.0.1)."""
    inner_kubeconfig: Path
    """For processes started inside the namespace (:meth:`start`)."""
    processes: list[Process] = field(default_factory=list)

    def binary(self, name: str) -> Path:
        for directory in self.bins.values():
            if (directory / name).is_file():
                return directory / name
        raise ControlPlaneError(f"binary {name} not built (scripts/build_tools.py)")

    def start(self, name: str, args: Sequence[str | Path], env: dict[str, str] | None = None) -> Process:
        """Start ``args`` inside the namespace, in its own process group, logging to a file."""
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = ["nsenter", f"--net={self.netns}", "--", *map(str, args)]
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env={
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": str(self.workdir),
                    **(env or {}),
                },
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def stop(self, name: str) -> None:
        for process in [p for p in self.processes if p.name == name]:
            process.stop()
            self.processes.remove(process)

    def check_alive(self) -> None:
        for process in self.processes:
            if process.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{process.name} exited ({process.popen.returncode}):\n{process.tail()}"
                )

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certs.path("ca.crt")))
        context.load_cert_chain(str(self.certs.path("admin.crt")), str(self.certs.path("admin.key")))
        return context

    def server(self) -> str:
        config = yaml.safe_load(self.kubeconfig.read_text())
        return str(config["clusters"][0]["cluster"]["server"])

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.server() + path, context=self.ssl_context(), timeout=10) as response:
            body: bytes = response.read()
            return body


def wait_for(what: str, check: Callable[[], bool], *, timeout: float, alive: Callable[[], None]) -> None:
    """Poll ``check`` until true; fail naming ``what`` (and a dead process) when it never is."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        alive()
        try:
            if check():
                return
        except Exception as error:
            last = error
        time.sleep(0.5)
    raise ControlPlaneError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f": {last}" if last else "")
    )


def _start_core(cp: ControlPlane, feature_gates: Mapping[str, bool]) -> None:
    d = cp.workdir
    c = cp.certs
    gates = ",".join(f"{name}={str(on).lower()}" for name, on in sorted(feature_gates.items()))
    gate_flags = [f"--feature-gates={gates}"] if gates else []
    cp.start(
        "etcd",
        [
            cp.binary("etcd"), "--name", "etcd", "--data-dir", d / "etcd",
            "--listen-client-urls", f"http://127.0.0.1:{ETCD_PORT}",
            "--advertise-client-urls", f"http://127.0.0.1:{ETCD_PORT}",
            "--listen-peer-urls", f"http://127.0.0.1:{ETCD_PEER_PORT}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{ETCD_PEER_PORT}",
            "--initial-cluster", f"etcd=http://127.0.0.1:{ETCD_PEER_PORT}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ],
    )  # fmt: skip
    cp.start(
        "kube-apiserver",
        [
            cp.binary("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={API_PORT}",
            # No kube-proxy and no pod network: the `kubernetes` Service needs no endpoints.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={c.path('apiserver.crt')}", f"--tls-private-key-file={c.path('apiserver.key')}",
            f"--client-ca-file={c.path('ca.crt')}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={c.path('sa.pub')}",
            f"--service-account-signing-key-file={c.path('sa.key')}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            "--profiling=false",
            *gate_flags,
        ],
    )  # fmt: skip
    wait_for("kube-apiserver /readyz", lambda: cp.get("/readyz") == b"ok", timeout=180, alive=cp.check_alive)
    cp.start(
        "kube-controller-manager",
        [
            cp.binary("kube-controller-manager"), f"--kubeconfig={cp.inner_kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
            f"--service-account-private-key-file={c.path('sa.key')}", f"--root-ca-file={c.path('ca.crt')}",
            "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle-controller",
            *gate_flags,
        ],
    )  # fmt: skip
    cp.start(
        "kube-scheduler",
        [
            cp.binary("kube-scheduler"), f"--kubeconfig={cp.inner_kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
            *gate_flags,
        ],
    )  # fmt: skip
    cp.start(
        "kwok",
        [
            cp.binary("kwok"), f"--kubeconfig={cp.inner_kubeconfig}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=10.244.0.1", "--cidr=10.244.0.0/16", "--server-address=",
        ],
    )  # fmt: skip


@contextlib.contextmanager
def control_plane(
    workdir: Path, bins: dict[str, Path], feature_gates: Mapping[str, bool] | None = None
) -> Iterator[ControlPlane]:
    """Bring up etcd, kube-apiserver, controller manager, scheduler and kwok; stop them on exit.

    ``bins`` maps wrapper names to the directories ``scripts/build_tools.py build --json`` prints;
    ``feature_gates`` are set on the API server, controller manager and scheduler.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        ["unshare", "--net", "--", "sleep", "infinity"],
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    cp: ControlPlane | None = None
    relay: Relay | None = None
    try:
        netns = Path(f"/proc/{holder.pid}/ns/net")
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(netns) == own:
            if time.monotonic() > deadline or holder.poll() is not None:
                raise ControlPlaneError("the network namespace holder did not start")
            time.sleep(0.05)
        subprocess.run(["nsenter", f"--net={netns}", "--", "ip", "link", "set", "lo", "up"], check=True)
        certs = Certs(workdir / "pki")
        certs.create()
        relay = Relay(netns, API_PORT)
        outer, inner = workdir / "kubeconfig", workdir / "kubeconfig.inner"
        outer.write_text(yaml.safe_dump(kubeconfig(f"https://127.0.0.1:{relay.port}", certs)))
        inner.write_text(yaml.safe_dump(kubeconfig(f"https://127.0.0.1:{API_PORT}", certs)))
        cp = ControlPlane(workdir, bins, certs, netns, outer, inner)
        _start_core(cp, feature_gates or {})
        yield cp
    finally:
        for process in reversed(cp.processes if cp else []):
            process.stop()
        if relay:
            relay.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
