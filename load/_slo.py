"""The SLO file: thresholds on what a load run measured, and the one table of metric names they use.

An SRE gates a release on numbers ("p99 added TTFT at most 5 ms, error rate at most 0.1 %"), as
k6 does with thresholds. The SLO file names each number by a dotted metric name; this module
holds the only table of those names (``FAMILIES``: each name's unit and where it is read from
in a :class:`~gateproof.load.results.LoadResult`), reads the file into :class:`Slo` objects
with errors that name the file and the entry, and judges a result against them.

File format (YAML)::

    slos:
      - metric: overhead.ttft.p99.high   # ms; the interval's upper bound: a conservative gate
        max: 5
        name: p99 added TTFT              # optional, for the report
      - metric: error_rate
        max: 0.001
      - metric: requests_per_s
        min: 150

Each entry has ``metric`` and exactly one of ``max`` (the value must be at most it) or ``min``
(at least it), a plain number in the metric's unit, and an optional ``name``. A metric the run
did not measure (no paired baseline, no stream, no compression scenario) has no value, and an
SLO on it is breached: a gate that cannot be checked must not pass silently. Where a metric has
several values (``compression.*``: one per endpoint and transcript size) the worst one is
judged: the largest against ``max``, the smallest against ``min``.

Standard library, pyyaml and the results model only: no locust, no network.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateproof.load._measurement import METRICS
from gateproof.load.results import LatencySummary, LoadResult, OverheadMetric, SloOutcome

__all__ = [
    "FAMILIES",
    "LATENCY_STATS",
    "METRIC_NAMES",
    "OVERHEAD_STATS",
    "MetricFamily",
    "Slo",
    "evaluate",
    "load_slos",
    "metric_values",
    "slo_metrics_help",
]

#: the figures of a latency summary (``LatencySummary``), in milliseconds
LATENCY_STATS = ("min", "mean", "p50", "p90", "p95", "p99", "max")
#: the estimates of an overhead distribution (``OverheadMetric``), in milliseconds
OVERHEAD_STATS = ("p50", "p90", "p99", "p999", "mean")
#: the distributions of a compression cell (``CompressionCell``)
_COMPRESSION_METRICS = ("time_ms", "latency", "gap")

#: (result, *placeholder values) -> the measured values; empty when the run did not measure it
Reader = Callable[..., list[float]]


def _finite(value: float) -> list[float]:
    return [float(value)] if math.isfinite(value) else []


def _stat(summary: LatencySummary | None, stat: str) -> list[float]:
    if summary is None or summary.count == 0:
        return []
    return _finite(getattr(summary, stat))


def _estimate(overhead: OverheadMetric | None, stat: str, bound: str) -> list[float]:
    if overhead is None or overhead.count == 0:
        return []
    return _finite(getattr(getattr(overhead, stat), bound))


def _latency(result: LoadResult, metric: str, stat: str) -> list[float]:
    return _stat(result.latencies.get(metric), stat)


def _overhead_value(result: LoadResult, metric: str, stat: str) -> list[float]:
    paired = result.paired
    return _estimate(paired.metrics.get(metric) if paired else None, stat, "value")


def _overhead_high(result: LoadResult, metric: str, stat: str) -> list[float]:
    paired = result.paired
    return _estimate(paired.metrics.get(metric) if paired else None, stat, "high")


def _baseline(result: LoadResult, metric: str, stat: str) -> list[float]:
    paired = result.paired
    return _stat(paired.baseline.get(metric) if paired else None, stat)


def _error_rate(result: LoadResult) -> list[float]:
    return [result.failures / result.requests] if result.requests else []


def _requests_per_s(result: LoadResult) -> list[float]:
    return _finite(result.requests_per_s) if result.requests else []


def _output_tokens_per_s(result: LoadResult) -> list[float]:
    return _finite(result.output_tokens_per_s) if result.requests else []


def _achieved_rate(result: LoadResult) -> list[float]:
    return _finite(result.arrivals.achieved_rate) if result.arrivals else []


def _late_send_ratio(result: LoadResult) -> list[float]:
    arrivals = result.arrivals
    return [arrivals.late_sends / arrivals.sent] if arrivals and arrivals.sent else []


def _compression(result: LoadResult, metric: str, stat: str) -> list[float]:
    if result.compression is None:
        return []
    return [v for cell in result.compression.cells for v in _stat(getattr(cell, metric), stat)]


def _coalesced_ratio(result: LoadResult) -> list[float]:
    t = result.transparency
    return [t.coalesced / t.chunks] if t and t.chunks else []


def _buffered_streams(result: LoadResult) -> list[float]:
    t = result.transparency
    return [float(t.buffered_streams)] if t and t.streams else []


def _chunk_delay(result: LoadResult, stat: str) -> list[float]:
    t = result.transparency
    return _stat(t.chunk_delay if t else None, stat)


@dataclass(frozen=True)
class MetricFamily:
    """A pattern of metric names (``overhead.<metric>.<estimate>``), their unit and their reader.

    Each ``<placeholder>`` of ``pattern`` takes the values listed under it in ``slots`` (in the
    order the placeholders appear); the reader gets the result and those values.
    """

    pattern: str
    unit: str
    meaning: str
    read: Reader
    slots: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def names(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        """Every concrete name of the family, with the placeholder values it stands for."""
        for values in itertools.product(*(choices for _, choices in self.slots)):
            name = self.pattern
            for (placeholder, _), value in zip(self.slots, values, strict=True):
                name = name.replace(placeholder, value, 1)
            yield name, values


_LATENCY_SLOTS = (("<metric>", METRICS), ("<stat>", LATENCY_STATS))
_OVERHEAD_SLOTS = (("<metric>", METRICS), ("<estimate>", OVERHEAD_STATS))

#: every metric an SLO may name: the one table (docs/load.md shows it, a test keeps them equal)
FAMILIES: tuple[MetricFamily, ...] = (
    MetricFamily(
        "<metric>.<stat>",
        "ms",
        "the target's own latency distribution (ttfb, ttft, inter_chunk, tpot, e2e)",
        _latency,
        _LATENCY_SLOTS,
    ),
    MetricFamily(
        "overhead.<metric>.<estimate>",
        "ms",
        "what the target added over the baseline, paired runs (the estimate itself)",
        _overhead_value,
        _OVERHEAD_SLOTS,
    ),
    MetricFamily(
        "overhead.<metric>.<estimate>.high",
        "ms",
        "the upper bound of that estimate's confidence interval: a conservative gate",
        _overhead_high,
        _OVERHEAD_SLOTS,
    ),
    MetricFamily(
        "baseline.<metric>.<stat>",
        "ms",
        "the baseline leg's own latency distribution, paired runs",
        _baseline,
        _LATENCY_SLOTS,
    ),
    MetricFamily("error_rate", "ratio", "failed requests / requests (0.001 = 0.1 %)", _error_rate),
    MetricFamily("requests_per_s", "req/s", "requests finished per second of the run", _requests_per_s),
    MetricFamily(
        "output_tokens_per_s",
        "tokens/s",
        "output tokens of successful requests per second",
        _output_tokens_per_s,
    ),
    MetricFamily("achieved_rate", "req/s", "requests sent per second, open loop", _achieved_rate),
    MetricFamily(
        "late_send_ratio", "ratio", "sends later than the late threshold / sends, open loop", _late_send_ratio
    ),
    MetricFamily(
        "compression.<distribution>.<stat>",
        "ms",
        "per compression cell: server time_ms, client latency, their gap; the worst cell is judged",
        _compression,
        (("<distribution>", _COMPRESSION_METRICS), ("<stat>", LATENCY_STATS)),
    ),
    MetricFamily(
        "transparency.coalesced_ratio",
        "ratio",
        "client events carrying several provider chunks / provider chunks seen",
        _coalesced_ratio,
    ),
    MetricFamily(
        "transparency.buffered_streams",
        "streams",
        "streams whose content arrived in bursts after a wait",
        _buffered_streams,
    ),
    MetricFamily(
        "transparency.chunk_delay.<stat>",
        "ms",
        "per chunk, client arrival minus provider send (the mock's stamps)",
        _chunk_delay,
        (("<stat>", LATENCY_STATS),),
    ),
)


@dataclass(frozen=True)
class _Metric:
    family: MetricFamily
    values: tuple[str, ...]


_TABLE: dict[str, _Metric] = {
    name: _Metric(family, values) for family in FAMILIES for name, values in family.names()
}
#: every metric name an SLO may use, in the table's order
METRIC_NAMES: tuple[str, ...] = tuple(_TABLE)


def metric_values(metric: str, result: LoadResult) -> list[float]:
    """What ``result`` measured for ``metric`` (several values for per-cell metrics; empty: not
    measured). KeyError for a name outside the table."""
    entry = _TABLE[metric]
    return entry.family.read(result, *entry.values)


@dataclass(frozen=True)
class Slo:
    """One objective: ``metric`` must be ``<=`` (max) or ``>=`` (min) ``threshold``."""

    metric: str
    op: str
    threshold: float
    name: str = ""

    def __post_init__(self) -> None:
        if self.metric not in _TABLE:
            raise ValueError(_unknown_metric(self.metric))
        if self.op not in ("<=", ">="):
            raise ValueError(f"an SLO's op is '<=' (max) or '>=' (min), got {self.op!r}")

    @property
    def unit(self) -> str:
        return _TABLE[self.metric].family.unit

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g} {self.unit}"

    def judge(self, result: LoadResult) -> SloOutcome:
        """The measured value (the worst of several) and whether it meets the threshold."""
        values = metric_values(self.metric, result)
        value: float | None = None
        met = False
        if values:
            value = max(values) if self.op == "<=" else min(values)
            met = value <= self.threshold if self.op == "<=" else value >= self.threshold
        return SloOutcome(
            metric=self.metric,
            op=self.op,
            threshold=self.threshold,
            value=value,
            met=met,
            name=self.name,
            unit=self.unit,
        )


def evaluate(slos: Sequence[Slo], result: LoadResult) -> list[SloOutcome]:
    """Every SLO judged against ``result``, in the file's order."""
    return [slo.judge(result) for slo in slos]


_ENTRY_KEYS = ("metric", "max", "min", "name")


def _fail(path: Path, message: str) -> ValueError:
    return ValueError(f"SLO file {path}: {message}")


def _unknown_metric(metric: str) -> str:
    close = difflib.get_close_matches(metric, METRIC_NAMES, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    families = ", ".join(family.pattern for family in FAMILIES)
    return f"unknown metric {metric!r}{hint} (metrics: {families}; see docs/load.md)"


def _entry(path: Path, number: int, raw: object) -> Slo:
    if not isinstance(raw, Mapping):
        raise _fail(path, f"entry {number} must be a mapping with metric and max or min, got {raw!r}")
    metric = raw.get("metric")
    where = f"entry {number} ({metric})" if isinstance(metric, str) else f"entry {number}"
    unknown = sorted(str(key) for key in raw if key not in _ENTRY_KEYS)
    if unknown:
        raise _fail(path, f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(_ENTRY_KEYS)})")
    if not isinstance(metric, str) or not metric:
        raise _fail(path, f"{where}: missing metric (a metric name, e.g. overhead.ttft.p99)")
    if metric not in _TABLE:
        raise _fail(path, f"{where}: {_unknown_metric(metric)}")
    bounds = [key for key in ("max", "min") if key in raw]
    if len(bounds) != 1:
        what = "both max and min" if bounds else "neither max nor min"
        raise _fail(path, f"{where}: has {what}; give exactly one (write two entries for a range)")
    key = bounds[0]
    threshold = raw[key]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        unit = _TABLE[metric].family.unit
        raise _fail(path, f"{where}: {key} must be a finite number (in {unit}), got {threshold!r}")
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise _fail(path, f"{where}: name must be text, got {name!r}")
    return Slo(metric=metric, op="<=" if key == "max" else ">=", threshold=float(threshold), name=name)


def load_slos(path: str | Path) -> list[Slo]:
    """The SLOs of the YAML file at ``path``; ValueError naming the file and entry for any mistake."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read ({exc})") from exc
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(path, f"is not valid YAML: {exc}") from exc
    if data is None:
        raise _fail(path, "is empty; it needs a `slos:` list with at least one entry")
    if not isinstance(data, Mapping):
        raise _fail(path, f"must be a mapping with a `slos:` list, got {type(data).__name__}")
    extra = sorted(str(key) for key in data if key != "slos")
    if extra:
        raise _fail(path, f"unknown top-level key {', '.join(extra)} (the file holds one key, slos)")
    entries = data.get("slos")
    if entries is None or entries == []:
        raise _fail(path, "has no SLOs; `slos:` needs at least one entry")
    if not isinstance(entries, list):
        raise _fail(path, f"`slos:` must be a list of entries, got {type(entries).__name__}")
    return [_entry(path, number, raw) for number, raw in enumerate(entries, start=1)]


def slo_metrics_help() -> str:
    """The metric families, one per line, for a command's ``--help``."""
    lines = [f"  {family.pattern} ({family.unit}): {family.meaning}" for family in FAMILIES]
    return "\n".join(
        [
            *lines,
            f"  <metric>: {', '.join(METRICS)}; <stat>: {', '.join(LATENCY_STATS)}; "
            f"<estimate>: {', '.join(OVERHEAD_STATS)}; <distribution>: {', '.join(_COMPRESSION_METRICS)}",
        ]
    )
