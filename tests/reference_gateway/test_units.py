"""The pure pieces of the gateway, one behaviour at a time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx_sse import ServerSentEvent
from starlette.datastructures import Headers

from gateproof.openapi import validators
from gateproof.reference_gateway import (
    ChatCall,
    GatewayError,
    KeyConfig,
    Keyring,
    ModelConfig,
    ProviderConfig,
    Usage,
)
from gateproof.reference_gateway._events import Chunk, StreamFailure
from gateproof.reference_gateway._hooks import NO_HOOKS
from gateproof.reference_gateway._routing import Route, is_model_id
from gateproof.reference_gateway._validation import RequestValidator, parse_boolean_header
from gateproof.reference_gateway.providers import OpenAIAdapter

MODEL = ModelConfig(
    id="openai/gpt-4o",
    provider="openai",
    upstream_model="gpt-4o",
    created=1,
    owned_by="openai",
    input_price_per_mtok=2.5,
    output_price_per_mtok=10.0,
)
PROVIDER = ProviderConfig(name="openai", dialect="openai", base_url="http://up/v1", api_key="sk-up")
ROUTE = Route(MODEL, PROVIDER)


def _status(call: Any) -> int:
    with pytest.raises(GatewayError) as caught:
        call()
    return caught.value.status


def test_keyring() -> None:
    keyring = Keyring(
        [
            KeyConfig("default", "k-default"),
            KeyConfig("off", "k-off", active=False),
            KeyConfig("narrow", "k-narrow", allowed_models=frozenset({"openai/gpt-4o-mini"})),
        ]
    )
    assert keyring.authenticate("Bearer k-default").name == "default"
    assert keyring.authenticate("bearer   k-default ").name == "default"
    assert [
        _status(lambda h=h: keyring.authenticate(h)) for h in (None, "", "k-default", "Basic k-default")
    ] == [401] * 4
    assert _status(lambda: keyring.authenticate("Bearer k-defaul")) == 401
    assert _status(lambda: keyring.authenticate("Bearer k-off")) == 403
    narrow = keyring.authenticate("Bearer k-narrow")
    narrow.check_model("openai/gpt-4o-mini")
    assert _status(lambda: narrow.check_model("openai/gpt-4o")) == 403


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("openai/gpt-4o", True),
        ("together/meta-llama/Llama-3-8b", True),
        ("anthropic/claude-sonnet-4.5", True),
        ("gpt-4o", False),
        ("/gpt-4o", False),
        ("openai/", False),
        ("openai//gpt", False),
        ("open ai/gpt", False),
        ("openai/gpt 4o", False),
    ],
)
def test_model_id_shape(value: str, valid: bool) -> None:
    assert is_model_id(value) is valid


def test_usage_in_edgee_names_and_cost() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=200, cached_tokens=3, reasoning_tokens=4)
    assert usage.to_edgee() == {
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "total_tokens": 1200,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens_details": {"reasoning_tokens": 4},
    }
    assert Usage.from_edgee(usage.to_edgee()) == usage
    assert Usage.from_edgee({"prompt_tokens": -1, "completion_tokens": "x"}) == Usage()
    # 1000 x $2.50/M + 200 x $10/M = $0.0045 = 4500 micro-USD
    assert usage.cost_micro_usd(MODEL) == 4500


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("TRUE", True), ("1", True), ("False", False), ("0", False)]
)
def test_boolean_header(value: str, expected: bool) -> None:
    assert parse_boolean_header("X-Edgee-Debug", value) is expected


def test_tags_and_switches_from_body_and_headers() -> None:
    checker = RequestValidator(validators())
    options = checker.options(
        {"tags": ["a", "b", ""], "enable_debug": False},
        Headers({"x-edgee-tags": " b , c,,a, d ", "x-edgee-debug": "1"}),
    )
    assert options.tags == ("a", "b", "c", "d")
    # compression is not said either way: None, so the key's default decides (D30)
    assert options.debug is True and options.compression is None
    assert checker.options({"enable_debug": True}, Headers({})).debug is True


def test_openai_request_is_built_from_the_forwardable_body() -> None:
    body: dict[str, Any] = {
        "model": "openai/gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": False, "future_option": 1},
        "temperature": 0.2,
        "edgee_tool_ids": ["x"],
        "edgee_pending_id": "p",
        "tags": ["t"],
        "enable_debug": True,
    }
    call = ChatCall(body=body, route=ROUTE, edgee_headers={"X-Edgee-Tags": "t"})
    request = OpenAIAdapter(PROVIDER).build_request(call)
    assert request.url == "http://up/v1/chat/completions"
    assert request.json == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True, "future_option": 1},
        "temperature": 0.2,
    }
    assert request.headers["Authorization"] == "Bearer sk-up"
    assert not [name for name in request.headers if name.lower().startswith("x-edgee")]
    request.json["messages"][0]["content"] = "changed"
    assert body["messages"][0]["content"] == "hi", "the client's body is never modified"
    assert call.include_usage is False


def test_the_client_key_rides_along_but_never_goes_upstream() -> None:
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    call = ChatCall(body=body, route=ROUTE, client_authorization="Bearer gp-client-secret")
    request = NO_HOOKS.on_upstream(OpenAIAdapter(PROVIDER).build_request(call), call)
    assert request.headers["Authorization"] == "Bearer sk-up"
    assert "gp-client-secret" not in repr(call) + json.dumps(request.json)


def test_openai_response_and_chunks_are_translated() -> None:
    adapter = OpenAIAdapter(PROVIDER)
    call = ChatCall(body={"model": "openai/gpt-4o", "messages": []}, route=ROUTE)
    upstream_usage = {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 99,
        "prompt_tokens_details": {"cached_tokens": 1, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    response = adapter.translate_response(
        call,
        {
            "id": "c",
            "object": "chat.completion",
            "model": "gpt-4o",
            "choices": [],
            "usage": upstream_usage,
            "x": 1,
        },
    )
    assert response["model"] == "openai/gpt-4o" and response["x"] == 1
    assert response["usage"] == Usage(5, 2, 1, 1).to_edgee()

    decoder = adapter.stream_decoder(call)
    content = decoder.feed(
        ServerSentEvent(data=json.dumps({"id": "c", "model": "gpt-4o", "choices": [{}], "usage": None}))
    )
    assert content == [Chunk({"id": "c", "model": "openai/gpt-4o", "choices": [{}]})]
    (usage_chunk,) = decoder.feed(
        ServerSentEvent(data=json.dumps({"id": "c", "choices": [], "usage": upstream_usage}))
    )
    assert isinstance(usage_chunk, Chunk) and usage_chunk.is_usage_only
    assert usage_chunk.data["usage"]["total_tokens"] == 7
    finished_before = decoder.finished
    assert decoder.feed(ServerSentEvent(data="[DONE]")) == []
    assert (finished_before, decoder.finished) == (False, True)
    (failure,) = adapter.stream_decoder(call).feed(ServerSentEvent(data='{"error": {"message": "boom"}}'))
    assert isinstance(failure, StreamFailure) and "boom" in failure.error.message
    (broken,) = adapter.stream_decoder(call).feed(ServerSentEvent(data="{nope"))
    assert isinstance(broken, StreamFailure) and broken.error.status == 502
