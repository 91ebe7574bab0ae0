"""The report page in a real headless browser (Debian's chromium), loaded from disk.

Two runs of chromium: ``--dump-dom`` returns the DOM after the page's scripts ran (the
inline script records on <body> how many plots decoded and how many result rows
exist), and ``--screenshot`` shows that the page actually paints.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from gateproof.contract.results import RunResult
from gateproof.load.results import LoadResult
from gateproof.reports import write_report

pytestmark = pytest.mark.browser

CHROMIUM_TIMEOUT_S = 60
WINDOW = (1280, 2000)


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("chromium is not installed: run `make browser` (it installs Debian's chromium)")
    return path


def _run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)


@pytest.fixture
def report_page(tmp_path: Path, run: RunResult, load: LoadResult) -> Path:
    page: Path = write_report(tmp_path / "report", run, load).index_html
    return page


def test_page_renders_rows_and_decodes_plots(tmp_path: Path, report_page: Path, run: RunResult) -> None:
    # The fragment names the 4th result (a failure with a recorded exchange): its details open.
    done = _run_chromium(tmp_path / "profile-dom", "--dump-dom", report_page.as_uri() + "#r-4")

    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body\b[^>]*>", done.stdout)
    assert body is not None, done.stdout[:500]
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(0)))
    assert attributes["data-js"] == "ready"
    assert attributes["data-result-rows"] == str(len(run.results))
    assert attributes["data-plots"] == "2"
    assert attributes["data-plots-decoded"] == "2"
    # The filter bar is revealed by the script (without script it stays hidden).
    assert re.search(r'<div class="filters" data-table="results-table">', done.stdout)
    opened = re.findall(r'<tr id="(r-\d+)"(?:(?!</tr>).)*?<details open=""', done.stdout, flags=re.S)
    assert opened == ["r-4"]


def test_a_page_that_needs_attention_says_so(tmp_path: Path) -> None:
    from .conftest import make_warnings_only_run

    page = write_report(tmp_path / "attention", make_warnings_only_run(), None).index_html
    done = _run_chromium(tmp_path / "profile-attention", "--dump-dom", page.as_uri())

    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r'<body\b[^>]*data-verdict="attention"', done.stdout)
    assert '<div class="verdict-badge" id="verdict">NEEDS ATTENTION</div>' in done.stdout
    assert 'data-js="ready"' in done.stdout


def test_page_paints(tmp_path: Path, report_page: Path) -> None:
    shot = tmp_path / "page.png"
    done = _run_chromium(tmp_path / "profile-shot", f"--screenshot={shot}", report_page.as_uri())

    assert done.returncode == 0, done.stderr[-2000:]
    pixels = np.asarray(imread(io.BytesIO(shot.read_bytes()), format="png"))[..., :3]
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    # A blank or error page is one or two colours; the report has badges, tables and text.
    rgb = (pixels * 255).astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert colours.size > 200
    # The FAIL header paints its red badge near the top left.
    top = pixels[: WINDOW[1] // 10, : WINDOW[0] // 4]
    reddish = (top[..., 0] > 0.6) & (top[..., 1] < 0.4) & (top[..., 2] < 0.4)
    assert reddish.sum() > 500


def test_a_paired_load_page_decodes_every_plot_in_its_section(tmp_path: Path) -> None:
    """The depth sections (SLOs, overhead, capacity) render with their plots, all decoded."""
    from .conftest import make_paired_load

    load = make_paired_load()
    files = write_report(tmp_path / "paired", None, load)
    done = _run_chromium(tmp_path / "profile-paired", "--dump-dom", files.index_html.as_uri())

    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body\b[^>]*>", done.stdout)
    assert body is not None, done.stdout[:500]
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(0)))
    assert attributes["data-js"] == "ready"
    assert attributes["data-plots"] == str(len(files.plots)) == "5"
    assert attributes["data-plots-decoded"] == "5"
    for section in ("slos", "overhead", "transparency", "offered", "capacity"):
        assert f'id="{section}"' in done.stdout, section
    # the paired plots sit inside the overhead section, the capacity plot inside its own
    overhead = done.stdout.index('id="overhead"')
    assert overhead < done.stdout.index('data-plot="latency_cdf"') < done.stdout.index('id="transparency"')
    assert done.stdout.index('id="capacity"') < done.stdout.index('data-plot="capacity"')
