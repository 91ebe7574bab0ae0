"""The gateway's HTTP/1.1 client for its providers: pooled keep-alive connections, every wait bounded.

Why not httpx: it cost about 1.1 ms of CPU per upstream call on the benchmark machine, half of
everything the gateway spent on a request (``benchmarks/gateway_overhead.py``), for machinery the
gateway does not use (redirects, cookies, auth flows, content decoding, HTTP/2, proxies). This client
does one thing: a JSON POST to a loopback provider over HTTP/1.1, on an asyncio protocol with
httptools' C parser (already what uvicorn parses the gateway's own requests with), the request head and
body in one write, the answer's body handed over piece by piece as it arrives.

What it keeps from httpx, because the gateway's behaviour depends on it:

- one pool for every provider, at most ``max_connections`` connections; a connection goes back to
  the pool only when its answer was read to the end (a stream closed early closes its connection),
  and an idle one is dropped after ``KEEPALIVE_S``, before the provider's own keep-alive (uvicorn: 5 s)
  closes it under a request;
- the failures and their names (the gateway quotes them, ``_resilience`` classifies them):
  :class:`ConnectTimeout`, :class:`PoolTimeout`, :class:`ReadTimeout` (all :class:`UpstreamTimeout`),
  :class:`ConnectError`, :class:`ReadError`, :class:`RemoteProtocolError` (all :class:`TransportError`);
- no retry of its own: every attempt is the gateway's to count (D44);
- ``Accept-Encoding: identity``: nothing arrives compressed, so a stream arrives event by event.

Every wait has a bound: connecting (``connect_timeout``), a free connection (``pool_timeout``), each
read (``read_timeout``, a fresh bound per wait, so any byte restarts it: what "the provider stopped
talking" means on the wire), and an optional ``deadline`` over the whole exchange. One timer per
connection enforces the read bounds, re-armed only when it fires, so a stream of many events costs
no timer per event. The loopback rule applies here too: a connection off loopback is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

from gateproof.reference_gateway._loopback import is_loopback_host

__all__ = [
    "KEEPALIVE_S",
    "ConnectError",
    "ConnectTimeout",
    "PoolTimeout",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "TransportError",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTimeout",
]

#: an idle pooled connection older than this is closed instead of reused
KEEPALIVE_S = 4.0
#: buffered body bytes at which the connection stops reading until the gateway catches up
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
#: characters a request target may carry as they are (the rest is percent-encoded)
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


class UpstreamError(Exception):
    """An upstream exchange that did not complete."""


class UpstreamTimeout(UpstreamError):
    """A bounded wait ran out."""


class ConnectTimeout(UpstreamTimeout):
    """No connection to the provider within ``connect_timeout``."""


class PoolTimeout(UpstreamTimeout):
    """Every pooled connection stayed busy for ``pool_timeout``."""


class ReadTimeout(UpstreamTimeout):
    """The provider sent nothing for ``read_timeout``, or the exchange outlived its ``deadline``."""


class TransportError(UpstreamError):
    """The connection failed: refused, reset, cut short, or not speaking HTTP/1.1."""


class ConnectError(TransportError):
    """The connection could not be opened (refused, unreachable, off loopback)."""


class ReadError(TransportError):
    """The connection broke while the answer was coming (a reset)."""


class RemoteProtocolError(TransportError):
    """The provider closed the connection early or sent something that is not HTTP/1.1."""


@dataclass(frozen=True)
class _Target:
    """Where one URL's requests go, parsed once per URL."""

    origin: tuple[str, str, int]
    host_header: str
    target: str


@lru_cache(maxsize=512)
def _parse(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if parts.port is None else f"{shown}:{port}"
    return _Target((parts.scheme, host, port), host_header, target)


def _head(method: str, target: _Target, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"{method} {target.target} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\0" in value or ":" in name or "\n" in name:
            raise UpstreamError(f"the header {name!r} cannot be sent as it is")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {length}")
    if not any(name.lower() == "accept-encoding" for name in headers):
        lines.append("Accept-Encoding: identity")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class _Connection(asyncio.Protocol):
    """One keep-alive connection to one origin; one exchange at a time."""

    def __init__(self, origin: tuple[str, str, int]) -> None:
        self.origin = origin
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._begin()

    def _begin(self) -> None:
        """Fresh state for the next exchange."""
        self.busy = False
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.until_close = False
        self.error: UpstreamError | None = None
        self.pieces: deque[bytes] = deque()
        self.buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._wait_until = 0.0
        self._wait_error: UpstreamError | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            # bytes nobody asked for: this connection can no longer be trusted with a request
            self._close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(RemoteProtocolError("the provider switched protocols"))
            return
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"the provider's answer is not HTTP/1.1 ({exc})"))
            return
        if self.buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost says what it means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.busy or self.complete:
            return
        if self.until_close and exc is None:
            # a body without a length ends where the connection does
            self.complete = True
            self.keep_alive = False
        elif self.error is None:
            if isinstance(exc, ConnectionResetError | BrokenPipeError):
                self.error = ReadError(f"the connection was reset ({exc})")
            elif self.headers_done:
                self.error = RemoteProtocolError(
                    "the provider closed the connection before the body was complete"
                )
            else:
                self.error = RemoteProtocolError(
                    "the provider closed the connection without sending an answer"
                )
        self._wake()

    # -- httptools callbacks ------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        names = {name.lower() for name, _ in self.raw_headers}
        bodiless = self.status in (204, 304) or 100 <= self.status < 200
        self.until_close = (
            not bodiless and b"content-length" not in names and b"transfer-encoding" not in names
        )
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True

    # -- waiting ------------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self._close()
        self._wake()

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def wait(self, seconds: float, error: UpstreamError) -> None:
        """Until the parser has something new (or the connection ended), at most ``seconds``.

        One timer per connection: it is armed at the first wait and, when it fires, re-armed for
        the wait then in progress (if any), so waits that end in time cost no timer each.
        """
        waiter = self._loop.create_future()
        self._waiter = waiter
        self._wait_until = self._loop.time() + seconds
        self._wait_error = error
        timer = self._timer
        if timer is None or timer.when() > self._wait_until:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(self._wait_until, self._on_timer)
        try:
            await waiter
        finally:
            self._waiter = None

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._loop.time() >= self._wait_until:
            error = self._wait_error or ReadTimeout("no answer in time")
            self.error = error
            self._close()
            waiter.set_result(None)
        else:
            self._timer = self._loop.call_at(self._wait_until, self._on_timer)

    def consumed(self, size: int) -> None:
        self.buffered -= size
        if self._paused and self.buffered < _LOW_WATER and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def finish(self) -> bool:
        """The exchange is over; True when the connection may carry another one."""
        if self._timer is not None:
            self._timer.cancel()
        reusable = self.complete and self.keep_alive and not self.closed and self.error is None
        if reusable:
            self._parser = httptools.HttpResponseParser(self)
            self._begin()
            self.idle_since = self._loop.time()
        else:
            self._close()
        return reusable


def _bound(read_timeout: float, deadline: float | None) -> tuple[float, UpstreamError]:
    """How long the next wait may last, and the error it ends with when it runs out."""
    if deadline is not None:
        left = deadline - asyncio.get_running_loop().time()
        if left < read_timeout:
            return max(0.0, left), ReadTimeout("the answer took longer than its deadline")
    return read_timeout, ReadTimeout(f"nothing from the provider for {read_timeout:g} s")


class UpstreamResponse:
    """A provider's answer once its status line and headers are in; the body follows on demand.

    ``read_timeout`` bounds each wait for more of the body (the gateway sets a stream's idle
    timeout here once the headers are in); ``deadline`` (loop time) bounds them all together.
    ``close`` must be called once the gateway is done with it (it gives the connection back).
    """

    def __init__(
        self,
        client: UpstreamClient,
        connection: _Connection,
        read_timeout: float,
        deadline: float | None,
    ) -> None:
        self._client = client
        self._connection = connection
        self.status_code = connection.status
        self.headers: dict[str, str] = {}
        for name, value in connection.raw_headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        self.read_timeout = read_timeout
        self.deadline = deadline
        self._closed = False

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body as it arrives: what is buffered at each wake-up, joined into one piece."""
        connection = self._connection
        while True:
            if connection.pieces:
                if len(connection.pieces) == 1:
                    piece = connection.pieces.popleft()
                else:
                    piece = b"".join(connection.pieces)
                    connection.pieces.clear()
                connection.consumed(len(piece))
                yield piece
                continue
            if connection.error is not None:
                raise connection.error
            if connection.complete:
                return
            seconds, error = _bound(self.read_timeout, self.deadline)
            await connection.wait(seconds, error)

    async def read(self, limit: int | None = None) -> bytes:
        """The body (its first ``limit`` bytes at most: reading stops there)."""
        received = bytearray()
        async for piece in self.pieces():
            received += piece
            if limit is not None and len(received) >= limit:
                return bytes(received[:limit])
        return bytes(received)

    def close(self) -> None:
        """Give the connection back (read to its end) or close it (anything else); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._client._release(self._connection)

    async def aclose(self) -> None:
        self.close()


class UpstreamClient:
    """The pool of connections to every provider, at most ``max_connections`` at once."""

    def __init__(self, *, max_connections: int, keepalive_s: float = KEEPALIVE_S) -> None:
        self._max = max_connections
        self._keepalive = keepalive_s
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        pool_timeout: float,
        read_timeout: float,
        deadline: float | None = None,
    ) -> UpstreamResponse:
        """Send one POST and wait for the answer's status line and headers.

        ``read_timeout`` bounds the wait for the headers (and later each wait for the body);
        ``deadline`` (loop time), when given, bounds the whole exchange.
        """
        target = _parse(url)
        payload = _head("POST", target, headers, len(body)) + body
        connection = await self._acquire(target.origin, connect_timeout, pool_timeout, deadline)
        connection.busy = True
        response: UpstreamResponse | None = None
        try:
            assert connection.transport is not None
            connection.transport.write(payload)
            while not connection.headers_done:
                if connection.error is not None:
                    raise connection.error
                seconds, error = _bound(read_timeout, deadline)
                await connection.wait(seconds, error)
            response = UpstreamResponse(self, connection, read_timeout, deadline)
            return response
        finally:
            if response is None:
                connection.complete = False
                self._release(connection)

    async def _acquire(
        self,
        origin: tuple[str, str, int],
        connect_timeout: float,
        pool_timeout: float,
        deadline: float | None,
    ) -> _Connection:
        if self._closed:
            raise ConnectError("the gateway is shutting down")
        loop = asyncio.get_running_loop()
        waited_until = loop.time() + pool_timeout
        while True:
            idle = self._idle.get(origin)
            now = loop.time()
            while idle:
                connection = idle.pop()
                if not connection.closed and now - connection.idle_since < self._keepalive:
                    return connection
                self._discard(connection)
            if self._open < self._max or self._evict_idle():
                self._open += 1
                try:
                    return await self._connect(origin, connect_timeout, deadline)
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            left = waited_until - now
            late: UpstreamError = PoolTimeout(f"all {self._max} upstream connections stayed busy")
            if deadline is not None and deadline - now < left:
                left = deadline - now
                late = ReadTimeout("the answer took longer than its deadline")
            if left <= 0:
                raise late
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, left)
            except TimeoutError:
                raise late from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def _connect(
        self, origin: tuple[str, str, int], timeout: float, deadline: float | None
    ) -> _Connection:
        scheme, host, port = origin
        if not is_loopback_host(host):
            raise ConnectError(f"{host} is not on loopback; the reference gateway only forwards to loopback")
        loop = asyncio.get_running_loop()
        late: UpstreamError = ConnectTimeout(f"no connection to {host}:{port} within {timeout:g} s")
        if deadline is not None and deadline - loop.time() < timeout:
            timeout = max(0.0, deadline - loop.time())
            late = ReadTimeout("the answer took longer than its deadline")
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        connection = _Connection(origin)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: connection, host, port, ssl=tls), timeout)
        except TimeoutError:
            raise late from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        sock = connection.transport.get_extra_info("socket") if connection.transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _release(self, connection: _Connection) -> None:
        if connection.finish():
            if self._closed:
                connection._close()
                self._open -= 1
            else:
                self._idle.setdefault(connection.origin, deque()).append(connection)
        else:
            self._open -= 1
        self._wake_one()

    def _discard(self, connection: _Connection) -> None:
        connection._close()
        self._open -= 1

    def _evict_idle(self) -> bool:
        """Close one idle connection (of any origin) to make room; False when none is idle."""
        for idle in self._idle.values():
            if idle:
                self._discard(idle.popleft())
                return True
        return False

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        """Close every idle connection; busy ones close when their exchange ends."""
        self._closed = True
        for idle in self._idle.values():
            while idle:
                self._discard(idle.pop())
        self._idle.clear()
