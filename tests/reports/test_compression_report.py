"""The compression section of the reports: summary.md's table, the HTML section and its plot, the verdict."""

from __future__ import annotations

import dataclasses
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from gateproof.contract.results import RunResult
from gateproof.load.results import CompressionCell, CompressionResult, LatencySummary, LoadResult
from gateproof.reports import render_compression_plot, render_html, render_markdown, verdict_of, write_report
from gateproof.reports.verdict import VerdictStatus

from .conftest import make_load


def _summary(metric: str, p50: float) -> LatencySummary:
    return LatencySummary(
        metric=metric, count=40, min=p50 * 0.5, mean=p50, p50=p50, p90=p50 * 1.5, p95=p50 * 1.7, p99=p50 * 2.0,
        max=p50 * 3.0,
    )  # fmt: skip


def _cell(endpoint: str, size: str, tokens: int, server_ms: float, client_ms: float) -> CompressionCell:
    return CompressionCell(
        endpoint=endpoint,
        size=size,
        count=40,
        original_tokens=tokens,
        mean_saved_tokens=tokens * 0.3,
        mean_reduction=30.0,
        time_ms=_summary("time_ms", server_ms),
        latency=_summary("latency", client_ms),
        gap=_summary("gap", client_ms - server_ms),
    )


def make_compression_load(*, attached: bool = False, failures: int = 0) -> LoadResult:
    """A stream run with a compression section: two endpoints, three sizes, time growing with size."""
    cells = [
        _cell(endpoint, size, tokens, server, server + client)
        for endpoint, client in (("chat", 120.0), ("compress", 4.0))
        for size, tokens, server in (("1k", 1010, 0.4), ("8k", 8050, 2.5), ("32k", 32100, 9.5))
    ]
    # the stream run itself passes, so the verdict turns on the compression section alone
    load = dataclasses.replace(make_load(), failures=0, failure_reasons={})
    load.compression = CompressionResult(
        cells=cells,
        sizes=["1k", "8k", "32k"],
        endpoints=["chat", "compress"],
        requests=240 + failures,
        failures=failures,
        failure_reasons={"compression_missing": failures} if failures else {},
        attached=attached,
    )
    return load


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(imread(io.BytesIO(png), format="png"))


def test_markdown_has_a_compression_table_with_time_ms_next_to_client_latency() -> None:
    text = render_markdown(None, make_compression_load())

    assert "### Compression under load" in text
    header = next(line for line in text.splitlines() if line.startswith("| endpoint | size |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns.index("time_ms p50") < columns.index("client p50")
    rows = [line for line in text.splitlines() if re.match(r"\| (chat|compress) \| \d+k \|", line)]
    assert len(rows) == 6
    chat_32k = next(r for r in rows if r.startswith("| chat | 32k |"))
    cells = [c.strip() for c in chat_32k.strip("|").split("|")]
    assert cells[2] == "32,100" and cells[4] == "9.50 ms" and cells[8] == "130 ms" and cells[-1] == "30.0 %"


def test_a_load_without_compression_has_no_compression_section(load: LoadResult) -> None:
    assert "Compression" not in render_markdown(None, load)
    assert 'id="compression' not in render_html(None, load)


class _Section(HTMLParser):
    """Rows and plots inside the page's compression section."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self.plots: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and (a.get("id") or "").startswith("compression"):
            self.sections.append(a.get("data-compression-cells") or "")
        if tag == "tr" and a.get("data-endpoint"):
            self.rows.append((a["data-endpoint"] or "", a.get("data-size") or ""))
        if tag == "img" and a.get("data-plot"):
            self.plots.append(a["data-plot"] or "")


def test_html_has_the_compression_section_and_plot() -> None:
    parser = _Section()
    parser.feed(render_html(None, make_compression_load()))

    assert parser.sections == ["6"]
    assert ("chat", "32k") in parser.rows and ("compress", "1k") in parser.rows and len(parser.rows) == 6
    assert parser.plots == ["ttft", "timeline", "compression"]


def test_the_compression_plot_is_drawn_from_the_cells(tmp_path: Path) -> None:
    load = make_compression_load()
    target = tmp_path / "compression.png"
    png = render_compression_plot(load, target)

    assert target.read_bytes() == png
    pixels = _pixels(png)
    assert pixels.shape[:2] == (550, 800)
    empty = _pixels(render_compression_plot(dataclasses.replace(load, compression=CompressionResult())))
    assert (pixels[..., :3] < 0.9).mean() > 2 * (empty[..., :3] < 0.9).mean()
    assert load.compression is not None
    slower = dataclasses.replace(
        load.compression,
        cells=[
            dataclasses.replace(c, time_ms=_summary("time_ms", c.time_ms.p50 * 3))
            for c in load.compression.cells
        ],
    )
    assert not np.array_equal(
        pixels, _pixels(render_compression_plot(dataclasses.replace(load, compression=slower)))
    )


def test_write_report_writes_the_compression_plot(tmp_path: Path, run: RunResult) -> None:
    files = write_report(tmp_path / "report", run, make_compression_load())

    assert files.plots["compression"].read_bytes().startswith(b"\x89PNG")
    assert '"compression": {' in files.results_json.read_text()


def test_an_attached_compression_phase_that_failed_fails_the_verdict() -> None:
    passing = verdict_of(None, make_compression_load(attached=True))
    failing = verdict_of(None, make_compression_load(attached=True, failures=3))

    assert passing.status is VerdictStatus.PASS
    assert failing.status is VerdictStatus.FAIL
    assert any("3 of 243 compression requests failed" in line for line in failing.failures)


@pytest.mark.browser
def test_the_compression_plot_decodes_in_a_browser(tmp_path: Path, run: RunResult) -> None:
    from .test_browser import _run_chromium

    page = write_report(tmp_path / "report", run, make_compression_load()).index_html
    done = _run_chromium(tmp_path / "profile", "--dump-dom", page.as_uri())

    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body\b[^>]*>", done.stdout)
    assert body is not None
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(0)))
    assert attributes["data-plots"] == "3" and attributes["data-plots-decoded"] == "3"
    assert 'data-compression-cells="6"' in done.stdout
