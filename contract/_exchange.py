"""Talking to the target under the wire rules, and recording what came back with arrival times.

Every byte gateproof's contract run reads from a target goes through :class:`BoundedTransport`,
which enforces the rules of :mod:`gateproof.contract._wire` below httpx, where they cannot be
forgotten by a caller:

- one overall deadline per request, from the first byte sent to the last byte read. httpx's
  timeouts are per socket operation, so a target that drips a byte a second, or streams
  forever, never trips them; here every socket wait is shortened to what is left of the
  request's deadline (:class:`_Budget`), the header phase included;
- no redirect is followed, and a 3xx is the failure ``redirect``, never an answer to judge;
- a header block past ``MAX_HEADER_BYTES`` and a body past ``MAX_RESPONSE_BYTES`` are failures,
  so nothing a target sends is held in memory without bound;
- every way an exchange can break is one :class:`WireError` naming a ``TransportFailure``.

Streams are read as they arrive: each piece is timestamped before anything is parsed, then fed
to the stream checker, so the time of every content event is the time its bytes reached us.

The property layer (schemathesis, which talks ``requests``) gets the same rules through
:class:`WireForwarder`, a loopback forward proxy that relays each of its requests with this
transport.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpcore
import httpx

from gateproof.contract._config import is_loopback_url
from gateproof.contract._wire import (
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    MAX_RESPONSE_BYTES,
    JSONTooDeep,
    TransportFailure,
    loads_bounded,
)
from gateproof.contract.checks import Observed
from gateproof.contract.stream import ChatStreamGrammar, SSEDecoder, StreamChecker, StreamReport

__all__ = [
    "DEADLINE_EXTENSION",
    "MAX_BODY",
    "BoundedTransport",
    "Sent",
    "WireError",
    "WireForwarder",
    "bounded_client",
    "parse_chunks",
    "send",
]

#: the most of a response body kept for checks and reports (streams are kept whole up to this size);
#: reading goes on to MAX_RESPONSE_BYTES, so a body between the two is judged on its first 4 MiB
MAX_BODY: Final = 4 * 1024 * 1024
#: request extension that overrides the transport's deadline (seconds) for one request
DEADLINE_EXTENSION: Final = "gateproof.deadline"
#: a socket connect never waits longer than this, whatever the deadline
_CONNECT_TIMEOUT_S: Final = 5.0


class WireError(httpx.TransportError):
    """An exchange that did not produce a complete HTTP answer to judge, and the rule it broke.

    ``str()`` starts with the failure's name (``deadline: ...``) so that a result reason, a
    progress line and a load failure count all read the same. ``local`` is true when gateproof
    itself could not send the request (e.g. a generated header value HTTP/1.1 forbids): that is
    not the target's fault and must not count against it. ``status`` is set when a status line
    did arrive (a redirect, an oversized header block).
    """

    def __init__(
        self,
        failure: TransportFailure,
        detail: str = "",
        *,
        local: bool = False,
        status: int | None = None,
    ) -> None:
        message = f"{failure.value}: {failure.sentence}"
        if detail:
            message += f" ({detail})"
        super().__init__(message[:400])
        self.failure = failure
        self.detail = detail
        self.local = local
        self.status = status


# -- the deadline, below httpcore ----------------------------------------------------------------


class _Expired(Exception):
    """Raised inside a socket wait that the request's deadline cut short; carries the verdict."""

    def __init__(self, failure: TransportFailure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


class _Budget(threading.local):
    """The deadline of the request this thread is exchanging, seen by every socket wait.

    httpcore picks the connection for a request itself, so the deadline cannot ride on the
    connection: it is set per thread when a request starts and holds until the next one. One
    thread has one exchange in flight at a time (the runner, each forwarder handler thread).
    """

    deadline: float | None = None
    seconds: float = 0.0
    #: when the last byte of this exchange arrived (or when it started)
    last_byte: float = 0.0

    def start(self, seconds: float) -> None:
        now = time.monotonic()
        self.seconds = seconds
        self.deadline = now + seconds
        self.last_byte = now

    def wait(self, timeout: float | None) -> float | None:
        """How long the next socket wait may last: its own timeout, cut to what is left."""
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.expired(timeout)
        return left if timeout is None else min(timeout, left)

    def expired(self, timeout: float | None) -> _Expired:
        """The verdict on a wait the deadline ended: still sending (deadline) or stalled (timeout).

        The deadline and the read timeout are both ``timeout_s`` by default, so when the deadline
        ends a wait the question is what the target was doing: silent for at least half the read
        timeout means it stalled, which is a timeout; anything more recent means data kept coming.
        """
        silent = time.monotonic() - self.last_byte
        if timeout is not None and silent >= timeout / 2:
            return _Expired(TransportFailure.TIMEOUT, f"silent for {silent:.1f} s")
        return _Expired(TransportFailure.DEADLINE, f"{self.seconds:g} s")


class _BudgetedStream(httpcore.NetworkStream):
    """A socket stream whose every wait ends by the deadline of the exchange it serves."""

    def __init__(self, inner: httpcore.NetworkStream, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait = self._budget.wait(timeout)
        try:
            data = self._inner.read(max_bytes, wait)
        except httpcore.ReadTimeout:
            if wait is not None and timeout is not None and wait < timeout:
                raise self._budget.expired(timeout) from None
            raise
        if data:
            self._budget.last_byte = time.monotonic()
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait = self._budget.wait(timeout)
        try:
            self._inner.write(buffer, wait)
        except httpcore.WriteTimeout:
            if wait is not None and timeout is not None and wait < timeout:
                raise _Expired(TransportFailure.DEADLINE, "the target stopped reading the request") from None
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _BudgetedStream(self._inner.start_tls(*args, **kwargs), self._budget)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BudgetedBackend(httpcore.NetworkBackend):
    """httpcore's plain socket backend, handing out budgeted streams."""

    def __init__(self, budget: _Budget) -> None:
        self._inner = httpcore.SyncBackend()
        self._budget = budget

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, self._budget.wait(timeout), local_address=local_address, socket_options=socket_options
        )
        return _BudgetedStream(stream, self._budget)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.UnsupportedProtocol("gateproof only talks TCP to loopback")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# -- naming what broke ---------------------------------------------------------------------------


def _cause(exc: BaseException) -> BaseException | None:
    return exc.__cause__ or exc.__context__


def _classify(exc: Exception, *, in_headers: bool) -> WireError:
    """The named failure behind an exception from httpcore (or from the deadline)."""
    text = str(exc)
    match exc:
        case _Expired():
            return WireError(exc.failure, exc.detail)
        case httpcore.TimeoutException():
            return WireError(TransportFailure.TIMEOUT, type(exc).__name__)
        case httpcore.ConnectError():
            if isinstance(_cause(exc), ConnectionRefusedError):
                return WireError(TransportFailure.CONNECTION_REFUSED)
            return WireError(TransportFailure.CONNECTION_ERROR, text)
        case httpcore.NetworkError():
            cause = _cause(exc)
            if isinstance(cause, ConnectionResetError):
                return WireError(TransportFailure.CONNECTION_RESET)
            if isinstance(cause, BrokenPipeError | ConnectionAbortedError):
                return WireError(TransportFailure.CONNECTION_CLOSED, "while the request was being sent")
            return WireError(TransportFailure.CONNECTION_ERROR, text)
        case httpcore.LocalProtocolError():
            return WireError(
                TransportFailure.CONNECTION_ERROR, f"gateproof could not send it: {text}", local=True
            )
        case httpcore.RemoteProtocolError():
            if "Receive buffer too long" in text:
                # h11 stops buffering an incomplete event at httpcore's 100 KiB: in the header phase
                # that is the header block; in a body it is a chunk-size line, which is bad framing
                if in_headers:
                    return WireError(
                        TransportFailure.HEADERS_TOO_LARGE, "more than 100 KiB before the blank line"
                    )
                return WireError(TransportFailure.PROTOCOL_ERROR, "a chunk-size line longer than 100 KiB")
            if "peer closed" in text or "disconnected" in text or "unexpectedly closed" in text:
                return WireError(TransportFailure.CONNECTION_CLOSED, text)
            return WireError(TransportFailure.PROTOCOL_ERROR, text)
        case _:
            return WireError(TransportFailure.CONNECTION_ERROR, f"{type(exc).__name__}: {text}")


def _header_bytes(status: int, headers: list[tuple[bytes, bytes]]) -> int:
    """The size of a status line and header block, as near to the wire form as h11 leaves it."""
    return len(f"HTTP/1.1 {status} \r\n") + sum(len(k) + len(v) + 4 for k, v in headers) + 2


class _BoundedBody(httpx.SyncByteStream):
    """A response body that stops at MAX_RESPONSE_BYTES and names any failure while reading it."""

    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        pieces = self._response.iter_stream()
        while True:
            try:
                piece = next(pieces)
            except StopIteration:
                return
            except Exception as exc:
                raise _classify(exc, in_headers=False) from exc
            size += len(piece)
            if size > MAX_RESPONSE_BYTES:
                raise WireError(TransportFailure.BODY_TOO_LARGE, f"more than {size} bytes read")
            yield piece

    def close(self) -> None:
        self._response.close()


class BoundedTransport(httpx.BaseTransport):
    """An httpx transport over httpcore's HTTP/1.1 pool that enforces the wire rules.

    A transport of our own rather than ``httpx.HTTPTransport`` because the deadline lives in
    the network backend, which httpx does not let a caller choose.
    """

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._budget = _Budget()
        self._pool = httpcore.ConnectionPool(
            http1=True,
            http2=False,
            retries=0,
            max_connections=20,
            keepalive_expiry=5.0,
            # httpcore writes a request's head and body in two sends; without NODELAY, Nagle holds
            # the body until the server's delayed ACK, ~40 ms on every request with a body
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            network_backend=_BudgetedBackend(self._budget),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = request.extensions.get(DEADLINE_EXTENSION, self.deadline_s)
        self._budget.start(float(deadline))
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise WireError(TransportFailure.CONNECTION_ERROR, "an async request body", local=True)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = self._pool.handle_request(core_request)
        except Exception as exc:
            raise _classify(exc, in_headers=True) from exc
        if 300 <= response.status < 400:
            response.close()
            location = next((v for k, v in response.headers if k.lower() == b"location"), b"")
            shown = location.decode("latin-1")[:200]
            raise WireError(
                TransportFailure.REDIRECT,
                f"HTTP {response.status} to {shown or 'nowhere'}",
                status=response.status,
            )
        size = _header_bytes(response.status, response.headers)
        if size > MAX_HEADER_BYTES:
            response.close()
            raise WireError(TransportFailure.HEADERS_TOO_LARGE, f"{size} bytes", status=response.status)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_BoundedBody(response),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def bounded_client(timeout_s: float) -> httpx.Client:
    """The client every contract request goes through: timeouts per wait, a deadline per request."""
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, _CONNECT_TIMEOUT_S))
    return httpx.Client(
        transport=BoundedTransport(deadline_s=timeout_s),
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
    )


# -- one scenario request ------------------------------------------------------------------------


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
    """Send ``sent`` and read the whole answer; a broken exchange raises :class:`WireError`.

    The client's transport bounds the whole exchange (deadline, header and body caps, no
    redirects); of the body, the first MAX_BODY bytes are kept for the checks.
    """
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
        kept = 0
        first_byte: float | None = None
        content_times: list[float] = []
        for piece in response.iter_raw():
            arrived = time.perf_counter() - started
            if first_byte is None:
                first_byte = arrived
            if kept < MAX_BODY:
                pieces.append(piece[: MAX_BODY - kept])
                kept += len(pieces[-1])
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

    Left out: the [DONE] sentinel, data that is not JSON or is nested too deep (``chunk_is_json``
    judges it) and error events (``no_error_event`` / ``stream_error_propagated`` judge those, D9).
    """
    decoder = SSEDecoder()
    chunks: list[Any] = []
    for event in decoder.feed(body):
        if event.data == "[DONE]":
            continue
        try:
            payload = loads_bounded(event.data)
        except ValueError:
            continue
        if isinstance(payload, dict) and "error" in payload:
            continue
        chunks.append(payload)
    return chunks


# -- the property layer's transport --------------------------------------------------------------

#: headers that describe one hop, not the message: never relayed (RFC 9110 section 7.6.1), plus
#: the framing headers the forwarder sets itself
_HOP_HEADERS: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def _nests_too_deep(content_type: str, body: bytes) -> bool:
    """Whether a JSON body, or the data of an SSE event, nests deeper than MAX_JSON_DEPTH."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False  # the common case: too few brackets to nest that deep
    if content_type.lower().startswith("text/event-stream"):
        documents: list[str | bytes] = [event.data for event in SSEDecoder().feed(body)]
    else:
        documents = [body]
    for document in documents:
        try:
            loads_bounded(document)
        except JSONTooDeep:
            return True
        except ValueError:  # not JSON: schemathesis says so itself
            continue
    return False


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class WireForwarder:
    """A loopback forward proxy that relays the property layer's requests under the wire rules.

    schemathesis sends with ``requests``, which reads a body to its end and has only per-read
    timeouts; its one transport setting that every request it makes honours (generated cases,
    its own probes, the unauthenticated re-sends) is ``proxy``. Pointed here, each request is
    relayed with :class:`BoundedTransport` and the answer handed back whole, so schemathesis
    never waits longer than the deadline or holds more than MAX_RESPONSE_BYTES of one answer.

    The first transport failure of the target (a deadline, a body too large, a redirect, ...)
    is recorded in ``failure`` and trips the forwarder: that request and every later one get
    their connection closed without an answer, so schemathesis finishes at once instead of
    meeting the same misbehaviour case after case; the property layer then reports the
    failure. An answer is never made up: schemathesis would judge it as the target's.

    An answer whose JSON (the body, or the data of an SSE event) nests deeper than
    MAX_JSON_DEPTH trips it the same way (``too_deep``): schemathesis parses it with a plain
    ``json.loads``, which recurses past Python's stack and takes its run down with a traceback.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.failure: WireError | None = None
        #: an answer nested its JSON deeper than MAX_JSON_DEPTH (and ``failure`` is None)
        self.too_deep = False
        #: the request that met ``failure`` or ``too_deep``, e.g. "GET /v1/models"
        self.where = ""
        self._lock = threading.Lock()
        self._transport = BoundedTransport(deadline_s=timeout_s)
        self._server = _ForwardingServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="gateproof-forwarder",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def stop_reason(self) -> str | None:
        """Why the forwarder stopped relaying, the failure's name first; None while it relays."""
        if self.failure is not None:
            return f"{self.failure} ({self.where})"
        if self.too_deep:
            return (
                f"too_deep: an answer nests JSON deeper than {MAX_JSON_DEPTH} levels, which schemathesis "
                f"cannot parse without recursing past Python's stack ({self.where})"
            )
        return None

    def __enter__(self) -> WireForwarder:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
        self._transport.close()

    def relay(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> _Answer | None:
        """The target's whole answer to one request, or None when the connection is to be dropped."""
        with self._lock:
            if self.failure is not None or self.too_deep:
                return None
        if urlsplit(url).scheme != "http" or not is_loopback_url(url):
            return None  # only ever loopback; nothing else can be asked of the forwarder
        timeout = httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, _CONNECT_TIMEOUT_S))
        forwarded = [(k, v) for k, v in headers if k.lower() not in _HOP_HEADERS]
        try:
            request = httpx.Request(
                method, url, headers=forwarded, content=body, extensions={"timeout": timeout.as_dict()}
            )
            response = self._transport.handle_request(request)
            try:
                content = b"".join(response.iter_raw())
            finally:
                response.close()
        except WireError as exc:
            if not exc.local:
                with self._lock:
                    if self.failure is None:
                        self.failure = exc
                        self.where = f"{method} {urlsplit(url).path}"
            return None
        except (httpx.HTTPError, ValueError):  # an URL or header httpx refuses to send: our side
            return None
        if _nests_too_deep(response.headers.get("content-type", ""), content):
            with self._lock:
                if self.failure is None and not self.too_deep:
                    self.too_deep = True
                    self.where = f"{method} {urlsplit(url).path}"
            return None
        reason = response.extensions.get("reason_phrase", b"")
        return _Answer(
            status=response.status_code,
            reason=reason.decode("latin-1") if isinstance(reason, bytes) else "",
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw],
            body=content,
        )


class _ForwardingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, forwarder: WireForwarder) -> None:
        super().__init__(("127.0.0.1", 0), _ForwardingHandler)
        self.forwarder = forwarder


class _ForwardingHandler(BaseHTTPRequestHandler):
    """One client connection to the forwarder: absolute-form requests in, whole answers out."""

    protocol_version = "HTTP/1.1"
    #: one write per answer, sent at once: with the default unbuffered writes, the head and the body
    #: went out as two segments and Nagle's algorithm held the second one until the client's delayed
    #: ACK (~40 ms). With the quick-ACK in handle_one_request, the property layer against the
    #: reference gateway went from 68 s to 5 s (benchmarks/property_forwarder.py)
    wbufsize = -1
    disable_nagle_algorithm = True
    #: an idle keep-alive connection from schemathesis is let go after this many seconds
    timeout = 30
    server: _ForwardingServer

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler dispatches on do_<METHOD>; schemathesis sends any method there is
        if name.startswith("do_"):
            return self._relay
        raise AttributeError(name)

    def _relay(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # requests never sends a chunked body for a generated case
            return
        length = self.headers.get("Content-Length")
        body = self.rfile.read(int(length)) if length and length.isdigit() else None
        answer = self.server.forwarder.relay(self.command, self.path, list(self.headers.items()), body)
        if answer is None:
            self.close_connection = True
            return
        self.send_response_only(answer.status, answer.reason or None)
        for name, value in answer.headers:
            if name.lower() not in _HOP_HEADERS:
                self.send_header(name, value)
        bodiless = self.command == "HEAD" or answer.status in (204, 304) or answer.status < 200
        if self.command == "HEAD":
            declared = next((v for k, v in answer.headers if k.lower() == "content-length"), None)
            if declared is not None:
                self.send_header("Content-Length", declared)
        elif not bodiless:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if not bodiless:
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the property layer reports what matters, and request lines may carry secrets."""

    def handle_one_request(self) -> None:
        # requests sends a request's head and body in two segments and, through a proxy, without
        # TCP_NODELAY: Nagle then holds the body until our ACK of the head, which Linux delays by
        # ~40 ms. Quick-ACK mode (re-armed per request, the kernel drops it after a while) makes
        # every generated case ~40 ms faster.
        with contextlib.suppress(OSError, AttributeError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        super().handle_one_request()

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client went away mid-request; nothing to answer
            self.close_connection = True
