"""`gateproof load --workers N`: locust's own master/worker mode on loopback, merged exactly.

An open loop's schedule is a pure function of its seed, shared out among the workers, so a run
on one master with two workers sends exactly the requests a single process sends; the merged
counts, histograms and request log say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateproof.cli.launch import LocalStack
from gateproof.load import LoadResult
from gateproof.load._exit_codes import EXIT_INVALID_RUN, EXIT_OK

from .conftest import run_load_cli

KEY_ENV = "GATEPROOF_TEST_DISTRIBUTED_KEY"


def _run(monkeypatch: pytest.MonkeyPatch, stack: LocalStack, out: Path, workers: int) -> LoadResult:
    args = (
        "--scenario",
        "stream",
        "--tokens",
        "6",
        "--ttft-ms",
        "10",
        "--itl-ms",
        "2",
        "--arrival",
        "poisson",
    )
    code, result = run_load_cli(
        monkeypatch,
        out,
        stack.base_url,
        stack.api_key,
        *args,
        *("--rate", "20", "--seed", "7", "--duration", "3s", "--workers", str(workers), "--no-plot"),
        key_env=KEY_ENV,
    )
    assert result is not None, code
    # on a busy machine the generator may fall behind (and says so); the counts hold either way
    assert code == EXIT_OK or (code == EXIT_INVALID_RUN and "fell behind" in result.invalid), result.invalid
    return result


def test_two_workers_send_and_count_what_one_process_does(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    single = _run(monkeypatch, stack, tmp_path / "single", 1)
    split = _run(monkeypatch, stack, tmp_path / "workers", 2)
    assert split.workers == 2 and single.workers == 1
    assert single.arrivals is not None and split.arrivals is not None
    assert split.arrivals.scheduled == single.arrivals.scheduled > 30
    assert split.requests == single.requests == single.arrivals.scheduled
    assert split.failures == single.failures == 0
    # the HDR histograms of both workers merged exactly: one TTFT per request, one gap per chunk gap
    for metric in ("ttft", "e2e", "inter_chunk"):
        assert split.latencies[metric].count == single.latencies[metric].count, metric
    assert sum(point.requests for point in split.timeline) == split.requests
    # one request log for the run, each scheduled request in it once
    records = [
        json.loads(line) for line in (tmp_path / "workers" / "requests.jsonl").read_text().splitlines()
    ]
    assert sorted(r["index"] for r in records) == list(range(split.requests))
    assert not list((tmp_path / "workers").glob("*.worker-*"))
    # locust's master saw both workers' requests too
    assert "--master" in split.settings["locust_command"]
