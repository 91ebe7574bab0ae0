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

Two more modes, steadier on a shared machine and quicker:

- ``--in-process``: the app time alone. Each ASGI app (the mock, the bare Starlette route) is
  called directly in this process, without a server or a socket, for the same requests; the
  figure is microseconds per request, the minimum over ``--repeats`` passes (the collector set
  as ``gateproof mock`` sets it).
- ``--dump-replies FILE``: every message the mock writes, and the journal record it keeps, for
  a matrix of requests (3 dialects x 9 directives x stream or not x tools or not x no fault or
  one of 9, each sent twice, plus attempts, refusals, correlation headers and seeded chaos),
  with the wall clock frozen. Run it against the code before a change (``PYTHONPATH`` at a
  ``git archive`` tree, see ``benchmarks/README.md``) and after; ``cmp`` the two files: a
  speed-up must not change one byte.
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
from typing import Any, cast

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


def _baseline_app(body: bytes) -> Any:
    """The bare Starlette route: read the body, answer ``body`` as JSON."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route(PATH, chat, methods=["POST"])])


def _serve_baseline(port: int, body_file: Path) -> None:
    serve_fast(_baseline_app(body_file.read_bytes()), port)


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


# --------------------------------------------------------------------------------------
# in process: the app alone, called through ASGI


def _scope(path: str, headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": (LOOPBACK, 8000),
        "client": (LOOPBACK, 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
    }


def _asgi_requests(bodies: list[bytes]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(scope, request message) for each body, as uvicorn hands them to an app."""
    return [
        (
            _scope(
                PATH,
                [
                    (b"host", f"{LOOPBACK}:8000".encode()),
                    (b"content-type", b"application/json"),
                    (b"authorization", f"Bearer {BENCH_KEY}".encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            ),
            {"type": "http.request", "body": body, "more_body": False},
        )
        for body in bodies
    ]


async def _app_time(app: Any, requests: list[tuple[dict[str, Any], dict[str, Any]]]) -> float:
    """Microseconds per request of ``app`` answering ``requests`` one after the other."""
    written: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            written.append(message["body"])

    start = time.perf_counter()
    for scope, message in requests:

        async def receive(message: dict[str, Any] = message) -> dict[str, Any]:
            return message

        await app(scope, receive, send)
    elapsed = time.perf_counter() - start
    assert len(written) == len(requests)
    return elapsed / len(requests) * 1e6


def _in_process(args: argparse.Namespace) -> int:
    import gc

    import uvloop

    from gateproof.mock_providers import KeyPolicy, MockConfig, create_app

    count = args.requests
    same = _body(PROMPT)
    fresh = [_body(f"{PROMPT} [[gateproof cid=bench-{index:012d}]]") for index in range(count * args.repeats)]

    async def answer() -> bytes:
        app = create_app(MockConfig(auth=KeyPolicy(keys=frozenset({BENCH_KEY}))))
        written: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            written.append(message.get("body", b""))

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": same, "more_body": False}

        scope, _ = _asgi_requests([same])[0]
        await app(scope, receive, send)
        return b"".join(written)

    apps = {
        "baseline": _baseline_app(uvloop.run(answer())),
        "mock": create_app(MockConfig(auth=KeyPolicy(keys=frozenset({BENCH_KEY})))),
    }
    cases = [
        ("baseline", "the same request", lambda _: [same] * count),
        ("mock", "the same request", lambda _: [same] * count),
        ("mock", "a fresh cid each", lambda round_: fresh[round_ * count : (round_ + 1) * count]),
    ]
    # the collector as `gateproof mock` sets it (cli.py), for every app alike
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    times: dict[int, list[float]] = {index: [] for index in range(len(cases))}
    for round_ in range(args.repeats):
        for index, (name, _, bodies) in enumerate(cases):
            requests = _asgi_requests(bodies(round_))
            times[index].append(uvloop.run(_app_time(apps[name], requests)))
    print(
        f"app time in process, us per request ({count} requests a pass, min and median of {args.repeats} passes)"
    )
    best: dict[int, float] = {}
    for index, (name, what, _) in enumerate(cases):
        best[index] = min(times[index])
        print(f"  {name:<9} {what:<17} min {best[index]:7.1f}   median {median(times[index]):7.1f}")
    print(f"  bare route / mock: {best[0] / best[1]:.2f} (same request), {best[0] / best[2]:.2f} (fresh cid)")
    return 0


# --------------------------------------------------------------------------------------
# every byte the mock writes for a matrix of requests, to compare code before and after a change

_DIRECTIVES = (
    "",
    "scenario=refusal",
    "scenario=tool_call calls=2",
    "tokens=0",
    "scenario=length tokens=5",
    "cached=3 tokens=4",
    "stamp=1 tokens=3",
    "seed=7 tokens=6",
    "scenario=error status=429",
)


def _dialect_request(
    dialect: str, text: str, stream: bool, tools: bool, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[dict[str, Any], bytes]:
    from gateproof.mock_providers import sample_request

    sample = sample_request(dialect, text, key=BENCH_KEY, stream=stream, tools=tools)
    raw = sample.body
    headers = [
        (b"host", b"127.0.0.1:8000"),
        *sample.headers,
        *extra,
        (b"content-length", str(len(raw)).encode()),
    ]
    return _scope(sample.path, headers, sample.query), raw


def _text(message: dict[str, Any]) -> dict[str, Any]:
    """An ASGI message as JSON text (bytes as latin-1)."""
    shown: dict[str, Any] = {}
    for key, value in message.items():
        if key == "headers":
            value = [[name.decode("latin-1"), text.decode("latin-1")] for name, text in value]
        elif isinstance(value, bytes):
            value = value.decode("latin-1")
        shown[key] = value
    return shown


async def _replies(out: Path) -> int:
    import itertools
    import logging

    from gateproof.mock_providers import FAULTS, ChaosPolicy, KeyPolicy, MockConfig, create_app

    logging.disable(logging.CRITICAL)  # a reset the in-process server cannot do is logged, and expected
    keys = KeyPolicy(keys=frozenset({BENCH_KEY}))
    results: list[dict[str, Any]] = []

    async def one(app: Any, scope: dict[str, Any], raw: bytes, case: list[Any]) -> None:
        sent: list[dict[str, Any]] = []
        pending = [{"type": "http.request", "body": raw, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop()
            await asyncio.sleep(3600)  # the client stays
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(_text(message))

        raised = None
        try:
            await app({**scope, "headers": list(scope["headers"])}, receive, send)
        except Exception as exc:  # a dropped connection is raised on purpose
            raised = type(exc).__name__
        record = app.state.journal.entries()[-1].as_json()
        results.append({"case": case, "sent": sent, "raised": raised, "journal": record})

    app = create_app(MockConfig(auth=keys))
    dialects = ("openai", "anthropic", "gemini")
    faults = (None, *sorted(FAULTS))
    for dialect, directive, stream, tools, fault in itertools.product(
        dialects, _DIRECTIVES, (False, True), (False, True), faults
    ):
        keys_text = (directive + (f" fault={fault} fault_ms=2" if fault else "")).strip()
        text = f"Hello there [[gateproof {keys_text}]]" if keys_text else "Hello there"
        scope, raw = _dialect_request(dialect, text, stream, tools)
        for attempt in range(2):
            await one(app, scope, raw, [dialect, directive, stream, tools, fault, attempt])
    extras = (
        "cid=ff1 fail_first=1 fault=status_503",
        "cid=ff2 fail_first=2 fault=truncate",
        "cid=rd1 route_down=1 scenario=error",
        "tokens=3 bogus=1",
        "cid=plain tokens=2",
    )
    for dialect, directive in itertools.product(dialects, extras):
        scope, raw = _dialect_request(dialect, f"Hi [[gateproof {directive}]]", False, False)
        for attempt in range(3):
            await one(app, scope, raw, [dialect, directive, attempt])
    for dialect in dialects:
        header = ((b"x-gateproof-correlation-id", b"hdr-" + dialect.encode()),)
        scope, raw = _dialect_request(dialect, "Hi", True, True, header)
        wrong = {
            **scope,
            "headers": [
                (name, value.replace(BENCH_KEY.encode(), b"not-the-key")) for name, value in scope["headers"]
            ],
        }
        for attempt in range(3):
            await one(app, scope, raw, [dialect, "header cid", attempt])
            await one(app, wrong, raw, [dialect, "header cid, wrong key", attempt])
    chaos = ChaosPolicy(0.5, ("status_503", "truncate", "no_done", "slow_headers"), 3)
    chaotic = create_app(MockConfig(auth=keys, chaos=chaos))
    for dialect, stream in itertools.product(dialects, (False, True)):
        scope, raw = _dialect_request(dialect, "Hi", stream, False)
        for attempt in range(12):
            await one(chaotic, scope, raw, [dialect, "chaos", stream, attempt])
    out.write_text(json.dumps(results, indent=0))
    print(f"{len(results)} replies written to {out}")
    return 0


def _dump_replies(out: Path) -> int:
    import itertools
    import uuid

    import uvloop

    frozen = 1_796_180_251.5
    ids = itertools.count()
    time.time = lambda: frozen  # every wall-clock figure the same, before and after
    time.time_ns = lambda: int(frozen * 1e9)
    uuid.uuid4 = lambda: uuid.UUID(int=next(ids))  # Anthropic's request ids count up
    return uvloop.run(_replies(out))


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
    parser.add_argument("--in-process", action="store_true", help="time the apps alone, called in process")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per in-process pass")
    parser.add_argument("--dump-replies", type=Path, metavar="FILE", help="write the reply matrix to FILE")
    args = parser.parse_args(argv)
    if args.dump_replies is not None:
        return _dump_replies(args.dump_replies)
    if args.in_process:
        return _in_process(args)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
