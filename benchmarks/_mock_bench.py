"""What the two mock benchmarks share: starting the servers, pinning them, reading their CPU time.

``mock_throughput.py`` and ``mock_fidelity.py`` each compare the mock with a bare server measured
in the same run, driven by the same raw asyncio client. Both start the mock through
``gateproof.cli.launch`` (as ``gateproof run`` does, with an API key it checks on every request)
and their baseline as a child process of the benchmark script itself (``--serve-baseline``), pin
the servers to CPU 0 and the client to CPU 1 when there are two CPUs, and read a server's CPU time
from ``/proc`` so a figure can say what one request cost the server, not only how long it took.
Everything stays on 127.0.0.1 and every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateproof.cli.launch import LOOPBACK, LocalServer, free_port, start_server

__all__ = [
    "BENCH_KEY",
    "LOOPBACK",
    "Server",
    "baseline_server",
    "cpu_seconds",
    "median",
    "mock_server",
    "percentile",
    "pin",
    "pinning",
    "serve_fast",
]

#: the one API key the benchmarks' mock accepts (the mock checks it on every request, as a provider does)
BENCH_KEY = "bench-key"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Server:
    """A server under test: its name, port and process."""

    name: str
    port: int
    pid: int


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank), NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pin(pid: int, cpu: int) -> None:
    """Run ``pid`` (0: this process) on ``cpu`` only, where the machine allows it."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(pid, {cpu})


def pinning() -> bool:
    """Whether servers and client can each have a CPU of their own."""
    return (os.cpu_count() or 1) >= 2


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, in seconds (``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@contextlib.contextmanager
def mock_server(log_dir: Path, extra: Sequence[str] = ()) -> Iterator[Server]:
    """``gateproof mock`` on a free loopback port, accepting ``BENCH_KEY`` only."""
    server = start_server(
        "mock",
        ["mock", "--log-level", "warning", "--api-key-env", "GATEPROOF_BENCH_KEY", *extra],
        port=free_port(),
        env={"GATEPROOF_BENCH_KEY": BENCH_KEY},
        log_dir=log_dir,
    )
    try:
        yield Server("mock", int(server.url.rsplit(":", 1)[1]), server.process.pid)
    finally:
        server.stop()


@contextlib.contextmanager
def baseline_server(script: str, name: str, args: Sequence[str], log_dir: Path) -> Iterator[Server]:
    """``python <script> --serve-baseline <name> <port> <args...>``, ready once its port accepts."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, script, "--serve-baseline", name, str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    local = LocalServer(name, f"http://{LOOPBACK}:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1.0):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"baseline {name} did not start:\n{local.log_tail()}")
            time.sleep(0.05)
        yield Server(name, port, process.pid)
    finally:
        local.stop()


def serve_fast(app: object, port: int, **extra: object) -> None:
    """Serve a bare baseline ASGI app the way the fastest uvicorn set-up does (uvloop, httptools,
    no access log, no lifespan), so each baseline differs from the others only in its app."""
    import uvicorn

    uvicorn.run(
        app,  # type: ignore[arg-type]
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
        **extra,  # type: ignore[arg-type]
    )
