"""Client impact: recorded bytes replayed through the real openai SDK, and the severity that follows.

Every verdict asserted here is what openai-python 3.57.0 actually does with those bytes (found by
running it); if an SDK upgrade changes one, the test says which deviation moved.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from typing import Any

import pytest

from gateproof.contract._impact import SDK, assess, replay, severity_of
from gateproof.contract.results import (
    CheckResult,
    ClientImpact,
    ImpactVerdict,
    Layer,
    Outcome,
    RawResponse,
    Severity,
)

CHAT = "POST /v1/chat/completions"
MODELS = "GET /v1/models"
JSON = (("content-type", "application/json"),)
SSE = (("content-type", "text/event-stream"), ("cache-control", "no-cache"))
REQUEST = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]}
STREAM_REQUEST = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}
USAGE = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "openai/gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": USAGE,
}
CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "openai/gpt-4o",
}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": True},
}


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {**CHUNK, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def sse(*events: dict[str, Any] | bytes, done: bool = True) -> bytes:
    lines = [b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events]
    return b"".join(lines) + (b"data: [DONE]\n\n" if done else b"")


TEXT = [chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}), chunk({}, "stop")]
USAGE_CHUNK = {**CHUNK, "choices": [], "usage": USAGE}


def answer(body: dict[str, Any] | bytes, status: int = 200, expected: set[int] | None = None) -> RawResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawResponse(status, JSON, data, False, REQUEST, frozenset(expected or ()))


def stream(
    body: bytes, request: dict[str, Any] | None = None, expected: set[int] | None = None
) -> RawResponse:
    return RawResponse(200, SSE, body, True, request or STREAM_REQUEST, frozenset(expected or ()))


def error(status: int, message: str, type_: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


def verdicts(impacts: tuple[ClientImpact, ...]) -> list[ImpactVerdict]:
    return [impact.verdict for impact in impacts]


P, LOST, RAISED, WRONG = (
    ImpactVerdict.PARSED,
    ImpactVerdict.FIELD_LOST,
    ImpactVerdict.RAISED,
    ImpactVerdict.WRONG_EXCEPTION,
)


# --- answers that should parse --------------------------------------------------------------------


def test_a_correct_completion_parses_and_is_a_warning() -> None:
    impacts = replay(answer(COMPLETION), CHAT)
    assert impacts == (
        ClientImpact(
            f"{SDK}: chat.completions.create",
            P,
            "1 choices, text 12 chars, 0 tool calls, usage 9/12/21, finish stop",
        ),
    )
    assert SDK.startswith("openai-python 3.")
    assert severity_of(impacts) is Severity.WARNING


def test_extra_fields_reach_the_caller() -> None:
    """usage.cost (LiteLLM, OpenRouter) is kept by the SDK's models: nothing lost."""
    impacts = replay(answer({**COMPLETION, "usage": {**USAGE, "cost": 0.00021}}), CHAT)
    assert verdicts(impacts) == [P]
    assert severity_of(impacts) is Severity.WARNING


def test_a_correct_stream_parses_in_both_probes() -> None:
    impacts = replay(stream(sse(*TEXT, USAGE_CHUNK)), CHAT)
    assert [i.probe for i in impacts] == [
        f"{SDK}: chat.completions.create(stream=True)",
        f"{SDK}: chat.completions.stream().get_final_completion()",
    ]
    assert verdicts(impacts) == [P, P]
    assert impacts[0].detail == "4 chunks, text 5 chars, 0 tool calls, usage 9/12/21, finish stop"
    assert impacts[1].detail == "1 choices, text 5 chars, 0 tool calls, usage 9/12/21, finish stop"


def test_litellm_usage_chunk_with_an_empty_choice_is_tolerated() -> None:
    """LiteLLM sends ``choices: [{"index": 0, "delta": {}}]`` with the usage, not ``choices: []``."""
    litellm = {**CHUNK, "choices": [{"index": 0, "delta": {}}], "usage": USAGE}
    impacts = replay(stream(sse(*TEXT, litellm)), CHAT)
    assert verdicts(impacts) == [P, P]
    assert "usage 9/12/21, finish stop" in impacts[1].detail
    assert severity_of(impacts) is Severity.WARNING


def test_a_missing_finish_reason_key_reads_none_and_is_tolerated() -> None:
    no_key = {**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]}
    impacts = replay(stream(sse(no_key, chunk({}, "stop"))), CHAT)
    assert verdicts(impacts) == [P, P]
    assert severity_of(impacts) is Severity.WARNING


def test_models_list_without_object_is_tolerated() -> None:
    """SyncPage.object reads None; iterating the page, which is what callers do, works."""
    body = {"data": [{"id": "openai/gpt-4o", "object": "model", "created": 1, "owned_by": "openai"}]}
    impacts = replay(answer(body), MODELS)
    assert impacts == (ClientImpact(f"{SDK}: models.list", P, "1 models"),)
    assert severity_of(impacts) is Severity.WARNING


# --- answers a client cannot use ------------------------------------------------------------------


def test_a_chunk_that_is_not_json_raises() -> None:
    impacts = replay(stream(sse(TEXT[0], b"{not json", TEXT[2])), CHAT)
    assert verdicts(impacts) == [RAISED, RAISED]
    assert impacts[0].detail.startswith("JSONDecodeError: ")
    assert impacts[0].detail.endswith("(after 1 chunks)")
    assert severity_of(impacts) is Severity.ERROR


def tool_call(arguments: object) -> dict[str, Any]:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    return chunk({"role": "assistant", "tool_calls": [call]})


def test_tool_arguments_as_an_object_are_kept_with_the_wrong_type() -> None:
    """The SDK builds models unvalidated: the dict reaches the caller where a str is declared."""
    impacts = replay(stream(sse(tool_call({"city": "Paris"}), chunk({}, "tool_calls"))), CHAT)
    assert verdicts(impacts) == [LOST, LOST]
    assert impacts[0].detail.startswith(
        "chunk 0: choices[0].delta.tool_calls[0].function.arguments: an object"
    )
    assert impacts[1].detail.startswith("choices[0].message.tool_calls[0].function.arguments: an object")
    assert severity_of(impacts) is Severity.ERROR


def test_tool_arguments_as_an_object_break_the_helper_with_strict_tools() -> None:
    """With a strict tool the helper parses the arguments as they stream, and json.loads(dict) raises."""
    body = sse(tool_call({"city": "Paris"}), chunk({}, "tool_calls"))
    impacts = replay(stream(body, {**STREAM_REQUEST, "tools": [WEATHER_TOOL]}), CHAT)
    assert verdicts(impacts) == [LOST, RAISED]
    assert impacts[1].detail.startswith("TypeError: the JSON object must be str")


def test_tool_arguments_in_pieces_parse() -> None:
    rest = chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]})
    body = sse(tool_call('{"city": '), rest, chunk({}, "tool_calls"), USAGE_CHUNK)
    impacts = replay(stream(body, {**STREAM_REQUEST, "tools": [WEATHER_TOOL]}), CHAT)
    assert verdicts(impacts) == [P, P]
    assert "1 tool calls" in impacts[1].detail


def test_a_tool_name_repeated_in_every_chunk_is_doubled_by_the_helper() -> None:
    rest = chunk({"tool_calls": [{"index": 0, "function": {"name": "get_weather", "arguments": '"Paris"}'}}]})
    impacts = replay(stream(sse(tool_call('{"city": '), rest, chunk({}, "tool_calls"))), CHAT)
    assert verdicts(impacts) == [P, LOST]
    assert impacts[1].detail == (
        "choices[0].message.tool_calls[0].function.name: 'get_weather' streamed, 'get_weatherget_weather' kept"
    )


def test_usage_before_the_last_chunk_is_dropped_by_the_helper() -> None:
    """The helper takes usage from the last chunk only."""
    impacts = replay(stream(sse(TEXT[0], USAGE_CHUNK, TEXT[2])), CHAT)
    assert verdicts(impacts) == [P, LOST]
    assert impacts[1].detail == "usage was streamed but the final completion has none"


def test_a_json_answer_to_a_stream_request_reaches_the_caller_as_nothing() -> None:
    impacts = replay(RawResponse(200, JSON, json.dumps(COMPLETION).encode(), True, STREAM_REQUEST), CHAT)
    assert verdicts(impacts) == [LOST, RAISED]
    assert impacts[0].detail.startswith("no chunk reached the caller")


def test_a_wrong_scalar_type_is_a_lost_field() -> None:
    impacts = replay(answer({**COMPLETION, "created": "1700000000"}), CHAT)
    assert verdicts(impacts) == [LOST]
    assert impacts[0].detail.startswith("created: a string on the wire")


def test_a_completion_without_choices_breaks_the_caller() -> None:
    body = {key: value for key, value in COMPLETION.items() if key != "choices"}
    impacts = replay(answer(body), CHAT)
    assert verdicts(impacts) == [RAISED]
    assert "TypeError" in impacts[0].detail


def test_an_html_page_is_returned_as_a_string() -> None:
    raw = RawResponse(200, (("content-type", "text/html"),), b"<html>Bad gateway</html>", False, REQUEST)
    impacts = replay(raw, CHAT)
    assert impacts == (
        ClientImpact(
            f"{SDK}: chat.completions.create", RAISED, "the client returned a str, not a ChatCompletion"
        ),
    )


def test_an_unexpected_error_status_raises() -> None:
    impacts = replay(answer({"status": "failure", "message": "Something went wrong"}, status=500), CHAT)
    assert impacts[0].verdict is RAISED
    assert impacts[0].detail == "InternalServerError: Error code: 500 - Something went wrong"


# --- answers that should raise --------------------------------------------------------------------


def test_a_completion_where_401_was_expected_is_the_wrong_exception() -> None:
    impacts = replay(answer(COMPLETION, expected={401}), CHAT)
    assert impacts == (
        ClientImpact(
            f"{SDK}: chat.completions.create (error class)",
            WRONG,
            "expected AuthenticationError (401), the client got a ChatCompletion",
            owed="AuthenticationError (401)",
            got="a ChatCompletion",
        ),
    )
    assert severity_of(impacts) is Severity.ERROR


def test_400_where_401_was_expected_is_the_wrong_exception() -> None:
    raw = answer(error(400, "bad key", "invalid_request_error"), status=400, expected={401})
    impacts = replay(raw, CHAT)
    assert verdicts(impacts) == [WRONG]
    assert impacts[0].detail == "expected AuthenticationError (401), the client got BadRequestError (400)"
    assert (impacts[0].owed, impacts[0].got) == ("AuthenticationError (401)", "BadRequestError (400)")


def test_a_stream_where_401_was_expected_is_the_wrong_exception() -> None:
    impacts = replay(stream(sse(*TEXT), expected={401}), CHAT)
    assert verdicts(impacts) == [WRONG]
    assert impacts[0].detail == "expected AuthenticationError (401), the client got a stream of 3 chunks"


def test_the_expected_error_with_its_envelope_parses() -> None:
    raw = answer(error(401, "Invalid API key", "authentication_error", "invalid_api_key"), 401, {401})
    impacts = replay(raw, CHAT)
    assert impacts[0].verdict is P
    assert impacts[0].detail == (
        "AuthenticationError (401) as expected; .code 'invalid_api_key', .type 'authentication_error'"
    )


def test_a_500_with_a_foreign_body_is_still_the_right_class() -> None:
    raw = answer({"status": "failure", "message": "Something went wrong"}, 500, {500})
    impacts = replay(raw, CHAT)
    assert verdicts(impacts) == [P]
    assert impacts[0].detail == (
        "InternalServerError (500) as expected; .code None, .type None (the body is not an OpenAI error envelope)"
    )
    assert severity_of(impacts) is Severity.WARNING


def test_an_error_type_outside_edgees_enum_reaches_the_caller() -> None:
    impacts = replay(answer(error(400, "bad request", "requests"), 400, {400}), CHAT)
    assert verdicts(impacts) == [P]
    assert ".type 'requests'" in impacts[0].detail
    assert severity_of(impacts) is Severity.WARNING


def test_an_error_message_that_is_not_a_string_is_lost() -> None:
    body = {
        "error": {"message": {"text": "bad key"}, "type": "authentication_error", "code": "invalid_api_key"}
    }
    impacts = replay(answer(body, 401, {401}), CHAT)
    assert verdicts(impacts) == [LOST]
    assert impacts[0].detail.startswith(
        "AuthenticationError (401) as expected, but error.message (an object)"
    )


def test_an_error_param_that_is_not_a_string_is_a_lost_field() -> None:
    body = {
        "error": {"message": "bad", "type": "invalid_request_error", "param": ["messages", 0], "code": None}
    }
    impacts = replay(answer(body, 400, {400}), CHAT)
    assert verdicts(impacts) == [LOST]
    assert "error.param" in impacts[0].detail


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (403, "PermissionDeniedError"),
        (404, "NotFoundError"),
        (409, "ConflictError"),
        (413, "APIStatusError"),
        (422, "UnprocessableEntityError"),
        (429, "RateLimitError"),
        (503, "InternalServerError"),
    ],
)
def test_each_status_maps_to_the_sdks_class(status: int, name: str) -> None:
    right = replay(answer(error(status, "no", "t"), status, {status}), CHAT)
    assert right[0].verdict is P
    assert right[0].detail.startswith(f"{name} ({status}) as expected")
    wrong = replay(answer(error(401, "no", "t"), 401, {status}), CHAT)
    assert wrong[0].detail == f"expected {name} ({status}), the client got AuthenticationError (401)"


def test_models_list_error_class() -> None:
    raw = answer(error(401, "Invalid API key", "authentication_error", "invalid_api_key"), 401, {401})
    impacts = replay(raw, MODELS)
    assert impacts[0].probe == f"{SDK}: models.list (error class)"
    assert impacts[0].verdict is P


# --- bounds ---------------------------------------------------------------------------------------


def test_an_8_mib_completion_replays_quickly() -> None:
    text = "x" * (8 * 1024 * 1024 - 400)
    body = {
        **COMPLETION,
        "choices": [{**COMPLETION["choices"][0], "message": {"role": "assistant", "content": text}}],
    }
    raw = answer(body)
    assert len(raw.body) <= 8 * 1024 * 1024
    started = time.monotonic()
    impacts = replay(raw, CHAT)
    assert time.monotonic() - started < 5
    assert verdicts(impacts) == [P]
    assert f"text {len(text)} chars" in impacts[0].detail


def test_an_8_mib_stream_of_tiny_chunks_is_cut_off_by_the_budget() -> None:
    """The stream helper is quadratic in the streamed text; the budget turns that into a timeout."""
    piece = chunk({"content": "y" * 90})
    count = 8 * 1024 * 1024 // len(sse(piece, done=False))
    raw = stream(sse(*[piece] * count, chunk({}, "stop")))
    assert len(raw.body) <= 8 * 1024 * 1024
    started = time.monotonic()
    impacts = replay(raw, CHAT, budget=0.5)
    assert time.monotonic() - started < 5
    assert verdicts(impacts) == [RAISED, RAISED]
    assert all("replay budget ran out" in impact.detail for impact in impacts)


def test_nothing_is_printed_and_nothing_escapes(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Pydantic's serializer warnings and the SDK's debug log would print; odd requests must not break a replay."""
    caplog.set_level(logging.DEBUG)
    odd_request = {"model": 42, "messages": "hi", "tools": [{"type": "custom"}, "x"], "stream": True}
    raw = stream(sse(tool_call({"city": "Paris"}), chunk({}, "tool_calls")), odd_request)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        impacts = replay(raw, CHAT)
    assert caught == []
    assert verdicts(impacts) == [LOST, LOST]
    assert capsys.readouterr() == ("", "")
    assert caplog.records == []
    assert not logging.getLogger("openai._base_client").disabled


def test_routes_without_a_probe_have_no_impact() -> None:
    assert replay(answer(COMPLETION), "POST /v1/embeddings") == ()
    assert severity_of(()) is Severity.ERROR


# --- severity and assess --------------------------------------------------------------------------


def test_severity_is_warning_only_when_every_probe_parsed() -> None:
    parsed = ClientImpact("a", P)
    assert severity_of([parsed, parsed]) is Severity.WARNING
    for other in (LOST, RAISED, WRONG):
        assert severity_of([parsed, ClientImpact("b", other)]) is Severity.ERROR


def result(check: str, outcome: Outcome = Outcome.FAILED, **fields: Any) -> CheckResult:
    return CheckResult(
        check=check,
        description="",
        layer=Layer.SCENARIO,
        profile="edgee",
        target="t",
        route=CHAT,
        scenario="s",
        outcome=outcome,
        **fields,
    )


def test_assess_measures_failures_and_keeps_declared_severities() -> None:
    tolerated = answer(COMPLETION)
    broken = stream(sse(TEXT[0], b"{not json"))
    results = [
        result("shape", raw=tolerated),
        result("declared", raw=tolerated, severity=Severity.ERROR),
        result("stream", raw=broken),
        result("no-raw"),
        result("no-raw-declared", severity=Severity.WARNING),
        result("passed", Outcome.PASSED, raw=tolerated),
    ]
    out = {r.check: r for r in assess(results)}
    assert all(r.raw is None for r in out.values())
    assert out["shape"].severity is Severity.WARNING and verdicts(out["shape"].impact) == [P]
    assert out["declared"].severity is Severity.ERROR and verdicts(out["declared"].impact) == [P]
    assert out["stream"].severity is Severity.ERROR and verdicts(out["stream"].impact) == [RAISED, RAISED]
    assert out["no-raw"].severity is Severity.ERROR and out["no-raw"].impact == ()
    assert out["no-raw-declared"].severity is Severity.WARNING
    assert out["passed"] == dataclasses.replace(results[-1], raw=None)
    assert out["passed"].severity is None and out["passed"].impact == ()


def test_assess_replays_a_shared_answer_once() -> None:
    """Several checks judge one answer: the replay is cached per answer (same tuple, not a copy)."""
    shared = answer(COMPLETION)
    twin = answer(COMPLETION)
    out = assess([result("a", raw=shared), result("b", raw=shared), result("c", raw=twin)])
    assert out[0].impact is out[1].impact
    assert out[2].impact is not out[0].impact
    assert out[2].impact == out[0].impact
