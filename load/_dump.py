"""The file a locust process leaves behind: gateproof's own measurements of one run.

Each locust process (one for a local run, one per worker in a distributed run)
writes a :class:`LoadDump` as JSON when the test stops. Everything in it adds up:
counters are summed, histograms are HDR-encoded strings that merge exactly, and
the timeline is keyed by wall-clock second so processes line up without sharing
a clock origin. :func:`merge_dumps` is that sum.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateproof.load._compression import merge_compression
from gateproof.load._histograms import encode, merge

__all__ = ["DUMP_FORMAT", "LoadDump", "SecondDump", "merge_dumps", "read_dump"]

DUMP_FORMAT = "gateproof-load-dump/1"


@dataclass
class SecondDump:
    """One wall-clock second: requests that *ended* in it, and their latencies."""

    requests: int = 0
    failures: int = 0
    output_tokens: int = 0
    #: encoded histograms (2 significant digits) of successful requests' e2e and TTFT
    e2e: str | None = None
    ttft: str | None = None


@dataclass
class LoadDump:
    """Measurements of one or more locust processes (see the module docstring)."""

    scenario: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    first_request_at: float | None = None
    last_request_at: float | None = None
    requests: int = 0
    failures: int = 0
    #: requests that got an HTTP status line back (0 means the target never answered)
    responses: int = 0
    output_tokens: int = 0
    failure_reasons: dict[str, int] = field(default_factory=dict)
    #: metric -> encoded HDR histogram in microseconds (successful requests only)
    histograms: dict[str, str] = field(default_factory=dict)
    #: epoch second (as a string, JSON keys are strings) -> that second's figures
    timeline: dict[str, SecondDump] = field(default_factory=dict)
    processes: int = 1
    #: the compression scenario's cells, "<endpoint>/<size>" -> counts, sums and encoded
    #: histograms (``gateproof.load._compression``); empty for other scenarios
    compression: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: open loop: requests the schedule gave these processes, and the sends that were late
    scheduled: int = 0
    late_sends: int = 0
    #: stamped streams' counters (``gateproof.load._recorder.TRANSPARENCY_COUNTS``)
    transparency: dict[str, int] = field(default_factory=dict)
    #: paired runs: metric -> target minus baseline per matched pair (µs), and unmatched pairs
    pairs: dict[str, list[int]] = field(default_factory=dict)
    unmatched_pairs: int = 0
    #: paired runs: the baseline leg's own measurements (a dump of their own; None otherwise)
    baseline: LoadDump | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = DUMP_FORMAT
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadDump:
        data = dict(data)
        if data.pop("format", None) != DUMP_FORMAT:
            raise ValueError(f"not a {DUMP_FORMAT} file")
        data["timeline"] = {k: SecondDump(**v) for k, v in data.get("timeline", {}).items()}
        baseline = data.get("baseline")
        if baseline is not None:
            data["baseline"] = cls.from_dict({**baseline, "format": DUMP_FORMAT})
        return cls(**data)

    def write(self, path: Path) -> None:
        """Write atomically (temp file + rename), so a reader never sees half a dump."""
        temp = path.with_name(path.name + ".tmp")
        temp.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        temp.replace(path)


def read_dump(path: Path) -> LoadDump:
    return LoadDump.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _merged(encoded: Iterable[str | None]) -> str | None:
    histogram = merge(text for text in encoded if text)
    return encode(histogram) if histogram is not None else None


def _min(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def merge_dumps(dumps: list[LoadDump]) -> LoadDump:
    """The sum of several processes' dumps (one dump comes back unchanged in value)."""
    if not dumps:
        raise ValueError("no load dump to merge")
    reasons: dict[str, int] = {}
    for dump in dumps:
        for reason, count in dump.failure_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    metrics = sorted({metric for dump in dumps for metric in dump.histograms})
    histograms = {}
    for metric in metrics:
        text = _merged(dump.histograms.get(metric) for dump in dumps)
        if text is not None:
            histograms[metric] = text
    timeline: dict[str, SecondDump] = {}
    for key in sorted({key for dump in dumps for key in dump.timeline}, key=int):
        seconds = [dump.timeline[key] for dump in dumps if key in dump.timeline]
        timeline[key] = SecondDump(
            requests=sum(s.requests for s in seconds),
            failures=sum(s.failures for s in seconds),
            output_tokens=sum(s.output_tokens for s in seconds),
            e2e=_merged(s.e2e for s in seconds),
            ttft=_merged(s.ttft for s in seconds),
        )
    scenarios = sorted({dump.scenario for dump in dumps if dump.scenario})
    transparency: dict[str, int] = {}
    pairs: dict[str, list[int]] = {}
    for dump in dumps:
        for name, count in dump.transparency.items():
            transparency[name] = transparency.get(name, 0) + count
        for metric, values in dump.pairs.items():
            pairs.setdefault(metric, []).extend(values)
    baselines = [dump.baseline for dump in dumps if dump.baseline is not None]
    return LoadDump(
        scenario=",".join(scenarios),
        started_at=min(dump.started_at for dump in dumps),
        finished_at=max(dump.finished_at for dump in dumps),
        first_request_at=_min(dump.first_request_at for dump in dumps),
        last_request_at=_max(dump.last_request_at for dump in dumps),
        requests=sum(dump.requests for dump in dumps),
        failures=sum(dump.failures for dump in dumps),
        responses=sum(dump.responses for dump in dumps),
        output_tokens=sum(dump.output_tokens for dump in dumps),
        failure_reasons=dict(sorted(reasons.items())),
        histograms=histograms,
        timeline=timeline,
        processes=sum(dump.processes for dump in dumps),
        compression=merge_compression(dump.compression for dump in dumps),
        scheduled=sum(dump.scheduled for dump in dumps),
        late_sends=sum(dump.late_sends for dump in dumps),
        transparency=dict(sorted(transparency.items())),
        pairs=dict(sorted(pairs.items())),
        unmatched_pairs=sum(dump.unmatched_pairs for dump in dumps),
        baseline=merge_dumps(baselines) if baselines else None,
    )
