"""What does the reference gateway add to a provider's latency, next to other gateways?

Run with ``make bench`` (or ``.venv/bin/python benchmarks/gateway_overhead.py``).

The same requests go to the mock provider directly and through each gateway, interleaved,
in one run, from one client written on raw asyncio protocols with httptools' C parser
(so the client is not what is measured). The targets, each its own uvicorn process on
loopback with uvloop and httptools:

- **direct**: ``gateproof mock`` itself, the baseline every figure subtracts;
- **reference**: ``gateproof gateway`` in front of that mock, as shipped (default limits and
  log level);
- **starlette+httpx**: a minimal pass-through (a Starlette route that sends the body to the
  mock with one pooled ``httpx.AsyncClient`` and relays the answer), the floor of a Python
  gateway built on that stack;
- **openai-forward 0.8.1**: the fastest Python gateway we know, started the way its recipe
  (``recipes/openai-forward/``) starts it, in a loopback-only network namespace. When the
  recipe's environment is installed (``recipes/openai-forward/run`` once) and this runs as
  root, the whole benchmark re-runs itself inside that recipe (``run --exec``), so openai-forward,
  the mock and the other targets share one namespace; otherwise that baseline is skipped and
  the reason printed.

With ``--before-tree DIR`` one more target runs the reference gateway importable from ``DIR``
(``DIR/gateproof/<part>/``, e.g. the last commit unpacked with ``git archive``), so a change is
measured against the code before it in the same run.

Three phases per repeat, each repeat measuring every target (medians of ``--repeats``):

1. **sequential**: rounds of one non-streamed request per target, in a shuffled order,
   each awaited before the next;
2. **streams**: the same with streamed requests (``--stream-tokens`` chunks, ``--itl-ms``
   apart): TTFT is the write of the request to the first read holding a content delta;
   a read that holds more than one content delta counts as *coalesced* (the mock sends them
   ``--itl-ms`` apart, so a pass-through that relays as it reads never coalesces);
3. **open loop**: blocks of one second rotating over the gateways; in a gateway's block
   ``--rate`` req/s go through it and ``--rate`` req/s go to the mock directly, offset by half a
   period, on a seeded schedule that never waits for answers (a free keep-alive connection is
   taken, or a new one opened). Each gateway's figures subtract the direct requests of its own
   blocks. ``in flight`` is the most requests a target held at once: a gateway that keeps up
   holds one or two; one that queues holds more and more.

*Added* latency is the quantile through a gateway minus the same quantile direct. ``CPU``
is the target process's CPU time over the open-loop phase per request it served (from
/proc; the direct row is the mock's time per request, both kinds together).

Everything stays on 127.0.0.1 and every wait is bounded. The machine may be shared: every
comparison is within one run, and the spread over repeats is printed with the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httptools

from gateproof.cli.launch import HEALTH_PATH, LOOPBACK, LocalServer, free_port, start_server

REPO = Path(__file__).resolve().parent.parent
RECIPE_RUN = REPO / "recipes" / "openai-forward" / "run"
RECIPE_STAMP = REPO / "build" / "recipes" / "openai-forward" / "venv" / ".recipe-installed"
#: set when this script runs inside the openai-forward recipe's namespace (``run --exec``)
INSIDE_RECIPE = "--inside-recipe"
UPSTREAM_KEY_ENV = "GATEPROOF_UPSTREAM_OPENAI_KEY"
CONTENT = b'"delta":{"content":"'
#: the longest any one exchange may take before the run is declared broken
EXCHANGE_TIMEOUT_S = 10.0

DIRECT, REFERENCE, PASSTHROUGH, FORWARD = "direct", "reference", "starlette+httpx", "openai-forward 0.8.1"
BEFORE = "reference (before)"


# --------------------------------------------------------------------------------------
# the minimal pass-through (runs in its own process: ``gateway_overhead.py --serve-passthrough``)


def _serve_passthrough(port: int, upstream: str) -> None:
    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    key = os.environ[UPSTREAM_KEY_ENV]
    client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0), trust_env=False)

    async def chat(request: Request) -> Response:
        sent = client.build_request(
            "POST",
            upstream + "/v1/chat/completions",
            content=await request.body(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        try:
            answer = await client.send(sent, stream=True)
        except httpx.HTTPError as exc:
            return Response(f"upstream failed: {type(exc).__name__}", status_code=502)
        media = answer.headers.get("content-type")
        if media is not None and media.startswith("text/event-stream"):
            return StreamingResponse(
                answer.aiter_raw(),
                status_code=answer.status_code,
                media_type=media,
                background=BackgroundTask(answer.aclose),
            )
        try:
            content = await answer.aread()
        finally:
            await answer.aclose()
        return Response(content, status_code=answer.status_code, media_type=media)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "instance": os.environ.get("GATEPROOF_INSTANCE_ID", "")})

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
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


# --------------------------------------------------------------------------------------
# the client: raw asyncio protocols, httptools' response parser


@dataclass
class Outcome:
    """One exchange as the client saw it (times from ``time.perf_counter``)."""

    status: int = 0
    sent: float = 0.0
    first_content: float = 0.0
    done: float = 0.0
    reads_with_content: int = 0
    coalesced_reads: int = 0
    error: str = ""

    @property
    def latency_ms(self) -> float:
        return (self.done - self.sent) * 1000

    @property
    def ttft_ms(self) -> float:
        return (self.first_content - self.sent) * 1000


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time, timed at each read."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.outcome = Outcome()
        self.waiter: asyncio.Future[Outcome] | None = None
        self.keep_alive = True
        self._read_contents = 0
        self._now = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.keep_alive = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._now = time.perf_counter()
        self._read_contents = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(exc)
            return
        if self._read_contents:
            self.outcome.reads_with_content += 1
            if self._read_contents > 1:
                self.outcome.coalesced_reads += 1

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.outcome.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        found = body.count(CONTENT)
        if found:
            if not self.outcome.first_content:
                self.outcome.first_content = self._now
            self._read_contents += found

    def on_message_complete(self) -> None:
        self.outcome.done = self._now
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.outcome)

    async def exchange(self, request: bytes) -> Outcome:
        assert self.transport is not None
        self.outcome = Outcome()
        self.waiter = asyncio.get_running_loop().create_future()
        self.outcome.sent = time.perf_counter()
        self.transport.write(request)
        return await asyncio.wait_for(self.waiter, EXCHANGE_TIMEOUT_S)


@dataclass
class Target:
    """Where requests go, the bytes of each kind, and a pool of idle keep-alive connections."""

    name: str
    port: int
    requests: dict[str, bytes]
    pid: int | None = None
    idle: deque[_Connection] = field(default_factory=deque)
    in_flight: int = 0
    most_in_flight: int = 0
    opened: int = 0

    async def _connection(self) -> _Connection:
        while self.idle:
            connection = self.idle.pop()
            if connection.keep_alive:
                return connection
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(_Connection, LOOPBACK, self.port), EXCHANGE_TIMEOUT_S
        )
        self.opened += 1
        return connection

    async def send(self, kind: str) -> Outcome:
        """One exchange; a failed one (reset, timeout, unparsable) comes back with status 0."""
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        connection: _Connection | None = None
        try:
            connection = await self._connection()
            outcome = await connection.exchange(self.requests[kind])
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            if connection is not None and connection.transport is not None:
                connection.transport.close()
            return Outcome(status=0, error=type(exc).__name__)
        finally:
            self.in_flight -= 1
        if connection.keep_alive:
            self.idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()
        return outcome

    def close(self) -> None:
        while self.idle:
            connection = self.idle.pop()
            if connection.transport is not None:
                connection.transport.close()


def _http_request(port: int, path: str, key: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def _bodies(model: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The two requests every target gets: the same conversation, the model id each one routes."""
    chat = {
        "model": model,
        "messages": [{"role": "user", "content": f"Say something. [[gateproof tokens={args.tokens}]]"}],
    }
    stream = {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": f"Stream it. [[gateproof tokens={args.stream_tokens} itl_ms={args.itl_ms}]]",
            }
        ],
        "stream": True,
        # what the reference gateway always asks upstream; the same for everyone
        "stream_options": {"include_usage": True},
    }
    return {"chat": chat, "stream": stream}


def _target(name: str, url: str, path: str, key: str, model: str, args: argparse.Namespace) -> Target:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    requests = {kind: _http_request(port, path, key, body) for kind, body in _bodies(model, args).items()}
    return Target(name, port, requests)


# --------------------------------------------------------------------------------------
# the phases


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Samples:
    """What one repeat measured for one target."""

    sequential: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    reads_with_content: int = 0
    coalesced: int = 0
    loaded: list[float] = field(default_factory=list)
    #: the direct requests of this gateway's open-loop blocks (its own baseline)
    loaded_direct: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    most_in_flight: int = 0
    cpu_ms_per_request: float = float("nan")
    served: int = 0
    late_sends_ms: list[float] = field(default_factory=list)


def _checked(outcome: Outcome, samples: Samples) -> bool:
    if outcome.status != 200:
        samples.errors += 1
        samples.error_kinds[outcome.error or f"HTTP {outcome.status}"] += 1
        return False
    return True


async def _sequential(
    targets: list[Target], rounds: int, kind: str, rng: random.Random, into: dict[str, Samples]
) -> None:
    for _ in range(rounds):
        order = list(targets)
        rng.shuffle(order)
        for target in order:
            outcome = await target.send(kind)
            samples = into[target.name]
            if not _checked(outcome, samples):
                continue
            if kind == "chat":
                samples.sequential.append(outcome.latency_ms)
            else:
                samples.ttft.append(outcome.ttft_ms)
                samples.reads_with_content += outcome.reads_with_content
                samples.coalesced += outcome.coalesced_reads


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _open_loop(
    direct: Target,
    gateways: list[Target],
    rate: float,
    seconds: int,
    rng: random.Random,
    into: dict[str, Samples],
) -> None:
    """Blocks of one second rotating over the gateways; in each, ``rate`` req/s through the gateway
    and ``rate`` req/s direct, offset by half a period. Sends never wait for answers."""
    loop = asyncio.get_running_loop()
    period = 1.0 / rate
    per_block = max(1, round(rate))
    blocks: list[Target] = []
    for _ in range(seconds):
        rotation = list(gateways)
        rng.shuffle(rotation)
        blocks.extend(rotation)
    for target in [direct, *gateways]:
        target.most_in_flight = 0
    cpu_before = {t.name: _cpu_seconds(t.pid) for t in [direct, *gateways]}
    served = {t.name: 0 for t in [direct, *gateways]}
    pending: set[asyncio.Task[None]] = set()

    async def one(target: Target, owner: str, intended: float) -> None:
        outcome = await target.send("chat")
        served[target.name] += 1
        if _checked(outcome, into[target.name]):
            samples = into[owner]
            samples.late_sends_ms.append((outcome.sent - intended) * 1000)
            (samples.loaded if target is not direct else samples.loaded_direct).append(outcome.latency_ms)

    start = time.perf_counter() + 0.05
    slot = 0
    for block in blocks:
        for _ in range(per_block):
            for offset, target in ((0.0, block), (period / 2, direct)):
                intended = start + slot * period + offset
                delay = intended - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = loop.create_task(one(target, block.name, intended))
                pending.add(task)
                task.add_done_callback(pending.discard)
            slot += 1
    if pending:
        # each exchange is bounded by EXCHANGE_TIMEOUT_S (a timed-out one counts as an error)
        await asyncio.wait_for(asyncio.gather(*pending), EXCHANGE_TIMEOUT_S + 10)
    for target in [direct, *gateways]:
        used = _cpu_seconds(target.pid) - cpu_before[target.name]
        samples = into[target.name]
        samples.served = served[target.name]
        samples.cpu_ms_per_request = (
            used * 1000 / served[target.name] if served[target.name] else float("nan")
        )
        samples.most_in_flight = target.most_in_flight


async def _repeat(targets: list[Target], args: argparse.Namespace, seed: int) -> dict[str, Samples]:
    rng = random.Random(seed)
    into = {t.name: Samples() for t in targets}
    direct, gateways = targets[0], targets[1:]
    await _sequential(targets, args.sequential, "chat", rng, into)
    await _sequential(targets, args.streams, "stream", rng, into)
    await _open_loop(direct, gateways, args.rate, args.duration, rng, into)
    return into


async def _warm_up(targets: list[Target], args: argparse.Namespace) -> None:
    scratch = {t.name: Samples() for t in targets}
    rng = random.Random(0)
    await _sequential(targets, 30, "chat", rng, scratch)
    await _sequential(targets, 10, "stream", rng, scratch)
    await _open_loop(targets[0], targets[1:], args.rate, 1, rng, scratch)
    broken = {name: s.errors for name, s in scratch.items() if s.errors}
    if broken:
        raise SystemExit(f"warm-up failed, non-200 answers by target: {broken}")


async def _measure(targets: list[Target], args: argparse.Namespace) -> list[dict[str, Samples]]:
    await _warm_up(targets, args)
    repeats = []
    for index in range(args.repeats):
        repeats.append(await _repeat(targets, args, seed=args.seed + index))
        print(f"  repeat {index + 1}/{args.repeats} done", flush=True)
    for target in targets:
        target.close()
    return repeats


# --------------------------------------------------------------------------------------
# figures


@dataclass(frozen=True)
class Figures:
    """One target's figures in one repeat (added: minus direct in the same repeat)."""

    seq_p50: float
    seq_p99: float
    ttft_p50: float
    ttft_p99: float
    load_p50: float
    load_p99: float
    coalesced: int
    reads: int
    in_flight: int
    cpu_ms: float
    errors: int
    late_p99: float


def _figures(samples: Samples, direct: Samples, baseline_loaded: list[float]) -> Figures:
    def added(mine: list[float], theirs: list[float], q: float) -> float:
        return _quantile(mine, q) - _quantile(theirs, q)

    return Figures(
        seq_p50=added(samples.sequential, direct.sequential, 0.5),
        seq_p99=added(samples.sequential, direct.sequential, 0.99),
        ttft_p50=added(samples.ttft, direct.ttft, 0.5),
        ttft_p99=added(samples.ttft, direct.ttft, 0.99),
        load_p50=added(samples.loaded, baseline_loaded, 0.5),
        load_p99=added(samples.loaded, baseline_loaded, 0.99),
        coalesced=samples.coalesced,
        reads=samples.reads_with_content,
        in_flight=samples.most_in_flight,
        cpu_ms=samples.cpu_ms_per_request,
        errors=samples.errors,
        late_p99=_quantile(samples.late_sends_ms, 0.99),
    )


def _direct_figures(direct: Samples, loaded: list[float]) -> Figures:
    return Figures(
        seq_p50=_quantile(direct.sequential, 0.5),
        seq_p99=_quantile(direct.sequential, 0.99),
        ttft_p50=_quantile(direct.ttft, 0.5),
        ttft_p99=_quantile(direct.ttft, 0.99),
        load_p50=_quantile(loaded, 0.5),
        load_p99=_quantile(loaded, 0.99),
        coalesced=direct.coalesced,
        reads=direct.reads_with_content,
        in_flight=direct.most_in_flight,
        cpu_ms=direct.cpu_ms_per_request,
        errors=direct.errors,
        late_p99=_quantile(direct.late_sends_ms, 0.99),
    )


def _median(values: Iterator[float]) -> float:
    return statistics.median(list(values))


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


def _report(
    names: list[str], repeats: list[dict[str, Samples]], args: argparse.Namespace, skipped: str | None
) -> None:
    per_target: dict[str, list[Figures]] = {name: [] for name in names}
    for run in repeats:
        direct = run[DIRECT]
        all_direct = [v for name in names[1:] for v in run[name].loaded_direct]
        per_target[DIRECT].append(_direct_figures(direct, all_direct))
        for name in names[1:]:
            per_target[name].append(_figures(run[name], direct, run[name].loaded_direct))
    print()
    print(
        f"medians of {len(repeats)} repeats; ms; gateway rows are ADDED to the direct row's figure "
        f"(quantile through the gateway minus the same quantile direct, same run)"
    )
    header = (
        f"{'target':<21} {'seq p50':>8} {'seq p99':>8} {'TTFT p50':>9} {'TTFT p99':>9} "
        f"{f'{args.rate:g}/s p50':>9} {f'{args.rate:g}/s p99':>9} {'in flight':>9} {'CPU ms':>7} "
        f"{'coalesced':>10} {'errors':>6}"
    )
    print(header)
    medians: dict[str, dict[str, float]] = {}
    for name in names:
        figures = per_target[name]
        m = {
            key: _median(getattr(f, key) for f in figures)
            for key in (
                "seq_p50",
                "seq_p99",
                "ttft_p50",
                "ttft_p99",
                "load_p50",
                "load_p99",
                "cpu_ms",
                "late_p99",
            )
        }
        medians[name] = m
        sign = "" if name == DIRECT else "+"
        coalesced = f"{sum(f.coalesced for f in figures)}/{sum(f.reads for f in figures)}"
        print(
            f"{name:<21} {sign}{m['seq_p50']:>7.2f} {sign}{m['seq_p99']:>7.2f} {sign}{m['ttft_p50']:>8.2f} "
            f"{sign}{m['ttft_p99']:>8.2f} {sign}{m['load_p50']:>8.2f} {sign}{m['load_p99']:>8.2f} "
            f"{max(f.in_flight for f in figures):>9} {m['cpu_ms']:>7.2f} {coalesced:>10} "
            f"{sum(f.errors for f in figures):>6}"
        )
    for name in names:
        kinds: Counter[str] = Counter()
        for run in repeats:
            kinds.update(run[name].error_kinds)
        if kinds:
            print(
                f"  errors of {name}: " + ", ".join(f"{kind} x{count}" for kind, count in kinds.most_common())
            )
    print()
    print("spread over repeats (min..max) of the reference gateway's added figures:")
    ref = per_target[REFERENCE]
    print(
        f"  seq p50 {_spread([f.seq_p50 for f in ref])}  seq p99 {_spread([f.seq_p99 for f in ref])}  "
        f"TTFT p50 {_spread([f.ttft_p50 for f in ref])}  {args.rate:g}/s p50 {_spread([f.load_p50 for f in ref])}  "
        f"{args.rate:g}/s p99 {_spread([f.load_p99 for f in ref])}"
    )
    late = max(medians[name]["late_p99"] for name in names[1:])
    print(f"client: send lateness p99 {late:.2f} ms (the client keeps its schedule)")
    print()
    ours = medians[REFERENCE]
    for name in names[2:]:
        theirs = medians[name]
        print(
            f"reference / {name}: seq p50 {_ratio(ours['seq_p50'], theirs['seq_p50'])}, "
            f"TTFT p50 {_ratio(ours['ttft_p50'], theirs['ttft_p50'])}, "
            f"{args.rate:g}/s p50 {_ratio(ours['load_p50'], theirs['load_p50'])}, "
            f"{args.rate:g}/s p99 {_ratio(ours['load_p99'], theirs['load_p99'])}, "
            f"CPU {_ratio(ours['cpu_ms'], theirs['cpu_ms'])}"
        )
    if skipped:
        print(f"openai-forward baseline skipped: {skipped}")
    print()
    print("targets (issue 11):")
    if FORWARD in medians:
        of = medians[FORWARD]
        _verdict(f"{args.rate:g}/s added p50 <= openai-forward's", ours["load_p50"], of["load_p50"])
        _verdict(f"{args.rate:g}/s added p99 <= openai-forward's", ours["load_p99"], of["load_p99"])
    _verdict(f"{args.rate:g}/s added p50 <= 0.5 ms (stretch)", ours["load_p50"], 0.5)
    _verdict("stream added TTFT p50 <= 1 ms", ours["ttft_p50"], 1.0)
    # Keeping up means an answer is out before the next few requests arrive: a queue grows instead.
    held, held_direct = max(f.in_flight for f in ref), max(f.in_flight for f in per_target[DIRECT])
    print(
        f"  {'PASS' if held <= 4 else 'MISS'}  holds {args.rate:g} req/s without "
        f"queueing: at most {held} requests in flight through it (direct: {held_direct})"
    )
    if held_direct > 4:
        print(
            f"  NOTE  the mock itself queued ({held_direct} direct requests in flight at once): this machine "
            f"could not serve the open-loop phase, so its figures measure the machine, not the gateway"
        )
    # A read can hold two chunks because the client itself was descheduled for longer than the
    # gap (the direct row shows how often); a gateway that buffers coalesces nearly every chunk.
    ours_share = _share(ref)
    direct_share = _share(per_target[DIRECT])
    print(
        f"  {'PASS' if ours_share <= direct_share + 0.01 else 'MISS'}  no chunk coalescing: "
        f"{100 * ours_share:.1f}% of content reads held more than one chunk (direct: {100 * direct_share:.1f}%)"
    )


def _share(figures: list[Figures]) -> float:
    reads = sum(f.reads for f in figures)
    return sum(f.coalesced for f in figures) / reads if reads else 0.0


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs > 0 else "n/a"


def _verdict(label: str, value: float, bound: float) -> None:
    print(f"  {'PASS' if value <= bound else 'MISS'}  {label}: {value:.2f} vs {bound:.2f}")


# --------------------------------------------------------------------------------------
# the servers


def _recipe_unavailable() -> str | None:
    """Why openai-forward cannot run here (None: it can, through its recipe)."""
    if not RECIPE_STAMP.exists():
        return "the recipe's environment is not installed (run recipes/openai-forward/run once)"
    if os.geteuid() != 0:
        return "the recipe needs root for its network namespace"
    if shutil.which("ip") is None:
        return "'ip' (iproute2) is not installed"
    return None


def _pid_of(fragment: str) -> int | None:
    """The pid of the one process whose command line holds ``fragment`` (openai-forward's, started by the recipe)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if fragment.encode() in cmdline and b"gateway_overhead" not in cmdline:
            return int(entry.name)
    return None


@contextmanager
def _passthrough(upstream: str, log_dir: Path, env: dict[str, str]) -> Iterator[LocalServer]:
    port = free_port()
    instance = secrets.token_hex(8)
    log_path = log_dir / "passthrough.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-passthrough", str(port), upstream],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env, "GATEPROOF_INSTANCE_ID": instance},
            start_new_session=True,
        )
    server = LocalServer("passthrough", f"http://{LOOPBACK}:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while not _healthy(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the pass-through did not start:\n{server.log_tail()}")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()


def _healthy(url: str) -> bool:
    import httpx

    try:
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            return client.get(url + HEALTH_PATH).status_code == 200
    except httpx.HTTPError:
        return False


def _run(args: argparse.Namespace) -> int:
    import uvloop

    skipped: str | None = None
    inside = args.inside_recipe
    if not inside and not args.no_openai_forward:
        skipped = _recipe_unavailable()
        if skipped is None:
            print(
                "starting the openai-forward recipe (loopback-only namespace); this benchmark runs inside it",
                flush=True,
            )
            command = [str(RECIPE_RUN), "--exec", sys.executable, __file__, INSIDE_RECIPE, *sys.argv[1:]]
            return subprocess.run(command, check=False, timeout=3600).returncode
    elif args.no_openai_forward:
        skipped = "--no-openai-forward"

    log_dir = Path(tempfile.mkdtemp(prefix="gateproof-overhead-"))
    client_key = "gp-bench-" + secrets.token_urlsafe(12)
    with ExitStack() as servers:
        if inside:
            mock_url = os.environ["MOCK_URL"]
            upstream_key = os.environ[UPSTREAM_KEY_ENV]
            mock_pid = _pid_of("gateproof mock")
        else:
            upstream_key = "sk-bench-" + secrets.token_urlsafe(12)
            mock_env = {UPSTREAM_KEY_ENV: upstream_key}
            if args.mock_tree:
                # a mock that stays put while its working copy is being edited
                mock_env["PYTHONPATH"] = args.mock_tree
            mock = start_server(
                "mock", ["mock", "--api-key-env", UPSTREAM_KEY_ENV], env=mock_env, log_dir=log_dir
            )
            servers.callback(mock.stop)
            mock_url = mock.url
            mock_pid = mock.process.pid
        upstream_env = {UPSTREAM_KEY_ENV: upstream_key}
        gateway = start_server(
            "gateway",
            ["gateway", "--upstream", f"openai={mock_url}/v1"],
            env={"GATEPROOF_API_KEY": client_key, **upstream_env},
            log_dir=log_dir,
        )
        servers.callback(gateway.stop)
        passthrough = servers.enter_context(_passthrough(mock_url, log_dir, upstream_env))
        path = "/v1/chat/completions"
        targets = [
            _target(DIRECT, mock_url, path, upstream_key, "gpt-4o", args),
            _target(REFERENCE, gateway.url, path, client_key, "openai/gpt-4o", args),
            _target(PASSTHROUGH, passthrough.url, path, "unused", "gpt-4o", args),
        ]
        targets[1].pid = gateway.process.pid
        targets[2].pid = passthrough.process.pid
        if inside:
            forward = _target(
                FORWARD, os.environ["GATEWAY_URL"], path, os.environ["GATEPROOF_API_KEY"], "gpt-4o", args
            )
            forward.pid = _pid_of("openai_forward.app:app")
            targets.append(forward)
        if args.before_tree:
            # the same gateway from another tree (e.g. the last commit, unpacked with ``git archive``)
            before = start_server(
                "gateway-before",
                ["gateway", "--upstream", f"openai={mock_url}/v1"],
                env={"GATEPROOF_API_KEY": client_key, **upstream_env, "PYTHONPATH": args.before_tree},
                log_dir=log_dir,
            )
            servers.callback(before.stop)
            targets.append(_target(BEFORE, before.url, path, client_key, "openai/gpt-4o", args))
            targets[-1].pid = before.process.pid
        targets[0].pid = mock_pid
        print(
            f"gateway overhead: {', '.join(t.name for t in targets[1:])} vs the mock direct; "
            f"{args.repeats} repeats of: {args.sequential} sequential rounds, {args.streams} stream rounds "
            f"({args.stream_tokens} chunks {args.itl_ms} ms apart), open loop {args.rate:g} req/s through each "
            f"gateway + {args.rate:g} direct, {args.duration} s per gateway; logs in {log_dir}",
            flush=True,
        )
        repeats = uvloop.run(_measure(targets, args))
        _report([t.name for t in targets], repeats, args, skipped)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="repeats; figures are their medians (default 3)"
    )
    parser.add_argument(
        "--sequential", type=int, default=300, help="sequential rounds per repeat (default 300)"
    )
    parser.add_argument("--streams", type=int, default=50, help="stream rounds per repeat (default 50)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="open-loop req/s through a gateway (default 200)"
    )
    parser.add_argument(
        "--duration", type=int, default=10, help="open-loop seconds per gateway per repeat (default 10)"
    )
    parser.add_argument("--tokens", type=int, default=12, help="tokens of a non-streamed answer (default 12)")
    parser.add_argument(
        "--stream-tokens", type=int, default=20, help="content chunks of a stream (default 20)"
    )
    parser.add_argument("--itl-ms", type=int, default=5, help="ms between a stream's chunks (default 5)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the orders and rotations (default 11)")
    parser.add_argument("--no-openai-forward", action="store_true", help="skip the openai-forward baseline")
    parser.add_argument(
        "--before-tree",
        metavar="DIR",
        help="also run the reference gateway importable from DIR (DIR/gateproof/<part>/...), as a before/after baseline",
    )
    parser.add_argument(
        "--mock-tree",
        metavar="DIR",
        help="run the mock importable from DIR (laid out as for --before-tree), e.g. to measure gateway "
        "changes while the mock's working copy changes (not inside the openai-forward recipe, which "
        "starts its own mock: add --no-openai-forward)",
    )
    parser.add_argument(INSIDE_RECIPE, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-passthrough", nargs=2, metavar=("PORT", "UPSTREAM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_passthrough:
        _serve_passthrough(int(args.serve_passthrough[0]), args.serve_passthrough[1])
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
