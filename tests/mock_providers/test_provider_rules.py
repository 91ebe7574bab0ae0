"""The mock refuses what OpenAI refuses, and the official SDK reads each refusal as OpenAI's.

Each rule is listed, with its source, in mock_providers/PROVIDER_RULES.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest

from gateproof.cli.launch import LocalServer

from .conftest import AUTH, MOCK_KEY

USER = [{"role": "user", "content": "hello"}]


def _client(mock_server: LocalServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock_server.url + "/v1", api_key=key, max_retries=0, timeout=10.0)


def _error_of(raised: openai.APIStatusError) -> dict[str, Any]:
    body = raised.response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["message", "type", "param", "code"]  # OpenAI's key order
    assert raised.response.headers["content-type"] == "application/json"
    error: dict[str, Any] = body["error"]
    return error


# -- keys ---------------------------------------------------------------------------------------


def test_a_wrong_key_is_401_invalid_api_key_and_never_echoed(mock_server: LocalServer) -> None:
    wrong = "sk-wrong-" + "x" * 30 + "tail"
    with _client(mock_server, wrong) as client, pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    error = _error_of(caught.value)
    assert (error["type"], error["param"]) == ("invalid_request_error", None)
    assert wrong not in caught.value.response.text
    assert "Incorrect API key provided: sk-wr" in error["message"] and "tail" in error["message"]


def test_a_missing_key_is_401_with_no_code(mock_server: LocalServer) -> None:
    response = httpx.post(
        mock_server.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": USER}, timeout=10.0
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, None)
    assert error["message"].startswith("You didn't provide an API key.")


def test_the_model_list_needs_a_key_too(mock_server: LocalServer) -> None:
    with _client(mock_server, "sk-nope-nope-nope") as client, pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_the_configured_key_is_accepted(sdk: openai.OpenAI) -> None:
    assert sdk.chat.completions.create(model="gpt-4o", messages=USER).choices  # type: ignore[arg-type]
    assert MOCK_KEY not in repr(sdk.chat.completions.create(model="gpt-4o", messages=USER))  # type: ignore[arg-type]


# -- models and output limits ---------------------------------------------------------------------


def test_an_unknown_model_is_404_model_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="gpt-9-imaginary", messages=USER)  # type: ignore[arg-type]
    assert caught.value.code == "model_not_found"
    error = _error_of(caught.value)
    assert error["param"] is None and "The model `gpt-9-imaginary` does not exist" in error["message"]
    with pytest.raises(openai.NotFoundError) as listed:
        sdk.models.retrieve("gpt-9-imaginary")
    assert listed.value.code == "model_not_found"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_an_output_limit_below_one_is_400_integer_below_min_value(sdk: openai.OpenAI, field: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=USER, **{field: 0})  # type: ignore[call-overload]
    assert caught.value.code == "integer_below_min_value" and caught.value.param == field


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_an_output_limit_above_the_model_ceiling_is_400_invalid_value(sdk: openai.OpenAI, field: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=USER, **{field: 16385})  # type: ignore[call-overload]
    assert caught.value.code == "invalid_value" and caught.value.param == field
    assert "supports at most 16384 completion tokens" in caught.value.message
    # the ceiling itself is fine
    sdk.chat.completions.create(model="gpt-4o", messages=USER, **{field: 16384})  # type: ignore[call-overload]


def test_both_output_limits_at_once_are_400_invalid_parameter_combination(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="gpt-4o",
            messages=USER,  # type: ignore[arg-type]
            max_tokens=10,
            max_completion_tokens=10,
        )
    assert caught.value.code == "invalid_parameter_combination" and caught.value.param == "max_tokens"


def test_a_prompt_over_the_window_is_400_context_length_exceeded(sdk: openai.OpenAI) -> None:
    long_text = "word " * 20_000  # 20k tokens: over gpt-3.5-turbo's 16385, fine for gpt-4o
    messages = [{"role": "user", "content": long_text}]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-3.5-turbo", messages=messages)  # type: ignore[arg-type]
    assert caught.value.code == "context_length_exceeded" and caught.value.param == "messages"
    assert "maximum context length is 16385 tokens" in caught.value.message
    assert sdk.chat.completions.create(model="gpt-4o", messages=messages).usage.prompt_tokens > 16385  # type: ignore[arg-type, union-attr]


def test_prompt_plus_requested_output_over_the_window_is_refused(sdk: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "word " * 14_000}]
    sdk.chat.completions.create(model="gpt-3.5-turbo", messages=messages)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-3.5-turbo", messages=messages, max_tokens=4000)  # type: ignore[arg-type]
    assert caught.value.code == "context_length_exceeded"
    assert "4000 in the completion" in caught.value.message


# -- messages -----------------------------------------------------------------------------------


def _post(http: httpx.Client, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = http.post("/v1/chat/completions", json=body)
    payload: dict[str, Any] = response.json()
    return response.status_code, payload.get("error", {})


def test_a_tool_message_answering_nothing_is_400(sdk: openai.OpenAI) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    assert caught.value.param == "messages.[1].role" and caught.value.code is None
    assert "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'" in (
        caught.value.message
    )


def _call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


def test_tool_answers_must_match_the_calls(http: httpx.Client) -> None:
    asked = {"role": "assistant", "content": None, "tool_calls": [_call("call_a"), _call("call_b")]}
    user = {"role": "user", "content": "hi"}
    answered = [
        user,
        asked,
        {"role": "tool", "tool_call_id": "call_b", "content": "2"},
        {"role": "tool", "tool_call_id": "call_a", "content": "1"},
    ]
    assert _post(http, {"model": "gpt-4o", "messages": answered})[0] == 200
    wrong_id = [user, asked, {"role": "tool", "tool_call_id": "call_z", "content": "?"}]
    status, error = _post(http, {"model": "gpt-4o", "messages": wrong_id})
    assert (status, error["param"]) == (400, "messages.[2].tool_call_id")
    unanswered = [user, asked, {"role": "tool", "tool_call_id": "call_a", "content": "1"}, user]
    status, error = _post(http, {"model": "gpt-4o", "messages": unanswered})
    assert (status, error["param"], error["code"]) == (400, "messages.[1].role", None)
    assert "call_b" in error["message"]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "gpt-4o", "messages": []}, "messages", "empty_array"),
        ({"model": "gpt-4o"}, "messages", "missing_required_parameter"),
        ({"messages": USER}, None, None),
        (
            {"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            "invalid_value",
        ),
        ({"model": "gpt-4o", "messages": USER, "max_tokens": "9"}, "max_tokens", "invalid_type"),
    ],
)
def test_malformed_requests_are_400_as_openai_spells_them(
    http: httpx.Client, body: dict[str, Any], param: str | None, code: str | None
) -> None:
    status, error = _post(http, body)
    assert (status, error["type"], error["param"], error["code"]) == (
        400,
        "invalid_request_error",
        param,
        code,
    )


def test_sdk_reads_an_empty_conversation_as_bad_request(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=[])
    assert caught.value.code == "empty_array"


# -- a 5 MiB prompt ------------------------------------------------------------------------------


@pytest.mark.timing
def test_a_5_mib_prompt_is_refused_fast_and_does_not_stall_other_requests(mock_server: LocalServer) -> None:
    huge = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "a" * (5 * 1024 * 1024)}]})
    small = {"model": "gpt-4o", "messages": USER}

    async def run() -> tuple[float, float, int, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=mock_server.url, timeout=20.0, headers=AUTH) as client:
            start = time.perf_counter()
            big = asyncio.create_task(
                client.post(
                    "/v1/chat/completions", content=huge, headers={"content-type": "application/json"}
                )
            )
            await asyncio.sleep(0.05)  # the big body is on its way or being judged
            quick = time.perf_counter()
            answered = await client.post("/v1/chat/completions", json=small)
            small_took = time.perf_counter() - quick
            assert answered.status_code == 200
            refused = await big
            return time.perf_counter() - start, small_took, refused.status_code, refused.json()["error"]

    big_took, small_took, status, error = asyncio.run(run())
    assert status == 400 and error["code"] == "context_length_exceeded"
    assert big_took < 1.5, f"the 5 MiB prompt took {big_took:.2f} s"
    assert small_took < 0.5, f"a small request waited {small_took:.2f} s behind the big one"
