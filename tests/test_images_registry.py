"""``modelplane images pin`` against the real CNCF distribution registry (and crane as a second reader).

The registry (``github.com/distribution/distribution/v3/cmd/registry``, built by
``scripts/build_tools.py``) runs on 127.0.0.1 at a free port with in-memory storage, once
anonymous and once behind htpasswd basic auth. Images are pushed through its HTTP API (blob
uploads, then an OCI manifest and an OCI index), so the digests checked are the ones the
registry itself reports, and crane (go-containerregistry) reads them a second time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelplane.image_lock import ImageLock, LockedImage, dump_image_lock, image_lock_path
from tests.conftest import ROOT
from tests.test_images import run

BUILD_SCRIPT = ROOT / "scripts" / "build_tools.py"
INITIALIZER = "kserve/storage-initializer:v0.20.0"
# Test data, not a claim about the real image: the storage initializer lives on Docker Hub,
# which these tests cannot reach, so its lock entry is given and `pin` resolves only the rest.
INITIALIZER_FIXTURE = "sha256:" + hashlib.sha256(b"fixture storage-initializer").hexdigest()
USER, PASSWORD = "pinner", "s3cret-Registry-Pass"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture(scope="module")
def tools() -> dict[str, Path]:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed: the registry and crane are built from Go modules (make tools)")
    done = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "build", "registry", "crane", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"building the registry failed:\n{done.stderr[-4000:]}")
    return {name: Path(d) for name, d in json.loads(done.stdout).items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str
    auth: str | None

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str]]:
        url = path if path.startswith("http") else f"http://{self.host}{path}"
        req = urllib.request.Request(url, data=body or None, method=method)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if self.auth:
            req.add_header("Authorization", self.auth)
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}

    def blob(self, repo: str, data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, headers = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert status == 202
        location = headers["location"]
        location = location if location.startswith("http") else f"http://{self.host}{location}"
        separator = "&" if "?" in location else "?"
        status, _ = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 201
        return {"digest": digest, "size": len(data)}

    def manifest(self, repo: str, tag: str, document: dict[str, object], media_type: str) -> str:
        body = json.dumps(document, sort_keys=True).encode()
        status, headers = self.request(
            "PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": media_type}
        )
        assert status == 201
        reported = headers["docker-content-digest"]
        assert reported == "sha256:" + hashlib.sha256(body).hexdigest()
        return reported

    def push_image(self, repo: str, tag: str, *, index: bool) -> str:
        """Push a one-layer image (under an OCI index when ``index``); the digest the tag names."""
        config = self.blob(
            repo, json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        )
        layer = self.blob(repo, f"layer of {repo}:{tag}".encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
        }
        if not index:
            return self.manifest(repo, tag, manifest, OCI_MANIFEST)
        body = json.dumps(manifest, sort_keys=True).encode()
        inner = self.manifest(repo, f"{tag}-amd64", manifest, OCI_MANIFEST)
        return self.manifest(
            repo,
            tag,
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": inner,
                        "size": len(body),
                        "platform": {"architecture": "amd64", "os": "linux"},
                    }
                ],
            },
            OCI_INDEX,
        )


def _start(tools: dict[str, Path], directory: Path, *, htpasswd: bool) -> Iterator[Registry]:
    port = _free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"inmemory": {}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    auth = None
    if htpasswd:
        bcrypt = pytest.importorskip("bcrypt", reason="bcrypt (a dev dependency) writes the htpasswd file")
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        (directory / "htpasswd").write_text(f"{USER}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "modelplane-test", "path": str(directory / "htpasswd")}}
        auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (directory / "config.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [str(tools["registry"] / "registry"), "serve", str(directory / "config.json")],
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "registry.log", "w"),  # noqa: SIM115 (closed with the process)
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).close()
                break
            except urllib.error.HTTPError as err:
                if err.code == 401:
                    break
                raise
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"the registry did not start: {(directory / 'registry.log').read_text()[-2000:]}"
                    )
                time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}", auth)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def registry(tools: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start(tools, tmp_path_factory.mktemp("registry"), htpasswd=False)


@pytest.fixture(scope="module")
def private(tools: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start(tools, tmp_path_factory.mktemp("private"), htpasswd=True)


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> dict[str, str]:
    """Image reference -> the digest the registry reported when it was pushed."""
    host = registry.host
    return {
        f"{host}/team/server:1.0": registry.push_image("team/server", "1.0", index=True),
        f"{host}/team/transformer:2.0": registry.push_image("team/transformer", "2.0", index=False),
    }


def write_stack(directory: Path, server: str, transformer: str) -> Path:
    path = directory / "shop.yaml"
    path.write_text(
        "stack: {name: shop, tier: prod}\n"
        "controlPlane:\n"
        "  defaultDeploymentMode: standard\n"
        "  ingress: {domain: models.example.com, tlsSecretName: models-tls}\n"
        "tenants:\n"
        "  - name: shop\n"
        "models:\n"
        "  - name: echo\n"
        "    tenant: shop\n"
        "    runtime: custom\n"
        f"    image: {server}\n"
        "    version: v1\n"
        "    scaling: {minReplicas: 2, maxReplicas: 3}\n"
        f"    transformer: {{image: {transformer}}}\n"
    )
    # The storage initializer's entry is given (see INITIALIZER_FIXTURE); the rest is pinned.
    seed = ImageLock("shop", {INITIALIZER: LockedImage(digest=INITIALIZER_FIXTURE)})
    image_lock_path(path).write_text(dump_image_lock(seed))
    return path


@pytest.fixture
def no_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "docker"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


def test_pin_writes_the_digests_the_registry_reports_and_render_uses_them(
    registry: Registry,
    pushed: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_docker_config: Path,
) -> None:
    server, transformer = sorted(pushed)
    stack = write_stack(tmp_path, server, transformer)
    # Before pinning, the prod stack is refused: one line per image, naming where it comes from.
    code, _, err = run(capsys, "validate", str(stack))
    assert code == 2
    assert f"{stack}: models[0].image: {server} has no digest" in err
    assert f"{stack}: models[0].transformer.image: {transformer} has no digest" in err
    assert f"run `modelplane images pin {stack}`" in err

    code, out, err = run(capsys, "images", "pin", str(stack), "--insecure-registry", registry.host)
    assert (code, err) == (0, "")
    text = image_lock_path(stack).read_text()
    lock = json.loads(text.split("\n", 2)[2])
    assert lock["images"] == {
        INITIALIZER: {"digest": INITIALIZER_FIXTURE},
        server: {"digest": pushed[server], "mediaType": OCI_INDEX},
        transformer: {"digest": pushed[transformer], "mediaType": OCI_MANIFEST},
    }
    assert f"{server} {pushed[server]}" in out

    code, rendered, err = run(capsys, "render", str(stack), "-o", "-")
    assert (code, err) == (0, "")
    assert f"image: {server}@{pushed[server]}" in rendered
    assert f"image: {transformer}@{pushed[transformer]}" in rendered
    assert f"image: {INITIALIZER}@{INITIALIZER_FIXTURE}" in rendered
    assert f"image: {server}\n" not in rendered

    code, out, _ = run(capsys, "images", "pin", str(stack), "--check")
    assert code == 0 and "up to date (3 images)" in out
    # A second pin finds nothing to do and leaves the file as it was (byte for byte).
    assert run(capsys, "images", "pin", str(stack), "--insecure-registry", registry.host)[0] == 0
    assert image_lock_path(stack).read_text() == text


def test_crane_reads_the_same_digests(
    tools: dict[str, Path], registry: Registry, pushed: dict[str, str]
) -> None:
    if "crane" not in tools:
        pytest.skip("crane is not built (scripts/build_tools.py build crane)")
    for image, digest in pushed.items():
        done = subprocess.run(
            [str(tools["crane"] / "crane"), "digest", "--insecure", image],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout.strip()) == (0, digest), done.stderr


def test_check_reports_missing_and_stale_entries_without_the_network(
    registry: Registry,
    pushed: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_docker_config: Path,
) -> None:
    server, transformer = sorted(pushed)
    stack = write_stack(tmp_path, server, transformer)
    assert run(capsys, "images", "pin", str(stack), "--insecure-registry", registry.host)[0] == 0
    moved = transformer.replace(":2.0", ":2.1")
    stack.write_text(stack.read_text().replace(transformer, moved))
    code, _, err = run(capsys, "images", "pin", str(stack), "--check")
    assert code == 3
    lock = image_lock_path(stack)
    assert f"{lock}: images: {moved}: not in the image lock" in err
    assert f"{lock}: images: {transformer}: stale; the stack no longer renders it" in err
    # A stale entry is not an error of the render: only the missing image is refused.
    code, _, err = run(capsys, "validate", str(stack))
    assert code == 2
    assert err.strip().splitlines() == [
        f"{stack}: models[0].transformer.image: {moved} has no digest (images.pinning: digest); "
        f"run `modelplane images pin {stack}`"
    ]


def test_a_tag_the_registry_lacks_fails_and_writes_nothing(
    registry: Registry,
    pushed: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_docker_config: Path,
) -> None:
    server, _ = sorted(pushed)
    missing = f"{registry.host}/team/transformer:9.9"
    stack = write_stack(tmp_path, server, missing)
    before = image_lock_path(stack).read_bytes()
    code, out, err = run(capsys, "images", "pin", str(stack), "--insecure-registry", registry.host)
    assert (code, out) == (2, "")
    assert f"{missing}: {registry.host}/team/transformer:9.9: 404 not found" in err
    assert "not written: 1 of 2 images could not be resolved" in err
    # All or nothing: the server resolved, but the lock is as it was.
    assert image_lock_path(stack).read_bytes() == before


def test_plain_http_only_when_asked(
    registry: Registry,
    pushed: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_docker_config: Path,
) -> None:
    server, transformer = sorted(pushed)
    stack = write_stack(tmp_path, server, transformer)
    before = image_lock_path(stack).read_bytes()
    code, _, err = run(capsys, "images", "pin", str(stack), "--timeout", "5")
    # Without --insecure-registry it speaks TLS to a plain-HTTP registry, which cannot answer.
    assert code == 4, err
    assert f"cannot reach https://{registry.host}" in err
    assert image_lock_path(stack).read_bytes() == before


def test_basic_auth_from_the_docker_config_never_shows_the_credentials(
    private: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_docker_config: Path,
) -> None:
    digest = private.push_image("team/private", "1.0", index=True)
    image = f"{private.host}/team/private:1.0"
    stack = write_stack(tmp_path, image, image)
    outputs: list[str] = []

    # No credentials: 401, named as such, nothing written.
    code, out, err = run(capsys, "images", "pin", str(stack), "--insecure-registry", private.host)
    outputs += [out, err]
    assert code == 2
    assert "401 unauthorized" in err and f"has none for {private.host}" in err

    # Wrong password: refused, and the password is not shown.
    wrong = base64.b64encode(f"{USER}:not-the-password".encode()).decode()
    (no_docker_config / "config.json").write_text(json.dumps({"auths": {private.host: {"auth": wrong}}}))
    code, out, err = run(capsys, "images", "pin", str(stack), "--insecure-registry", private.host)
    outputs += [out, err]
    assert code == 2 and "credentials were refused" in err

    good = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (no_docker_config / "config.json").write_text(json.dumps({"auths": {private.host: {"auth": good}}}))
    code, out, err = run(capsys, "images", "pin", str(stack), "--insecure-registry", private.host)
    outputs += [out, err]
    assert (code, err) == (0, "")
    lock_text = image_lock_path(stack).read_text()
    assert json.loads(lock_text.split("\n", 2)[2])["images"][image]["digest"] == digest
    code, rendered, err = run(capsys, "render", str(stack), "-o", "-")
    outputs += [rendered, err, lock_text]
    assert code == 0 and f"{image}@{digest}" in rendered
    for text in outputs:
        for secret in (PASSWORD, good, "not-the-password", wrong):
            assert secret not in text
