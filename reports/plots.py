"""Load plots as PNG bytes: the TTFT distribution, latency over time, compression time by prompt size,
and for the runs that measured them the latency CDFs of a paired run's two legs, the distribution of
what the target added, and the capacity search.

Figures are drawn on matplotlib's Agg canvas directly (``Figure`` plus
``FigureCanvasAgg``), never through ``pyplot``: no display is needed, no global
figure state is kept between calls, and a CLI process that imported pyplot with
another backend is left alone. The bytes feed both the self-contained HTML report
(as data URIs) and ``gateproof load`` (as files). Which plots a run has is decided once,
by ``load_plots``, for the report files, the page and ``gateproof load`` alike.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from gateproof.load.results import PLOT_FILES, LoadResult

__all__ = [
    "PLOT_NAMES",
    "PlotRenderer",
    "load_plots",
    "render_capacity_plot",
    "render_compression_plot",
    "render_latency_cdf_plot",
    "render_overhead_plot",
    "render_timeline_plot",
    "render_ttft_plot",
]

#: the plots a load run can have, by the name used for files and HTML hooks (one home for the
#: names and their files: ``gateproof.load.results.PLOT_FILES``; ``load_plots`` says which a run has)
PLOT_NAMES = tuple(PLOT_FILES)

#: draws one plot of a load run: the PNG bytes, also written to the path when one is given
PlotRenderer = Callable[[LoadResult, Path | None], bytes]

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
    "offered": "#2f2f2f",
    "baseline": "#8c8c8c",
    "target": "#4c72b0",
    "e2e": "#4c72b0",
    "ttft": "#55a868",
    "ttfb": "#dd8452",
    "inter_chunk": "#8172b3",
    "achieved": "#4c72b0",
    "goodput": "#55a868",
    "met": "#55a868",
    "breached": "#c44e52",
}
#: added ms beyond which the overhead plot switches to a symmetric log axis
_LINEAR_OVERHEAD_MS = 50.0
#: the metrics of a paired run, in the order they are drawn
_PAIRED_METRICS = ("e2e", "ttft", "ttfb", "inter_chunk")
_METRIC_NAMES = {"e2e": "end to end", "ttft": "TTFT", "ttfb": "TTFB", "inter_chunk": "inter-chunk"}


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
    """``<what> — <scenario>, 32 users`` (a closed loop) or ``…, poisson 40 req/s`` (an open loop)."""
    if load.arrivals is not None:
        return f"{what} — {load.scenario}, {load.arrivals.mode} {load.arrivals.offered_rate:g} req/s"
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
        top: float = max(max(p.requests for p in points), 1)
        if load.arrivals is not None and load.arrivals.offered_rate > 0:
            # An open loop's schedule: the bars falling short of the line is the generator or the
            # target not keeping up.
            rate = load.arrivals.offered_rate
            throughput.axhline(
                rate, color=_COLORS["offered"], linestyle="--", linewidth=1.0, label=f"offered {rate:g}/s"
            )
            top = max(top, rate)
        # Head room above the tallest bar keeps the legend off the data.
        throughput.set_ylim(0, top * 1.45)
        throughput.set_ylabel("requests / s")
        throughput.set_xlabel("seconds since start")
        throughput.grid(axis="y", alpha=0.3)
        throughput.legend(loc="upper left", frameon=False, ncols=3)
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


def _paired_metrics(names: set[str]) -> list[str]:
    return [m for m in _PAIRED_METRICS if m in names] + sorted(names - set(_PAIRED_METRICS))


def _positive(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    kept = sorted((ms, fraction) for ms, fraction in points if ms > 0 and math.isfinite(ms))
    return [ms for ms, _ in kept], [fraction for _, fraction in kept]


def render_latency_cdf_plot(load: LoadResult, path: Path | None = None) -> bytes:
    """The cumulative distribution of each leg of a paired run: end to end and TTFT, baseline vs target.

    One panel per metric (end to end, then TTFT when the run streamed), x in ms on a log scale so a
    millisecond of overhead and a second of tail are both visible (linear when the samples span less
    than a factor of 10); the gap between the two curves
    at a height is what the target added at that percentile. The TTFT panel marks the TTFT the mock
    provider was configured for. Returns the PNG and writes it to ``path`` if given.
    """
    paired = load.paired
    drawn = (
        [m for m in ("e2e", "ttft") if m in paired.baseline_cdf or m in paired.target_cdf]
        if paired is not None
        else []
    )
    figure = Figure(figsize=(_SIZE[0], 4.0), dpi=_DPI, layout="constrained")
    if paired is None or not drawn:
        _no_data(figure.add_subplot(), "no paired latency samples")
        figure.suptitle(_title(load, "Latency CDF, baseline vs target"))
        return _png(figure, path)
    panels = figure.subplots(1, len(drawn), squeeze=False)[0]
    for axes, metric in zip(panels, drawn, strict=True):
        for leg, points, style in (
            ("baseline", paired.baseline_cdf.get(metric, []), "--"),
            ("target", paired.target_cdf.get(metric, []), "-"),
        ):
            x, y = _positive(points)
            if x:
                axes.step(x, y, where="post", color=_COLORS[leg], linestyle=style, linewidth=1.6, label=leg)
        configured = paired.provider_timing.get("ttft_ms") if metric == "ttft" else None
        if configured:
            axes.axvline(
                configured,
                color=_COLORS["p50"],
                linestyle=":",
                linewidth=1.0,
                label=f"configured {configured:g} ms",
            )
        xs = [
            ms
            for points in (paired.baseline_cdf.get(metric, []), paired.target_cdf.get(metric, []))
            for ms in _positive(points)[0]
        ]
        # a log axis only pays when the samples span an order of magnitude (a tail of seconds)
        wide = bool(xs) and max(xs) > 10 * min(xs)
        if xs:
            if wide:
                axes.set_xscale("log")
                axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
                axes.xaxis.set_minor_formatter(NullFormatter())
            axes.legend(loc="lower right", frameon=False, fontsize=8)
        else:
            _no_data(axes, "no samples")
        axes.set_ylim(0, 1.02)
        axes.set_xlabel(f"{_METRIC_NAMES.get(metric, metric)} (ms{', log scale' if wide else ''})")
        axes.set_ylabel("fraction of requests")
        axes.grid(alpha=0.3)
    figure.suptitle(_title(load, "Latency CDF, baseline vs target"))
    return _png(figure, path)


def render_overhead_plot(load: LoadResult, path: Path | None = None) -> bytes:
    """The distribution of what the target added: per metric, the CDF of the paired differences.

    x is the added milliseconds (target minus baseline, per pair; a symmetric log scale once a
    difference passes 50 ms, so a negative difference, a sub-millisecond median and a tail of
    seconds share one axis), y the
    fraction of pairs. The p50 and p99 of each metric are marked with their confidence interval
    as a horizontal bar; the line at 0 is "the target added nothing".
    Returns the PNG and writes it to ``path`` if given.
    """
    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    metrics = load.paired.metrics if load.paired is not None else {}
    drawn = [m for m in _paired_metrics(set(metrics)) if metrics[m].cdf]
    if not drawn:
        _no_data(axes, "no paired samples")
    else:
        for metric in drawn:
            overhead = metrics[metric]
            color = _COLORS.get(metric, _COLORS["p50"])
            points = sorted((added, fraction) for fraction, added in overhead.cdf if math.isfinite(added))
            axes.step(
                [added for added, _ in points],
                [fraction for _, fraction in points],
                where="post",
                color=color,
                linewidth=1.6,
                label=f"{_METRIC_NAMES.get(metric, metric)} (p50 {overhead.p50.value:+.3g} ms)",
            )
            for fraction, estimate in ((0.5, overhead.p50), (0.99, overhead.p99)):
                axes.errorbar(
                    [estimate.value],
                    [fraction],
                    xerr=[
                        [max(estimate.value - estimate.low, 0.0)],
                        [max(estimate.high - estimate.value, 0.0)],
                    ],
                    fmt="o",
                    color=color,
                    markersize=4,
                    capsize=3,
                )
        axes.axvline(0.0, color=_COLORS["p50"], linewidth=0.8)
        spread = max(
            (abs(added) for metric in drawn for _, added in metrics[metric].cdf if math.isfinite(added)),
            default=0.0,
        )
        # a tail far beyond the medians would squash them: a symmetric log axis keeps both
        wide = spread > _LINEAR_OVERHEAD_MS
        if wide:
            axes.set_xscale("symlog", linthresh=1.0)
            axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.set_ylim(0, 1.02)
        scale = "; symmetric log scale" if wide else ""
        axes.set_xlabel(f"added by the target (ms, per pair{scale})")
        axes.set_ylabel("fraction of pairs")
        axes.grid(alpha=0.3)
        axes.legend(loc="best", frameon=False, fontsize=8)
    pairs = load.paired.pairs if load.paired is not None else 0
    axes.set_title(_title(load, f"Overhead over the baseline, {pairs:,} pairs"))
    return _png(figure, path)


def render_capacity_plot(load: LoadResult, path: Path | None = None) -> bytes:
    """The capacity search: achieved rate and goodput against the offered rate, step by step, and
    each step's e2e p99 on a second axis.

    A step that met every SLO is a filled green marker, one that breached an SLO red, one the
    generator could not keep (invalid) hollow; the dashed diagonal is "achieved = offered" and the
    vertical line the capacity, the highest offered rate that met every SLO.
    Returns the PNG and writes it to ``path`` if given.
    """
    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    steps = sorted(load.capacity.steps, key=lambda s: s.rate) if load.capacity is not None else []
    if not steps:
        _no_data(axes, "no capacity steps")
    else:
        offered = [s.rate for s in steps]
        axes.plot(
            offered, [s.achieved_rate for s in steps], color=_COLORS["achieved"], label="achieved req/s"
        )
        axes.plot(
            offered, [s.goodput for s in steps], color=_COLORS["goodput"], linestyle="-.", label="goodput"
        )
        top = max(max(offered), max(s.achieved_rate for s in steps), 1.0)
        axes.plot(
            [0, top],
            [0, top],
            color=_COLORS["baseline"],
            linestyle="--",
            linewidth=0.8,
            label="achieved = offered",
        )
        for step in steps:
            color = _COLORS["met"] if step.met and not step.invalid else _COLORS["breached"]
            axes.plot(
                [step.rate],
                [step.achieved_rate],
                marker="o",
                markersize=7,
                color=color,
                markerfacecolor="none" if step.invalid else color,
            )
        capacity = load.capacity.capacity_rate if load.capacity is not None else None
        if capacity is not None:
            axes.axvline(
                capacity,
                color=_COLORS["met"],
                linestyle=":",
                linewidth=1.4,
                label=f"capacity {capacity:g} req/s",
            )
        axes.set_xlim(0, top * 1.05)
        axes.set_ylim(0, top * 1.3)
        axes.set_xlabel("offered rate (req/s)")
        axes.set_ylabel("req/s")
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", frameon=False, fontsize=8, ncols=2)
        latency = [(s.rate, s.e2e_p99_ms) for s in steps if s.e2e_p99_ms is not None]
        if latency:
            # latency against rate on a second axis: where it bends is where queueing starts
            right = axes.twinx()
            right.plot(
                [r for r, _ in latency],
                [v for _, v in latency],
                color=_COLORS["breached"],
                linestyle=":",
                marker="s",
                markersize=4,
                label="e2e p99 (ms)",
            )
            right.set_ylabel("e2e p99 (ms)")
            right.set_ylim(0, max(v for _, v in latency) * 1.3)
            right.legend(loc="upper right", frameon=False, fontsize=8)
    axes.set_title(_title(load, "Capacity: achieved rate against offered rate"))
    return _png(figure, path)


def load_plots(load: LoadResult) -> dict[str, PlotRenderer]:
    """The plots this load run has, by name (``<name>.png``), in the order the report shows them.

    Always the TTFT distribution and the timeline; the compression plot when the run measured
    compression; the two legs' CDFs and the overhead distribution when it was paired; the capacity
    plot when it stepped through rates.
    """
    plots: dict[str, PlotRenderer] = {"ttft": render_ttft_plot, "timeline": render_timeline_plot}
    if load.compression is not None:
        plots["compression"] = render_compression_plot
    if load.paired is not None:
        plots["latency_cdf"] = render_latency_cdf_plot
        plots["overhead"] = render_overhead_plot
    if load.capacity is not None and load.capacity.steps:
        plots["capacity"] = render_capacity_plot
    return plots
