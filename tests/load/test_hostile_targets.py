"""`gateproof load` against hostile targets: every misbehaviour ends as a named failure in load.json.

Each target is a raw-socket server from ``conftest.py``; the load run is a real `gateproof load`
process (locust child included) whose memory, run time and outgoing connections are measured.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateproof.contract import MAX_HEADER_BYTES, MAX_RESPONSE_BYTES, TransportFailure
from gateproof.load._failures import is_known

from .conftest import LOAD_KEY, LoadRun, RawServer, run_load_process

#: timing: runs here are held to wall-clock bounds, so the module runs alone (see the Makefile)
pytestmark = pytest.mark.timing

#: the most resident memory a hostile run may reach, for its largest process (wait4's ru_maxrss)
#: and for the sum over its process tree (gateproof + the locust child, polled). The locust child
#: starts at about 65 MiB; a user holds at most MAX_RESPONSE_BYTES (8 MiB) of body plus one copy
#: while judging it, so 2 users add about 32 MiB. Measured: about 90 MiB largest, 150 MiB tree
#: (before the fix: past 1.5 GiB within 5 s, when the test's guard killed it).
PEAK_RSS_CAP_BYTES = 250 * 1024 * 1024
#: what a run may take beyond --duration + --stop-timeout: locust start-up and the final CSV tick
WALL_MARGIN_S = 15.0

Serve = Callable[[Callable[[socket.socket, bytes, RawServer], None]], RawServer]


def _chunk(content: str, *, role: bool = False) -> bytes:
    delta: dict[str, str] = {"content": content}
    if role:
        delta["role"] = "assistant"
    payload = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


_SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _send_forever(conn: socket.socket, server: RawServer, head: bytes, block: bytes) -> None:
    conn.sendall(head)
    while not server.stopping.is_set():
        conn.sendall(block)
        server.sent(len(block))


def endless_stream(conn: socket.socket, request: bytes, server: RawServer) -> None:
    """A 200 event stream of valid content chunks that never ends, as fast as the socket takes it."""
    events = _chunk("x") * (65536 // len(_chunk("x")))
    _send_forever(conn, server, _SSE_HEAD + _http_chunk(_chunk("", role=True)), _http_chunk(events))


def endless_line(conn: socket.socket, request: bytes, server: RawServer) -> None:
    """A 200 event stream whose body is one line that never ends (no newline, ever)."""
    _send_forever(conn, server, _SSE_HEAD + _http_chunk(b"data: "), _http_chunk(b"x" * 65536))


def endless_json(conn: socket.socket, request: bytes, server: RawServer) -> None:
    """A 200 application/json body without a length that never ends."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    _send_forever(conn, server, head + b'{"pad": "', b"y" * 65536)


def dripping_stream(conn: socket.socket, request: bytes, server: RawServer) -> None:
    """A 200 event stream that sends a valid content chunk every 50 ms, forever."""
    conn.sendall(_SSE_HEAD + _http_chunk(_chunk("", role=True)))
    while not server.stopping.is_set():
        conn.sendall(_http_chunk(_chunk("x")))
        time.sleep(0.05)


def stuck_stream(conn: socket.socket, request: bytes, server: RawServer) -> None:
    """A 200 event stream that sends its first chunk and then nothing, holding the connection open."""
    conn.sendall(_SSE_HEAD + _http_chunk(_chunk("", role=True)))
    server.stopping.wait(60)


def huge_headers(conn: socket.socket, request: bytes, server: RawServer) -> None:
    """A 200 whose header block is 1 MiB of padding headers."""
    pad = b"".join(b"X-Pad-%d: %s\r\n" % (n, b"p" * 1000) for n in range(1024))
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + pad + b"Content-Length: 0\r\n\r\n"
    )


def sse_as_json(conn: socket.socket, request: bytes, server: RawServer) -> None:
    """A complete, valid event stream served as application/json."""
    usage = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    body = _chunk("hi", role=True) + b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


def completion_as_sse(conn: socket.socket, request: bytes, server: RawServer) -> None:
    """A valid non-streamed chat completion served as text/event-stream."""
    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


def redirect_to(location: str) -> Callable[[socket.socket, bytes, RawServer], None]:
    def handler(conn: socket.socket, request: bytes, server: RawServer) -> None:
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    return handler


def _assert_reported(run: LoadRun, allowed: set[str]) -> None:
    """The run ended on its own, said why in load.json, failed the exit code and printed no traceback."""
    assert not run.killed, f"{run.killed}\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr + run.stdout, run.stderr[-3000:]
    assert run.result is not None, run.stderr[-3000:]
    requests, failures = run.result["requests"], run.result["failures"]
    assert isinstance(requests, int) and requests > 0
    assert failures == requests
    assert set(run.failure_reasons) <= allowed, run.failure_reasons
    assert all(is_known(reason) for reason in run.failure_reasons)
    assert sum(run.failure_reasons.values()) == failures
    assert run.code == 1, (run.code, run.stderr[-3000:])
    assert LOAD_KEY not in run.stdout + run.stderr


def _is_loopback(address: str) -> bool:
    host = address.strip("()").split(",")[0].strip().strip("'")
    return ipaddress.ip_address(host).is_loopback


# --- 1: redirects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["stream", "chat"])
def test_a_redirect_off_loopback_is_a_failure_never_followed(
    serve: Serve, tmp_path: Path, scenario: str
) -> None:
    target = serve(redirect_to("http://192.0.2.1/v1/chat/completions"))
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--scenario", scenario, "--users", "2", "--duration", "2s",
        "--stop-timeout", "2s", audit_dir=tmp_path / "audit",
    )  # fmt: skip
    _assert_reported(run, {TransportFailure.REDIRECT.value})
    assert run.connects, "the audit hook logged nothing: it cannot vouch for the absence of connects"
    off_loopback = [address for address in run.connects if not _is_loopback(address)]
    assert off_loopback == []


def test_a_redirect_to_another_loopback_port_is_not_followed(serve: Serve, tmp_path: Path) -> None:
    other = serve(endless_stream)  # would be judged as the target's answer if followed
    target = serve(redirect_to(other.url + "/v1/chat/completions"))
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--users", "2", "--duration", "2s", "--stop-timeout", "2s"
    )
    _assert_reported(run, {TransportFailure.REDIRECT.value})
    assert run.failure_reasons[TransportFailure.REDIRECT.value] == target.requests
    assert other.connections == 0


# --- 3: endless bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "scenario"),
    [(endless_stream, "stream"), (endless_line, "stream"), (endless_json, "chat")],
    ids=["endless-stream", "endless-single-line", "endless-json"],
)
def test_an_endless_body_is_cut_at_the_cap_in_bounded_memory_and_time(
    serve: Serve,
    tmp_path: Path,
    handler: Callable[[socket.socket, bytes, RawServer], None],
    scenario: str,
) -> None:
    target = serve(handler)
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--scenario", scenario, "--users", "2", "--duration", "3s",
        "--stop-timeout", "2s",
    )  # fmt: skip
    print(
        f"{handler.__name__}: wall {run.wall_s:.1f} s, largest process {run.max_rss_bytes / 2**20:.0f} MiB, "
        f"tree {run.tree_rss_bytes / 2**20:.0f} MiB, target sent {target.bytes_sent / 2**20:.0f} MiB"
    )
    _assert_reported(run, {TransportFailure.BODY_TOO_LARGE.value, TransportFailure.DEADLINE.value})
    assert run.failure_reasons.get(TransportFailure.BODY_TOO_LARGE.value, 0) > 0
    assert run.max_rss_bytes < PEAK_RSS_CAP_BYTES and run.tree_rss_bytes < PEAK_RSS_CAP_BYTES
    assert run.wall_s < 3 + 2 + WALL_MARGIN_S
    # the progress line kept moving: the hub was not starved while the bodies poured in
    assert "load: run time over" in run.stderr or "load: 2 s of 3 s" in run.stderr, run.stderr[-2000:]
    assert target.bytes_sent > MAX_RESPONSE_BYTES


def test_a_stream_that_never_ends_meets_the_request_deadline(serve: Serve, tmp_path: Path) -> None:
    target = serve(dripping_stream)
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--users", "2", "--duration", "3s", "--stop-timeout", "2s",
        "--request-timeout", "1s",
    )  # fmt: skip
    _assert_reported(run, {TransportFailure.DEADLINE.value})
    assert run.result is not None and run.result["requests"] >= 4  # about one per second per user
    assert run.result["responses"] == run.result["requests"]


# --- 13: requests still in flight at the end ----------------------------------------------------------


def test_requests_stuck_at_the_end_are_counted_and_the_summary_says_what_was_seen(
    serve: Serve, tmp_path: Path
) -> None:
    target = serve(stuck_stream)
    started = time.monotonic()
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--users", "3", "--duration", "2s", "--stop-timeout", "1s"
    )
    _assert_reported(run, {TransportFailure.DEADLINE.value})
    assert run.result is not None
    # the default request timeout fits the run (min(60 s, duration + stop timeout) = 3 s), so every
    # user's request ends as a deadline failure, either by that timeout or by the end of the run
    assert run.result["requests"] == target.requests >= 3
    assert run.result["responses"] == run.result["requests"]
    assert "never answered" not in run.stdout
    assert "deadline" in run.stdout
    assert time.monotonic() - started < 2 + 1 + WALL_MARGIN_S


def test_requests_killed_by_the_stop_timeout_are_counted(serve: Serve, tmp_path: Path) -> None:
    target = serve(stuck_stream)
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--users", "2", "--duration", "1s", "--stop-timeout", "1s",
        "--request-timeout", "30s",
    )  # fmt: skip
    _assert_reported(run, {TransportFailure.DEADLINE.value})
    assert run.result is not None and run.result["requests"] == target.requests == 2
    assert run.wall_s < 1 + 1 + WALL_MARGIN_S


# --- 14: media type and header block -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "scenario"),
    [(sse_as_json, "stream"), (completion_as_sse, "chat")],
    ids=["stream-as-json", "completion-as-event-stream"],
)
def test_the_media_type_must_match_the_mode(
    serve: Serve, tmp_path: Path, handler: Callable[[socket.socket, bytes, RawServer], None], scenario: str
) -> None:
    target = serve(handler)
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--scenario", scenario, "--users", "1", "--duration", "1s",
        "--stop-timeout", "1s",
    )  # fmt: skip
    _assert_reported(run, {"content_type_matches_mode"})


@pytest.mark.parametrize("scenario", ["stream", "chat"])
def test_a_header_block_over_the_cap_is_headers_too_large(
    serve: Serve, tmp_path: Path, scenario: str
) -> None:
    assert MAX_HEADER_BYTES < 1024 * 1024
    target = serve(huge_headers)
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--scenario", scenario, "--users", "1", "--duration", "1s",
        "--stop-timeout", "1s",
    )  # fmt: skip
    _assert_reported(run, {TransportFailure.HEADERS_TOO_LARGE.value})


# --- every other way of breaking: a named failure, load.json, no traceback ------------------------------


def _reset(conn: socket.socket, request: bytes, server: RawServer) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # with linger 0: an RST instead of a FIN


def _endless_header_line(conn: socket.socket, request: bytes, server: RawServer) -> None:
    _send_forever(conn, server, b"HTTP/1.1 200 OK\r\nX-Endless: ", b"h" * 65536)


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (lambda conn, request, server: conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n"), "protocol_error"),
        (lambda conn, request, server: conn.shutdown(socket.SHUT_WR), "connection_closed"),
        (_reset, "connection_reset"),
        (lambda conn, request, server: conn.sendall(b"HTTP/1.1 200 OK\r\n") or conn.shutdown(socket.SHUT_WR), "connection_closed"),
        (_endless_header_line, "headers_too_large"),
        (lambda conn, request, server: conn.sendall(_SSE_HEAD + b"zz\r\nnot a chunk\r\n"), "protocol_error"),
        (lambda conn, request, server: conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"), "http_503"),
        (lambda conn, request, server: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), "content_type_matches_mode"),
    ],
    ids=["not-http", "closed", "reset", "status-line-only", "endless-header-line", "bad-chunk", "503", "no-media-type"],
)  # fmt: skip
def test_a_broken_answer_is_a_named_failure(
    serve: Serve, tmp_path: Path, handler: Callable[[socket.socket, bytes, RawServer], None], reason: str
) -> None:
    target = serve(handler)
    run = run_load_process(
        tmp_path / "out", target.url + "/v1", "--users", "1", "--duration", "1s", "--stop-timeout", "1s",
        "--request-timeout", "2s",
    )  # fmt: skip
    _assert_reported_any_code(run, {reason})


def _assert_reported_any_code(run: LoadRun, allowed: set[str]) -> None:
    """As :func:`_assert_reported`, but a target that never sent a status line exits 3, not 1."""
    answered = run.result is not None and run.result.get("responses", 0)
    if answered:
        _assert_reported(run, allowed)
        return
    assert run.code == 3, (run.code, run.stderr[-3000:])
    run.code = 1
    _assert_reported(run, allowed)
