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

__all__ = ["LOAD_SCHEMA_VERSION", "LatencySummary", "LoadResult", "TimelinePoint"]

LOAD_SCHEMA_VERSION = "1.0"


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema_version"] = LOAD_SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
        data = dict(data)
        version = data.pop("schema_version", None)
        if version != LOAD_SCHEMA_VERSION:
            raise ValueError(f"load results schema version {version!r} is not {LOAD_SCHEMA_VERSION!r}")
        data["latencies"] = {k: LatencySummary(**v) for k, v in data.get("latencies", {}).items()}
        data["timeline"] = [TimelinePoint(**p) for p in data.get("timeline", [])]
        data["ttft_histogram"] = [(float(a), int(b)) for a, b in data.get("ttft_histogram", [])]
        return cls(**data)

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
