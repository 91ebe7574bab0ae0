"""The compression scenario: long agent transcripts sent for compression, and what the gateway says it took.

Each request of the scenario carries one transcript of the project's corpus
(``gateproof.openapi.load_transcript``) with ``X-Edgee-Enable-Compression: true``, to one of
two endpoints:

- ``chat``: ``POST /chat/completions``, not streamed (the ``compression`` object is then one
  field of one JSON body, read after the last byte, so reading it never lands in a timing);
  the mock directive keeps the answer short, so the wait is mostly the prompt's way through;
- ``compress``: ``POST /compress``, the same body; no model is called and the answer echoes
  the body with its messages compressed plus a ``compression`` report.

Every user cycles through every (endpoint, size) pair in turn, starting at a different pair
per user, so each cell gets about the same number of requests whatever the run's length.

Per successful request the server-reported compression time (``time_ms``, or
``compression_time_ms`` from ``/v1/compress``) is recorded as its own metric in an HDR
histogram per cell, next to the client-observed latency (send to last byte) and the gap
between the two. The server's time can never exceed what the client saw; a request where it
does (both rounded up to whole milliseconds, as D32 has the server round) fails as
``compression_time_exceeds_latency``, and an answer without a usable
``compression`` object as ``compression_missing`` (see ``gateproof.load._failures``).

The histograms here keep 3 significant digits (every value within 0.1 % of itself): 18 cells'
worth of 5-digit histograms would cost about 10 MB each, and the times compared here are
whole milliseconds on the server's side anyway.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from gateproof.contract import JSONTooDeep, loads_bounded
from gateproof.load._analysis import timed_json_answer
from gateproof.load._failures import (
    COMPRESSION_MISSING,
    COMPRESSION_TIME_EXCEEDS_LATENCY,
    NOT_COMPRESSED_BODY,
)
from gateproof.load._histograms import decode, encode, merge, new_histogram, record_seconds, summarize
from gateproof.load._measurement import Measurement
from gateproof.load.results import CompressionCell, CompressionResult
from gateproof.openapi import COMPRESSION_HEADER

__all__ = [
    "COMPRESSION_HEADER",
    "COMPRESSION_METRICS",
    "COMPRESSION_SIGNIFICANT_FIGURES",
    "DEFAULT_TRANSCRIPT_SIZES",
    "ENDPOINTS",
    "CompressionRecorder",
    "CompressionSample",
    "PlannedRequest",
    "analyze_compress",
    "compression_plan",
    "compression_result",
    "judge_chat_compression",
    "merge_compression",
    "parse_transcript_sizes",
]

#: the endpoints the scenario loads, by the name its figures carry
ENDPOINTS = ("chat", "compress")
#: 128k is left out by default: one 128k transcript is ~0.5 MB of JSON per request, which a
#: 2-core machine spends most of a short run tokenising; ask for it with --transcript-sizes
DEFAULT_TRANSCRIPT_SIZES = ("1k", "8k", "32k")
#: the three distributions of one cell, in the order reports show them
COMPRESSION_METRICS = ("time_ms", "latency", "gap")
COMPRESSION_SIGNIFICANT_FIGURES = 3
#: the last message that carries the mock directive when a transcript does not end on a user turn
_CLOSING_PROMPT = "Summarise the state of the work above in one sentence."


def parse_transcript_sizes(text: str) -> tuple[str, ...]:
    """``"1k,8k"`` -> ``("1k", "8k")``, each a size of the corpus, no repeats; ValueError otherwise."""
    from gateproof.openapi import TRANSCRIPT_SIZES

    sizes = tuple(part.strip() for part in text.split(",") if part.strip())
    if not sizes:
        raise ValueError("no transcript size given")
    unknown = [size for size in sizes if size not in TRANSCRIPT_SIZES]
    if unknown:
        raise ValueError(
            f"unknown transcript size {', '.join(unknown)}; choose from {', '.join(TRANSCRIPT_SIZES)}"
        )
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"transcript sizes repeat: {text!r}")
    return sizes


@dataclass(frozen=True)
class CompressionSample:
    """What the gateway reported about compressing one request."""

    endpoint: str
    size: str
    original_tokens: int
    saved_tokens: int
    #: percent of the original prompt's tokens removed
    reduction: float
    time_ms: float


@dataclass(frozen=True)
class PlannedRequest:
    """One (endpoint, size) pair of the cycle: the body to send and what to label its figures with."""

    endpoint: str
    size: str
    original_tokens: int
    body: dict[str, Any]


def _with_directive(messages: Sequence[Mapping[str, Any]], directive: str) -> list[dict[str, Any]]:
    """The transcript's messages with the mock directive at the end of the last user turn.

    The directive must be in the last user message for the mock to read it; when the transcript
    ends on another role (a tool result, say) a short closing user turn is added to carry it.
    """
    out = [dict(message) for message in messages]
    if not directive:
        return out
    last = out[-1] if out else None
    if last is not None and last.get("role") == "user" and isinstance(last.get("content"), str):
        last["content"] = f"{last['content']} {directive}"
    else:
        out.append({"role": "user", "content": f"{_CLOSING_PROMPT} {directive}"})
    return out


def compression_plan(
    sizes: Sequence[str], *, model: str, directive: str, max_tokens: int | None
) -> list[PlannedRequest]:
    """Every (endpoint, size) request of the cycle, in the order a user walks through them."""
    from gateproof.openapi import load_transcript

    plan = []
    for size in sizes:
        transcript = load_transcript(size)
        body: dict[str, Any] = {"model": model, "messages": _with_directive(transcript.messages, directive)}
        if transcript.tools:
            body["tools"] = list(transcript.tools)
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        plan += [PlannedRequest(endpoint, size, int(transcript.tokens), body) for endpoint in ENDPOINTS]
    # endpoints alternate: a user's consecutive requests go chat, compress, chat, ...
    return sorted(plan, key=lambda p: (ENDPOINTS.index(p.endpoint), sizes.index(p.size)))


def _number(value: object) -> float | None:
    if type(value) in (int, float) and math.isfinite(float(value)):  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    return None


def _judge(measurement: Measurement, sample: CompressionSample) -> None:
    """Keep the sample, or fail the request when the server's time exceeds the client's latency.

    The gateway reports whole milliseconds rounded up (D32), so the latency is rounded up the same
    way before the two are compared, as the contract check ``compression_time_within_latency``
    does: 1 ms reported for a request the client saw take 0.8 ms is the rounding, not a lie.
    """
    if measurement.e2e is not None and sample.time_ms > math.ceil(measurement.e2e * 1000.0):
        measurement.fail(COMPRESSION_TIME_EXCEEDS_LATENCY)
        return
    measurement.compression = sample


def judge_chat_compression(measurement: Measurement, body: bytes, *, size: str, original_tokens: int) -> None:
    """Read the ``compression`` object of a chat completion that already passed its own checks.

    It must be an object with a non-negative ``time_ms``, ``saved_tokens`` and ``reduction``
    (the figures the scenario records), else the request is ``compression_missing``.
    """
    if not measurement.ok:
        return
    try:
        data: Any = loads_bounded(body)
    except (JSONTooDeep, ValueError):
        measurement.fail(COMPRESSION_MISSING)
        return
    info = data.get("compression") if type(data) is dict else None
    if type(info) is not dict:
        measurement.fail(COMPRESSION_MISSING)
        return
    time_ms, saved, reduction = (_number(info.get(k)) for k in ("time_ms", "saved_tokens", "reduction"))
    if time_ms is None or saved is None or reduction is None or min(time_ms, saved, reduction) < 0:
        measurement.fail(COMPRESSION_MISSING)
        return
    _judge(measurement, CompressionSample("chat", size, original_tokens, int(saved), reduction, time_ms))


def analyze_compress(
    measurement: Measurement,
    body: bytes,
    *,
    sent_at: float,
    headers_at: float,
    ended_at: float,
    size: str,
    original_tokens: int,
) -> None:
    """Fill ``measurement`` from one ``/v1/compress`` answer.

    The body must be a JSON object holding a ``messages`` list (the compressed prompt) and a
    ``compression`` object with ``compression_time_ms``, ``uncompressed_input_tokens`` and
    ``compressed_input_tokens``; the reduction is computed from the two counts (the endpoint's
    ``compression_rate`` is a fraction, chat's ``reduction`` a percent: one unit here).
    """
    data = timed_json_answer(measurement, body, sent_at=sent_at, headers_at=headers_at, ended_at=ended_at)
    if data is None:
        return
    if type(data.get("messages")) is not list:
        measurement.fail(NOT_COMPRESSED_BODY)
        return
    info = data.get("compression")
    if type(info) is not dict:
        measurement.fail(COMPRESSION_MISSING)
        return
    time_ms, before, after = (
        _number(info.get(k))
        for k in ("compression_time_ms", "uncompressed_input_tokens", "compressed_input_tokens")
    )
    if time_ms is None or before is None or after is None or min(time_ms, before, after) < 0:
        measurement.fail(COMPRESSION_MISSING)
        return
    saved = max(before - after, 0.0)
    reduction = round(saved / before * 100.0, 2) if before else 0.0
    _judge(measurement, CompressionSample("compress", size, original_tokens, int(saved), reduction, time_ms))


@dataclass
class _Cell:
    endpoint: str
    size: str
    original_tokens: int = 0
    count: int = 0
    saved_tokens_sum: int = 0
    reduction_sum: float = 0.0
    histograms: dict[str, HdrHistogram] = field(
        default_factory=lambda: {
            metric: new_histogram(COMPRESSION_SIGNIFICANT_FIGURES) for metric in COMPRESSION_METRICS
        }
    )


def _key(endpoint: str, size: str) -> str:
    return f"{endpoint}/{size}"


@dataclass
class CompressionRecorder:
    """Per-cell histograms and sums of one locust process (successful requests only)."""

    cells: dict[str, _Cell] = field(default_factory=dict)

    def add(self, measurement: Measurement) -> None:
        sample = measurement.compression
        if not measurement.ok or sample is None or measurement.e2e is None:
            return
        key = _key(sample.endpoint, sample.size)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = _Cell(sample.endpoint, sample.size)
        cell.original_tokens = sample.original_tokens
        cell.count += 1
        cell.saved_tokens_sum += sample.saved_tokens
        cell.reduction_sum += sample.reduction
        server = sample.time_ms / 1000.0
        record_seconds(cell.histograms["time_ms"], server)
        record_seconds(cell.histograms["latency"], measurement.e2e)
        record_seconds(cell.histograms["gap"], measurement.e2e - server)

    def dump(self) -> dict[str, dict[str, Any]]:
        """The cells as JSON-ready dicts (histograms encoded), for the process's load dump."""
        return {
            key: {
                "endpoint": cell.endpoint,
                "size": cell.size,
                "original_tokens": cell.original_tokens,
                "count": cell.count,
                "saved_tokens_sum": cell.saved_tokens_sum,
                "reduction_sum": cell.reduction_sum,
                **{metric: encode(h) for metric, h in cell.histograms.items()},
            }
            for key, cell in sorted(self.cells.items())
        }


def merge_compression(dumps: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The sum of several processes' dumped cells (counts and sums added, histograms merged)."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for dump in dumps:
        for key, cell in dump.items():
            grouped.setdefault(key, []).append(cell)
    merged: dict[str, dict[str, Any]] = {}
    for key, cells in sorted(grouped.items()):
        first = cells[0]
        entry: dict[str, Any] = {
            "endpoint": first["endpoint"],
            "size": first["size"],
            "original_tokens": max(int(c["original_tokens"]) for c in cells),
            "count": sum(int(c["count"]) for c in cells),
            "saved_tokens_sum": sum(int(c["saved_tokens_sum"]) for c in cells),
            "reduction_sum": sum(float(c["reduction_sum"]) for c in cells),
        }
        for metric in COMPRESSION_METRICS:
            histogram = merge(str(c[metric]) for c in cells if c.get(metric))
            entry[metric] = encode(histogram) if histogram is not None else ""
        merged[key] = entry
    return merged


def compression_result(
    cells: Mapping[str, Mapping[str, Any]],
    *,
    sizes: Sequence[str],
    users: int,
    duration_s: float,
    requests: int,
    failures: int,
    failure_reasons: Mapping[str, int],
) -> CompressionResult:
    """The results model's compression section from merged cells, ordered by endpoint then size."""
    order = {size: index for index, size in enumerate(sizes)}
    result_cells = []
    for cell in cells.values():
        count = int(cell["count"])
        if count == 0 or not all(cell.get(metric) for metric in COMPRESSION_METRICS):
            continue
        summaries = {metric: summarize(metric, decode(str(cell[metric]))) for metric in COMPRESSION_METRICS}
        result_cells.append(
            CompressionCell(
                endpoint=str(cell["endpoint"]),
                size=str(cell["size"]),
                count=count,
                original_tokens=int(cell["original_tokens"]),
                mean_saved_tokens=round(int(cell["saved_tokens_sum"]) / count, 1),
                mean_reduction=round(float(cell["reduction_sum"]) / count, 2),
                time_ms=summaries["time_ms"],
                latency=summaries["latency"],
                gap=summaries["gap"],
            )
        )
    result_cells.sort(
        key=lambda c: (
            ENDPOINTS.index(c.endpoint) if c.endpoint in ENDPOINTS else len(ENDPOINTS),
            order.get(c.size, len(order)),
        )
    )
    return CompressionResult(
        cells=result_cells,
        sizes=list(sizes),
        endpoints=list(ENDPOINTS),
        users=users,
        duration_s=duration_s,
        requests=requests,
        failures=failures,
        failure_reasons=dict(sorted(failure_reasons.items())),
    )
