"""The load users' bounded HTTP/1.1 exchange, driven in-process against raw-socket servers.

gevent's sockets work without monkey-patching, so these run in the test process itself (the
servers are plain threads) and pin the exact edges: a header block of MAX_HEADER_BYTES is fine
and one byte more is not; likewise the body; timeouts are told apart from deadlines.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateproof.contract import MAX_HEADER_BYTES, MAX_RESPONSE_BYTES
from gateproof.load._transport import ExchangeFailed, Response, Target, build_request

from .conftest import RawServer, read_request

Serve = Callable[[Callable[[socket.socket, bytes, RawServer], None]], RawServer]

REQUEST = build_request("/v1/chat/completions", "127.0.0.1", {"Accept": "application/json"}, b"{}")


def _send(server: RawServer, timeout: float = 5.0) -> tuple[Target, Response]:
    target = Target("http", "127.0.0.1", server.port, connect_timeout=2.0)
    return target, target.send(REQUEST, time.perf_counter() + timeout)


def _body(response: Response) -> bytes:
    pieces = []
    last = 0.0
    while True:
        arrived, data = response.read_some()
        assert arrived >= last  # stamped in arrival order
        last = arrived
        if not data:
            return b"".join(pieces)
        pieces.append(data)


def _answer(head_padding: int = 0, body: bytes = b"ok", extra: bytes = b"") -> bytes:
    """An answer whose status line + header block is ``len(base) + head_padding`` bytes long."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body) + extra
    if head_padding:
        pad_name = b"X-Pad: "
        head += pad_name + b"p" * (head_padding - len(pad_name) - 2) + b"\r\n"
    return head + b"\r\n" + body


def _head_of_size(size: int) -> bytes:
    base = len(_answer(body=b""))
    return _answer(head_padding=size - base, body=b"")


@pytest.mark.parametrize(("size", "fails"), [(MAX_HEADER_BYTES, False), (MAX_HEADER_BYTES + 1, True)])
def test_the_header_block_may_take_exactly_the_cap(serve: Serve, size: int, fails: bool) -> None:
    answer = _head_of_size(size)
    assert len(answer) == size
    server = serve(lambda conn, request, server: conn.sendall(answer))
    if fails:
        with pytest.raises(ExchangeFailed) as caught:
            _send(server)
        assert caught.value.reason == "headers_too_large" and caught.value.answered
    else:
        _, response = _send(server)
        assert response.status == 200 and _body(response) == b""


@pytest.mark.parametrize(("size", "fails"), [(MAX_RESPONSE_BYTES, False), (MAX_RESPONSE_BYTES + 1, True)])
def test_the_body_may_take_exactly_the_cap(serve: Serve, size: int, fails: bool) -> None:
    body = b"b" * size
    server = serve(lambda conn, request, server: conn.sendall(_answer(body=body)))
    _, response = _send(server)
    if fails:
        with pytest.raises(ExchangeFailed) as caught:
            _body(response)
        assert caught.value.reason == "body_too_large"
    else:
        assert len(_body(response)) == size


def test_a_redirect_is_an_answer_like_any_other_and_goes_nowhere(serve: Serve) -> None:
    elsewhere = serve(lambda conn, request, server: conn.sendall(_answer()))
    server = serve(
        lambda conn, request, server: conn.sendall(
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere.url}/v1\r\nContent-Length: 0\r\n\r\n".encode()
        )
    )
    _, response = _send(server)
    assert response.status == 307 and response.header("location").startswith(elsewhere.url)
    assert _body(response) == b""
    assert elsewhere.connections == 0


def test_silence_is_a_timeout_and_a_drip_past_the_deadline_is_a_deadline(serve: Serve) -> None:
    silent = serve(lambda conn, request, server: server.stopping.wait(5))
    started = time.monotonic()
    with pytest.raises(ExchangeFailed) as caught:
        _send(silent, timeout=0.5)
    assert caught.value.reason == "timeout" and not caught.value.answered
    assert time.monotonic() - started < 2

    def drip(conn: socket.socket, request: bytes, server: RawServer) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while not server.stopping.is_set():
            conn.sendall(b"2\r\n:\n\r\n")
            time.sleep(0.05)

    _, response = _send(serve(drip), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ExchangeFailed) as caught:
        _body(response)
    assert caught.value.reason == "deadline" and caught.value.answered
    assert time.monotonic() - started < 2


def test_a_cut_body_is_connection_closed_and_garbage_is_protocol_error(serve: Serve) -> None:
    def cut(conn: socket.socket, request: bytes, server: RawServer) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\nshort")
        conn.shutdown(socket.SHUT_WR)

    _, response = _send(serve(cut))
    with pytest.raises(ExchangeFailed) as caught:
        _body(response)
    assert caught.value.reason == "connection_closed"
    with pytest.raises(ExchangeFailed) as caught:
        _send(serve(lambda conn, request, server: conn.sendall(b"SMTP ready\r\n\r\n")))
    assert caught.value.reason == "protocol_error"


def test_a_finished_keep_alive_connection_is_reused(serve: Serve) -> None:
    server = serve(lambda conn, request, server: conn.sendall(_answer()))
    target = Target("http", "127.0.0.1", server.port, connect_timeout=2.0)
    for _ in range(3):
        response = target.send(REQUEST, time.perf_counter() + 5)
        assert _body(response) == b"ok"
        response.close()
    target.close()
    assert server.connections == 1 and server.requests == 3


def test_a_refused_connection_is_named(serve: Serve) -> None:
    server = serve(lambda conn, request, server: None)
    server.close()
    time.sleep(0.3)
    with pytest.raises(ExchangeFailed) as caught:
        _send(server)
    assert caught.value.reason == "connection_refused"


def test_an_https_target_is_spoken_to_over_tls(tmp_path: Path) -> None:
    """check_loopback_url accepts https://; a self-signed loopback target must work (unverified)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def serve_once() -> None:
        with contextlib.suppress(OSError), listener:
            raw, _ = listener.accept()
            with context.wrap_socket(raw, server_side=True) as conn:
                conn.settimeout(10)
                read_request(conn)
                conn.sendall(_answer(body=b'{"tls": true}'))

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    target = Target("https", "127.0.0.1", port, connect_timeout=5.0)
    response = target.send(REQUEST, time.perf_counter() + 10)
    assert response.status == 200 and _body(response) == b'{"tls": true}'
    response.close()
    target.close()
    thread.join(10)
