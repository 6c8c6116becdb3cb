"""Images pinned by digest: found in every render, pinned from the image lock, refused in prod without one.

The registry side (``images pin`` against the real CNCF registry) is ``test_images_registry.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelplane.build import build
from modelplane.cli import main
from modelplane.image_lock import (
    MAX_IMAGE_LOCK_BYTES,
    ImageLock,
    LockedImage,
    dump_image_lock,
    image_lock_from_bytes,
    image_lock_path,
    load_image_lock,
)
from modelplane.images import image_uses, parse_reference, pin_objects, with_tag
from modelplane.rollout.lock import load_lock
from modelplane.stack import load_stack
from tests.conftest import EXAMPLE_STACKS, ROOT, STACKS

SCHEMAS = ROOT / "components" / "modelplane" / "schemas"


def fixture_digest(image: str) -> str:
    """Test data: a digest made from the reference, never a claim about a real image."""
    return "sha256:" + hashlib.sha256(f"fixture {image}".encode()).hexdigest()


def prod_copy(directory: Path, *, pinning: str | None = None) -> Path:
    """The prod example beside its lock, with the example's `images: {pinning: tag}` dropped."""
    text = (STACKS / "prod.yaml").read_text()
    start = text.index("\nimages:\n")
    end = text.index("\n\n", start + 1)
    setting = f"\nimages: {{pinning: {pinning}}}" if pinning else ""
    # The comment above the setting goes with it.
    head = text[:start].rsplit("\n\n", 1)[0] + "\n"
    path = directory / "prod.yaml"
    path.write_text(head + setting + text[end:])
    shutil.copy(STACKS / "prod.lock.yaml", directory / "prod.lock.yaml")
    return path


def complete_lock(stack: Path) -> ImageLock:
    """An image lock with a fixture digest for every image the stack renders."""
    args = load_stack(stack)
    rendered = build(args, lock=load_lock(stack, stack=args.stack.name))
    images = {u.image for u in image_uses(rendered.objects) if "@" not in u.image}
    lock = ImageLock(args.stack.name, {i: LockedImage(digest=fixture_digest(i)) for i in sorted(images)})
    image_lock_path(stack).write_text(dump_image_lock(lock))
    return lock


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- what is found -------------------------------------------------------------------------


def _containers(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every container by structure: pod templates, runtimes, predictors, components, workers."""
    found: list[tuple[str, dict[str, Any]]] = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if key in ("containers", "initContainers") and isinstance(child, list):
                    found.extend((f"{path}.{key}[{i}]", c) for i, c in enumerate(child))
                elif key in ("container", "model") and isinstance(child, dict):
                    found.append((f"{path}.{key}", child))
                visit(child, f"{path}.{key}")
        elif isinstance(value, list):
            for i, child in enumerate(value):
                visit(child, f"{path}[{i}]")

    visit(obj, obj["kind"])
    return found


@pytest.mark.parametrize("stack", EXAMPLE_STACKS, ids=lambda p: p.stem)
def test_every_container_image_of_every_example_is_listed(stack: Path) -> None:
    args = load_stack(stack)
    objects = build(args, lock=load_lock(stack, stack=args.stack.name)).objects
    listed = {u.image for u in image_uses(objects)}
    seen = 0
    for obj in objects:
        for where, container in _containers(obj):
            if "image" in container:
                seen += 1
                assert container["image"] in listed, where
    assert seen > 0


def test_the_prod_example_lists_etcd_the_catalog_and_the_stack_images() -> None:
    args = load_stack(STACKS / "prod.yaml")
    objects = build(args, lock=load_lock(STACKS / "prod.yaml", stack="prod")).objects
    by_image: dict[str, set[str]] = {}
    for use in image_uses(objects):
        by_image.setdefault(use.image, set()).add(use.kind)
    assert by_image["quay.io/coreos/etcd:v3.5.21"] == {"StatefulSet", "CronJob"}
    assert "ClusterServingRuntime" in by_image["docker.io/kserve/sklearnserver:v0.20.0"]
    assert by_image["ghcr.io/example/doc-tokenizer:1.2.0"] == {"InferenceService"}
    assert by_image["kserve/storage-initializer:v0.20.0"] == {"ClusterStorageContainer"}


def test_kserve_s_runtime_version_image_is_listed_and_pinned_into_the_predictor() -> None:
    runtime = {
        "kind": "ClusterServingRuntime",
        "metadata": {"name": "modelplane-tensorflow"},
        "spec": {"containers": [{"name": "kserve-container", "image": "docker.io/tensorflow/serving:2.6.2"}]},
    }
    isvc = {
        "kind": "InferenceService",
        "metadata": {"name": "tagger", "namespace": "search"},
        "spec": {"predictor": {"model": {"runtime": "modelplane-tensorflow", "runtimeVersion": "2.11.0"}}},
    }
    uses = image_uses([runtime, isvc])
    assert [(u.image, u.derived) for u in uses] == [
        ("docker.io/tensorflow/serving:2.6.2", None),
        ("docker.io/tensorflow/serving:2.11.0", "2.11.0"),
    ]
    digests = {u.image: fixture_digest(u.image) for u in uses}
    pinned = pin_objects([runtime, isvc], digests)
    # With a digest, KServe no longer swaps the tag (utils.go:342-345): the predictor must name
    # the runtimeVersion's image itself, or the model would silently run 2.6.2.
    assert pinned[1]["spec"]["predictor"]["model"]["image"] == (
        f"docker.io/tensorflow/serving:2.11.0@{digests['docker.io/tensorflow/serving:2.11.0']}"
    )
    assert pinned[0]["spec"]["containers"][0]["image"].endswith(digests["docker.io/tensorflow/serving:2.6.2"])
    assert "image" not in isvc["spec"]["predictor"]["model"]  # the input is not changed


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("redis:7", "docker.io", "library/redis", "7", None),
        ("kserve/sklearnserver:v0.20.0", "docker.io", "kserve/sklearnserver", "v0.20.0", None),
        ("docker.io/kserve/x:1", "docker.io", "kserve/x", "1", None),
        ("index.docker.io/redis:7", "docker.io", "library/redis", "7", None),
        ("quay.io/coreos/etcd:v3.5.21", "quay.io", "coreos/etcd", "v3.5.21", None),
        ("localhost/a/b:1", "localhost", "a/b", "1", None),
        ("127.0.0.1:5000/team/server:1.0", "127.0.0.1:5000", "team/server", "1.0", None),
        ("ghcr.io/a/b:1@sha256:" + "a" * 64, "ghcr.io", "a/b", "1", "sha256:" + "a" * 64),
    ],
)
def test_references_split_as_docker_does(
    text: str, registry: str, repository: str, tag: str, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("image", "tag", "expected"),
    [("a/b:1.0", "2.0", "a/b:2.0"), ("host:5000/a/b", "2", "host:5000/a/b:2"), ("a/b:1-gpu", "2", "a/b:2")],
)
def test_the_derived_tag_is_kserve_s(image: str, tag: str, expected: str) -> None:
    assert with_tag(image, tag) == expected


# --- the policy ----------------------------------------------------------------------------


def test_prod_defaults_to_digest_and_the_other_tiers_to_tag() -> None:
    assert load_stack(STACKS / "staging.yaml").pinning() == "tag"
    assert load_stack(STACKS / "dev.yaml").pinning() == "tag"
    # The example pins by tag explicitly (its images are illustrative); the default is digest.
    assert load_stack(STACKS / "prod.yaml").images.pinning == "tag"
    assert load_stack(STACKS / "prod.yaml").images.effective("prod") == "tag"
    assert type(load_stack(STACKS / "prod.yaml").images)().effective("prod") == "digest"


@pytest.mark.parametrize("command", ["validate", "render", "plan", "status"])
def test_a_prod_stack_without_an_image_lock_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = prod_copy(tmp_path)
    argv = [command, str(stack)] + (["-o", str(tmp_path / "out")] if command == "render" else [])
    code, out, err = run(capsys, *argv)
    assert out == ""
    assert code == 2, err
    lines = err.strip().splitlines()
    hint = f"has no digest (images.pinning: digest); run `modelplane images pin {stack}`"
    assert f"{stack}: modelMesh.etcd.image: quay.io/coreos/etcd:v3.5.21 {hint}" in lines
    assert f"{stack}: models[11].transformer.image: ghcr.io/example/doc-tokenizer:1.2.0 {hint}" in lines
    assert (
        f"{stack}: images: docker.io/kserve/sklearnserver:v0.20.0 (runtime catalog, ClusterServingRuntime "
        f"modelplane-sklearn) {hint}" in lines
    )
    assert all(line.endswith(hint) for line in lines)
    assert not (tmp_path / "out").exists()


def test_a_complete_image_lock_pins_every_image_of_the_prod_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = prod_copy(tmp_path)
    lock = complete_lock(stack)
    code, rendered, err = run(capsys, "render", str(stack), "-o", "-")
    assert (code, err) == (0, "")
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    images = {u.image for u in image_uses(documents)}
    assert images and all("@sha256:" in i for i in images)
    assert f"quay.io/coreos/etcd:v3.5.21@{lock.images['quay.io/coreos/etcd:v3.5.21'].digest}" in images
    tagger = next(
        d for d in documents if d["kind"] == "InferenceService" and d["metadata"]["name"] == "image-tagger"
    )
    model = tagger["spec"]["predictor"]["model"]
    assert (
        model["image"]
        == f"docker.io/tensorflow/serving:2.6.2@{fixture_digest('docker.io/tensorflow/serving:2.6.2')}"
    )
    # Deterministic: the same input, the same bytes.
    assert run(capsys, "render", str(stack), "-o", "-")[1] == rendered


def test_a_stale_entry_is_no_error_of_the_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = prod_copy(tmp_path)
    lock = complete_lock(stack)
    extra = ImageLock(
        "prod", {**lock.images, "ghcr.io/example/gone:1.0": LockedImage(digest=fixture_digest("x"))}
    )
    image_lock_path(stack).write_text(dump_image_lock(extra))
    assert run(capsys, "validate", str(stack))[0] == 0
    code, _, err = run(capsys, "images", "pin", str(stack), "--check")
    assert code == 3
    assert (
        f"{image_lock_path(stack)}: images: ghcr.io/example/gone:1.0: stale; the stack no longer renders it"
        in err
    )


def test_pinning_tag_renders_the_lock_s_digests_but_refuses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = prod_copy(tmp_path, pinning="tag")
    assert run(capsys, "validate", str(stack))[0] == 0
    image_lock_path(stack).write_text(
        dump_image_lock(
            ImageLock("prod", {"quay.io/coreos/etcd:v3.5.21": LockedImage(digest=fixture_digest("etcd"))})
        )
    )
    code, rendered, _ = run(capsys, "render", str(stack), "-o", "-")
    assert code == 0
    assert f"quay.io/coreos/etcd:v3.5.21@{fixture_digest('etcd')}" in rendered
    assert "docker.io/kserve/sklearnserver:v0.20.0\n" in rendered


def test_a_digest_change_shows_in_the_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base_dir, head_dir = tmp_path / "base", tmp_path / "head"
    base_dir.mkdir()
    head_dir.mkdir()
    base, head = prod_copy(base_dir), prod_copy(head_dir)
    lock = complete_lock(base)
    complete_lock(head)
    moved = {**lock.images, "quay.io/coreos/etcd:v3.5.21": LockedImage(digest=fixture_digest("etcd v2"))}
    image_lock_path(head).write_text(dump_image_lock(ImageLock("prod", moved)))
    code, out, err = run(capsys, "preview", str(head), "--base", str(base), "--format", "json")
    assert code == 0, err
    changed = {(o["kind"], o["name"]) for o in json.loads(out)["objects"] if o["action"] == "changed"}
    assert changed == {("StatefulSet", "modelmesh-etcd"), ("CronJob", "modelmesh-etcd-snapshot")}


# --- the image lock as untrusted input -------------------------------------------------------


def _render_refusal(stack: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code, out, err = run(capsys, "render", str(stack), "-o", "-")
    assert (code, out) == (2, "")
    return err.strip().splitlines()


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            '{"schemaVersion": 2, "stack": "prod", "images": {}}',
            "schemaVersion: the image lock is schema version 2, newer",
        ),
        (
            '{"schemaVersion": 1, "stack": "dev", "images": {}}',
            "stack: the image lock is for stack 'dev', not 'prod'",
        ),
        ('{"schemaVersion": 1, "stack": "prod", "images": {}, "extra": 1}', "extra: unknown field"),
        (
            '{"schemaVersion": 1, "stack": "prod", "images": {"redis:7": {"digest": "sha256:abc"}}}',
            'images["redis:7"].digest: must be a digest: sha256: and 64 lower-case hex digits',
        ),
        (
            '{"schemaVersion": 1, "stack": "prod", "images": {"redis": {"digest": "sha256:'
            + "a" * 64
            + '"}}}',
            "images.redis: must be an image reference with a tag",
        ),
        (
            '{"schemaVersion": 1, "stack": "prod", "images": {"redis:7": {"digest": "sha256:'
            + "a" * 64
            + '", "size": 1}}}',
            'images["redis:7"].size: unknown field (allowed: digest, mediaType)',
        ),
        ("images: {redis:7: !!set {a}}", "not allowed; a lock holds plain JSON data"),
    ],
)
def test_a_bad_image_lock_is_refused_with_file_and_path(
    body: str, line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = prod_copy(tmp_path, pinning="tag")
    image_lock_path(stack).write_text(body)
    lines = _render_refusal(stack, capsys)
    assert any(entry.startswith(f"{image_lock_path(stack)}: ") and line in entry for entry in lines), lines


def test_an_image_lock_that_is_a_symlink_or_too_large_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = prod_copy(tmp_path, pinning="tag")
    path = image_lock_path(stack)
    os.symlink("/dev/zero", path)
    assert _render_refusal(stack, capsys) == [
        f"{path}: <root>: is a symbolic link; a lock is a regular file that modelplane writes"
    ]
    path.unlink()
    path.write_bytes(b" " * (MAX_IMAGE_LOCK_BYTES + 1))
    assert "locks are limited to 4,194,304" in _render_refusal(stack, capsys)[0]


def test_the_image_lock_round_trips_and_is_written_deterministically(tmp_path: Path) -> None:
    lock = ImageLock(
        "prod",
        {
            "b/x:1": LockedImage(
                digest="sha256:" + "b" * 64, media_type="application/vnd.oci.image.index.v1+json"
            ),
            "a/x:1": LockedImage(digest="sha256:" + "a" * 64),
        },
    )
    text = dump_image_lock(lock)
    assert text.index('"a/x:1"') < text.index('"b/x:1"')
    again = image_lock_from_bytes(text.encode(), "x", stack="prod")
    assert dict(again.images) == dict(lock.images)
    assert dump_image_lock(again) == text
    (tmp_path / "s.yaml").write_text("")
    assert load_image_lock(tmp_path / "s.yaml", stack="prod").images == {}


def test_images_list_json_follows_its_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = prod_copy(tmp_path)
    complete_lock(stack)
    code, out, _ = run(capsys, "images", "list", str(stack), "--output", "json")
    assert code == 0
    report = json.loads(out)
    schema = json.loads((SCHEMAS / "images.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    etcd = next(e for e in report["images"] if e["image"] == "quay.io/coreos/etcd:v3.5.21")
    assert (etcd["pinnedBy"], etcd["from"]) == ("lock", ["modelMesh.etcd.image"])
    broken = {**report, "images": [{**etcd, "pinnedBy": "guess"}]}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))
