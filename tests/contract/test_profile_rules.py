"""What each profile owes (decision D29), checked rule by rule on recorded answers and on the stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateproof.cli.launch import LocalStack
from gateproof.contract import SCENARIOS, Layers, Outcome, RunOptions, run_contract
from gateproof.contract._profiles import validators_for
from gateproof.contract._runner import _fold_property_auth
from gateproof.contract._scenarios import CLIENT_ERRORS, Scenario
from gateproof.contract.checks import (
    CHECKS,
    CheckContext,
    CheckFailed,
    NotApplicable,
    Observed,
    Profile,
    load_all_checks,
)
from gateproof.contract.results import CheckResult, Layer
from gateproof.contract.stream import check_stream
from gateproof.openapi import JournalRecord, SchemaKind, intent_from_openai
from gateproof.openapi._credentials import fingerprint

from .conftest import stack_config

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def _ctx(
    scenario: str,
    profile: Profile,
    *,
    body: Any = None,
    raw: bytes | None = None,
    request: Any = None,
    journal: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> CheckContext:
    data = raw if raw is not None else json.dumps(body).encode()
    observed = Observed(status=extra.pop("status", 200), headers={}, body=data)
    return CheckContext(
        scenario=BY_NAME[scenario],
        profile=profile,
        validators=validators_for(profile),
        observed=observed,
        request_body=request,
        journal=journal,
        **extra,
    )


def _judge(name: str, ctx: CheckContext) -> CheckFailed | None:
    load_all_checks()
    try:
        CHECKS.get(name).function(ctx)
    except CheckFailed as failure:
        return failure
    return None


# -- the spec views -----------------------------------------------------------------------------------

OPENAI_429 = {
    "error": {
        "message": "Rate limit reached",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
CHUNK_WITHOUT_FINISH = {
    "id": "c",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o",
    "choices": [{"index": 0, "delta": {"content": "Hi"}}],
}


def test_openai_core_takes_openai_error_types() -> None:
    assert validators_for(Profile.OPENAI_CORE).issues(SchemaKind.ERROR, OPENAI_429) == []
    (issue,) = validators_for(Profile.EDGEE).issues(SchemaKind.ERROR, OPENAI_429)
    assert issue.path == "error.type"


def test_openai_core_does_not_require_finish_reason_on_every_chunk() -> None:
    assert validators_for(Profile.OPENAI_CORE).issues(SchemaKind.CHUNK, CHUNK_WITHOUT_FINISH) == []
    (issue,) = validators_for(Profile.EDGEE).issues(SchemaKind.CHUNK, CHUNK_WITHOUT_FINISH)
    assert issue.path == "choices[0].finish_reason"


def test_openai_core_still_requires_the_envelope() -> None:
    issues = validators_for(Profile.OPENAI_CORE).issues(SchemaKind.ERROR, {"message": "x"})
    assert [issue.path for issue in issues] == ["error"]


# -- the oversized body ---------------------------------------------------------------------------


def test_an_oversized_body_owes_openai_core_only_a_4xx() -> None:
    scenario: Scenario = BY_NAME["oversize_body"]
    assert scenario.expect.statuses(Profile.OPENAI_CORE) == CLIENT_ERRORS
    assert scenario.expect.statuses(Profile.EDGEE) == frozenset({413})
    assert "error_body_conforms" not in scenario.checks_for(Profile.OPENAI_CORE)
    assert {"error_body_conforms", "error_code_expected"} <= set(scenario.checks_for(Profile.EDGEE))
    html = b"<html><body>413 Request Entity Too Large</body></html>"
    assert (
        _judge("status_code_expected", _ctx("oversize_body", Profile.OPENAI_CORE, raw=html, status=413))
        is None
    )
    assert (
        _judge("status_code_expected", _ctx("oversize_body", Profile.OPENAI_CORE, raw=html, status=400))
        is None
    )
    failure = _judge("status_code_expected", _ctx("oversize_body", Profile.EDGEE, raw=html, status=400))
    assert failure is not None and "expected 413" in failure.reason
    failure = _judge("not_a_server_error", _ctx("oversize_body", Profile.OPENAI_CORE, raw=html, status=502))
    assert failure is not None


# -- the limit under both names --------------------------------------------------------------------


def _journal(
    body: dict[str, Any], headers: dict[str, str] | None = None, **entry: Any
) -> list[JournalRecord]:
    record = {"seq": 1, "received_at": 0.0, "method": "POST", "path": "/v1/chat/completions"}
    # what the mock's OpenAI dialect serves as the intent of that body
    record["intent"] = intent_from_openai(body).to_json()
    return [JournalRecord.from_json({**record, "body": body, "headers": headers or {}, **entry})]


@pytest.mark.parametrize("profile", list(Profile))
def test_max_completion_tokens_is_the_same_limit(profile: Profile) -> None:
    request = {"model": "openai/gpt-4o", "messages": [], "max_tokens": 64}
    renamed = _ctx(
        "chat_basic", profile, body={}, request=request, journal=_journal({"max_completion_tokens": 64})
    )
    assert _judge("upstream_params_intact", renamed) is None
    halved = _ctx(
        "chat_basic", profile, body={}, request=request, journal=_journal({"max_completion_tokens": 32})
    )
    failure = _judge("upstream_params_intact", halved)
    assert failure is not None
    assert failure.reason.startswith("an answer budget of 64 tokens was sent")
    assert failure.reason.endswith("the provider received 32")
    dropped = _ctx("chat_basic", profile, body={}, request=request, journal=_journal({}))
    failure = _judge("upstream_params_intact", dropped)
    assert failure is not None and failure.reason.endswith("the provider received no budget")


def test_a_length_stop_is_judged_against_max_completion_tokens() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 50, "total_tokens": 53}
    request = {"model": "m", "messages": [], "max_completion_tokens": 5}
    failure = _judge(
        "completion_within_max_tokens",
        _ctx("max_tokens_length", Profile.OPENAI_CORE, body={"usage": usage}, request=request),
    )
    assert failure is not None
    assert failure.reason == "max_completion_tokens: 5 was sent, but usage.completion_tokens is 50"


# -- the model the provider receives -----------------------------------------------------------------


def test_upstream_naming_is_edgee_only_unless_declared() -> None:
    request = {"model": "fast", "messages": []}
    journal = _journal({"model": "gpt-4o-mini"})
    with pytest.raises(NotApplicable, match="upstream_models"):
        CHECKS.get("upstream_model_unprefixed").function(
            _ctx("chat_basic", Profile.OPENAI_CORE, body={}, request=request, journal=journal)
        )
    declared = _ctx(
        "chat_basic",
        Profile.OPENAI_CORE,
        body={},
        request=request,
        journal=journal,
        declared_upstream_model="gpt-4o-mini",
    )
    assert _judge("upstream_model_unprefixed", declared) is None
    wrong = _ctx(
        "chat_basic",
        Profile.OPENAI_CORE,
        body={},
        request=request,
        journal=journal,
        declared_upstream_model="gpt-4.1",
    )
    failure = _judge("upstream_model_unprefixed", wrong)
    assert failure is not None and "'gpt-4o-mini', not 'gpt-4.1'" in failure.reason
    edgee = _ctx(
        "chat_basic",
        Profile.EDGEE,
        body={},
        request={"model": "openai/gpt-4o"},
        journal=_journal({"model": "openai/gpt-4o"}),
    )
    failure = _judge("upstream_model_unprefixed", edgee)
    assert failure is not None and "{author}/{model} -> {model}" in failure.reason


@pytest.mark.parametrize(
    ("declared", "outcome"), [("gpt-4o", Outcome.PASSED), ("gpt-4o-mini", Outcome.FAILED)]
)
def test_a_declared_upstream_model_is_checked_on_the_stack(
    stack: LocalStack, declared: str, outcome: Outcome
) -> None:
    config = stack_config(stack, Profile.OPENAI_CORE, upstream_models={"openai/gpt-4o": declared})
    run = run_contract(
        config, RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=frozenset({"chat_basic"}))
    )
    (result,) = [
        r for r in run.results if r.check == "upstream_model_unprefixed" and r.scenario == "chat_basic"
    ]
    assert result.outcome is outcome, result.reason


def test_openai_core_without_a_declaration_does_not_judge_the_upstream_model(stack: LocalStack) -> None:
    run = run_contract(
        stack_config(stack, Profile.OPENAI_CORE),
        RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=frozenset({"chat_basic"})),
    )
    (result,) = [
        r for r in run.results if r.check == "upstream_model_unprefixed" and r.scenario == "chat_basic"
    ]
    assert result.outcome is Outcome.NOT_APPLICABLE


# -- a mid-stream failure ---------------------------------------------------------------------------


def test_openai_core_tolerates_done_after_an_error_event() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}  # fmt: skip
    error = {"error": {"message": "upstream failed", "type": "server_error", "code": None, "param": None}}
    body = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(error)}\n\ndata: [DONE]\n\n".encode()
    report = check_stream(body, include_usage=False)
    for profile, fails in ((Profile.OPENAI_CORE, False), (Profile.EDGEE, True)):
        ctx = _ctx("upstream_mid_stream_error", profile, raw=body, stream=report)
        failure = _judge("stream_error_propagated", ctx)
        assert (failure is not None) is fails, profile


# -- where the client's key went ------------------------------------------------------------------


def test_a_forwarded_key_is_named_where_it_appeared() -> None:
    key = "gp-client-key-0123456789"
    journal = _journal(
        {"model": "gpt-4o", "metadata": {"note": f"from {key}"}},
        headers={"authorization": "Bearer [redacted sha256:x]"},
        secret_fingerprints={"authorization": fingerprint(key)},
    )
    failure = _judge(
        "client_key_not_forwarded",
        _ctx("chat_basic", Profile.EDGEE, body={}, journal=journal, client_key=key),
    )
    assert failure is not None
    assert (
        failure.reason == "the client's key reached the provider in header authorization, body metadata.note"
    )
    assert (
        _judge(
            "client_key_forwarded_unchanged",
            _ctx("chat_basic", Profile.EDGEE, body={}, journal=journal, client_key=key),
        )
        is None
    )


def test_a_pass_through_target_must_forward_the_key() -> None:
    journal = _journal(
        {"model": "gpt-4o"}, secret_fingerprints={"authorization": fingerprint("the-gateway-own-key")}
    )
    failure = _judge(
        "client_key_forwarded_unchanged",
        _ctx("chat_basic", Profile.EDGEE, body={}, journal=journal, client_key="gp-client-key"),
    )
    assert failure is not None and "it received authorization" in failure.reason


def test_key_passthrough_swaps_the_key_check_in_the_scenarios(stack: LocalStack) -> None:
    run = run_contract(
        stack_config(stack, Profile.EDGEE, key_passthrough=True),
        RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=frozenset({"chat_basic"})),
    )
    checks = {r.check: r for r in run.results}
    assert "client_key_not_forwarded" not in checks
    # the reference gateway uses its own provider key: a pass-through proxy it is not
    assert checks["client_key_forwarded_unchanged"].outcome is Outcome.FAILED


# -- the property layer's auth failure is the scenarios' -----------------------------------------------


def _result(check: str, scenario: str, outcome: Outcome, layer: Layer = Layer.SCENARIO) -> CheckResult:
    return CheckResult(check=check, description="d", layer=layer, profile="edgee", target="t",
                       route="POST /v1/chat/completions", scenario=scenario, outcome=outcome)  # fmt: skip


def test_ignored_auth_is_skipped_when_an_auth_scenario_failed() -> None:
    scenario_results = [_result("status_code_expected", "auth_missing", Outcome.FAILED)]
    generated = [_result("ignored_auth", "generated", Outcome.FAILED, Layer.PROPERTY)]
    (folded,) = _fold_property_auth(generated, scenario_results)
    assert folded.outcome is Outcome.SKIPPED and folded.because == "status_code_expected"
    assert "auth_missing" in folded.reason
    assert _fold_property_auth(generated, [])[0].outcome is Outcome.FAILED


# -- the cached share of the prompt (D43) -------------------------------------------------------------


def _usage_case(profile: Profile, usage: dict[str, Any], cached: int) -> CheckFailed | None:
    truth = {"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34, "cached_tokens": cached}
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}], "usage": usage}
    ctx = _ctx("chat_basic", profile, body=body, request={"model": "m", "messages": []},
               journal=_journal({}, true_usage=truth))  # fmt: skip
    return _judge("usage_matches_provider", ctx)


def test_openai_core_owes_the_cached_count_only_when_something_was_cached() -> None:
    counts = {"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34}
    # nothing cached: details without the count (what LiteLLM sends for Gemini) say no less than 0
    assert _usage_case(Profile.OPENAI_CORE, {**counts, "prompt_tokens_details": {}}, 0) is None
    failure = _usage_case(Profile.OPENAI_CORE, {**counts, "prompt_tokens_details": {}}, 12)
    assert failure is not None and "read 12 prompt tokens from its cache" in failure.reason
    right = {**counts, "prompt_tokens_details": {"cached_tokens": 12}}
    assert _usage_case(Profile.OPENAI_CORE, right, 12) is None
    # edgee: the Edgee name, always
    failure = _usage_case(Profile.EDGEE, right, 12)
    assert failure is not None and failure.reason.startswith("input_tokens_details.cached_tokens is None")


def test_cache_reads_left_out_of_prompt_tokens_are_undercounting() -> None:
    usage = {"prompt_tokens": 18, "completion_tokens": 4, "total_tokens": 22,
             "input_tokens_details": {"cached_tokens": 12}}  # fmt: skip
    failure = _usage_case(Profile.EDGEE, usage, 12)
    assert failure is not None and failure.reason == "prompt_tokens is 18 but the provider counted 30"
