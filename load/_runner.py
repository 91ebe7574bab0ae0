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
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateproof.load._compression import compression_result
from gateproof.load._dump import LoadDump, merge_dumps, read_dump
from gateproof.load._duration import format_duration
from gateproof.load._failures import IN_FLIGHT_AT_END
from gateproof.load._histograms import HISTOGRAM_NOTE, buckets_ms, decode, merge, percentile_ms, summarize
from gateproof.load._measurement import METRICS
from gateproof.load._options import LoadOptions, check_loopback_url, directive_keys
from gateproof.load._pairing import PAIRED_METRICS, overhead_metric
from gateproof.load._schedule import ARRIVAL_MODES, LATE_THRESHOLD_S, START_DELAY_S, Schedule
from gateproof.load._settings import USER_CLASSES, LocustSettings
from gateproof.load._workload import load_workload
from gateproof.load.results import (
    PLOT_FILES,
    ArrivalResult,
    LatencySummary,
    LoadResult,
    PairedResult,
    StreamTransparency,
    TimelinePoint,
)

__all__ = ["DUMP_NAME", "LOCUSTFILE", "LoadError", "build_result", "locust_command", "run_load"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DUMP_NAME = "gateproof-dump.json"
PROGRESS_NAME = ".gateproof-progress.json"
CSV_PREFIX = "locust"
LOG_NAME = "locust.log"
RESULT_NAME = "load.json"
RECORDS_NAME = "requests.jsonl"
#: an open loop whose late sends exceed this share of its requests measured the generator, not
#: the target: the run is marked invalid
MAX_LATE_RATIO = 0.05
#: points kept of each leg's CDF for the report
_CDF_POINTS = 60
#: plot -> file: the TTFT distribution and latency over time, drawn by gateproof.reports
PLOT_NAMES = PLOT_FILES

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


def _users(options: LoadOptions) -> int:
    """Users locust starts: an open loop runs one scheduling user per process."""
    return options.workers if options.open_loop else options.users


def locust_command(options: LoadOptions, origin: str, *, master_port: int | None = None) -> list[str]:
    """The locust command line (it holds no secret: the key travels by environment); with
    ``master_port``, the master of a distributed run (bound to loopback, waiting for its workers)."""
    users = _users(options)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        f"{max(options.spawn_rate, users) if options.open_loop else options.spawn_rate:g}",
        "--run-time",
        format_duration(options.duration_s + (START_DELAY_S if options.open_loop else 0.0)),
        "--stop-timeout",
        format_duration(options.stop_timeout_s),
        "--host",
        origin,
        "--csv",
        CSV_PREFIX,
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    if master_port is not None:
        command += [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(options.workers),
        ]
    return [*command, USER_CLASSES[options.scenario]]


def worker_command(options: LoadOptions, master_port: int) -> list[str]:
    """A worker of a distributed run: it takes its users, settings and run time from the master."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(master_port),
        "--loglevel",
        "WARNING",
        USER_CLASSES[options.scenario],
    ]


def _free_port() -> int:
    """A free TCP port on loopback for the master (locust also uses the next one up)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise LoadError("no free pair of loopback ports for the locust master")


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


def _progress_files(out: Path) -> list[Path]:
    return [
        p for p in [out / PROGRESS_NAME, *sorted(out.glob(".gateproof-progress.worker-*.json"))] if p.exists()
    ]


def _read_progress(out: Path) -> dict[str, Any] | None:
    """The last counts every locust process wrote, summed (None before any wrote)."""
    total: dict[str, Any] = {}
    found = False
    for path in _progress_files(out):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        found = True
        for key, value in data.items():
            if key == "failure_reasons" and isinstance(value, dict):
                reasons = total.setdefault(key, {})
                assert isinstance(reasons, dict)
                for reason, count in value.items():
                    reasons[reason] = int(reasons.get(reason, 0)) + int(count)
            elif key == "elapsed":
                total[key] = max(float(total.get(key, 0.0)), float(value))
            elif isinstance(value, int):
                total[key] = int(total.get(key, 0)) + value
    return total if found else None


def _progress_message(out: Path, duration: float) -> str:
    """The live line, from the counts (and the run's own clock) the locust processes last wrote."""
    data = _read_progress(out)
    try:
        if data is None:
            raise KeyError("no progress yet")
        elapsed = float(data["elapsed"])
        counts = f"{int(data['requests'])} requests, {int(data['failures'])} failures"
        in_flight = int(data.get("in_flight", 0))
    except (ValueError, KeyError, TypeError):
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


def _partial_result(options: LoadOptions, out: Path, error: str) -> LoadResult | None:
    """A result from the last progress snapshot, for a run whose locust process wrote no dump."""
    try:
        data = _read_progress(out)
        if data is None:
            return None
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


def _validate(options: LoadOptions) -> tuple[str, str]:
    """Refuse bad options before anything is started; (origin, base path) of the target."""
    origin, base_path = check_loopback_url(options.base_url)
    if options.scenario not in USER_CLASSES:
        raise ValueError(f"unknown scenario {options.scenario!r}; choose from {', '.join(USER_CLASSES)}")
    if options.users < 1 or options.spawn_rate <= 0 or options.duration_s <= 0:
        raise ValueError("users, spawn rate and duration must be positive")
    if options.request_timeout <= 0 or options.stop_timeout_s < 0:
        raise ValueError("the request timeout must be positive and the stop timeout not negative")
    if options.arrival not in ("closed", *ARRIVAL_MODES):
        raise ValueError(
            f"unknown arrival {options.arrival!r}; choose from closed, {', '.join(ARRIVAL_MODES)}"
        )
    if options.open_loop:
        Schedule(options.arrival, options.rate, options.duration_s, options.seed)
        if options.scenario == "compression":
            raise ValueError("the compression scenario runs in a closed loop only")
        if options.max_in_flight < 1:
            raise ValueError("the cap on requests in flight must be positive")
    if options.workers < 1:
        raise ValueError("the number of workers must be positive")
    if (options.scenario == "workload") != (options.workload is not None):
        raise ValueError("the workload scenario and a workload file go together (--workload FILE)")
    if options.workload is not None:
        load_workload(options.workload, default_model=options.model)
    if not os.environ.get(options.api_key_env):
        raise ValueError(f"environment variable {options.api_key_env} (the API key) is not set or empty")
    if options.paired:
        check_loopback_url(options.baseline_url)
        if options.scenario == "compression":
            raise ValueError("a paired run takes the chat or stream scenario")
        key_env = options.baseline_api_key_env or options.api_key_env
        if not os.environ.get(key_env):
            raise ValueError(f"environment variable {key_env} (the baseline's key) is not set or empty")
    return origin, base_path


def _settings(options: LoadOptions, out: Path, base_path: str) -> LocustSettings:
    baseline_origin, baseline_path = check_loopback_url(options.baseline_url) if options.paired else ("", "")
    return LocustSettings(
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
        arrival=options.arrival,
        rate=options.rate,
        duration=options.duration_s,
        seed=options.seed,
        workers=options.workers,
        max_in_flight=options.max_in_flight,
        baseline_origin=baseline_origin,
        baseline_path=baseline_path + "/chat/completions" if options.paired else "",
        baseline_model=options.baseline_model or options.model,
        baseline_api_key_env=options.baseline_api_key_env or options.api_key_env,
        records=str(out / RECORDS_NAME) if options.records else "",
        cid=options.cid,
        workload=str(options.workload.resolve()) if options.workload is not None else "",
        directive_keys=json.dumps(directive_keys(options)) if options.use_directive else "",
    )


def _per_process(out: Path, name: str) -> list[Path]:
    """A single process's file, or every worker's copy of it (``<stem>.worker-<pid><suffix>``)."""
    path = out / name
    return [p for p in [path, *sorted(out.glob(f"{path.stem}.worker-*{path.suffix}"))] if p.exists()]


def run_load(options: LoadOptions, *, progress: Callable[[str], None] | None = None) -> LoadResult:
    """Run one load test as described by ``options``; write ``load.json`` (and the plot) to its folder.

    ``progress`` receives a short status line (elapsed seconds, requests and failures
    so far) about once a second while locust runs.

    Raises ``ValueError`` for bad options (non-loopback URL, unknown scenario, missing
    key variable) before anything is sent, and :class:`LoadError` when locust does
    not produce measurements.
    """
    origin, base_path = _validate(options)
    out = options.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in (DUMP_NAME, PROGRESS_NAME, RECORDS_NAME):
        for stale in _per_process(out, name):
            stale.unlink(missing_ok=True)
    settings = _settings(options, out, base_path)
    master_port = _free_port() if options.workers > 1 else None
    command = locust_command(options, origin, master_port=master_port)
    commands = [command]
    if master_port is not None:
        commands += [worker_command(options, master_port)] * options.workers
    deadline_s = options.duration_s + START_DELAY_S + options.stop_timeout_s + options.startup_margin_s
    started = time.monotonic()
    last_message = ""
    last_report = 0.0
    log_path = out / LOG_NAME
    processes: list[subprocess.Popen[bytes]] = []
    overran = False
    try:
        with log_path.open("wb") as log:
            for argv in commands:
                processes.append(
                    subprocess.Popen(
                        argv,
                        cwd=out,
                        env=_child_env(settings),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        # the master (or the single process) ends the run; workers quit when it tells them to
        while processes[0].poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > deadline_s:
                overran = True
                break
            if progress is not None and elapsed - last_report >= 1.0:
                last_report = elapsed
                message = _progress_message(out, options.duration_s)
                if message != last_message:
                    last_message = message
                    progress(message)
            time.sleep(0.2)
        for worker in processes[1:]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=max(1.0, deadline_s - (time.monotonic() - started)))
    finally:
        for process in processes:
            if process.poll() is None:
                _stop_group(process)
    dump_paths = _per_process(out, DUMP_NAME)
    if overran or not dump_paths or (master_port is not None and len(dump_paths) < options.workers):
        returncode = processes[0].returncode
        if overran:
            error = f"locust did not finish within {deadline_s:.0f} s and was stopped"
        elif dump_paths:
            error = f"only {len(dump_paths)} of {options.workers} locust workers wrote their measurements"
        else:
            error = f"locust exited with code {returncode} without writing gateproof's measurements"
        last_line = _last_log_line(log_path)
        partial = _partial_result(options, out, error)
        for path in _progress_files(out):
            path.unlink(missing_ok=True)
        if partial is not None:
            partial.artifacts = {"locust_log": LOG_NAME, "result": RESULT_NAME}
            partial.settings = _settings_record(options, command)
            partial.workers = options.workers
            partial.write_json(out / RESULT_NAME)
        detail = f"; its last log line: {last_line}" if last_line else ""
        raise LoadError(f"{error} (log: {log_path}){detail}", partial)
    for path in _progress_files(out):
        path.unlink(missing_ok=True)
    dump = merge_dumps([read_dump(p) for p in dump_paths])
    if len(dump_paths) > 1:
        # one file for the run: the merged dump and the concatenated request log
        merged_dump = out / DUMP_NAME
        dump.write(merged_dump)
        for path in dump_paths:
            if path != merged_dump:
                path.unlink()
    record_paths = _per_process(out, RECORDS_NAME)
    if len(record_paths) > 1:
        with (out / (RECORDS_NAME + ".tmp")).open("wb") as joined:
            for path in record_paths:
                with path.open("rb") as part:
                    shutil.copyfileobj(part, joined)
                path.unlink()
        (out / (RECORDS_NAME + ".tmp")).replace(out / RECORDS_NAME)
    artifacts = {
        name: file
        for name, file in (
            ("locust_stats", f"{CSV_PREFIX}_stats.csv"),
            ("locust_stats_history", f"{CSV_PREFIX}_stats_history.csv"),
            ("locust_failures", f"{CSV_PREFIX}_failures.csv"),
            ("locust_exceptions", f"{CSV_PREFIX}_exceptions.csv"),
            ("locust_log", LOG_NAME),
            ("measurements", DUMP_NAME),
            ("records", RECORDS_NAME),
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
        **({"workload": str(options.workload)} if options.workload is not None else {}),
        **(
            {"arrival": options.arrival, "rate": f"{options.rate:g}", "seed": str(options.seed)}
            if options.open_loop
            else {}
        ),
        **(
            {
                "baseline_url": options.baseline_url,
                "baseline_model": options.baseline_model or options.model,
                "baseline_api_key_env": options.baseline_api_key_env or options.api_key_env,
            }
            if options.paired
            else {}
        ),
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
        arrivals=_arrivals(options, dump, window),
        paired=_paired(options, dump),
        transparency=_transparency(dump),
        invalid=_invalid(options, dump),
        workers=options.workers,
    )


def _summary_of(dump: LoadDump, metric: str) -> LatencySummary | None:
    text = dump.histograms.get(metric)
    histogram = decode(text) if text else None
    if histogram is None or histogram.get_total_count() == 0:
        return None
    return summarize(metric, histogram)


def _arrivals(options: LoadOptions, dump: LoadDump, window: float) -> ArrivalResult | None:
    if not options.open_loop:
        return None
    sent = dump.requests
    return ArrivalResult(
        mode=options.arrival,
        offered_rate=options.rate,
        seed=options.seed,
        scheduled=dump.scheduled,
        sent=sent,
        achieved_rate=round(sent / options.duration_s, 3) if options.duration_s else 0.0,
        late_sends=dump.late_sends,
        late_threshold_ms=LATE_THRESHOLD_S * 1000.0,
        lag=_summary_of(dump, "lag"),
    )


def _invalid(options: LoadOptions, dump: LoadDump) -> str:
    """Why the run measured the generator rather than the target ("" for a valid run)."""
    if not options.open_loop or not dump.requests:
        return ""
    ratio = dump.late_sends / dump.requests
    if ratio > MAX_LATE_RATIO:
        return (
            f"the load generator fell behind its schedule: {dump.late_sends} of {dump.requests} sends "
            f"({ratio:.1%}) were more than {LATE_THRESHOLD_S * 1000:g} ms late (at most "
            f"{MAX_LATE_RATIO:.0%} is tolerated); add --workers or lower --rate"
        )
    return ""


def _cdf(dump: LoadDump, metric: str) -> list[tuple[float, float]]:
    """(ms, cumulative fraction) points of one metric's distribution."""
    text = dump.histograms.get(metric)
    histogram = decode(text) if text else None
    if histogram is None or histogram.get_total_count() == 0:
        return []
    points = []
    for k in range(1, _CDF_POINTS + 1):
        fraction = k / _CDF_POINTS
        points.append((percentile_ms(histogram, min(fraction * 100.0, 100.0)), round(fraction, 4)))
    return points


def _paired(options: LoadOptions, dump: LoadDump) -> PairedResult | None:
    if not options.paired:
        return None
    baseline = dump.baseline or LoadDump()
    metrics = {}
    for metric in PAIRED_METRICS:
        estimate = overhead_metric(metric, dump.pairs.get(metric, []), seed=options.seed)
        if estimate is not None:
            metrics[metric] = estimate
    latencies = {m: s for m in METRICS if (s := _summary_of(baseline, m)) is not None}
    return PairedResult(
        baseline_url=options.baseline_url,
        baseline_model=options.baseline_model or options.model,
        pairs=max((len(v) for v in dump.pairs.values()), default=0),
        unmatched=dump.unmatched_pairs,
        resamples=1000 if metrics else 0,
        metrics=metrics,
        baseline=latencies,
        baseline_requests=baseline.requests,
        baseline_failures=baseline.failures,
        baseline_failure_reasons=dict(baseline.failure_reasons),
        baseline_cdf={m: _cdf(baseline, m) for m in ("ttft", "e2e") if m in baseline.histograms},
        target_cdf={m: _cdf(dump, m) for m in ("ttft", "e2e") if m in dump.histograms},
        provider_timing=(
            {
                "tokens": float(options.tokens),
                "ttft_ms": float(options.ttft_ms),
                "itl_ms": float(options.itl_ms),
            }
            if options.use_directive
            else {}
        ),
    )


def _transparency(dump: LoadDump) -> StreamTransparency | None:
    counts = dump.transparency
    if not counts.get("streams"):
        return None
    baseline = dump.baseline
    added = overhead_metric("chunk_delay", dump.pairs.get("chunk_delay", []))
    return StreamTransparency(
        streams=counts.get("streams", 0),
        chunks=counts.get("chunks", 0),
        coalesced=counts.get("coalesced", 0),
        split=counts.get("split", 0),
        missing=counts.get("missing", 0),
        buffered_streams=counts.get("buffered_streams", 0),
        chunk_delay=_summary_of(dump, "chunk_delay"),
        baseline_chunk_delay=_summary_of(baseline, "chunk_delay") if baseline is not None else None,
        added_chunk_delay=added,
    )
