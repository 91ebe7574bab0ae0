"""The conversation layer against real servers: generated conversations through every provider route.

The reference gateway must hold every property on every route; a gateway with one translation
or accounting fault must fail the property it breaks, on the routes it breaks it on, and the
report must show the smallest conversation that still shows it (hypothesis' shrinking).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, seed, settings

from gateproof.cli.launch import STACK_PROVIDERS, LocalStack, free_port, local_stack
from gateproof.contract import Layers, Outcome, RunOptions, TargetConfig, describe_checks, run_contract
from gateproof.contract._conversations import (
    CONVERSATION_CHECKS,
    MAX_MESSAGES,
    TOOLS,
    _directive,
    conversations,
    run_conversations,
)
from gateproof.contract.checks import Profile
from gateproof.contract.results import REDACTED, CheckResult, Layer
from gateproof.openapi import DIRECTIVE_PATTERN, SchemaKind, validators

from .conftest import stack_config

RESPONSE_VALID = "conversation_response_valid"
TRANSLATED = "conversation_translated_faithfully"
USAGE = "conversation_usage_matches_provider"
EXAMPLES = 10
#: the second run against the same faulty gateway
AGAIN = "system_prompt_dropped, again"


def _by(results: list[CheckResult]) -> dict[tuple[str, str], CheckResult]:
    return {(r.provider, r.check): r for r in results}


def _counterexample(result: CheckResult) -> dict[str, Any]:
    """The shrunk request the failure shows, as sent (it is the exchange's request body)."""
    assert result.exchange is not None
    body = json.loads(result.exchange.request_body)
    assert isinstance(body, dict)
    # the reason quotes the same body, so a report shows it without opening the exchange
    assert json.dumps(body, ensure_ascii=False) in result.reason
    return body


def _config(stack: LocalStack) -> TargetConfig:
    return stack_config(stack, providers=dict(STACK_PROVIDERS))


@pytest.fixture(scope="module")
def faulty() -> Iterator[dict[str, list[CheckResult]]]:
    """The layer's results against three faulty gateways, one per property broken."""
    found: dict[str, list[CheckResult]] = {}
    for fault in (
        "system_prompt_dropped",
        "anthropic_cache_tokens_dropped",
        "anthropic_tool_result_wrong_id",
    ):
        with local_stack(gateway_args=["--fault", fault]) as running:
            config = _config(running)
            found[fault] = run_conversations(config, config.api_key(), examples=EXAMPLES)
            if fault == "system_prompt_dropped":  # the same run again: the layer is deterministic
                found[AGAIN] = run_conversations(config, config.api_key(), examples=EXAMPLES)
    yield found


# ---------------------------------------------------------------- the generated conversations


@seed(7)
@settings(max_examples=150, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(conversations())
def test_generated_conversations_are_valid_by_construction(body: dict[str, Any]) -> None:
    messages = body["messages"]
    assert 1 <= len(messages) <= MAX_MESSAGES
    assert messages[-1]["role"] == "user"
    assert validators().is_valid(SchemaKind.REQUEST, {**body, "model": "openai/gpt-4o"})
    assert "[[" not in json.dumps(body) and "]]" not in json.dumps(body)
    offered = {tool["function"]["name"] for tool in body.get("tools", [])}
    seen_ids: set[str] = set()
    pending: set[str] = set()
    for message in messages:
        if message["role"] == "tool":
            # every tool message answers a call of the assistant turn just before, once
            assert message["tool_call_id"] in pending
            pending.discard(message["tool_call_id"])
            continue
        assert not pending, f"calls left unanswered before a {message['role']} message"
        for text in (message.get("content"), message.get("refusal")):
            assert text is None or (isinstance(text, str) and text.strip())
        for call in message.get("tool_calls") or []:
            assert call["id"] not in seen_ids
            seen_ids.add(call["id"])
            pending.add(call["id"])
            assert call["function"]["name"] in offered
            arguments = json.loads(call["function"]["arguments"])
            schema = next(
                t["function"]["parameters"]
                for t in TOOLS
                if t["function"]["name"] == call["function"]["name"]
            )
            assert set(schema["required"]) <= set(arguments) <= set(schema["properties"])
    if body.get("stream"):
        assert body["stream_options"] == {"include_usage": True}


def test_the_generator_covers_what_the_layer_promises() -> None:
    """Over a full run's examples the shapes the issue names all occur: parallel calls, refusals, system..."""
    bodies: list[dict[str, Any]] = []

    @seed(20261125)
    @settings(
        max_examples=45, phases=[Phase.generate], database=None, suppress_health_check=list(HealthCheck)
    )
    @given(conversations())
    def collect(body: dict[str, Any]) -> None:
        bodies.append(body)

    collect()
    messages = [m for b in bodies for m in b["messages"]]
    assert any(m["role"] == "system" for m in messages)
    assert any(m["role"] == "developer" for m in messages)
    assert any(m.get("refusal") for m in messages)
    assert any(len(m.get("tool_calls") or []) > 1 for m in messages)
    # every tool choice the spec allows (D25): none, auto, a named function, each with tools offered
    for wanted in ("none", "auto", "named"):
        found = find(
            conversations(),
            lambda b, wanted=wanted: (
                "tools" in b
                and (
                    b.get("tool_choice") == wanted
                    or (wanted == "named" and isinstance(b.get("tool_choice"), dict))
                )
            ),
            settings=settings(database=None, max_examples=2000, suppress_health_check=list(HealthCheck)),
        )
        assert found["tools"]
    assert any(b.get("stream") for b in bodies) and any(not b.get("stream") for b in bodies)
    assert any("stop" in b for b in bodies) and any("max_tokens" in b for b in bodies)
    assert max(len(b["messages"]) for b in bodies) >= 8
    # answers out of call order: a tool message answering a later call before an earlier one
    out_of_order = False
    for body in bodies:
        order = [int(m["tool_call_id"].split("_")[1]) for m in body["messages"] if m["role"] == "tool"]
        out_of_order |= order != sorted(order)
    assert out_of_order


def test_the_mock_is_asked_for_tool_calls_only_when_the_request_allows_them() -> None:
    ask = {"tokens": 3, "cached": 0, "calls": 2}
    offered = {"messages": [], "tools": [{"type": "function", "function": {"name": "add"}}]}
    assert "scenario=tool_call calls=2" in _directive(offered, ask, "c1")
    assert "scenario=text" in _directive({**offered, "tool_choice": "none"}, ask, "c1")
    assert "scenario=text" in _directive({"messages": []}, ask, "c1")
    assert "scenario=text tokens=3" in _directive(offered, {**ask, "calls": 0}, "c1")


# ---------------------------------------------------------------- against the reference gateway


def test_the_reference_gateway_holds_every_property_on_every_route(stack: LocalStack) -> None:
    config = _config(stack)
    run = run_contract(
        config, RunOptions(layers=frozenset({Layers.PROPERTY}), checks=frozenset(CONVERSATION_CHECKS))
    )
    results = [r for r in run.results if r.scenario == "conversations"]
    assert {(r.provider, r.check) for r in results} == {
        (dialect, check) for dialect in STACK_PROVIDERS for check in CONVERSATION_CHECKS
    }
    bad = [
        f"{r.provider} {r.check}: {r.outcome.value} {r.reason}"
        for r in results
        if r.outcome is not Outcome.PASSED
    ]
    assert not bad
    examples = min(config.property_examples, 15)
    assert all(r.layer is Layer.PROPERTY and r.cases == examples and r.failed_cases == 0 for r in results)
    assert run.metadata["conversation_seconds"] < 30


def test_the_checks_are_listed_in_the_property_layer() -> None:
    listed = {(layer, name) for layer, name, _ in describe_checks()}
    assert {(Layer.PROPERTY.value, name) for name in CONVERSATION_CHECKS} <= listed


def test_without_the_mock_nothing_is_judged() -> None:
    config = TargetConfig(base_url="http://127.0.0.1:9/v1", providers=dict(STACK_PROVIDERS))
    results = run_conversations(config, "unused", examples=3)
    assert len(results) == len(STACK_PROVIDERS) * len(CONVERSATION_CHECKS)
    assert all(r.outcome is Outcome.NOT_APPLICABLE and "mock" in r.reason and r.cases == 0 for r in results)


def test_a_target_that_stops_answering_is_not_asked_again_and_again() -> None:
    """Two broken exchanges end a route's examples: a dead target must not cost every example's deadline."""
    config = TargetConfig(
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        mock_url=f"http://127.0.0.1:{free_port()}",
        providers=dict(STACK_PROVIDERS),
        timeout_s=2.0,
    )
    started = time.monotonic()
    results = _by(run_conversations(config, "unused", examples=EXAMPLES))
    assert time.monotonic() - started < 20
    for dialect in STACK_PROVIDERS:
        valid = results[(dialect, RESPONSE_VALID)]
        assert valid.outcome is Outcome.FAILED
        assert (valid.cases, valid.failed_cases) == (2, 2)
        assert "the exchange broke" in valid.reason and "not shrunk" in valid.reason
        for check in (TRANSLATED, USAGE):
            assert results[(dialect, check)].outcome is Outcome.NOT_APPLICABLE


# ---------------------------------------------------------------- against faulty gateways


def test_a_dropped_system_prompt_fails_translation_with_a_shrunk_counterexample(
    faulty: dict[str, list[CheckResult]],
) -> None:
    results = _by(faulty["system_prompt_dropped"])
    # the fault is in the Anthropic and Gemini translations; OpenAI receives the messages as sent
    assert results[("openai", TRANSLATED)].outcome is Outcome.PASSED
    for dialect in ("anthropic", "gemini"):
        result = results[(dialect, TRANSLATED)]
        assert result.outcome is Outcome.FAILED, result.reason
        assert 1 <= result.failed_cases <= result.cases == EXAMPLES
        assert "system prompt was dropped" in result.reason
        body = _counterexample(result)
        roles = [m["role"] for m in body["messages"]]
        # shrunk: one instruction and the user's question, nothing else
        assert len(roles) <= 3 and roles[-1] == "user"
        assert {"system", "developer"} & set(roles)
        assert set(body) <= {"messages", "model", "tools"}
        assert results[(dialect, RESPONSE_VALID)].outcome is Outcome.PASSED
        assert results[(dialect, USAGE)].outcome is Outcome.PASSED


def test_uncounted_cache_reads_fail_accounting_with_a_shrunk_counterexample(
    faulty: dict[str, list[CheckResult]],
) -> None:
    results = _by(faulty["anthropic_cache_tokens_dropped"])
    assert results[("openai", USAGE)].outcome is Outcome.PASSED
    assert results[("gemini", USAGE)].outcome is Outcome.PASSED
    result = results[("anthropic", USAGE)]
    assert result.outcome is Outcome.FAILED, result.reason
    assert "prompt_tokens" in result.reason
    body = _counterexample(result)
    assert len(body["messages"]) == 1
    # what makes it fail is in the request: the prompt tokens the mock is asked to read from its cache
    directive = DIRECTIVE_PATTERN.search(body["messages"][-1]["content"])
    assert directive is not None
    cached = re.search(r"cached=(\d+)", directive.group("body"))
    assert cached is not None and int(cached.group(1)) > 0


def test_a_refused_tool_round_fails_validity_with_the_smallest_tool_round(
    faulty: dict[str, list[CheckResult]],
) -> None:
    results = _by(faulty["anthropic_tool_result_wrong_id"])
    assert results[("openai", RESPONSE_VALID)].outcome is Outcome.PASSED
    assert results[("gemini", RESPONSE_VALID)].outcome is Outcome.PASSED
    result = results[("anthropic", RESPONSE_VALID)]
    assert result.outcome is Outcome.FAILED, result.reason
    assert result.exchange is not None and result.exchange.status != 200
    body = _counterexample(result)
    roles = [m["role"] for m in body["messages"]]
    # one call, its one answer, and the user's next question: the smallest conversation with a tool round
    assert roles == ["user", "assistant", "tool", "user"], roles
    assert len(body["messages"][1]["tool_calls"]) == 1
    # refused answers judge only validity: nothing reached the provider's bill to compare
    assert results[("anthropic", TRANSLATED)].failed_cases == 0


def _without_cid(result: CheckResult) -> str:
    return re.sub(r"cid=[A-Za-z0-9._:-]+", "cid=*", json.dumps(_counterexample(result)))


def test_the_same_seed_finds_the_same_counterexample(faulty: dict[str, list[CheckResult]]) -> None:
    first, again = _by(faulty["system_prompt_dropped"]), _by(faulty[AGAIN])
    assert first.keys() == again.keys()
    for key, result in first.items():
        other = again[key]
        assert (result.outcome, result.cases, result.failed_cases) == (
            other.outcome,
            other.cases,
            other.failed_cases,
        )
        if result.outcome is Outcome.FAILED:
            assert _without_cid(result) == _without_cid(other)


def test_the_report_never_carries_the_key(faulty: dict[str, list[CheckResult]]) -> None:
    failed = [r for results in faulty.values() for r in results if r.outcome is Outcome.FAILED]
    assert failed
    for result in failed:
        assert result.exchange is not None
        assert result.exchange.request_headers["Authorization"] == f"Bearer {REDACTED}"


def test_the_profile_is_recorded(stack: LocalStack) -> None:
    config = stack_config(stack, Profile.OPENAI_CORE, providers=dict(STACK_PROVIDERS))
    results = run_conversations(config, config.api_key(), examples=3)
    assert {r.profile for r in results} == {Profile.OPENAI_CORE.value}
    assert all(r.outcome is Outcome.PASSED for r in results), [r.reason for r in results]


def test_failures_are_grouped_by_cause_without_the_examples_particulars() -> None:
    from gateproof.contract._conversations import _cause, _Verdict
    from gateproof.contract.checks import CheckFailed, Observed

    def verdict(reason: str, status: int = 200, body: bytes = b"") -> _Verdict:
        observed = Observed(status=status, headers={}, body=body)
        return _Verdict(body={}, sent=None, observed=observed, failures={RESPONSE_VALID: CheckFailed(reason)})  # type: ignore[arg-type]

    refused = [
        b'{"error": {"message": "tool ids call_1, call_2 have no result", "type": "invalid_request_error"}}',
        b'{"error": {"message": "tool id call_7 has no result", "type": "invalid_request_error"}}',
    ]
    a, b = (_cause(verdict("HTTP 400", 400, body), RESPONSE_VALID) for body in refused)
    assert a == b == "HTTP 400 invalid_request_error"
    chunks = [
        "the stream breaks usage_chunk_empty_choices (event 3): the usage chunk has 1 choice(s)",
        "the stream breaks usage_chunk_empty_choices (event 12): the usage chunk has 2 choice(s)",
    ]
    assert _cause(verdict(chunks[0]), RESPONSE_VALID) == _cause(verdict(chunks[1]), RESPONSE_VALID) != a
    dropped = [
        'conversation: the provider did not receive the client\'s assistant text "0"',
        "conversation: the provider did not receive the client's assistant text \"Sb V-GIeA' 4nT\"",
    ]
    assert _cause(verdict(dropped[0]), RESPONSE_VALID) == _cause(verdict(dropped[1]), RESPONSE_VALID)
