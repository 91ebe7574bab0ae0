"""``write_report``: every report format for one run, written side by side in one folder.

The folder is what CI uploads as an artefact and what ``gateproof run`` points the
user at: ``index.html`` to read, ``summary.md`` for the step summary, ``junit.xml``
for the test tab, ``results.json`` to reload or diff, and the load plots as PNG files.

``results.json`` holds ``{"contract": <RunResult.to_dict()> | null, "load":
<LoadResult.to_dict()> | null}``, each part carrying its own ``schema_version``;
both are the redacted copies the other files were rendered from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateproof.contract.results import RunResult
from gateproof.load.results import PLOT_FILES, LoadResult
from gateproof.reports._redact import redact_load, redact_run
from gateproof.reports.html import render_html
from gateproof.reports.junit import render_junit
from gateproof.reports.markdown import render_markdown
from gateproof.reports.plots import load_plots

__all__ = ["ReportFiles", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    """The paths ``write_report`` wrote."""

    out_dir: Path
    index_html: Path
    summary_md: Path
    junit_xml: Path
    results_json: Path
    #: plot name (``plots.load_plots``: ``ttft``, ``timeline``, ...) -> PNG file; empty without a load run
    plots: dict[str, Path] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return [self.index_html, self.summary_md, self.junit_xml, self.results_json, *self.plots.values()]


def write_report(
    out_dir: Path, run: RunResult | None, load: LoadResult | None, *, secrets: Iterable[str] = ()
) -> ReportFiles:
    """Render every format into ``out_dir`` (created if needed) and return where each file went.

    ``secrets`` are key values the caller knows (the target's keys, a provider key): each is
    scrubbed from every file in every encoding, even if the results arrived unredacted. The
    values are used and dropped; no file carries them, not even hashed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    secrets = tuple(secrets)
    run = redact_run(run, secrets) if run is not None else None
    load = redact_load(load, secrets) if load is not None else None
    files = ReportFiles(
        out_dir=out_dir,
        index_html=out_dir / "index.html",
        summary_md=out_dir / "summary.md",
        junit_xml=out_dir / "junit.xml",
        results_json=out_dir / "results.json",
    )
    pngs: dict[str, bytes] = {}
    if load is not None:
        pngs = {name: render(load, None) for name, render in load_plots(load).items()}
        for name, data in pngs.items():
            path = out_dir / PLOT_FILES[name]
            path.write_bytes(data)
            files.plots[name] = path
    document = {
        "contract": run.to_dict() if run is not None else None,
        "load": load.to_dict() if load is not None else None,
    }
    files.results_json.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    files.junit_xml.write_text(render_junit(run, load), encoding="utf-8")
    files.summary_md.write_text(
        render_markdown(run, load, report_path=str(files.index_html)), encoding="utf-8"
    )
    files.index_html.write_text(render_html(run, load, plots=pngs), encoding="utf-8")
    return files
