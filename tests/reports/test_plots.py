"""Load plots: real PNG images, drawn from the data, written to disk on request."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from matplotlib.image import imread

from gateproof.load.results import LoadResult
from gateproof.reports import render_timeline_plot, render_ttft_plot


def _pixels(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(imread(io.BytesIO(png), format="png"))


def test_ttft_plot_is_a_png_drawn_from_the_histogram(tmp_path: Path, load: LoadResult) -> None:
    target = tmp_path / "plots" / "ttft.png"
    png = render_ttft_plot(load, target)

    assert target.read_bytes() == png
    pixels = _pixels(png)
    assert pixels.shape[:2] == (400, 800)
    empty = _pixels(render_ttft_plot(dataclasses.replace(load, ttft_histogram=[])))
    # Bars cover far more of the canvas than the "no samples" message does.
    assert (pixels[..., :3] < 0.9).mean() > 2 * (empty[..., :3] < 0.9).mean()


def test_timeline_plot_follows_the_timeline(load: LoadResult) -> None:
    pixels = _pixels(render_timeline_plot(load))
    assert pixels.shape[:2] == (500, 800)

    shifted = dataclasses.replace(
        load, timeline=[dataclasses.replace(p, requests=p.requests * 3) for p in load.timeline]
    )
    assert not np.array_equal(pixels, _pixels(render_timeline_plot(shifted)))


def test_empty_load_still_renders(load: LoadResult) -> None:
    empty = dataclasses.replace(load, timeline=[], ttft_histogram=[], latencies={}, requests=0)

    assert _pixels(render_timeline_plot(empty)).shape[:2] == (500, 800)
    assert _pixels(render_ttft_plot(empty)).shape[:2] == (400, 800)


def test_same_data_gives_same_bytes(load: LoadResult) -> None:
    assert render_ttft_plot(load) == render_ttft_plot(load)
