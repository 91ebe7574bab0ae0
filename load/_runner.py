"""Run locust as a child process and turn what it measured into a :class:`LoadResult`.

locust patches the network stack with gevent when imported, so gateproof never
imports it here: :func:`run_load` starts ``python -m locust -f locustfile.py ...``
headless, in its own process group, with a hard deadline (run time + stop timeout
+ a start-up margin), polls a small progress file for the live line, then reads
the measurement dump(s) the locust process wrote when the test stopped, merges
them and fills the results model.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gateproof.load._compression import compression_result
from gateproof.load._dump import LoadDump, merge_dumps, read_dump
from gateproof.load._duration import format_duration
from gateproof.load._failures import IN_FLIGHT_AT_END
from gateproof.load._histograms import HISTOGRAM_NOTE, buckets_ms, decode, merge, percentile_ms, summarize
from gateproof.load._measurement import METRICS
from gateproof.load._options import LoadOptions, check_loopback_url
from gateproof.load._settings import USER_CLASSES, LocustSettings
from gateproof.load.results import LoadResult, TimelinePoint

__all__ = ["DUMP_NAME", "LOCUSTFILE", "LoadError", "build_result", "locust_command", "run_load"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DUMP_NAME = "gateproof-dump.json"
PROGRESS_NAME = ".gateproof-progress.json"
CSV_PREFIX = "locust"
LOG_NAME = "locust.log"
RESULT_NAME = "load.json"
#: plot -> file: the TTFT distribution and latency over time, drawn by gateproof.reports
PLOT_NAMES = {"ttft": "ttft.png", "timeline": "timeline.png", "compression": "compression.png"}

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class LoadError(RuntimeError):
    """The load run could not be carried out (locust failed to start, crashed, or overran).

    ``result`` holds what was counted before it broke down (from the last progress the locust
    process wrote; ``error`` says what happened), and is already written as ``load.json``; it is
    None when locust never got as far as counting anything.
    """

    def __init__(self, message: str, result: LoadResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def locust_command(options: LoadOptions, origin: str) -> list[str]:
    """The locust command line (it holds no secret: the key travels by environment)."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(options.users),
        "--spawn-rate",
        f"{options.spawn_rate:g}",
        "--run-time",
        format_duration(options.duration_s),
        "--stop-timeout",
        format_duration(options.stop_timeout_s),
        "--host",
        origin,
        "--csv",
        CSV_PREFIX,
        "--only-summary",
        "--loglevel",
        "WARNING",
        USER_CLASSES[options.scenario],
    ]


def _child_env(settings: LocustSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_") and k not in _PROXY_VARIABLES}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update(settings.to_env())
    return env


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _progress_message(path: Path, duration: float) -> str:
    """The live line, from the counts (and the run's own clock) the locust process last wrote."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        elapsed = float(data["elapsed"])
        counts = f"{int(data['requests'])} requests, {int(data['failures'])} failures"
        in_flight = int(data.get("in_flight", 0))
    except (OSError, ValueError, KeyError, TypeError):
        return "load: starting locust"
    if elapsed > duration:
        return f"load: run time over, letting {in_flight} running requests finish; {counts}"
    return f"load: {elapsed:.0f} s of {duration:.0f} s, {counts}"


def _last_log_line(path: Path) -> str:
    """The last line locust logged that is not part of a traceback (the error's own message)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        text = line.strip()
        if text and not line[:1].isspace() and not text.startswith("Traceback"):
            return text[:300]
    return ""


def _partial_result(options: LoadOptions, progress_path: Path, error: str) -> LoadResult | None:
    """A result from the last progress snapshot, for a run whose locust process wrote no dump."""
    try:
        data = json.loads(progress_path.read_text(encoding="utf-8"))
        requests, failures = int(data["requests"]), int(data["failures"])
        in_flight = int(data.get("in_flight", 0))
        reasons = {str(k): int(v) for k, v in dict(data.get("failure_reasons", {})).items()}
        responses = int(data.get("responses", 0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if in_flight:
        reasons[IN_FLIGHT_AT_END] = reasons.get(IN_FLIGHT_AT_END, 0) + in_flight
    return LoadResult(
        scenario=options.scenario,
        base_url=options.base_url,
        users=options.users,
        spawn_rate=options.spawn_rate,
        duration_s=options.duration_s,
        requests=requests + in_flight,
        failures=failures + in_flight,
        failure_reasons=dict(sorted(reasons.items())),
        responses=responses,
        error=error,
    )


def run_load(options: LoadOptions, *, progress: Callable[[str], None] | None = None) -> LoadResult:
    """Run one load test as described by ``options``; write ``load.json`` (and the plot) to its folder.

    ``progress`` receives a short status line (elapsed seconds, requests and failures
    so far) about once a second while locust runs.

    Raises ``ValueError`` for bad options (non-loopback URL, unknown scenario, missing
    key variable) before anything is sent, and :class:`LoadError` when locust does
    not produce measurements.
    """
    origin, base_path = check_loopback_url(options.base_url)
    if options.scenario not in USER_CLASSES:
        raise ValueError(f"unknown scenario {options.scenario!r}; choose from {', '.join(USER_CLASSES)}")
    if options.users < 1 or options.spawn_rate <= 0 or options.duration_s <= 0:
        raise ValueError("users, spawn rate and duration must be positive")
    if options.request_timeout <= 0 or options.stop_timeout_s < 0:
        raise ValueError("the request timeout must be positive and the stop timeout not negative")
    if not os.environ.get(options.api_key_env):
        raise ValueError(f"environment variable {options.api_key_env} (the API key) is not set or empty")
    out = options.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in [out / DUMP_NAME, out / PROGRESS_NAME, *out.glob("gateproof-dump.worker-*.json")]:
        stale.unlink(missing_ok=True)
    settings = LocustSettings(
        path=base_path + "/chat/completions",
        model=options.model,
        dump=str(out / DUMP_NAME),
        api_key_env=options.api_key_env,
        max_tokens=options.max_tokens,
        directive=options.directive,
        timeout=options.request_timeout,
        progress=str(out / PROGRESS_NAME),
        compress_path=base_path + "/compress",
        transcript_sizes=",".join(options.transcript_sizes),
    )
    command = locust_command(options, origin)
    deadline_s = options.duration_s + options.stop_timeout_s + options.startup_margin_s
    started = time.monotonic()
    last_message = ""
    last_report = 0.0
    log_path = out / LOG_NAME
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=out,
            env=_child_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    overran = False
    try:
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > deadline_s:
                _stop_group(process)
                overran = True
                break
            if progress is not None and elapsed - last_report >= 1.0:
                last_report = elapsed
                message = _progress_message(out / PROGRESS_NAME, options.duration_s)
                if message != last_message:
                    last_message = message
                    progress(message)
            time.sleep(0.2)
    except BaseException:
        _stop_group(process)
        raise
    dump_paths = [
        p for p in [out / DUMP_NAME, *sorted(out.glob("gateproof-dump.worker-*.json"))] if p.exists()
    ]
    if overran or not dump_paths:
        if overran:
            error = f"locust did not finish within {deadline_s:.0f} s and was stopped"
        else:
            error = f"locust exited with code {process.returncode} without writing gateproof's measurements"
        last_line = _last_log_line(log_path)
        partial = _partial_result(options, out / PROGRESS_NAME, error)
        (out / PROGRESS_NAME).unlink(missing_ok=True)
        if partial is not None:
            partial.artifacts = {"locust_log": LOG_NAME, "result": RESULT_NAME}
            partial.settings = _settings_record(options, command)
            partial.write_json(out / RESULT_NAME)
        detail = f"; its last log line: {last_line}" if last_line else ""
        raise LoadError(f"{error} (log: {log_path}){detail}", partial)
    (out / PROGRESS_NAME).unlink(missing_ok=True)
    dump = merge_dumps([read_dump(p) for p in dump_paths])
    artifacts = {
        name: file
        for name, file in (
            ("locust_stats", f"{CSV_PREFIX}_stats.csv"),
            ("locust_stats_history", f"{CSV_PREFIX}_stats_history.csv"),
            ("locust_failures", f"{CSV_PREFIX}_failures.csv"),
            ("locust_exceptions", f"{CSV_PREFIX}_exceptions.csv"),
            ("locust_log", LOG_NAME),
            ("measurements", DUMP_NAME),
        )
        if (out / file).exists()
    }
    result = build_result(options, dump, artifacts)
    result.settings = _settings_record(options, command)
    result.artifacts["result"] = RESULT_NAME
    result.write_json(out / RESULT_NAME)
    return result


def _settings_record(options: LoadOptions, command: list[str]) -> dict[str, str]:
    """What was sent, for load.json (the key variable's *name* only)."""
    return {
        "model": options.model,
        "max_tokens": "" if options.max_tokens is None else str(options.max_tokens),
        "directive": options.directive,
        "api_key_env": options.api_key_env,
        "request_timeout_s": f"{options.request_timeout:g}",
        "stop_timeout_s": f"{options.stop_timeout_s:g}",
        "locust_command": " ".join(command[1:]),
        **(
            {"transcript_sizes": ",".join(options.transcript_sizes)}
            if options.scenario == "compression"
            else {}
        ),
    }


def build_result(options: LoadOptions, dump: LoadDump, artifacts: dict[str, str]) -> LoadResult:
    """The results model from a (merged) dump: percentiles, rates, timeline, TTFT buckets."""
    window = 0.0
    if dump.first_request_at is not None and dump.last_request_at is not None:
        window = max(dump.last_request_at - dump.first_request_at, 0.0)
    latencies = {}
    ttft_buckets: list[tuple[float, int]] = []
    for metric in METRICS:
        text = dump.histograms.get(metric)
        histogram = decode(text) if text else None
        if histogram is None or histogram.get_total_count() == 0:
            continue
        latencies[metric] = summarize(metric, histogram)
        if metric == "ttft":
            ttft_buckets = buckets_ms(histogram)
    origin = (
        math.floor(dump.started_at) if dump.started_at else min((int(k) for k in dump.timeline), default=0)
    )
    timeline = []
    for key, second in dump.timeline.items():
        e2e = merge([second.e2e]) if second.e2e else None
        ttft = merge([second.ttft]) if second.ttft else None
        timeline.append(
            TimelinePoint(
                t=float(int(key) - origin),
                requests=second.requests,
                failures=second.failures,
                e2e_p50_ms=percentile_ms(e2e, 50) if e2e else None,
                e2e_p95_ms=percentile_ms(e2e, 95) if e2e else None,
                ttft_p50_ms=percentile_ms(ttft, 50) if ttft else None,
            )
        )
    timeline.sort(key=lambda point: point.t)
    return LoadResult(
        scenario=options.scenario,
        base_url=options.base_url,
        users=options.users,
        spawn_rate=options.spawn_rate,
        duration_s=options.duration_s,
        requests=dump.requests,
        failures=dump.failures,
        failure_reasons=dict(dump.failure_reasons),
        requests_per_s=round(dump.requests / window, 3) if window > 0 else 0.0,
        output_tokens_per_s=round(dump.output_tokens / window, 3) if window > 0 else 0.0,
        latencies=latencies,
        ttft_histogram=ttft_buckets,
        timeline=timeline,
        histogram=HISTOGRAM_NOTE,
        artifacts=dict(artifacts),
        started_at=dump.started_at,
        finished_at=dump.finished_at,
        output_tokens=dump.output_tokens,
        responses=dump.responses,
        window_s=round(window, 3),
        compression=(
            compression_result(
                dump.compression,
                sizes=options.transcript_sizes,
                users=options.users,
                duration_s=options.duration_s,
                requests=dump.requests,
                failures=dump.failures,
                failure_reasons=dump.failure_reasons,
            )
            if options.scenario == "compression"
            else None
        ),
    )
