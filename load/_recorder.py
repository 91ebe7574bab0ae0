"""Accumulates one locust process's measurements into HDR histograms and a timeline.

One :class:`Recorder` lives in each locust process. The locustfile adds a
:class:`~gateproof.load._measurement.Measurement` per finished request and asks
for a :class:`~gateproof.load._dump.LoadDump` when the test stops. Latencies are
recorded for successful requests only, so a burst of fast failures cannot make
the percentiles look better; failures are counted with their reason instead.

A request is registered when it is sent (:meth:`Recorder.begin`) and counted when it
ends (:meth:`Recorder.add`); whatever is still open when the test stops is counted as
failed by :meth:`Recorder.settle_in_flight`, so a request the run cut off is never lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from gateproof.load._compression import CompressionRecorder
from gateproof.load._dump import LoadDump, SecondDump
from gateproof.load._histograms import (
    TIMELINE_SIGNIFICANT_FIGURES,
    encode,
    new_histogram,
    record_all_seconds,
    record_seconds,
)
from gateproof.load._measurement import METRICS, Measurement
from gateproof.load._schedule import LATE_THRESHOLD_S

__all__ = ["TRANSPARENCY_COUNTS", "Recorder"]

#: the stream-transparency counters a recorder sums over the run (see StreamTransparency)
TRANSPARENCY_COUNTS = ("streams", "chunks", "coalesced", "split", "missing", "buffered_streams")

#: seconds a timeline second stays open (as live histograms) before it is encoded
_OPEN_SECONDS = 3


@dataclass
class _OpenSecond:
    requests: int = 0
    failures: int = 0
    output_tokens: int = 0
    e2e: HdrHistogram | None = None
    ttft: HdrHistogram | None = None

    def frozen(self) -> SecondDump:
        return SecondDump(
            requests=self.requests,
            failures=self.failures,
            output_tokens=self.output_tokens,
            e2e=encode(self.e2e) if self.e2e is not None else None,
            ttft=encode(self.ttft) if self.ttft is not None else None,
        )


@dataclass
class Recorder:
    """Counters, per-metric histograms and a per-second timeline for one process."""

    scenario: str
    clock: Callable[[], float] = time.time
    started_at: float = 0.0
    requests: int = 0
    failures: int = 0
    responses: int = 0
    output_tokens: int = 0
    first_request_at: float | None = None
    last_request_at: float | None = None
    failure_reasons: dict[str, int] = field(default_factory=dict)
    histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    _open: dict[int, _OpenSecond] = field(default_factory=dict)
    _closed: dict[int, SecondDump] = field(default_factory=dict)
    #: requests sent and not yet counted, by id()
    _in_flight: dict[int, Measurement] = field(default_factory=dict)
    #: the compression scenario's per-cell figures (stays empty for other scenarios)
    compression: CompressionRecorder = field(default_factory=CompressionRecorder)
    #: open loop: requests this process was given by the schedule, and the sends that were late
    scheduled: int = 0
    late_sends: int = 0
    #: stamped streams' counters (TRANSPARENCY_COUNTS), successful requests only
    transparency: dict[str, int] = field(default_factory=dict)
    #: paired runs: metric -> target minus baseline per matched pair, whole microseconds
    pairs: dict[str, list[int]] = field(default_factory=dict)
    unmatched_pairs: int = 0
    #: called with every finished measurement (the per-request JSON-lines log)
    on_record: Callable[[Measurement], None] | None = None

    def start(self, metrics: tuple[str, ...] = ()) -> None:
        """Start the run's clock; ``metrics``' histograms are made now (a 5-digit HDR histogram is
        about 10 MB, and allocating one mid-run would stall the sends of an open loop)."""
        self.started_at = self.clock()
        for metric in metrics:
            if metric not in self.histograms:
                self.histograms[metric] = new_histogram()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def begin(self, measurement: Measurement) -> None:
        """Register a request as it is sent, so that it is counted even if it never ends."""
        self._in_flight[id(measurement)] = measurement

    def settle_in_flight(self, reason: str) -> int:
        """Count every request still open as failed with ``reason``; return how many there were."""
        stuck = list(self._in_flight.values())
        for measurement in stuck:
            measurement.fail(reason)
            self.add(measurement)
        return len(stuck)

    def add(self, measurement: Measurement) -> None:
        """Count one finished request (called once per request, after its last byte)."""
        self._in_flight.pop(id(measurement), None)
        if self.on_record is not None:
            self.on_record(measurement)
        ended = self.clock()
        self.requests += 1
        if measurement.lag is not None:
            self._record("lag", measurement.lag)
            if measurement.lag > LATE_THRESHOLD_S:
                self.late_sends += 1
        if measurement.got_response:
            self.responses += 1
        if self.first_request_at is None or measurement.started_wall < self.first_request_at:
            self.first_request_at = measurement.started_wall
        if self.last_request_at is None or ended > self.last_request_at:
            self.last_request_at = ended
        second = self._second(int(ended))
        second.requests += 1
        if not measurement.ok:
            self.failures += 1
            second.failures += 1
            reason = measurement.reason or "unknown"
            self.failure_reasons[reason] = self.failure_reasons.get(reason, 0) + 1
            return
        self.output_tokens += measurement.output_tokens
        second.output_tokens += measurement.output_tokens
        self.compression.add(measurement)
        for metric in METRICS:
            value = getattr(measurement, metric)
            if value is None:
                continue
            if isinstance(value, list):
                if value:
                    record_all_seconds(self._histogram(metric), value)
            else:
                record_seconds(self._histogram(metric), value)
        if measurement.stamps:
            counts = self.transparency
            for name, value in (
                ("streams", 1),
                ("chunks", measurement.stamps),
                ("coalesced", measurement.coalesced),
                ("split", measurement.split),
                ("missing", measurement.missing),
                ("buffered_streams", int(measurement.buffered)),
            ):
                counts[name] = counts.get(name, 0) + value
            if measurement.chunk_delays:
                # a delay below 0 (clock granularity) is recorded as 0
                record_all_seconds(self._histogram("chunk_delay"), measurement.chunk_delays)
        if measurement.e2e is not None:
            if second.e2e is None:
                second.e2e = new_histogram(TIMELINE_SIGNIFICANT_FIGURES)
            record_seconds(second.e2e, measurement.e2e)
        if measurement.ttft is not None:
            if second.ttft is None:
                second.ttft = new_histogram(TIMELINE_SIGNIFICANT_FIGURES)
            record_seconds(second.ttft, measurement.ttft)

    def _histogram(self, metric: str) -> HdrHistogram:
        histogram = self.histograms.get(metric)
        if histogram is None:
            histogram = self.histograms[metric] = new_histogram()
        return histogram

    def _record(self, metric: str, seconds: float) -> None:
        record_seconds(self._histogram(metric), seconds)

    def pair(self, baseline: Measurement, target: Measurement) -> None:
        """Keep what the target added over the baseline for one matched pair (both legs must have
        succeeded; otherwise the pair is counted as unmatched). Times from the actual sends: the
        second leg of a pair is sent when the first ends, so neither leg's wait for its turn counts."""
        if not (baseline.ok and target.ok):
            self.unmatched_pairs += 1
            return
        for metric, (b, t) in _paired_values(baseline, target).items():
            self.pairs.setdefault(metric, []).append(round((t - b) * 1_000_000))

    def _second(self, key: int) -> _OpenSecond:
        second = self._open.get(key)
        if second is None:
            second = self._open[key] = _OpenSecond()
            for old in [k for k in self._open if k < key - _OPEN_SECONDS]:
                self._closed[old] = self._open.pop(old).frozen()
        return second

    def dump(self) -> LoadDump:
        """Everything recorded so far, encoded (the recorder can go on recording)."""
        timeline = dict(self._closed)
        timeline.update({key: second.frozen() for key, second in self._open.items()})
        return LoadDump(
            scenario=self.scenario,
            started_at=self.started_at,
            finished_at=self.clock(),
            first_request_at=self.first_request_at,
            last_request_at=self.last_request_at,
            requests=self.requests,
            failures=self.failures,
            responses=self.responses,
            output_tokens=self.output_tokens,
            failure_reasons=dict(sorted(self.failure_reasons.items())),
            histograms={
                metric: encode(h) for metric, h in sorted(self.histograms.items()) if h.get_total_count()
            },
            timeline={str(key): timeline[key] for key in sorted(timeline)},
            compression=self.compression.dump(),
            scheduled=self.scheduled,
            late_sends=self.late_sends,
            transparency=dict(sorted(self.transparency.items())),
            pairs={metric: list(values) for metric, values in sorted(self.pairs.items())},
            unmatched_pairs=self.unmatched_pairs,
        )

    def progress(self) -> dict[str, Any]:
        return {
            "elapsed": round(self.clock() - self.started_at, 3) if self.started_at else 0.0,
            "requests": self.requests,
            "failures": self.failures,
            "responses": self.responses,
            "in_flight": self.in_flight,
            "output_tokens": self.output_tokens,
            "first_request_at": self.first_request_at,
            "last_request_at": self.last_request_at,
            "failure_reasons": dict(sorted(self.failure_reasons.items())),
        }

    def write_progress(self, path: Path) -> None:
        """Refresh the small progress file the runner polls for its live line (and falls back on
        for load.json's counts if locust never gets to write its dump)."""
        temp = path.with_name(path.name + ".tmp")
        temp.write_text(json.dumps(self.progress()), encoding="utf-8")
        temp.replace(path)


def _service(measurement: Measurement, value: float | None) -> float | None:
    """A time counted from the intended send, turned into one counted from the actual send."""
    if value is None:
        return None
    return value - (measurement.lag or 0.0)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _paired_values(baseline: Measurement, target: Measurement) -> dict[str, tuple[float, float]]:
    """metric -> (baseline, target) seconds, for the metrics both legs measured."""
    candidates = {
        "ttfb": (_service(baseline, baseline.ttfb), _service(target, target.ttfb)),
        "ttft": (_service(baseline, baseline.ttft), _service(target, target.ttft)),
        "e2e": (_service(baseline, baseline.e2e), _service(target, target.e2e)),
        "inter_chunk": (_mean(baseline.inter_chunk), _mean(target.inter_chunk)),
        "chunk_delay": (_mean(baseline.chunk_delays), _mean(target.chunk_delays)),
    }
    return {k: (b, t) for k, (b, t) in candidates.items() if b is not None and t is not None}
