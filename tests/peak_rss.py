"""Run a command and write its true peak resident memory (and its descendants') to a file.

``wait4``'s ``ru_maxrss`` for a child also counts the memory the child had *before* ``exec``:
a child forked from a big pytest process starts as a copy of it, so measuring directly from
the test process reports pytest's size, not the command's. This small script is the parent
instead: it is a fresh interpreter (~10 MiB) when it forks, so the figure it reads with
``wait4`` is the command's own (with every child the command reaped).

Usage: ``python peak_rss.py REPORT.json COMMAND...``. The exit code is the command's
(128 + N when signal N ended it); SIGINT and SIGTERM are passed on to the command.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def main() -> int:
    report, command = Path(sys.argv[1]), sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda received, _frame: os.kill(pid, received))
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    report.write_text(json.dumps({"maxrss_kib": usage.ru_maxrss}))
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
