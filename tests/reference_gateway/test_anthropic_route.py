"""The ``anthropic/...`` route: the official OpenAI SDK -> reference gateway -> the mock's Messages API.

Every test runs the real stack (strict mock, real gateway) and reads the mock's journal to
see what the gateway actually sent in Anthropic's dialect, so a translation that drops a
system prompt, a tool result id or a limit fails here, as does usage that is not the
provider's own count.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import openai
import pytest

from gateproof.cli.launch import LocalStack
from gateproof.reference_gateway.providers.anthropic import (
    ANTHROPIC_VERSION,
    DEFAULT_MAX_TOKENS,
    usage_from_anthropic,
)

from .conftest import TIMEOUT, directive, journal, new_cid, sse_events, user

MODEL = "anthropic/claude-haiku-4-5"
UPSTREAM = "claude-haiku-4-5"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _only_entry(stack: LocalStack, cid: str) -> dict[str, Any]:
    entries = journal(stack.mock.url, cid)
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["path"] == "/anthropic/v1/messages"
    return entry


def _prompt_usage(entry: dict[str, Any]) -> int:
    usage = entry["usage"]
    return int(
        usage["input_tokens"]
        + usage.get("cache_read_input_tokens", 0)
        + usage.get("cache_creation_input_tokens", 0)
    )


def test_plain_text_with_system_prompt(stack: LocalStack, sdk: openai.OpenAI) -> None:
    cid = new_cid("anth")
    response = sdk.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"Say hi {directive(scenario='text', tokens=5, cid=cid)}"},
        ],
    )
    entry = _only_entry(stack, cid)
    body = entry["body"]
    assert body["model"] == UPSTREAM
    assert body["system"] == "You are terse."
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS  # the client set no limit; Anthropic needs one
    assert entry["headers"].get("anthropic-version") == ANTHROPIC_VERSION
    assert entry["status"] == 200
    assert response.model == MODEL
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content
    assert response.usage is not None
    assert response.usage.prompt_tokens == _prompt_usage(entry)
    assert response.usage.completion_tokens == entry["usage"]["output_tokens"]
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_limits_and_stop_are_translated(stack: LocalStack, sdk: openai.OpenAI) -> None:
    cid = new_cid("anth")
    response = sdk.chat.completions.create(
        model=MODEL,
        messages=user("Tell me a long story", scenario="length", tokens=40, cid=cid),
        max_completion_tokens=7,
        stop=["END"],
        temperature=0.5,
    )
    body = _only_entry(stack, cid)["body"]
    assert body["max_tokens"] == 7
    assert body["stop_sequences"] == ["END"]
    assert body["temperature"] == 0.5
    assert response.choices[0].finish_reason == "length"


def test_tool_call_round_trip(stack: LocalStack, sdk: openai.OpenAI) -> None:
    cid = new_cid("anth")
    first = sdk.chat.completions.create(
        model=MODEL,
        messages=user("Weather in Paris?", scenario="tool_call", tool="get_weather", cid=cid),
        tools=[TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    sent = journal(stack.mock.url, cid)[0]["body"]
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": TOOL["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls
    call = calls[0]
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)

    second = sdk.chat.completions.create(
        model=MODEL,
        messages=[
            *user("Weather in Paris?", scenario="text", tokens=4, cid=cid),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"},
        ],
        tools=[TOOL],
    )
    assert second.choices[0].finish_reason == "stop"
    entries = journal(stack.mock.url, cid)
    assert len(entries) == 2 and entries[1]["status"] == 200
    turns = entries[1]["body"]["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    tool_use = turns[1]["content"][0]
    assert tool_use == {
        "type": "tool_use",
        "id": call.id,
        "name": "get_weather",
        "input": json.loads(call.function.arguments),
    }
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}]


def test_consecutive_tool_results_share_one_user_turn(stack: LocalStack, sdk: openai.OpenAI) -> None:
    cid = new_cid("anth")
    calls = [
        {
            "id": f"toolu_{n}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": c})},
        }
        for n, c in enumerate(["Paris", "Oslo"])
    ]
    sdk.chat.completions.create(
        model=MODEL,
        messages=[
            *user("Weather?", scenario="text", tokens=3, cid=cid),
            {"role": "assistant", "content": "Checking.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "toolu_0", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "4C"},
        ],
        tools=[TOOL],
    )
    turns = _only_entry(stack, cid)["body"]["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][0] == {"type": "text", "text": "Checking."}
    assert [b["id"] for b in turns[1]["content"][1:]] == ["toolu_0", "toolu_1"]
    assert [(b["type"], b["tool_use_id"]) for b in turns[2]["content"]] == [
        ("tool_result", "toolu_0"),
        ("tool_result", "toolu_1"),
    ]


def test_streamed_text_and_usage(stack: LocalStack, sdk: openai.OpenAI) -> None:
    cid = new_cid("anth")
    stream = sdk.chat.completions.create(
        model=MODEL,
        messages=user("Stream please", scenario="text", tokens=12, seed=7, cid=cid),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = chunks[-1].usage
    entry = _only_entry(stack, cid)
    assert entry["body"]["stream"] is True
    assert text and finishes == ["stop"]
    assert all(c.model == MODEL for c in chunks)
    assert usage is not None and not chunks[-1].choices
    assert usage.completion_tokens == entry["usage"]["output_tokens"]
    assert usage.prompt_tokens == _prompt_usage(entry)

    again = sdk.chat.completions.create(
        model=MODEL, messages=user("Stream please", scenario="text", tokens=12, seed=7, cid=cid)
    )
    assert again.choices[0].message.content == text  # the same plan, streamed or not


def test_streamed_tool_call_is_assembled(stack: LocalStack, sdk: openai.OpenAI) -> None:
    cid = new_cid("anth")
    messages = user("Weather in Paris?", scenario="tool_call", tool="get_weather", calls=2, cid=cid)
    with sdk.chat.completions.stream(model=MODEL, messages=messages, tools=[TOOL]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 2
    assert all(c.id.startswith("toolu_") and c.function.name == "get_weather" for c in calls)
    for c in calls:
        assert isinstance(json.loads(c.function.arguments), dict)
    plain = sdk.chat.completions.create(model=MODEL, messages=messages, tools=[TOOL])
    assert [c.function.arguments for c in plain.choices[0].message.tool_calls or []] == [
        c.function.arguments for c in calls
    ]


def test_streamed_length_finish(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model=MODEL,
        messages=user("Long story", scenario="text", tokens=30, cid=new_cid("anth")),
        max_tokens=5,
        stream=True,
    )
    finishes = [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]


def test_refusal_becomes_content_filter(sdk: openai.OpenAI) -> None:
    response = sdk.chat.completions.create(
        model=MODEL, messages=user("Do something bad", scenario="refusal", cid=new_cid("anth"))
    )
    choice = response.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.content is None
    assert choice.message.refusal


def test_overloaded_529_is_a_provider_error(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid = new_cid("anth")
    response = raw.post(
        "/v1/chat/completions",
        headers=auth,
        json={"model": MODEL, "messages": user("Hi", status=529, cid=cid)},
    )
    # overload is transient (D44): one retry on the same route, then the failure is answered
    assert [entry["status"] for entry in journal(stack.mock.url, cid)] == [529, 529]
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "provider_error"
    assert response.headers.get("x-edgee-provider") == "anthropic"


def test_rate_limit_keeps_retry_after(raw: httpx.Client, auth: dict[str, str]) -> None:
    response = raw.post(
        "/v1/chat/completions",
        headers=auth,
        json={"model": MODEL, "messages": user("Hi", status=429, retry_after=7, cid=new_cid("anth"))},
        timeout=TIMEOUT,
    )
    assert response.status_code == 429
    assert response.headers.get("retry-after") == "7"


def _sha12(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def test_provider_key_is_the_anthropic_one(stack: LocalStack, sdk: openai.OpenAI) -> None:
    """The gateway sends the Anthropic provider's own key, in x-api-key: not OpenAI's, not the client's."""
    cid = new_cid("anth")
    sdk.chat.completions.create(model=MODEL, messages=user("Hi", cid=cid))
    prints = _only_entry(stack, cid)["secret_fingerprints"]
    assert prints == {"x-api-key": _sha12(stack.keys["upstream-anthropic"])}
    assert stack.keys["upstream-anthropic"] != stack.keys["upstream"]


@pytest.mark.parametrize("choice, expected", [("auto", {"type": "auto"}), ("none", {"type": "none"})])
def test_tool_choice_mapping(
    stack: LocalStack, sdk: openai.OpenAI, choice: str, expected: dict[str, str]
) -> None:
    cid = new_cid("anth")
    sdk.chat.completions.create(
        model=MODEL,
        messages=user("Hi", scenario="text", tokens=2, cid=cid),
        tools=[TOOL],
        tool_choice=choice,
    )
    assert _only_entry(stack, cid)["body"]["tool_choice"] == expected


def _streamed(raw: httpx.Client, auth: dict[str, str], content: str) -> list[str]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": True}
    response = raw.post("/v1/chat/completions", headers=auth, json=body)
    assert response.status_code == 200
    return sse_events(response.text)


def test_mid_stream_error_event_ends_the_stream_without_done(raw: httpx.Client, auth: dict[str, str]) -> None:
    events = _streamed(raw, auth, "Hi " + directive(scenario="text", tokens=20, fault="mid_stream_error"))
    assert events[-1] != "[DONE]"
    last = json.loads(events[-1])
    assert last["error"]["code"] == "provider_error"
    assert "mid_stream_error" in last["error"]["message"]  # the provider's own words, from error.message
    assert any(json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-1])


def test_stream_cut_before_message_stop_is_a_failure(raw: httpx.Client, auth: dict[str, str]) -> None:
    events = _streamed(raw, auth, "Hi " + directive(scenario="text", tokens=8, fault="no_done"))
    assert events[-1] != "[DONE]"
    assert json.loads(events[-1])["error"]["code"] == "provider_error"


def test_streamed_refusal_finishes_content_filter(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model=MODEL, messages=user("Do something bad", scenario="refusal", cid=new_cid("anth")), stream=True
    )
    finishes = [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason]
    assert finishes == ["content_filter"]


def test_user_text_after_tool_results_joins_their_turn(stack: LocalStack, sdk: openai.OpenAI) -> None:
    cid = new_cid("anth")
    call = {"id": "toolu_x", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    sdk.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Be kind."},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_x", "content": "18C"},
            {"role": "user", "content": f"And tomorrow? {directive(scenario='text', tokens=2, cid=cid)}"},
        ],
        tools=[TOOL],
        parallel_tool_calls=False,
    )
    body = _only_entry(stack, cid)["body"]
    assert body["system"] == "Be kind."
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    turns = body["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert [block["type"] for block in turns[2]["content"]] == ["tool_result", "text"]


def _usage_of(raw: httpx.Client, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """The usage a client reads from a raw answer (the stream's usage chunk, or the body's)."""
    response = raw.post("/v1/chat/completions", headers=auth, json=body)
    assert response.status_code == 200, response.text
    if not body.get("stream"):
        usage: dict[str, Any] = response.json()["usage"]
        return usage
    (usage_chunk,) = [c for c in map(json.loads, sse_events(response.text)[:-1]) if c.get("usage")]
    assert usage_chunk["choices"] == []
    streamed: dict[str, Any] = usage_chunk["usage"]
    return streamed


@pytest.mark.parametrize("stream", [False, True])
def test_cache_reads_count_in_the_prompt_and_as_cached(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], stream: bool
) -> None:
    cid = new_cid("anth")
    body: dict[str, Any] = {"model": MODEL, "messages": user("Hi", tokens=3, cached=4, cid=cid)}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    usage = _usage_of(raw, auth, body)
    truth = _only_entry(stack, cid)["usage"]
    assert truth["cache_read_input_tokens"] == 4  # the mock read 4 prompt tokens from its cache
    assert usage["prompt_tokens"] == _prompt_usage(_only_entry(stack, cid)) > truth["input_tokens"]
    assert usage["input_tokens_details"]["cached_tokens"] == 4
    assert usage["completion_tokens"] == truth["output_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_cache_writes_count_in_the_prompt_but_not_as_cached() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 5,
            "cache_read_input_tokens": 7,
            "cache_creation_input_tokens": 11,
            "output_tokens": 2,
        }
    )
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens) == (23, 7, 2)


def test_required_tool_choice_is_refused_by_the_spec(raw: httpx.Client, auth: dict[str, str]) -> None:
    """D25: the spec allows only auto, none and a named function; the adapter would map required to any."""
    body = {"model": MODEL, "messages": user("Hi"), "tools": [TOOL], "tool_choice": "required"}
    response = raw.post("/v1/chat/completions", headers=auth, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tool_choice"
