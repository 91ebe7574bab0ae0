"""`gateproof load --scenario compression` end to end: locust, the reference gateway, the mock provider.

The figures asserted are relations the run must hold whatever the machine's speed (every cell
measured, the server's time within what the client saw, a real reduction), never timings
against fixed thresholds: those belong to benchmarks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gateproof.cli import main as gateproof_main
from gateproof.cli.launch import LocalStack
from gateproof.load import LoadResult

SIZES = ("1k", "8k")


def _run(
    monkeypatch: pytest.MonkeyPatch, out: Path, stack: LocalStack, *extra: str
) -> tuple[int, LoadResult]:
    monkeypatch.setenv("GATEPROOF_TEST_LOAD_KEY", stack.api_key)
    code = gateproof_main(
        [
            "load", "--base-url", stack.base_url, "--api-key-env", "GATEPROOF_TEST_LOAD_KEY", "--out", str(out),
            "--scenario", "compression", "--transcript-sizes", ",".join(SIZES), "--users", "2",
            "--spawn-rate", "2", "--duration", "3s", "--stop-timeout", "5s", "--ttft-ms", "5", "--itl-ms", "0",
            "--tokens", "4", *extra,
        ]
    )  # fmt: skip
    return code, LoadResult.from_dict(json.loads((out / "load.json").read_text()))


def test_compression_run_records_server_time_beside_client_latency(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "compression"
    code, result = _run(monkeypatch, out, stack)
    printed = capsys.readouterr().out

    assert code == 0, printed
    assert result.scenario == "compression" and result.failures == 0, result.failure_reasons
    section = result.compression
    assert section is not None and not section.attached
    assert section.sizes == list(SIZES) and section.endpoints == ["chat", "compress"]
    assert section.requests == result.requests and section.failures == 0
    cells = {(cell.endpoint, cell.size): cell for cell in section.cells}
    assert set(cells) == {(endpoint, size) for endpoint in ("chat", "compress") for size in SIZES}
    assert sum(cell.count for cell in cells.values()) == result.requests
    for (endpoint, size), cell in cells.items():
        assert cell.count > 0
        assert cell.time_ms.count == cell.latency.count == cell.gap.count == cell.count
        # every request's server time was within its client latency (D32 rounds both up to whole ms)
        assert cell.time_ms.max <= math.ceil(cell.latency.max) + 0.01, (endpoint, size)
        assert cell.time_ms.p50 <= math.ceil(cell.latency.p50) + 0.01, (endpoint, size)
        assert 0 <= cell.gap.min <= cell.latency.max
        assert 0 <= cell.mean_reduction <= 100 and cell.mean_saved_tokens < cell.original_tokens
    # the bigger transcript is mostly tool output: compression removes a real share of it
    largest = SIZES[-1]
    assert cells["chat", largest].mean_reduction > 0 and cells["compress", largest].mean_reduction > 0
    # both endpoints compress the same transcript the same way (D33)
    for size in SIZES:
        assert cells["chat", size].original_tokens == cells["compress", size].original_tokens
        assert cells["chat", size].mean_saved_tokens == cells["compress", size].mean_saved_tokens
    # the bigger transcript is the bigger prompt, and saves more tokens
    assert cells["chat", "8k"].original_tokens > cells["chat", "1k"].original_tokens
    assert cells["compress", "8k"].mean_saved_tokens > cells["compress", "1k"].mean_saved_tokens
    assert result.settings["transcript_sizes"] == ",".join(SIZES)
    # the plot and the printed summary carry the section too
    assert (out / "compression.png").read_bytes().startswith(b"\x89PNG")
    assert result.artifacts["plot_compression"] == "compression.png"
    assert printed.count("compression chat") == len(SIZES) and printed.count("compression compress") == len(
        SIZES
    )
    # locust's own statistics name each cell
    stats = (out / "locust_stats.csv").read_text()
    assert all(f"{endpoint} {size}" in stats for endpoint in ("chat", "compress") for size in SIZES)


def test_unknown_transcript_size_is_bad_input(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEPROOF_TEST_LOAD_KEY", stack.api_key)
    code = gateproof_main(
        [
            "load", "--base-url", stack.base_url, "--api-key-env", "GATEPROOF_TEST_LOAD_KEY",
            "--out", str(tmp_path / "bad"), "--scenario", "compression", "--transcript-sizes", "1k,3k",
        ]
    )  # fmt: skip

    assert code == 2
    assert "unknown transcript size 3k" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "load.json").exists()
