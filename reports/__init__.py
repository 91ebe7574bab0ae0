"""Reports: JUnit XML, a Markdown summary, a self-contained HTML page and load plots.

Everything here renders results and nothing else: the only gateproof modules it
reads are the results models (``gateproof.contract.results``,
``gateproof.load.results``), so a report can be rebuilt from a saved
``results.json`` without the suite, the load generator or a target.

Every renderer scrubs credentials again before rendering (see ``_redact``), even
though the producers already did.
"""

from __future__ import annotations

from gateproof.reports._files import ReportFiles, write_report
from gateproof.reports.html import render_html
from gateproof.reports.junit import render_junit
from gateproof.reports.markdown import render_markdown
from gateproof.reports.plots import render_timeline_plot, render_ttft_plot

__all__ = [
    "ReportFiles",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_timeline_plot",
    "render_ttft_plot",
    "write_report",
]
