"""Reports: JUnit XML, a Markdown summary, a self-contained HTML page and load plots.

Everything here renders results and nothing else: the only gateproof modules it
reads are the results models (``gateproof.contract.results``,
``gateproof.load.results``), so a report can be rebuilt from a saved
``results.json`` without the suite, the load generator or a target.

The verdict (PASS, NEEDS ATTENTION, FAIL) has one definition, ``verdict_of`` in
``verdict``: the HTML banner, the Markdown headline, the JUnit document and the exit
code of ``gateproof run`` all read it.

Which plots a load run has is ``load_plots(load)`` (name -> ``render_<name>_plot``), read by
``write_report``, the HTML page and ``gateproof load`` alike.

The failure matrix (provider fault by stream mode, ``FailureMatrix``) has one model, read by the
HTML page, ``summary.md`` and the terminal line (``failure_matrix_headline``).

Every renderer scrubs credentials again before rendering (see ``_redact``), even
though the producers already did.
"""

from __future__ import annotations

from gateproof.reports._failure_matrix import FailureMatrix, failure_matrix_headline
from gateproof.reports._files import ReportFiles, write_report
from gateproof.reports._view import provider_headline
from gateproof.reports.html import render_html
from gateproof.reports.junit import render_junit
from gateproof.reports.markdown import render_markdown
from gateproof.reports.plots import (
    PLOT_NAMES,
    PlotRenderer,
    load_plots,
    render_capacity_plot,
    render_compression_plot,
    render_latency_cdf_plot,
    render_overhead_plot,
    render_timeline_plot,
    render_ttft_plot,
)
from gateproof.reports.verdict import Verdict, VerdictStatus, verdict_of

__all__ = [
    "PLOT_NAMES",
    "FailureMatrix",
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
