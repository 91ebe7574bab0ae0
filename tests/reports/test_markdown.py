"""The Markdown summary: verdict first, then failures with reasons, layer counts, load figures."""

from __future__ import annotations

import dataclasses

from gateproof.contract.results import Outcome, RunResult
from gateproof.load.results import LoadResult
from gateproof.reports import render_markdown


def test_verdict_line_then_failures_then_layers_then_load(run: RunResult, load: LoadResult) -> None:
    text = render_markdown(run, load, report_path="out/index.html")
    lines = text.splitlines()

    assert lines[0] == "## ❌ gateproof: FAIL"
    verdict = lines[2]
    for part in (
        "**FAIL**",
        "`reference`",
        "`edgee`",
        "5 passed",
        "3 failed (1 advisory)",
        "1 error",
        "1 not applicable",
    ):
        assert part in verdict
    positions = [
        text.index(h) for h in ("### Failures", "### By layer", "### Load", "Full report: `out/index.html`")
    ]
    assert positions == sorted(positions)


def test_failures_table_lists_failed_then_advisory_then_errors_with_reasons(run: RunResult) -> None:
    text = render_markdown(run)
    table = text.split("### Failures", 1)[1].split("###", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]

    assert rows == [
        "| `property.response_schema_conformance` | generated #3 [POST /v1/chat/completions] | failed | "
        "response body does not match ChatCompletion: 'id' is a required property |",
        "| `scenario.error_envelope_conforms` | bad_model_id [POST /v1/chat/completions] | failed | "
        "error.code is null, expected 'bad_model_id' |",
        "| `scenario.provider_header_present` | basic_chat [POST /v1/chat/completions] | failed (advisory) | "
        "X-Edgee-Provider header missing |",
        "| `stream.usage_on_final_chunk` | stream_with_usage [POST /v1/chat/completions] | error | "
        "read timed out after 30 s while waiting for the next chunk |",
    ]
    assert "| scenario | 1 | 2 | 0 | 1 |" in text


def test_load_figures_are_all_there(load: LoadResult) -> None:
    text = render_markdown(None, load)

    assert text.startswith("## 📈 gateproof load: `chat_stream`")
    header = next(line for line in text.splitlines() if line.startswith("| scenario | users |"))
    for label in (
        "req/s",
        "TTFT p50",
        "TTFT p99",
        "inter-chunk p50",
        "inter-chunk p99",
        "e2e p50",
        "e2e p99",
        "output tok/s",
        "failures",
    ):
        assert f"| {label} |" in header + " |"
    row = next(line for line in text.splitlines() if line.startswith("| `chat_stream`"))
    assert row == (
        "| `chat_stream` | 32 | 42.3 | 92.0 ms | 248 ms | 4.20 ms | 11.3 ms | 430 ms | 1.16 s | 2,150.0 | "
        "4 of 1,268 (0.32%) |"
    )
    assert "- 3 x stream error event: provider_error" in text


def test_passing_run_has_no_failure_table(run: RunResult) -> None:
    run.results = [r for r in run.results if r.outcome is Outcome.PASSED]
    text = render_markdown(run)

    assert text.startswith("## ✅ gateproof: PASS")
    assert "### Failures" not in text
    assert "5 passed, 0 failed, 0 errors, 0 not applicable" in text


def test_unreachable_run_says_so(unreachable_run: RunResult) -> None:
    text = render_markdown(unreachable_run)

    assert text.startswith("## ❌ gateproof: FAIL")
    assert "> **Target unreachable:** connection refused on http://127.0.0.1:9" in text


def test_table_cells_cannot_break_the_table(run: RunResult) -> None:
    run.results[2] = dataclasses.replace(run.results[2], reason="a | b\nc")
    text = render_markdown(run)

    assert "| a \\| b c |" in text
