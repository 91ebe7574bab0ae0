"""A server started by ``start_server`` lives as long as its launcher, and no longer.

The servers run in sessions of their own, so no signal aimed at the launcher reaches them;
when the launcher dies without stopping them (SIGKILL, a cancelled job), each one sees it has
been adopted by another parent and stops by itself.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from gateproof.openapi import HEALTH_PATH

#: start one mock through the launcher, say where it is, then wait to be killed
LAUNCHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gateproof.cli.launch import start_server
    server = start_server("mock", ["mock", "--no-auth"], log_dir=Path(sys.argv[1]))
    print(server.process.pid, server.url, flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_server_outlives_nothing_but_its_launcher(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert launcher.stdout is not None
        pid_text, url = launcher.stdout.readline().split()
        pid = int(pid_text)
        time.sleep(2.0)  # several of the server's looks at its parent
        assert _alive(pid), "the server stopped while its launcher was still running"
        assert httpx.get(url + HEALTH_PATH, timeout=5.0, trust_env=False).status_code == 200
    finally:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
    deadline = time.monotonic() + 15.0
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the server is still running after its launcher was killed"
