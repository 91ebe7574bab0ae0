"""The load results model: what one load run measured.

A leaf module (no locust, no other gateproof imports) so that reports can render
load figures without importing the load generator, which patches the network
stack with gevent at import time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LOAD_SCHEMA_VERSION",
    "PLOT_FILES",
    "ArrivalResult",
    "Calibration",
    "CapacityResult",
    "CapacityStep",
    "CompressionCell",
    "CompressionResult",
    "Estimate",
    "LatencySummary",
    "LoadResult",
    "OverheadMetric",
    "PairedResult",
    "SloOutcome",
    "StreamTransparency",
    "TimelinePoint",
]

#: 1.1 added ``compression`` (the compression scenario's figures); 1.2 the open loop (``arrivals``),
#: the paired overhead (``paired``), streaming transparency, SLOs, capacity and calibration; older
#: files still read, without them
LOAD_SCHEMA_VERSION = "1.2"
_READABLE_VERSIONS = ("1.0", "1.1", LOAD_SCHEMA_VERSION)

#: every load plot, by name, and the file it is drawn to beside load.json (the load command draws
#: them with ``gateproof.reports``; a run lists the ones it has in ``artifacts["plot_<name>"]``)
PLOT_FILES = {
    name: f"{name}.png" for name in ("ttft", "timeline", "compression", "latency_cdf", "overhead", "capacity")
}


@dataclass(frozen=True)
class LatencySummary:
    """Distribution of one latency metric, in milliseconds."""

    metric: str
    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class TimelinePoint:
    """One second of the run: how many requests ended in it and their latencies."""

    t: float  # seconds since the start of the run
    requests: int
    failures: int
    e2e_p50_ms: float | None
    e2e_p95_ms: float | None
    ttft_p50_ms: float | None


@dataclass(frozen=True)
class CompressionCell:
    """Compressed requests of one endpoint (``chat`` or ``compress``) at one transcript size.

    ``time_ms`` is what the gateway reported (``compression.time_ms`` on a chat completion,
    ``compression.compression_time_ms`` from ``/v1/compress``), ``latency`` what the client
    observed for the same requests (send to last byte) and ``gap`` their per-request difference:
    the part of the wait that was not compression.
    """

    endpoint: str
    size: str
    #: successful requests measured (each contributes to all three distributions)
    count: int
    #: prompt tokens of the transcript before compression (the corpus's own count)
    original_tokens: int
    mean_saved_tokens: float
    #: mean of the per-request reductions, percent of the original prompt's tokens
    mean_reduction: float
    time_ms: LatencySummary
    latency: LatencySummary
    gap: LatencySummary


@dataclass
class CompressionResult:
    """What the compression scenario measured: one cell per (endpoint, transcript size)."""

    cells: list[CompressionCell] = field(default_factory=list)
    #: transcript sizes and endpoints the run sent, in the order they were asked for
    sizes: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    #: users and run time of the run that measured these cells
    users: int = 0
    duration_s: float = 0.0
    #: requests, failures and their reasons of the run that measured these cells
    requests: int = 0
    failures: int = 0
    failure_reasons: dict[str, int] = field(default_factory=dict)
    #: True when a separate run measured these cells and its result was attached to another
    #: scenario's (``gateproof run``'s compression phase beside the stream run): its failures
    #: then count in the verdict on their own; False when the cells belong to this run itself
    attached: bool = False
    #: why the compression run broke down, if it did
    error: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressionResult:
        data = dict(data)
        cells = []
        for cell in data.get("cells", []):
            cell = dict(cell)
            for metric in ("time_ms", "latency", "gap"):
                cell[metric] = LatencySummary(**cell[metric])
            cells.append(CompressionCell(**cell))
        data["cells"] = cells
        return cls(**data)


@dataclass(frozen=True)
class Estimate:
    """A figure with its bootstrap confidence interval (``low`` .. ``high``), in milliseconds."""

    value: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly on one side of 0 (the difference is real)."""
        return self.low > 0.0 or self.high < 0.0


@dataclass(frozen=True)
class OverheadMetric:
    """What the target added to one latency metric, from matched (baseline, target) pairs.

    Each pair contributes ``target - baseline`` (ms; negative when the target was faster); the
    percentiles are of those differences, each with a bootstrap interval.
    """

    metric: str
    #: matched pairs where both legs succeeded and measured this metric
    count: int
    mean: Estimate
    p50: Estimate
    p90: Estimate
    p99: Estimate
    p999: Estimate
    #: (fraction 0..1, added ms) points of the differences' distribution, for a plot
    cdf: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class PairedResult:
    """The same seeded schedule sent to a baseline (the provider directly, or another gateway)
    and to the target, interleaved in one run, requests matched by correlation id."""

    baseline_url: str
    baseline_model: str
    #: pairs whose both legs succeeded (each contributes to ``metrics``)
    pairs: int = 0
    #: pairs where one leg or both failed (left out of ``metrics``, counted here)
    unmatched: int = 0
    confidence: float = 0.95
    resamples: int = 0
    #: metric (ttfb, ttft, inter_chunk, e2e) -> what the target added
    metrics: dict[str, OverheadMetric] = field(default_factory=dict)
    #: the baseline leg's own figures (the target's are ``LoadResult.latencies``)
    baseline: dict[str, LatencySummary] = field(default_factory=dict)
    baseline_requests: int = 0
    baseline_failures: int = 0
    baseline_failure_reasons: dict[str, int] = field(default_factory=dict)
    #: metric -> (ms, cumulative fraction) points of each leg, for the CDF plot
    baseline_cdf: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    target_cdf: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    #: the timing the mock provider was asked for (tokens, ttft_ms, itl_ms), to read the figures by
    provider_timing: dict[str, float] = field(default_factory=dict)


@dataclass
class StreamTransparency:
    """Whether a target passes stream chunks on as the provider sent them (the mock's chunk stamps).

    Over the whole run: ``coalesced`` client events carrying more than one provider chunk,
    ``split`` provider chunks arriving over several events, ``missing`` chunks sent and never
    seen, and ``buffered_streams`` streams where content arrived in bursts after a wait.
    """

    streams: int = 0
    #: provider chunks stamped and seen by the client
    chunks: int = 0
    coalesced: int = 0
    split: int = 0
    missing: int = 0
    buffered_streams: int = 0
    #: per chunk, client arrival minus provider send (ms): the target leg's
    chunk_delay: LatencySummary | None = None
    #: the same on the baseline leg, for a paired run
    baseline_chunk_delay: LatencySummary | None = None
    #: per-chunk delay the target added over the baseline (paired runs only)
    added_chunk_delay: OverheadMetric | None = None


@dataclass
class ArrivalResult:
    """How requests were offered: an open loop's schedule and how well the generator kept it."""

    #: "constant" or "poisson" (an open loop); a closed loop has no ArrivalResult
    mode: str
    offered_rate: float
    seed: int
    #: requests the schedule held, and those sent (a run cut short sends fewer)
    scheduled: int = 0
    sent: int = 0
    achieved_rate: float = 0.0
    #: sends later than ``late_threshold_ms`` after their intended time
    late_sends: int = 0
    late_threshold_ms: float = 0.0
    #: intended send time to actual send time, ms
    lag: LatencySummary | None = None


@dataclass(frozen=True)
class SloOutcome:
    """One objective of the SLO file and what the run measured for it."""

    metric: str
    #: "<=" or ">="
    op: str
    threshold: float
    #: the measured value; None when the run did not measure the metric (which breaches it)
    value: float | None
    met: bool
    name: str = ""
    unit: str = ""


@dataclass(frozen=True)
class CapacityStep:
    """One arrival rate of a capacity search."""

    rate: float
    achieved_rate: float
    requests: int
    failures: int
    #: successful requests per second
    goodput: float
    met: bool
    #: metrics of the SLOs this step breached
    breaches: list[str] = field(default_factory=list)
    #: why the step is not a valid measurement (the generator could not keep the schedule)
    invalid: str = ""
    #: the step's e2e and TTFT p99 (ms; None when not measured), for latency against rate
    e2e_p99_ms: float | None = None
    ttft_p99_ms: float | None = None


@dataclass
class CapacityResult:
    """The arrival rate was stepped until an SLO broke: the highest rate that met every SLO."""

    steps: list[CapacityStep] = field(default_factory=list)
    #: the highest rate that met every SLO (None: not even the first step did)
    capacity_rate: float | None = None
    #: goodput at that rate
    goodput: float = 0.0
    step_duration_s: float = 0.0


@dataclass
class Calibration:
    """What this machine's load generator could drive against the mock directly, measured first."""

    url: str
    #: requests/s the generator reached against the mock with no provider delay
    max_rate: float
    #: the run is valid while its offered rate is at most this fraction of ``max_rate``
    safe_fraction: float
    offered_rate: float
    valid: bool
    detail: str = ""


@dataclass
class LoadResult:
    """Figures of one load run (one scenario against one base URL)."""

    scenario: str
    base_url: str
    users: int
    spawn_rate: float
    duration_s: float
    requests: int = 0
    failures: int = 0
    #: failure reason -> count (an error inside a 200 stream counts, with its rule name); every
    #: name is listed, with its meaning, in ``gateproof.load._failures``
    failure_reasons: dict[str, int] = field(default_factory=dict)
    requests_per_s: float = 0.0
    output_tokens_per_s: float = 0.0
    #: metric name (ttft, ttfb, inter_chunk, e2e, ...) -> summary
    latencies: dict[str, LatencySummary] = field(default_factory=dict)
    #: (upper bound of the bucket in ms, count) for the TTFT distribution plot
    ttft_histogram: list[tuple[float, int]] = field(default_factory=list)
    timeline: list[TimelinePoint] = field(default_factory=list)
    #: how percentiles were computed (histogram kind and resolution)
    histogram: str = ""
    #: name -> file written by the run (locust CSV, plots), relative to the results folder
    artifacts: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    #: output tokens of the successful requests (usage.completion_tokens, else content chunks)
    output_tokens: int = 0
    #: requests that got an HTTP status line back; 0 means the target never answered
    responses: int = 0
    #: seconds from the first request sent to the last one finished: the denominator of the rates
    window_s: float = 0.0
    #: what was sent (model, max_tokens, mock directive, key variable *name*, request and stop
    #: timeouts, locust command)
    settings: dict[str, str] = field(default_factory=dict)
    #: why the figures are incomplete (locust crashed or overran, so only the counts it last
    #: reported are here); empty for a run that completed
    error: str = ""
    #: the compression scenario's per-endpoint, per-size figures (None for other scenarios)
    compression: CompressionResult | None = None
    #: the open loop's schedule and how it was kept (None for a closed loop)
    arrivals: ArrivalResult | None = None
    #: the overhead over a baseline (None unless the run was paired)
    paired: PairedResult | None = None
    #: the chunk stamps' verdict on the stream (None unless the mock stamped chunks)
    transparency: StreamTransparency | None = None
    #: the SLO file's objectives, each with what was measured (empty without an SLO file)
    slos: list[SloOutcome] = field(default_factory=list)
    slo_file: str = ""
    capacity: CapacityResult | None = None
    calibration: Calibration | None = None
    #: why the run is not a valid measurement (the load generator, not the target, was the
    #: bottleneck); empty for a valid run
    invalid: str = ""
    #: locust worker processes that generated the load (1: a single process)
    workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema_version"] = LOAD_SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
        data = dict(data)
        version = data.pop("schema_version", None)
        if version not in _READABLE_VERSIONS:
            raise ValueError(f"load results schema version {version!r} is not {LOAD_SCHEMA_VERSION!r}")
        data["latencies"] = {k: LatencySummary(**v) for k, v in data.get("latencies", {}).items()}
        data["timeline"] = [TimelinePoint(**p) for p in data.get("timeline", [])]
        data["ttft_histogram"] = [(float(a), int(b)) for a, b in data.get("ttft_histogram", [])]
        compression = data.get("compression")
        data["compression"] = CompressionResult.from_dict(compression) if compression is not None else None
        data["arrivals"] = _arrivals(data.get("arrivals"))
        data["paired"] = _paired(data.get("paired"))
        data["transparency"] = _transparency(data.get("transparency"))
        data["slos"] = [SloOutcome(**o) for o in data.get("slos", [])]
        capacity = data.get("capacity")
        if capacity is not None:
            capacity = dict(capacity)
            capacity["steps"] = [CapacityStep(**step) for step in capacity.get("steps", [])]
            data["capacity"] = CapacityResult(**capacity)
        calibration = data.get("calibration")
        data["calibration"] = Calibration(**calibration) if calibration is not None else None
        return cls(**data)

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def _summary(data: dict[str, Any] | None) -> LatencySummary | None:
    return LatencySummary(**data) if data is not None else None


def _points(data: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    return {k: [(float(a), float(b)) for a, b in v] for k, v in data.items()}


def _overhead(data: dict[str, Any] | None) -> OverheadMetric | None:
    if data is None:
        return None
    data = dict(data)
    for name in ("mean", "p50", "p90", "p99", "p999"):
        data[name] = Estimate(**data[name])
    data["cdf"] = [(float(a), float(b)) for a, b in data.get("cdf", [])]
    return OverheadMetric(**data)


def _arrivals(data: dict[str, Any] | None) -> ArrivalResult | None:
    if data is None:
        return None
    data = dict(data)
    data["lag"] = _summary(data.get("lag"))
    return ArrivalResult(**data)


def _paired(data: dict[str, Any] | None) -> PairedResult | None:
    if data is None:
        return None
    data = dict(data)
    metrics = {k: _overhead(v) for k, v in data.get("metrics", {}).items()}
    data["metrics"] = {k: v for k, v in metrics.items() if v is not None}
    data["baseline"] = {k: LatencySummary(**v) for k, v in data.get("baseline", {}).items()}
    data["baseline_cdf"] = _points(data.get("baseline_cdf", {}))
    data["target_cdf"] = _points(data.get("target_cdf", {}))
    return PairedResult(**data)


def _transparency(data: dict[str, Any] | None) -> StreamTransparency | None:
    if data is None:
        return None
    data = dict(data)
    for name in ("chunk_delay", "baseline_chunk_delay"):
        data[name] = _summary(data.get(name))
    data["added_chunk_delay"] = _overhead(data.get("added_chunk_delay"))
    return StreamTransparency(**data)
