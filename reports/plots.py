"""Load plots as PNG bytes: the TTFT distribution, latency over time and compression time by prompt size.

Figures are drawn on matplotlib's Agg canvas directly (``Figure`` plus
``FigureCanvasAgg``), never through ``pyplot``: no display is needed, no global
figure state is kept between calls, and a CLI process that imported pyplot with
another backend is left alone. The bytes feed both the self-contained HTML report
(as data URIs) and ``gateproof load`` (as files).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gateproof.load.results import LoadResult

__all__ = ["PLOT_NAMES", "render_compression_plot", "render_timeline_plot", "render_ttft_plot"]

#: the plots a load run has, by the name used for files (``<name>.png``) and HTML hooks
#: (``compression`` only when the run measured compression)
PLOT_NAMES = ("ttft", "timeline", "compression")

_DPI = 100
_SIZE = (8.0, 4.0)
_COLORS = {
    "bars": "#4c72b0",
    "e2e_p50": "#4c72b0",
    "e2e_p95": "#dd8452",
    "ttft_p50": "#55a868",
    "requests": "#8c8c8c",
    "failures": "#c44e52",
    "p50": "#2f2f2f",
    "p99": "#c44e52",
    "chat": "#4c72b0",
    "compress": "#dd8452",
}


def _png(figure: Figure, path: Path | None) -> bytes:
    FigureCanvasAgg(figure)  # attaches itself to the figure: Agg, explicitly
    buffer = io.BytesIO()
    # No "Software" stamp: the same figures give the same bytes across matplotlib patch releases.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    data = buffer.getvalue()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data


def _no_data(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="#666666")
    axes.set_xticks([])
    axes.set_yticks([])


def _title(load: LoadResult, what: str) -> str:
    return f"{what} — {load.scenario}, {load.users} users"


def render_ttft_plot(load: LoadResult, path: Path | None = None) -> bytes:
    """Histogram of time to first token from ``load.ttft_histogram``; p50/p99 marked when known.

    Buckets are ``(upper bound ms, count)``; each bar spans from the previous bound
    (0 for the first) to its own. Returns the PNG and writes it to ``path`` if given.
    """
    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    buckets = sorted((float(upper), int(count)) for upper, count in load.ttft_histogram)
    if not buckets or not any(count for _, count in buckets):
        _no_data(axes, "no time-to-first-token samples")
    else:
        lefts, widths, counts = [], [], []
        lower = 0.0
        for upper, count in buckets:
            lefts.append(lower)
            widths.append(max(upper - lower, 1e-6))
            counts.append(count)
            lower = upper
        axes.bar(
            lefts, counts, width=widths, align="edge", color=_COLORS["bars"], edgecolor="white", linewidth=0.5
        )
        summary = load.latencies.get("ttft")
        if summary is not None:
            for label, value in (("p50", summary.p50), ("p99", summary.p99)):
                if math.isfinite(value):
                    axes.axvline(
                        value,
                        color=_COLORS[label],
                        linestyle="--",
                        linewidth=1.2,
                        label=f"{label} {value:.1f} ms",
                    )
            axes.legend(loc="upper right", frameon=False)
        axes.set_xlabel("time to first token (ms)")
        axes.set_ylabel("requests")
        axes.set_xlim(left=0)
        axes.grid(axis="y", alpha=0.3)
    axes.set_title(_title(load, "Time to first token"))
    return _png(figure, path)


def _series(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def render_timeline_plot(load: LoadResult, path: Path | None = None) -> bytes:
    """Latency over the run (e2e p50/p95, TTFT p50 per second) above requests and failures per second.

    Returns the PNG and writes it to ``path`` if given.
    """
    figure = Figure(figsize=(_SIZE[0], 5.0), dpi=_DPI, layout="constrained")
    latency, throughput = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    points = sorted(load.timeline, key=lambda p: p.t)
    if not points:
        _no_data(latency, "no timeline samples")
        _no_data(throughput, "")
    else:
        # A point covers the second [t, t+1): bars span it, lines sit at its middle.
        starts = [p.t for p in points]
        middles = [p.t + 0.5 for p in points]
        latency.plot(
            middles, _series([p.e2e_p50_ms for p in points]), color=_COLORS["e2e_p50"], label="e2e p50"
        )
        latency.plot(
            middles, _series([p.e2e_p95_ms for p in points]), color=_COLORS["e2e_p95"], label="e2e p95"
        )
        latency.plot(
            middles, _series([p.ttft_p50_ms for p in points]), color=_COLORS["ttft_p50"], label="TTFT p50"
        )
        latency.set_ylabel("latency (ms)")
        latency.set_ylim(bottom=0)
        latency.margins(y=0.25)
        latency.grid(alpha=0.3)
        latency.legend(loc="upper left", frameon=False, ncols=3)
        ok = [max(p.requests - p.failures, 0) for p in points]
        failed = [p.failures for p in points]
        throughput.bar(starts, ok, width=0.9, align="edge", color=_COLORS["requests"], label="requests/s")
        throughput.bar(
            starts, failed, width=0.9, align="edge", bottom=ok, color=_COLORS["failures"], label="failures/s"
        )
        # Head room above the tallest bar keeps the legend off the data.
        throughput.set_ylim(0, max(max(p.requests for p in points), 1) * 1.45)
        throughput.set_ylabel("requests / s")
        throughput.set_xlabel("seconds since start")
        throughput.grid(axis="y", alpha=0.3)
        throughput.legend(loc="upper left", frameon=False, ncols=2)
    latency.set_title(_title(load, "Latency over time"))
    return _png(figure, path)


def render_compression_plot(load: LoadResult, path: Path | None = None) -> bytes:
    """The server-reported compression ``time_ms`` against prompt size, one line per endpoint.

    x is the transcript's original token count (log scale, each point labelled with its size
    name). The upper panel is time_ms alone (p50 line, band up to p99), so a few milliseconds
    stay readable; the lower one sets it beside the client-observed latency of the same
    requests (p50), whose scale a chat completion's model time sets.
    Returns the PNG and writes it to ``path`` if given.
    """
    figure = Figure(figsize=(_SIZE[0], 5.5), dpi=_DPI, layout="constrained")
    server, client = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    cells = load.compression.cells if load.compression is not None else []
    if not cells:
        _no_data(server, "no compression samples")
        _no_data(client, "")
    else:
        endpoints = sorted({c.endpoint for c in cells}, key=[c.endpoint for c in cells].index)
        for endpoint in endpoints:
            mine = sorted((c for c in cells if c.endpoint == endpoint), key=lambda c: c.original_tokens)
            x = [max(c.original_tokens, 1) for c in mine]
            color = _COLORS.get(endpoint, _COLORS["p50"])
            p50 = [c.time_ms.p50 for c in mine]
            server.plot(x, p50, color=color, marker="o", label=f"{endpoint} p50")
            server.fill_between(
                x, p50, [c.time_ms.p99 for c in mine], color=color, alpha=0.18, label=f"{endpoint} p50 to p99"
            )
            client.plot(x, p50, color=color, marker="o", label=f"{endpoint} time_ms p50")
            client.plot(
                x,
                [c.latency.p50 for c in mine],
                color=color,
                linestyle=":",
                marker=".",
                label=f"{endpoint} client latency p50",
            )
            for cell in mine if endpoint == endpoints[0] else []:
                server.annotate(
                    cell.size,
                    (max(cell.original_tokens, 1), cell.time_ms.p50),
                    textcoords="offset points",
                    xytext=(0, 8),
                    ha="center",
                    fontsize=8,
                    color="#444444",
                )
        server.set_xscale("log")
        server.set_ylabel("time_ms (ms)")
        client.set_ylabel("ms")
        client.set_xlabel("prompt size (original tokens, log scale)")
        # head room above the data keeps each legend off it
        server.set_ylim(0, max(max(c.time_ms.p99 for c in cells), 1.0) * 1.35)
        client.set_ylim(0, max(max(max(c.latency.p50, c.time_ms.p50) for c in cells), 1.0) * 1.7)
        for axes in (server, client):
            axes.grid(alpha=0.3)
            axes.legend(loc="upper left", frameon=False, fontsize=8, ncols=2)
    users = load.compression.users if load.compression is not None and load.compression.users else load.users
    server.set_title(f"Compression time_ms reported by the gateway, by prompt size — {users} users")
    return _png(figure, path)
