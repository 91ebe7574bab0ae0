"""Turn what a request received into a :class:`Measurement`, after the fact.

The locustfile only reads and timestamps (``time.perf_counter()`` taken the moment
each piece of the body is handed over), and keeps parsing out of that loop; this
module then replays the timestamped pieces through the stream grammar of
``gateproof.contract.stream`` and derives the timings. Parse cost therefore never
lands in a measured interval, and the analysis is a pure function the tests can
drive with hand-made byte sequences.

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

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from gateproof.contract import JSONTooDeep, loads_bounded
from gateproof.contract.stream import ChatStreamGrammar, EventKind, StreamChecker
from gateproof.load._measurement import Measurement

__all__ = ["analyze_completion", "analyze_stream", "timed_json_answer"]


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
    when the body was complete (or when reading stopped). A transport failure the
    caller already recorded on ``measurement`` stays the reason, and the grammar is
    not replayed over a body that was cut short (failures have no latencies to find);
    otherwise an error event inside the stream makes it ``no_error_event``, and
    failing that the first grammar violation's rule name becomes it.
    """
    measurement.ttfb = headers_at - sent_at
    measurement.e2e = ended_at - sent_at
    if not measurement.ok:
        return
    checker = StreamChecker(ChatStreamGrammar(include_usage=include_usage))
    content_times: list[float] = []
    for arrived, data in _line_pieces(reads):
        for result in checker.feed(data):
            if result.has_content:
                content_times.append(arrived)
            if result.kind is EventKind.ERROR:
                measurement.fail("no_error_event")
    report = checker.close()
    for violation in report.violations:
        measurement.fail(violation.rule)
    summary = report.summary
    usage = summary.usage or {}
    completion_tokens = usage.get("completion_tokens")
    if type(completion_tokens) is int and completion_tokens >= 0:
        measurement.output_tokens = completion_tokens
    else:
        measurement.output_tokens = summary.content_event_count
    if content_times:
        measurement.ttft = content_times[0] - sent_at
        measurement.inter_chunk = [later - earlier for earlier, later in itertools.pairwise(content_times)]
        if measurement.output_tokens > 1:
            measurement.tpot = (content_times[-1] - content_times[0]) / (measurement.output_tokens - 1)
    elif measurement.ok:
        measurement.fail("no_content")


def _line_pieces(reads: Sequence[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """The reads, with every run of pieces that hold no line end joined to the piece that ends it.

    An event can only complete at a line end, so a piece without CR or LF completes nothing and
    joining it to the next one (stamped with that one's arrival) changes no timing. It keeps the
    SSE decoder from growing one long line by repeated concatenation, which is quadratic in the
    line's length.
    """
    pending: list[bytes] = []
    for arrived, data in reads:
        if b"\n" not in data and b"\r" not in data:
            pending.append(data)
            continue
        if pending:
            pending.append(data)
            data = b"".join(pending)
            pending.clear()
        yield arrived, data
    if pending:
        yield reads[-1][0], b"".join(pending)


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
