"""The reports part's surface, and the one-way data flow it promises."""

from __future__ import annotations

import ast
from pathlib import Path

import gateproof.reports as reports

REPORTS_DIR = Path(reports.__file__).parent
ALLOWED = {"gateproof.contract.results", "gateproof.load.results"}


def test_exported_names() -> None:
    assert sorted(reports.__all__) == [
        "FailureMatrix",
        "PLOT_NAMES",
        "PlotRenderer",
        "ReportFiles",
        "Verdict",
        "VerdictStatus",
        "failure_matrix_headline",
        "load_plots",
        "provider_headline",
        "render_capacity_plot",
        "render_compression_plot",
        "render_html",
        "render_junit",
        "render_latency_cdf_plot",
        "render_markdown",
        "render_overhead_plot",
        "render_timeline_plot",
        "render_ttft_plot",
        "verdict_of",
        "write_report",
    ]
    for name in reports.__all__:
        assert getattr(reports, name) is not None


def test_reports_import_only_the_results_models() -> None:
    imported: set[str] = set()
    for source in REPORTS_DIR.glob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, f"{source.name}: relative import"
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    foreign = {m for m in imported if m.startswith("gateproof.") and not m.startswith("gateproof.reports")}
    assert foreign == ALLOWED


def test_template_ships_with_the_package() -> None:
    assert (REPORTS_DIR / "templates" / "report.html.j2").is_file()
    assert (REPORTS_DIR / "templates" / "_failure_matrix.html.j2").is_file()
