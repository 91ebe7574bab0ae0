"""One HTTP/1.1 exchange with the target over a gevent socket, bounded in every dimension.

Why the load users do not use locust's ``FastHttpSession``: geventhttpclient's ``UserAgent``
follows redirects (``FastHttpUser.max_redirects`` is 30), reads the status line and header block
inside the response constructor without any bound, and its body reads (``read()``,
``readline()``) buffer until the body or the line ends. Against a hostile target that meant
connections to wherever ``Location`` pointed, gigabytes buffered from an endless body, and a
greenlet reading a fast socket that never gave the gevent hub a turn (gevent's ``recv`` returns
without switching when data is waiting), so timers, ``--stop-timeout`` and the progress line froze.

So an exchange here owns its socket and uses geventhttpclient only for its llhttp parser
(:class:`geventhttpclient.response.HTTPResponse`, fed bytes by hand). The rules are those of
``gateproof.contract`` (its ``_wire`` module), with the same failure names:

- one origin only: the user connects to the ``--host`` origin and nowhere else; a 3xx answer is
  returned like any other status (the caller names it ``redirect``) and never followed;
- the status line and header block may take ``MAX_HEADER_BYTES`` (``headers_too_large``), the body
  ``MAX_RESPONSE_BYTES`` (``body_too_large``);
- every socket wait is cut at the request's overall deadline (send to last byte): ``timeout``
  when not one byte of the answer had arrived by then, ``deadline`` when it had;
- after every read the greenlet yields to the hub (``gevent.sleep(0)``), so no body, however fast,
  can hold the process.

This module imports gevent, so only the locustfile (the gevent child) imports it.
"""

from __future__ import annotations

import contextlib
import errno
import ssl
import time
from typing import Any

import gevent
import gevent.select
import gevent.socket
import gevent.ssl
from geventhttpclient.response import HTTPParseError, HTTPResponse

from gateproof.contract import MAX_HEADER_BYTES, MAX_RESPONSE_BYTES, TransportFailure

__all__ = ["BLOCK_SIZE", "ExchangeFailed", "Response", "Target", "build_request"]

#: bytes asked of one ``recv``: large enough that an 8 MiB body is 128 reads, small enough that a
#: read never holds more than a sliver of the cap
BLOCK_SIZE = 64 * 1024


class ExchangeFailed(Exception):
    """The exchange ended without a complete answer; ``reason`` is a :class:`TransportFailure` value."""

    def __init__(self, reason: TransportFailure, *, answered: bool) -> None:
        super().__init__(reason.value)
        self.reason = reason.value
        #: a status line had come back before it failed (the target did answer, just not well)
        self.answered = answered


def build_request(path: str, host_header: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of one POST (built once per user class: every request of a run is the same)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host_header}", "User-Agent: gateproof-load"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Parser(HTTPResponse):
    """llhttp fed by hand; body bytes are collected here instead of in the parser's own buffer."""

    def __init__(self) -> None:
        super().__init__(method="POST")
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.status_seen = False

    def _on_status(self, msg: str) -> None:
        super()._on_status(msg)
        self.status_seen = True

    def _on_body(self, buf: Any) -> None:
        self.body.append(bytes(buf))
        self.body_bytes += len(buf)


class Response:
    """An answer whose head has arrived; read its body with :meth:`read_some`, then :meth:`close`."""

    def __init__(self, target: Target, sock: gevent.socket.socket, deadline: float) -> None:
        self._target = target
        self._sock: gevent.socket.socket | None = sock
        self._deadline = deadline
        self._parser = _Parser()
        self._received = 0
        #: perf_counter taken the moment the latest read returned (before the hub got its turn),
        #: so that yielding never lands inside a measured interval
        self.arrived_at = time.perf_counter()
        self._read_head()
        #: when the head of the final answer was complete
        self.head_at = self.arrived_at

    @property
    def status(self) -> int:
        return int(self._parser.get_code())

    def header(self, name: str) -> str:
        """One header's value ("" when absent; repeated headers are joined with a comma)."""
        value = self._parser.get(name)
        if value is None:
            return ""
        return value if isinstance(value, str) else ", ".join(value)

    @property
    def body_bytes(self) -> int:
        return self._parser.body_bytes

    def read_some(self) -> tuple[float, bytes]:
        """(arrival, body bytes) of the next read; the bytes are b"" once the body is complete.

        Bytes that came in with the header block are returned first, without a read. The
        arrival is the perf_counter of the read that brought them; after the end, that of the
        read that completed the body.
        """
        parser = self._parser
        while not parser.body and not parser.message_complete:
            self._feed(self._receive(BLOCK_SIZE))
        if not parser.body:
            return self.arrived_at, b""
        data = parser.body[0] if len(parser.body) == 1 else b"".join(parser.body)
        parser.body.clear()
        return self.arrived_at, data

    def close(self) -> None:
        """Hand a cleanly finished keep-alive connection back to the target; close any other."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        parser = self._parser
        if parser.message_complete and not parser.parser_failed() and parser.should_keep_alive():
            self._target.keep(sock)
        else:
            with contextlib.suppress(OSError):
                sock.close()

    def _fail(self, reason: TransportFailure) -> ExchangeFailed:
        self.close_hard()
        return ExchangeFailed(reason, answered=self._parser.status_seen)

    def close_hard(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _read_head(self) -> None:
        """Read until the head of a final (non-1xx) answer is complete, within MAX_HEADER_BYTES."""
        parser = self._parser
        while not parser.headers_complete or parser.get_code() < 200:
            room = MAX_HEADER_BYTES - self._received
            if room <= 0:
                raise self._fail(TransportFailure.HEADERS_TOO_LARGE)
            self._feed(self._receive(min(BLOCK_SIZE, room)))

    def _receive(self, size: int) -> bytes:
        """One ``recv``, cut at the deadline, then a turn for the hub."""
        sock = self._sock
        if sock is None:
            raise ExchangeFailed(TransportFailure.CONNECTION_CLOSED, answered=self._parser.status_seen)
        remaining = self._deadline - time.perf_counter()
        if remaining <= 0:
            raise self._fail(self._overdue())
        try:
            sock.settimeout(remaining)
            data: bytes = sock.recv(size)
        except (TimeoutError, ssl.SSLError) as exc:
            if isinstance(exc, ssl.SSLError) and "timed out" not in str(exc):
                raise self._fail(TransportFailure.PROTOCOL_ERROR) from None
            raise self._fail(self._overdue()) from None
        except ConnectionResetError:
            raise self._fail(TransportFailure.CONNECTION_RESET) from None
        except OSError:
            raise self._fail(TransportFailure.CONNECTION_ERROR) from None
        self.arrived_at = time.perf_counter()
        self._received += len(data)
        gevent.sleep(0)
        return data

    def _overdue(self) -> TransportFailure:
        return TransportFailure.DEADLINE if self._received else TransportFailure.TIMEOUT

    def _feed(self, data: bytes) -> None:
        """Parse ``data`` (b"" is the end of the connection) and enforce the body cap."""
        parser = self._parser
        try:
            parser.feed(data)
        except HTTPParseError:
            ended = not data
            raise self._fail(
                TransportFailure.CONNECTION_CLOSED if ended else TransportFailure.PROTOCOL_ERROR
            ) from None
        if not data and not parser.message_complete:
            raise self._fail(TransportFailure.CONNECTION_CLOSED)
        if parser.body_bytes > MAX_RESPONSE_BYTES:
            raise self._fail(TransportFailure.BODY_TOO_LARGE)


class Target:
    """The one origin a user talks to, holding at most one idle keep-alive connection.

    Users run a closed loop (one request at a time), so one connection per user is all the
    reuse there is to have.
    """

    def __init__(self, scheme: str, host: str, port: int, *, connect_timeout: float) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._tls: ssl.SSLContext | None = None
        if scheme == "https":
            # the target is on this machine and usually self-signed: encrypt, do not verify
            self._tls = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self._idle: gevent.socket.socket | None = None

    def send(self, request: bytes, deadline: float) -> Response:
        """Send ``request`` and read the answer's head; raise :class:`ExchangeFailed` on any failure."""
        sock = self._take_idle() or self._connect(deadline)
        remaining = deadline - time.perf_counter()
        try:
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            sock.sendall(request)
        except TimeoutError:
            sock.close()
            raise ExchangeFailed(TransportFailure.TIMEOUT, answered=False) from None
        except OSError as exc:
            sock.close()
            broken = exc.errno in (errno.EPIPE, errno.ECONNRESET)
            reason = TransportFailure.CONNECTION_RESET if broken else TransportFailure.CONNECTION_ERROR
            raise ExchangeFailed(reason, answered=False) from None
        return Response(self, sock, deadline)

    def keep(self, sock: gevent.socket.socket) -> None:
        if self._idle is not None:
            with contextlib.suppress(OSError):
                self._idle.close()
        self._idle = sock

    def close(self) -> None:
        if self._idle is not None:
            with contextlib.suppress(OSError):
                self._idle.close()
            self._idle = None

    def _take_idle(self) -> gevent.socket.socket | None:
        """The idle connection if the target has not closed it (a readable idle socket is closed or
        holds bytes nobody asked for: either way it is not reused)."""
        sock, self._idle = self._idle, None
        if sock is None:
            return None
        try:
            readable, _, _ = gevent.select.select([sock], [], [], 0)
        except (OSError, ValueError):
            readable = [sock]
        if readable:
            with contextlib.suppress(OSError):
                sock.close()
            return None
        return sock

    def _connect(self, deadline: float) -> gevent.socket.socket:
        timeout = min(self.connect_timeout, deadline - time.perf_counter())
        if timeout <= 0:
            raise ExchangeFailed(TransportFailure.TIMEOUT, answered=False)
        try:
            sock = gevent.socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except TimeoutError:
            raise ExchangeFailed(TransportFailure.TIMEOUT, answered=False) from None
        except ConnectionRefusedError:
            raise ExchangeFailed(TransportFailure.CONNECTION_REFUSED, answered=False) from None
        except ConnectionResetError:
            raise ExchangeFailed(TransportFailure.CONNECTION_RESET, answered=False) from None
        except ssl.SSLError:
            raise ExchangeFailed(TransportFailure.PROTOCOL_ERROR, answered=False) from None
        except OSError:
            raise ExchangeFailed(TransportFailure.CONNECTION_ERROR, answered=False) from None
        return sock
