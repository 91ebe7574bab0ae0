"""`gateproof run` and `gateproof smoke` as a newcomer runs them: real child processes, real files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateproof.cli import main as gateproof_main
from gateproof.cli.launch import KEY_ENVS, UPSTREAM_KEY_ENV, UPSTREAM_ROLE
from gateproof.contract.results import CheckResult, Layer, Outcome, RunResult, Severity
from gateproof.load.results import CompressionResult, LoadResult


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
    assert "PASS: " in completed.stdout and "report: " in completed.stdout
    [run_dir] = list((tmp_path / "reports").glob("run-*"))
    plots = ("ttft.png", "timeline.png", "compression.png")
    for name in ("index.html", "summary.md", "junit.xml", "results.json", *plots):
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert results["contract"]["passed"] is True
    assert results["load"]["requests"] > 0 and results["load"]["failures"] == 0
    # the compression phase: every (endpoint, size) cell measured, shown in the report and the terminal
    compression = results["load"]["compression"]
    assert compression["attached"] is True and compression["failures"] == 0
    assert {(c["endpoint"], c["size"]) for c in compression["cells"]} == {
        (endpoint, size) for endpoint in ("chat", "compress") for size in ("1k", "8k", "32k")
    }
    assert "### Compression under load" in (run_dir / "summary.md").read_text()
    assert 'data-plot="compression"' in (run_dir / "index.html").read_text()
    assert completed.stdout.count("  compression ") == 6
    assert (run_dir / "logs" / "mock.log").is_file() and (run_dir / "logs" / "gateway.log").is_file()


def test_run_against_a_faulty_gateway_fails_naming_the_check(tmp_path: Path) -> None:
    # A missing [DONE] may be a warning (the official SDK tolerates it): --strict fails it either way.
    completed = _gateproof(
        "run", "--no-load", "--max-examples", "5", "--fault", "no_done", "--strict", cwd=tmp_path
    )
    assert completed.returncode == 1
    assert completed.stdout.count("FAIL: ") == 1
    assert "done_terminates_stream" in completed.stdout
    [run_dir] = list((tmp_path / "reports").glob("run-*"))
    summary = (run_dir / "summary.md").read_text()
    assert summary.startswith("## ❌ gateproof: FAIL") and "done_terminates_stream" in summary


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


# --- the verdict of `gateproof run`, with the servers, the suite and locust stood in for ---------------

FAKE_KEYS = {role: f"gp-{role}-fake-key-0123456789" for role in (*KEY_ENVS, UPSTREAM_ROLE)}


@contextlib.contextmanager
def _fake_stack(**kwargs: object) -> Iterator[SimpleNamespace]:
    log_dir = kwargs.get("log_dir")
    yield SimpleNamespace(
        keys=FAKE_KEYS,
        base_url="http://127.0.0.1:9/v1",
        api_key=FAKE_KEYS["default"],
        mock=SimpleNamespace(url="http://127.0.0.1:9"),
        request_log=Path(str(log_dir)) / "gateway-requests.jsonl"
        if log_dir
        else Path("gateway-requests.jsonl"),
    )


def _result(check: str, outcome: Outcome, severity: Severity | None = None) -> CheckResult:
    return CheckResult(
        check=check,
        description=check,
        layer=Layer.SCENARIO,
        profile="edgee",
        target="reference-gateway",
        route="POST /v1/chat/completions",
        scenario="basic_chat",
        outcome=outcome,
        reason="usage.prompt_tokens_details is missing" if outcome is Outcome.FAILED else "",
        severity=severity,
    )


def _load(failures: int = 0) -> LoadResult:
    return LoadResult(
        scenario="stream",
        base_url="http://127.0.0.1:9/v1",
        users=4,
        spawn_rate=4.0,
        duration_s=3.0,
        requests=60,
        failures=failures,
        failure_reasons={"http_502": failures} if failures else {},
        responses=60,
    )


def _compression_load(failures: int = 0) -> LoadResult:
    """What the compression phase's run returns: its own counts in its compression section."""
    reasons = {"compression_missing": failures} if failures else {}
    return LoadResult(
        scenario="compression",
        base_url="http://127.0.0.1:9/v1",
        users=2,
        spawn_rate=2.0,
        duration_s=5.0,
        requests=20,
        failures=failures,
        failure_reasons=reasons,
        responses=20,
        compression=CompressionResult(requests=20, failures=failures, failure_reasons=reasons, users=2),
    )


def _run_main(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    results: list[CheckResult],
    load: LoadResult | Exception,
    *extra: str,
    compression: LoadResult | None = None,
) -> tuple[int, Path]:
    """`gateproof run` through its real main, report writer and verdict; servers, suite and locust faked."""
    import gateproof.cli.run as run_module
    import gateproof.contract
    import gateproof.load

    for env in [*KEY_ENVS.values(), UPSTREAM_KEY_ENV]:
        monkeypatch.delenv(env, raising=False)  # main sets them; monkeypatch restores them

    def run_contract(config: object, progress: object = None) -> RunResult:
        return RunResult(
            run_id="x",
            target="reference-gateway",
            base_url="http://127.0.0.1:9/v1",
            profile="edgee",
            started_at=time.time(),
            finished_at=time.time(),
            results=list(results),
        )

    def run_load(options: object, progress: object = None) -> LoadResult:
        if getattr(options, "scenario", "") == "compression" and not isinstance(load, Exception):
            return compression or _compression_load()
        if isinstance(load, Exception):
            raise load
        return load

    monkeypatch.setattr(run_module, "local_stack", _fake_stack)
    monkeypatch.setattr(run_module, "stream_once", lambda *args, **kwargs: None)
    monkeypatch.setattr(gateproof.contract, "run_contract", run_contract)
    monkeypatch.setattr(gateproof.load, "run_load", run_load)
    code = gateproof_main(["run", "--reports-dir", str(tmp_path), "--load-duration", "3s", *extra])
    [run_dir] = list(tmp_path.glob("run-*"))
    return code, run_dir


def _formats(run_dir: Path) -> tuple[str, str, ET.Element]:
    page = (run_dir / "index.html").read_text()
    match = re.search(r'<div class="verdict-badge" id="verdict">([^<]+)</div>', page)
    assert match is not None
    summary_md = (run_dir / "summary.md").read_text().splitlines()[0]
    return match.group(1), summary_md, ET.fromstring((run_dir / "junit.xml").read_bytes())


def _red(junit: ET.Element) -> bool:
    return int(junit.attrib["failures"]) + int(junit.attrib["errors"]) > 0


def test_a_failing_load_run_fails_everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passing = [_result("content_type_json", Outcome.PASSED)]
    code, run_dir = _run_main(monkeypatch, tmp_path, passing, _load(failures=60))

    assert code == 1
    badge, heading, junit = _formats(run_dir)
    assert badge == "FAIL" and heading == "## ❌ gateproof: FAIL" and _red(junit)
    load_case = next(c for c in junit.iter("testcase") if c.attrib["classname"] == "load.run")
    failure = load_case.find("failure")
    assert failure is not None and failure.attrib["message"] == "60 of 60 requests failed (60 x http_502)"
    printed = capsys.readouterr().out
    assert printed.startswith("FAIL: no failures, 0 skipped, 1 passed")
    assert "  FAIL  load: 60 of 60 requests failed (60 x http_502)" in printed


def test_a_load_run_that_broke_down_with_nothing_counted_fails_everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gateproof.load import LoadError

    passing = [_result("content_type_json", Outcome.PASSED)]
    broke = LoadError("locust exited with code 1 without writing gateproof's measurements", None)
    code, run_dir = _run_main(monkeypatch, tmp_path, passing, broke)

    assert code == 1
    badge, heading, junit = _formats(run_dir)
    assert badge == "FAIL" and heading == "## ❌ gateproof: FAIL" and _red(junit)
    error = next(c for c in junit.iter("testcase") if c.attrib["classname"] == "load.run").find("error")
    assert (
        error is not None and "the load run broke down: locust exited with code 1" in error.attrib["message"]
    )
    assert json.loads((run_dir / "results.json").read_text())["load"]["error"]


def test_a_failing_compression_phase_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passing = [_result("content_type_json", Outcome.PASSED)]
    code, run_dir = _run_main(
        monkeypatch, tmp_path, passing, _load(), compression=_compression_load(failures=4)
    )

    assert code == 1
    badge, heading, junit = _formats(run_dir)
    assert badge == "FAIL" and heading == "## ❌ gateproof: FAIL" and _red(junit)
    expected = "4 of 20 compression requests failed (4 x compression_missing)"
    assert f"  FAIL  load: {expected}" in capsys.readouterr().out
    section = json.loads((run_dir / "results.json").read_text())["load"]["compression"]
    assert section["attached"] is True and section["failures"] == 4
    assert "### Compression under load" in (run_dir / "summary.md").read_text()


def test_warnings_only_pass_with_attention_and_fail_with_strict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = [
        _result("content_type_json", Outcome.PASSED),
        _result("usage_details_present", Outcome.FAILED, Severity.WARNING),
    ]
    code, run_dir = _run_main(monkeypatch, tmp_path / "lenient", results, _load())

    assert code == 0
    badge, heading, junit = _formats(run_dir)
    assert badge == "NEEDS ATTENTION" and heading == "## ⚠️ gateproof: NEEDS ATTENTION" and not _red(junit)
    warning = next(
        c for c in junit.iter("testcase") if c.attrib["classname"] == "scenario.usage_details_present"
    )
    assert (warning.findtext("system-out") or "").startswith("warning (not gating; --strict fails it)")
    printed = capsys.readouterr().out
    assert printed.startswith("NEEDS ATTENTION: 1 root cause (1 warning) in 1 failure")
    assert "  WARNING  usage_details_present (1 failure): usage.prompt_tokens_details is missing" in printed

    code, run_dir = _run_main(monkeypatch, tmp_path / "strict", results, _load(), "--strict")

    assert code == 1
    badge, heading, junit = _formats(run_dir)
    assert badge == "FAIL" and heading == "## ❌ gateproof: FAIL" and _red(junit)
    failure = next(junit.iter("failure"))
    assert failure.attrib["type"] == "warning"
    assert json.loads((run_dir / "results.json").read_text())["contract"]["strict"] is True
    assert capsys.readouterr().out.startswith("FAIL: 1 root cause (1 warning)")
