"""Structure-aware fuzzing of what modelplane reads: stack files, lock files and the command line.

    python bench/fuzz.py                  # 10,000 cases per target (make fuzz)
    python bench/fuzz.py --cases 200      # a quick run
    python bench/fuzz.py --only lock
    python bench/fuzz.py --engine atheris  # coverage-guided: libFuzzer mutates Hypothesis' choices

Every case ends in one of three outcomes, counted per target and printed as a table:

- ``valid``: the input was accepted and everything built from it (the render, under the lock);
- ``refused``: a ``StackError``, ``LockError`` or ``ProblemError`` (exit 2 on the command line),
  every line of it ``FILE: path: message``;
- ``internal``: anything else (a traceback, exit 1): a bug. The run exits 1 and shows the first
  few inputs that caused one.

Targets: ``stack`` mutates the example stacks (keys deleted, renamed or added, values replaced by
anything YAML holds; ``tests.test_stack_property.mutants``); ``lock`` mutates real locks with
rollouts under way (values replaced at any path, versions, steps, specs, keys) and reads them
under their stack; ``image-lock`` mutates an image lock (digests, media types, image keys) and
renders under it with pinning on; ``stack+lock`` mutates a stack whose lock has rollouts under way (the change
that once bricked a stack: a runtime and a metric together); ``cli`` runs a random command over a
mutated stack and lock in a scratch directory. Hypothesis drives the cases (``derandomize``, so a
run is repeatable); ``tests/test_fuzz.py`` runs a few hundred of each in ``make test``.

``--engine atheris`` hands the same targets to atheris (Google's coverage-guided Python fuzzer,
built on libFuzzer): libFuzzer mutates the bytes Hypothesis draws its choices from
(``fuzz_one_input``) and keeps the inputs that reach new lines of modelplane, so the structure
stays valid while coverage steers. Each target runs in a process of its own, because libFuzzer
ends its process when the run is done; ``make fuzz`` installs atheris when a wheel exists for the
platform and says so when it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from modelplane.build import build  # noqa: E402
from modelplane.cli import main  # noqa: E402
from modelplane.errors import LockError, ProblemError, StackError  # noqa: E402
from modelplane.image_lock import ImageLock, LockedImage, dump_image_lock, image_lock_from_bytes  # noqa: E402
from modelplane.images import image_uses  # noqa: E402
from modelplane.rollout.lock import dump_lock, lock_from_bytes  # noqa: E402
from modelplane.rollout.state import apply  # noqa: E402
from modelplane.stack import parse_stack  # noqa: E402
from tests.rollout.builders import T0, bump, desired, edit, stack_data  # noqa: E402
from tests.test_stack_property import MEANINGFUL, _paths, mutants, problem_line, values  # noqa: E402

REFUSALS = (StackError, LockError, ProblemError)
SOURCE = "stacks/fuzz.yaml"
LOCK_SOURCE = "stacks/fuzz.lock.yaml"


class Outcomes:
    """Counts by outcome, and the first inputs that ended in an internal error."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.internal: list[str] = []

    def add(self, outcome: str, evidence: Callable[[], str] = lambda: "") -> None:
        self.counts[outcome] += 1
        if outcome == "internal" and len(self.internal) < 5:
            self.internal.append(evidence())


def _refused(err: Exception, *sources: str) -> str:
    """``refused`` when every line of the refusal is well formed, else ``internal``."""
    if isinstance(err, ProblemError):
        return "refused" if err.problems else "internal"
    lines = [line for problem in getattr(err, "problems", [str(err)]) for line in str(problem).splitlines()]
    patterns = [problem_line(s) for s in sources]
    return "refused" if lines and all(any(p.match(line) for p in patterns) for line in lines) else "internal"


# --- stack ---------------------------------------------------------------------------------


def stack_case(data: Any) -> str:
    try:
        build(parse_stack(copy.deepcopy(data), SOURCE))
    except REFUSALS as err:
        return _refused(err, SOURCE)
    except Exception:  # anything else is what the fuzzer looks for
        return "internal"
    return "valid"


# --- locks with rollouts under way ---------------------------------------------------------

ROLLING = stack_data("standard", "knative", "modelmesh")
AFTER = bump(bump(bump(ROLLING, "std", "v2"), "kn", "v2"), "mesh", "v2")
LOCK = apply(apply(None, desired(ROLLING), stack="test", now=T0), desired(AFTER), stack="test", now=T0)
LOCK_TEXT = dump_lock(LOCK)
LOCK_DATA: dict[str, Any] = json.loads(LOCK_TEXT[LOCK_TEXT.index("{") :])
AFTER_STACK = parse_stack(copy.deepcopy(AFTER), SOURCE)

LOCK_VALUES = st.one_of(
    values,
    st.integers(min_value=-5, max_value=300),
    st.sampled_from(
        ["mlserver", "triton", "no-such-runtime", "\ud800", "2026-13-01T00:00:00Z", "v2\n::error::x"]
    ),
    st.sampled_from([[10, 150], [100], [50, 25, 100], [], [1] * 200]),
)


LOCK_PATHS = [p for p in _paths(LOCK_DATA) if p]


def _mutated_json(
    draw: st.DrawFn, data: Any, paths: list[Any], values: st.SearchStrategy[Any], keys: st.SearchStrategy[str]
) -> bytes:
    """``data`` with one to three values replaced, deleted or renamed, as JSON bytes, sometimes cut."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths))
        parent: Any = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            operation = draw(st.sampled_from(["replace", "delete", "rename"]))
            if operation == "replace":
                parent[path[-1]] = draw(values)
            elif operation == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(keys)] = parent.pop(path[-1])
        except (KeyError, IndexError, TypeError):
            continue
    text = json.dumps(data, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.text(max_size=4)) + text[cut + 1 :]
    return text.encode("utf-8", "surrogatepass")


@st.composite
def lock_mutants(draw: st.DrawFn) -> bytes:
    return _mutated_json(
        draw, LOCK_DATA, LOCK_PATHS, LOCK_VALUES, st.text(max_size=10) | st.sampled_from(MEANINGFUL)
    )


def lock_case(raw: bytes) -> str:
    try:
        lock = lock_from_bytes(raw, LOCK_SOURCE, stack="test")
        build(AFTER_STACK, lock=lock)
    except REFUSALS as err:
        return _refused(err, LOCK_SOURCE, SOURCE)
    except Exception:  # anything else is what the fuzzer looks for
        return "internal"
    return "valid"


# --- image locks -------------------------------------------------------------------------

IMAGE_LOCK_SOURCE = "stacks/fuzz.images.lock.yaml"
_IMAGES = sorted({u.image for u in image_uses(build(AFTER_STACK, lock=LOCK).objects) if "@" not in u.image})
IMAGE_LOCK_TEXT = dump_image_lock(
    ImageLock(
        "test",
        {
            image: LockedImage(digest="sha256:" + hashlib.sha256(f"fuzz {image}".encode()).hexdigest())
            for image in _IMAGES
        },
    )
)
IMAGE_LOCK_DATA: dict[str, Any] = json.loads(IMAGE_LOCK_TEXT[IMAGE_LOCK_TEXT.index("{") :])
IMAGE_LOCK_PATHS = [p for p in _paths(IMAGE_LOCK_DATA) if p]
IMAGE_LOCK_VALUES = st.one_of(
    values,
    st.sampled_from(
        [
            "sha256:" + "0" * 64,
            "sha256:" + "A" * 64,
            "sha512:" + "0" * 128,
            "application/vnd.oci.image.index.v1+json",
            "text/html",
            "docker.io/library/nginx:1.27",
            "user:pass@registry.example.com/x:1",
            "x:1@sha256:" + "1" * 64,
            "\ud800",
        ]
    ),
)


@st.composite
def image_lock_mutants(draw: st.DrawFn) -> bytes:
    keys = st.text(max_size=40) | IMAGE_LOCK_VALUES.filter(lambda v: isinstance(v, str))
    return _mutated_json(draw, IMAGE_LOCK_DATA, IMAGE_LOCK_PATHS, IMAGE_LOCK_VALUES, keys)


def image_lock_case(raw: bytes) -> str:
    """An image lock read as untrusted bytes, then the stack rendered under it with pinning on."""
    try:
        images = image_lock_from_bytes(raw, IMAGE_LOCK_SOURCE, stack="test")
        build(AFTER_STACK, lock=LOCK, images=images)
    except REFUSALS as err:
        return _refused(err, IMAGE_LOCK_SOURCE, SOURCE)
    except Exception:  # anything else is what the fuzzer looks for
        return "internal"
    return "valid"


# --- a changed stack under a lock with rollouts --------------------------------------------

CHANGES = st.sampled_from(
    [
        {"runtime": "mlserver"},
        {
            "runtime": "triton",
            "format": {"name": "onnx", "version": "1"},
            "scaling": {"minReplicas": 2, "maxReplicas": 6, "metric": "queue-depth"},
        },
        {"runtime": "triton", "format": {"name": "onnx", "version": "1"}},
        {"scaling": {"minReplicas": 2, "maxReplicas": 6, "metric": "queue-depth"}},
        {"scaling": {"minReplicas": 0, "maxReplicas": 6, "metric": "cpu"}},
        {"scaling": {"minReplicas": 2, "maxReplicas": 6, "metric": "gpu-utilization"}},
        {"deploymentMode": "knative"},
        {"deploymentMode": "standard"},
        {"resources": {"gpu": 1}},
        {"protocol": {"version": "v1"}},
        {"version": "v3"},
    ]
)


@st.composite
def changed_stacks(draw: st.DrawFn) -> dict[str, Any]:
    data = AFTER
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        name = draw(st.sampled_from(["std", "kn", "mesh"]))
        data = edit(data, name, **draw(CHANGES))
    return data


def stack_lock_case(data: dict[str, Any]) -> str:
    try:
        build(parse_stack(copy.deepcopy(data), SOURCE), lock=LOCK)
    except REFUSALS as err:
        return _refused(err, SOURCE)
    except Exception:  # anything else is what the fuzzer looks for
        return "internal"
    return "valid"


# --- the command line ----------------------------------------------------------------------

COMMANDS = [
    ["validate", "FILE"],
    ["render", "FILE", "-o", "-"],
    ["render", "FILE", "--check"],
    ["summary", "FILE"],
    ["plan", "FILE"],
    ["rollout", "apply", "FILE", "--dry-run", "--now", T0],
    ["rollout", "status", "FILE", "--now", T0],
    ["rollout", "promote", "FILE", "--all", "--now", T0],
    ["preview", "FILE", "--base", "BASE"],
]


def cli_case(command: list[str], stack: bytes, lock: bytes | None) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        (directory / "test.yaml").write_bytes(stack)
        (directory / "base.yaml").write_text(json.dumps(AFTER))
        if lock is not None:
            (directory / "test.lock.yaml").write_bytes(lock)
        files = {"FILE": str(directory / "test.yaml"), "BASE": str(directory / "base.yaml")}
        argv = [files.get(a, a) for a in command]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--quiet", *argv])
    if code == 1 or "internal error" in err.getvalue():
        return "internal"
    return "valid" if code in (0, 3, 4) else "refused"


# --- running -------------------------------------------------------------------------------


def run(target: str, cases: int, *, engine: str = "hypothesis") -> Outcomes:
    """Run ``cases`` cases of one target; the outcomes.

    With ``engine="atheris"`` libFuzzer drives the cases and ends the process after the last one,
    having printed the target's row (``_atheris``).
    """
    outcomes = Outcomes()
    config = settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    if target == "stack":

        @config
        @given(mutants())
        def case(data: Any) -> None:
            outcomes.add(stack_case(data), lambda: repr(data)[:2000])

    elif target == "lock":

        @config
        @given(lock_mutants())
        def case(raw: bytes) -> None:
            outcomes.add(lock_case(raw), lambda: raw[:2000].decode("utf-8", "replace"))

    elif target == "image-lock":

        @config
        @given(image_lock_mutants())
        def case(raw: bytes) -> None:
            outcomes.add(image_lock_case(raw), lambda: raw[:2000].decode("utf-8", "replace"))

    elif target == "stack+lock":

        @config
        @given(changed_stacks())
        def case(data: dict[str, Any]) -> None:
            outcomes.add(stack_lock_case(data), lambda: json.dumps(data)[:2000])

    else:

        @config
        @given(
            st.sampled_from(COMMANDS),
            mutants().map(lambda d: json.dumps(d, default=str).encode()),
            st.none() | lock_mutants() | st.just(LOCK_TEXT.encode()),
        )
        def case(command: list[str], stack: bytes, lock: bytes | None) -> None:
            outcomes.add(
                cli_case(command, stack, lock), lambda: f"{command} {stack[:500]!r} {lock and lock[:500]!r}"
            )

    if engine == "atheris":
        _atheris(target, cases, case, outcomes)
    case()
    return outcomes


HEADER = f"{'target':<12} {'cases':>7} {'valid':>7} {'refused':>8} {'internal':>9} {'seconds':>8}"


def _row(target: str, outcomes: Outcomes, seconds: float) -> str:
    counts = outcomes.counts
    return (
        f"{target:<12} {sum(counts.values()):>7} {counts['valid']:>7} {counts['refused']:>8} "
        f"{counts['internal']:>9} {seconds:>8.1f}"
    )


def _atheris(target: str, cases: int, case: Any, outcomes: Outcomes) -> None:
    """Let libFuzzer drive ``case`` for ``cases`` runs; print the row and end the process after the last."""
    import atheris  # noqa: PLC0415 - optional: only this engine needs it

    started = time.perf_counter()

    def one(data: bytes) -> None:
        case.hypothesis.fuzz_one_input(data)
        if sum(outcomes.counts.values()) == cases:
            print(_row(target, outcomes, time.perf_counter() - started), flush=True)
            for evidence in outcomes.internal:
                print(f"{target}: internal error on: {evidence}", file=sys.stderr, flush=True)
            os._exit(1 if outcomes.internal else 0)

    # Coverage: every Python function loaded by now (modelplane, pydantic, the YAML reader) reports
    # the branches it takes to libFuzzer.
    atheris.instrument_all()
    # libFuzzer's own flags: a fixed seed for a repeatable run, quiet, and enough runs that the
    # count of cases (inputs Hypothesis accepts as choices) reaches ``cases``.
    atheris.Setup([sys.argv[0], "-seed=1", "-print_final_stats=0", f"-runs={cases * 20}"], one)
    atheris.Fuzz()
    print(_row(target, outcomes, time.perf_counter() - started), flush=True)
    os._exit(1 if outcomes.internal else 0)


TARGETS = ("lock", "image-lock", "stack+lock", "stack", "cli")


def main_(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per target (default 10,000)")
    parser.add_argument("--only", choices=TARGETS, action="append", help="run only these targets")
    parser.add_argument(
        "--engine",
        choices=("hypothesis", "atheris"),
        default="hypothesis",
        help="hypothesis (default) or atheris: coverage-guided, one process per target",
    )
    ns = parser.parse_args(argv)
    if ns.engine == "atheris":
        return _each_in_a_process(ns.only or TARGETS, ns.cases)
    failed = False
    print(HEADER, flush=True)
    for target in ns.only or TARGETS:
        started = time.perf_counter()
        outcomes = run(target, ns.cases)
        print(_row(target, outcomes, time.perf_counter() - started), flush=True)
        for evidence in outcomes.internal:
            failed = True
            print(f"{target}: internal error on: {evidence}", file=sys.stderr)
    return 1 if failed else 0


def _each_in_a_process(targets: tuple[str, ...] | list[str], cases: int) -> int:
    """Run each target under atheris in a child process (libFuzzer exits its process when done)."""
    try:
        import atheris  # noqa: F401, PLC0415 - optional: only this engine needs it
    except ImportError:
        print(
            "atheris is not installed: pip install atheris (wheels exist for Linux x86_64)", file=sys.stderr
        )
        return 2
    print(HEADER, flush=True)
    failed = False
    for target in targets:
        code = f"import sys; sys.argv[0] = {__file__!r}; import runpy; fuzz = runpy.run_path({__file__!r}); "
        code += f"fuzz['run']({target!r}, {cases}, engine='atheris')"
        done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
        rows = [line for line in done.stdout.splitlines() if line.startswith(target + " ")]
        print("\n".join(rows), flush=True)
        lines = [line for line in done.stderr.splitlines() if "internal error on:" in line]
        for line in lines:
            print(line, file=sys.stderr)
        if done.returncode != 0:
            failed = True
            if not lines:
                print(
                    f"{target}: atheris ended with exit {done.returncode}: {done.stderr[-2000:]}",
                    file=sys.stderr,
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main_())
