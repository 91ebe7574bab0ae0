"""A client that leaves: read a stream up to its first content chunk, then hang up.

D46 says a client that disconnects mid-stream cancels the gateway's provider request; the
failure-matrix cell ``client_leaves_mid_stream`` plays that client. The request goes through
the same bounded client as every other one (deadline, caps, no redirects); closing the
response before its end makes httpcore drop the connection, which is what a user's process
that stops reading and exits does.
"""

from __future__ import annotations

import time

import httpx

from gateproof.contract._exchange import Sent
from gateproof.contract.checks import Observed
from gateproof.contract.stream import ChatStreamGrammar, StreamChecker

__all__ = ["send_and_leave"]


def send_and_leave(client: httpx.Client, sent: Sent) -> tuple[Observed, float | None]:
    """Send ``sent``; on a 200 stream, close the connection right after the first content event.

    Returns what was read and when the client hung up (``time.time()``), or None when the
    answer ended (or was no stream) before any content event arrived.
    """
    request = client.build_request(sent.method, sent.url, headers=sent.headers, content=sent.body)
    started = time.perf_counter()
    response = client.send(request, stream=True)
    left_at: float | None = None
    pieces: list[bytes] = []
    first_byte: float | None = None
    content_times: list[float] = []
    try:
        headers = {k.lower(): v for k, v in response.headers.items()}
        grammar = ChatStreamGrammar(include_usage=sent.include_usage, expect_tool_call=sent.expect_tool_call)
        checker = StreamChecker(grammar) if response.status_code == 200 else None
        for piece in response.iter_raw():
            arrived = time.perf_counter() - started
            first_byte = arrived if first_byte is None else first_byte
            pieces.append(piece)
            if checker is not None and any(verdict.has_content for verdict in checker.feed(piece)):
                content_times.append(arrived)
                left_at = time.time()
                break
    finally:
        response.close()
    observed = Observed(
        status=response.status_code,
        headers=headers,
        body=b"".join(pieces),
        first_byte_s=first_byte,
        content_event_times_s=content_times,
        end_s=time.perf_counter() - started,
    )
    return observed, left_at
