"""A client that leaves early is journaled ``disconnected``, wherever the answer was.

A gateway cancelling its upstream request (D46) closes the connection; the mock must notice at
once, stop writing, and say so, whether the stream was mid-way, a non-streamed answer was still
due, or the headers or a stall were still being held back. A raw socket gives the tests exact
control of when the client goes.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateproof.cli.launch import LocalServer

from ._chaos_wire import settled, wire_request

ReadJournal = Callable[[str], list[dict[str, Any]]]


def _open(mock_server: LocalServer, dialect: str, text: str, stream: bool) -> socket.socket:
    request = wire_request(dialect, text, stream=stream)
    url = urlsplit(mock_server.url)
    body = json.dumps(request.body).encode()
    head = [f"POST {request.path} HTTP/1.1", f"Host: {url.netloc}", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in request.headers.items()]
    head.append(f"Content-Length: {len(body)}")
    conn = socket.create_connection((url.hostname, url.port), timeout=5.0)
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return conn


def _read_until(conn: socket.socket, needle: bytes) -> bytes:
    seen = b""
    while needle not in seen:
        data = conn.recv(65536)
        assert data, f"the mock closed before {needle!r}: {seen!r}"
        seen += data
    return seen


def _left(journal: ReadJournal, cid: str) -> dict[str, Any]:
    entry = settled(journal, cid)[0]
    assert entry["outcome"] == "disconnected", entry
    return entry


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini"])
def test_leaving_mid_stream(mock_server: LocalServer, dialect: str, cid: str, journal: ReadJournal) -> None:
    conn = _open(mock_server, dialect, f"[[gateproof tokens=60 itl_ms=50 cid={cid}]]", stream=True)
    with conn:
        _read_until(conn, b"data: ")
        time.sleep(0.15)
    entry = _left(journal, cid)
    assert 0 < entry["chunks_sent"] < 60
    # noticed at once, not when the 3 s answer would have ended
    assert entry["finished_at"] - entry["received_at"] < 1.5


def test_leaving_while_a_non_streamed_answer_is_due(
    mock_server: LocalServer, cid: str, journal: ReadJournal
) -> None:
    with _open(mock_server, "openai", f"[[gateproof ttft_ms=3000 cid={cid}]]", stream=False):
        time.sleep(0.3)
    entry = _left(journal, cid)
    assert entry["status"] == 200 and entry["chunks_sent"] == 0
    assert entry["finished_at"] - entry["received_at"] < 1.5


def test_leaving_during_slow_headers(mock_server: LocalServer, cid: str, journal: ReadJournal) -> None:
    with _open(
        mock_server, "anthropic", f"[[gateproof fault=slow_headers fault_ms=3000 cid={cid}]]", stream=True
    ):
        time.sleep(0.3)
    entry = _left(journal, cid)
    assert entry["fault"] == "slow_headers"
    assert entry["finished_at"] - entry["received_at"] < 1.5


def test_leaving_during_a_stall(mock_server: LocalServer, cid: str, journal: ReadJournal) -> None:
    text = f"[[gateproof fault=stall fault_after=2 fault_ms=3000 tokens=6 cid={cid}]]"
    conn = _open(mock_server, "openai", text, stream=True)
    with conn:
        seen = _read_until(conn, b'"content":"')
        while seen.count(b'"content":"') - seen.count(b'"content":""') < 2:
            seen += conn.recv(65536)
        time.sleep(0.3)
    entry = _left(journal, cid)
    assert (entry["fault"], entry["chunks_sent"]) == ("stall", 2)
    assert entry["finished_at"] - entry["received_at"] < 2.0


def test_a_complete_answer_is_not_disconnected(
    mock_server: LocalServer, cid: str, journal: ReadJournal
) -> None:
    with _open(mock_server, "openai", f"[[gateproof tokens=3 cid={cid}]]", stream=True) as conn:
        _read_until(conn, b"[DONE]")
    assert settled(journal, cid)[0]["outcome"] == "complete"


def test_leaving_a_long_stream_sent_without_pauses(
    mock_server: LocalServer, cid: str, journal: ReadJournal
) -> None:
    # no timing at all: the mock writes as fast as the client reads, and this client stops reading
    conn = _open(mock_server, "openai", f"[[gateproof tokens=60000 cid={cid}]]", stream=True)
    with conn:
        _read_until(conn, b"data: ")
        time.sleep(0.3)
    # written without the watcher: the server's own flag says the client left
    assert _left(journal, cid)["fault"] is None
