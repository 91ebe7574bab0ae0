"""One verdict: its definition, and the HTML banner, summary.md and JUnit agreeing on it with the exit code."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

import pytest

from gateproof.contract.results import Outcome, RunResult
from gateproof.load.results import LoadResult
from gateproof.reports import VerdictStatus, render_html, render_junit, render_markdown, verdict_of

from .conftest import make_graded_run, make_load, make_run, make_unreachable_run, make_warnings_only_run


def _clean_load() -> LoadResult:
    return dataclasses.replace(make_load(), failures=0, failure_reasons={}, responses=1268)


def _passing_run() -> RunResult:
    run = make_graded_run()
    run.results = [r for r in run.results if r.outcome is Outcome.PASSED]
    return run


def _broken_load() -> LoadResult:
    return dataclasses.replace(
        make_load(), error="locust exited with code 1 without writing gateproof's measurements"
    )


#: name -> (contract run, load run, expected status, expected exit code)
CASES: dict[str, tuple[RunResult | None, LoadResult | None, VerdictStatus, int]] = {
    "pass": (_passing_run(), _clean_load(), VerdictStatus.PASS, 0),
    "pass, load only": (None, _clean_load(), VerdictStatus.PASS, 0),
    "warnings only": (make_warnings_only_run(), _clean_load(), VerdictStatus.ATTENTION, 0),
    "warnings only, strict": (make_warnings_only_run(strict=True), _clean_load(), VerdictStatus.FAIL, 1),
    "contract passes, load requests failed": (_passing_run(), make_load(), VerdictStatus.FAIL, 1),
    "contract passes, load broke down": (_passing_run(), _broken_load(), VerdictStatus.FAIL, 1),
    "load only, requests failed": (None, make_load(), VerdictStatus.FAIL, 1),
    "errors and warnings": (make_graded_run(), _clean_load(), VerdictStatus.FAIL, 1),
    "errors, advisory, not evaluated": (make_run(), None, VerdictStatus.FAIL, 1),
    "unreachable": (make_unreachable_run(), None, VerdictStatus.FAIL, 3),
}


@pytest.mark.parametrize("name", list(CASES))
def test_verdict_and_exit_code(name: str) -> None:
    run, load, status, code = CASES[name]
    verdict = verdict_of(run, load)

    assert verdict.status is status
    assert verdict.exit_code == code
    assert bool(verdict.failures) == (status is VerdictStatus.FAIL)
    if run is not None and load is None:
        # the contract part is the results model's own rule: `gateproof contract` cannot disagree
        assert verdict.exit_code == run.exit_code()


@pytest.mark.parametrize("name", list(CASES))
def test_every_format_says_the_same(name: str) -> None:
    run, load, status, _ = CASES[name]
    verdict = verdict_of(run, load)

    page = render_html(run, load)
    assert (
        f'<body data-runs="{int(run is not None)}" data-loads="{int(load is not None)}" data-verdict="{status.value}">'
        in page
    )
    assert f'<div class="verdict-badge" id="verdict">{verdict.label}</div>' in page
    for line in verdict.failures:
        assert f'<li class="reason-fail" data-reason="fail">{line}</li>'.replace("'", "&#39;") in page

    first = render_markdown(run, load).splitlines()[0]
    assert first.startswith(f"## {verdict.icon} gateproof")
    assert first.endswith(f": {verdict.label}")

    root = ET.fromstring(render_junit(run, load).encode())
    red = int(root.attrib["failures"]) + int(root.attrib["errors"]) > 0
    assert red == (status is VerdictStatus.FAIL)
    assert {p.attrib["value"] for p in root.iter("property") if p.attrib["name"] == "verdict"} == {
        verdict.label
    }


def test_needs_attention_is_warnings_advisory_or_nothing_ran() -> None:
    warnings = verdict_of(make_warnings_only_run(), None)
    assert warnings.label == "NEEDS ATTENTION" and warnings.exit_code == 0
    assert warnings.notes == (
        "1 warning (1 root cause): tolerated by the official clients, not gating (--strict fails them)",
    )

    advisory = make_run()
    advisory.results = [r for r in advisory.results if r.outcome is Outcome.PASSED or not r.required]
    verdict = verdict_of(advisory, None)
    assert verdict.status is VerdictStatus.ATTENTION
    assert verdict.notes == ("1 advisory check failure: reported, not gating",)

    empty = dataclasses.replace(make_run(), results=[])
    assert verdict_of(empty, None).failures == ("no check ran: an empty run is not a pass",)
    assert verdict_of(empty, None).status is VerdictStatus.FAIL
    assert verdict_of(empty, None).exit_code == 1 == empty.exit_code()


def test_strict_turns_the_warning_into_the_reason_to_fail() -> None:
    verdict = verdict_of(make_warnings_only_run(strict=True), None)

    assert verdict.failures == (
        "1 root cause fails the run (1 failure of required checks, 1 warning counted by --strict)",
    )
    assert verdict.notes == ()
    junit = ET.fromstring(render_junit(make_warnings_only_run(strict=True)).encode())
    (failure,) = list(junit.iter("failure"))
    assert failure.attrib["type"] == "warning"
    assert failure.attrib["message"] == "warning (--strict): usage.prompt_tokens_details is missing"
    assert "**NEEDS ATTENTION**" not in render_markdown(make_warnings_only_run(strict=True))
    assert 'data-strict="true"' in render_html(make_warnings_only_run(strict=True))


def test_skipped_results_never_change_the_verdict() -> None:
    run = _passing_run()
    skipped = next(r for r in make_graded_run().results if r.outcome is Outcome.SKIPPED)
    run.results.append(skipped)

    assert verdict_of(run, None).status is VerdictStatus.PASS


def test_load_failures_reach_the_banner_the_headline_and_junit() -> None:
    run, load = _passing_run(), make_load()
    reason = "load: 4 of 1,268 requests failed (3 x stream error event: provider_error, 1 x HTTP 502)"

    page = render_html(run, load)
    assert f'<li class="reason-fail" data-reason="fail">{reason}</li>' in page
    assert 'data-load-problem="failures"' in page
    text = render_markdown(run, load)
    assert text.startswith("## ❌ gateproof: FAIL\n")
    assert f"- ❌ {reason}" in text
    assert "> **Load fails the verdict:** 4 of 1,268 requests failed" in text
    root = ET.fromstring(render_junit(run, load).encode())
    load_case = next(c for c in root.iter("testcase") if c.attrib["classname"] == "load.run")
    assert load_case.find("failure") is not None


def test_a_load_run_that_broke_down_is_an_error_everywhere() -> None:
    run, load = _passing_run(), _broken_load()

    verdict = verdict_of(run, load)
    assert verdict.failures == (
        "load: the load run broke down: locust exited with code 1 without writing gateproof's measurements",
    )
    assert 'data-load-problem="broken"' in render_html(run, load)
    root = ET.fromstring(render_junit(run, load).encode())
    load_case = next(c for c in root.iter("testcase") if c.attrib["classname"] == "load.run")
    error = load_case.find("error")
    assert error is not None and "broke down" in error.attrib["message"]
    assert re.search(r"- ❌ load: the load run broke down", render_markdown(run, load))
