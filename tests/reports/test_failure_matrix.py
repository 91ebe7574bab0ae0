"""The "Failure matrix" section: provider faults by stream mode, in every format and on the terminal.

Built from synthetic results shaped like the failure-matrix scenarios' (``fault`` and ``mode`` set):
an all-pass matrix, a persistent 429 whose stream answer the gateway turned into a 502 (the official
SDK raised InternalServerError where RateLimitError was owed), stream-only faults with no non-stream
cell, not-applicable cells, a matrix over two provider routes, and secrets planted in the evidence.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateproof.contract.results import (
    CheckResult,
    ClientImpact,
    ImpactVerdict,
    Layer,
    Outcome,
    RunResult,
    Severity,
)
from gateproof.reports import (
    FailureMatrix,
    failure_matrix_headline,
    render_html,
    render_junit,
    render_markdown,
    write_report,
)
from gateproof.reports._failure_matrix import impact_class, impact_words

from .conftest import SECRETS, STARTED, make_run

SDK = "openai-python 1.99.0: chat.completions.create(stream=True) (error class)"
WRONG_CLASS = ClientImpact(
    SDK,
    ImpactVerdict.WRONG_EXCEPTION,
    "expected RateLimitError (429), the client got InternalServerError (502)",
)

#: (fault, the modes D48 plays it in)
FAULTS = (
    ("429 persistent", ("non-stream", "stream")),
    ("500 persistent", ("non-stream", "stream")),
    ("mid-stream error", ("stream",)),
    ("client leaves", ("stream",)),
)


def _matrix_result(
    fault: str,
    mode: str,
    check: str,
    outcome: Outcome = Outcome.PASSED,
    *,
    provider: str = "",
    expected: str = "",
    actual: str = "",
    reason: str = "",
    severity: Severity | None = None,
    impact: tuple[ClientImpact, ...] = (),
) -> CheckResult:
    scenario = f"bad_day[{fault}/{mode}]" + (f"[{provider}]" if provider else "")
    return CheckResult(
        check=check,
        description=f"{check.replace('_', ' ')} on a provider's bad day",
        layer=Layer.SCENARIO,
        profile="edgee",
        target="reference",
        route="POST /v1/chat/completions",
        scenario=scenario,
        outcome=outcome,
        expected=expected,
        actual=actual,
        reason=reason,
        severity=severity if outcome is Outcome.FAILED else None,
        impact=impact,
        provider=provider,
        fault=fault,
        mode=mode,
    )


def _matrix_results(provider: str = "") -> list[CheckResult]:
    """Two checks per played cell, all passing."""
    return [
        _matrix_result(fault, mode, check, provider=provider, expected=f"{check} owed on {fault}")
        for fault, modes in FAULTS
        for mode in modes
        for check in ("matrix_status", "matrix_attempts")
    ]


def _deviate(results: list[CheckResult], *, leak: str = "") -> list[CheckResult]:
    """The persistent 429 on the stream: the gateway answered 502, the client saw InternalServerError."""
    out = []
    for r in results:
        if (r.fault, r.mode, r.check) == ("429 persistent", "stream", "matrix_status"):
            r = dataclasses.replace(
                r,
                outcome=Outcome.FAILED,
                severity=Severity.ERROR,
                expected="429 provider_rate_limited with Retry-After",
                actual=f"502 provider_error{leak}",
                reason=f"the provider's 429 reached the client as 502{leak}",
                impact=(
                    dataclasses.replace(WRONG_CLASS, detail=WRONG_CLASS.detail + leak)
                    if leak
                    else WRONG_CLASS,
                ),
            )
        out.append(r)
    return out


def _run(results: list[CheckResult]) -> RunResult:
    return RunResult(
        run_id="run-matrix",
        target="reference",
        base_url="http://127.0.0.1:8080",
        profile="edgee",
        started_at=STARTED,
        finished_at=STARTED + 9.0,
        results=results,
    )


def _texts(matrix: FailureMatrix) -> list[list[str]]:
    return [[row.fault, *(cell.text for cell in row.cells)] for row in matrix.rows]


# --- the model -----------------------------------------------------------------------------------


def test_no_fault_results_no_matrix_and_no_section_anywhere() -> None:
    run = make_run()

    assert FailureMatrix.from_results(run.results) is None
    assert failure_matrix_headline(run.results) is None
    assert "Failure matrix" not in render_markdown(run)
    page = render_html(run)
    assert "Failure matrix" not in page and 'id="failure-matrix"' not in page
    props = {p.attrib["name"] for p in ET.fromstring(render_junit(run)).iter("property")}
    assert not {"fault", "mode"} & props


def test_all_pass_matrix_rows_by_fault_columns_by_mode() -> None:
    matrix = FailureMatrix.from_results(_matrix_results())

    assert matrix is not None
    assert [c.label for c in matrix.columns] == ["non-stream", "stream"]
    assert _texts(matrix) == [
        ["429 persistent", "as owed (2 checks)", "as owed (2 checks)"],
        ["500 persistent", "as owed (2 checks)", "as owed (2 checks)"],
        # stream-only faults: the non-stream cell was not played
        ["mid-stream error", "—", "as owed (2 checks)"],
        ["client leaves", "—", "as owed (2 checks)"],
    ]
    assert matrix.rows[2].cells[0].status == "empty" and not matrix.rows[2].cells[0].results
    assert matrix.headline == "6 cells · 6 as owed"
    assert not matrix.deviations
    cell = matrix.rows[0].cells[1]
    assert cell.owed == ["matrix_status owed on 429 persistent", "matrix_attempts owed on 429 persistent"]
    assert cell.findings == () and cell.impacts == [] and cell.anchor == ""


def test_a_deviation_carries_owed_got_and_the_client_impact_in_plain_words() -> None:
    matrix = FailureMatrix.from_results(_deviate(_matrix_results()))

    assert matrix is not None
    assert _texts(matrix)[0] == ["429 persistent", "as owed (2 checks)", "deviation (error): 1 of 2 checks"]
    cell = matrix.rows[0].cells[1]
    assert (cell.status, cell.severity, cell.name) == ("failed", "error", "429 persistent/stream")
    (finding,) = cell.findings
    assert finding.check == "scenario.matrix_status"
    assert finding.summary == (
        "scenario.matrix_status: owed 429 provider_rate_limited with Retry-After; got 502 provider_error"
    )
    assert cell.impacts == [
        "openai-python 1.99.0 raised InternalServerError (502) where RateLimitError (429) was owed"
    ]
    assert matrix.deviations == [cell]
    assert matrix.headline == "6 cells · 5 as owed · 1 deviation (429 persistent/stream: InternalServerError)"


def test_warnings_errors_and_not_applicable_cells_are_told_apart() -> None:
    results = _matrix_results()
    changed = []
    for r in results:
        if r.fault == "500 persistent" and r.mode == "non-stream" and r.check == "matrix_attempts":
            r = dataclasses.replace(
                r, outcome=Outcome.FAILED, severity=Severity.WARNING, actual="1 attempt", reason="not retried"
            )
        elif r.fault == "500 persistent" and r.mode == "stream" and r.check == "matrix_status":
            r = dataclasses.replace(r, outcome=Outcome.ERROR, reason="read timed out after 5 s")
        elif r.fault == "client leaves":
            r = dataclasses.replace(
                r, outcome=Outcome.NOT_APPLICABLE, reason="the target is not wired to the mock"
            )
        changed.append(r)
    matrix = FailureMatrix.from_results(changed)

    assert matrix is not None
    assert _texts(matrix)[1:] == [
        ["500 persistent", "deviation (warning): 1 of 2 checks", "not evaluated: 1 of 2 checks"],
        ["mid-stream error", "—", "as owed (2 checks)"],
        ["client leaves", "—", "not applicable"],
    ]
    warned, errored = matrix.rows[1].cells
    assert (warned.severity, warned.short_impact) == ("warning", "matrix_attempts")
    assert [f.outcome for f in errored.findings] == ["error"]
    assert errored.findings[0].summary == "scenario.matrix_status: not evaluated: read timed out after 5 s"
    assert (
        warned.findings[0].summary
        == "scenario.matrix_attempts: owed matrix_attempts owed on 500 persistent; got 1 attempt"
    )
    assert matrix.headline == (
        "6 cells · 3 as owed · 1 deviation, 1 tolerated (500 persistent/non-stream: matrix_attempts)"
        " · 1 not evaluated · 1 not applicable"
    )


def _mixed_routes() -> list[CheckResult]:
    """The two 429 rows once per provider route (a deviation on anthropic's stream), the others once."""
    per_route = [r for r in _matrix_results() if r.fault == "429 persistent"]
    once = [r for r in _matrix_results() if r.fault != "429 persistent"]
    routed: list[CheckResult] = []
    for provider in ("openai", "anthropic", "gemini"):
        route = [
            dataclasses.replace(r, provider=provider, scenario=f"{r.scenario}[{provider}]") for r in per_route
        ]
        routed += _deviate(route) if provider == "anthropic" else route
    return [*routed, *once]


def test_a_row_played_per_route_marks_each_route_in_its_cells() -> None:
    results = _mixed_routes()
    matrix = FailureMatrix.from_results(results)

    assert matrix is not None
    assert [c.label for c in matrix.columns] == ["non-stream", "stream"]
    assert _texts(matrix) == [
        ["429 persistent", "as owed (6 checks on 3 routes)", "deviation (error): 1 of 6 checks on anthropic"],
        ["500 persistent", "as owed (2 checks)", "as owed (2 checks)"],
        ["mid-stream error", "—", "as owed (2 checks)"],
        ["client leaves", "—", "as owed (2 checks)"],
    ]
    calm, stormy = matrix.rows[0].cells
    assert [(r.provider, r.mark) for r in stormy.routes] == [
        ("openai", "✓"),
        ("anthropic", "✗"),
        ("gemini", "✓"),
    ]
    assert [r.status for r in calm.routes] == ["passed"] * 3
    assert matrix.rows[1].cells[0].routes == []  # played once: no per-route marks
    assert stormy.findings[0].summary.startswith("scenario.matrix_status on anthropic: owed 429")
    assert [c.name for c in matrix.deviations] == ["429 persistent/stream@anthropic"]
    assert failure_matrix_headline(results) == (
        "failure matrix: 6 cells · 5 as owed · 1 deviation (429 persistent/stream@anthropic: InternalServerError)"
    )


def test_one_deviation_on_every_route_is_one_finding_group_naming_the_routes() -> None:
    swallowed = ClientImpact(SDK, ImpactVerdict.PARSED, "7 chunks, text 35 chars")
    results = [
        _matrix_result(
            "mid-stream error",
            "stream",
            "stream_error_propagated",
            Outcome.FAILED,
            provider=provider,
            severity=Severity.ERROR,
            expected="a D9 error event and no [DONE]",
            actual="done",
            impact=(dataclasses.replace(swallowed, detail=f"{n} chunks"),),
        )
        for n, provider in enumerate(("openai", "anthropic", "gemini"), start=5)
    ]
    matrix = FailureMatrix.from_results(results)
    text = render_markdown(_run(results))

    assert matrix is not None
    (cell,) = matrix.cells
    assert cell.text == "deviation (error): 3 of 3 checks on all 3 routes"
    assert cell.name == "mid-stream error/stream"  # every route deviates: no route suffix
    (group,) = cell.groups
    assert group.routes == ["openai", "anthropic", "gemini"]
    assert group.summary == (
        "scenario.stream_error_propagated on openai, anthropic, gemini: owed a D9 error event and no [DONE]; got done"
    )
    assert group.impacts == [
        "openai-python 1.99.0 raised no exception: the caller read the answer as a success (5 chunks)"
    ]
    assert matrix.headline == "1 cell · 0 as owed · 1 deviation (mid-stream error/stream: no exception)"
    assert text.count("scenario.stream_error_propagated on") == 1
    page = render_html(_run(results))
    section = page.split('id="failure-matrix"', 1)[1].split("</section>", 1)[0]
    assert section.count('class="finding"') == 1
    assert section.count('<code class="route">') == 3  # each route links to its own row


def test_headline_names_three_deviations_then_counts_the_rest() -> None:
    results = [
        _matrix_result(
            f"fault {n}",
            "non-stream",
            "matrix_status",
            Outcome.FAILED,
            severity=Severity.ERROR,
            impact=(ClientImpact(SDK, ImpactVerdict.RAISED, "APIConnectionError: Connection error."),),
        )
        for n in range(5)
    ]
    line = failure_matrix_headline(results)

    assert line == (
        "failure matrix: 5 cells · 0 as owed · 5 deviations (fault 0/non-stream: APIConnectionError, "
        "fault 1/non-stream: APIConnectionError, fault 2/non-stream: APIConnectionError, +2 more)"
    )


@pytest.mark.parametrize(
    ("verdict", "detail", "words", "short"),
    [
        (
            ImpactVerdict.WRONG_EXCEPTION,
            "expected RateLimitError (429), the client got InternalServerError (502)",
            "openai-python 1.99.0 raised InternalServerError (502) where RateLimitError (429) was owed",
            "InternalServerError",
        ),
        (
            ImpactVerdict.WRONG_EXCEPTION,
            "expected InternalServerError (502), the client got a stream of 3 chunks",
            "openai-python 1.99.0 raised no exception (it returned a stream of 3 chunks) "
            "where InternalServerError (502) was owed",
            "no exception",
        ),
        (
            ImpactVerdict.RAISED,
            "APIError: An error occurred during streaming (after 2 chunks)",
            "openai-python 1.99.0 raised APIError: An error occurred during streaming (after 2 chunks)",
            "APIError",
        ),
        (
            ImpactVerdict.FIELD_LOST,
            "usage is None",
            "openai-python 1.99.0 parsed the answer, but usage is None",
            "field lost",
        ),
        (
            ImpactVerdict.PARSED,
            "3 chunks",
            "openai-python 1.99.0 raised no exception: the caller read the answer as a success (3 chunks)",
            "no exception",
        ),
        (
            ImpactVerdict.PARSED,
            "RateLimitError (429) as expected; .code 'provider_rate_limited'",
            "openai-python 1.99.0 raised RateLimitError (429) as expected; .code 'provider_rate_limited'",
            "RateLimitError",
        ),
    ],
)
def test_impact_in_plain_words(verdict: ImpactVerdict, detail: str, words: str, short: str) -> None:
    impact = ClientImpact(SDK, verdict, detail)

    assert impact_words(impact) == words
    assert impact_class(impact) == short


# --- the renderers -------------------------------------------------------------------------------


def test_markdown_table_and_deviations_sit_before_the_layer_counts() -> None:
    text = render_markdown(_run(_deviate(_matrix_results())))
    section = text.split("### Failure matrix\n\n", 1)[1].split("### ", 1)[0]

    assert section.splitlines()[:9] == [
        "6 cells · 5 as owed · 1 deviation (429 persistent/stream: InternalServerError)",
        "",
        "| provider fault | non-stream | stream |",
        "| --- | --- | --- |",
        "| 429 persistent | as owed (2 checks) | deviation (error): 1 of 2 checks |",
        "| 500 persistent | as owed (2 checks) | as owed (2 checks) |",
        "| mid-stream error | — | as owed (2 checks) |",
        "| client leaves | — | as owed (2 checks) |",
        "",
    ]
    assert (
        "- **429 persistent · stream** (error) · scenario.matrix_status: owed 429 provider_rate_limited "
        "with Retry-After; got 502 provider_error"
    ) in section
    assert (
        "  - client: openai-python 1.99.0 raised InternalServerError (502) where RateLimitError (429) was owed"
    ) in section
    assert text.index("### Root causes") < text.index("### Failure matrix") < text.index("### By layer")


class _Cells(HTMLParser):
    """The failure matrix's cells: (fault, mode) -> status, link, badge and text, route marks."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], dict[str, str]] = {}
        self.columns: list[str] = []
        self.ids: list[str] = []
        self._in = False
        self._fault = ""
        self._cell: dict[str, str] | None = None
        self._column = False
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "table" and "fmatrix" in a.get("class", "").split():
            self._in = True
        if not self._in:
            return
        if tag == "tr" and "data-fault" in a:
            self._fault = a["data-fault"]
        elif tag == "th" and "data-mode" in a:
            self._column = True
            self.columns.append("")
        elif tag == "td":
            self._cell = {"status": a["data-status"], "href": "", "badge": "", "text": "", "routes": ""}
            self.cells[(self._fault, a["data-mode"])] = self._cell
        elif tag == "li" and self._cell is not None and "data-provider" in a:
            self._cell["routes"] += f"{a['data-provider']}={a['data-status']} "
        elif tag == "span" and self._cell is not None and "badge" in a.get("class", ""):
            self._depth = 1
        elif tag == "a" and self._cell is not None and self._depth and not self._cell["href"]:
            self._cell["href"] = a["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in = False
        elif tag == "td":
            self._cell = None
        elif tag == "th":
            self._column = False
        elif tag == "span":
            self._depth = 0

    def handle_data(self, data: str) -> None:
        if self._column:
            self.columns[-1] += data
        if self._cell is not None:
            self._cell["text"] += data
            if self._depth:
                self._cell["badge"] += data


def test_html_section_colours_cells_and_links_a_deviation_to_its_row() -> None:
    page = render_html(_run(_deviate(_matrix_results())))
    parsed = _Cells()
    parsed.feed(page)

    assert parsed.columns == ["non-stream", "stream"]
    assert {key: (c["status"], c["badge"]) for key, c in parsed.cells.items()} == {
        ("429 persistent", "non-stream"): ("passed", "as owed (2 checks)"),
        ("429 persistent", "stream"): ("failed", "deviation (error): 1 of 2 checks"),
        ("500 persistent", "non-stream"): ("passed", "as owed (2 checks)"),
        ("500 persistent", "stream"): ("passed", "as owed (2 checks)"),
        ("mid-stream error", "non-stream"): ("empty", "—"),
        ("mid-stream error", "stream"): ("passed", "as owed (2 checks)"),
        ("client leaves", "non-stream"): ("empty", "—"),
        ("client leaves", "stream"): ("passed", "as owed (2 checks)"),
    }
    failed = parsed.cells[("429 persistent", "stream")]
    assert failed["href"].startswith("#") and failed["href"][1:] in parsed.ids
    row = page.split(f'id="{failed["href"][1:]}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-outcome="failed"' in row and "matrix_status" in row
    text = " ".join(failed["text"].split())
    section = page.split('id="failure-matrix"', 1)[1].split("</section>", 1)[0]
    assert "<dt>owed</dt><dd>429 provider_rate_limited with Retry-After</dd>" in section
    assert "<dt>got</dt><dd>502 provider_error</dd>" in section
    assert (
        "client: openai-python 1.99.0 raised InternalServerError (502) where RateLimitError (429) was owed"
        in text
    )
    assert "6 cells · 5 as owed · 1 deviation (429 persistent/stream: InternalServerError)" in page
    # after the summary, before the per-layer results, and in the table of contents
    assert page.index('id="summary"') < page.index('id="failure-matrix"') < page.index('id="results"')
    assert '<a href="#failure-matrix">Failure matrix</a>' in page
    # self-contained: nothing fetched
    assert "http://" not in page.split('id="failure-matrix"', 1)[1].split("</section>", 1)[0]


def test_html_cell_of_a_row_played_per_route_marks_each_route() -> None:
    page = render_html(_run(_mixed_routes()))
    parsed = _Cells()
    parsed.feed(page)

    assert parsed.columns == ["non-stream", "stream"]
    stormy = parsed.cells[("429 persistent", "stream")]
    assert stormy["status"] == "failed"
    assert stormy["routes"].split() == ["openai=passed", "anthropic=failed", "gemini=passed"]
    assert parsed.cells[("500 persistent", "stream")]["routes"] == ""
    # the provider routes section is there too: both tables, one page
    assert page.index('id="providers"') < page.index('id="failure-matrix"')


def test_a_not_applicable_cell_says_why() -> None:
    reason = "needs the target's declared timeouts.first_byte_s"
    results = [
        dataclasses.replace(r, outcome=Outcome.NOT_APPLICABLE, reason=reason)
        if r.fault == "client leaves"
        else r
        for r in _matrix_results()
    ]
    matrix = FailureMatrix.from_results(results)
    page = render_html(_run(results))

    assert matrix is not None and matrix.rows[3].cells[1].note == reason
    assert matrix.rows[0].cells[1].note == ""
    assert '<p class="muted cell-note">needs the target&#39;s declared timeouts.first_byte_s</p>' in page


def test_junit_matrix_cases_carry_fault_and_mode() -> None:
    results = _deviate(_matrix_results()) + make_run().results
    root = ET.fromstring(render_junit(_run(results)))
    props = [
        (case, {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")})
        for case in root.iter("testcase")
    ]
    matrix = [(case, p) for case, p in props if "fault" in p]

    assert len(matrix) == len(_matrix_results())
    assert {(p["fault"], p["mode"]) for _, p in matrix} == {
        (fault, mode) for fault, modes in FAULTS for mode in modes
    }
    failed = next(case for case, p in matrix if case.find("failure") is not None)
    assert [child.tag for child in failed] == ["properties", "failure"]
    failure = failed.find("failure")
    assert failure is not None and "InternalServerError (502)" in (failure.text or "")
    # results outside the matrix carry neither property
    assert all("mode" not in p for _, p in props if "fault" not in p)


# --- secrets -------------------------------------------------------------------------------------


def test_secrets_in_matrix_evidence_never_reach_any_file(tmp_path: Path) -> None:
    leak = f" (key {SECRETS[0]} echoed, x-api-key {SECRETS[1]})"
    run = _run(_deviate(_matrix_results(), leak=leak))
    write_report(tmp_path, run, None, secrets=SECRETS)

    texts = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.rglob("*") if path.is_file()}
    assert {"index.html", "summary.md", "junit.xml", "results.json"} <= set(texts)
    for name, text in texts.items():
        for secret in SECRETS[:2]:
            assert secret not in text, f"{secret} in {name}"
    assert "Failure matrix" in texts["summary.md"] and "Failure matrix" in texts["index.html"]
    # the deviation's evidence is shown, scrubbed
    assert "got 502 provider_error (key [redacted] echoed" in texts["summary.md"]
    assert "raised InternalServerError (502) (key [redacted] echoed" in texts["summary.md"]


def test_the_terminal_line_is_scrubbed_too() -> None:
    leaky = ClientImpact(SDK, ImpactVerdict.RAISED, f"{SECRETS[3]}Error: key refused")
    results = [
        _matrix_result("401 provider", "stream", "matrix_status", Outcome.FAILED, impact=(leaky,)),
        _matrix_result("401 provider", "non-stream", "matrix_status", Outcome.PASSED),
    ]
    line = failure_matrix_headline(results, secrets=SECRETS)

    assert line is not None and line.startswith("failure matrix: 2 cells · 1 as owed · 1 deviation")
    assert SECRETS[3] not in line


def test_both_commands_print_the_matrix_line(capsys: pytest.CaptureFixture[str]) -> None:
    from gateproof.cli.run import _print_verdict
    from gateproof.contract.cli import print_summary
    from gateproof.reports import verdict_of

    run = _run(_deviate(_matrix_results()))
    line = "  failure matrix: 6 cells · 5 as owed · 1 deviation (429 persistent/stream: InternalServerError)"

    print_summary(run)
    assert line in capsys.readouterr().out.splitlines()
    _print_verdict(verdict_of(run, None), run, None, lambda text: text.replace("429", "[scrubbed]"))
    printed = capsys.readouterr().out.splitlines()
    assert line.replace("429", "[scrubbed]") in printed  # through the command's own scrubber
    print_summary(make_run())
    assert not [text for text in capsys.readouterr().out.splitlines() if "failure matrix" in text]


def test_a_replay_that_names_what_was_owed_and_got_is_worded_from_those_fields() -> None:
    impact = ClientImpact(
        "openai-python 3.57.0: chat.completions.create (error class)",
        ImpactVerdict.WRONG_EXCEPTION,
        "a detail in some other wording",
        owed="RateLimitError (429)",
        got="InternalServerError (502)",
    )
    assert impact_words(impact) == (
        "openai-python 3.57.0 raised InternalServerError (502) where RateLimitError (429) was owed"
    )
    assert impact_class(impact) == "InternalServerError"
    assert ClientImpact.from_dict(impact.to_dict()) == impact
