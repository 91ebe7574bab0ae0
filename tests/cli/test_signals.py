"""Ctrl-C and SIGTERM at every phase of `gateproof run`: no process left behind, never a pass.

The mock, the gateway and locust each run in their own process group, so a signal sent to
`gateproof run` never reaches them: only its cleanup does. Each test starts a real `gateproof
run` with a random marker in its environment (inherited by every process it starts), waits
for the progress line of one phase, sends the signal, and then scans /proc for any process
still carrying the marker.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateproof.cli.launch import LocalStack

MARKER_ENV = "GATEPROOF_TEST_SIGNAL_MARKER"

#: phase -> (the stderr line that says it is under way, extra `gateproof run` options)
PHASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "starting servers": (r"starting the mock provider", ()),
    "smoke": (r"smoke: one streamed request", ()),
    "scenario layer": (r"scenario \d+/\d+: ", ()),
    # a schemathesis scenario has finished: its engine is running, not just being imported
    "property layer": (r"property: \S", ("--max-examples", "60")),
    # locust reported progress: it is running
    "load": (r"load: \d+ s of", ()),
}


def _marked_processes(marker: str, exclude: int) -> list[int]:
    """Pids whose environment holds the marker (our child `gateproof run` excluded)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


class _Reader:
    """Collects a pipe's text in a thread, so the child never blocks on a full pipe."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float) -> bool:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(regex.search(line) for line in list(self.lines)):
                return True
            time.sleep(0.05)
        return False

    @property
    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", list(PHASES))
def test_a_signal_at_any_phase_stops_every_child_and_never_passes(
    phase: str, signum: signal.Signals, tmp_path: Path
) -> None:
    marker = secrets.token_hex(8)
    pattern, extra = PHASES[phase]
    process = subprocess.Popen(
        [sys.executable, "-m", "gateproof.cli", "run", "--load-duration", "20s", "--users", "2",
         "--max-examples", "5", *extra],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, MARKER_ENV: marker},
    )  # fmt: skip
    stdout, stderr = _Reader(process.stdout), _Reader(process.stderr)
    try:
        assert stderr.wait_for(pattern, timeout=150), f"never reached {phase}:\n{stderr.text[-3000:]}"
        if phase == "starting servers":
            # a server process exists: the signal lands while `run` waits for it to be ready
            deadline = time.monotonic() + 30
            while not _marked_processes(marker, process.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        process.send_signal(signum)
        process.wait(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    out, err = stdout.text, stderr.text
    expected = 130 if signum == signal.SIGINT else 143
    assert process.returncode == expected, f"{phase}: exit {process.returncode}\n{err[-3000:]}"
    assert "PASS" not in out, out[-2000:]
    assert "Traceback" not in err, err[-3000:]
    deadline = time.monotonic() + 10
    while (left := _marked_processes(marker, process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"{phase}: {len(left)} processes left running: {left}"
    [run_dir] = list((tmp_path / "reports").glob("run-*"))
    results = json.loads((run_dir / "results.json").read_text())
    assert results["contract"]["interrupted"] is True
    assert results["contract"]["passed"] is False
    assert "Interrupted" in (run_dir / "summary.md").read_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_gateproof_load_stops_locust(
    stack: LocalStack, signum: signal.Signals, tmp_path: Path
) -> None:
    marker = secrets.token_hex(8)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateproof.cli", "load", "--base-url", stack.base_url, "--users", "2",
         "--duration", "30s", "--no-plot", "--out", str(tmp_path / "load")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, MARKER_ENV: marker, "GATEPROOF_API_KEY": stack.api_key},
    )  # fmt: skip
    stdout, stderr = _Reader(process.stdout), _Reader(process.stderr)
    try:
        assert stderr.wait_for(r"load: \d+ s of", timeout=90), stderr.text[-3000:]
        assert _marked_processes(marker, process.pid), "locust is not running"
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == (130 if signum == signal.SIGINT else 143), stderr.text[-3000:]
    assert "Traceback" not in stderr.text, stderr.text[-3000:]
    assert stdout.text is not None
    deadline = time.monotonic() + 10
    while (left := _marked_processes(marker, process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"{len(left)} locust processes left running: {left}"
