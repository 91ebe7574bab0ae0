"""The bounded transport on its own: each way a target breaks the wire is one named failure, in time.

Every target is a raw socket server on loopback that sends exactly the bytes under test. The
exchanges run in this process, so each test also bounds how long the failure takes to appear.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests

from gateproof.contract import MAX_RESPONSE_BYTES, TransportFailure
from gateproof.contract._exchange import MAX_BODY, Sent, WireError, WireForwarder, bounded_client, send

Handler = Callable[[socket.socket], None]

OK_BODY = b'{"ok": true}'


class _Target:
    """A loopback server running ``handler`` on every connection, counting them."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/models"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            _read_request(conn)
            self.handler(conn)

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            break
        data += piece
    return data


@pytest.fixture
def target() -> Iterator[Callable[[Handler], _Target]]:
    started: list[_Target] = []

    def start(handler: Handler) -> _Target:
        server = _Target(handler)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def _head(status: str = "200 OK", *headers: str) -> bytes:
    return (f"HTTP/1.1 {status}\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode()


def _exchange(url: str, deadline_s: float = 1.0) -> tuple[WireError, float]:
    """Send one GET with the contract's client; return the failure it ended in and how long it took."""
    started = time.monotonic()
    with bounded_client(deadline_s) as client, pytest.raises(WireError) as caught:
        send(client, Sent(method="GET", url=url, headers={}, body=None))
    return caught.value, time.monotonic() - started


@pytest.mark.timing
def test_a_drip_before_the_status_line_meets_the_deadline(target: Callable[[Handler], _Target]) -> None:
    def drip(conn: socket.socket) -> None:
        for byte in _head("200 OK", "Content-Length: 2") + b"{}":
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    error, elapsed = _exchange(target(drip).url)
    assert error.failure is TransportFailure.DEADLINE
    assert str(error).startswith("deadline: the exchange outlived its overall deadline")
    assert elapsed < 2.0


@pytest.mark.timing
def test_a_stream_that_never_ends_meets_the_deadline(target: Callable[[Handler], _Target]) -> None:
    """Slow enough never to reach the size cap, fast enough never to trip the read timeout."""

    def trickle(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", "Content-Type: text/event-stream"))
        while True:
            conn.sendall(b": keep-alive\n\n")
            time.sleep(0.05)

    error, elapsed = _exchange(target(trickle).url)
    assert error.failure is TransportFailure.DEADLINE
    assert elapsed < 2.0


@pytest.mark.timing
def test_silence_after_the_headers_is_a_timeout(target: Callable[[Handler], _Target]) -> None:
    def stall(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", "Content-Length: 100") + b"{")
        time.sleep(5)

    error, elapsed = _exchange(target(stall).url)
    assert error.failure is TransportFailure.TIMEOUT
    assert elapsed < 2.0


@pytest.mark.timing
def test_a_body_past_the_cap_is_body_too_large(target: Callable[[Handler], _Target]) -> None:
    def endless(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", "Content-Type: application/json"))
        piece = b"x" * 65536
        while True:
            conn.sendall(piece)

    error, elapsed = _exchange(target(endless).url, deadline_s=10.0)
    assert error.failure is TransportFailure.BODY_TOO_LARGE
    assert elapsed < 5.0


def test_a_body_between_the_kept_size_and_the_cap_is_judged_on_its_start(
    target: Callable[[Handler], _Target],
) -> None:
    size = MAX_BODY + 1024 * 1024
    assert size < MAX_RESPONSE_BYTES

    def big(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", f"Content-Length: {size}") + b"y" * size)

    with bounded_client(10.0) as client:
        observed, _ = send(client, Sent(method="GET", url=target(big).url, headers={}, body=None))
    assert observed.status == 200 and len(observed.body) == MAX_BODY


@pytest.mark.parametrize("pad_kib", [80, 1024], ids=["80KiB_past_our_cap", "1MiB_past_h11_buffer"])
def test_a_header_block_past_the_cap_is_headers_too_large(
    target: Callable[[Handler], _Target], pad_kib: int
) -> None:
    pads = [f"X-Pad-{index}: {'p' * 1000}" for index in range(pad_kib)]

    def huge(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", "Content-Length: 2", *pads) + b"{}")

    error, _ = _exchange(target(huge).url)
    assert error.failure is TransportFailure.HEADERS_TOO_LARGE


def test_a_redirect_is_never_followed(target: Callable[[Handler], _Target]) -> None:
    decoy = target(lambda conn: conn.sendall(_head("200 OK", "Content-Length: 2") + b"{}"))

    def redirect(conn: socket.socket) -> None:
        conn.sendall(_head("302 Found", f"Location: {decoy.url}", "Content-Length: 0"))

    error, _ = _exchange(target(redirect).url)
    assert error.failure is TransportFailure.REDIRECT and error.status == 302
    assert decoy.url in str(error)
    assert decoy.connections == 0


def test_broken_chunked_encoding_is_a_protocol_error(target: Callable[[Handler], _Target]) -> None:
    def broken(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", "Transfer-Encoding: chunked") + b"2\r\n{}\r\nzz-not-a-size\r\n0\r\n\r\n")

    error, _ = _exchange(target(broken).url)
    assert error.failure is TransportFailure.PROTOCOL_ERROR


def test_garbage_instead_of_a_status_line_is_a_protocol_error(target: Callable[[Handler], _Target]) -> None:
    error, _ = _exchange(target(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")).url)
    assert error.failure is TransportFailure.PROTOCOL_ERROR


def test_a_reset_is_connection_reset(target: Callable[[Handler], _Target]) -> None:
    def reset(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", "Content-Length: 100") + b"{")
        time.sleep(0.1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    error, _ = _exchange(target(reset).url)
    assert error.failure is TransportFailure.CONNECTION_RESET


@pytest.mark.parametrize(
    "sent", [b"", _head("200 OK", "Content-Length: 100") + b"{"], ids=["nothing", "half"]
)
def test_a_close_before_the_end_is_connection_closed(
    target: Callable[[Handler], _Target], sent: bytes
) -> None:
    error, _ = _exchange(target(lambda conn: conn.sendall(sent)).url)
    assert error.failure is TransportFailure.CONNECTION_CLOSED


def test_a_refused_connection_is_connection_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    error, _ = _exchange(f"http://127.0.0.1:{port}/v1/models")
    assert error.failure is TransportFailure.CONNECTION_REFUSED


# -- the property layer's forwarder -------------------------------------------------------------


def _via(forwarder: WireForwarder, url: str, **kwargs: object) -> requests.Response:
    """A request as schemathesis sends it: ``requests``, through the forwarder as an HTTP proxy."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, proxies={"all": forwarder.url}, timeout=10, allow_redirects=False, **kwargs)  # type: ignore[arg-type]


def test_the_forwarder_relays_an_answer_as_it_came(target: Callable[[Handler], _Target]) -> None:
    def answer(conn: socket.socket) -> None:
        conn.sendall(
            _head("201 Created", "Content-Type: application/json", "X-Edgee-Provider: openai", "Transfer-Encoding: chunked")
            + b"c\r\n" + OK_BODY + b"\r\n0\r\n\r\n"
        )  # fmt: skip

    with WireForwarder(1.0) as forwarder:
        response = _via(forwarder, target(answer).url)
    assert (response.status_code, response.reason, response.content) == (201, "Created", OK_BODY)
    assert response.headers["X-Edgee-Provider"] == "openai"
    assert response.headers["Content-Type"] == "application/json"
    assert forwarder.failure is None


def test_the_forwarder_trips_on_the_first_transport_failure(target: Callable[[Handler], _Target]) -> None:
    """No answer is made up: the connection closes, the failure is kept, nothing more is relayed."""

    def drip(conn: socket.socket) -> None:
        for byte in _head("200 OK", "Content-Length: 2") + b"{}":
            conn.sendall(bytes([byte]))
            time.sleep(0.2)

    server = target(drip)
    with WireForwarder(1.0) as forwarder:
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            _via(forwarder, server.url)
        assert (
            time.monotonic() - started < 4.0
        )  # requests re-sends a dropped request once: 2 deadlines at most
        assert forwarder.failure is not None and forwarder.failure.failure is TransportFailure.DEADLINE
        assert forwarder.where == "GET /v1/models"
        contacted = server.connections
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            _via(forwarder, server.url)
        assert time.monotonic() - started < 1.0
        assert server.connections == contacted


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"[" * 100_000 + b"]" * 100_000),
        ("text/event-stream", b"data: " + b'{"a":' * 300 + b"1" + b"}" * 300 + b"\n\n"),
    ],
    ids=["json", "sse"],
)
def test_the_forwarder_trips_on_json_nested_too_deep(
    target: Callable[[Handler], _Target], content_type: str, body: bytes
) -> None:
    """schemathesis parses answers with a plain json.loads: a 100k-deep one would take its run down."""

    def deep(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", f"Content-Type: {content_type}", f"Content-Length: {len(body)}") + body)

    with WireForwarder(1.0) as forwarder, pytest.raises(requests.ConnectionError):
        _via(forwarder, target(deep).url)
    assert forwarder.failure is None and forwarder.too_deep
    assert (forwarder.stop_reason or "").startswith("too_deep: ")


def test_the_forwarder_relays_many_shallow_brackets(target: Callable[[Handler], _Target]) -> None:
    body = b"[" + b",".join(b"{}" for _ in range(1000)) + b"]"

    def wide(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}") + body)

    with WireForwarder(1.0) as forwarder:
        assert _via(forwarder, target(wide).url).content == body
    assert forwarder.stop_reason is None


def test_the_forwarder_only_relays_to_loopback() -> None:
    with WireForwarder(1.0) as forwarder, pytest.raises(requests.ConnectionError):
        _via(forwarder, "http://192.0.2.1/v1/models")
    assert forwarder.failure is None


def test_the_probe_reads_no_body(target: Callable[[Handler], _Target]) -> None:
    """An endless model list answers the probe at once: the status line is all it needs."""
    from gateproof.contract import TargetConfig
    from gateproof.contract._runner import _probe

    def endless(conn: socket.socket) -> None:
        conn.sendall(_head("200 OK", "Content-Type: application/json"))
        while True:
            conn.sendall(b"x" * 65536)

    server = target(endless)
    config = TargetConfig(base_url=f"http://127.0.0.1:{server.port}/v1", timeout_s=5.0)
    started = time.monotonic()
    with bounded_client(5.0) as client:
        assert _probe(client, config) is None
    assert time.monotonic() - started < 1.0


def test_a_wire_error_is_an_httpx_transport_error() -> None:
    """Code that catches httpx's errors (the journal read, the companion request) still catches these."""
    assert issubclass(WireError, httpx.TransportError)
