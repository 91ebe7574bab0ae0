"""The 1.1 fields in every format: severity, client impact, skipped-because, N of M cases, root causes, times."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from gateproof.contract.results import RunResult
from gateproof.reports import render_html, render_junit, render_markdown, write_report

from .conftest import RAW_MARKER, make_load


def _cases(run: RunResult) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(render_junit(run).encode())
    return {(c.attrib["classname"], c.attrib["name"]): c for c in root.iter("testcase")}


def test_headline_counts_root_causes(graded_run: RunResult) -> None:
    headline = "3 root causes (2 errors, 1 warning) in 4 failures, 1 skipped, 3 passed"

    assert f'<p class="headline" id="headline">{headline}</p>' in render_html(graded_run)
    assert f"**FAIL** · {headline} · " in render_markdown(graded_run)


def test_failures_are_grouped_by_root_cause(graded_run: RunResult) -> None:
    page = render_html(graded_run)
    causes = re.findall(
        r'<li class="cause kind-\w+" data-kind="(\w+)" data-gating="(\w+)" data-failures="(\d+)">', page
    )
    # the two envelope failures differ only by a quoted value: one root cause; warnings last
    assert causes == [("error", "true", "2"), ("error", "true", "1"), ("warning", "false", "1")]

    text = render_markdown(graded_run)
    section = text.split("### Root causes", 1)[1].split("###", 1)[0].strip().splitlines()
    assert section[0] == (
        "- **error** · fails the run · `scenario.error_envelope_conforms`: error.code is null for "
        "'bad_model_id' (2 failures)"
    )
    assert section[2:4] == [
        "  - bad_model_id [POST /v1/chat/completions] · error",
        "  - bad_role [POST /v1/chat/completions] · error",
    ]
    assert "- **warning** · `scenario.usage_details_present`: usage.prompt_tokens_details is missing" in text


def test_severity_and_client_impact_next_to_each_failure(graded_run: RunResult) -> None:
    impact = "openai-python 1.99.0: chat.completions.create() → field_lost: BadRequestError.code is None"

    page = render_html(graded_run)
    assert 'data-severity="warning" data-gating="false"' in page
    assert 'data-severity="error" data-gating="true"' in page
    assert f'<li><span class="muted">client:</span> {impact}</li>' in page
    assert f"  - client: {impact}" in render_markdown(graded_run)

    cases = _cases(graded_run)
    failure = cases[("scenario.error_envelope_conforms", "bad_model_id [POST /v1/chat/completions]")].find(
        "failure"
    )
    assert failure is not None and failure.attrib["type"] == "error"
    assert f"client: {impact}" in (failure.text or "") and "severity: error" in (failure.text or "")
    # a warning without --strict: a passing case that says so
    warning = cases[("scenario.usage_details_present", "basic_chat [POST /v1/chat/completions]")]
    assert warning.find("failure") is None
    out = warning.findtext("system-out") or ""
    assert out.startswith("warning (not gating; --strict fails it): usage.prompt_tokens_details is missing")
    assert "→ parsed: usage parsed" in out


def test_skipped_renders_as_skipped_because(graded_run: RunResult) -> None:
    page = render_html(graded_run)
    assert (
        '<p class="skipped-because" data-because="error_envelope_conforms">skipped (because '
        "<code>error_envelope_conforms</code>)</p>"
    ) in page
    assert 'data-count="skipped"' in page
    assert (
        "- `scenario.error_type_matches` bad_model_id [POST /v1/chat/completions]: skipped (because "
        "error_envelope_conforms)"
    ) in render_markdown(graded_run)
    skipped = _cases(graded_run)[("scenario.error_type_matches", "bad_model_id [POST /v1/chat/completions]")]
    element = skipped.find("skipped")
    assert element is not None and element.attrib["message"] == "because error_envelope_conforms"


def test_property_results_say_n_of_m_cases(graded_run: RunResult) -> None:
    page = render_html(graded_run)
    assert '<span class="cases muted" data-cases="300">failed in 7 of 300 cases</span>' in page
    assert '<span class="cases muted" data-cases="50">50 cases</span>' in page
    text = render_markdown(graded_run)
    assert "(1 failure, in 7 of 300 cases)" in text
    assert "  - generated [POST /v1/chat/completions] · error · failed in 7 of 300 cases" in text
    assert "Property layer: 2 operations, 350 generated cases in 2.7 s." in text
    failure = _cases(graded_run)[
        ("property.response_schema_conformance", "generated [POST /v1/chat/completions]")
    ].find("failure")
    assert failure is not None and "cases: failed in 7 of 300 cases" in (failure.text or "")


def test_junit_times_are_request_latencies_and_operations_counted_once(graded_run: RunResult) -> None:
    root = ET.fromstring(render_junit(graded_run).encode())
    suites = {s.attrib["name"]: s for s in root.iter("testsuite")}
    cases = _cases(graded_run)

    # a scenario case: its request's latency (8.25 ms), not the 12.5 ms its check took
    assert (
        cases[("scenario.error_envelope_conforms", "bad_model_id [POST /v1/chat/completions]")].attrib["time"]
        == "0.008"
    )
    # three checks judged basic_chat's one request (120 ms) and bad_model_id's (8.25 ms): once each
    assert suites["scenario"].attrib["time"] == "0.134"  # 8.25 + 5.5 + 120 ms
    # property cases carry no time of their own; each operation's seconds count once, on the suite
    assert {c.attrib["time"] for c in suites["property"].iter("testcase")} == {"0.000"}
    assert suites["property"].attrib["time"] == "2.700"
    props = {p.attrib["name"]: p.attrib["value"] for p in suites["property"].iter("property")}
    assert props["operation POST /v1/chat/completions"] == "300 cases, 2.400 s"
    assert root.attrib["time"] == "2.834"


def test_junit_property_time_without_the_operations_record(graded_run: RunResult) -> None:
    graded_run.metadata = {}
    root = ET.fromstring(render_junit(graded_run).encode())
    suite = next(s for s in root.iter("testsuite") if s.attrib["name"] == "property")

    # two results of POST /v1/chat/completions each carry its 2.4 s: counted once, not twice
    assert suite.attrib["time"] == "2.700"


def test_html_time_column_is_the_request_latency(graded_run: RunResult) -> None:
    page = render_html(graded_run)

    assert ">request latency</th>" in page
    assert '<td class="num muted">8.25 ms</td>' in page
    assert '<td class="num muted">12.5 ms</td>' not in page  # the check's own evaluation time
    assert '<table class="operations" id="r-operations">' in page


def test_raw_bytes_are_never_rendered(tmp_path: Path, graded_run: RunResult) -> None:
    assert any(r.raw is not None for r in graded_run.results)
    files = write_report(tmp_path, graded_run, make_load())

    for path in files.paths:
        assert RAW_MARKER.encode() not in path.read_bytes(), path.name


def test_secrets_in_impact_and_because_are_scrubbed(
    graded_run: RunResult, planted_secrets: tuple[str, ...]
) -> None:
    secret = planted_secrets[0]
    first = graded_run.results[0]
    graded_run.results[0] = dataclasses.replace(
        first, impact=(dataclasses.replace(first.impact[0], detail=f"raised with key {secret}"),)
    )
    graded_run.results[2] = dataclasses.replace(graded_run.results[2], because=f"check-{secret}")
    for text in (
        render_html(graded_run, secrets=planted_secrets),
        render_markdown(graded_run, secrets=planted_secrets),
        render_junit(graded_run, secrets=planted_secrets),
    ):
        assert secret not in text
