"""The lock file: schema, strict reading, deterministic and atomic writing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from modelplane.errors import LockError
from modelplane.rollout.lock import dump_lock, empty_lock, lock_path, read_lock, same_lock, write_lock
from modelplane.rollout.state import apply
from tests.rollout.builders import STACK, T0, desired, stack_data


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    path = tmp_path / "test.lock.yaml"
    write_lock(apply(None, desired(stack_data()), stack=STACK, now=T0), path)
    return path


def test_missing_lock_means_nothing_deployed(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "absent.lock.yaml") is None


def test_lock_path_sits_beside_the_stack() -> None:
    assert lock_path("stacks/prod.yaml") == Path("stacks/prod.lock.yaml")


def test_round_trip_keeps_the_state(lock_file: Path) -> None:
    lock = read_lock(lock_file, stack="test")
    assert lock is not None
    assert same_lock(lock, apply(None, desired(stack_data()), stack=STACK, now=T0))


def test_dump_is_byte_identical_for_the_same_lock() -> None:
    models = desired(stack_data())
    assert dump_lock(apply(None, models, stack=STACK, now=T0)) == dump_lock(
        apply(None, models, stack=STACK, now=T0)
    )


def test_dump_is_commented_json_with_schema_version_first_and_models_sorted() -> None:
    text = dump_lock(apply(None, desired(stack_data()), stack=STACK, now=T0))
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body[:4] == ["{", '  "schemaVersion": 2,', '  "stack": "test",', '  "models": {']
    keys = [line.strip().split('"')[1] for line in body if line.startswith('    "') and line.endswith("{")]
    assert keys == sorted(keys) == ["team/kn", "team/mesh", "team/std"]
    assert yaml.safe_load(text)["models"]["team/std"]["stable"]["version"] == "v1", "the lock is YAML too"


def test_lock_rewritten_as_block_yaml_still_reads(lock_file: Path) -> None:
    lock = read_lock(lock_file)
    lock_file.write_text(yaml.safe_dump(yaml.safe_load(lock_file.read_text())))
    assert read_lock(lock_file) == lock


def test_json_syntax_error_names_the_line(lock_file: Path) -> None:
    lines = lock_file.read_text().splitlines()
    lines[5] = lines[5].rstrip(",")
    lock_file.write_text("\n".join(lines))
    with pytest.raises(LockError, match=r"test\.lock\.yaml: line 7, column 3: JSON error: Expecting ','"):
        read_lock(lock_file)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.lock.yaml"
    path.write_text('{"schemaVersion": 1, "stack": "a", "stack": "b", "models": {}}')
    with pytest.raises(LockError) as err:
        read_lock(path)
    assert str(err.value) == f'{path}: <root>: duplicate key "stack"'


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.lock.yaml"
    path.write_text("schemaVersion: 1\nstack: &s test\nmodels: {}\nother: *s\n")
    with pytest.raises(LockError, match="aliases are not allowed in a lock file"):
        read_lock(path)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.lock.yaml"
    path.write_text("")
    with pytest.raises(LockError) as err:
        read_lock(path)
    assert str(err.value) == f"{path}: <root>: the lock file is empty; delete it if nothing is deployed"


def test_corrupt_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.lock.yaml"
    path.write_text("schemaVersion: 1\nstack: [unclosed\n")
    with pytest.raises(LockError, match=r"x\.lock\.yaml: line 3, column 1: YAML error"):
        read_lock(path)


def test_schema_violation_names_the_field(lock_file: Path) -> None:
    text = lock_file.read_text().replace('"mode": "knative"', '"mode": "serverless"')
    lock_file.write_text(text)
    with pytest.raises(LockError) as err:
        read_lock(lock_file)
    assert str(err.value) == (
        f"{lock_file}: models[\"team/kn\"].mode: input should be 'knative', 'standard' or 'modelmesh'"
    )


def test_digest_that_does_not_match_its_spec_is_an_error(lock_file: Path) -> None:
    text = lock_file.read_text().replace(
        '"storageUri": "s3://models/std/v1"', '"storageUri": "s3://models/std/v9"'
    )
    lock_file.write_text(text)
    with pytest.raises(LockError) as err:
        read_lock(lock_file)
    assert str(err.value) == (
        f'{lock_file}: models["team/std"].stable.digest: does not match the sha256 of its spec '
        "(was the lock edited by hand?)"
    )


def test_lock_of_another_stack_is_refused(lock_file: Path) -> None:
    with pytest.raises(LockError) as err:
        read_lock(lock_file, stack="prod")
    assert str(err.value) == f"{lock_file}: stack: the lock is for stack 'test', not 'prod'"


def test_newer_schema_version_is_refused(lock_file: Path) -> None:
    lock_file.write_text(lock_file.read_text().replace('"schemaVersion": 2', '"schemaVersion": 3'))
    with pytest.raises(LockError) as err:
        read_lock(lock_file)
    assert str(err.value) == (
        f"{lock_file}: schemaVersion: the lock is schema version 3, newer than this modelplane reads "
        "(up to 2): upgrade modelplane; it never rewrites a lock it cannot read"
    )


def test_a_mapping_is_required(tmp_path: Path) -> None:
    path = tmp_path / "x.lock.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(LockError, match="a lock file is a mapping"):
        read_lock(path)


def test_failed_write_leaves_the_old_lock_and_no_temporary_file(
    lock_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = lock_file.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(LockError, match="cannot write: No space left on device"):
        write_lock(empty_lock("test"), lock_file)
    assert lock_file.read_bytes() == before
    assert sorted(p.name for p in lock_file.parent.iterdir()) == [lock_file.name]


def test_write_replaces_the_whole_file(lock_file: Path) -> None:
    write_lock(empty_lock("test"), lock_file)
    assert read_lock(lock_file) == empty_lock("test")
