"""The gateway's own HTTP/1.1 client (``_upstream``) and SSE decoder (``_sse``), against real sockets.

Each test serves a scripted provider on loopback (raw asyncio streams, so every byte on the wire is
the test's) and checks what the client makes of it: connections reused only after an answer read
to its end, the pool bound, every wait bounded (and restarted by any byte), failures named as the
gateway's resilience rules classify them, and events decoded exactly as ``httpx_sse`` decodes them.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager

import pytest
from httpx_sse._decoders import SSEDecoder as ReferenceDecoder
from httpx_sse._decoders import SSELineDecoder

from gateproof.reference_gateway._sse import SSEDecoder
from gateproof.reference_gateway._upstream import (
    ConnectError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    UpstreamClient,
    UpstreamResponse,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Provider:
    """A scripted server: counts connections and requests; ``handler`` answers each request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                await self.handler(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Provider]:
    provider = Provider(handler)
    server = await asyncio.start_server(provider._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    provider.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        yield provider
    finally:
        server.close()


async def _post(
    client: UpstreamClient, url: str, *, read_timeout: float = 5.0, deadline: float | None = None
) -> UpstreamResponse:
    return await client.post(
        url,
        {"Content-Type": "application/json"},
        b'{"model":"m"}',
        connect_timeout=2.0,
        pool_timeout=2.0,
        read_timeout=read_timeout,
        deadline=deadline,
    )


def run(coro: Coroutine[None, None, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


def test_one_write_per_request_and_the_connection_is_reused_after_a_whole_answer() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)

    async def scenario() -> None:
        async with serving(answer) as provider:
            client = UpstreamClient(max_connections=4)
            for _ in range(20):
                response = await _post(client, provider.url)
                assert response.status_code == 200 and await response.read() == b"{}"
                response.close()
            assert provider.connections == 1
            head = provider.requests[0].split(b"\r\n\r\n")[0].decode()
            assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
            assert "Host: 127.0.0.1:" in head and "Content-Length: 13" in head
            assert "Accept-Encoding: identity" in head
            await client.aclose()

    run(scenario())


def test_an_answer_closed_before_its_end_closes_its_connection() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")

    async def scenario() -> None:
        async with serving(chunked) as provider:
            client = UpstreamClient(max_connections=4)
            response = await _post(client, provider.url)
            pieces = response.pieces()
            assert await anext(pieces) == b"first"
            await pieces.aclose()
            response.close()  # one piece early: the connection cannot carry another request
            whole = await _post(client, provider.url)
            assert await whole.read() == b"firstsecond"  # chunked, read to the end
            whole.close()
            again = await _post(client, provider.url)
            await again.read()
            again.close()
            assert provider.connections == 2
            await client.aclose()

    run(scenario())


def test_a_body_without_length_ends_with_the_connection() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        async with serving(until_close) as provider:
            client = UpstreamClient(max_connections=1)
            for _ in range(2):  # the closed connection gave its pool slot back
                response = await _post(client, provider.url)
                assert await response.read() == b"all of it"
                response.close()
            assert provider.connections == 2

    run(scenario())


def test_the_pool_is_bounded_and_a_wait_for_a_connection_times_out() -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.write(OK)

    async def scenario() -> None:
        async with serving(slow) as provider:
            client = UpstreamClient(max_connections=2)
            busy = [asyncio.ensure_future(_post(client, provider.url)) for _ in range(2)]
            await asyncio.sleep(0.2)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(PoolTimeout):
                await client.post(provider.url, {}, b"", connect_timeout=1, pool_timeout=0.3, read_timeout=5)
            assert 0.25 < loop.time() - started < 1.5
            assert provider.connections == 2
            # a third request waits for a slot and gets it when an answer is read
            third = asyncio.ensure_future(_post(client, provider.url))
            release.set()
            for response in await asyncio.gather(*busy):
                assert await response.read() == b"{}"
                response.close()
            last = await third
            assert await last.read() == b"{}"
            last.close()
            assert provider.connections == 2

    run(scenario())


def test_every_byte_restarts_the_read_timeout_and_the_deadline_bounds_them_all() -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(8):
            await asyncio.sleep(0.1)
            writer.write(b"1\r\n.\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async def scenario() -> None:
        async with serving(drip) as provider:
            client = UpstreamClient(max_connections=2)
            # 0.8 s in all, never 0.3 s without a byte: it completes
            response = await _post(client, provider.url, read_timeout=0.3)
            assert await response.read() == b"........"
            response.close()
            loop = asyncio.get_running_loop()
            started = loop.time()
            response = await _post(client, provider.url, read_timeout=0.3, deadline=loop.time() + 0.45)
            with pytest.raises(ReadTimeout, match="deadline"):
                await response.read()
            response.close()
            assert loop.time() - started < 1.0

    run(scenario())


def test_a_silent_provider_is_a_read_timeout_before_and_after_the_headers() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async def headers_then_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await asyncio.sleep(10)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        for handler in (stall, headers_then_nothing):
            async with serving(handler) as provider:
                client = UpstreamClient(max_connections=2)
                started = loop.time()
                with pytest.raises(ReadTimeout, match=r"nothing from the provider for 0\.3 s"):
                    response = await _post(client, provider.url, read_timeout=0.3)
                    await response.read()
                assert 0.25 < loop.time() - started < 1.5

    run(scenario())


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (b"", RemoteProtocolError),  # closed without a word
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", RemoteProtocolError),
        (b"SMTP ready\r\n\r\n", RemoteProtocolError),
        (None, ReadError),  # reset
    ],
)
def test_broken_answers_are_transport_errors(script: bytes | None, error: type[Exception]) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if script is None:
            # linger 0: closing sends an RST, not a FIN
            sock = writer.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        writer.write(script)
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        async with serving(broken) as provider:
            client = UpstreamClient(max_connections=2)
            with pytest.raises(error):
                response = await _post(client, provider.url)
                await response.read()

    run(scenario())


def test_refused_and_off_loopback_connections_are_connect_errors() -> None:
    async def scenario() -> None:
        client = UpstreamClient(max_connections=2)
        async with serving(lambda r, w: asyncio.sleep(0)) as provider:
            url = provider.url
        with pytest.raises(ConnectError, match="cannot connect"):
            await _post(client, url)  # that server is gone: refused
        with pytest.raises(ConnectError, match="not on loopback"):
            await _post(client, "http://192.0.2.1:80/v1/chat/completions")

    run(scenario())


# -- the event-stream decoder -----------------------------------------------------------------------

STREAM = (
    b": keep-alive comment\r\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"id: 7\ndata: line one\ndata: line two\n\n"
    b"retry: 3000\rdata: caf\xc3\xa9 \xe2\x82\xac\r\r"
    b"data:no space\nretry: soon\n\n"
    b"\n\n"
    b"data: [DONE]\n\n"
    b"data: never dispatched"
)


def _reference(pieces: list[bytes]) -> list[tuple[str, str, str, int | None]]:
    """What httpx_sse (the gateway's decoder before) makes of the same pieces."""
    lines, events = SSELineDecoder(), ReferenceDecoder()
    text = b"".join(pieces).decode("utf-8")
    out = []
    for line in [*lines.decode(text), *lines.flush()]:
        event = events.decode(line)
        if event is not None:
            out.append((event.event, event.data, event.id, event.retry))
    return out


def _ours(pieces: list[bytes]) -> list[tuple[str, str, str, int | None]]:
    decoder = SSEDecoder()
    return [(e.event, e.data, e.id, e.retry) for piece in pieces for e in decoder.feed(piece)]


def test_events_are_decoded_as_httpx_sse_decodes_them_however_the_body_is_cut() -> None:
    whole = _reference([STREAM])
    assert [data for _, data, _, _ in whole] == [
        '{"a": 1}',
        "line one\nline two",
        "café €",
        "no space",
        "",  # two blank lines: once an id was seen, even an empty event is dispatched
        "",
        "[DONE]",
    ]
    assert whole[0][0] == "message_start" and whole[2][3] == 3000 and whole[3][2] == "7"
    rng = random.Random(11)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 12)))
        pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert _ours(pieces) == whole, cuts
    # byte by byte: a CRLF, a lone CR and a UTF-8 character each split across pieces
    assert _ours([STREAM[i : i + 1] for i in range(len(STREAM))]) == whole
