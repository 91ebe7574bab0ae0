"""`gateproof run`: the main job on the embedded default target.

Starts the mock provider and the reference gateway on free loopback ports, sends
one streamed request through them with the openai SDK (printed as it arrives), runs
the conformance suite (edgee profile, wired to the mock's journal), a short
streaming load run and a shorter compression load phase (agent transcripts with
compression on, to chat completions and /v1/compress: the gateway's time_ms next to
the client's latency, shown in the report's load section), writes ``reports/<run-id>/`` (index.html, summary.md,
junit.xml, results.json, plots), prints a summary and the report's path, and
stops every process it started, also on Ctrl-C, on SIGTERM and on failure.

Every key of the run (the gateway's three client keys, the upstream key if set,
the wrong keys the auth scenarios make up) is redacted from the report and the
terminal, in every encoding.

The verdict is the one the reports show (``gateproof.reports.verdict``): FAIL when
a required check failed with severity error or could not be evaluated, when any
load request failed or the load run broke down, and, with --strict, on any warning;
NEEDS ATTENTION (still exit 0) for warnings without --strict and advisory failures;
PASS otherwise. The exit code, the terminal summary, index.html, summary.md and
junit.xml all say the same.

Exit codes: 0 PASS or NEEDS ATTENTION; 1 FAIL (a check, the load run, or a warning
with --strict); 3 a local server did not start; 130 interrupted (Ctrl-C), 143 on
SIGTERM: the servers are stopped first, and the report written then says interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gateproof.cli.launch import (
    API_KEY_ENV,
    KEY_ENVS,
    STACK_FALLBACK_MODEL,
    STACK_PROVIDERS,
    STACK_TIMEOUTS,
    UPSTREAM_KEY_ENV,
    UPSTREAM_KEY_ENVS,
    UPSTREAM_ROLE,
    UPSTREAMS,
    LaunchError,
    local_stack,
)
from gateproof.cli.progress import ProgressLine
from gateproof.cli.smoke import DEFAULT_PROMPT, stream_once

if TYPE_CHECKING:
    from gateproof.contract.results import RunResult
    from gateproof.load.results import CompressionResult, LoadResult
    from gateproof.reports import Verdict

__all__ = ["DESCRIPTION", "HELP", "configure", "main"]

HELP = (
    "the main job: start mock + reference gateway, run the conformance suite and a load run, write the report"
)
DESCRIPTION = __doc__ or HELP


def _duration(text: str) -> float:
    from gateproof.load import parse_duration

    return parse_duration(text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reports-dir",
        type=Path,
        default=Path("reports"),
        help="where run folders go (default: %(default)s)",
    )
    parser.add_argument(
        "--load-duration", default="15s", help="length of the load run, at most 30s (default: %(default)s)"
    )
    parser.add_argument("--users", type=int, default=16, help="concurrent load users (default: %(default)s)")
    parser.add_argument("--no-load", action="store_true", help="skip the load run")
    parser.add_argument(
        "--no-compression-load",
        dest="compression_load",
        action="store_false",
        help="skip the compression load phase (2 users, 5 s, transcripts of 1k, 8k and 32k tokens)",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=100,
        help="property-layer examples per operation (default: %(default)s)",
    )
    parser.add_argument(
        "--fault", help="start the reference gateway with this fault (self-test of the suite)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="warnings (failures the official clients tolerate) fail the run too",
    )


#: root causes and errors listed in the terminal; the report has every one
_MAX_PRINTED = 20


def _print_verdict(
    verdict: Verdict, run: RunResult | None, load: LoadResult | None, scrub: Callable[[str], str]
) -> None:
    """The terminal summary: the verdict with its headline and reasons, the root causes, the load figures."""
    from gateproof.contract.results import Outcome
    from gateproof.reports.verdict import run_headline

    out = sys.stdout
    headline = ""
    if run is not None and not run.interrupted and run.unreachable is None:
        headline = f": {run_headline(run)} ({run.profile} profile, {run.finished_at - run.started_at:.1f} s)"
    print(f"{verdict.label}{headline}", file=out)
    if run is not None:
        from gateproof.reports import failure_matrix_headline, provider_headline

        routes = provider_headline(run.results)
        if routes:
            print(f"  {routes}", file=out)
        matrix = failure_matrix_headline(run.results)
        if matrix:
            print(f"  {scrub(matrix)}", file=out)
    for line in verdict.failures:
        print(f"  FAIL  {scrub(line)}", file=out)
    for line in verdict.notes:
        print(f"  NOTE  {scrub(line)}", file=out)
    if run is not None:
        causes = run.root_causes()
        for cause in causes[:_MAX_PRINTED]:
            kind = cause.severity.value if cause.severity is not None else "error"
            if not any(r.required for r in cause.results):
                kind = "advisory"
            count = len(cause.results)
            print(
                f"  {kind.upper():8} {cause.check} ({count} failure{'s' if count != 1 else ''}): "
                f"{scrub(cause.reason)}",
                file=out,
            )
        errors = [r for r in run.results if r.outcome is Outcome.ERROR]
        for result in errors[:_MAX_PRINTED]:
            print(f"  {'NOT RUN':8} {result.check} [{result.scenario}] {scrub(result.reason)}", file=out)
        hidden = max(len(causes) - _MAX_PRINTED, 0) + max(len(errors) - _MAX_PRINTED, 0)
        if hidden:
            print(f"  ... {hidden} more in the report", file=out)
    if load is not None:
        ttft = load.latencies.get("ttft")
        ttft_text = f"TTFT p50 {ttft.p50:.1f} ms / p99 {ttft.p99:.1f} ms" if ttft else "no TTFT"
        print(
            f"load: {load.requests} requests, {load.requests_per_s:.1f} req/s, {ttft_text}, "
            f"{load.failures} failures",
            file=out,
        )
        from gateproof.load.cli import compression_lines, depth_lines

        for line in [*depth_lines(load), *compression_lines(load)]:
            print(f"  {scrub(line)}", file=out)


#: the compression load phase of the main job: short, and light enough for a 2-core machine
_COMPRESSION_USERS = 2
_COMPRESSION_SECONDS = 5.0
_COMPRESSION_SIZES = ("1k", "8k", "32k")


def _compression_phase(base_url: str, out: Path, progress: Callable[[str], None]) -> CompressionResult:
    """Run the compression scenario briefly and return its section, marked as attached.

    It is its own locust run (so the stream run's figures stay the stream's alone); its
    section joins the stream run's result, and its failures count in the verdict on their own.
    """
    from gateproof.load import LoadError, LoadOptions, run_load
    from gateproof.load.results import CompressionResult

    progress(f"load: compression phase, {_COMPRESSION_USERS} users for {_COMPRESSION_SECONDS:.0f} s")
    options = LoadOptions(
        base_url=base_url,
        api_key_env=API_KEY_ENV,
        users=_COMPRESSION_USERS,
        spawn_rate=float(_COMPRESSION_USERS),
        duration_s=_COMPRESSION_SECONDS,
        scenario="compression",
        out_dir=out,
        stop_timeout_s=5.0,
        transcript_sizes=_COMPRESSION_SIZES,
        # short, quick answers: the phase is about the prompt's way through, not the model's time
        tokens=8,
        ttft_ms=20,
        itl_ms=2,
    )
    try:
        result = run_load(options, progress=progress)
    except LoadError as exc:
        counted = exc.result
        section = CompressionResult(
            sizes=list(_COMPRESSION_SIZES),
            users=_COMPRESSION_USERS,
            duration_s=_COMPRESSION_SECONDS,
            requests=counted.requests if counted is not None else 0,
            failures=counted.failures if counted is not None else 0,
            failure_reasons=dict(counted.failure_reasons) if counted is not None else {},
            error=str(exc),
        )
    else:
        section = result.compression or CompressionResult(
            sizes=list(_COMPRESSION_SIZES),
            users=_COMPRESSION_USERS,
            duration_s=_COMPRESSION_SECONDS,
            error="the compression run measured nothing",
        )
    section.attached = True
    return section


def main(args: argparse.Namespace) -> int:
    from openai import OpenAIError

    from gateproof.contract import TargetConfig, run_contract
    from gateproof.contract.checks import Profile
    from gateproof.contract.results import RunResult, Scrubber
    from gateproof.load.results import LoadResult
    from gateproof.reports import verdict_of, write_report

    try:
        load_seconds = _duration(args.load_duration)
    except ValueError as exc:
        print(f"gateproof run: {exc}", file=sys.stderr)
        return 2
    if not 1 <= load_seconds <= 30:
        print("gateproof run: --load-duration must be between 1s and 30s", file=sys.stderr)
        return 2
    progress = ProgressLine()
    run_id = time.strftime("run-%Y%m%d-%H%M%S", time.gmtime())
    out = args.reports_dir / run_id
    out.mkdir(parents=True, exist_ok=True)
    gateway_args = ["--fault", args.fault] if args.fault else []
    name = "reference-gateway" + (f" (fault {args.fault})" if args.fault else "")
    started_at = time.time()
    run: RunResult | None = None
    load_result: LoadResult | None = None
    #: every key value of this run, for the report and the terminal to be scrubbed of
    secrets: list[str] = [value for value in map(os.environ.get, UPSTREAM_KEY_ENVS) if value]
    base_url = ""
    try:
        progress("starting the mock provider and the reference gateway")
        with local_stack(log_dir=out / "logs", gateway_args=gateway_args) as stack:
            secrets += stack.keys.values()
            base_url = stack.base_url
            for role, env in KEY_ENVS.items():
                os.environ[env] = stack.keys[role]
            progress("smoke: one streamed request, openai SDK -> reference gateway -> mock provider")
            progress.done()
            stream_once(stack.base_url, stack.api_key, "openai/gpt-4o", DEFAULT_PROMPT, sys.stdout)
            config = TargetConfig(
                base_url=stack.base_url,
                api_key_env=API_KEY_ENV,
                profile=Profile.EDGEE,
                name=name,
                inactive_key_env=KEY_ENVS["inactive"],
                restricted_key_env=KEY_ENVS["restricted"],
                restricted_model="openai/gpt-4o",
                mock_url=stack.mock.url,
                upstream_key_env=UPSTREAM_KEY_ENV,
                request_log=str(stack.request_log),
                property_examples=args.max_examples,
                providers=dict(STACK_PROVIDERS),
                # what the stack's gateway declares for the failure matrix (D46, D44)
                timeouts=dict(STACK_TIMEOUTS),
                fallback_model=STACK_FALLBACK_MODEL,
            ).validate()
            run = run_contract(config, progress=progress)
            run.run_id = run_id
            run.strict = args.strict
            if not args.no_load:
                from gateproof.load import LoadError, LoadOptions, run_load

                progress(f"load: {args.users} streaming users for {load_seconds:.0f} s, paired with the mock")
                # paired with the provider itself: every request also goes straight to the mock, so
                # the report shows what the gateway added, not only what the client waited
                os.environ[UPSTREAM_KEY_ENV] = stack.keys[UPSTREAM_ROLE]
                try:
                    load_result = run_load(
                        LoadOptions(
                            base_url=stack.base_url,
                            api_key_env=API_KEY_ENV,
                            users=args.users,
                            spawn_rate=float(args.users),
                            duration_s=load_seconds,
                            scenario="stream",
                            out_dir=out / "load",
                            baseline_url=stack.mock.url + "/v1",
                            baseline_model=UPSTREAMS[0].model.split("/", 1)[1],
                            baseline_api_key_env=UPSTREAM_KEY_ENV,
                            stamp=True,
                        ),
                        progress=progress,
                    )
                except LoadError as exc:
                    # The contract results still stand; the load part reports what broke down
                    # (and what was counted before), and the run cannot pass.
                    progress.done()
                    print(f"gateproof run: the load run broke down: {Scrubber(secrets).text(str(exc))}",
                          file=sys.stderr)  # fmt: skip
                    # The part keeps what was counted; with nothing counted it still says what broke.
                    load_result = exc.result or LoadResult(
                        scenario="stream",
                        base_url=stack.base_url,
                        users=args.users,
                        spawn_rate=float(args.users),
                        duration_s=load_seconds,
                    )
                    load_result.error = load_result.error or str(exc)
                if args.compression_load:
                    load_result.compression = _compression_phase(
                        stack.base_url, out / "load-compression", progress
                    )
    except LaunchError as exc:
        progress.done()
        print(f"gateproof run: {Scrubber(secrets).text(str(exc))}", file=sys.stderr)
        return 3
    except OpenAIError as exc:
        progress.done()
        print(
            "gateproof run: the smoke request through the reference gateway failed: "
            + Scrubber(secrets).text(str(exc)),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        # Every server is stopped by now (local_stack, the load runner). What ran is reported as
        # an interrupted run, which can never read as a pass.
        progress.done()
        print("gateproof run: interrupted; every server it started has been stopped", file=sys.stderr)
        if run is None:
            run = RunResult(
                run_id=run_id,
                target=name,
                base_url=base_url,
                profile=Profile.EDGEE.value,
                started_at=started_at,
                strict=args.strict,
            )
        run.interrupted = True
        run.finished_at = run.finished_at or time.time()
        files = write_report(out, run, load_result, secrets=secrets)
        print(f"report (interrupted run): {files.index_html}", file=sys.stderr)
        return verdict_of(run, load_result).exit_code
    progress("writing the report")
    files = write_report(out, run, load_result, secrets=secrets)
    progress.done()
    verdict = verdict_of(run, load_result)
    _print_verdict(verdict, run, load_result, Scrubber(secrets).text)
    print(f"report: {files.index_html}")
    return verdict.exit_code
