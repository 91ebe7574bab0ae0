"""Reports: JUnit XML, a Markdown summary, a self-contained HTML page and load plots.

Everything here renders results and nothing else: the only gateproof modules it
reads are the results models (``gateproof.contract.results``,
``gateproof.load.results``), so a report can be rebuilt from a saved
``results.json`` without the suite, the load generator or a target.

The verdict (PASS, NEEDS ATTENTION, FAIL) has one definition, ``verdict_of`` in
``verdict``: the HTML banner, the Markdown headline, the JUnit document and the exit
code of ``gateproof run`` all read it.

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
from gateproof.reports.plots import render_compression_plot, render_timeline_plot, render_ttft_plot
from gateproof.reports.verdict import Verdict, VerdictStatus, verdict_of

__all__ = [
    "FailureMatrix",
    "ReportFiles",
    "Verdict",
    "VerdictStatus",
    "failure_matrix_headline",
    "provider_headline",
    "render_compression_plot",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_timeline_plot",
    "render_ttft_plot",
    "verdict_of",
    "write_report",
]
