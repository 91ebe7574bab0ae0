"""``summary.md``: the few lines a CI step summary (or a pull-request comment) needs.

GitHub-flavoured Markdown, short on purpose: the verdict (``gateproof.reports.verdict``:
PASS, NEEDS ATTENTION or FAIL, load failures included) with the headline counts (root
causes first) and one line per reason; then the failures grouped by root cause (severity,
what the official client made of the answer, the scenarios, ``N of M cases`` for property
results), the results that could not be evaluated, the skipped ones (``because`` the check
that failed first), the provider routes (a scenario by route table, when scenarios ran on two
or more), the failure matrix (provider fault by mode, each deviation with what the official client
raised; when the run played D48's faults), per-layer counts, the load figures, and where the full report is. The detail
(requests, responses, every passing case) belongs to the HTML report.

A load run adds, when it measured them: an "invalid run" line, the SLO table (threshold, measured,
PASS / FAIL per objective), the paired overhead (p50 and p99 of what the target added, each with
its confidence interval, next to the provider's configured timing), one line each of stream
transparency (chunks coalesced, split, missing; buffered streams) and of the open loop's arrivals
(offered vs achieved rate, late sends), flagged figures marked, and the capacity figure. The CDFs,
the lag distribution and the capacity steps are on the HTML page.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateproof.contract.results import Outcome, RunResult
from gateproof.load.results import LoadResult
from gateproof.reports._failure_matrix import FailureMatrix
from gateproof.reports._load_sections import SLO_COLUMNS, Fact, LoadSections
from gateproof.reports._redact import redact_load, redact_run
from gateproof.reports._view import (
    COMPRESSION_COLUMNS,
    LoadView,
    ProviderMatrix,
    ResultRow,
    RunView,
    format_duration,
)
from gateproof.reports.verdict import Verdict, verdict_of

__all__ = ["render_markdown"]

#: a step summary stays readable; the rest is one click away in the HTML report
MAX_FAILURE_ROWS = 50
MAX_SKIPPED_ROWS = 20
_REASON_WIDTH = 300


def _cell(text: str, width: int = _REASON_WIDTH) -> str:
    """Text safe inside a table cell: one line, pipes escaped, bounded."""
    text = " ".join(text.split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|") or "—"


def _code(text: str) -> str:
    # Backticks inside a code span would end it early.
    return "`" + text.replace("`", "'") + "`" if text else "—"


def _scenario(row: ResultRow) -> str:
    r = row.result
    return f"{r.scenario} [{r.route}]" if r.route else r.scenario


def _verdict_lines(verdict: Verdict) -> list[str]:
    lines = [f"- ❌ {_cell(line)}" for line in verdict.failures]
    lines += [f"- ⚠️ {_cell(line)}" for line in verdict.notes]
    return [*lines, ""] if lines else []


def _cause_lines(view: RunView) -> list[str]:
    lines = ["### Root causes", ""]
    budget = MAX_FAILURE_ROWS
    hidden = 0
    for cause in view.root_causes:
        gating = " · fails the run" if cause.gating else ""
        lines.append(
            f"- **{cause.kind}**{gating} · {_code(cause.qualified_check)}: {_cell(cause.reason)} ({cause.summary})"
        )
        lines += [f"  - client: {_cell(text, 200)}" for text in cause.impacts[:3]]
        for row in cause.rows:
            if budget <= 0:
                hidden += 1
                continue
            budget -= 1
            tags = [row.severity] if row.severity else []
            if not row.result.required:
                tags.append("advisory")
            if row.cases:
                tags.append(row.cases)
            lines.append(f"  - {_cell(_scenario(row), 120)} · {' · '.join(tags)}")
    if hidden:
        lines.append(f"- … {hidden} more failures: see the HTML report")
    lines.append("")
    return lines


def _provider_lines(matrix: ProviderMatrix) -> list[str]:
    """The per-provider scenarios as a table: one row per scenario, one column per provider route."""
    lines = [
        "### Provider routes",
        "",
        "| scenario | " + " | ".join(_code(p) for p in matrix.providers) + " |",
        "| --- | " + " | ".join("---:" for _ in matrix.providers) + " |",
    ]
    for row in matrix.rows:
        cells = " | ".join(_cell(cell.text, 60) for cell in row.cells)
        lines.append(f"| {_code(row.scenario)} | {cells} |")
    lines.append("| **total** | " + " | ".join(f"**{_cell(t.text, 60)}**" for t in matrix.totals) + " |")
    lines.append("")
    return lines


def _failure_matrix_lines(matrix: FailureMatrix) -> list[str]:
    """The failure matrix: one row per provider fault, one column per mode (and route), then each deviation."""
    lines = [
        "### Failure matrix",
        "",
        _cell(matrix.headline, 600),
        "",
        "| provider fault | " + " | ".join(_cell(column.label, 60) for column in matrix.columns) + " |",
        "| --- | " + " | ".join("---" for _ in matrix.columns) + " |",
    ]
    for row in matrix.rows:
        cells = " | ".join(_cell(cell.text, 80) for cell in row.cells)
        lines.append(f"| {_cell(row.fault, 80)} | {cells} |")
    lines.append("")
    groups = [(cell, group) for cell in matrix.cells for group in cell.groups]
    if groups:
        lines += ["Deviations:", ""]
        for cell, group in groups[:MAX_FAILURE_ROWS]:
            finding = group.first
            tag = finding.severity or finding.outcome.replace("_", " ")
            lines.append(
                f"- **{_cell(f'{cell.fault} · {cell.column.label}', 120)}** ({tag}) · {_cell(group.summary)}"
            )
            lines += [f"  - client: {_cell(text, 200)}" for text in group.impacts[:2]]
        if len(groups) > MAX_FAILURE_ROWS:
            lines.append(f"- … {len(groups) - MAX_FAILURE_ROWS} more: see the HTML report")
        lines.append("")
    return lines


def _run_lines(view: RunView, verdict: Verdict) -> list[str]:
    run = view.run
    strict = " · strict (warnings fail)" if run.strict else ""
    lines = [
        f"## {verdict.icon} gateproof: {verdict.label}",
        "",
        f"**{verdict.label}** · {view.headline} · target {_code(run.target)} ({_code(run.base_url)}) · "
        f"profile {_code(run.profile)}{strict} · run {_code(run.run_id)}",
        "",
        *_verdict_lines(verdict),
    ]
    if run.interrupted:
        lines += ["> **Interrupted:** the run was stopped before it finished; it is not a pass.", ""]
    if run.unreachable is not None:
        lines += [f"> **Target unreachable:** {_cell(run.unreachable)}", ""]
    if view.root_causes:
        lines += _cause_lines(view)
    if view.errors:
        lines += [
            "### Not evaluated",
            "",
            "| check | scenario | outcome | reason |",
            "| --- | --- | --- | --- |",
        ]
        for row in view.errors[:MAX_FAILURE_ROWS]:
            r = row.result
            outcome = row.outcome_label if r.required else f"{row.outcome_label} (advisory)"
            lines.append(
                f"| {_code(row.qualified_check)} | {_cell(_scenario(row), 120)} | {outcome} | {_cell(r.reason)} |"
            )
        hidden = len(view.errors) - MAX_FAILURE_ROWS
        if hidden > 0:
            lines.append(f"| … | {hidden} more | | see the HTML report |")
        lines.append("")
    if view.skipped:
        lines += ["### Skipped", ""]
        lines += [
            f"- {_code(row.qualified_check)} {_cell(_scenario(row), 120)}: {_cell(row.skipped_text)}"
            for row in view.skipped[:MAX_SKIPPED_ROWS]
        ]
        if len(view.skipped) > MAX_SKIPPED_ROWS:
            lines.append(f"- … {len(view.skipped) - MAX_SKIPPED_ROWS} more: see the HTML report")
        lines.append("")
    if view.providers is not None:
        lines += _provider_lines(view.providers)
    matrix = FailureMatrix.from_view(view)
    if matrix is not None:
        lines += _failure_matrix_lines(matrix)
    if view.groups:
        lines += [
            "### By layer",
            "",
            "| layer | passed | failed | error | skipped | not applicable |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for group in view.groups:
            c = group.counts
            lines.append(
                f"| {group.layer.value} | {c[Outcome.PASSED]} | {c[Outcome.FAILED]} | {c[Outcome.ERROR]} | "
                f"{c[Outcome.SKIPPED]} | {c[Outcome.NOT_APPLICABLE]} |"
            )
        lines.append("")
    if view.operations:
        cases = sum(op.cases for op in view.operations)
        seconds = sum(op.seconds for op in view.operations)
        lines += [
            f"Property layer: {len(view.operations)} operations, {cases:,} generated cases in "
            f"{format_duration(seconds)}.",
            "",
        ]
    return lines


def _load_lines(views: list[LoadView], verdict: Verdict | None) -> list[str]:
    """The load table; ``verdict`` is given when the load run is all there is (it heads the summary)."""
    if not views:
        return []
    first = views[0].figures
    if verdict is not None:
        load = views[0].load
        lines = [
            f"## {verdict.icon} gateproof load: {verdict.label}",
            "",
            f"**{verdict.label}** · scenario {_code(load.scenario)} against {_code(load.base_url)} · "
            f"{load.users} users · failures: {views[0].failures_text}",
            "",
            *_verdict_lines(verdict),
        ]
    else:
        lines = ["### Load", ""]
        for view in views:
            if view.problem:
                lines += [f"> **Load fails the verdict:** {_cell(view.problem)}", ""]
    lines.append("| scenario | users | " + " | ".join(label for label, _ in first) + " |")
    lines.append("| --- | ---: | " + " | ".join("---:" for _ in first) + " |")
    for view in views:
        load = view.load
        cells = " | ".join(_cell(value, 60) for _, value in view.figures)
        lines.append(f"| {_code(load.scenario)} | {load.users} | {cells} |")
    lines.append("")
    for view in views:
        lines += _depth_lines(view)
    for view in views:
        lines += _compression_lines(view)
    for view in views:
        if view.failure_reasons:
            lines.append(f"Failure reasons ({_code(view.load.scenario)}):")
            lines += [f"- {count} x {_cell(reason, 200)}" for reason, count in view.failure_reasons[:10]]
            lines.append("")
    return lines


def _depth_lines(view: LoadView) -> list[str]:
    """The invalid-run line, the SLO table, the paired overhead, transparency, arrivals and capacity, when measured."""
    sections = LoadSections.from_load(view.load)
    lines: list[str] = []
    if sections.invalid:
        lines += [
            f"> **Invalid run:** the load generator, not the target, was the bottleneck: {_cell(sections.invalid)}",
            "",
        ]
    if sections.slos:
        lines += [f"### SLOs: {sections.slo_headline}", ""]
        if sections.slo_file:
            lines += [f"From {_code(sections.slo_file)}.", ""]
        lines.append("| " + " | ".join(SLO_COLUMNS) + " |")
        lines.append("| --- | --- | ---: | ---: | --- |")
        for row in sections.slos:
            name, metric, threshold, measured, result = row.cells
            mark = ("✅ " if row.met else "❌ ") + result
            lines.append(
                f"| {_cell(name, 80)} | {_code(metric)} | {_cell(threshold, 40)} | {_cell(measured, 40)} | {mark} |"
            )
        lines.append("")
    paired = sections.paired
    if paired is not None:
        confidence = f"{paired.paired.confidence:.0%}"
        lines += [f"### Gateway overhead ({paired.paired.pairs:,} pairs, {confidence} intervals)", ""]
        lines.append(f"Baseline {_code(paired.paired.baseline_url)}, target {_code(view.load.base_url)}.")
        if paired.timing:
            lines.append(f"The provider was configured for: {_cell(paired.timing_text, 200)}.")
        if paired.baseline_failures_text:
            lines.append(f"{_cell(paired.baseline_failures_text)}.")
        lines.append("")
        if paired.rows:
            lines += [
                "| metric | pairs | added p50 | added p99 | added mean |",
                "| --- | ---: | ---: | ---: | ---: |",
            ]
            lines += [
                f"| {row.label} | {row.pairs:,} | {row.p50.text} | {row.p99.text} | {row.mean.text} |"
                for row in paired.rows
            ]
            lines.append("")
        else:
            lines += ["No pair had both legs succeed: nothing to compare.", ""]
    for title, facts in (("Stream transparency", sections.transparency), ("Arrivals", sections.arrivals)):
        if facts:
            lines += [f"**{title}:** " + " · ".join(_fact(fact) for fact in facts), ""]
    if sections.capacity is not None:
        lines += [f"**Capacity:** {sections.capacity.figure}", ""]
    return lines


def _fact(fact: Fact) -> str:
    """``label value``, with a warning sign on a figure a reader should look at."""
    return ("⚠️ " if fact.flag else "") + f"{fact.label} {_cell(fact.value, 80)}"


def _compression_lines(view: LoadView) -> list[str]:
    """The compression table: the gateway's time_ms percentiles next to the client's latency."""
    if view.load.compression is None:
        return []
    lines = ["### Compression under load", "", _cell(view.compression_note, 600), ""]
    rows = view.compression_rows
    if not rows:
        return [*lines, "No compressed request was measured.", ""]
    lines.append("| " + " | ".join(COMPRESSION_COLUMNS) + " |")
    lines.append("| --- | --- | " + " | ".join("---:" for _ in COMPRESSION_COLUMNS[2:]) + " |")
    lines += ["| " + " | ".join(_cell(value, 60) for value in row.cells) + " |" for row in rows]
    lines.append("")
    return lines


def render_markdown(
    run: RunResult | None,
    load: LoadResult | None = None,
    *,
    report_path: str | None = None,
    secrets: Iterable[str] = (),
) -> str:
    """The Markdown summary of a contract run and/or a load run; ``report_path`` points at the HTML report.

    ``secrets``: key values to scrub in every encoding (see ``write_report``).
    """
    secrets = tuple(secrets)
    clean_run = redact_run(run, secrets) if run is not None else None
    clean_load = redact_load(load, secrets) if load is not None else None
    verdict = verdict_of(clean_run, clean_load)
    lines: list[str] = []
    if clean_run is not None:
        lines += _run_lines(RunView.from_run(clean_run), verdict)
    loads = [LoadView.from_load(clean_load)] if clean_load is not None else []
    lines += _load_lines(loads, verdict if clean_run is None else None)
    if run is None and load is None:
        lines += ["## gateproof: nothing to report", ""]
    if report_path:
        lines += [f"Full report: {_code(report_path)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
