"""How many requests per second does gateproof's load user drive, next to a plain locust user?

Run with ``make bench`` (or ``.venv/bin/python benchmarks/load_user.py``).

The harness must not be the bottleneck of a load run (issue 11: at least 0.8x a plain
``FastHttpUser`` with every metric on). One mock provider (``gateproof mock``, started through
``gateproof.cli.launch``, answers with ``ttft_ms=0 itl_ms=0`` so it is cheap) serves both sides
on loopback; each measurement is one headless locust process (a subprocess) with one user class:

- **ours**: ``StreamingChatUser`` or ``ChatUser`` of ``gateproof/load/locustfile.py``, set up as
  ``gateproof load`` sets it up (``GATEPROOF_LOAD_*`` variables from ``LocustSettings.to_env``),
  so every stream is judged by the grammar, stamped chunks are read, and every metric goes to
  the HDR histograms;
- **baseline**: a plain ``FastHttpUser`` (written to a temporary locustfile) that sends the same
  request bytes (same body, same headers) and reads the whole answer, judging nothing.

The two alternate (ours, baseline, ours, ...) for ``--repeat`` rounds per scenario, so a
disturbance from the rest of the machine hits both alike; each figure is the median over the
rounds, and the ratio is ours / baseline. Requests per second come from locust's own CSV
(requests over the run) for both sides, the same yardstick. Besides req/s the table shows each
side's locust CPU time per request (its process's user + system time from ``wait4`` over the
requests it made) and how busy the mock was: the ratio only says something about the load user
while the locust process, not the mock, is the one that is saturated.

With two or more CPUs the mock is pinned to CPU 0 and locust to CPU 1. Everything stays on
127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateproof.cli.launch import LocalServer, start_server
from gateproof.load._runner import LOCUSTFILE
from gateproof.load._settings import USER_CLASSES, LocustSettings
from gateproof.openapi import STAMP_DIRECTIVE_KEY, format_directive

MODEL = "gpt-4o-mini"
PROMPT = "Reply with a short paragraph about load testing."
KEY_ENV = "GATEPROOF_BENCH_LOAD_KEY"
CHAT_PATH = "/v1/chat/completions"

BASELINE_LOCUSTFILE = """
import json, os
from locust import FastHttpUser, constant, task

BODY = os.environ["BENCH_BODY"].encode()
HEADERS = json.loads(os.environ["BENCH_HEADERS"])
PATH = os.environ["BENCH_PATH"]


class PlainUser(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = 10.0
    network_timeout = 30.0

    @task
    def chat(self):
        self.client.post(PATH, data=BODY, headers=HEADERS, name="chat")
"""

#: loaded beside either locustfile (``-f a.py,probe.py``): snapshots the process's CPU time, the
#: mock's CPU time and locust's request count at the start and the end of the measured window
#: (after the warm-up, before the stop), so start-up and shutdown cost count on neither side
PROBE_LOCUSTFILE = """
import json, os, time
import gevent
from locust import events

def _cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def _snapshot(environment):
    times = os.times()
    total = environment.stats.total
    return {
        "wall": time.perf_counter(),
        "cpu": times.user + times.system,
        "mock_cpu": _cpu(int(os.environ["BENCH_MOCK_PID"])),
        "requests": total.num_requests,
        "failures": total.num_failures,
    }

def _window(environment):
    gevent.sleep(float(os.environ["BENCH_WINDOW_START"]))
    first = _snapshot(environment)
    gevent.sleep(float(os.environ["BENCH_WINDOW_LENGTH"]))
    last = _snapshot(environment)
    with open(os.environ["BENCH_PROBE_OUT"], "w") as out:
        json.dump({"first": first, "last": last}, out)

@events.test_start.add_listener
def _start(environment, **kwargs):
    gevent.spawn(_window, environment)
"""


@dataclass(frozen=True)
class Run:
    """One locust process over its measured window."""

    requests: int
    seconds: float
    cpu_s: float
    mock_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000.0 * self.cpu_s / self.requests if self.requests else float("nan")

    @property
    def busy(self) -> float:
        """The share of one CPU the locust process used (about 1.0: it was the bottleneck)."""
        return self.cpu_s / self.seconds

    @property
    def mock_busy(self) -> float:
        return self.mock_cpu_s / self.seconds


def _pin(cpu: int) -> None:
    if (os.cpu_count() or 1) >= 2:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


@contextlib.contextmanager
def _mock(log_dir: Path) -> Iterator[LocalServer]:
    server = start_server("mock", ["mock", "--no-auth", "--any-model"], log_dir=log_dir)
    try:
        if (os.cpu_count() or 1) >= 2:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(server.process.pid, {0})
        yield server
    finally:
        server.stop()


def _directive(tokens: int, stamp: bool) -> str:
    keys = {"scenario": "text", "tokens": str(tokens), "ttft_ms": "0", "itl_ms": "0", "cid": "bench"}
    if stamp:
        keys[STAMP_DIRECTIVE_KEY] = "1"
    return format_directive(**keys)


def _locust(
    locustfile: Path, user_class: str, origin: str, env: dict[str, str], work: Path, args: argparse.Namespace
) -> int:
    """Run one headless locust process to its end; its exit code."""
    probe = work / "probe_locustfile.py"
    probe.write_text(PROBE_LOCUSTFILE)
    command = [
        sys.executable, "-m", "locust", "-f", f"{locustfile},{probe}", "--headless",
        "--users", str(args.users), "--spawn-rate", str(args.users * 100),
        "--run-time", f"{args.warmup + args.duration + 3:g}s", "--stop-timeout", "2", "--host", origin,
        "--only-summary", "--loglevel", "WARNING", user_class,
    ]  # fmt: skip
    with (work / "locust.log").open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=work,
            preexec_fn=lambda: _pin(1),
        )  # fmt: skip
        try:
            return process.wait(timeout=args.warmup + args.duration + 60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"locust did not finish; see {work / 'locust.log'}") from None


def _measure(
    ours: bool, scenario: str, origin: str, mock: LocalServer, args: argparse.Namespace, root: Path
) -> Run:
    stream = scenario == "stream"
    work = Path(tempfile.mkdtemp(prefix=f"{'ours' if ours else 'plain'}-{scenario}-", dir=root))
    settings = LocustSettings(
        path=CHAT_PATH,
        model=MODEL,
        dump=str(work / "dump.json"),
        api_key_env=KEY_ENV,
        directive=_directive(args.tokens, stamp=args.stamp),
        prompt=PROMPT,
        timeout=30.0,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "GATEPROOF_LOAD_", "BENCH_"))}
    env[KEY_ENV] = "bench-key"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["BENCH_MOCK_PID"] = str(mock.process.pid)
    env["BENCH_WINDOW_START"] = str(args.warmup)
    env["BENCH_WINDOW_LENGTH"] = str(args.duration)
    env["BENCH_PROBE_OUT"] = str(work / "probe.json")
    if ours:
        env.update(settings.to_env())
        locustfile, user_class = args.locustfile, USER_CLASSES[scenario]
    else:
        locustfile = work / "plain_locustfile.py"
        locustfile.write_text(BASELINE_LOCUSTFILE)
        headers = {
            "Authorization": "Bearer bench-key",
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "Accept-Encoding": "identity",
        }
        env["BENCH_BODY"] = json.dumps(settings.body(stream=stream))
        env["BENCH_HEADERS"] = json.dumps(headers)
        env["BENCH_PATH"] = CHAT_PATH
        user_class = "PlainUser"
    code = _locust(locustfile, user_class, origin, env, work, args)
    if code not in (0, 1) or not (work / "probe.json").exists():
        raise RuntimeError(f"locust exited with {code}; see {work / 'locust.log'}")
    probe = json.loads((work / "probe.json").read_text())
    first, last = probe["first"], probe["last"]
    if last["failures"] or code:
        raise RuntimeError(f"failed requests; see {work / 'locust.log'}")
    if ours:
        dump = json.loads((work / "dump.json").read_text())
        if dump["failures"]:
            raise RuntimeError(f"our user counted failures: {dump['failure_reasons']} ({work})")
        if stream and args.stamp and not _stamped(work / "dump.json"):
            raise RuntimeError(f"the mock sent no stamps (does it know {STAMP_DIRECTIVE_KEY}=1?)")
    return Run(
        requests=last["requests"] - first["requests"],
        seconds=last["wall"] - first["wall"],
        cpu_s=last["cpu"] - first["cpu"],
        mock_cpu_s=last["mock_cpu"] - first["mock_cpu"],
    )


def _stamped(dump_path: Path) -> bool:
    """Whether the run's dump holds chunk delays (the mock stamped its chunks)."""
    return "chunk_delay" in json.loads(dump_path.read_text()).get("histograms", {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=["stream", "chat", "both"], default="both")
    parser.add_argument("--users", type=int, default=20, help="locust users (default: 20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window (default: 2)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds measured per run (default: 6)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per scenario (default: 3)")
    parser.add_argument("--tokens", type=int, default=64, help="content chunks per answer (default: 64)")
    parser.add_argument(
        "--locustfile", type=Path, default=LOCUSTFILE, help="our locustfile (default: gateproof's own)"
    )
    parser.add_argument(
        "--no-stamp", dest="stamp", action="store_false", help="do not ask the mock for stamped chunks"
    )
    args = parser.parse_args(argv)
    scenarios = ["stream", "chat"] if args.scenario == "both" else [args.scenario]
    root = Path(tempfile.mkdtemp(prefix="gateproof-bench-load-user-"))
    print(
        f"load user vs plain FastHttpUser: {args.users} users, {args.duration:g} s measured per run, "
        f"{args.tokens} tokens per answer (ttft_ms=0 itl_ms=0), medians of {args.repeat}"
    )
    with _mock(root) as mock:
        origin = mock.url
        for scenario in scenarios:
            ours_runs: list[Run] = []
            plain_runs: list[Run] = []
            for _ in range(args.repeat):
                ours_runs.append(_measure(True, scenario, origin, mock, args, root))
                plain_runs.append(_measure(False, scenario, origin, mock, args, root))
            ours = statistics.median(run.rps for run in ours_runs)
            plain = statistics.median(run.rps for run in plain_runs)
            print(f"\n{scenario}:")
            for name, runs in (("ours", ours_runs), ("plain FastHttpUser", plain_runs)):
                rates = ", ".join(f"{run.rps:.0f}" for run in runs)
                cpu = statistics.median(run.cpu_ms_per_request for run in runs)
                busy = statistics.median(run.busy for run in runs)
                mock_busy = statistics.median(run.mock_busy for run in runs)
                print(
                    f"  {name:<19} {statistics.median(run.rps for run in runs):7.0f} req/s "
                    f"(runs: {rates}); locust {cpu:.3f} ms CPU/request, "
                    f"{busy:.0%} busy; mock {mock_busy:.0%} busy"
                )
            ours_cpu = statistics.median(run.cpu_ms_per_request for run in ours_runs)
            plain_cpu = statistics.median(run.cpu_ms_per_request for run in plain_runs)
            print(f"  ratio ours / plain: {ours / plain:.2f}x req/s (target >= 0.80x)")
            print(
                f"  capacity ratio (plain CPU per request / ours): {plain_cpu / ours_cpu:.2f}x "
                "(the req/s ratio a saturated locust process would show)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
