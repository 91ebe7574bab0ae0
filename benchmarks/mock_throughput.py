"""How fast and how punctual is the mock provider, next to a bare Starlette endpoint?

Run with ``make bench`` (or ``.venv/bin/python benchmarks/mock_throughput.py``).

Two servers run as separate uvicorn processes on loopback with the same settings
(uvloop, httptools, one worker, no access log, log level warning):

- **mock**: ``gateproof mock``, started through ``gateproof.cli.launch``;
- **baseline**: a bare Starlette route that returns, without parsing anything, the
  very bytes the mock answered to the benchmark request (so the response size is
  the same), and streams fixed chunks on absolute deadlines when asked to stream.

Both are driven by the same client, this process, written on raw asyncio
protocols so that the client is not what is measured:

1. **throughput**: ``--connections`` keep-alive connections send non-streamed chat
   requests back to back for ``--duration`` seconds after a ``--warmup``; the
   figures are requests per second, p50/p99 latency, and the mock/baseline ratio;
2. **timing fidelity**: waves of ``--streams`` concurrent streams (TTFT 200 ms,
   gap 20 ms, 50 content chunks), all sent at once on connections opened
   beforehand; TTFT is measured from the request's write to the first chunk that
   carries content, gaps between consecutive content chunks; the figures are the
   errors |observed - configured| at p50/p99.

With two or more CPUs the servers are pinned to CPU 0 and the client to CPU 1.
Everything is bounded in time and stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx

from gateproof.cli.launch import HEALTH_PATH, LOOPBACK, LocalServer, free_port, start_server

TTFT_MS, ITL_MS, TOKENS = 200, 20, 50
PROMPT = "What is the capital of France?"


# --------------------------------------------------------------------------------------
# the baseline server (runs in its own process: ``mock_throughput.py --serve-baseline``)


def _serve_baseline(port: int, body_file: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    body = body_file.read_bytes()
    head = '{"id":"chatcmpl-baseline","object":"chat.completion.chunk","created":0,"model":"gpt-4o-mini","choices":[{"index":0,"delta":'
    tail = ',"logprobs":null,"finish_reason":null}]}'
    role = f'data: {head}{{"role":"assistant","content":""}}{tail}\n\n'.encode()
    piece = f'data: {head}{{"content":" word"}}{tail}\n\n'.encode()
    final = f'data: {head}{{}},"logprobs":null,"finish_reason":"stop"}}]}}\n\ndata: [DONE]\n\n'.encode()

    async def stream() -> object:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for index in range(TOKENS):
            delay = t0 + TTFT_MS / 1000 + index * ITL_MS / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield (role + piece) if index == 0 else piece
        yield final

    async def chat(request: Request) -> Response:
        raw = await request.body()
        if b'"stream": true' in raw or b'"stream":true' in raw:
            return StreamingResponse(stream(), media_type="text/event-stream")  # type: ignore[arg-type]
        return Response(body, media_type="application/json")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route(HEALTH_PATH, health)]
    )
    uvicorn.run(
        app,
        host=LOOPBACK,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


@contextlib.contextmanager
def _baseline(body: bytes, log_dir: Path) -> Iterator[LocalServer]:
    body_file = log_dir / "baseline-body.json"
    body_file.write_bytes(body)
    port = free_port()
    log_path = log_dir / "baseline.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-baseline", str(port), str(body_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = LocalServer("baseline", f"http://{LOOPBACK}:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(server.url + HEALTH_PATH).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"baseline did not start:\n{server.log_tail()}")
                time.sleep(0.05)
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------
# the client: raw asyncio protocols (a full HTTP client would be the bottleneck)


def _request(port: int, body: bytes) -> bytes:
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer bench-key\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class _KeepAlive(asyncio.Protocol):
    """One keep-alive connection: write a request, resolve when a Content-Length response is complete."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:")
        length = int(head[start + 15 : head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None])
        if len(self.buffer) >= end + 4 + length:
            status = int(head[9:12])
            del self.buffer[: end + 4 + length]
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(status)

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


@dataclass
class Throughput:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def _throughput(port: int, connections: int, warmup: float, duration: float) -> Throughput:
    loop = asyncio.get_running_loop()
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 50}
    )
    request = _request(port, body.encode())
    result = Throughput()
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def worker() -> None:
        _, proto = await loop.create_connection(_KeepAlive, LOOPBACK, port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= stop_at:
                    return
                status = await asyncio.wait_for(proto.exchange(request), timeout=10)
                done = time.perf_counter()
                if sent >= measure_from:
                    result.requests += 1
                    result.latencies.append(done - sent)
                    if status != 200:
                        result.errors += 1
        finally:
            assert proto.transport is not None
            proto.transport.close()

    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(connections))), timeout=warmup + duration + 30
    )
    result.seconds = duration
    return result


class _Stream(asyncio.Protocol):
    """One streamed response: decode chunked transfer coding and SSE, time each content event."""

    def __init__(self) -> None:
        self.raw = bytearray()
        self.body = bytearray()
        self.headers_done = False
        self.finished = False
        self.content_times: list[float] = []
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.raw += data
        if not self.headers_done:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.raw[: end + 4]
            self.headers_done = True
        while True:  # chunked transfer coding
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                break
            size = int(bytes(self.raw[:line_end]).split(b";")[0], 16)
            if len(self.raw) < line_end + 2 + size + 2:
                break
            self.body += self.raw[line_end + 2 : line_end + 2 + size]
            del self.raw[: line_end + 2 + size + 2]
            if size == 0:
                self.finished = True
                break
        while True:  # server-sent events
            end = self.body.find(b"\n\n")
            if end < 0:
                break
            event = bytes(self.body[:end])
            del self.body[: end + 2]
            if b'"content":"' in event and b'"content":""' not in event:
                self.content_times.append(now)
        if self.finished and not self.done.done():
            self.done.set_result(None)


@dataclass
class Fidelity:
    streams: int
    complete: int
    ttft_errors_ms: list[float]
    gap_errors_ms: list[float]
    wall_s: float


async def _fidelity(port: int, streams: int, directive: bool) -> Fidelity:
    loop = asyncio.get_running_loop()
    text = PROMPT + (f" [[gateproof ttft_ms={TTFT_MS} itl_ms={ITL_MS} tokens={TOKENS}]]" if directive else "")
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "stream": True}
    )
    request = _request(port, body.encode())
    protocols: list[_Stream] = []
    for _ in range(streams):
        _, proto = await loop.create_connection(_Stream, LOOPBACK, port)
        protocols.append(proto)
    start = time.perf_counter()
    for proto in protocols:
        proto.sent_at = time.perf_counter()
        assert proto.transport is not None
        proto.transport.write(request)
    await asyncio.wait_for(asyncio.gather(*(p.done for p in protocols)), timeout=60)
    wall = time.perf_counter() - start
    ttft_errors: list[float] = []
    gap_errors: list[float] = []
    complete = 0
    for proto in protocols:
        assert proto.transport is not None
        proto.transport.close()
        times = proto.content_times
        if len(times) == TOKENS:
            complete += 1
        if times:
            ttft_errors.append(abs((times[0] - proto.sent_at) * 1000 - TTFT_MS))
            gap_errors.extend(abs((b - a) * 1000 - ITL_MS) for a, b in itertools.pairwise(times))
    return Fidelity(streams, complete, ttft_errors, gap_errors, wall)


# --------------------------------------------------------------------------------------
# the driver


def _pin(pid: int, cpu: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(pid, {cpu})


def _capture_body(url: str) -> bytes:
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        response = client.post(
            url + "/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": 50,
            },
            headers={"Authorization": "Bearer bench-key"},
        )
        response.raise_for_status()
        return response.content


def _run(args: argparse.Namespace) -> int:
    import uvloop

    pinned = (os.cpu_count() or 1) >= 2
    log_dir = Path(tempfile.mkdtemp(prefix="gateproof-bench-"))
    # measured as a provider runs: the key is checked on every request
    mock = start_server(
        "mock",
        ["mock", "--log-level", "warning", "--api-key-env", "GATEPROOF_BENCH_KEY"],
        port=free_port(),
        env={"GATEPROOF_BENCH_KEY": "bench-key"},
        log_dir=log_dir,
    )
    try:
        body = _capture_body(mock.url)
        with _baseline(body, log_dir) as baseline:
            if pinned:
                _pin(mock.process.pid, 0)
                _pin(baseline.process.pid, 0)
                _pin(0, 1)
            servers = {"mock": mock, "baseline": baseline}
            print(f"gateproof mock benchmark (pinned: {'servers CPU 0, client CPU 1' if pinned else 'no'})")
            print(f"response body: {len(body)} bytes; logs in {log_dir}")
            print(
                f"\nthroughput: non-streamed, {args.connections} connections, "
                f"{args.warmup:g} s warm-up + {args.duration:g} s"
            )
            rates: dict[str, Throughput] = {}
            for name, server in servers.items():
                port = int(server.url.rsplit(":", 1)[1])
                result = uvloop.run(_throughput(port, args.connections, args.warmup, args.duration))
                rates[name] = result
                print(
                    f"  {name:<9} {result.rate:9.0f} req/s   p50 {_percentile(result.latencies, 50) * 1000:6.2f} ms"
                    f"   p99 {_percentile(result.latencies, 99) * 1000:6.2f} ms   errors {result.errors}"
                )
            ratio = rates["mock"].rate / rates["baseline"].rate if rates["baseline"].rate else float("nan")
            print(f"  ratio mock/baseline: {ratio:.2f}")
            print(
                f"\ntiming fidelity: TTFT {TTFT_MS} ms, gap {ITL_MS} ms, {TOKENS} content chunks per stream"
            )
            print("  errors are |observed - configured| in ms, p50 / p99; TTFT from the request write")
            for streams in args.streams:
                for name, server in servers.items():
                    port = int(server.url.rsplit(":", 1)[1])
                    result_f = uvloop.run(_fidelity(port, streams, directive=name == "mock"))
                    print(
                        f"  N={streams:<4} {name:<9} TTFT err {_percentile(result_f.ttft_errors_ms, 50):6.1f} /"
                        f" {_percentile(result_f.ttft_errors_ms, 99):6.1f}   gap err"
                        f" {_percentile(result_f.gap_errors_ms, 50):5.1f} / {_percentile(result_f.gap_errors_ms, 99):5.1f}"
                        f"   complete {result_f.complete}/{streams}   wave {result_f.wall_s:.2f} s"
                        f" (ideal {(TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000:.2f})"
                    )
                    time.sleep(0.5)
    finally:
        mock.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-baseline"]:
        _serve_baseline(int(argv[1]), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--streams", type=lambda s: [int(x) for x in s.split(",")], default=[100, 500], help="e.g. 100,500"
    )
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
