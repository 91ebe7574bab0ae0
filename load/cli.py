"""`gateproof load`: put a chat completions endpoint on loopback under load and measure it.

Runs locust headless in a child process against --base-url (streamed or plain
chat completions, or the compression scenario; a closed loop of --users users),
then prints requests/s, TTFT and end-to-end percentiles and the failures, and
writes to --out:
load.json (the results), locust_*.csv (locust's own statistics), ttft.png and
timeline.png (TTFT distribution, latency over time), gateproof-dump.json (the
raw HDR histograms) and locust.log.

A request counts as failed, under one of these names, when the target:
- redirects (any 3xx: "redirect"; gateproof never follows one) or answers
  1xx/4xx/5xx ("http_<code>");
- answers a streamed request with anything but text/event-stream, or a plain
  one with anything but application/json ("content_type_matches_mode");
- sends a header block over 64 KiB ("headers_too_large") or a body over 8 MiB
  ("body_too_large");
- sends nothing within the request timeout ("timeout"), or has not finished by
  then or by the end of the run plus the stop timeout ("deadline": requests the
  run cuts off are counted, never dropped);
- refuses, resets or closes the connection, or speaks broken HTTP
  ("connection_refused", "connection_reset", "connection_closed",
  "protocol_error", "connection_error");
- streams an error event, no [DONE], or breaks any other stream-grammar rule
  (the rule name, e.g. "no_error_event", "done_terminates_stream"; "no_content"
  for a stream without content), or sends a plain body that is not a chat
  completion ("invalid_json", "too_deep", "error_body", "not_chat_completion",
  "no_usage").
The compression scenario (--scenario compression) sends agent transcripts of
--transcript-sizes with X-Edgee-Enable-Compression: true to chat completions
(not streamed) and /compress in turn, and records the gateway's reported
compression time next to the client's latency, per endpoint and size (in
load.json's "compression" section and compression.png); an answer without a
compression object fails as "compression_missing", a reported time longer than
the request took as "compression_time_exceeds_latency", a /compress body
without messages as "not_compressed_body".
The summary prints each name with its meaning. Load is only ever sent to
loopback.

The request timeout defaults to the run time plus the stop timeout, at most
60 s: no request can outlive the run anyway.

A closed loop (--users N, each sending when its last request ended) is the
default; --arrival constant|poisson --rate R sends on a seeded schedule fixed in
advance instead (an open loop), counting every latency from the intended send
time, and reports late sends. --baseline-url makes the run paired: every
scheduled request also goes to the baseline (the mock provider directly, or
another gateway), back to back in a seeded order, and the report gives what the
target added (p50/p90/p99/p99.9 with bootstrap intervals). --slo FILE judges the
run against objectives; --capacity RATES steps an open loop's rate until one
breaks. --workers N runs the users on N locust worker processes under a master
(docs/load.md also shows workers on other machines). Every request is also
written to requests.jsonl.

Exit codes (gateproof.load._exit_codes): 0 the run completed within
--max-failure-ratio and met every SLO; 1 too many failures or the run broke
down (load.json still holds the counts); 2 bad input; 3 no request got an HTTP
status line back (connection refused, nothing sent within the timeout, ...);
4 an SLO was breached; 5 the run is invalid: the load generator, not the
target, was the bottleneck (late sends, or an offered rate beyond a safe
fraction of what calibration measured).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from gateproof.cli.progress import ProgressLine
from gateproof.load._calibration import SAFE_FRACTION, calibrate
from gateproof.load._capacity import describe_capacity, parse_rates, search_capacity
from gateproof.load._compression import DEFAULT_TRANSCRIPT_SIZES, parse_transcript_sizes
from gateproof.load._duration import parse_duration
from gateproof.load._exit_codes import (
    EXIT_FAILURES,
    EXIT_INVALID_RUN,
    EXIT_OK,
    EXIT_SLO_BREACHED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from gateproof.load._failures import describe
from gateproof.load._options import LoadOptions, check_loopback_url
from gateproof.load._runner import PLOT_NAMES, LoadError, run_load
from gateproof.load._schedule import ARRIVAL_MODES
from gateproof.load._settings import USER_CLASSES
from gateproof.load._slo import Slo, evaluate, load_slos
from gateproof.load._workload import load_workload
from gateproof.load.results import LoadResult
from gateproof.openapi import TRANSCRIPT_SIZES

__all__ = ["DESCRIPTION", "HELP", "configure", "main"]

HELP = "load-test a chat completions endpoint on loopback (locust): TTFT, inter-chunk gaps, e2e, req/s"
DESCRIPTION = __doc__ or HELP


def _directive_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value or any(c.isspace() or c == "]" for c in text):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE without spaces, got {text!r}")
    return key, value


def configure(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("target")
    target.add_argument(
        "--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1"
    )
    target.add_argument(
        "--api-key-env",
        default="GATEPROOF_API_KEY",
        metavar="NAME",
        help="environment variable holding the bearer key (default: %(default)s)",
    )
    target.add_argument("--model", default="openai/gpt-4o", help="model to request (default: %(default)s)")
    target.add_argument(
        "--max-tokens", type=int, help="max_tokens sent with each request (default: not sent)"
    )
    shape = parser.add_argument_group("load shape")
    shape.add_argument(
        "--scenario", choices=sorted(USER_CLASSES), default="stream", help="default: %(default)s"
    )
    shape.add_argument(
        "--workload",
        type=Path,
        metavar="FILE",
        help="a workload file (YAML; docs/load.md): the mix of chat, stream, tools and compression "
        "requests, prompt and output lengths, models; replaces --scenario",
    )
    shape.add_argument(
        "--transcript-sizes",
        default=",".join(DEFAULT_TRANSCRIPT_SIZES),
        metavar="SIZES",
        help="compression scenario: transcript sizes to cycle, from "
        f"{','.join(TRANSCRIPT_SIZES)} (default: %(default)s; 128k is heavy on a small machine)",
    )
    shape.add_argument(
        "--users", type=int, default=10, help="closed loop: concurrent users (default: %(default)s)"
    )
    shape.add_argument(
        "--arrival",
        choices=["closed", *ARRIVAL_MODES],
        default="closed",
        help="closed loop (users), or an open loop of constant or Poisson arrivals at --rate "
        "(default: %(default)s)",
    )
    shape.add_argument("--rate", type=float, help="open loop: scheduled requests per second")
    shape.add_argument(
        "--seed",
        type=int,
        default=1,
        help="seed of the arrival schedule and pair order (default: %(default)s)",
    )
    shape.add_argument(
        "--max-in-flight",
        type=int,
        default=1000,
        help="open loop: requests in flight per locust process at most (default: %(default)s)",
    )
    shape.add_argument(
        "--workers",
        type=int,
        default=1,
        help="locust worker processes under a master on this machine (default: %(default)s: one process)",
    )
    shape.add_argument(
        "--spawn-rate", type=float, default=10.0, help="users started per second (default: %(default)s)"
    )
    shape.add_argument(
        "--duration", default="30s", help="run time, e.g. 30s, 2m, 1m30s (default: %(default)s)"
    )
    shape.add_argument(
        "--request-timeout",
        default=None,
        help="longest a request may take, send to last byte (default: run time + stop timeout, at most 60s)",
    )
    shape.add_argument(
        "--stop-timeout",
        default="10s",
        help="time given to running requests when the run time is up (default: %(default)s)",
    )
    paired = parser.add_argument_group("paired run (what the target adds over a baseline)")
    paired.add_argument(
        "--baseline-url",
        help="base URL of the baseline: the mock provider directly (e.g. http://127.0.0.1:9000/v1) "
        "or another gateway; every request is sent to both",
    )
    paired.add_argument(
        "--baseline-model",
        help="model name the baseline takes (default: --model; the mock takes e.g. gpt-4o)",
    )
    paired.add_argument(
        "--baseline-api-key-env",
        metavar="NAME",
        help="variable holding the baseline's key (default: --api-key-env)",
    )
    gates = parser.add_argument_group("objectives and capacity")
    gates.add_argument("--slo", type=Path, metavar="FILE", help="SLO file (YAML; docs/load.md)")
    gates.add_argument(
        "--capacity",
        metavar="RATES",
        help="open loop: step the rate (START:STOP:STEP or R1,R2,...) until an SLO breaks; needs --slo",
    )
    gates.add_argument(
        "--step-duration", default="10s", help="capacity search: run time of each step (default: %(default)s)"
    )
    gates.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="open loop: first measure what this machine's load generator drives against the mock "
        "(--calibration-url, default the baseline) and mark the run invalid when the offered rate is over "
        f"{SAFE_FRACTION * 100:.0f} %% of it (default: on when a calibration URL is known)",
    )
    gates.add_argument("--calibration-url", help="the mock provider's base URL for calibration")
    mock = parser.add_argument_group("mock directive (for a gateproof mock behind the target)")
    mock.add_argument(
        "--mock-directive",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="append a [[gateproof ...]] directive to the prompt (default: on)",
    )
    mock.add_argument("--tokens", type=int, default=64, help="answer length in tokens (default: %(default)s)")
    mock.add_argument(
        "--ttft-ms", type=int, default=100, help="mock time to first token (default: %(default)s)"
    )
    mock.add_argument("--itl-ms", type=int, default=10, help="mock gap between tokens (default: %(default)s)")
    mock.add_argument("--cid", default="load", help="correlation id in the directive (default: %(default)s)")
    mock.add_argument(
        "--stamp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stream scenario: ask the mock to stamp every chunk (sequence and send time) to measure "
        "what the target does to chunks (default: on)",
    )
    mock.add_argument(
        "--directive",
        dest="directive_extra",
        action="append",
        type=_directive_pair,
        default=[],
        metavar="KEY=VALUE",
        help="extra directive key, repeatable (e.g. fault=no_done)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, help="results folder (default: reports/load-<UTC timestamp>/)")
    output.add_argument(
        "--max-failure-ratio",
        type=float,
        default=0.0,
        help="failed/total requests tolerated before exit code 1 (default: %(default)s)",
    )
    output.add_argument("--no-plot", dest="plot", action="store_false", help="do not draw the PNG plots")
    output.add_argument(
        "--no-records", dest="records", action="store_false", help="do not write requests.jsonl"
    )


def _fail(message: str) -> int:
    print(f"gateproof load: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(args: argparse.Namespace) -> int:
    try:
        check_loopback_url(args.base_url)
        for url in (args.baseline_url, args.calibration_url):
            if url:
                check_loopback_url(url)
        duration = parse_duration(args.duration)
        request_timeout = None if args.request_timeout is None else parse_duration(args.request_timeout)
        stop_timeout = parse_duration(args.stop_timeout)
        step_duration = parse_duration(args.step_duration)
        transcript_sizes = parse_transcript_sizes(args.transcript_sizes)
        slos = load_slos(args.slo) if args.slo else []
        if args.workload is not None:
            load_workload(args.workload, default_model=args.model)
        rates = parse_rates(args.capacity) if args.capacity else ()
    except ValueError as exc:
        return _fail(str(exc))
    open_loop = args.arrival != "closed"
    if open_loop and args.rate is None and not rates:
        return _fail("an open loop (--arrival constant or poisson) needs --rate")
    if args.rate is not None and not open_loop:
        return _fail("--rate sets an open loop's arrivals: give --arrival constant or poisson too")
    if rates and not open_loop:
        return _fail("--capacity steps an open loop's rate: give --arrival constant or poisson")
    if rates and not slos:
        return _fail("--capacity needs --slo (the objectives that decide where capacity ends)")
    if args.workers < 1 or args.max_in_flight < 1:
        return _fail("--workers and --max-in-flight must be positive")
    if args.users < 1 or args.spawn_rate <= 0:
        return _fail("--users and --spawn-rate must be positive")
    if args.max_tokens is not None and args.max_tokens < 1:
        return _fail("--max-tokens must be positive")
    if not 0.0 <= args.max_failure_ratio <= 1.0:
        return _fail("--max-failure-ratio must be between 0 and 1")
    if min(args.tokens, args.ttft_ms, args.itl_ms) < 0:
        return _fail("--tokens, --ttft-ms and --itl-ms must not be negative")
    if not os.environ.get(args.api_key_env):
        return _fail(f"environment variable {args.api_key_env} (the API key) is not set or empty")
    out: Path = args.out or Path("reports") / time.strftime("load-%Y%m%d-%H%M%S", time.gmtime())
    options = LoadOptions(
        base_url=args.base_url,
        out_dir=out,
        scenario="workload" if args.workload is not None else args.scenario,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=duration,
        model=args.model,
        max_tokens=args.max_tokens,
        api_key_env=args.api_key_env,
        use_directive=args.mock_directive,
        tokens=args.tokens,
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        cid=args.cid,
        directive_extra=dict(args.directive_extra),
        stop_timeout_s=stop_timeout,
        request_timeout_s=request_timeout,
        transcript_sizes=transcript_sizes,
        arrival=args.arrival,
        rate=args.rate if args.rate is not None else (rates[0] if rates else 0.0),
        seed=args.seed,
        max_in_flight=args.max_in_flight,
        baseline_url=args.baseline_url or "",
        baseline_model=args.baseline_model or "",
        baseline_api_key_env=args.baseline_api_key_env or "",
        stamp=args.stamp and args.scenario == "stream" and args.mock_directive,
        workers=args.workers,
        records=args.records,
        workload=args.workload,
    )
    line = ProgressLine(sys.stderr)
    shape = (
        f"{args.arrival} arrivals at {options.rate:g} req/s"
        if open_loop
        else f"{args.users} {args.scenario} users"
    )
    line(f"load: {shape} against {args.base_url} for {duration:g} s")
    calibration_url = args.calibration_url or args.baseline_url
    try:
        calibration = None
        if open_loop and calibration_url and args.calibrate is not False:
            calibration = calibrate(
                options,
                url=calibration_url,
                model=options.baseline_model or options.model,
                api_key_env=options.baseline_api_key_env or options.api_key_env,
                progress=line,
            )
        elif args.calibrate and not calibration_url:
            line.done()
            return _fail("--calibrate needs --calibration-url or --baseline-url (the mock provider)")
        if rates:
            result = _capacity_search(options, rates, slos, step_duration, args.max_failure_ratio, line)
        else:
            result = run_load(options, progress=line)
            _judge(result, slos, args.slo)
    except ValueError as exc:
        line.done()
        return _fail(str(exc))
    except LoadError as exc:
        line.done()
        print(f"gateproof load: {exc}", file=sys.stderr)
        if exc.result is not None:
            print_summary(exc.result, out)
        return EXIT_FAILURES
    line.done()
    if calibration is not None:
        result.calibration = calibration
        if not calibration.valid and not result.invalid:
            result.invalid = calibration.detail
    result.write_json(out / result.artifacts.get("result", "load.json"))
    if args.plot:
        write_plots(result, out)
    print_summary(result, out)
    return exit_code(result, args.max_failure_ratio)


def _judge(result: LoadResult, slos: list[Slo], slo_file: Path | None) -> None:
    if slos:
        result.slos = evaluate(slos, result)
        result.slo_file = str(slo_file)


def _capacity_search(
    options: LoadOptions,
    rates: tuple[float, ...],
    slos: list[Slo],
    step_duration: float,
    max_failure_ratio: float,
    line: ProgressLine,
) -> LoadResult:
    """Step the rate; the result is the highest step that met every SLO (else the first), with
    the search's steps attached."""
    results: dict[float, LoadResult] = {}

    def run_step(rate: float) -> LoadResult:
        line(f"load: capacity step at {rate:g} req/s for {step_duration:g} s")
        step = replace(
            options, rate=rate, duration_s=step_duration, out_dir=options.out_dir / f"step-{rate:g}"
        )
        result = run_load(step, progress=line)
        result.slos = evaluate(slos, result)
        results[rate] = result
        return result

    capacity = search_capacity(rates, run_step, slos, max_failure_ratio=max_failure_ratio)
    capacity.step_duration_s = step_duration
    chosen = results[capacity.capacity_rate] if capacity.capacity_rate is not None else results[min(results)]
    chosen.capacity = capacity
    chosen.slo_file = "" if not slos else chosen.slo_file
    last = capacity.steps[-1] if capacity.steps else None
    if last is not None and last.invalid and not chosen.invalid:
        chosen.invalid = f"capacity search stopped at {last.rate:g} req/s: {last.invalid}"
    line(f"load: {describe_capacity(capacity)}")
    return chosen


def write_plots(result: LoadResult, out: Path) -> None:
    """Draw the TTFT distribution and latency over time next to load.json (this command is where
    the load part and the reports part meet; the load runner itself never imports reports)."""
    from gateproof.reports import load_plots

    for name, render in load_plots(result).items():
        render(result, out / PLOT_NAMES[name])
        result.artifacts[f"plot_{name}"] = PLOT_NAMES[name]
    result.write_json(out / result.artifacts.get("result", "load.json"))


def exit_code(result: LoadResult, max_failure_ratio: float) -> int:
    """The documented code (``gateproof.load._exit_codes``): an invalid run first (its figures
    measure the generator), then an incomplete run or no request made, then a target that never
    answered, then failures over the budget, then a breached SLO."""
    if result.invalid:
        return EXIT_INVALID_RUN
    if result.error or result.requests == 0:
        return EXIT_FAILURES
    if result.responses == 0:
        return EXIT_UNREACHABLE
    if result.failures / result.requests > max_failure_ratio:
        return EXIT_FAILURES
    if any(not outcome.met for outcome in result.slos):
        return EXIT_SLO_BREACHED
    if result.capacity is not None and result.capacity.capacity_rate is None:
        return EXIT_SLO_BREACHED
    return EXIT_OK


def _seen(result: LoadResult) -> str | None:
    """One line on what came back when nothing good did, in the terms of what was seen."""
    if result.requests == 0:
        return "no request was made"
    if result.responses == 0:
        reasons = ", ".join(sorted(result.failure_reasons)) or "no reason recorded"
        return f"no request got an HTTP status line back ({reasons})"
    if result.failures == result.requests:
        return (
            f"the target answered {result.responses} of {result.requests} requests, and every request failed"
        )
    return None


def print_summary(result: LoadResult, out: Path, stream: TextIO | None = None) -> None:
    """A few lines: rate, TTFT and e2e percentiles, failures (with what each name means) and
    where the files are."""
    stream = stream or sys.stdout
    write = stream.write
    arrivals = result.arrivals
    shape = (
        f"{arrivals.mode} arrivals at {arrivals.offered_rate:g} req/s, {result.scenario}"
        if arrivals is not None
        else f"{result.users} {result.scenario} users"
    )
    if result.workers > 1:
        shape += f", {result.workers} workers"
    write(
        f"load: {result.requests} requests in {result.window_s:.1f} s = {result.requests_per_s:.1f} req/s, "
        f"{result.output_tokens_per_s:.0f} output tokens/s ({shape})\n"
    )
    if result.invalid:
        write(f"  INVALID RUN: {result.invalid}\n")
    if result.error:
        write(f"  incomplete: {result.error}; the counts are those locust last reported\n")
    for metric, label in (("ttft", "TTFT"), ("inter_chunk", "inter-chunk"), ("e2e", "e2e")):
        summary = result.latencies.get(metric)
        if summary is not None:
            write(
                f"  {label:<12} p50 {summary.p50:8.1f} ms   p99 {summary.p99:8.1f} ms   "
                f"max {summary.max:8.1f} ms   (n={summary.count})\n"
            )
    for text in compression_lines(result):
        write(f"  {text}\n")
    for text in depth_lines(result):
        write(f"  {text}\n")
    seen = _seen(result)
    if seen:
        write(f"  {seen}\n")
    if result.failures:
        ratio = result.failures / result.requests if result.requests else 1.0
        write(f"  failures: {result.failures} ({ratio:.1%}):\n")
        for reason, count in result.failure_reasons.items():
            write(f"    {reason} x{count}: {describe(reason)}\n")
    else:
        write("  failures: 0\n")
    write(f"  results: {out / result.artifacts.get('result', 'load.json')}\n")
    plots = [out / file for name, file in result.artifacts.items() if name.startswith("plot_")]
    if plots:
        write(f"  plots:   {', '.join(str(p) for p in plots)}\n")


def depth_lines(result: LoadResult) -> list[str]:
    """The open loop's schedule, the paired overhead, the chunk stamps, calibration, SLOs, capacity."""
    lines = []
    arrivals = result.arrivals
    if arrivals is not None:
        lag = f", lag p99 {arrivals.lag.p99:.1f} ms" if arrivals.lag is not None else ""
        lines.append(
            f"schedule: {arrivals.sent} of {arrivals.scheduled} sent, achieved {arrivals.achieved_rate:.1f} of "
            f"{arrivals.offered_rate:g} req/s, {arrivals.late_sends} late (> {arrivals.late_threshold_ms:g} ms){lag}"
        )
    paired = result.paired
    if paired is not None:
        timing = paired.provider_timing
        told = (
            f"; the provider was asked for TTFT {timing['ttft_ms']:g} ms, {timing['itl_ms']:g} ms between tokens"
            if timing
            else ""
        )
        lines.append(
            f"paired with {paired.baseline_url}: {paired.pairs} pairs ({paired.unmatched} unmatched){told}"
        )
        for metric, m in paired.metrics.items():
            lines.append(
                f"  added {metric:<11} p50 {m.p50.value:+.3f} ms [{m.p50.low:+.3f}, {m.p50.high:+.3f}]   "
                f"p99 {m.p99.value:+.3f} ms [{m.p99.low:+.3f}, {m.p99.high:+.3f}]   mean {m.mean.value:+.3f} ms"
            )
    transparency = result.transparency
    if transparency is not None:
        delay = transparency.chunk_delay
        lines.append(
            f"chunks: {transparency.chunks} stamped in {transparency.streams} streams, "
            f"{transparency.coalesced} coalesced, {transparency.split} split, {transparency.missing} missing, "
            f"{transparency.buffered_streams} buffered streams"
            + (f", delay p50 {delay.p50:.2f} / p99 {delay.p99:.2f} ms" if delay is not None else "")
        )
    if result.calibration is not None:
        lines.append(f"calibration: {result.calibration.detail}")
    for outcome in result.slos:
        value = "not measured" if outcome.value is None else f"{outcome.value:g}"
        label = outcome.name or outcome.metric
        lines.append(
            f"SLO {'met' if outcome.met else 'BREACHED'}: {label} {outcome.op} {outcome.threshold:g} "
            f"{outcome.unit} (measured {value})"
        )
    if result.capacity is not None:
        lines.append(describe_capacity(result.capacity))
    return lines


def compression_lines(result: LoadResult) -> list[str]:
    """One line per compression cell: server time_ms next to the client's latency, and the reduction."""
    if result.compression is None:
        return []
    lines = []
    for cell in result.compression.cells:
        t, c = cell.time_ms, cell.latency
        lines.append(
            f"compression {cell.endpoint:<8} {cell.size:>4} ({cell.original_tokens:,} tokens): "
            f"time_ms p50 {t.p50:.1f} / p99 {t.p99:.1f} ms, client p50 {c.p50:.1f} / p99 {c.p99:.1f} ms, "
            f"gap p50 {cell.gap.p50:.1f} ms, reduction {cell.mean_reduction:.1f} % (n={cell.count})"
        )
    if not lines:
        lines.append("compression: no request was measured")
    return lines
