"""Paired load runs: the same schedule sent to a baseline and to the target, matched pair by pair.

Two proofs: the reference gateway's overhead over the mock provider is measured (with intervals),
and a gateway correct in every answer but 1 ms slower (the load fault ``added_latency_1ms``) is
detected against the correct gateway: the interval of its added latency excludes 0 and sits
around 1 ms.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateproof.cli.launch import (
    UPSTREAM_ROLE,
    LocalServer,
    LocalStack,
)
from gateproof.load import LoadResult
from gateproof.load._exit_codes import EXIT_OK
from gateproof.selftest import LOAD_FAULTS

from .conftest import run_load_cli

#: timing: an open-loop run keeps its schedule only on a machine that is not starved (a run
#: that falls behind is rightly declared invalid), so the module runs alone (see the Makefile)
pytestmark = pytest.mark.timing

KEY_ENV = "GATEPROOF_TEST_PAIRED_KEY"
BASELINE_KEY_ENV = "GATEPROOF_TEST_PAIRED_BASELINE_KEY"


@pytest.fixture(scope="module")
def slow_gateway(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The stack's gateway again, on the same mock with the same keys, 1 ms slower on every request."""
    server = stack.start_gateway(
        "gateway-slow", ["--fault", "added_latency_1ms"], log_dir=tmp_path_factory.mktemp("slow-gateway")
    )
    try:
        yield server
    finally:
        server.stop()


def _paired(
    monkeypatch: pytest.MonkeyPatch,
    out: Path,
    target: str,
    key: str,
    baseline: str,
    baseline_key: str,
    *extra: str,
) -> tuple[int, LoadResult]:
    monkeypatch.setenv(BASELINE_KEY_ENV, baseline_key)
    baseline_args = ("--baseline-url", baseline, "--baseline-api-key-env", BASELINE_KEY_ENV)
    timing = ("--tokens", "8", "--ttft-ms", "0", "--itl-ms", "0", "--no-plot")
    code, result = run_load_cli(
        monkeypatch, out, target, key, *baseline_args, *timing, *extra, key_env=KEY_ENV
    )
    assert result is not None, code
    return code, result


def test_the_gateways_overhead_over_the_provider_is_measured_pair_by_pair(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "overhead"
    code, result = _paired(
        monkeypatch,
        out,
        stack.base_url,
        stack.api_key,
        stack.mock.url + "/v1",
        stack.keys[UPSTREAM_ROLE],
        "--baseline-model",
        "gpt-4o",
        "--scenario",
        "stream",
        "--ttft-ms",
        "20",
        "--itl-ms",
        "2",
        "--arrival",
        "poisson",
        "--rate",
        "15",
        "--duration",
        "3s",
        "--no-calibrate",
    )
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    paired = result.paired
    assert paired is not None and paired.unmatched == 0
    # every scheduled request went to both, and both legs were counted apart
    assert paired.pairs == result.requests == paired.baseline_requests > 20
    assert set(paired.metrics) >= {"ttfb", "ttft", "e2e", "inter_chunk"}
    for metric in ("ttft", "e2e"):
        estimate = paired.metrics[metric].p50
        assert estimate.low <= estimate.value <= estimate.high
        assert paired.metrics[metric].count == paired.pairs
    # the provider's TTFT is in both legs: each leg's TTFT is at least the 20 ms it was asked for
    assert paired.baseline["ttft"].min >= 20.0 and result.latencies["ttft"].min >= 20.0
    assert paired.provider_timing == {"tokens": 8, "ttft_ms": 20, "itl_ms": 2}
    assert paired.baseline_cdf["ttft"] and paired.target_cdf["ttft"]
    assert "added e2e" in printed
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    by_cid: dict[str, set[str]] = {}
    for record in records:
        by_cid.setdefault(record["cid"], set()).add(record["leg"])
    assert len(by_cid) == paired.pairs and all(legs == {"baseline", "target"} for legs in by_cid.values())


def test_a_gateway_one_millisecond_slower_is_detected(
    stack: LocalStack,
    slow_gateway: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert LOAD_FAULTS["added_latency_1ms"].measured_by == "paired_overhead"
    code, result = _paired(
        monkeypatch,
        tmp_path / "slow",
        slow_gateway.url + "/v1",
        stack.api_key,
        stack.base_url,
        stack.api_key,
        "--scenario",
        "chat",
        "--users",
        "1",
        "--duration",
        "10s",
    )
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    assert result.paired is not None and result.paired.pairs > 100
    added = result.paired.metrics["e2e"].p50
    # the interval excludes 0: the slower gateway is told apart from the correct one
    assert added.excludes_zero and added.low > 0, added
    assert 0.5 < added.value < 3.0, added
