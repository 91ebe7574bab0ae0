"""Sending one scenario request and recording what came back, with arrival times.

Streams are read as they arrive: each piece is timestamped before anything is
parsed, then fed to the stream checker, so the time of every content event is
the time its bytes reached us.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateproof.contract.checks import Observed
from gateproof.contract.stream import ChatStreamGrammar, SSEDecoder, StreamChecker, StreamReport

__all__ = ["Sent", "parse_chunks", "send"]

#: the most of a response body kept for checks and reports (streams are kept whole up to this size)
MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class Sent:
    """One request as the harness sends it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    stream: bool = False
    include_usage: bool = False
    expect_tool_call: bool | None = None


def send(client: httpx.Client, sent: Sent) -> tuple[Observed, StreamReport | None]:
    """Send ``sent`` and read the whole answer (bounded by the client's timeouts and MAX_BODY)."""
    request = client.build_request(sent.method, sent.url, headers=sent.headers, content=sent.body)
    started = time.perf_counter()
    response = client.send(request, stream=True)
    try:
        headers = {k.lower(): v for k, v in response.headers.items()}
        is_sse = headers.get("content-type", "").startswith("text/event-stream")
        checker: StreamChecker | None = None
        if sent.stream and response.status_code == 200:
            grammar = ChatStreamGrammar(
                include_usage=sent.include_usage, expect_tool_call=sent.expect_tool_call
            )
            checker = StreamChecker(grammar)
        pieces: list[bytes] = []
        size = 0
        first_byte: float | None = None
        content_times: list[float] = []
        for piece in response.iter_raw():
            arrived = time.perf_counter() - started
            if first_byte is None:
                first_byte = arrived
            if size < MAX_BODY:
                pieces.append(piece)
            size += len(piece)
            if checker is not None:
                content_times.extend(arrived for verdict in checker.feed(piece) if verdict.has_content)
        ended = time.perf_counter() - started
    finally:
        response.close()
    body = b"".join(pieces)
    observed = Observed(
        status=response.status_code,
        headers=headers,
        body=body,
        first_byte_s=first_byte,
        content_event_times_s=content_times,
        end_s=ended,
    )
    report = checker.close() if checker is not None else None
    if report is None and sent.stream and is_sse:
        report = _whole_body_report(body, sent)
    return observed, report


def _whole_body_report(body: bytes, sent: Sent) -> StreamReport:
    checker = StreamChecker(
        ChatStreamGrammar(include_usage=sent.include_usage, expect_tool_call=sent.expect_tool_call)
    )
    checker.feed(body)
    return checker.close()


def parse_chunks(body: bytes) -> list[Any]:
    """The chunks of an SSE body, in order.

    Left out: the [DONE] sentinel, data that is not JSON (``chunk_is_json`` judges it) and error
    events (``no_error_event`` / ``stream_error_propagated`` judge those, D9).
    """
    decoder = SSEDecoder()
    chunks: list[Any] = []
    for event in decoder.feed(body):
        if event.data == "[DONE]":
            continue
        try:
            payload = json.loads(event.data)
        except ValueError:
            continue
        if isinstance(payload, dict) and "error" in payload:
            continue
        chunks.append(payload)
    return chunks
