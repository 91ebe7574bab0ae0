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
    "CompressionCell",
    "CompressionResult",
    "LatencySummary",
    "LoadResult",
    "TimelinePoint",
]

#: 1.1 added ``compression`` (the compression scenario's figures); a 1.0 file still reads, without it
LOAD_SCHEMA_VERSION = "1.1"
_READABLE_VERSIONS = ("1.0", LOAD_SCHEMA_VERSION)


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
        return cls(**data)

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
