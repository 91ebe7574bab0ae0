"""The Markdown summary: verdict first, then root causes with their failures, layer counts, load figures."""

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
        "3 root causes (2 errors, 1 advisory) in 3 failures, 0 skipped, 1 not evaluated (error), 5 passed, "
        "1 not applicable",
    ):
        assert part in verdict
    # every reason of the verdict, the load run's included
    assert "- ❌ 2 root causes fail the run (2 failures of required checks)" in lines
    assert (
        "- ❌ load: 4 of 1,268 requests failed (3 x stream error event: provider_error, 1 x HTTP 502)"
        in lines
    )
    assert "- ⚠️ 1 advisory check failure: reported, not gating" in lines
    positions = [
        text.index(h)
        for h in (
            "### Root causes",
            "### Not evaluated",
            "### By layer",
            "### Load",
            "Full report: `out/index.html`",
        )
    ]
    assert positions == sorted(positions)


def test_root_causes_list_their_failures_gating_first_then_errors(run: RunResult) -> None:
    text = render_markdown(run)
    causes = text.split("### Root causes", 1)[1].split("###", 1)[0].strip().splitlines()

    assert causes == [
        "- **error** · fails the run · `scenario.error_envelope_conforms`: error.code is null, expected "
        "'bad_model_id' (1 failure)",
        "  - bad_model_id [POST /v1/chat/completions] · error",
        "- **error** · fails the run · `property.response_schema_conformance`: response body does not match "
        "ChatCompletion: 'id' is a required property (1 failure)",
        "  - generated #3 [POST /v1/chat/completions] · error",
        "- **advisory** · `scenario.provider_header_present`: X-Edgee-Provider header missing (1 failure)",
        "  - basic_chat [POST /v1/chat/completions] · error · advisory",
    ]
    table = text.split("### Not evaluated", 1)[1].split("###", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows == [
        "| `stream.usage_on_final_chunk` | stream_with_usage [POST /v1/chat/completions] | error | "
        "read timed out after 30 s while waiting for the next chunk |",
    ]
    assert "| scenario | 1 | 2 | 0 | 0 | 1 |" in text


def test_load_figures_are_all_there(load: LoadResult) -> None:
    text = render_markdown(None, load)

    assert text.startswith("## ❌ gateproof load: FAIL\n")  # 4 requests failed
    assert "**FAIL** · scenario `chat_stream` against `http://127.0.0.1:8080` · 32 users" in text
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
    assert "### Root causes" not in text and "### Not evaluated" not in text
    assert "**PASS** · no failures, 0 skipped, 5 passed · " in text


def test_unreachable_run_says_so(unreachable_run: RunResult) -> None:
    text = render_markdown(unreachable_run)

    assert text.startswith("## ❌ gateproof: FAIL")
    assert "> **Target unreachable:** connection refused on http://127.0.0.1:9" in text


def test_table_cells_cannot_break_the_table(run: RunResult) -> None:
    run.results[-3] = dataclasses.replace(run.results[-3], reason="a | b\nc")
    text = render_markdown(run)

    assert "| a \\| b c |" in text
