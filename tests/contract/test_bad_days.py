"""The failure matrix (D48): its cells against the reference stack, and its checks on made-up answers.

The stack runs the gateway with 2-second first-byte and idle timeouts (``STACK_LIMITS``) and a
model with a fallback (``openai/gpt-4.1``), which the target config declares as the suite's
``timeouts`` and ``fallback_model``; every cell must pass in both profiles, and the whole matrix
must stay within its wall-time budget. The checks are then held to failing on the answers the
faulty gateways of the self-test produce, written out by hand.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import STACK_PROVIDERS, LocalServer, LocalStack
from gateproof.contract import ConfigError, Layers, RunOptions, TargetConfig, load_target_config, run_contract
from gateproof.contract._bad_days import (
    BAD_DAY_ROWS,
    MAX_UPSTREAM_ATTEMPTS,
    STALL,
    BadDay,
    played,
    unplayable,
)
from gateproof.contract._profiles import validators_for
from gateproof.contract._scenarios import SCENARIOS, Scenario, for_providers
from gateproof.contract.checks import (
    CHECKS,
    CheckContext,
    CheckFailed,
    NotApplicable,
    Observed,
    Profile,
    Redundant,
    load_all_checks,
)
from gateproof.contract.results import Outcome, RunResult
from gateproof.contract.stream import ChatStreamGrammar, StreamChecker
from gateproof.openapi import FALLBACK_HEADER, PROVIDER_HEADER, JournalRecord

from .conftest import stack_config

MATRIX = tuple(s for s in SCENARIOS if s.bad_day is not None)
BY_NAME = {s.name: s for s in SCENARIOS}
#: the wall time the matrix may take on the local stack (its slowest cell is a 4 s drip)
MATRIX_BUDGET_S = 20.0


def _matrix_run(stack: LocalStack, profile: Profile, **overrides: Any) -> tuple[RunResult, float]:
    # stack_config declares the stack's timeouts and fallback model, as `gateproof run` does
    config = stack_config(stack, profile, **overrides)
    started = time.monotonic()
    run = run_contract(
        config,
        RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=frozenset(s.name for s in MATRIX)),
    )
    return run, time.monotonic() - started


@pytest.fixture(scope="module")
def matrix_runs(stack: LocalStack) -> dict[Profile, tuple[RunResult, float]]:
    return {profile: _matrix_run(stack, profile) for profile in Profile}


# -- the reference stack passes every cell ---------------------------------------------------------


@pytest.mark.parametrize("profile", list(Profile))
def test_reference_gateway_passes_the_matrix(
    matrix_runs: dict[Profile, tuple[RunResult, float]], profile: Profile
) -> None:
    run, seconds = matrix_runs[profile]
    bad = [
        f"{r.scenario} {r.check}: {r.outcome.value} {r.reason}"
        for r in run.results
        if r.outcome in (Outcome.FAILED, Outcome.ERROR)
    ]
    assert not bad, "\n".join(bad)
    assert seconds < MATRIX_BUDGET_S, f"the failure matrix took {seconds:.1f} s"


@pytest.mark.parametrize("profile", list(Profile))
def test_every_cell_is_judged_and_labelled(
    matrix_runs: dict[Profile, tuple[RunResult, float]], profile: Profile
) -> None:
    run, _ = matrix_runs[profile]
    passed_by_cell: dict[str, int] = {}
    for result in run.results:
        scenario = BY_NAME.get(result.scenario.split("[")[0])
        assert scenario is not None and scenario.bad_day is not None, result.scenario
        # the report groups the matrix by these two fields
        assert result.fault == scenario.bad_day.row
        assert result.mode == ("stream" if scenario.stream else "non-stream")
        passed_by_cell.setdefault(result.scenario, 0)
        passed_by_cell[result.scenario] += result.outcome is Outcome.PASSED
    cells = {s.name for s in for_providers(MATRIX, tuple(STACK_PROVIDERS.items()))}
    assert set(passed_by_cell) == cells
    assert all(passed_by_cell.values()), [cell for cell, n in passed_by_cell.items() if not n]


def test_the_journal_checks_really_ran(matrix_runs: dict[Profile, tuple[RunResult, float]]) -> None:
    """The attempt, fallback and disconnect checks passed on the cells they judge, not n/a."""
    run, _ = matrix_runs[Profile.EDGEE]
    outcome = {(r.scenario, r.check): r.outcome for r in run.results}
    for key in (
        ("upstream_rate_limited", "retries_as_decided"),
        ("upstream_rate_limited_transient[gemini]", "retries_as_decided"),
        ("upstream_credential_refused", "retries_as_decided"),
        ("upstream_mid_stream_error[anthropic]", "no_retry_after_first_chunk"),
        ("upstream_fallback", "fallback_served"),
        ("upstream_fallback_stream", "fallback_header_truthful"),
        ("upstream_stream_stall", "idle_stall_cut_off"),
        ("upstream_stream_drip", "drip_delivered_whole"),
        ("client_leaves_mid_stream", "upstream_cancelled_on_disconnect"),
    ):
        assert outcome[key] is Outcome.PASSED, key


def test_undeclared_timeouts_and_fallback_make_their_cells_not_applicable(stack: LocalStack) -> None:
    names = frozenset({"upstream_slow_headers_stream", "upstream_stream_stall", "upstream_fallback"})
    started = time.monotonic()
    run = run_contract(
        stack_config(stack, Profile.EDGEE, timeouts={}, fallback_model=None),
        RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=names),
    )
    assert time.monotonic() - started < 2.0, "an unplayable cell must not be sent"
    assert run.results and all(r.outcome is Outcome.NOT_APPLICABLE for r in run.results)
    reasons = {r.scenario: r.reason for r in run.results}
    assert "timeouts.first_byte_s" in reasons["upstream_slow_headers_stream"]
    assert "timeouts.stream_idle_s" in reasons["upstream_stream_stall"]
    assert "fallback_model" in reasons["upstream_fallback"]


# -- the matrix as data ----------------------------------------------------------------------------


def test_every_row_of_d48_has_cells_and_names_are_unique() -> None:
    assert {s.bad_day.row for s in MATRIX if s.bad_day} == set(BAD_DAY_ROWS)
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


def test_the_rows_every_route_must_see_run_per_provider() -> None:
    for name in (
        "upstream_rate_limited",
        "upstream_rate_limited_stream",
        "upstream_rate_limited_transient",
        "upstream_server_error",
        "upstream_server_error_stream",
        "upstream_overloaded",
        "upstream_mid_stream_error",
        "upstream_stream_cut",
    ):
        assert BY_NAME[name].per_provider, name


def test_stalls_are_sized_to_the_declared_timeouts() -> None:
    stall = played(BY_NAME["upstream_stream_stall"], {"stream_idle_s": 2.0})
    assert stall.mock["fault_ms"] == 3000
    slow = played(BY_NAME["upstream_slow_headers_stream"], {"first_byte_s": 0.5})
    assert slow.mock["fault_ms"] == 1500
    drip = played(BY_NAME["upstream_stream_drip"], {"stream_idle_s": 2.0})
    assert int(str(drip.mock["fault_ms"])) < 2000
    assert played(BY_NAME["chat_basic"], {"stream_idle_s": 2.0}) is BY_NAME["chat_basic"]
    assert unplayable(BY_NAME["upstream_stream_stall"], {}, None) is not None
    assert unplayable(BY_NAME["upstream_stream_stall"], {"stream_idle_s": 2.0}, None) is None


def test_timeouts_and_fallback_model_are_declared_facts(tmp_path: Any) -> None:
    path = tmp_path / "target.yaml"
    path.write_text(
        "target: {base_url: 'http://127.0.0.1:9/v1'}\n"
        "timeouts: {first_byte_s: 2, stream_idle_s: 1.5}\nfallback_model: openai/gpt-4.1\n"
    )
    config = load_target_config(path)
    assert config.timeouts == {"first_byte_s": 2.0, "stream_idle_s": 1.5}
    assert config.fallback_model == "openai/gpt-4.1"
    for text, needle in (
        ("timeouts: {first_bytes: 2}\n", "unknown timeout"),
        ("timeouts: {stream_idle_s: 0}\n", "positive"),
        ("timeouts: {stream_idle_s: fast}\n", "timeouts must be"),
        ("timeouts: {stream_idle_s: 40}\n", "timeout_s"),
    ):
        path.write_text("target: {base_url: 'http://127.0.0.1:9/v1'}\n" + text)
        with pytest.raises(ConfigError, match=needle):
            load_target_config(path)


# -- the checks on made-up answers -----------------------------------------------------------------


def _record(attempt: int, dialect: str = "openai", status: int | None = 500, **extra: Any) -> JournalRecord:
    model = {"openai": "gpt-4.1", "anthropic": "claude-haiku-4-5"}.get(dialect)
    return JournalRecord(
        seq=attempt,
        received_at=1000.0 + attempt,
        method="POST",
        path=f"/{dialect}/chat",
        body={"model": model, "messages": []},
        dialect=dialect,
        status=status,
        attempt=attempt,
        outcome=extra.pop("outcome", "complete"),
        **extra,
    )


def _sse(*events: Any) -> bytes:
    return b"".join(
        f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode() for event in events
    )


def _chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"role": "assistant", "content": content} if content is not None else {}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "openai/gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _ctx(
    scenario: str | Scenario,
    profile: Profile = Profile.EDGEE,
    *,
    journal: list[JournalRecord] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    body: bytes = b"{}",
    failed: frozenset[str] = frozenset(),
    **extra: Any,
) -> CheckContext:
    chosen = BY_NAME[scenario] if isinstance(scenario, str) else scenario
    report = None
    if chosen.stream and status == 200:
        checker = StreamChecker(ChatStreamGrammar(include_usage=False))
        checker.feed(body)
        report = checker.close()
    return CheckContext(
        scenario=chosen,
        profile=profile,
        validators=validators_for(profile),
        observed=Observed(
            status=status, headers={k.lower(): v for k, v in (headers or {}).items()}, body=body
        ),
        stream=report,
        journal=journal,
        failed=failed,
        **extra,
    )


def _judge(name: str, ctx: CheckContext) -> CheckFailed | None:
    load_all_checks()
    try:
        CHECKS.get(name).function(ctx)
    except CheckFailed as failure:
        return failure
    return None


def test_upstream_attempts_bounded() -> None:
    five = [_record(n) for n in range(1, MAX_UPSTREAM_ATTEMPTS + 1)]
    assert _judge("upstream_attempts_bounded", _ctx("upstream_server_error", journal=five)) is None
    six = [*five, _record(6)]
    failure = _judge(
        "upstream_attempts_bounded", _ctx("upstream_server_error", Profile.OPENAI_CORE, journal=six)
    )
    assert failure is not None and "6 times" in failure.reason


def test_retries_as_decided() -> None:
    once = [_record(1, status=429)]
    failure = _judge("retries_as_decided", _ctx("upstream_rate_limited", journal=once, status=429))
    assert failure is not None and "not retried" in failure.reason
    twice = [_record(1, status=429), _record(2, status=429)]
    assert _judge("retries_as_decided", _ctx("upstream_rate_limited", journal=twice, status=429)) is None
    # a refused credential is not retried
    failure = _judge("retries_as_decided", _ctx("upstream_credential_refused", journal=twice, status=502))
    assert failure is not None and "was retried" in failure.reason
    # more than the bound is upstream_attempts_bounded's failure, not a second one
    many = [_record(n, status=429) for n in range(1, 8)]
    ctx = _ctx(
        "upstream_rate_limited", journal=many, status=429, failed=frozenset({"upstream_attempts_bounded"})
    )
    with pytest.raises(Redundant):
        CHECKS.get("retries_as_decided").function(ctx)
    with pytest.raises(NotApplicable):
        CHECKS.get("retries_as_decided").function(_ctx("upstream_mid_stream_error", journal=once))


def test_no_retry_after_first_chunk() -> None:
    body = _sse(_chunk("Hel"), {"error": {"message": "boom", "type": "api_error", "code": "provider_error"}})
    one = [_record(1, status=200)]
    assert (
        _judge("no_retry_after_first_chunk", _ctx("upstream_mid_stream_error", journal=one, body=body))
        is None
    )
    two = [*one, _record(2, status=200)]
    failure = _judge(
        "no_retry_after_first_chunk",
        _ctx("upstream_mid_stream_error", Profile.OPENAI_CORE, journal=two, body=body),
    )
    assert failure is not None and "asked again" in failure.reason


def test_fallback_header_truthful() -> None:
    via_fallback = [_record(1), _record(2), _record(3, "anthropic", 200)]
    primary = [_record(1, status=429), _record(2, status=200)]
    name = "fallback_header_truthful"
    missing = _judge(name, _ctx("upstream_fallback", journal=via_fallback))
    assert missing is not None and "missing" in missing.reason
    # openai-core owes the header only to be true when sent
    assert _judge(name, _ctx("upstream_fallback", Profile.OPENAI_CORE, journal=via_fallback)) is None
    for value in ("true", "1", "True"):
        ctx = _ctx("upstream_fallback", journal=via_fallback, headers={FALLBACK_HEADER: value})
        assert _judge(name, ctx) is None, value
    for profile in Profile:
        lying = _ctx(
            "upstream_rate_limited_transient", profile, journal=primary, headers={FALLBACK_HEADER: "true"}
        )
        failure = _judge(name, lying)
        assert failure is not None and "own route answered" in failure.reason
    # edgee: no header at all on the primary's answer; openai-core may say false
    said_false = {FALLBACK_HEADER: "false"}
    assert (
        _judge(name, _ctx("upstream_rate_limited_transient", journal=primary, headers=said_false)) is not None
    )
    core = _ctx("upstream_rate_limited_transient", Profile.OPENAI_CORE, journal=primary, headers=said_false)
    assert _judge(name, core) is None
    assert _judge(name, _ctx("upstream_rate_limited_transient", journal=primary)) is None


def test_fallback_served() -> None:
    name = "fallback_served"
    never = _judge(name, _ctx("upstream_fallback", journal=[_record(1), _record(2)], status=502))
    assert never is not None and "never tried" in never.reason
    again = [_record(1), _record(2), _record(3, status=200)]
    primary_again = _judge(
        name, _ctx("upstream_fallback", journal=again, headers={PROVIDER_HEADER: "openai"})
    )
    assert primary_again is not None and "primary route" in primary_again.reason
    served = [_record(1), _record(2), _record(3, "anthropic", 200)]
    stale = _judge(name, _ctx("upstream_fallback", journal=served, headers={PROVIDER_HEADER: "openai"}))
    assert stale is not None and "still names the primary" in stale.reason
    unnamed = _judge(name, _ctx("upstream_fallback", journal=served))
    assert unnamed is not None and "missing" in unnamed.reason
    assert (
        _judge(name, _ctx("upstream_fallback", journal=served, headers={PROVIDER_HEADER: "anthropic"}))
        is None
    )
    assert _judge(name, _ctx("upstream_fallback", Profile.OPENAI_CORE, journal=served)) is None


def test_idle_stall_cut_off() -> None:
    name = "idle_stall_cut_off"
    stall = played(BY_NAME["upstream_stream_stall"], {"stream_idle_s": 2.0})
    journal = [_record(1, status=200)]
    waited = _sse(_chunk("a"), _chunk("b"), _chunk(None, "stop"), "[DONE]")
    failure = _judge(name, _ctx(stall, Profile.OPENAI_CORE, journal=journal, body=waited))
    assert failure is not None and "waited it out" in failure.reason and "3 s" in failure.reason
    swallowed = _sse(_chunk("a"), "[DONE]")
    failure = _judge(name, _ctx(stall, journal=journal, body=swallowed))
    assert failure is not None and "passed off as whole" in failure.reason
    timeout = {"error": {"message": "idle", "type": "api_error", "code": "provider_timeout"}}
    assert _judge(name, _ctx(stall, journal=journal, body=_sse(_chunk("a"), timeout))) is None
    other = {"error": {"message": "idle", "type": "api_error", "code": "provider_error"}}
    wrong_code = _judge(name, _ctx(stall, journal=journal, body=_sse(_chunk("a"), other)))
    assert wrong_code is not None and "provider_error" in wrong_code.reason
    assert (
        _judge(name, _ctx(stall, Profile.OPENAI_CORE, journal=journal, body=_sse(_chunk("a"), other))) is None
    )
    done_after = _judge(name, _ctx(stall, journal=journal, body=_sse(_chunk("a"), timeout, "[DONE]")))
    assert done_after is not None and "[DONE]" in done_after.reason
    assert stall.bad_day is not None and stall.bad_day.row == STALL


def test_drip_delivered_whole() -> None:
    name = "drip_delivered_whole"
    whole = _sse(_chunk("a"), _chunk("b"), _chunk(None, "stop"), "[DONE]")
    assert _judge(name, _ctx("upstream_stream_drip", journal=[_record(1, status=200)], body=whole)) is None
    cut = _sse(_chunk("a"), {"error": {"message": "idle", "type": "api_error", "code": "provider_timeout"}})
    journal = [_record(1, status=200, outcome="disconnected", chunks_sent=2)]
    failure = _judge(name, _ctx("upstream_stream_drip", journal=journal, body=cut))
    assert failure is not None and "no [DONE]" in failure.reason and "disconnected" in failure.reason


def test_upstream_cancelled_on_disconnect() -> None:
    name = "upstream_cancelled_on_disconnect"
    left = 2000.0

    def ctx(outcome: str, finished: float | None, left_at: float | None = left) -> CheckContext:
        record = _record(1, status=200, outcome=outcome, finished_at=finished, chunks_sent=40)
        return _ctx("client_leaves_mid_stream", journal=[record], client_left_at=left_at)

    assert _judge(name, ctx("disconnected", left + 0.2)) is None
    late = _judge(name, ctx("disconnected", left + 3.5))
    assert late is not None and "only 3.5 s after" in late.reason
    read_on = _judge(name, ctx("complete", left + 3.9))
    assert read_on is not None and "kept reading" in read_on.reason
    still = _judge(name, ctx("pending", None))
    assert still is not None and "still pending" in still.reason
    with pytest.raises(NotApplicable):
        CHECKS.get(name).function(ctx("complete", left, left_at=None))


def test_bad_day_mode_names_the_column() -> None:
    day = BadDay("429 persistent")
    assert (day.mode(True), day.mode(False)) == ("stream", "non-stream")


# -- a gateway that never stops retrying -------------------------------------------------------------


class _FakeGateway(BaseHTTPRequestHandler):
    """A stand-in "gateway" answering the reachability probe; its POST is each test's misbehaviour."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # the reachability probe
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""


def _run_against(
    handler: type[BaseHTTPRequestHandler], mock_url: str, monkeypatch: pytest.MonkeyPatch, scenarios: set[str]
) -> RunResult:
    """The matrix scenarios ``scenarios`` (openai-core, a 2 s deadline) against a stand-in gateway on loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GATEPROOF_STAND_IN_KEY", "gp-stand-in-key")
    try:
        config = TargetConfig(
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            api_key_env="GATEPROOF_STAND_IN_KEY",
            profile=Profile.OPENAI_CORE,
            mock_url=mock_url,
            timeout_s=2.0,
        ).validate()
        return run_contract(
            config, RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=frozenset(scenarios))
        )
    finally:
        server.shutdown()
        server.server_close()


class _RetryStorm(_FakeGateway):
    """A "gateway" that asks the provider again and again and never answers its client."""

    upstream = ""
    #: the storm's attempts before it goes quiet (more than the bound of 5)
    attempts = 8

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            for _ in range(self.attempts):
                client.post(self.upstream, content=body, headers={"Content-Type": "application/json"})
        time.sleep(4.0)  # the client's deadline (2 s) ends the exchange first


def test_a_retry_storm_without_an_answer_is_named_by_its_attempts(
    mock_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = type("Storm", (_RetryStorm,), {"upstream": mock_server.url + "/v1/chat/completions"})
    run = _run_against(handler, mock_server.url, monkeypatch, {"upstream_server_error"})
    outcome = {r.check: r for r in run.results}
    bounded = outcome["upstream_attempts_bounded"]
    assert bounded.outcome is Outcome.FAILED, bounded.reason
    assert "8 times" in bounded.reason and "no answer reached the client" in bounded.reason
    assert outcome["status_code_expected"].outcome is Outcome.ERROR


# -- a gateway that answers on its own (a circuit breaker, a cooldown) ------------------------------


class _Cooldown(_FakeGateway):
    """A "gateway" whose route is cooling down: 429 at once, the provider never called."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        error = {
            "message": "no deployments available",
            "type": "rate_limit_error",
            "code": None,
            "param": None,
        }
        body = json.dumps({"error": error})
        self.send_response(429)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


def test_an_answer_the_gateway_made_on_its_own_is_one_root_cause(
    mock_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing reached the provider: the wrong status is the finding, the journal checks are not a second one."""
    run = _run_against(
        _Cooldown, mock_server.url, monkeypatch, {"upstream_server_error_stream", "upstream_mid_stream_error"}
    )
    for scenario in ("upstream_server_error_stream", "upstream_mid_stream_error"):
        results = [r for r in run.results if r.scenario == scenario]
        failed = [r.check for r in results if r.outcome is Outcome.FAILED]
        assert failed == ["status_code_expected"], (scenario, failed)
        attempts = next(r for r in results if r.check == "upstream_attempts_bounded")
        assert attempts.outcome is Outcome.PASSED, "no attempt at all is within the bound"
        skipped = [r for r in results if r.outcome is Outcome.SKIPPED and "no request" in r.reason]
        assert skipped and all(r.because == "status_code_expected" for r in skipped)


def test_a_key_passthrough_target_owes_the_providers_refusal_as_it_is() -> None:
    refused = BY_NAME["upstream_credential_refused"]
    assert refused.expect.statuses(Profile.OPENAI_CORE) != frozenset({401})
    passed = played(refused, {}, key_passthrough=True)
    assert passed.expect.statuses(Profile.OPENAI_CORE) == frozenset({401})
    forbidden = played(BY_NAME["upstream_credential_forbidden"], {}, key_passthrough=True)
    assert forbidden.expect.statuses(Profile.OPENAI_CORE) == frozenset({403})
    assert (
        played(BY_NAME["upstream_server_error"], {}, key_passthrough=True) == BY_NAME["upstream_server_error"]
    )


#: mock faults no failure-matrix cell plays, and why (a new provider fault must be played by a cell)
UNPLAYED_FAULTS = {
    # the whole answer, finish included, only the terminator missing: "cut" is the row a gateway
    # must not mistake for a whole answer; this one stays a stream-grammar fault of the mock
    "no_done": "covered by the stream cut row (a cut answer has no finish either)",
}


def test_every_provider_fault_of_the_mock_is_played_by_a_matrix_cell() -> None:
    from gateproof.mock_providers import FAULTS

    played = {s.mock.get("fault") for s in MATRIX}
    unplayed = {name for name in FAULTS if name not in played}
    assert unplayed == set(UNPLAYED_FAULTS), "a provider fault is played by no failure-matrix cell"
