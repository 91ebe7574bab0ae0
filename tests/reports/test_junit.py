"""JUnit XML: structure and counts that CI parsers read, from synthetic runs."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from gateproof.contract.results import Layer, Outcome, RunResult
from gateproof.load.results import LoadResult
from gateproof.reports import render_junit


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def _counts(element: ET.Element) -> dict[str, int]:
    return {name: int(element.attrib[name]) for name in ("tests", "failures", "errors", "skipped")}


def test_counts_match_outcomes_per_suite_and_in_total(run: RunResult) -> None:
    root = _parse(render_junit(run))

    assert root.tag == "testsuites"
    # the advisory failure is reported (system-out) but not a <failure>: it does not fail the run
    assert _counts(root) == {"tests": 10, "failures": 2, "errors": 1, "skipped": 1}
    suites = {suite.attrib["name"]: suite for suite in root.iter("testsuite")}
    assert list(suites) == ["property", "scenario", "stream", "load"]
    assert _counts(suites["property"]) == {"tests": 3, "failures": 1, "errors": 0, "skipped": 0}
    assert _counts(suites["scenario"]) == {"tests": 4, "failures": 1, "errors": 0, "skipped": 1}
    assert _counts(suites["stream"]) == {"tests": 2, "failures": 0, "errors": 1, "skipped": 0}
    assert _counts(suites["load"]) == {"tests": 1, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites.values():
        # The suite's counters are what parsers trust; they must agree with its children.
        cases = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(cases)
        assert int(suite.attrib["failures"]) == sum(1 for c in cases if c.find("failure") is not None)
        assert int(suite.attrib["errors"]) == sum(1 for c in cases if c.find("error") is not None)
        assert int(suite.attrib["skipped"]) == sum(1 for c in cases if c.find("skipped") is not None)


def test_testcase_names_timings_and_bodies(run: RunResult) -> None:
    root = _parse(render_junit(run))
    cases = {(c.attrib["classname"], c.attrib["name"]): c for c in root.iter("testcase")}

    failed = cases[("scenario.error_envelope_conforms", "bad_model_id [POST /v1/chat/completions]")]
    # the latency of the request it judged (8.25 ms), not the 12.5 ms the check took to evaluate
    assert failed.attrib["time"] == "0.008"
    failure = failed.find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "error.code is null, expected 'bad_model_id'"
    assert failure.attrib["type"] == "error"
    body = failure.text or ""
    assert "severity: error" in body
    assert "expected: 400 invalid_request_error / bad_model_id" in body
    assert "actual: 400 with key" in body
    assert "POST http://127.0.0.1:8080/v1/chat/completions" in body
    assert "HTTP 400 after 8.25 ms" in body

    advisory = cases[("scenario.provider_header_present", "basic_chat [POST /v1/chat/completions]")]
    assert advisory.find("failure") is None and advisory.attrib["time"] == "0.000"  # no request recorded
    props = {p.attrib["name"]: p.attrib["value"] for p in advisory.iter("property")}
    assert props == {"severity": "error", "gating": "false", "advisory": "true"}
    assert (advisory.findtext("system-out") or "").startswith(
        "advisory error (not gating): X-Edgee-Provider header missing"
    )

    skipped = cases[("scenario.compression_fields", "compression_on [POST /v1/chat/completions]")].find(
        "skipped"
    )
    assert skipped is not None
    assert skipped.attrib["message"] == "not applicable: profile openai-compatible has no compression"

    error = cases[("stream.usage_on_final_chunk", "stream_with_usage [POST /v1/chat/completions]")].find(
        "error"
    )
    assert error is not None
    # One line in the message attribute, the whole reason in the body.
    assert error.attrib["message"] == "read timed out after 30 s"
    assert "while waiting for the next chunk" in (error.text or "")

    passed = cases[("stream.terminal_done_sentinel", "stream_basic [POST /v1/chat/completions]")]
    assert list(passed) == []


def test_unreachable_target_is_one_error_case(unreachable_run: RunResult) -> None:
    root = _parse(render_junit(unreachable_run))

    assert _counts(root) == {"tests": 1, "failures": 0, "errors": 1, "skipped": 0}
    (case,) = list(root.iter("testcase"))
    assert case.attrib["classname"] == "target.reachable"
    error = case.find("error")
    assert error is not None
    assert error.attrib["message"] == "target unreachable: connection refused on http://127.0.0.1:9"


def test_load_run_adds_a_case_with_its_figures(run: RunResult, load: LoadResult) -> None:
    root = _parse(render_junit(run, load))

    load_suite = next(s for s in root.iter("testsuite") if s.attrib["name"] == "load")
    assert int(load_suite.attrib["tests"]) == 2
    case = next(c for c in load_suite.iter("testcase") if c.attrib["classname"] == "load.run")
    assert case.attrib["name"] == "chat_stream [http://127.0.0.1:8080]"
    assert case.attrib["time"] == "30.000"
    props = {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")}
    assert props["req/s"] == "42.3"
    assert props["TTFT p99"] == "248 ms"
    assert props["failures"] == "4 of 1,268 (0.32%)"
    assert case.find("error") is None
    # failed load requests fail the run, so the load case fails too
    failure = case.find("failure")
    assert failure is not None and failure.attrib["type"] == "load"
    assert failure.attrib["message"] == (
        "4 of 1,268 requests failed (3 x stream error event: provider_error, 1 x HTTP 502)"
    )
    assert "3 x stream error event: provider_error" in (failure.text or "")


def test_a_clean_load_run_is_a_passing_case(load: LoadResult) -> None:
    clean = dataclasses.replace(load, failures=0, failure_reasons={}, responses=load.requests)
    root = _parse(render_junit(None, clean))

    assert _counts(root) == {"tests": 1, "failures": 0, "errors": 0, "skipped": 0}
    (case,) = list(root.iter("testcase"))
    assert "failures: 0 of 1,268 (0.00%)" in (case.findtext("system-out") or "")


def test_load_run_without_completed_requests_is_an_error(load: LoadResult) -> None:
    empty = dataclasses.replace(load, requests=0, failures=0)
    root = _parse(render_junit(None, empty))

    assert _counts(root) == {"tests": 1, "failures": 0, "errors": 1, "skipped": 0}
    assert [s.attrib["name"] for s in root.iter("testsuite")] == ["load"]


def test_characters_xml_forbids_are_replaced_not_written(run: RunResult) -> None:
    first = run.results[2]
    assert first.outcome is Outcome.FAILED and first.layer is Layer.PROPERTY
    run.results[2] = dataclasses.replace(first, actual="chunk \x00\x1b[0m end", reason="bad \x07 byte")

    root = _parse(render_junit(run))  # would raise on a raw NUL or BEL

    failure = next(c for c in root.iter("failure") if "bad" in c.attrib["message"])
    assert failure.attrib["message"] == "bad \ufffd byte"
    assert "chunk \ufffd\ufffd[0m end" in (failure.text or "")


def test_load_run_the_target_never_answered_is_an_error(load: LoadResult) -> None:
    silent = dataclasses.replace(load, responses=0, failures=load.requests)
    root = _parse(render_junit(None, silent))

    error = next(root.iter("error"))
    assert error.attrib["message"] == "the target never answered (1,268 requests, no HTTP response)"
