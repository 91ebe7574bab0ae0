"""`gateproof load` end to end: locust in a child process against real servers on loopback."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gateproof.cli import main as gateproof_main
from gateproof.cli.launch import LocalServer, LocalStack, free_port
from gateproof.load import LoadResult
from gateproof.load import _runner as runner_module

from .conftest import run_load_cli

TTFT_MS = 50
ITL_MS = 10
TOKENS = 16


def _run(
    monkeypatch: pytest.MonkeyPatch, out: Path, base_url: str, key: str, *extra: str
) -> tuple[int, LoadResult | None]:
    timing = ("--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS), "--tokens", str(TOKENS))
    return run_load_cli(monkeypatch, out, base_url, key, *timing, *extra)


def _locust_rows(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (out / "locust_stats.csv").open() as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def test_streaming_run_through_the_gateway(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "stream"
    code, result = _run(
        monkeypatch,
        out,
        stack.base_url,
        stack.api_key,
        "--users",
        "5",
        "--spawn-rate",
        "5",
        "--duration",
        "3s",
    )
    assert code == 0, capsys.readouterr()
    assert result is not None
    assert result.requests > 10 and result.failures == 0 and result.failure_reasons == {}
    assert result.responses == result.requests
    ttft = result.latencies["ttft"]
    assert TTFT_MS <= ttft.p50 < TTFT_MS + 200
    assert ttft.count == result.requests
    gaps = result.latencies["inter_chunk"]
    assert abs(gaps.p50 - ITL_MS) < 3.0
    assert gaps.count == result.requests * (TOKENS - 1)
    e2e = result.latencies["e2e"]
    assert e2e.p50 >= TTFT_MS + (TOKENS - 1) * ITL_MS
    assert result.latencies["ttfb"].p50 <= ttft.p50
    assert result.output_tokens == result.requests * TOKENS
    assert result.output_tokens_per_s > 0 and result.requests_per_s > 0
    assert sum(count for _, count in result.ttft_histogram) == ttft.count
    assert result.timeline and sum(point.requests for point in result.timeline) == result.requests
    assert "HDR" in result.histogram
    assert f"tokens={TOKENS}" in result.settings["directive"]
    for written in out.iterdir():
        assert stack.api_key.encode() not in written.read_bytes(), written.name
    # locust's own statistics count the real requests only: the stream timings stay in gateproof's
    # histograms (they used to be fired as request events: 16 "requests" per streamed request here)
    rows = _locust_rows(out)
    assert set(rows) == {("POST", "chat stream"), ("", "Aggregated")}
    assert int(rows[("POST", "chat stream")]["Request Count"]) == result.requests
    assert int(rows[("", "Aggregated")]["Request Count"]) == result.requests
    assert int(rows[("", "Aggregated")]["Failure Count"]) == result.failures == 0
    for name in (
        "locust_stats",
        "locust_stats_history",
        "plot_ttft",
        "plot_timeline",
        "measurements",
        "result",
    ):
        assert (out / result.artifacts[name]).is_file()
    for plot in ("ttft.png", "timeline.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "req/s" in printed and "TTFT" in printed and "failures: 0" in printed


def test_non_streaming_run(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "chat"
    code, result = _run(
        monkeypatch,
        out,
        stack.base_url,
        stack.api_key,
        "--scenario",
        "chat",
        "--users",
        "3",
        "--duration",
        "2s",
    )
    assert code == 0, capsys.readouterr()
    assert result is not None and result.scenario == "chat"
    assert result.requests > 0 and result.failures == 0
    assert set(result.latencies) == {"ttfb", "e2e"}
    assert result.output_tokens == result.requests * TOKENS
    assert result.ttft_histogram == []
    rows = _locust_rows(out)
    assert set(rows) == {("POST", "chat"), ("", "Aggregated")}
    assert int(rows[("", "Aggregated")]["Request Count"]) == result.requests


@pytest.mark.parametrize(
    ("fault", "rule"), [("no_done", "done_terminates_stream"), ("mid_stream_error", "no_error_event")]
)
def test_stream_faults_are_failures_named_by_rule(
    mock_server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fault: str, rule: str
) -> None:
    out = tmp_path / fault
    code, result = _run(
        monkeypatch,
        out,
        mock_server.url + "/v1",
        "any-key",
        "--users",
        "2",
        "--duration",
        "1s",
        "--directive",
        f"fault={fault}",
        "--directive",
        f"cid=load-{fault}",
    )
    assert code == 1
    assert result is not None and result.requests > 0
    assert result.failures == result.requests
    assert result.failure_reasons == {rule: result.requests}
    assert result.responses == result.requests
    assert "ttft" not in result.latencies  # failed requests never reach the latency figures
    with (out / "locust_failures.csv").open() as handle:
        assert any(rule in row["Error"] for row in csv.DictReader(handle))
    aggregated = _locust_rows(out)[("", "Aggregated")]
    assert int(aggregated["Request Count"]) == int(aggregated["Failure Count"]) == result.requests


def test_failure_budget_allows_a_faulty_run(
    mock_server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, result = _run(
        monkeypatch,
        tmp_path / "budget",
        mock_server.url + "/v1",
        "any-key",
        "--users",
        "1",
        "--duration",
        "1s",
        "--directive",
        "fault=no_done",
        "--max-failure-ratio",
        "1.0",
        "--no-plot",
    )
    assert code == 0
    assert result is not None and result.failures == result.requests > 0
    assert not [name for name in result.artifacts if name.startswith("plot")]
    assert not list((tmp_path / "budget").glob("*.png"))


def test_non_loopback_target_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("locust must not be started for a non-loopback target")

    monkeypatch.setattr(runner_module.subprocess, "Popen", no_process)
    out = tmp_path / "refused"
    code, result = _run(monkeypatch, out, "http://192.0.2.10:8080/v1", "k", "--duration", "1s")
    assert code == 2
    assert result is None and not out.exists()
    assert "loopback" in capsys.readouterr().err


def test_missing_key_variable_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GATEPROOF_NOT_SET_KEY", raising=False)
    code = gateproof_main(
        [
            "load",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--api-key-env",
            "GATEPROOF_NOT_SET_KEY",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "GATEPROOF_NOT_SET_KEY" in capsys.readouterr().err


def test_unreachable_loopback_port_exits_3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    code, result = _run(
        monkeypatch, tmp_path / "down", f"http://127.0.0.1:{port}/v1", "k", "--users", "1", "--duration", "1s"
    )
    assert code == 3
    assert result is not None and result.responses == 0
    assert result.requests > 0 and result.failures == result.requests
    assert set(result.failure_reasons) == {"connection_refused"}


def test_slow_target_times_out(
    mock_server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, result = _run(
        monkeypatch,
        tmp_path / "slow",
        mock_server.url + "/v1",
        "any-key",
        "--users",
        "1",
        "--duration",
        "1s",
        "--request-timeout",
        "1s",
        "--directive",
        "fault=slow_headers",
        "--directive",
        "fault_ms=3000",
        "--no-plot",
    )
    assert result is not None and result.requests > 0
    assert result.failure_reasons == {"timeout": result.requests}
    assert code == 3  # no status line ever came back


def test_an_overrunning_locust_still_leaves_load_json_with_the_counts(
    mock_server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gateproof.load import LoadError, LoadOptions, run_load

    monkeypatch.setenv("GATEPROOF_TEST_LOAD_KEY", "any-key")
    out = tmp_path / "overrun"
    options = LoadOptions(
        base_url=mock_server.url + "/v1",
        out_dir=out,
        users=2,
        duration_s=4,
        stop_timeout_s=1,
        startup_margin_s=0,  # the hard deadline (5 s) falls before locust can finish
        api_key_env="GATEPROOF_TEST_LOAD_KEY",
        ttft_ms=TTFT_MS,
        itl_ms=ITL_MS,
        tokens=TOKENS,
    )
    with pytest.raises(LoadError) as caught:
        run_load(options)
    assert "did not finish" in str(caught.value) and "Traceback" not in str(caught.value)
    partial = caught.value.result
    assert partial is not None and partial.requests > 0 and partial.error
    written = LoadResult.from_dict(json.loads((out / "load.json").read_text()))
    assert written == partial
    assert written.settings["api_key_env"] == "GATEPROOF_TEST_LOAD_KEY"
