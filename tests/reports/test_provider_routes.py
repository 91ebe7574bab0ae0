"""The "Provider routes" section: per-provider scenarios as a scenario-by-route matrix in every format.

Built from synthetic results on three routes (anthropic loses usage on ``chat_basic``, gemini's
stream of ``chat_stream`` errors); a one-route run (an OpenAI-only gateway) has no section at all.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from gateproof.contract.results import Outcome, RunResult, Severity
from gateproof.reports import render_html, render_junit, render_markdown
from gateproof.reports._view import RunView, provider_family


def _matrix(run: RunResult) -> list[list[str]]:
    view = RunView.from_run(run)
    assert view.providers is not None
    return [[row.scenario, *(cell.text for cell in row.cells)] for row in view.providers.rows]


def test_view_has_one_column_per_route_in_first_seen_order(provider_run: RunResult) -> None:
    view = RunView.from_run(provider_run)
    matrix = view.providers

    assert matrix is not None
    assert matrix.providers == ["openai", "anthropic", "gemini"]
    # property and single-route results (provider "") are not rows
    assert [row.scenario for row in matrix.rows] == ["chat_basic", "chat_stream"]
    assert _matrix(provider_run) == [
        ["chat_basic", "4 ✓ (1 n/a)", "2 ✗ / 4 (1 skipped, 1 n/a)", "4 ✓ (1 n/a)"],
        ["chat_stream", "2 ✓", "2 ✓", "1 error / 2"],
    ]
    basic, stream = matrix.rows
    anthropic = basic.cells[1]
    assert anthropic.provider == "anthropic" and anthropic.status == "failed"
    assert anthropic.counts == {
        Outcome.FAILED: 2,
        Outcome.ERROR: 0,
        Outcome.PASSED: 1,
        Outcome.SKIPPED: 1,
        Outcome.NOT_APPLICABLE: 1,
    }
    assert [cell.status for cell in stream.cells] == ["passed", "passed", "error"]
    # a failing cell points at the row of its first failure; a passing one points nowhere
    rows = {row.anchor: row.result for group in view.groups for row in group.rows}
    first = rows[anthropic.anchor]
    assert (first.scenario, first.check, first.outcome) == (
        "chat_basic[anthropic]",
        "usage_matches_truth",
        Outcome.FAILED,
    )
    errored = rows[stream.cells[2].anchor]
    assert (errored.scenario, errored.outcome) == ("chat_stream[gemini]", Outcome.ERROR)
    assert basic.cells[0].anchor == "" and stream.cells[1].anchor == ""
    assert [(t.provider, t.text, t.status) for t in matrix.totals] == [
        ("openai", "6 passed · 0 failed", "passed"),
        ("anthropic", "3 passed · 2 failed", "failed"),
        ("gemini", "5 passed · 0 failed · 1 error", "error"),
    ]


def test_family_strips_only_the_results_own_route_suffix(provider_run: RunResult) -> None:
    families = {(r.scenario, provider_family(r)) for r in provider_run.results}

    assert ("chat_basic[anthropic]", "chat_basic") in families
    assert ("chat_basic", "chat_basic") in families  # the primary route keeps the plain name
    assert ("bad_model_id", "bad_model_id") in families
    odd = dataclasses.replace(provider_run.results[-1], scenario="x[anthropic]", provider="gemini")
    assert provider_family(odd) == "x[anthropic]"  # not this result's route: left as it is


def test_one_route_run_has_no_section_in_any_format(openai_only_run: RunResult) -> None:
    assert RunView.from_run(openai_only_run).providers is None
    assert "Provider routes" not in render_markdown(openai_only_run)
    page = render_html(openai_only_run)
    assert "Provider routes" not in page and 'id="providers"' not in page
    names = [case.attrib["name"] for case in ET.fromstring(render_junit(openai_only_run)).iter("testcase")]
    # an OpenAI-only gateway keeps its plain test names; the route is a property only
    assert "chat_basic [POST /v1/chat/completions]" in names
    assert not any("[openai]" in name for name in names)


def test_markdown_table_sits_before_the_layer_counts(provider_run: RunResult) -> None:
    text = render_markdown(provider_run)
    section = text.split("### Provider routes\n\n", 1)[1].split("\n\n", 1)[0].splitlines()

    assert section == [
        "| scenario | `openai` | `anthropic` | `gemini` |",
        "| --- | ---: | ---: | ---: |",
        "| `chat_basic` | 4 ✓ (1 n/a) | 2 ✗ / 4 (1 skipped, 1 n/a) | 4 ✓ (1 n/a) |",
        "| `chat_stream` | 2 ✓ | 2 ✓ | 1 error / 2 |",
        "| **total** | **6 passed · 0 failed** | **3 passed · 2 failed** | **5 passed · 0 failed · 1 error** |",
    ]
    assert text.index("### Root causes") < text.index("### Provider routes") < text.index("### By layer")


class _Matrix(HTMLParser):
    """The provider table's cells: (scenario, provider) -> (status, link, text), plus the totals."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], dict[str, str]] = {}
        self.totals: dict[str, str] = {}
        self.columns: list[str] = []
        self.ids: list[str] = []
        self._in_table = False
        self._part = ""
        self._scenario = ""
        self._cell: dict[str, str] | None = None
        self._total: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "table" and "providers" in a.get("class", "").split():
            self._in_table = True
        if not self._in_table:
            return
        if tag in ("thead", "tbody", "tfoot"):
            self._part = tag
        elif tag == "tr" and self._part == "tbody":
            self._scenario = a.get("data-scenario", "")
        elif tag == "th" and self._part == "thead" and "data-provider" in a:
            self.columns.append(a["data-provider"])
        elif tag == "td" and self._part == "tbody":
            self._cell = {"status": a.get("data-status", ""), "href": "", "text": ""}
            self.cells[(self._scenario, a["data-provider"])] = self._cell
        elif tag == "td" and self._part == "tfoot":
            self._total = a["data-provider"]
            self.totals[self._total] = ""
        elif tag == "a" and self._cell is not None:
            self._cell["href"] = a.get("href", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        if tag == "td":
            self._cell = None
            self._total = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data
        elif self._total is not None:
            self.totals[self._total] += data


def test_html_table_colours_cells_and_links_failures_to_their_rows(provider_run: RunResult) -> None:
    page = render_html(provider_run)
    parsed = _Matrix()
    parsed.feed(page)

    assert parsed.columns == ["openai", "anthropic", "gemini"]
    assert {key: (c["status"], c["text"].strip()) for key, c in parsed.cells.items()} == {
        ("chat_basic", "openai"): ("passed", "4 ✓ (1 n/a)"),
        ("chat_basic", "anthropic"): ("failed", "2 ✗ / 4 (1 skipped, 1 n/a)"),
        ("chat_basic", "gemini"): ("passed", "4 ✓ (1 n/a)"),
        ("chat_stream", "openai"): ("passed", "2 ✓"),
        ("chat_stream", "anthropic"): ("passed", "2 ✓"),
        ("chat_stream", "gemini"): ("error", "1 error / 2"),
    }
    links = {key: c["href"] for key, c in parsed.cells.items() if c["href"]}
    assert set(links) == {("chat_basic", "anthropic"), ("chat_stream", "gemini")}
    for href in links.values():
        assert href.startswith("#") and href[1:] in parsed.ids  # an in-page anchor that exists
    failing_row = page.split(f'id="{links[("chat_basic", "anthropic")][1:]}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-outcome="failed"' in failing_row and "usage_matches_truth" in failing_row
    assert parsed.totals["anthropic"].strip() == "3 passed · 2 failed"
    # badge colours are the outcome badges' own classes
    assert '<span class="badge o-failed"><a href="#' in page
    # after the summary (root causes), before the per-layer results
    assert page.index('id="summary"') < page.index('id="providers"') < page.index('id="results"')
    assert '<a href="#providers">Provider routes</a>' in page


def test_junit_names_every_route_and_carries_the_provider(provider_run: RunResult) -> None:
    root = ET.fromstring(render_junit(provider_run))
    cases = {
        (case.attrib["classname"], case.attrib["name"]): {
            p.attrib["name"]: p.attrib["value"] for p in case.iter("property")
        }
        for case in root.iter("testcase")
    }

    for provider in ("openai", "anthropic", "gemini"):
        key = ("scenario.usage_matches_truth", f"chat_basic[{provider}] [POST /v1/chat/completions]")
        assert cases[key]["provider"] == provider
    # a case that fails the run: the provider property comes before the failure element
    failed = next(
        c
        for c in root.iter("testcase")
        if c.attrib["name"] == "chat_basic[anthropic] [POST /v1/chat/completions]"
        and c.attrib["classname"] == "scenario.usage_matches_truth"
    )
    assert [child.tag for child in failed] == ["properties", "failure"]
    # results off the provider axis keep their names and carry no provider
    assert cases[("scenario.error_envelope_conforms", "bad_model_id [POST /v1/chat/completions]")] == {}
    assert cases[("property.status_code_conformance", "generated [POST /v1/chat/completions]")] == {}
    assert len(cases) == len(provider_run.results)  # every (check, name) pair is distinct


def test_junit_note_of_a_tolerated_failure_shares_the_one_properties_element(provider_run: RunResult) -> None:
    provider_run.results = [
        dataclasses.replace(r, severity=Severity.WARNING)
        if r.check == "usage_details_present" and r.provider == "anthropic"
        else r
        for r in provider_run.results
    ]
    root = ET.fromstring(render_junit(provider_run))
    case = next(
        c
        for c in root.iter("testcase")
        if c.attrib["classname"] == "scenario.usage_details_present" and "[anthropic]" in c.attrib["name"]
    )

    assert [child.tag for child in case] == ["properties", "system-out"]
    props = {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")}
    assert props == {"provider": "anthropic", "severity": "warning", "gating": "false"}


def test_the_terminal_line_counts_each_route(provider_run: RunResult, openai_only_run: RunResult) -> None:
    from gateproof.reports import provider_headline

    line = provider_headline(provider_run.results)
    assert line is not None and line.startswith("provider routes: openai ")
    routes = line.removeprefix("provider routes: ").split(" · ")
    assert [route.split()[0] for route in routes] == ["openai", "anthropic", "gemini"]
    for route in routes:
        name = route.split()[0]
        passed = sum(1 for r in provider_run.results if r.provider == name and r.outcome is Outcome.PASSED)
        assert route.startswith(f"{name} {passed} passed")
    assert "failed" in line  # the hand-built run has failures on a route
    assert provider_headline(openai_only_run.results) is None
