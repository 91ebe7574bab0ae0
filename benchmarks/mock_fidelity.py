"""How punctual are the mock's streams under many at once, next to a bare asyncio streamer?

Run with ``make bench`` (or ``.venv/bin/python benchmarks/mock_fidelity.py``).

The method is the mock anchors' test C (``shared/reference/mock-anchors-bench.md``): waves of
N concurrent streams (``--streams``, default 100 and 1,000), each with a configured TTFT of
200 ms, 20 ms between chunks and 50 content chunks, one wave at a time. Three servers, each
its own process on loopback:

- **mock**: ``gateproof mock``, the timing asked for by a directive in the request;
- **asyncio**: a bare streamer on raw asyncio protocols (uvloop): it reads a request and
  writes SSE chunks of the same shape and size on absolute deadlines, nothing else. This is the
  floor of the machine and of this client, and the baseline of the ratios;
- **uvicorn**: a bare ASGI streamer on uvicorn (the mock's server stack, no app around it),
  which tells the server's share of the mock's lateness from the mock's own.

The client is this process on raw asyncio protocols: it times each stream from before its
connect (the anchors include the connect) to the first chunk that carries content (TTFT), and
the gaps between consecutive content chunks; it only counts content markers in what it reads,
so it stays cheap at 50,000 chunks a second (its own event-loop lag p99 is printed: a client
that lags makes every server look late). Figures are |observed - configured| in ms at p50 and
p99, per wave, medians over ``--repeats`` waves per server (servers alternate within a round).
The target is the mock within 1.2x of the asyncio streamer. With two or more CPUs the servers
run on CPU 0 and the client on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from _mock_bench import (
    BENCH_KEY,
    LOOPBACK,
    Server,
    baseline_server,
    median,
    mock_server,
    percentile,
    pin,
    pinning,
    serve_fast,
)

TTFT_MS, ITL_MS, CHUNKS = 200, 20, 50
PATH = "/v1/chat/completions"
#: what marks a chunk that carries content, in the mock's chunks and the baselines' alike
CONTENT = b'"delta":{"content":"'
DONE = b"data: [DONE]"


def _request(port: int) -> bytes:
    text = f"Hello [[gateproof ttft_ms={TTFT_MS} itl_ms={ITL_MS} tokens={CHUNKS}]]"
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "stream": True}
    ).encode()
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {BENCH_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# --------------------------------------------------------------------------------------
# the baselines' chunks: the mock's shape and size (an OpenAI chat.completion.chunk)

_HEAD = (
    'data: {"id":"chatcmpl-0123456789abcdef01234567","object":"chat.completion.chunk","created":0,'
    '"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_6a7e1d2c90",'
    '"choices":[{"index":0,"delta":'
)
_TAIL = ',"logprobs":null,"finish_reason":null}]}\n\n'
ROLE = (_HEAD + '{"role":"assistant","content":"","refusal":null}' + _TAIL).encode()
PIECE = (_HEAD + '{"content":" word"}' + _TAIL).encode()
FINAL = (_HEAD + '{},"logprobs":null,"finish_reason":"stop"}]}\n\n').encode() + DONE + b"\n\n"


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _serve_asyncio(port: int) -> None:
    """The bare streamer: raw protocols, one stream per connection, absolute deadlines."""
    import uvloop

    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
    )

    async def stream(transport: asyncio.Transport, t0: float) -> None:
        loop = asyncio.get_running_loop()
        transport.write(head)
        for index in range(CHUNKS):
            delay = t0 + (TTFT_MS + index * ITL_MS) / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if transport.is_closing():
                return
            transport.write(_chunked(ROLE + PIECE if index == 0 else PIECE))
        transport.write(_chunked(FINAL) + b"0\r\n\r\n")
        transport.close()

    class Streamer(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer = b""
            self.started = False
            self.task: asyncio.Task[None] | None = None  # held, so the stream is not collected

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if self.started or end < 0:
                return
            lower = self.buffer[:end].lower()
            start = lower.find(b"content-length:")
            length = int(lower[start + 15 : lower.find(b"\r\n", start)]) if start >= 0 else 0
            if len(self.buffer) >= end + 4 + length:
                self.started = True
                loop = asyncio.get_running_loop()
                self.task = loop.create_task(stream(self.transport, loop.time()))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Streamer, LOOPBACK, port, backlog=2048)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


def _serve_uvicorn(port: int) -> None:
    """The bare ASGI streamer on uvicorn, with the mock's server settings."""
    from starlette.types import Receive, Scope, Send

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index in range(CHUNKS):
            delay = t0 + (TTFT_MS + index * ITL_MS) / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = ROLE + PIECE if index == 0 else PIECE
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": FINAL, "more_body": False})

    serve_fast(app, port, backlog=2048)


# --------------------------------------------------------------------------------------
# the client


class _Stream(asyncio.Protocol):
    """One stream: writes the request, notes when each content chunk arrives, ends at ``[DONE]``."""

    def __init__(self, request: bytes, started: float) -> None:
        self.request = request
        self.started = started
        self.arrivals: list[float] = []
        self.tail = b""
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        seen = self.tail + data  # a marker cut across two reads is still seen once
        count = seen.count(CONTENT)
        if count:
            self.arrivals.extend([now] * count)
            seen = seen[seen.rfind(CONTENT) + len(CONTENT) :]
        self.tail = seen[-(len(DONE) + len(CONTENT)) :]
        if DONE in seen and not self.done.done():
            self.done.set_result(None)
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class Wave:
    """One wave's figures (ms)."""

    complete: int
    ttft: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    lag_p99_ms: float = 0.0


async def _wave(port: int, streams: int) -> Wave:
    loop = asyncio.get_running_loop()
    request = _request(port)
    lags: list[float] = []
    ticking = True

    async def tick() -> None:  # the client's own event-loop lag
        while ticking:
            due = loop.time() + 0.005
            await asyncio.sleep(0.005)
            lags.append((loop.time() - due) * 1000)

    ticker = loop.create_task(tick())

    async def one() -> _Stream:
        started = time.perf_counter()
        _, protocol = await loop.create_connection(lambda: _Stream(request, started), LOOPBACK, port)
        await protocol.done
        return protocol

    start = time.perf_counter()
    protocols = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(streams))), timeout=120)
    wave = Wave(complete=0, wall_s=time.perf_counter() - start)
    ticking = False
    await ticker
    wave.lag_p99_ms = percentile(lags, 99)
    for protocol in protocols:
        times = protocol.arrivals
        wave.complete += len(times) == CHUNKS
        if times:
            wave.ttft.append(abs((times[0] - protocol.started) * 1000 - TTFT_MS))
            wave.gaps.extend(abs((b - a) * 1000 - ITL_MS) for a, b in itertools.pairwise(times))
    return wave


# --------------------------------------------------------------------------------------
# the driver


def _run(args: argparse.Namespace) -> int:
    import uvloop

    log_dir = Path(tempfile.mkdtemp(prefix="gateproof-bench-"))
    with (
        mock_server(log_dir) as mock,
        baseline_server(__file__, "asyncio", [], log_dir) as bare,
        baseline_server(__file__, "uvicorn", [], log_dir) as stack,
    ):
        servers: list[Server] = [bare, stack, mock]
        pinned = pinning()
        if pinned:
            for server in servers:
                pin(server.pid, 0)
            pin(0, 1)
        print(f"gateproof mock timing fidelity (pinned: {'servers CPU 0, client CPU 1' if pinned else 'no'})")
        print(
            f"TTFT {TTFT_MS} ms, {ITL_MS} ms between chunks, {CHUNKS} content chunks; |observed - configured|"
            f" in ms, p50 / p99, medians of {args.repeats} waves; logs in {log_dir}"
        )
        ideal = (TTFT_MS + (CHUNKS - 1) * ITL_MS) / 1000
        for streams in args.streams:
            waves: dict[str, list[Wave]] = {server.name: [] for server in servers}
            for _ in range(args.repeats):
                for server in servers:
                    waves[server.name].append(uvloop.run(_wave(server.port, streams)))
                    time.sleep(0.5)  # let the server close the wave's connections
            print(f"\nN = {streams} concurrent streams (ideal wave {ideal:.2f} s)")
            print(
                f"  {'server':<8} {'TTFT p50':>9} {'TTFT p99':>9} {'gap p50':>8} {'gap p99':>8}  complete  wave s  client lag p99"
            )
            figures: dict[str, tuple[float, float, float, float]] = {}
            for name, rounds in waves.items():
                figures[name] = (
                    median([percentile(w.ttft, 50) for w in rounds]),
                    median([percentile(w.ttft, 99) for w in rounds]),
                    median([percentile(w.gaps, 50) for w in rounds]),
                    median([percentile(w.gaps, 99) for w in rounds]),
                )
                complete = min(w.complete for w in rounds)
                print(
                    f"  {name:<8} {figures[name][0]:9.1f} {figures[name][1]:9.1f} {figures[name][2]:8.2f}"
                    f" {figures[name][3]:8.2f}  {complete:>4}/{streams:<4} {median([w.wall_s for w in rounds]):6.2f}"
                    f"  {median([w.lag_p99_ms for w in rounds]):8.1f} ms"
                )
            ratios = [
                m / b if b else float("nan") for m, b in zip(figures["mock"], figures["asyncio"], strict=True)
            ]
            print(
                "  ratio mock/asyncio: TTFT p50 {:.2f}, p99 {:.2f}; gap p50 {:.2f}, p99 {:.2f} (target <= 1.2)".format(
                    *ratios
                )
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-baseline"]:
        {"asyncio": _serve_asyncio, "uvicorn": _serve_uvicorn}[argv[1]](int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--streams", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000], help="e.g. 100,1000"
    )
    parser.add_argument("--repeats", type=int, default=3)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
