"""The load section's depth: SLOs, paired overhead, transparency, arrivals, capacity, an invalid run.

Each section is on the page (and the SLO table and the overhead figures in summary.md) with the
figures of a hand-built result, and absent when the run did not measure it; the verdict fails on
a breached SLO or an invalid run; the new plots are drawn from the data.
"""

from __future__ import annotations

import dataclasses
import io
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from gateproof.load.results import (
    ArrivalResult,
    CapacityResult,
    LoadResult,
    PairedResult,
    SloOutcome,
)
from gateproof.reports import (
    PLOT_NAMES,
    PlotRenderer,
    load_plots,
    render_capacity_plot,
    render_html,
    render_junit,
    render_latency_cdf_plot,
    render_markdown,
    render_overhead_plot,
    render_timeline_plot,
    verdict_of,
    write_report,
)
from gateproof.reports.verdict import VerdictStatus

from .conftest import make_paired_load


class _Page(HTMLParser):
    """What the load section of a page holds: section ids, rows by kind, plots, flagged facts."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.attrs: dict[str, dict[str, str]] = {}
        self.slos: dict[str, bool] = {}
        self.overhead: list[str] = []
        self.real: list[str] = []
        self.legs: list[str] = []
        self.steps: dict[str, str] = {}
        self.plots: list[str] = []
        self.facts: dict[str, str] = {}
        self.flagged: list[str] = []
        self.nav: list[str] = []
        self._fact: str | None = None
        self._in_nav = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("id"):
            self.ids.append(a["id"])
            self.attrs[a["id"]] = a
        if tag == "nav":
            self._in_nav = True
        if tag == "a" and self._in_nav:
            self.nav.append(a.get("href", ""))
        if tag == "tr" and "data-slo" in a:
            self.slos[a["data-slo"]] = a["data-met"] == "true"
        if tag == "tr" and "data-overhead" in a:
            self.overhead.append(a["data-overhead"])
        if tag == "td" and a.get("data-real") == "true":
            self.real.append(self.overhead[-1])
        if tag == "tr" and "data-leg" in a:
            self.legs.append(a["data-leg"])
        if tag == "tr" and "data-rate" in a:
            self.steps[a["data-rate"]] = a["data-status"]
        if tag == "img" and a.get("data-plot"):
            self.plots.append(a["data-plot"])
            assert a["src"].startswith("data:image/png;base64,"), "plots are embedded, never fetched"
        for kind in ("transparency", "arrivals", "calibration"):
            if tag == "dd" and f"data-{kind}" in a:
                self._fact = f"{kind}.{a[f'data-{kind}']}"
                self.facts[self._fact] = ""
                if a.get("data-flag") == "true":
                    self.flagged.append(self._fact)

    def handle_endtag(self, tag: str) -> None:
        if tag == "dd":
            self._fact = None
        if tag == "nav":
            self._in_nav = False

    def handle_data(self, data: str) -> None:
        if self._fact is not None:
            self.facts[self._fact] += data


def _page(load: LoadResult) -> tuple[_Page, str]:
    html = render_html(None, load)
    page = _Page()
    page.feed(html)
    return page, html


def _text(html: str, element_id: str) -> str:
    """The text of the element with this id (tags stripped, whitespace folded)."""
    start = html.index(">", html.index(f'id="{element_id}"')) + 1
    end = html.index("</section>", start)
    return " ".join(re.sub(r"<[^>]+>", " ", html[start:end]).split())


def _pixels(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(imread(io.BytesIO(png), format="png"))


def _ink(png: bytes) -> float:
    return float((_pixels(png)[..., :3] < 0.9).mean())


# --- the HTML page -------------------------------------------------------------------------------


def test_the_page_has_every_depth_section_of_a_paired_open_loop_run() -> None:
    page, html = _page(make_paired_load())

    for section in ("slos", "overhead", "transparency", "offered", "capacity"):
        assert section in page.ids, section
    assert "invalid" not in page.ids
    assert page.nav == ["#load", "#slos", "#overhead", "#capacity"]
    # the plots: the two general ones at the end, the paired and capacity ones in their sections
    assert page.plots == ["latency_cdf", "overhead", "capacity", "ttft", "timeline"]
    overhead = html.index('id="overhead"')
    assert overhead < html.index('data-plot="latency_cdf"') < html.index('id="transparency"')
    assert html.index('id="capacity"') < html.index('data-plot="capacity"')


def test_the_slo_table_has_each_objective_with_its_threshold_measure_and_result() -> None:
    page, html = _page(make_paired_load())

    assert page.slos == {"overhead.ttft.p99.high": False, "error_rate": True, "requests_per_s": True}
    assert page.attrs["slos"]["data-breached"] == "1"
    text = _text(html, "slos")
    assert text.startswith("SLOs: 1 of 3 breached")
    assert "p99 added TTFT overhead.ttft.p99.high ≤ 5 ms 7.2 ms FAIL" in text
    assert "error rate error_rate ≤ 0.1 % 0 % PASS" in text
    assert "requests_per_s requests_per_s ≥ 35 req/s 39.6 req/s PASS" in text
    assert "From slo.yaml" in text


def test_an_unmeasured_objective_reads_not_measured_and_fails() -> None:
    load = make_paired_load()
    load.slos = [
        SloOutcome(
            metric="compression.time_ms.p95", op="<=", threshold=20.0, value=None, met=False, unit="ms"
        )
    ]

    page, html = _page(load)
    assert page.slos == {"compression.time_ms.p95": False}
    assert "compression.time_ms.p95 ≤ 20 ms not measured FAIL" in _text(html, "slos")
    verdict = verdict_of(None, load)
    assert verdict.status is VerdictStatus.FAIL
    assert (
        "load: 1 of 1 SLO breached (compression.time_ms.p95: not measured (owed <= 20 ms))"
        in verdict.failures
    )


def test_the_overhead_table_has_each_percentile_with_its_interval_next_to_the_provider_timing() -> None:
    page, html = _page(make_paired_load())

    assert page.overhead == ["e2e", "ttft", "inter_chunk"]
    # every estimate of the fixture has an interval above 0: each cell is marked real
    assert page.real == ["e2e"] * 5 + ["ttft"] * 5 + ["inter_chunk"] * 5
    text = _text(html, "overhead")
    assert (
        "The provider was configured for: time to first token 100 ms, between tokens 20.0 ms, output tokens 16."
        in text
    )
    assert "2,400 pairs where both legs succeeded, 6 left out because a leg failed" in text
    assert "95% bootstrap interval (2,000 resamples)" in text
    assert (
        "end to end 2,400 +2.61 ms +2.35 ms to +2.87 ms +4.18 ms +3.65 ms to +4.70 ms "
        "+4.80 ms +4.08 ms to +5.52 ms +12.0 ms +8.16 ms to +15.8 ms +3.13 ms +2.92 ms to +3.34 ms"
    ) in text
    # a sub-millisecond difference keeps three decimals (a fast gateway adds a fraction of a ms)
    assert "inter-chunk gap 2,400 +0.020 ms +0.018 ms to +0.022 ms" in text
    # each leg on its own: the baseline's metrics only, beside the target's
    assert page.legs == ["e2e", "ttft"]
    assert "time to first token 100 ms 104 ms 271 ms 281 ms" in text


def test_an_interval_that_straddles_zero_is_not_marked_real() -> None:
    load = make_paired_load()
    assert load.paired is not None
    e2e = load.paired.metrics["e2e"]
    load.paired.metrics["e2e"] = dataclasses.replace(
        e2e, p50=dataclasses.replace(e2e.p50, value=-0.2, low=-0.5, high=0.1)
    )

    page, html = _page(load)
    assert page.real.count("e2e") == 4
    assert "end to end 2,400 -0.200 ms -0.500 ms to +0.100 ms" in _text(html, "overhead")


def test_transparency_arrivals_and_calibration_figures_with_what_to_look_at_flagged() -> None:
    page, _ = _page(make_paired_load())

    assert page.facts["transparency.chunks"] == "19,200"
    assert page.facts["transparency.coalesced"] == "12"
    assert page.facts["transparency.chunk_delay"] == "p50 3.10 ms · p99 8.37 ms"
    assert page.facts["transparency.added_chunk_delay"].startswith("p50 +2.70 ms (+2.43 ms to +2.97 ms)")
    assert page.facts["arrivals.mode"] == "open loop, poisson arrivals (seed 7)"
    assert page.facts["arrivals.offered_rate"] == "40 req/s"
    assert page.facts["arrivals.achieved_rate"] == "39.6 req/s"
    assert page.facts["arrivals.late_sends"] == "3 (over 10.0 ms after their time)"
    assert page.facts["calibration.safe_rate"] == "450 req/s (50% of the maximum)"
    assert page.facts["calibration.valid"] == "yes"
    assert page.flagged == [
        "transparency.coalesced",
        "transparency.buffered_streams",
        "transparency.added_chunk_delay",
        "arrivals.late_sends",
    ]


def test_a_transparent_stream_flags_nothing() -> None:
    load = make_paired_load()
    assert load.transparency is not None and load.arrivals is not None
    load.transparency = dataclasses.replace(
        load.transparency, coalesced=0, buffered_streams=0, added_chunk_delay=None
    )
    load.arrivals = dataclasses.replace(load.arrivals, late_sends=0)

    page, _ = _page(load)
    assert page.flagged == []
    assert "transparency.added_chunk_delay" not in page.facts


def test_the_capacity_section_has_the_figure_the_steps_and_the_plot() -> None:
    page, html = _page(make_paired_load())

    assert page.steps == {"20.0": "met", "40.0": "met", "80.0": "breached"}
    assert page.attrs["capacity"]["data-capacity"] == "40.0"
    text = _text(html, "capacity")
    assert text.startswith("Capacity: 40 req/s (goodput 39.7 req/s)")
    assert "80 req/s 71.2 req/s 712 9 70.3 req/s FAIL overhead.ttft.p99.high, error_rate" in text
    assert "3 steps of 10.0 s each" in text


def test_a_search_where_no_rate_met_every_slo_says_so() -> None:
    load = make_paired_load()
    assert load.capacity is not None
    load.capacity = dataclasses.replace(load.capacity, capacity_rate=None, goodput=0.0)

    assert _text(_page(load)[1], "capacity").startswith("Capacity: none: no offered rate met every SLO")
    assert "**Capacity:** none: no offered rate met every SLO" in render_markdown(None, load)


def test_a_run_without_the_new_fields_has_none_of_the_sections(load: LoadResult) -> None:
    page, html = _page(load)

    for section in ("slos", "overhead", "transparency", "offered", "capacity", "invalid"):
        assert section not in page.ids, section
    assert page.plots == ["ttft", "timeline"]
    assert page.nav == ["#load"]
    assert "locust workers" not in html
    text = render_markdown(None, load)
    assert "SLO" not in text and "overhead" not in text and "Capacity" not in text


def test_an_invalid_run_has_a_banner_and_fails_the_verdict() -> None:
    load = dataclasses.replace(
        make_paired_load(), slos=[], invalid="1,180 of 1,200 sends were late (over 10 ms)"
    )

    page, html = _page(load)
    assert page.attrs["invalid"]["data-invalid"] == "true"
    assert "Invalid run: the load generator, not the target, was the bottleneck" in _text(html, "load")
    verdict = verdict_of(None, load)
    assert verdict.status is VerdictStatus.FAIL and verdict.exit_code == 1
    assert verdict.failures == (
        "load: the run is invalid (the load generator was the bottleneck): 1,180 of 1,200 sends were late "
        "(over 10 ms)",
    )
    assert "> **Invalid run:** the load generator, not the target, was the bottleneck: 1,180 of 1,200" in (
        render_markdown(None, load)
    )
    assert (
        '<failure message="the run is invalid (the load generator was the bottleneck): 1,180 of 1,200 sends '
        'were late (over 10 ms)" type="load">'
    ) in render_junit(None, load)


def test_an_invalid_calibration_is_flagged() -> None:
    load = make_paired_load()
    assert load.calibration is not None
    load.calibration = dataclasses.replace(
        load.calibration, offered_rate=800.0, valid=False, detail="800 req/s is beyond 450 req/s"
    )

    page, _ = _page(load)
    assert "calibration.valid" in page.flagged
    assert page.facts["calibration.detail"] == "800 req/s is beyond 450 req/s"


# --- summary.md ----------------------------------------------------------------------------------


def test_summary_has_the_slo_table_and_the_overhead_p50_p99_with_intervals() -> None:
    text = render_markdown(None, make_paired_load())
    lines = text.splitlines()

    start = lines.index("### SLOs: 1 of 3 breached")
    assert lines[start + 4 : start + 9] == [
        "| objective | metric | threshold | measured | result |",
        "| --- | --- | ---: | ---: | --- |",
        "| p99 added TTFT | `overhead.ttft.p99.high` | ≤ 5 ms | 7.2 ms | ❌ FAIL |",
        "| error rate | `error_rate` | ≤ 0.1 % | 0 % | ✅ PASS |",
        "| requests_per_s | `requests_per_s` | ≥ 35 req/s | 39.6 req/s | ✅ PASS |",
    ]
    assert "### Gateway overhead (2,400 pairs, 95% intervals)" in lines
    assert (
        "The provider was configured for: time to first token 100 ms, between tokens 20.0 ms, output tokens 16."
        in lines
    )
    assert (
        "| time to first token | 2,400 | +3.60 ms (+3.24 ms to +3.96 ms) | +7.20 ms (+6.12 ms to +8.28 ms) "
        "| +4.32 ms (+4.03 ms to +4.61 ms) |"
    ) in lines
    assert "**Capacity:** 40 req/s (goodput 39.7 req/s)" in lines
    assert "- ❌ load: 1 of 3 SLOs breached (p99 added TTFT: 7.2 ms > 5 ms)" in lines


def test_summary_has_one_line_each_of_transparency_and_arrivals_with_flagged_figures_marked() -> None:
    lines = render_markdown(None, make_paired_load()).splitlines()

    transparency = next(line for line in lines if line.startswith("**Stream transparency:**"))
    arrivals = next(line for line in lines if line.startswith("**Arrivals:**"))
    assert "chunks 19,200" in transparency and "⚠️ coalesced 12" in transparency
    assert "⚠️ split" not in transparency and "split 0" in transparency
    assert "open loop, poisson arrivals (seed 7)" in arrivals and "achieved rate 39.6 req/s" in arrivals
    assert "⚠️ late sends 3 (over 10.0 ms after their time)" in arrivals


def test_junit_has_a_case_per_slo_named_for_it_that_fails_when_breached() -> None:
    root = ET.fromstring(render_junit(None, make_paired_load()))
    cases = {case.get("name"): case for case in root.iter("testcase") if case.get("classname") == "load.slo"}

    assert set(cases) == {"p99 added TTFT", "error rate", "requests_per_s"}
    breached = cases["p99 added TTFT"].find("failure")
    assert breached is not None and breached.get("type") == "slo"
    assert breached.get("message") == "overhead.ttft.p99.high: measured 7.2 ms, threshold ≤ 5 ms"
    assert cases["error rate"].find("failure") is None
    props = {p.get("name"): p.get("value") for p in cases["error rate"].iter("property")}
    assert props == {"metric": "error_rate", "threshold": "≤ 0.1 %", "measured": "0 %"}
    load_suite = next(suite for suite in root.iter("testsuite") if suite.get("name") == "load")
    assert load_suite.get("tests") == "4" and load_suite.get("failures") == "2"


def test_a_run_without_an_slo_file_has_no_slo_cases() -> None:
    load = dataclasses.replace(make_paired_load(), slos=[])
    assert 'classname="load.slo"' not in render_junit(None, load)


def test_summary_of_a_paired_run_without_pairs_says_there_is_nothing_to_compare() -> None:
    load = make_paired_load()
    load.paired = PairedResult(baseline_url="http://127.0.0.1:9100", baseline_model="", unmatched=40)

    text = render_markdown(None, load)
    assert "### Gateway overhead (0 pairs, 95% intervals)" in text
    assert "No pair had both legs succeed: nothing to compare." in text


# --- the verdict ---------------------------------------------------------------------------------


def _met(load: LoadResult) -> LoadResult:
    return dataclasses.replace(load, slos=[dataclasses.replace(o, met=True) for o in load.slos])


def test_every_slo_met_passes_and_a_breach_fails_with_exit_1() -> None:
    met = verdict_of(None, _met(make_paired_load()))
    breached = verdict_of(None, make_paired_load())

    assert met.status is VerdictStatus.PASS and met.exit_code == 0
    assert breached.status is VerdictStatus.FAIL and breached.exit_code == 1


def test_the_steps_a_capacity_search_breached_do_not_change_the_verdict() -> None:
    load = _met(make_paired_load())
    assert load.capacity is not None and any(not step.met for step in load.capacity.steps)

    assert verdict_of(None, load).status is VerdictStatus.PASS


def test_a_broken_load_run_reports_only_that_it_broke_down() -> None:
    load = dataclasses.replace(make_paired_load(), error="locust exited with code 1", invalid="late sends")

    assert verdict_of(None, load).failures == ("load: the load run broke down: locust exited with code 1",)


def test_every_reason_is_listed_most_fundamental_first() -> None:
    load = dataclasses.replace(
        make_paired_load(), invalid="late sends", failures=3, failure_reasons={"HTTP 502": 3}
    )

    failures = verdict_of(None, load).failures
    assert len(failures) == 3
    assert failures[0] == "load: the run is invalid (the load generator was the bottleneck): late sends"
    assert failures[1] == "load: 3 of 1,268 requests failed (3 x HTTP 502)"
    assert failures[2].startswith("load: 1 of 3 SLOs breached")
    _, html = _page(load)
    start = html.index("data-load-problem")
    alert = html[start : html.index("</p>", start)]
    assert alert.endswith("; ".join(line.removeprefix("load: ") for line in failures).replace(">", "&gt;"))
    junit = render_junit(None, load)
    # the run's case lists every reason; the breached objective fails its own case too
    assert junit.count("<failure ") == 2 and "late sends; 3 of 1,268 requests failed" in junit
    assert junit.count('type="slo"') == 1


# --- plots ---------------------------------------------------------------------------------------


def test_load_plots_follow_the_fields_the_run_has(load: LoadResult) -> None:
    assert list(load_plots(load)) == ["ttft", "timeline"]
    assert list(load_plots(make_paired_load())) == ["ttft", "timeline", "latency_cdf", "overhead", "capacity"]
    no_steps = dataclasses.replace(make_paired_load(), capacity=CapacityResult())
    assert "capacity" not in load_plots(no_steps)
    assert set(load_plots(make_paired_load())) <= set(PLOT_NAMES)


@pytest.mark.parametrize(
    ("render", "size"),
    [
        (render_latency_cdf_plot, (400, 800)),
        (render_overhead_plot, (400, 800)),
        (render_capacity_plot, (400, 800)),
    ],
)
def test_each_new_plot_is_drawn_from_the_data(
    render: PlotRenderer, size: tuple[int, int], tmp_path: Path
) -> None:
    load = make_paired_load()
    target = tmp_path / "plot.png"
    png = render(load, target)

    assert target.read_bytes() == png
    assert _pixels(png).shape[:2] == size
    empty = dataclasses.replace(load, paired=None, capacity=None)
    assert _ink(png) > 1.5 * _ink(render(empty, None))
    assert render(load, None) == png  # the same data gives the same bytes


def test_the_cdf_plot_moves_with_the_target_leg() -> None:
    load = make_paired_load()
    assert load.paired is not None
    slower = dataclasses.replace(
        load.paired,
        target_cdf={m: [(ms * 1.5, f) for ms, f in pts] for m, pts in load.paired.target_cdf.items()},
    )

    assert not np.array_equal(
        _pixels(render_latency_cdf_plot(load)),
        _pixels(render_latency_cdf_plot(dataclasses.replace(load, paired=slower))),
    )


def test_the_overhead_plot_moves_with_the_differences() -> None:
    load = make_paired_load()
    assert load.paired is not None
    metrics = {
        name: dataclasses.replace(m, cdf=[(f, added + 5.0) for f, added in m.cdf])
        for name, m in load.paired.metrics.items()
    }
    shifted = dataclasses.replace(load, paired=dataclasses.replace(load.paired, metrics=metrics))

    assert not np.array_equal(_pixels(render_overhead_plot(load)), _pixels(render_overhead_plot(shifted)))


def test_the_timeline_draws_an_open_loops_offered_rate(load: LoadResult) -> None:
    open_loop = dataclasses.replace(load, arrivals=ArrivalResult(mode="constant", offered_rate=60.0, seed=1))

    assert not np.array_equal(_pixels(render_timeline_plot(load)), _pixels(render_timeline_plot(open_loop)))


def test_write_report_writes_every_plot_the_run_has(tmp_path: Path) -> None:
    files = write_report(tmp_path / "report", None, make_paired_load())

    assert sorted(files.plots) == ["capacity", "latency_cdf", "overhead", "timeline", "ttft"]
    for name, path in files.plots.items():
        assert path.name == f"{name}.png" and path.read_bytes().startswith(b"\x89PNG")
    page = _Page()
    page.feed(files.index_html.read_text())
    assert sorted(page.plots) == sorted(files.plots)


# --- saved results and redaction -----------------------------------------------------------------


def test_a_report_rebuilt_from_results_json_is_the_same() -> None:
    load = make_paired_load()
    again = LoadResult.from_dict(load.to_dict())

    assert render_markdown(None, again) == render_markdown(None, load)
    assert render_html(None, again) == render_html(None, load)


def test_keys_in_the_new_fields_reach_no_report_file(
    tmp_path: Path, planted_secrets: tuple[str, ...]
) -> None:
    key = planted_secrets[0]
    load = make_paired_load()
    assert load.paired is not None and load.calibration is not None and load.capacity is not None
    load.paired.baseline_url = f"http://127.0.0.1:9100/?api_key={key}"
    load.paired.baseline_failures = 2
    load.paired.baseline_failure_reasons = {f"HTTP 401: bad key {key}": 2}
    load.calibration.detail = f"calibrated with {key}"
    load.invalid = f"late sends under key {key}"
    load.capacity.steps[2] = dataclasses.replace(load.capacity.steps[2], invalid=f"late with {key}")

    files = write_report(tmp_path / "report", None, load, secrets=planted_secrets)
    for path in files.paths:
        assert key.encode() not in path.read_bytes(), path.name
    assert "HTTP 401: bad key [redacted]" in files.index_html.read_text()
