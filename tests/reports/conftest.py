"""Synthetic results for the report tests: every outcome, every layer, a load run, and planted secrets.

The reports part renders results only, so its tests build results by hand instead of
running the suite; the values are shaped like what the contract and load runners produce.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from gateproof.contract.results import (
    CheckResult,
    ClientImpact,
    Exchange,
    ImpactVerdict,
    Layer,
    Outcome,
    RawResponse,
    RunResult,
    Severity,
)
from gateproof.load.results import (
    ArrivalResult,
    Calibration,
    CapacityResult,
    CapacityStep,
    Estimate,
    LatencySummary,
    LoadResult,
    OverheadMetric,
    PairedResult,
    SloOutcome,
    StreamTransparency,
    TimelinePoint,
)

#: planted in headers, an echoed body and a URL; none may reach any report file
SECRETS = (
    "sk-live-FAKE0123456789abcdef",
    "FAKE-XAPI-KEY-998877",
    "azure-FAKE-5544332211",
    "AIzaFAKEgoogleKey000000000000000000",
)

CHAT = "POST /v1/chat/completions"
STARTED = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


def _result(
    check: str,
    layer: Layer,
    scenario: str,
    outcome: Outcome,
    *,
    reason: str = "",
    required: bool = True,
    expected: str = "",
    actual: str = "",
    exchange: Exchange | None = None,
    duration_ms: float = 12.5,
    route: str = CHAT,
) -> CheckResult:
    return CheckResult(
        check=check,
        description=f"{check.replace('_', ' ')}: what the spec demands of it",
        layer=layer,
        profile="edgee",
        target="reference",
        route=route,
        scenario=scenario,
        outcome=outcome,
        required=required,
        expected=expected,
        actual=actual,
        reason=reason,
        exchange=exchange,
        duration_ms=duration_ms,
    )


def leaky_exchange() -> Exchange:
    """An exchange as a careless producer might record it: credentials in clear everywhere."""
    return Exchange(
        method="POST",
        url=f"http://127.0.0.1:8080/v1/chat/completions?key={SECRETS[3]}",
        request_headers={
            "Authorization": f"Bearer {SECRETS[0]}",
            "x-api-key": SECRETS[1],
            "api-key": SECRETS[2],
            "content-type": "application/json",
        },
        request_body={
            "model": "openai/gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "api_key": SECRETS[0],
        },
        status=400,
        response_headers={"content-type": "application/json"},
        response_body={
            "error": {
                "message": f"key {SECRETS[1]} is not valid <b>here</b>",
                "type": "invalid_request_error",
                "code": None,
                "param": None,
            }
        },
        elapsed_ms=8.25,
    )


def make_run() -> RunResult:
    """Four layers, every outcome, one advisory failure, one failure carrying a leaky exchange."""
    results = [
        _result("response_schema_conformance", Layer.PROPERTY, "generated #1", Outcome.PASSED),
        _result("response_schema_conformance", Layer.PROPERTY, "generated #2", Outcome.PASSED),
        _result(
            "response_schema_conformance",
            Layer.PROPERTY,
            "generated #3",
            Outcome.FAILED,
            reason="response body does not match ChatCompletion: 'id' is a required property",
            expected="a ChatCompletion object",
            actual="{'object': 'chat.completion'}",
        ),
        _result(
            "error_envelope_conforms",
            Layer.SCENARIO,
            "bad_model_id",
            Outcome.FAILED,
            reason="error.code is null, expected 'bad_model_id'",
            expected="400 invalid_request_error / bad_model_id",
            actual=f"400 with key {SECRETS[1]} echoed <script>alert(1)</script>",
            exchange=leaky_exchange(),
        ),
        _result("error_envelope_conforms", Layer.SCENARIO, "unknown_route", Outcome.PASSED),
        _result(
            "provider_header_present",
            Layer.SCENARIO,
            "basic_chat",
            Outcome.FAILED,
            required=False,
            reason="X-Edgee-Provider header missing",
        ),
        _result(
            "compression_fields",
            Layer.SCENARIO,
            "compression_on",
            Outcome.NOT_APPLICABLE,
            reason="profile openai-compatible has no compression",
        ),
        _result(
            "usage_on_final_chunk",
            Layer.STREAM,
            "stream_with_usage",
            Outcome.ERROR,
            reason="read timed out after 30 s\nwhile waiting for the next chunk",
        ),
        _result("terminal_done_sentinel", Layer.STREAM, "stream_basic", Outcome.PASSED),
        _result("load_error_rate", Layer.LOAD, "chat_stream", Outcome.PASSED, route="load"),
    ]
    return RunResult(
        run_id="run-20260101-000000",
        target="reference",
        base_url="http://127.0.0.1:8080",
        profile="edgee",
        started_at=STARTED,
        finished_at=STARTED + 42.0,
        results=results,
        metadata={"gateproof": "0.1.0", "layers": ["property", "scenario", "stream", "load"]},
    )


#: in a result's raw bytes only: no report may ever render it
RAW_MARKER = "RAW-BYTES-NEVER-RENDERED-4711"
SDK = "openai-python 1.99.0: chat.completions.create()"


def _exchange(scenario: str, elapsed_ms: float) -> Exchange:
    return Exchange(
        method="POST",
        url=f"http://127.0.0.1:8080/v1/chat/completions#{scenario}",
        request_headers={"content-type": "application/json"},
        request_body={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": scenario}]},
        status=400,
        response_headers={"content-type": "application/json"},
        response_body={"error": {"message": "bad", "type": "invalid_request_error", "code": None}},
        elapsed_ms=elapsed_ms,
    )


def make_graded_run(*, strict: bool = False) -> RunResult:
    """Results as the 1.1 runner fills them: severities, client impact, skipped, property cases.

    Two failures of one check with one reason (details differ only in quoted values) are one
    root cause; a warning is another; a property check failed in 7 of 300 cases is the third.
    """
    envelope = "error_envelope_conforms"
    bad_model = _exchange("bad_model_id", 8.25)
    basic = _exchange("basic_chat", 120.0)
    results = [
        dataclasses.replace(
            _result(
                envelope,
                Layer.SCENARIO,
                "bad_model_id",
                Outcome.FAILED,
                reason="error.code is null for 'bad_model_id'",
                exchange=bad_model,
            ),
            severity=Severity.ERROR,
            impact=(ClientImpact(SDK, ImpactVerdict.FIELD_LOST, "BadRequestError.code is None"),),
            raw=RawResponse(status=400, headers=(), body=RAW_MARKER.encode(), stream=False),
        ),
        dataclasses.replace(
            _result(
                envelope,
                Layer.SCENARIO,
                "bad_role",
                Outcome.FAILED,
                reason="error.code is null for 'bad_role'",
                exchange=_exchange("bad_role", 5.5),
            ),
            severity=Severity.ERROR,
            impact=(ClientImpact(SDK, ImpactVerdict.FIELD_LOST, "BadRequestError.code is None"),),
        ),
        dataclasses.replace(
            _result(
                "error_type_matches", Layer.SCENARIO, "bad_model_id", Outcome.SKIPPED, exchange=bad_model
            ),
            because=envelope,
            reason=f"{envelope} failed on the same answer",
        ),
        dataclasses.replace(
            _result(
                "usage_details_present",
                Layer.SCENARIO,
                "basic_chat",
                Outcome.FAILED,
                reason="usage.prompt_tokens_details is missing",
                exchange=basic,
            ),
            severity=Severity.WARNING,
            impact=(ClientImpact(SDK, ImpactVerdict.PARSED, "usage parsed; prompt_tokens_details is None"),),
        ),
        _result("content_type_json", Layer.SCENARIO, "basic_chat", Outcome.PASSED, exchange=basic),
        dataclasses.replace(
            _result(
                "response_schema_conformance",
                Layer.PROPERTY,
                "generated",
                Outcome.FAILED,
                reason="7 of 300 generated cases failed; first: 'id' is a required property",
                duration_ms=2400.0,
            ),
            severity=Severity.ERROR,
            cases=300,
            failed_cases=7,
        ),
        dataclasses.replace(
            _result(
                "status_code_conformance", Layer.PROPERTY, "generated", Outcome.PASSED, duration_ms=2400.0
            ),
            cases=300,
        ),
        dataclasses.replace(
            _result(
                "response_schema_conformance",
                Layer.PROPERTY,
                "generated",
                Outcome.PASSED,
                route="GET /v1/models",
                duration_ms=300.0,
            ),
            cases=50,
        ),
    ]
    return RunResult(
        run_id="run-graded",
        target="reference",
        base_url="http://127.0.0.1:8080",
        profile="edgee",
        started_at=STARTED,
        finished_at=STARTED + 12.0,
        results=results,
        metadata={
            "property_operations": {
                CHAT: {"cases": 300, "seconds": 2.4},
                "GET /v1/models": {"cases": 50, "seconds": 0.3},
            }
        },
        strict=strict,
    )


def make_warnings_only_run(*, strict: bool = False) -> RunResult:
    """Only a warning failed (and an advisory check): a pass that needs attention, a failure with --strict."""
    run = make_graded_run(strict=strict)
    run.results = [r for r in run.results if r.outcome is Outcome.PASSED or r.severity is Severity.WARNING]
    return run


#: the mock dialects, in the order the runner reaches them (the first is the primary route)
PROVIDERS = ("openai", "anthropic", "gemini")


def _routed(
    check: str, layer: Layer, family: str, provider: str, outcome: Outcome, *, reason: str = ""
) -> CheckResult:
    """A result of a per-provider scenario, named as the runner names it (plain on the primary route)."""
    scenario = family if provider == PROVIDERS[0] else f"{family}[{provider}]"
    return dataclasses.replace(_result(check, layer, scenario, outcome, reason=reason), provider=provider)


def make_provider_run(providers: tuple[str, ...] = PROVIDERS) -> RunResult:
    """Per-provider scenarios on each route, plus property and single-route results (provider "").

    On anthropic, usage is lost on ``chat_basic`` (two failures, one skipped check); on gemini,
    the stream of ``chat_stream`` could not be read (an error); everything else passes.
    """
    results = [
        _result("status_code_conformance", Layer.PROPERTY, "generated", Outcome.PASSED),
        _result("error_envelope_conforms", Layer.SCENARIO, "bad_model_id", Outcome.PASSED),
    ]
    for provider in providers:
        anthropic = provider == "anthropic"
        results += [
            _routed("content_type_json", Layer.SCENARIO, "chat_basic", provider, Outcome.PASSED),
            _routed(
                "usage_matches_truth",
                Layer.SCENARIO,
                "chat_basic",
                provider,
                Outcome.FAILED if anthropic else Outcome.PASSED,
                reason="usage.completion_tokens is 0, the provider billed 12" if anthropic else "",
            ),
            _routed(
                "usage_details_present",
                Layer.SCENARIO,
                "chat_basic",
                provider,
                Outcome.FAILED if anthropic else Outcome.PASSED,
                reason="usage.prompt_tokens_details is missing" if anthropic else "",
            ),
            dataclasses.replace(
                _routed(
                    "cached_tokens_reported",
                    Layer.SCENARIO,
                    "chat_basic",
                    provider,
                    Outcome.SKIPPED if anthropic else Outcome.PASSED,
                ),
                because="usage_details_present" if anthropic else "",
            ),
            _routed(
                "terminal_done_sentinel",
                Layer.STREAM,
                "chat_stream",
                provider,
                Outcome.ERROR if provider == "gemini" else Outcome.PASSED,
                reason="read timed out after 30 s" if provider == "gemini" else "",
            ),
            _routed("usage_on_final_chunk", Layer.STREAM, "chat_stream", provider, Outcome.PASSED),
            _routed(
                "compression_fields",
                Layer.SCENARIO,
                "chat_basic",
                provider,
                Outcome.NOT_APPLICABLE,
                reason="profile openai-core has no compression",
            ),
        ]
    return RunResult(
        run_id="run-providers",
        target="reference",
        base_url="http://127.0.0.1:8080",
        profile="edgee",
        started_at=STARTED,
        finished_at=STARTED + 20.0,
        results=results,
    )


def make_unreachable_run() -> RunResult:
    return RunResult(
        run_id="run-unreachable",
        target="staging",
        base_url="http://127.0.0.1:9",
        profile="edgee",
        started_at=STARTED,
        finished_at=STARTED + 1.0,
        unreachable="connection refused on http://127.0.0.1:9",
    )


def _summary(metric: str, scale: float) -> LatencySummary:
    return LatencySummary(
        metric=metric,
        count=1200,
        min=scale * 0.4,
        mean=scale * 1.1,
        p50=scale,
        p90=scale * 1.6,
        p95=scale * 1.9,
        p99=scale * 2.7,
        max=scale * 4.0,
    )


def make_load() -> LoadResult:
    """A 30-second streaming run: a latency bump at t=20 s and a few failures."""
    timeline = []
    for second in range(30):
        bump = 1.8 if 20 <= second < 24 else 1.0
        timeline.append(
            TimelinePoint(
                t=float(second),
                requests=40 + (second % 5),
                failures=2 if second in (21, 22) else 0,
                e2e_p50_ms=420.0 * bump,
                e2e_p95_ms=610.0 * bump,
                ttft_p50_ms=None if second == 0 else 85.0 * bump + 5 * math.sin(second),
            )
        )
    histogram = [
        (float(upper), count)
        for upper, count in zip(
            range(20, 401, 20),
            [0, 3, 12, 60, 180, 260, 240, 170, 110, 60, 40, 25, 14, 9, 6, 4, 3, 2, 1, 1],
            strict=True,
        )
    ]
    return LoadResult(
        scenario="chat_stream",
        base_url="http://127.0.0.1:8080",
        users=32,
        spawn_rate=8.0,
        duration_s=30.0,
        requests=1268,
        failures=4,
        failure_reasons={"stream error event: provider_error": 3, "HTTP 502": 1},
        requests_per_s=42.3,
        output_tokens_per_s=2150.0,
        latencies={
            "ttft": _summary("ttft", 92.0),
            "ttfb": _summary("ttfb", 40.0),
            "inter_chunk": _summary("inter_chunk", 4.2),
            "e2e": _summary("e2e", 430.0),
        },
        ttft_histogram=histogram,
        timeline=timeline,
        histogram="HdrHistogram, 3 significant digits",
        started_at=STARTED + 50.0,
        finished_at=STARTED + 80.0,
        output_tokens=64_500,
        responses=1267,
        window_s=29.97,
        settings={"model": "openai/gpt-4o-mini", "max_tokens": "64", "api key from": "GATEPROOF_API_KEY"},
    )


def _estimate(value: float, spread: float) -> Estimate:
    return Estimate(value=value, low=value - spread, high=value + spread)


def _overhead(metric: str, p50: float, tail: float) -> OverheadMetric:
    """Added ms whose median is ``p50`` and whose p99 is ``tail``, with a 100-point CDF."""
    cdf = [(i / 100, p50 + (tail - p50) * (i / 100) ** 6 - 0.4 * (1 - i / 100) ** 4) for i in range(101)]
    return OverheadMetric(
        metric=metric,
        count=2400,
        mean=_estimate(p50 * 1.2, p50 * 0.08),
        p50=_estimate(p50, p50 * 0.1),
        p90=_estimate(p50 * 1.6, p50 * 0.2),
        p99=_estimate(tail, tail * 0.15),
        p999=_estimate(tail * 2.5, tail * 0.8),
        cdf=cdf,
    )


def _leg_cdf(median: float, width: float) -> list[tuple[float, float]]:
    return [(median + width * math.tan(math.pi * (i / 100 - 0.5) * 0.9), i / 100) for i in range(101)]


def make_paired_load() -> LoadResult:
    """An open-loop paired stream run with an SLO file, a capacity search and calibration.

    The mock was configured for a 100 ms TTFT and 20 ms between tokens; the gateway adds about
    2.6 ms end to end and 3.6 ms to TTFT (both intervals exclude 0), coalesces 12 chunks and
    buffers 2 streams; one of the three SLOs (p99 added TTFT <= 5 ms) is breached.
    """
    load = dataclasses.replace(make_load(), scenario="stream", failures=0, failure_reasons={}, responses=1268)
    load.latencies = {**load.latencies, "e2e": _summary("e2e", 403.0), "ttft": _summary("ttft", 104.0)}
    load.arrivals = ArrivalResult(
        mode="poisson",
        offered_rate=40.0,
        seed=7,
        scheduled=1200,
        sent=1200,
        achieved_rate=39.6,
        late_sends=3,
        late_threshold_ms=10.0,
        lag=_summary("lag", 0.8),
    )
    load.paired = PairedResult(
        baseline_url="http://127.0.0.1:9100",
        baseline_model="gpt-4o-mini",
        pairs=2400,
        unmatched=6,
        confidence=0.95,
        resamples=2000,
        metrics={
            "e2e": _overhead("e2e", 2.61, 4.8),
            "ttft": _overhead("ttft", 3.6, 7.2),
            "inter_chunk": _overhead("inter_chunk", 0.02, 0.9),
        },
        baseline={"e2e": _summary("e2e", 400.0), "ttft": _summary("ttft", 100.5)},
        baseline_requests=1203,
        baseline_failures=0,
        baseline_cdf={"e2e": _leg_cdf(400.0, 8.0), "ttft": _leg_cdf(100.5, 2.0)},
        target_cdf={"e2e": _leg_cdf(403.0, 9.0), "ttft": _leg_cdf(104.0, 2.5)},
        provider_timing={"ttft_ms": 100.0, "itl_ms": 20.0, "tokens": 16.0},
    )
    load.transparency = StreamTransparency(
        streams=1200,
        chunks=19_200,
        coalesced=12,
        split=0,
        missing=0,
        buffered_streams=2,
        chunk_delay=_summary("chunk_delay", 3.1),
        baseline_chunk_delay=_summary("chunk_delay", 0.4),
        added_chunk_delay=_overhead("chunk_delay", 2.7, 6.0),
    )
    load.slo_file = "slo.yaml"
    load.slos = [
        SloOutcome(metric="overhead.ttft.p99.high", op="<=", threshold=5.0, value=7.2, met=False,
                   name="p99 added TTFT", unit="ms"),
        SloOutcome(metric="error_rate", op="<=", threshold=0.001, value=0.0, met=True, name="error rate",
                   unit="ratio"),
        SloOutcome(metric="requests_per_s", op=">=", threshold=35.0, value=39.6, met=True, unit="req/s"),
    ]  # fmt: skip
    load.capacity = CapacityResult(
        steps=[
            CapacityStep(rate=20.0, achieved_rate=19.9, requests=199, failures=0, goodput=19.9, met=True),
            CapacityStep(rate=40.0, achieved_rate=39.7, requests=397, failures=0, goodput=39.7, met=True),
            CapacityStep(
                rate=80.0,
                achieved_rate=71.2,
                requests=712,
                failures=9,
                goodput=70.3,
                met=False,
                breaches=["overhead.ttft.p99.high", "error_rate"],
            ),
        ],
        capacity_rate=40.0,
        goodput=39.7,
        step_duration_s=10.0,
    )
    load.calibration = Calibration(
        url="http://127.0.0.1:9100", max_rate=900.0, safe_fraction=0.5, offered_rate=40.0, valid=True
    )
    load.workers = 2
    return load


@pytest.fixture
def graded_run() -> RunResult:
    return make_graded_run()


@pytest.fixture
def run() -> RunResult:
    return make_run()


@pytest.fixture
def provider_run() -> RunResult:
    return make_provider_run()


@pytest.fixture
def openai_only_run() -> RunResult:
    """The same suite against a gateway with one route: every per-provider result is on openai."""
    return make_provider_run(("openai",))


@pytest.fixture
def unreachable_run() -> RunResult:
    return make_unreachable_run()


@pytest.fixture
def load() -> LoadResult:
    return make_load()


@pytest.fixture
def planted_secrets() -> tuple[str, ...]:
    return SECRETS
