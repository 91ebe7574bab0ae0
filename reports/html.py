"""``index.html``: the full report, one self-contained file that opens offline.

Everything the page needs is inside it: CSS inline, plots as ``data:`` URIs, a few
lines of optional script (outcome filters). Nothing is fetched, so the file can be
attached to a CI run, mailed, or opened from disk years later and look the same.
Autoescaping is on: result text comes from the target under test and is untrusted.

The banner shows the one verdict of the page (``gateproof.reports.verdict``: PASS, NEEDS
ATTENTION or FAIL, load failures included) with every reason; the summary counts root
causes and lists the failures grouped by them, each with its severity and what the
official client made of the answer. When scenarios ran on two or more provider routes, a
"Provider routes" table (scenario by route, coloured like the outcome badges) follows the
summary, each failing cell linking to its first failure. When the run played the provider faults of
D48, a "Failure matrix" (fault by stream mode, each deviation with what was owed, what came and the
exception the official client raised) follows it. The time column is the request's latency.

A load run's section shows, when the run measured them (``reports/_load_sections.py``): an
"invalid run" banner, the SLO table with PASS / FAIL per objective, the paired overhead (each
percentile with its interval, next to the provider's configured timing, with the two legs' CDFs
and the overhead distribution drawn beside it), stream transparency, how the load was offered
(arrivals, calibration) and the capacity search with its plot.

The template renders lists of run and load views, so a page comparing several runs
only needs a new section in the template, not a new renderer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from pathlib import Path

import jinja2

from gateproof.contract.results import RESULTS_SCHEMA_VERSION, Outcome, RunResult
from gateproof.load.results import LoadResult
from gateproof.reports._failure_matrix import FailureMatrix
from gateproof.reports._load_sections import (
    CAPACITY_COLUMNS,
    LEG_COLUMNS,
    OVERHEAD_COLUMNS,
    SLO_COLUMNS,
    LoadSections,
)
from gateproof.reports._redact import redact_load, redact_run
from gateproof.reports._view import COMPRESSION_COLUMNS, OUTCOME_ORDER, LoadView, RunView, outcome_label
from gateproof.reports.plots import load_plots
from gateproof.reports.verdict import verdict_of

__all__ = ["render_html"]

_TEMPLATES = Path(__file__).parent / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["OUTCOMES"] = OUTCOME_ORDER
    env.globals["Outcome"] = Outcome
    env.globals["RESULTS_SCHEMA_VERSION"] = RESULTS_SCHEMA_VERSION
    env.globals["COMPRESSION_COLUMNS"] = COMPRESSION_COLUMNS
    env.globals["OVERHEAD_COLUMNS"] = OVERHEAD_COLUMNS
    env.globals["LEG_COLUMNS"] = LEG_COLUMNS
    env.globals["SLO_COLUMNS"] = SLO_COLUMNS
    env.globals["CAPACITY_COLUMNS"] = CAPACITY_COLUMNS
    env.filters["outcome_label"] = outcome_label
    return env


#: each plot's caption (and alt text) on the page
_PLOT_CAPTIONS = {
    "ttft": "Time to first token distribution",
    "timeline": "Latency and requests per second over time",
    "compression": "Compression time_ms reported by the gateway against prompt size",
    "latency_cdf": "Latency and TTFT CDFs, baseline (direct) vs target (through the gateway)",
    "overhead": "What the target added: the distribution of the paired differences",
    "capacity": "Achieved rate and goodput against offered rate",
}


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(
    run: RunResult | None,
    load: LoadResult | None = None,
    *,
    plots: Mapping[str, bytes] | None = None,
    title: str = "gateproof report",
    secrets: Iterable[str] = (),
) -> str:
    """The HTML report of a contract run and/or a load run.

    ``plots`` maps plot names (``plots.load_plots``: ``ttft``, ``timeline``, ``compression``,
    ``latency_cdf``, ``overhead``, ``capacity``) to PNG bytes already rendered (``write_report``
    draws them once for both the files and the page); a missing plot is drawn here from ``load``.
    ``secrets``: key values to scrub in every encoding.
    """
    secrets = tuple(secrets)
    clean_run = redact_run(run, secrets) if run is not None else None
    runs = [RunView.from_run(clean_run)] if clean_run is not None else []
    loads = []
    clean_load = None
    #: load view key -> the plots shown in its section
    images: dict[str, list[dict[str, str]]] = {}
    #: load view key -> its depth sections (SLOs, overhead, transparency, arrivals, capacity)
    sections: dict[str, LoadSections] = {}
    if load is not None:
        clean_load = redact_load(load, secrets)
        view = LoadView.from_load(clean_load)
        loads.append(view)
        sections[view.key] = LoadSections.from_load(clean_load)
        given = dict(plots or {})
        images[view.key] = [
            {
                "name": name,
                "alt": _PLOT_CAPTIONS[name],
                "src": _data_uri(given.get(name) or render(clean_load, None)),
            }
            for name, render in load_plots(clean_load).items()
        ]
    template = _environment().get_template("report.html.j2")
    verdict = verdict_of(clean_run, clean_load)
    matrices = {view.key: FailureMatrix.from_view(view) for view in runs}
    return template.render(
        title=title,
        runs=runs,
        loads=loads,
        images=images,
        sections=sections,
        verdict=verdict,
        matrices=matrices,
    )
