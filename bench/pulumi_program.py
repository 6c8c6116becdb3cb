"""The Pulumi path at scale: the real Pulumi program under Pulumi's mocks, as a whole process.

``python bench/pulumi_program.py STACK_FILE`` runs ``platform/__main__.py`` for the stack as
``pulumi up`` would, with the project's recording mocks (``tests/pulumi_mocks.py``) standing in
for the engine, and prints how many resources it registered. The scale benchmark measures this
process like any command; what it shows is the Python SDK's cost per registration, which the
engine and the provider only add to.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pulumi_mocks import run_program


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python bench/pulumi_program.py STACK_FILE", file=sys.stderr)
        return 2
    recording = run_program("bench", stack_file=Path(argv[0]).resolve())
    print(len(recording.registrations))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
