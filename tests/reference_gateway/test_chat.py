"""Chat completions through the real stack (mock provider + reference gateway) with the OpenAI SDK."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageFunctionToolCall

from gateproof.cli.launch import LocalStack

from .conftest import STACK_UPSTREAM_ENV, fingerprint, journal, new_cid, sse_events, user

WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _edgee_usage(usage: Any) -> dict[str, Any]:
    """The usage object as sent (the SDK's model knows OpenAI's names; Edgee's arrive as extras)."""
    dumped: dict[str, Any] = usage.model_dump(exclude_unset=True)
    return dumped


def test_non_stream_answer_has_public_model_and_edgee_usage(sdk: openai.OpenAI, stack: LocalStack) -> None:
    cid = new_cid()
    response = sdk.chat.completions.with_raw_response.create(
        model="openai/gpt-4o", messages=user("Say hello.", tokens=7, cid=cid), max_tokens=50
    )
    completion = response.parse()
    assert response.headers["x-edgee-provider"] == "openai"
    assert completion.object == "chat.completion"
    assert completion.model == "openai/gpt-4o"
    assert len(completion.choices) == 1
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content
    usage = _edgee_usage(completion.usage)
    assert usage["completion_tokens"] == 7
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    assert "prompt_tokens_details" not in usage and "completion_tokens_details" not in usage
    # The gateway reports the provider's true counts, not its own guess.
    (entry,) = journal(stack.mock.url, cid)
    assert usage["prompt_tokens"] == entry["usage"]["prompt_tokens"]


def test_what_reaches_the_provider(raw: httpx.Client, auth: dict[str, str], stack: LocalStack) -> None:
    cid = new_cid()
    body = {
        "model": "openai/gpt-4o-mini",
        "messages": user("hi", cid=cid),
        "temperature": 0.3,
        "seed": 11,
        "edgee_tool_ids": [],
        "tags": ["a", "b"],
        "enable_debug": False,
    }
    headers = {**auth, "X-Edgee-Tags": "team-x", "X-Edgee-Debug": "false", "X-Edgee-Enable-Compression": "0"}
    response = raw.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    (entry,) = journal(stack.mock.url, cid)
    forwarded = entry["body"]
    assert forwarded["model"] == "gpt-4o-mini"
    # Unknown fields pass through unchanged (D11); Edgee fields never leave the gateway.
    assert forwarded["temperature"] == 0.3 and forwarded["seed"] == 11
    assert not [name for name in forwarded if name.startswith("edgee_") or name in ("tags", "enable_debug")]
    assert not [name for name in entry["headers"] if name.lower().startswith("x-edgee-")]
    # The provider sees the gateway's own credential, never the client's key.
    upstream_key = os.environ[STACK_UPSTREAM_ENV]
    assert entry["headers"]["authorization"] == "Bearer " + fingerprint(upstream_key)
    assert fingerprint(stack.api_key) not in json.dumps(entry)


def test_stream_without_include_usage_has_no_usage_chunk(sdk: openai.OpenAI, stack: LocalStack) -> None:
    cid = new_cid()
    chunks = list(
        sdk.chat.completions.create(
            model="openai/gpt-4o", messages=user("Count.", tokens=5, cid=cid), stream=True
        )
    )
    assert chunks, "no chunks"
    assert all(chunk.usage is None for chunk in chunks)
    assert all(len(chunk.choices) == 1 for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert all(chunk.model == "openai/gpt-4o" and chunk.object == "chat.completion.chunk" for chunk in chunks)
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices[0].finish_reason]
    assert finishes == ["stop"]
    # The gateway still asked for usage upstream: it accounts for every request.
    (entry,) = journal(stack.mock.url, cid)
    assert entry["body"]["stream_options"] == {"include_usage": True}
    assert entry["body"]["model"] == "gpt-4o"


def test_stream_with_include_usage_ends_with_the_usage_chunk(sdk: openai.OpenAI, stack: LocalStack) -> None:
    cid = new_cid()
    chunks = list(
        sdk.chat.completions.create(
            model="openai/gpt-4o",
            messages=user("Count.", tokens=6, cid=cid),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *content, last = chunks
    assert last.choices == []
    usage = _edgee_usage(last.usage)
    assert usage["completion_tokens"] == 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    assert last.id == content[0].id
    assert all(chunk.usage is None and len(chunk.choices) == 1 for chunk in content)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in content)
    (entry,) = journal(stack.mock.url, cid)
    assert usage["prompt_tokens"] == entry["usage"]["prompt_tokens"]
    assert text


def test_stream_wire_format(raw: httpx.Client, auth: dict[str, str]) -> None:
    body = {
        "model": "openai/gpt-4o",
        "messages": user("hi", tokens=3, cid=new_cid()),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = raw.post("/v1/chat/completions", json=body, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-edgee-provider"] == "openai"
    assert "content-encoding" not in response.headers
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert response.text.endswith("data: [DONE]\n\n")
    usage_chunk = json.loads(events[-2])
    assert usage_chunk["choices"] == [] and usage_chunk["object"] == "chat.completion.chunk"


def test_tools_and_tool_choice_pass_through(sdk: openai.OpenAI, stack: LocalStack) -> None:
    cid = new_cid()
    completion = sdk.chat.completions.create(
        model="openai/gpt-4o",
        messages=user("Weather in Paris?", scenario="tool_call", cid=cid),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    (entry,) = journal(stack.mock.url, cid)
    assert entry["body"]["tools"] == [WEATHER_TOOL]
    assert entry["body"]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_streamed_tool_call(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model="openai/gpt-4o",
            messages=user("Weather?", scenario="tool_call", cid=new_cid()),
            tools=[WEATHER_TOOL],
            tool_choice="auto",
            stream=True,
        )
    )
    fragments = [call for chunk in chunks for call in (chunk.choices[0].delta.tool_calls or [])]
    assert fragments and all(fragment.index == 0 for fragment in fragments)
    arguments = "".join(fragment.function.arguments or "" for fragment in fragments if fragment.function)
    assert isinstance(json.loads(arguments), dict)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_models_list_needs_no_key_and_filters_by_provider(stack: LocalStack) -> None:
    with httpx.Client(base_url=stack.gateway.url, timeout=10, trust_env=False) as client:
        listed = client.get("/v1/models")
        filtered = client.get("/v1/models", params={"provider": "openai"})
        nobody = client.get("/v1/models", params={"provider": "nobody"})
    assert listed.status_code == 200
    ids = [model["id"] for model in listed.json()["data"]]
    assert {"openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1"} <= set(ids)
    assert {"anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"} <= set(ids)
    assert all(
        model["object"] == "model" and model["owned_by"] == model["id"].split("/")[0]
        for model in listed.json()["data"]
    )
    assert filtered.json()["data"] == [m for m in listed.json()["data"] if m["owned_by"] == "openai"]
    assert nobody.json() == {"object": "list", "data": []}
    # The SDK reads the same list.
    with openai.OpenAI(base_url=stack.base_url, api_key="not-a-key", max_retries=0) as anonymous:
        assert [model.id for model in anonymous.models.list()] == ids
