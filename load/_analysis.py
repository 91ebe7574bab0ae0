"""Turn what a request received into a :class:`Measurement`, after the fact.

The locustfile only reads and timestamps (``time.perf_counter()`` taken the moment
each piece of the body is handed over), and keeps parsing out of that loop; this
module then replays the timestamped pieces through the stream grammar of
``gateproof.contract.stream`` (``gateproof.load._replay``, which skips the parse of
content chunks that only repeat an accepted one with other text) and derives the timings,
the chunk stamps' findings (``gateproof.load._stamps``) and the timings the server reported
(:func:`server_timings`). Parse cost therefore never lands in a measured interval, and the
analysis is a pure function the tests can drive with hand-made byte sequences.

Definitions (all durations from the moment just before the request is sent, so a
new connection's set-up counts, as a client would feel it):

- TTFB: the status line and headers had arrived;
- TTFT: the first event whose delta carried non-empty content (or refusal text,
  or tool-call arguments) had fully arrived; a role-only first chunk does not count;
- inter_chunk: the gaps between the arrivals of consecutive content events (about 0
  when two events came in one network read: the client got them at the same moment);
- tpot: (last content event - first content event) / (output tokens - 1);
- e2e: the last byte of the HTTP response (the end of the chunked body) had arrived.

Output tokens come from ``usage.completion_tokens`` of the usage chunk and fall back
to the number of content events when the stream carried no usage.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any, TypeGuard

from gateproof.contract import JSONTooDeep, loads_bounded
from gateproof.load._measurement import Measurement
from gateproof.load._replay import replay_stream
from gateproof.load._stamps import read_stamps

__all__ = ["analyze_completion", "analyze_stream", "server_timings", "timed_json_answer"]


def analyze_stream(
    measurement: Measurement,
    reads: Sequence[tuple[float, bytes]],
    *,
    sent_at: float,
    headers_at: float,
    ended_at: float,
    include_usage: bool = True,
) -> None:
    """Fill ``measurement`` from one streamed body.

    ``reads`` are (perf_counter at arrival, bytes) in arrival order; ``ended_at`` is
    when the body was complete (or when reading stopped); ``sent_at`` is the perf_counter the
    timings count from (``measurement.started_wall``, less ``lag`` in an open loop, is its
    wall time). A transport failure the caller already recorded on ``measurement`` stays the
    reason, and the grammar is not replayed over a body that was cut short (failures have no
    latencies to find); otherwise an error event inside the stream makes it ``no_error_event``,
    and failing that the first grammar violation's rule name becomes it. A successful stream's
    chunk stamps (when the mock stamped them) and the timings the server reported are read too.
    """
    measurement.ttfb = headers_at - sent_at
    measurement.e2e = ended_at - sent_at
    if not measurement.ok:
        return
    replay = replay_stream(reads, include_usage=include_usage)
    if replay.error_event:
        measurement.fail("no_error_event")
    for violation in replay.report.violations:
        measurement.fail(violation.rule)
    summary = replay.report.summary
    arrivals = replay.arrivals
    usage = summary.usage or {}
    completion_tokens = usage.get("completion_tokens")
    if type(completion_tokens) is int and completion_tokens >= 0:
        measurement.output_tokens = completion_tokens
    else:
        measurement.output_tokens = len(arrivals)
    if arrivals:
        first, last = arrivals[0], arrivals[-1]
        measurement.ttft = first - sent_at
        measurement.inter_chunk = list(map(operator.sub, arrivals[1:], arrivals[:-1]))
        if measurement.output_tokens > 1:
            measurement.tpot = (last - first) / (measurement.output_tokens - 1)
    elif measurement.ok:
        measurement.fail("no_content")
    if measurement.ok:
        read_stamps(measurement, arrivals, replay.texts, sent_at=sent_at)
        if summary.last_chunk is not None:
            measurement.server_ms = server_timings(summary.last_chunk)


def server_timings(answer: dict[str, Any]) -> dict[str, float]:
    """What the server said it spent on this request, name -> milliseconds.

    From an answer (a completion, the last chunk of a stream, a ``/v1/compress`` answer):
    ``compression`` is ``compression.time_ms`` (chat) or ``compression.compression_time_ms``
    (``/v1/compress``); ``debug.<name>`` is each entry of ``debug.timings_ms`` (the reference
    gateway sends ``total``, ``upstream`` and, when it compressed, ``compression``). Values
    that are not non-negative numbers are left out: judging them is the contract suite's job.
    """
    timings: dict[str, float] = {}
    compression = answer.get("compression")
    if type(compression) is dict:
        value = compression.get("time_ms", compression.get("compression_time_ms"))
        if _milliseconds(value):
            timings["compression"] = float(value)
    debug = answer.get("debug")
    spent = debug.get("timings_ms") if type(debug) is dict else None
    if type(spent) is dict:
        for name, value in spent.items():
            if type(name) is str and _milliseconds(value):
                timings[f"debug.{name}"] = float(value)
    return timings


def _milliseconds(value: object) -> TypeGuard[float]:
    return type(value) in (int, float) and math.isfinite(value) and value >= 0  # type: ignore[arg-type, operator]


def timed_json_answer(
    measurement: Measurement, body: bytes, *, sent_at: float, headers_at: float, ended_at: float
) -> dict[str, Any] | None:
    """Time a non-streamed answer and read its body as a JSON object, or record why it is not one.

    ``None`` when the measurement already failed (too deep, not JSON, not an object, an error
    body); the caller then has nothing more to judge.
    """
    measurement.ttfb = headers_at - sent_at
    measurement.e2e = ended_at - sent_at
    try:
        data: Any = loads_bounded(body)
    except JSONTooDeep:
        measurement.fail("too_deep")
        return None
    except ValueError:
        measurement.fail("invalid_json")
        return None
    if type(data) is not dict:
        measurement.fail("invalid_json")
        return None
    if data.get("error") is not None:
        measurement.fail("error_body")
        return None
    measurement.server_ms = server_timings(data)
    return data


def analyze_completion(
    measurement: Measurement,
    body: bytes,
    *,
    sent_at: float,
    headers_at: float,
    ended_at: float,
) -> None:
    """Fill ``measurement`` from one non-streamed chat completion body.

    The body must be a JSON ``chat.completion`` object with at least one choice
    holding a message, and a ``usage.completion_tokens`` count (its output tokens).
    """
    data = timed_json_answer(measurement, body, sent_at=sent_at, headers_at=headers_at, ended_at=ended_at)
    if data is None:
        return
    choices = data.get("choices")
    if (
        data.get("object") != "chat.completion"
        or type(choices) is not list
        or not choices
        or type(choices[0]) is not dict
        or type(choices[0].get("message")) is not dict
    ):
        measurement.fail("not_chat_completion")
        return
    usage = data.get("usage")
    tokens = usage.get("completion_tokens") if type(usage) is dict else None
    if type(tokens) is not int or tokens < 0:
        measurement.fail("no_usage")
        return
    measurement.output_tokens = tokens
