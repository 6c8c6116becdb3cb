"""A short run of the fuzzer (``bench/fuzz.py``; ``make fuzz`` runs 10,000 cases per target).

Every stack, lock and command line the fuzzer makes ends valid or refused with well-formed
problem lines; none ends in an internal error. The run is derandomized, so it is the same run
every time, and it checks that every target reaches both outcomes (a fuzzer that only ever
produces refusals tests the refusals alone).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "bench" / "fuzz.py"


def _fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modelplane_fuzz", FUZZ)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CASES = {"stack": 150, "lock": 300, "image-lock": 300, "stack+lock": 150, "cli": 60}


@pytest.mark.parametrize("target", list(CASES))
def test_fuzzing_finds_no_internal_error(target: str) -> None:
    outcomes = _fuzz().run(target, CASES[target])
    assert outcomes.internal == []
    assert outcomes.counts["internal"] == 0
    assert sum(outcomes.counts.values()) == CASES[target]
    assert outcomes.counts["valid"] > 0 and outcomes.counts["refused"] > 0, dict(outcomes.counts)
