"""``summary.md``: the few lines a CI step summary (or a pull-request comment) needs.

GitHub-flavoured Markdown, short on purpose: the verdict line, then what failed and
why, then per-layer counts, then the load figures, then where the full report is. The
detail (requests, responses, every passing case) belongs to the HTML report.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateproof.contract.results import Outcome, RunResult
from gateproof.load.results import LoadResult
from gateproof.reports._redact import redact_load, redact_run
from gateproof.reports._view import LoadView, RunView

__all__ = ["render_markdown"]

#: a step summary stays readable; the rest is one click away in the HTML report
MAX_FAILURE_ROWS = 50
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


def _run_lines(view: RunView) -> list[str]:
    run = view.run
    icon = "✅" if view.verdict == "PASS" else "❌"
    lines = [
        f"## {icon} gateproof: {view.verdict}",
        "",
        f"**{view.verdict}** · target {_code(run.target)} ({_code(run.base_url)}) · profile {_code(run.profile)} · "
        f"{view.counts_text} · run {_code(run.run_id)}",
        "",
    ]
    if run.interrupted:
        lines += ["> **Interrupted:** the run was stopped before it finished; it is not a pass.", ""]
    if run.unreachable is not None:
        lines += [f"> **Target unreachable:** {_cell(run.unreachable)}", ""]
    if view.attention:
        lines += ["### Failures", "", "| check | scenario | outcome | reason |", "| --- | --- | --- | --- |"]
        for row in view.attention[:MAX_FAILURE_ROWS]:
            r = row.result
            outcome = row.outcome_label if r.required else f"{row.outcome_label} (advisory)"
            scenario = f"{r.scenario} [{r.route}]" if r.route else r.scenario
            lines.append(
                f"| {_code(row.qualified_check)} | {_cell(scenario, 120)} | {outcome} | {_cell(r.reason)} |"
            )
        hidden = len(view.attention) - MAX_FAILURE_ROWS
        if hidden > 0:
            lines.append(f"| … | {hidden} more | | see the HTML report |")
        lines.append("")
    if view.groups:
        lines += [
            "### By layer",
            "",
            "| layer | passed | failed | error | not applicable |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for group in view.groups:
            c = group.counts
            lines.append(
                f"| {group.layer.value} | {c[Outcome.PASSED]} | {c[Outcome.FAILED]} | {c[Outcome.ERROR]} | "
                f"{c[Outcome.NOT_APPLICABLE]} |"
            )
        lines.append("")
    return lines


def _load_lines(views: list[LoadView], heading: bool) -> list[str]:
    if not views:
        return []
    first = views[0].figures
    lines = [f"## 📈 gateproof load: {_code(views[0].load.scenario)}" if heading else "### Load", ""]
    lines.append("| scenario | users | " + " | ".join(label for label, _ in first) + " |")
    lines.append("| --- | ---: | " + " | ".join("---:" for _ in first) + " |")
    for view in views:
        load = view.load
        cells = " | ".join(_cell(value, 60) for _, value in view.figures)
        lines.append(f"| {_code(load.scenario)} | {load.users} | {cells} |")
    lines.append("")
    for view in views:
        if view.failure_reasons:
            lines.append(f"Failure reasons ({_code(view.load.scenario)}):")
            lines += [f"- {count} x {_cell(reason, 200)}" for reason, count in view.failure_reasons[:10]]
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
    lines: list[str] = []
    if run is not None:
        lines += _run_lines(RunView.from_run(redact_run(run, secrets)))
    loads = [LoadView.from_load(redact_load(load, secrets))] if load is not None else []
    lines += _load_lines(loads, heading=run is None)
    if run is None and load is None:
        lines += ["## gateproof: nothing to report", ""]
    if report_path:
        lines += [f"Full report: {_code(report_path)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
