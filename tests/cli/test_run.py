"""`gateproof run` and `gateproof smoke` as a newcomer runs them: real child processes, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _gateproof(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateproof.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]


def test_run_writes_the_report_and_passes(tmp_path: Path) -> None:
    completed = _gateproof(
        "run", "--load-duration", "3s", "--users", "4", "--max-examples", "5", cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-3000:]
    assert "answer: " in completed.stdout  # the SDK smoke request, printed as it streamed
    assert "PASS:" in completed.stdout and "report: " in completed.stdout
    [run_dir] = list((tmp_path / "reports").glob("run-*"))
    for name in ("index.html", "summary.md", "junit.xml", "results.json", "ttft.png", "timeline.png"):
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert results["contract"]["passed"] is True
    assert results["load"]["requests"] > 0 and results["load"]["failures"] == 0
    assert (run_dir / "logs" / "mock.log").is_file() and (run_dir / "logs" / "gateway.log").is_file()


def test_run_against_a_faulty_gateway_fails_naming_the_check(tmp_path: Path) -> None:
    completed = _gateproof("run", "--no-load", "--max-examples", "5", "--fault", "no_done", cwd=tmp_path)
    assert completed.returncode == 1
    assert "done_terminates_stream" in completed.stdout
    [run_dir] = list((tmp_path / "reports").glob("run-*"))
    assert "done_terminates_stream" in (run_dir / "summary.md").read_text()


def test_run_rejects_a_load_duration_over_30s(tmp_path: Path) -> None:
    completed = _gateproof("run", "--load-duration", "2m", cwd=tmp_path)
    assert completed.returncode == 2
    assert "30s" in completed.stderr


def test_ctrl_c_stops_every_process_it_started(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateproof.cli", "run", "--load-duration", "20s"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_children_of(process.pid)) < 2:
            time.sleep(0.2)
        children = _children_of(process.pid)
        assert len(children) >= 2, "mock and gateway did not start"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr
    time.sleep(0.5)
    for child in children:
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)


def test_smoke_prints_a_streamed_answer(tmp_path: Path) -> None:
    completed = _gateproof("smoke", cwd=tmp_path, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    answer = next(line for line in completed.stdout.splitlines() if line.startswith("answer: "))
    assert len(answer.split()) > 10
    assert "usage:" in completed.stdout


def test_launcher_tells_its_server_from_another_on_the_same_port(tmp_path: Path) -> None:
    from gateproof.cli.launch import PortTaken, start_server

    first = start_server("mock-a", ["mock"], log_dir=tmp_path)
    try:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(PortTaken):
            start_server("mock-b", ["mock"], port=port, log_dir=tmp_path, ready_timeout=10)
        second = start_server("mock-c", ["mock"], log_dir=tmp_path)
        assert second.url != first.url
        second.stop()
    finally:
        first.stop()
