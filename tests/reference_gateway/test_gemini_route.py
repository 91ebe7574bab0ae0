"""The ``google/...`` route: the OpenAI SDK through the reference gateway to the mock's Gemini dialect.

A strict mock (it accepts only its own key, knows only Gemini's catalogue) and a
gateway wired to it under ``/gemini`` are started for this module, so a translation
that Gemini would refuse fails here with the provider's own 400, and the journal shows
what the gateway actually sent.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from httpx_sse import ServerSentEvent
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from gateproof.cli.launch import KEY_ENVS, UPSTREAMS, LocalServer, LocalStack, start_server
from gateproof.mock_providers.dialects import GEMINI_PREFIX
from gateproof.reference_gateway._call import ChatCall
from gateproof.reference_gateway._config import ModelConfig, ProviderConfig
from gateproof.reference_gateway._events import Chunk, StreamFailure
from gateproof.reference_gateway._routing import Route
from gateproof.reference_gateway.providers import GeminiAdapter, UpstreamFormatError
from gateproof.reference_gateway.providers.gemini import usage_from_gemini

from .conftest import KEYS, TIMEOUT, fingerprint, journal, new_cid, user

MODEL = "google/gemini-2.5-flash"
#: the launcher's row for the google provider (its key variable and its role in the stack's keys)
GOOGLE = next(upstream for upstream in UPSTREAMS if upstream.provider == "google")
GOOGLE_KEY_ENV = GOOGLE.key_env
GOOGLE_KEY = "gk-rg-upstream-" + secrets.token_urlsafe(12)

WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLOCK: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "description": "The time now.", "parameters": {"type": "object"}},
}


@pytest.fixture(scope="module")
def gemini_mock(logs_dir: Path) -> Iterator[LocalServer]:
    """A mock that, like Google, answers only its own key."""
    server = start_server(
        "mock-gemini",
        ["mock", "--api-key-env", GOOGLE_KEY_ENV],
        env={GOOGLE_KEY_ENV: GOOGLE_KEY},
        log_dir=logs_dir / "gemini",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gemini_gateway(gemini_mock: LocalServer, logs_dir: Path) -> Iterator[LocalServer]:
    server = start_server(
        "gateway-gemini",
        ["gateway", "--upstream", f"google={gemini_mock.url}{GEMINI_PREFIX}", "--log-level", "warning"],
        env={**{KEY_ENVS[role]: key for role, key in KEYS.items()}, GOOGLE_KEY_ENV: GOOGLE_KEY},
        log_dir=logs_dir / "gemini",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(gemini_gateway: LocalServer) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(
        base_url=gemini_gateway.url + "/v1", api_key=KEYS["default"], max_retries=0, timeout=15.0
    )
    try:
        yield sdk
    finally:
        sdk.close()


def _entry(mock: LocalServer, cid: str) -> dict[str, Any]:
    entries = journal(mock.url, cid)
    assert len(entries) == 1 and entries[0]["dialect"] == "gemini"
    entry: dict[str, Any] = entries[0]
    return entry


def _usage_matches(usage: Any, entry: dict[str, Any]) -> None:
    truth = entry["usage"]
    assert usage.prompt_tokens == truth["promptTokenCount"]
    assert usage.completion_tokens == truth["candidatesTokenCount"]
    assert usage.total_tokens == truth["totalTokenCount"]


def _stream(client: openai.OpenAI, **kwargs: Any) -> tuple[str, dict[int, dict[str, str]], str | None, Any]:
    """(content, tool calls by index, finish_reason, usage) assembled from an SDK stream."""
    content: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish: str | None = None
    usage: Any = None
    with client.chat.completions.create(
        model=MODEL, stream=True, stream_options={"include_usage": True}, **kwargs
    ) as stream:
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                content.append(choice.delta.content or "")
                for call in choice.delta.tool_calls or []:
                    slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] += call.id or ""
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
                finish = choice.finish_reason or finish
    return "".join(content), calls, finish, usage


def test_text_with_system_prompt(client: openai.OpenAI, gemini_mock: LocalServer) -> None:
    cid = new_cid("gem")
    response = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer briefly."}, *user("Say hello.", tokens=7, cid=cid)],
        max_tokens=50,
        stop=["\n\n"],
        temperature=0.5,
    )
    completion = response.parse()
    assert response.headers["x-edgee-provider"] == "google"
    assert completion.model == MODEL
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content
    entry = _entry(gemini_mock, cid)
    assert entry["path"] == f"{GEMINI_PREFIX}/v1beta/models/gemini-2.5-flash:generateContent"
    assert entry["status"] == 200
    assert entry["headers"]["x-goog-api-key"] == fingerprint(GOOGLE_KEY)
    body = entry["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "Answer briefly."}]}
    assert [c["role"] for c in body["contents"]] == ["user"]
    assert body["contents"][0]["parts"][0]["text"].startswith("Say hello.")
    assert body["generationConfig"] == {"maxOutputTokens": 50, "stopSequences": ["\n\n"], "temperature": 0.5}
    assert completion.usage is not None and completion.usage.completion_tokens == 7
    _usage_matches(completion.usage, entry)


def test_stream_text_equals_the_whole_answer(client: openai.OpenAI, gemini_mock: LocalServer) -> None:
    cid = new_cid("gem")
    messages = user("Tell me something.", tokens=9, cid=cid)
    whole = client.chat.completions.create(model=MODEL, messages=messages)
    content, calls, finish, usage = _stream(client, messages=messages)
    assert content == whole.choices[0].message.content
    assert calls == {} and finish == "stop"
    first, second = journal(gemini_mock.url, cid)
    assert first["path"].endswith(":generateContent")
    assert second["path"].endswith(":streamGenerateContent") and second["query"] == "alt=sse"
    assert usage is not None and usage.completion_tokens == 9
    _usage_matches(usage, second)


def test_tool_call_round_trip(client: openai.OpenAI, gemini_mock: LocalServer) -> None:
    cid = new_cid("gem")
    messages: list[ChatCompletionMessageParam] = [*user("Weather in Paris?", script="get_weather", cid=cid)]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER, CLOCK])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments, dict)
    messages.append(choice.message.model_dump(exclude_none=True))  # type: ignore[arg-type]
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER, CLOCK])
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content
    asked, answered = journal(gemini_mock.url, cid)
    declarations = asked["body"]["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["get_weather", "get_time"]
    assert declarations[0]["parameters"] == WEATHER["function"]["parameters"]
    contents = answered["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [{"functionCall": {"name": "get_weather", "args": arguments}}]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]
    _usage_matches(second.usage, answered)


def test_plain_text_tool_result_is_wrapped(client: openai.OpenAI, gemini_mock: LocalServer) -> None:
    cid = new_cid("gem")
    messages: list[ChatCompletionMessageParam] = [
        *user("Time?", script="get_time", cid=cid),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "noon"},
    ]
    client.chat.completions.create(model=MODEL, messages=messages, tools=[CLOCK])
    contents = _entry(gemini_mock, cid)["body"]["contents"]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}
    ]


@pytest.mark.parametrize(
    ("tool_choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        ),
    ],
)
def test_tool_choice(client: openai.OpenAI, gemini_mock: LocalServer, tool_choice: Any, config: Any) -> None:
    cid = new_cid("gem")
    client.chat.completions.create(
        model=MODEL, messages=user("x", cid=cid), tools=[WEATHER, CLOCK], tool_choice=tool_choice
    )
    assert _entry(gemini_mock, cid)["body"]["toolConfig"] == {"functionCallingConfig": config}


def test_streamed_tool_call_equals_the_whole_answer(client: openai.OpenAI, gemini_mock: LocalServer) -> None:
    cid = new_cid("gem")
    messages = user("Weather?", tool="get_weather", calls=2, cid=cid)
    whole = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    content, calls, finish, usage = _stream(client, messages=messages, tools=[WEATHER])
    assert finish == "tool_calls" and content == ""
    expected = {
        index: {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
        for index, call in enumerate(whole.choices[0].message.tool_calls or [])
        if isinstance(call, ChatCompletionMessageFunctionToolCall)
    }
    assert len(expected) == 2 and calls == expected
    assert len({call["id"] for call in calls.values()}) == 2
    _usage_matches(usage, journal(gemini_mock.url, cid)[1])


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_finishes_length(client: openai.OpenAI, gemini_mock: LocalServer, stream: bool) -> None:
    cid = new_cid("gem")
    messages = user("Go on.", scenario="length", tokens=5, cid=cid)
    if stream:
        _, _, finish, usage = _stream(client, messages=messages, max_tokens=5)
    else:
        completion = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=5)
        finish, usage = completion.choices[0].finish_reason, completion.usage
    assert finish == "length"
    _usage_matches(usage, _entry(gemini_mock, cid))


@pytest.mark.parametrize("stream", [False, True])
def test_safety_stop_is_content_filter(client: openai.OpenAI, stream: bool) -> None:
    messages = user("Something bad.", scenario="refusal", cid=new_cid("gem"))
    if stream:
        content, _, finish, _ = _stream(client, messages=messages)
    else:
        completion = client.chat.completions.create(model=MODEL, messages=messages)
        # a complete answer names the refusal where the SDK exposes it (D40); content is null
        assert completion.choices[0].message.content is None
        content, finish = completion.choices[0].message.refusal or "", completion.choices[0].finish_reason
    assert finish == "content_filter" and content


@pytest.mark.parametrize("stream", [False, True])
def test_provider_503_is_502(gemini_gateway: LocalServer, stream: bool) -> None:
    body = {"model": MODEL, "messages": user("x", scenario="error", status=503), "stream": stream}
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as raw:
        response = raw.post(
            gemini_gateway.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {KEYS['default']}"},
        )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_error"
    assert response.headers["x-edgee-provider"] == "google"


def test_provider_429_is_429(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("x", scenario="error", status=429))
    assert caught.value.response.status_code == 429
    assert caught.value.code == "provider_rate_limited"


def test_provider_429_delay_in_retry_info_becomes_retry_after(client: openai.OpenAI) -> None:
    """Gemini states its delay only in the body (RetryInfo.retryDelay); the client gets Retry-After (D42)."""
    directive = {"scenario": "error", "status": 429, "retry_after": 7}
    with pytest.raises(openai.RateLimitError) as caught:
        client.with_options(max_retries=0).chat.completions.create(
            model=MODEL, messages=user("x", **directive)
        )
    assert caught.value.response.headers.get("retry-after") == "7"


# -- what the mock never sends: the adapter alone ------------------------------------------------

PROVIDER = ProviderConfig(name="google", dialect="gemini", base_url="http://up/gemini", api_key="gk-up")
CALL = ChatCall(
    body={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    route=Route(
        ModelConfig(
            id=MODEL, provider="google", upstream_model="gemini-2.5-flash", created=1, owned_by="google"
        ),
        PROVIDER,
    ),
)


def _event(payload: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(payload))


def test_thinking_and_cache_counts() -> None:
    usage = usage_from_gemini(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 40,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 30,
            "totalTokenCount": 140,
        }
    )
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 40, 140)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (40, 30)


def test_blocked_prompt_is_content_filter() -> None:
    payload = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}
    completion = GeminiAdapter(PROVIDER).translate_response(CALL, payload)
    assert completion["choices"][0]["finish_reason"] == "content_filter"
    decoder = GeminiAdapter(PROVIDER).stream_decoder(CALL)
    (chunk,) = decoder.feed(_event(payload))
    assert isinstance(chunk, Chunk) and decoder.finished
    assert chunk.data["choices"][0]["finish_reason"] == "content_filter"
    assert chunk.data["usage"]["prompt_tokens"] == 5
    with pytest.raises(UpstreamFormatError):
        GeminiAdapter(PROVIDER).translate_response(CALL, {"usageMetadata": {}})


def test_stream_error_event_fails_the_stream() -> None:
    decoder = GeminiAdapter(PROVIDER).stream_decoder(CALL)
    first = decoder.feed(_event({"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}}]}))
    assert isinstance(first[0], Chunk) and first[0].data["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "Hel",
    }
    (failure,) = decoder.feed(
        _event({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    )
    assert isinstance(failure, StreamFailure) and "overloaded" in failure.error.message
    assert not decoder.finished


def test_thoughts_are_not_content_and_a_given_call_id_is_kept() -> None:
    parts = [
        {"text": "pondering", "thought": True},
        {"functionCall": {"id": "fc-1", "name": "get_time", "args": {}}},
    ]
    payload = {"candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP"}]}
    message = GeminiAdapter(PROVIDER).translate_response(CALL, payload)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["id"] == "fc-1"


def test_the_stack_wires_google(sdk: openai.OpenAI, stack: LocalStack) -> None:
    """The launcher's stack (as `gateproof run` starts it) routes google/... to the mock's Gemini dialect."""
    cid = new_cid("gem")
    completion = sdk.chat.completions.create(model=MODEL, messages=user("hi", tokens=4, cid=cid))
    assert completion.choices[0].finish_reason == "stop"
    entry = _entry(stack.mock, cid)
    assert entry["path"].startswith(GEMINI_PREFIX + "/")
    assert entry["headers"]["x-goog-api-key"] == fingerprint(stack.keys[GOOGLE.role])
    _usage_matches(completion.usage, entry)


@pytest.mark.parametrize("stream", [False, True])
def test_cached_tokens_are_part_of_the_prompt(
    client: openai.OpenAI, gemini_mock: LocalServer, stream: bool
) -> None:
    cid = new_cid("gem")
    messages = user("Hi", tokens=3, cached=4, cid=cid)
    if stream:
        _, _, _, usage = _stream(client, messages=messages)
    else:
        usage = client.chat.completions.create(model=MODEL, messages=messages).usage
    truth = _entry(gemini_mock, cid)["usage"]
    assert truth["cachedContentTokenCount"] == 4
    _usage_matches(usage, _entry(gemini_mock, cid))  # promptTokenCount already holds the cached part
    assert usage.model_extra is not None
    assert usage.model_extra["input_tokens_details"] == {"cached_tokens": 4}
