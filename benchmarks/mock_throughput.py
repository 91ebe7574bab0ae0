"""How many non-streamed answers a second does the mock serve, next to a bare Starlette endpoint?

Run with ``make bench`` (or ``.venv/bin/python benchmarks/mock_throughput.py``).

Two servers run as separate uvicorn processes on loopback with the same settings (uvloop,
httptools, one worker, no access log, log level warning):

- **mock**: ``gateproof mock`` with one API key, which it checks on every request;
- **baseline**: a bare Starlette route that reads the body and returns, without parsing
  anything, the very bytes the mock answered to the benchmark request (same size, same
  content type), as the Starlette + uvicorn baseline of the mock anchors does.

Both are driven by the same client, this process, written on raw asyncio protocols: each of
``--connections`` keep-alive connections sends the next request from the callback that read
the previous answer, so the client spends a few microseconds per request and is not what is
measured (its CPU share is printed; a share near 100 % would say it was). The request is the
anchors' one (``gpt-4o-mini``, "What is the capital of France?", ``max_tokens`` 50); a second
table sends every request with a directive of its own (a fresh ``cid``, as a load run does), so
nothing the mock remembers from one request helps the next.

For each server: requests per second, p50/p99 latency and the server's CPU time per request
(from ``/proc``), after a warm-up; servers alternate within each of ``--repeats`` rounds and
the figures are medians over the rounds. The ratio is mock / baseline requests per second
(target: at least 0.7). With two or more CPUs the servers run on CPU 0 and the client on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx
from _mock_bench import (
    BENCH_KEY,
    LOOPBACK,
    Server,
    baseline_server,
    cpu_seconds,
    median,
    mock_server,
    percentile,
    pin,
    pinning,
    serve_fast,
)

PROMPT = "What is the capital of France?"
MODEL = "gpt-4o-mini"
PATH = "/v1/chat/completions"


def _body(text: str) -> bytes:
    return json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 50}
    ).encode()


def _request(port: int, body: bytes) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {BENCH_KEY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# --------------------------------------------------------------------------------------
# the baseline server (its own process: ``mock_throughput.py --serve-baseline starlette PORT FILE``)


def _serve_baseline(port: int, body_file: Path) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = body_file.read_bytes()

    async def chat(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route(PATH, chat, methods=["POST"])])
    serve_fast(app, port)


# --------------------------------------------------------------------------------------
# the client: one callback-driven protocol per keep-alive connection


@dataclass
class Run:
    """One server's figures in one round."""

    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else float("nan")


class _Connection(asyncio.Protocol):
    """Sends a request, reads its Content-Length answer, sends the next one from the same callback."""

    def __init__(self, requests: Callable[[], bytes], window: tuple[float, float], run: Run) -> None:
        self._next = requests
        self._measure_from, self._stop_at = window
        self._run = run
        self._buffer = b""
        self._sent = 0.0
        self._transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._sent = time.perf_counter()
        self._transport.write(self._next())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self._buffer = buffer
            return
        start = buffer.find(b"content-length:", 0, end)
        length = int(buffer[start + 15 : buffer.find(b"\r\n", start)])
        if len(buffer) < end + 4 + length:
            self._buffer = buffer
            return
        self._buffer = buffer[end + 4 + length :]
        now = time.perf_counter()
        run = self._run
        if self._sent >= self._measure_from:
            run.requests += 1
            run.latencies.append(now - self._sent)
            if buffer[9:12] != b"200":
                run.errors += 1
        assert self._transport is not None
        if now < self._stop_at:
            self._send()
        else:
            self._transport.close()


async def _drive(
    server: Server, requests: Callable[[], bytes], connections: int, warmup: float, duration: float
) -> Run:
    loop = asyncio.get_running_loop()
    run = Run(seconds=duration)
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration
    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        marks[name + "_server"] = cpu_seconds(server.pid)
        marks[name + "_client"] = time.process_time()

    loop.call_later(warmup, mark, "from")
    loop.call_later(warmup + duration, mark, "to")
    protocols = []
    for _ in range(connections):
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Connection(requests, (measure_from, stop_at), run), LOOPBACK, server.port
            ),
            timeout=10,
        )
        protocols.append(protocol)
    await asyncio.wait_for(asyncio.gather(*(p.closed for p in protocols)), timeout=warmup + duration + 30)
    run.server_cpu_s = marks["to_server"] - marks["from_server"]
    run.client_cpu_s = marks["to_client"] - marks["from_client"]
    return run


# --------------------------------------------------------------------------------------
# the driver


def _capture_body(port: int) -> bytes:
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        response = client.post(
            f"http://{LOOPBACK}:{port}{PATH}",
            content=_body(PROMPT),
            headers={"Authorization": f"Bearer {BENCH_KEY}", "Content-Type": "application/json"},
        )
        response.raise_for_status()
        return response.content


def _requests(port: int, distinct: bool) -> Callable[[], bytes]:
    """What each connection sends next: the same request, or a fresh directive each time."""
    if not distinct:
        request = _request(port, _body(PROMPT))
        return lambda: request
    # a fixed-width number keeps the length, so a request is one concatenation (the client stays cheap)
    head, _, tail = _request(port, _body(f"{PROMPT} [[gateproof cid=bench-{'0' * 12}]]")).partition(b"0" * 12)
    counter = iter(range(10**12))
    return lambda: head + b"%012d" % next(counter) + tail


def _table(title: str, runs: dict[str, list[Run]], duration: float) -> float:
    print(f"\n{title}")
    print(
        f"  {'server':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'server CPU us/req':>18} {'client CPU':>11}"
    )
    rates: dict[str, float] = {}
    for name, rounds in runs.items():
        rates[name] = median([r.rate for r in rounds])
        p50 = median([percentile(r.latencies, 50) * 1000 for r in rounds])
        p99 = median([percentile(r.latencies, 99) * 1000 for r in rounds])
        cpu = median([r.server_us_per_request for r in rounds])
        client = median([r.client_cpu_s / duration * 100 for r in rounds])
        errors = sum(r.errors for r in rounds)
        print(
            f"  {name:<9} {rates[name]:8.0f} {p50:8.2f} {p99:8.2f} {cpu:18.1f} {client:10.0f}%"
            + (f"   errors {errors}" if errors else "")
        )
    ratio = rates["mock"] / rates["baseline"] if rates["baseline"] else float("nan")
    per_round = [m.rate / b.rate for m, b in zip(runs["mock"], runs["baseline"], strict=True) if b.rate]
    print(f"  ratio mock/baseline req/s: {ratio:.2f}  (rounds: {', '.join(f'{r:.2f}' for r in per_round)})")
    return ratio


def _run(args: argparse.Namespace) -> int:
    import uvloop

    log_dir = Path(tempfile.mkdtemp(prefix="gateproof-bench-"))
    with mock_server(log_dir) as mock:
        body = _capture_body(mock.port)
        body_file = log_dir / "baseline-body.json"
        body_file.write_bytes(body)
        with baseline_server(__file__, "baseline", [str(body_file)], log_dir) as baseline:
            pinned = pinning()
            if pinned:
                pin(mock.pid, 0)
                pin(baseline.pid, 0)
                pin(0, 1)
            print(f"gateproof mock throughput (pinned: {'servers CPU 0, client CPU 1' if pinned else 'no'})")
            print(
                f"response body {len(body)} bytes; {args.connections} connections, {args.warmup:g} s warm-up"
                f" + {args.duration:g} s per run, {args.repeats} rounds, medians; logs in {log_dir}"
            )
            ratios = []
            for distinct, title in (
                (False, "the same request every time (the anchors' request)"),
                (True, "every request with a directive of its own (a fresh cid)"),
            ):
                runs: dict[str, list[Run]] = {"baseline": [], "mock": []}
                for _ in range(args.repeats):
                    for server in (baseline, mock):
                        runs[server.name].append(
                            uvloop.run(
                                _drive(
                                    server,
                                    _requests(server.port, distinct),
                                    args.connections,
                                    args.warmup,
                                    args.duration,
                                )
                            )
                        )
                ratios.append(_table(title, runs, args.duration))
    print(
        f"\nmock/baseline: {ratios[0]:.2f} (same request), {ratios[1]:.2f} (distinct requests); target >= 0.70"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-baseline"]:
        _serve_baseline(int(argv[2]), Path(argv[3]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
