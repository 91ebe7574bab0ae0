"""`gateproof load` in an open loop: a seeded schedule, latencies from the intended send time, SLO
gates with their exit codes, late sends marking a run invalid, the capacity search, the request log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateproof.cli.launch import UPSTREAM_ROLE, LocalStack
from gateproof.load import LoadOptions, LoadResult
from gateproof.load._calibration import calibrate
from gateproof.load._exit_codes import (
    EXIT_INVALID_RUN,
    EXIT_OK,
    EXIT_SLO_BREACHED,
    EXIT_USAGE,
)
from gateproof.load._records import RECORD_FIELDS

from .conftest import run_load_cli

#: timing: an open-loop run keeps its schedule only on a machine that is not starved (a run
#: that falls behind is rightly declared invalid), so the module runs alone (see the Makefile)
pytestmark = pytest.mark.timing

KEY_ENV = "GATEPROOF_TEST_OPEN_LOOP_KEY"


def _load(
    monkeypatch: pytest.MonkeyPatch, stack: LocalStack, out: Path, *extra: str
) -> tuple[int, LoadResult | None]:
    timing = ("--scenario", "chat", "--tokens", "8", "--ttft-ms", "5", "--itl-ms", "1", "--no-plot")
    return run_load_cli(monkeypatch, out, stack.base_url, stack.api_key, *timing, *extra, key_env=KEY_ENV)


def _slo_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_open_loop_meets_its_slos_and_keeps_its_schedule(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slos = _slo_file(
        tmp_path / "slo.yaml",
        "slos:\n  - metric: error_rate\n    max: 0.01\n  - metric: e2e.p99\n    max: 5000\n"
        "  - metric: late_send_ratio\n    max: 0.5\n",
    )
    out = tmp_path / "met"
    code, result = _load(
        monkeypatch,
        stack,
        out,
        "--arrival",
        "constant",
        "--rate",
        "20",
        "--duration",
        "3s",
        "--slo",
        str(slos),
    )
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    assert result is not None and result.arrivals is not None
    # a constant schedule of 20 req/s for 3 s is exactly 60 requests, every one sent and counted
    assert result.arrivals.mode == "constant" and result.arrivals.scheduled == 60
    assert result.requests == result.arrivals.sent == 60 and result.failures == 0
    assert result.arrivals.lag is not None and result.arrivals.lag.count == 60
    assert [o.met for o in result.slos] == [True, True, True]
    assert result.slos[1].metric == "e2e.p99" and result.slos[1].value == result.latencies["e2e"].p99
    assert "SLO met: e2e.p99 <= 5000" in printed
    lines = (out / "requests.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 60 and sorted(r["index"] for r in records) == list(range(60))
    assert all(tuple(r) == RECORD_FIELDS for r in records)
    # latencies count from the intended send time: the lag is inside every e2e
    assert all(r["scheduled_at"] is not None and r["e2e_ms"] >= r["lag_ms"] for r in records)
    assert stack.api_key not in (out / "requests.jsonl").read_text()


def test_an_impossibly_tight_slo_exits_with_its_own_code(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slos = _slo_file(
        tmp_path / "slo.yaml", "slos:\n  - metric: e2e.p50\n    max: 0.001\n    name: faster than light\n"
    )
    code, result = _load(
        monkeypatch,
        stack,
        tmp_path / "tight",
        "--arrival",
        "poisson",
        "--rate",
        "20",
        "--duration",
        "2s",
        "--slo",
        str(slos),
    )
    printed = capsys.readouterr().out
    assert code == EXIT_SLO_BREACHED, printed
    assert result is not None and result.failures == 0
    (outcome,) = result.slos
    assert not outcome.met and outcome.value is not None and outcome.value > 0.001
    assert "SLO BREACHED: faster than light" in printed


def test_a_generator_that_falls_behind_marks_the_run_invalid(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One request in flight at most, each taking 200 ms, 50 scheduled per second: nearly every send
    waits for the one before it, so the run measured the generator's queue, not the target."""
    code, result = _load(
        monkeypatch,
        stack,
        tmp_path / "behind",
        "--arrival",
        "constant",
        "--rate",
        "50",
        "--duration",
        "2s",
        "--max-in-flight",
        "1",
        "--ttft-ms",
        "200",
    )
    printed = capsys.readouterr().out
    assert code == EXIT_INVALID_RUN, printed
    assert result is not None and result.arrivals is not None
    assert result.arrivals.late_sends > result.requests // 2
    assert "fell behind its schedule" in result.invalid and "INVALID RUN" in printed
    # the wait is in the latency: counted from the intended send, e2e grows along the schedule
    assert result.latencies["e2e"].max > 1000.0


def test_capacity_search_reports_the_highest_rate_that_met_every_slo(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slos = _slo_file(tmp_path / "slo.yaml", "slos:\n  - metric: error_rate\n    max: 0.01\n")
    out = tmp_path / "capacity"
    code, result = _load(
        monkeypatch,
        stack,
        out,
        "--arrival",
        "constant",
        "--capacity",
        "5,10",
        "--step-duration",
        "2s",
        "--slo",
        str(slos),
    )
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    assert result is not None and result.capacity is not None
    assert [step.rate for step in result.capacity.steps] == [5.0, 10.0]
    assert all(step.met for step in result.capacity.steps)
    assert result.capacity.capacity_rate == 10.0 and result.capacity.goodput > 0
    assert (out / "step-5" / "load.json").is_file() and (out / "step-10" / "load.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "10"], "give --arrival constant or poisson"),
        (["--arrival", "poisson"], "needs --rate"),
        (["--arrival", "constant", "--capacity", "5,10"], "--capacity needs --slo"),
        (["--arrival", "constant", "--rate", "0"], "positive"),
        (["--baseline-url", "http://192.0.2.1/v1"], "only targets loopback"),
    ],
)
def test_bad_open_loop_input_is_refused_before_anything_is_sent(
    stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, result = _load(monkeypatch, stack, tmp_path / "bad", "--duration", "1s", *args)
    assert code == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert result is None


def test_a_broken_slo_file_is_bad_input(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slos = _slo_file(tmp_path / "slo.yaml", "slos:\n  - metric: e2e.p42\n    max: 1\n")
    code, _ = _load(monkeypatch, stack, tmp_path / "bad", "--slo", str(slos))
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "slo.yaml" in err and "e2e.p42" in err


def test_a_workload_file_mixes_scenarios_on_the_schedule(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = tmp_path / "workload.yaml"
    workload.write_text(
        "scenarios: {chat: 1, stream: 2, tools: 1}\n"
        "prompt_tokens: {uniform: [40, 400]}\n"
        "output_tokens: {choices: [4, 12]}\n"
        "models: {default: openai/gpt-4o, stream: [openai/gpt-4o, anthropic/claude-haiku-4-5]}\n",
        encoding="utf-8",
    )
    out = tmp_path / "mix"
    code, result = _load(
        monkeypatch, stack, out, "--workload", str(workload), "--arrival", "poisson", "--rate", "20",
        "--duration", "3s", "--seed", "3",
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    assert result is not None and result.scenario == "workload" and result.failures == 0
    assert result.settings["workload"] == str(workload)
    rows = {line.split(",")[1] for line in (out / "locust_stats.csv").read_text().splitlines()[1:]}
    # each planned call is named for what it is in locust's statistics
    assert {"chat", "chat stream", "tools"} <= rows
    # streams were timed (TTFT) and plain answers were not
    assert 0 < result.latencies["ttft"].count < result.requests == result.arrivals.scheduled  # type: ignore[union-attr]


def test_calibration_measures_the_generator_against_the_mock_first(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEPROOF_TEST_MOCK_KEY", stack.keys[UPSTREAM_ROLE])
    code, result = _load(
        monkeypatch, stack, tmp_path / "calibrated", "--arrival", "constant", "--rate", "10", "--duration", "2s",
        "--calibration-url", stack.mock.url + "/v1", "--baseline-model", "gpt-4o",
        "--baseline-api-key-env", "GATEPROOF_TEST_MOCK_KEY",
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    assert result is not None and result.calibration is not None
    calibration = result.calibration
    # the mock answered the probe as fast as the generator could ask: far more than the 10 req/s run
    assert calibration.valid and calibration.max_rate > 20 and calibration.offered_rate == 10
    assert "calibration: the generator reached" in printed
    # a rate no generator on one machine reaches (the mock answers a repeated request from memory:
    # a quiet machine measured 11,670 req/s) is beyond the safe fraction of it: the run is invalid
    options = LoadOptions(
        base_url=stack.base_url,
        out_dir=tmp_path / "strict",
        scenario="chat",
        arrival="constant",
        rate=10_000_000,
        duration_s=2,
        api_key_env=KEY_ENV,
    )
    strict = calibrate(
        options,
        url=stack.mock.url + "/v1",
        model="gpt-4o",
        api_key_env="GATEPROOF_TEST_MOCK_KEY",
        seconds=1.0,
    )
    assert not strict.valid and "add --workers or lower --rate" in strict.detail
