"""Run a server and end its whole process group when the test run is gone or a deadline passes.

``watchdog.py PARENT_PID DEADLINE_SECONDS -- COMMAND...``. It is started as the leader of a new
process group and runs COMMAND in that group; every half second it checks that PARENT_PID is
still its parent and that the deadline has not passed, and otherwise sends the group SIGTERM,
then SIGKILL. So a server (and the workers it forks) never outlives a test run that was killed
before its fixtures could clean up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

_stopping: list[bool] = []


def _end_group(child: subprocess.Popen[bytes]) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(0, signal.SIGKILL)
    return 1


def main() -> int:
    parent, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
    command = sys.argv[sys.argv.index("--") + 1 :]
    signal.signal(signal.SIGTERM, lambda *_: _stopping.append(True))
    child = subprocess.Popen(command)
    while True:
        code = child.poll()
        if code is not None:
            return code
        if _stopping or os.getppid() != parent or time.monotonic() > deadline:
            return _end_group(child)
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
