"""Credentials stay out of everything modelplane writes: one detector, every string, every output.

The detector (``modelplane.credentials``) is checked on its own; the loader must refuse a
credential in any field without repeating it; and every output of every example stack (the
render, the preview in both formats, the lock, the reports) and of fuzzed stacks carrying a
marked secret in a random string field is scanned: the detector finds nothing, and no marked
secret appears anywhere, whether its stack was refused or not.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane import credentials
from modelplane.cli import main
from modelplane.stack import read_yaml
from tests.conftest import EXAMPLE_STACKS

# A marked secret: unique enough that finding it in an output can only mean a leak.
MARK = "Zq9SeCrEt"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "a private key"),
        ("id AKIAIOSFODNN7EXAMPLE", "an AWS access key ID"),
        ("ghp_" + "a" * 36, "a GitHub token"),
        ("hf_" + "A1b2" * 9, "a Hugging Face token"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlLXZhbHVl", "a JSON Web Token"),
        ("Authorization: Bearer abcdefghijklmnop", "a bearer token"),
        ("https://user:hunter2@host/x", "credentials in a URL"),
        ("s3://b/k?X-Amz-Signature=0123456789abcdef", "a credential in a URL parameter"),
        ("https://acct.blob.core.windows.net/c/m?sv=2020&sig=abcDEF123", "a credential in a URL parameter"),
        ("pvc://claim/m;password=hunter2", "a credential in a URL parameter"),
        ("--db-password=hunter2", "a password-like assignment"),
        ("user:hunter2@registry.example.com/team/server:1.0", "credentials in a URL"),
        ('{"token": "abcdef"}', "a password-like assignment"),
    ],
)
def test_the_detector_finds_each_kind_and_redaction_drops_the_value(text: str, kind: str) -> None:
    found = credentials.find(text)
    assert [f.kind for f in found][:1] == [kind]
    redacted = credentials.redact(text)
    assert f"<redacted: {kind}>" in redacted
    secret = text[found[0].start : found[0].end]
    assert secret not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "s3://models-prod/query-embedder/v12",
        "https://huggingface.co/org/model",
        "--initial-cluster-token=etcd-cluster",
        "--max_tokens=4096",
        "password=$(DB_PASSWORD)",
        "token: ${TOKEN}",
        'sum(rate(revision_app_request_count{response_code_class="5xx"}[5m]))',
        "ghcr.io/org/server@sha256:" + "a" * 64,
        "redis:7@sha256:" + "b" * 64,
        "privateKey:\n    algorithm: ECDSA",
        "secret:\n  defaultMode: 288",
    ],
)
def test_references_and_ordinary_values_are_not_credentials(text: str) -> None:
    assert credentials.find(text) == []


@pytest.mark.parametrize(
    ("key", "secret"), [("password", True), ("DB_PASSWORD", True), ("apiKey", True), ("secretName", False)]
)
def test_keys_that_name_a_credential(key: str, secret: bool) -> None:
    assert credentials.is_secret_key(key) is secret


def test_scan_walks_nested_data_and_names_paths_not_values() -> None:
    data = {"a": [{"name": "HF_TOKEN", "value": "plain"}], "b": {"password": "x" * 8}, "c": "fine text"}
    assert sorted(credentials.scan(data)) == [
        (("a", 0, "value"), "the value of a password-like variable"),
        (("b", "password"), "a value under a password-like key"),
    ]


# --- the loader refuses them, never repeating them ------------------------------------------

DEV = Path(__file__).resolve().parents[1] / "stacks" / "dev.yaml"


def _dev() -> dict[str, Any]:
    data: dict[str, Any] = read_yaml(DEV.read_bytes(), str(DEV))
    return data


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    result = copy.deepcopy(data)
    node: Any = result
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[path[-1]] = value
    return result


CASES = [
    (("models", 0, "storage", "uri"), f"s3://bucket/m?X-Amz-Signature={MARK}0123"),
    (("models", 0, "storage", "uri"), f"https://acct.blob.core.windows.net/c/m?sv=1&sig={MARK}"),
    (("models", 0, "storage", "uri"), f"pvc://claim/m;password={MARK}"),
    (("models", 0, "storage", "uri"), f"https://user:{MARK}@host/m"),
    (("models", 0, "storage", "uri"), f"FTP://user:{MARK}@host/m"),
    (("models", 0, "storage", "uri"), f"S3://user:{MARK}@bucket/m"),
    (("models", 0, "storage", "uri"), f"s3://bucket/{MARK}AKIAIOSFODNN7EXAMPLE"),
    (("models", 0, "labels"), {"team": "AKIAIOSFODNN7EXAMPLE"}),
    (("models", 0, "transformer"), {"image": "ghcr.io/o/t:1.0", "args": [f"--api-key={MARK}"]}),
    (("models", 0, "image"), f"user:{MARK}@registry.example.com/x:1"),
    (("controlPlane", "loggerUrl"), f"http://user:{MARK}@logger"),
    (
        ("models", 0, "rollout"),
        {"gates": [{"name": "g", "metric": "custom", "query": f'up{{password="{MARK}"}}', "max": 1}]},
    ),
    (("stack", "description"), f"deploy key -----BEGIN OPENSSH PRIVATE KEY----- {MARK}"),
    (("tenants", 0, "labels"), {"password": MARK}),
]


@pytest.mark.parametrize(("path", "value"), CASES)
def test_a_credential_anywhere_is_refused_without_repeating_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: tuple[Any, ...], value: Any
) -> None:
    stack = tmp_path / "dev.yaml"
    stack.write_text(yaml.safe_dump(_set(_dev(), path, value), sort_keys=False))
    capsys.readouterr()
    assert main(["validate", str(stack)]) == 2
    out, err = capsys.readouterr()
    assert err, "refused"
    secret = MARK if MARK in str(value) else "AKIAIOSFODNN7EXAMPLE"
    assert secret not in out + err
    assert "internal error" not in err


def test_a_symlinked_stack_file_does_not_show_its_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "credentials"
    secret.write_text(f"aws_secret_access_key = {MARK}\n")
    link = tmp_path / "dev.yaml"
    link.symlink_to(secret)
    capsys.readouterr()
    assert main(["validate", str(link)]) == 2
    out, err = capsys.readouterr()
    assert MARK not in out + err


# --- every output of every example stack ------------------------------------------------------


def _outputs(stack: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Everything modelplane writes for a stack: render tree, previews, lock, reports."""
    out: dict[str, str] = {}

    def run(name: str, *argv: str, codes: tuple[int, ...] = (0,)) -> None:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        assert code in codes, (name, code, captured.err)
        out[name] = captured.out + captured.err

    copy_ = work / stack.name
    shutil.copy(stack, copy_)
    run("validate", "validate", "--output", "json", str(copy_))
    run("summary", "summary", str(copy_))
    run("plan", "plan", str(copy_), "--output", "json")
    run("apply", "rollout", "apply", str(copy_), "--now", "2026-03-01T10:00:00Z", "--output", "json")
    bumped = re.sub(r"(\n    version: )(\S+)", r"\1\2-next", copy_.read_text())
    base = work / f"base-{stack.name}"
    shutil.copy(copy_, base)
    copy_.write_text(bumped)
    run("preview-md", "preview", str(copy_), "--base", str(base), codes=(0, 3))
    run("preview-json", "preview", str(copy_), "--base", str(base), "--format", "json", codes=(0, 3))
    run("apply2", "rollout", "apply", str(copy_), "--now", "2026-03-01T10:00:00Z")
    run("status", "rollout", "status", str(copy_), "--now", "2026-03-01T10:00:00Z", "--output", "json")
    run("render", "render", str(copy_), "-o", str(work / "deploy"))
    for file in sorted((work / "deploy").rglob("*")):
        if file.is_file():
            out[str(file.relative_to(work))] = file.read_text()
    for file in sorted(work.glob("*.lock.yaml")):
        out[file.name] = file.read_text()
    return out


@pytest.mark.parametrize("stack", EXAMPLE_STACKS, ids=lambda p: p.name)
def test_no_output_of_an_example_stack_holds_a_credential(
    stack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = _outputs(stack, tmp_path, capsys)
    assert len(outputs) > 20
    found = {name: [f.kind for f in credentials.find(text)] for name, text in outputs.items()}
    assert {name: kinds for name, kinds in found.items() if kinds} == {}


# --- fuzzed stacks: a marked secret in a random string field ---------------------------------


def _string_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(data, dict):
        return [p for key, child in data.items() for p in _string_paths(child, (*path, key))]
    if isinstance(data, list):
        return [p for i, child in enumerate(data) for p in _string_paths(child, (*path, i))]
    return [path] if isinstance(data, str) else []


SECRET_SHAPES = [
    "https://user:{s}@host/path",
    "s3://bucket/key?X-Amz-Credential={s}",
    "https://h/x?token={s}",
    "gs://b/m;password={s}",
    "--password={s}",
    "Bearer {s}abcdefghijkl",
    "user:{s}@registry.example.com/x:1",
]
PROD = next(p for p in EXAMPLE_STACKS if p.name == "prod.yaml")
PROD_DATA: dict[str, Any] = read_yaml(PROD.read_bytes(), str(PROD))
PATHS = _string_paths(PROD_DATA)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from(PATHS),
    shape=st.sampled_from(SECRET_SHAPES),
    salt=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=8),
)
def test_a_marked_secret_in_any_string_field_never_reaches_an_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: tuple[Any, ...], shape: str, salt: str
) -> None:
    secret = MARK + salt
    work = tmp_path / salt
    work.mkdir(exist_ok=True)
    stack = work / "prod.yaml"
    stack.write_text(yaml.safe_dump(_set(PROD_DATA, where, shape.format(s=secret)), sort_keys=False))
    capsys.readouterr()
    code = main(["render", str(stack), "-o", str(work / "deploy")])
    texts = [capsys.readouterr().err]
    if code == 0:
        texts += [p.read_text() for p in (work / "deploy").rglob("*") if p.is_file()]
        main(["rollout", "apply", str(stack), "--now", "2026-03-01T10:00:00Z"])
        texts += [capsys.readouterr().out] + [p.read_text() for p in work.glob("*.lock.yaml")]
    assert code in (0, 2)
    assert not [t for t in texts if secret in t]


_FRAGMENTS = [
    *("AKIA", "ASIA", "AIza", "ya29.", "ghp_", "github_pat_", "glpat-", "xoxb-", "hf_", "sk-", "sk-proj-"),
    *("hooks.slack.com/services/", "rk_live_", "eyJ", ".", "bearer", "Basic", "://", "@", "?", "&", ";"),
    *("=", ":", "password", "PASSWD", "pwd", "secret", "Api-Key", "token", "credentials", "-", "--", "_"),
    *("\t", " ", "\n", "x" * 20, "ABCDEFGHIJKLMNOP0123", "abc123def456ghi789jkl012mno345pqr", "$(", "${"),
    *("sha256:", "1234", "\u017f", "\u212a", "\u0130", "\u0131"),
]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=8))
def test_the_prefilter_never_skips_a_string_a_pattern_matches(parts: list[str]) -> None:
    """Strings the cheap test lets past the patterns (most URIs, digests, times) match none of them."""
    text = "".join(parts)
    if credentials._COMBINED.search(text):
        assert credentials._may_hold(text)


@pytest.mark.parametrize(
    "text", ["s3://models/team-00/m000000/v1", "sha256:" + "ab12" * 16, "2026-12-01T10:00:00Z"]
)
def test_uris_digests_and_times_skip_the_patterns(text: str) -> None:
    assert not credentials._may_hold(text)
    assert credentials.find(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "password:hunter22",
        "PASSWD:hunter22",
        "pwd:hunter22x",
        "secret:abcdef12",
        "apiKey:abcdef12",
        "token:abcdef12",
        "credentials:abc12345",
        "AKIAABCDEFGHIJKLMNOP",
        "ghp_" + "a" * 36,
        "sk-" + "a" * 32,
        "eyJabcdefgh.eyJabcdefgh.abcdefgh",
        "ya29." + "a" * 20,
        "glpat-" + "a" * 20,
        "xoxb-abcdefghij",
        "https://user:pass@host/",
    ],
)
def test_credentials_without_a_space_are_still_found(text: str) -> None:
    """Strings without a space, ``=`` or ``@`` still reach the patterns when a pattern could match."""
    assert credentials.find(text)
