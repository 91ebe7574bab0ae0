"""Every error the gateway answers with, through the real stack: status, envelope, code, param."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gateproof.cli.launch import LocalServer, LocalStack
from gateproof.openapi import SchemaKind, validators

from .conftest import KEYS, journal, new_cid, sse_events, user

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def _error(
    response: httpx.Response, status: int, code: str | None, param: str | None = None
) -> dict[str, Any]:
    """Assert a D13 error answer and return its ``error`` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert validators().is_valid(SchemaKind.ERROR, body), body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["code"] == code
    assert error["param"] == param
    return error


# -- authentication (D14) -------------------------------------------------------------------------------


def test_missing_key_is_401(raw: httpx.Client) -> None:
    error = _error(
        raw.post("/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": MESSAGES}),
        401,
        "unauthorized",
    )
    assert error["type"] == "authentication_error"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-key", "Token abc"])
def test_other_schemes_and_unknown_keys_are_401(raw: httpx.Client, stack: LocalStack, header: str) -> None:
    response = raw.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": MESSAGES},
        headers={"Authorization": header},
    )
    error = _error(response, 401, "unauthorized")
    assert stack.api_key not in error["message"]


def test_sdk_sees_authentication_error(stack: LocalStack) -> None:
    client = openai.OpenAI(base_url=stack.base_url, api_key="sk-wrong", max_retries=0)
    with client, pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)
    assert caught.value.status_code == 401
    assert "sk-wrong" not in str(caught.value.body)


def test_inactive_key_is_403(stack: LocalStack) -> None:
    client = openai.OpenAI(base_url=stack.base_url, api_key=stack.keys["inactive"], max_retries=0)
    with client, pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)
    assert caught.value.code == "forbidden"
    assert caught.value.type == "permission_error"


def test_restricted_key_may_use_only_its_models(stack: LocalStack) -> None:
    with openai.OpenAI(base_url=stack.base_url, api_key=stack.keys["restricted"], max_retries=0) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)
        allowed = client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert caught.value.code == "forbidden"
    assert "openai/gpt-4o" in caught.value.message
    assert allowed.model == "openai/gpt-4o-mini"


# -- requests the gateway refuses itself (D5, D6, D7, D12, D15, D17, D18) -----------------------------------


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": "gpt-4o", "messages": MESSAGES}, "bad_model_id", "model"),
        ({"model": "openai/", "messages": MESSAGES}, "bad_model_id", "model"),
        ({"model": "openai/gpt-1", "messages": MESSAGES}, "model_not_found", "model"),
        ({"model": "", "messages": MESSAGES}, "invalid_request", "model"),
        ({"model": "openai/gpt-4o"}, "invalid_request", "messages"),
        ({"model": "openai/gpt-4o", "messages": []}, "invalid_request", "messages"),
        ({"model": "openai/gpt-4o", "messages": MESSAGES, "max_tokens": 0}, "invalid_request", "max_tokens"),
        ({"model": "openai/gpt-4o", "messages": MESSAGES, "n": 2}, "invalid_request", "n"),
        (
            {"model": "openai/gpt-4o", "messages": [{"role": "wizard", "content": "x"}]},
            "invalid_request",
            "messages[0].role",
        ),
        (
            {"model": "openai/gpt-4o", "messages": MESSAGES, "stream_options": {"include_usage": True}},
            "invalid_request",
            "stream_options",
        ),
        (
            {"model": "openai/gpt-4o", "messages": MESSAGES, "tool_choice": "required"},
            "invalid_request",
            "tool_choice",
        ),
        (
            {"model": "openai/gpt-4o", "messages": MESSAGES, "edgee_tool_ids": [""]},
            "invalid_request",
            "edgee_tool_ids[0]",
        ),
        (
            {"model": "openai/gpt-4o", "messages": MESSAGES, "edgee_pending_id": "pend_0123456789abcdef"},
            "invalid_edgee_pending_id",
            "edgee_pending_id",
        ),
        ([1, 2], "invalid_request", None),
    ],
)
def test_refused_requests(
    raw: httpx.Client, auth: dict[str, str], body: Any, code: str, param: str | None
) -> None:
    error = _error(raw.post("/v1/chat/completions", json=body, headers=auth), 400, code, param)
    assert error["type"] == "invalid_request_error"


def test_refused_requests_never_reach_the_provider(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid()
    response = raw.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": user("x", cid=cid), "max_tokens": 0},
        headers=auth,
    )
    assert response.status_code == 400
    assert "x-edgee-provider" not in response.headers
    assert journal(stack.mock.url, cid) == []


def test_unknown_edge_tool_ids_are_refused(raw: httpx.Client, auth: dict[str, str]) -> None:
    # the default key activates both Edge Tools (D35): only the unknown ids are named, once each
    body = {
        "model": "openai/gpt-4o",
        "messages": MESSAGES,
        "edgee_tool_ids": ["edgee_weather", "edgee_generate_uuid", "edgee_stock", "edgee_weather"],
    }
    error = _error(
        raw.post("/v1/chat/completions", json=body, headers=auth),
        400,
        "invalid_edgee_tool_ids",
        "edgee_tool_ids",
    )
    assert error["message"] == "Invalid or non-activated Edge Tool IDs: edgee_weather, edgee_stock"


@pytest.mark.parametrize("value", ["yes", "2", ""])
def test_bad_boolean_header(raw: httpx.Client, auth: dict[str, str], value: str) -> None:
    headers = {**auth, "X-Edgee-Debug": value}
    _error(
        raw.post(
            "/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": MESSAGES}, headers=headers
        ),
        400,
        "invalid_request",
        "X-Edgee-Debug",
    )


@pytest.mark.parametrize("value", ["TRUE", "False", "1", "0"])
def test_boolean_header_spellings(raw: httpx.Client, auth: dict[str, str], value: str) -> None:
    headers = {**auth, "X-Edgee-Enable-Compression": value, "X-Edgee-Debug": value}
    response = raw.post(
        "/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": MESSAGES}, headers=headers
    )
    assert response.status_code == 200, response.text
    # Every spelling is read as the boolean it spells: both objects exactly when it is true (D3, D8).
    on = value.lower() in ("true", "1")
    assert ("compression" in response.json()) is on and ("debug" in response.json()) is on


@pytest.mark.parametrize("payload", [b"{", b"", b"not json", b'{"model": NaN}', b"\xff\xfe"])
def test_invalid_json(raw: httpx.Client, auth: dict[str, str], payload: bytes) -> None:
    response = raw.post(
        "/v1/chat/completions", content=payload, headers={**auth, "Content-Type": "application/json"}
    )
    _error(response, 400, "invalid_json", None)


def test_body_over_the_limit_is_413(raw: httpx.Client, auth: dict[str, str]) -> None:
    big = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x" * (4 * 1024 * 1024)}]}
    _error(raw.post("/v1/chat/completions", json=big, headers=auth), 413, "body_too_large")


def test_body_over_the_limit_without_content_length_is_413(raw: httpx.Client, auth: dict[str, str]) -> None:
    def chunked() -> Iterator[bytes]:
        yield b'{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "'
        for _ in range(5):
            yield b"x" * (1024 * 1024)
        yield b'"}]}'

    response = raw.post("/v1/chat/completions", content=chunked(), headers=auth)
    assert "content-length" not in response.request.headers
    _error(response, 413, "body_too_large")


def test_body_just_under_the_limit_is_read(raw: httpx.Client, auth: dict[str, str]) -> None:
    filler = 4 * 1024 * 1024 - 200
    body = {
        "model": "openai/gpt-4o",
        "messages": [{"role": "user", "content": "x" * filler}],
        "max_tokens": 0,
    }
    # It gets as far as validation: the size was fine.
    _error(raw.post("/v1/chat/completions", json=body, headers=auth), 400, "invalid_request", "max_tokens")


def test_unknown_path_is_404(raw: httpx.Client) -> None:
    error = _error(raw.post("/v1/chat/completion", json={}), 404, "not_found")
    assert error["type"] == "not_found_error"


def test_wrong_method_is_405_with_allow(raw: httpx.Client) -> None:
    response = raw.get("/v1/chat/completions")
    _error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    assert "GET" in raw.delete("/v1/models").headers["allow"]


# -- provider failures (D9, D16, D20) --------------------------------------------------------------------


def test_provider_429_passes_retry_after(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(
            model="openai/gpt-4o", messages=user("x", scenario="error", status=429, retry_after=7)
        )
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-edgee-provider"] == "openai"
    assert caught.value.code == "provider_rate_limited"
    assert caught.value.type == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "expected", "code"),
    [
        (500, 502, "provider_error"),
        (503, 502, "provider_error"),
        (401, 502, "provider_error"),
        (400, 400, "provider_error"),
    ],
)
def test_provider_error_status_mapping(
    raw: httpx.Client, auth: dict[str, str], status: int, expected: int, code: str, stream: bool
) -> None:
    body = {
        "model": "openai/gpt-4o",
        "messages": user("x", scenario="error", status=status),
        "stream": stream,
    }
    response = raw.post("/v1/chat/completions", json=body, headers=auth)
    error = _error(response, expected, code)
    assert error["type"] == ("invalid_request_error" if expected == 400 else "provider_error")
    assert response.headers["x-edgee-provider"] == "openai"
    if expected == 400:
        assert "The provider answered 400" in error["message"], "the provider's own words are quoted"


@pytest.mark.parametrize("fault", ["mid_stream_error", "truncate", "malformed_chunk", "no_done"])
def test_failure_after_the_stream_started(raw: httpx.Client, auth: dict[str, str], fault: str) -> None:
    body = {
        "model": "openai/gpt-4o",
        "messages": user("x", tokens=6, fault=fault),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = raw.post("/v1/chat/completions", json=body, headers=auth)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert "[DONE]" not in events
    *chunks, last = (json.loads(event) for event in events)
    assert chunks, "some content went out before the failure"
    assert all("error" not in chunk and chunk["choices"] for chunk in chunks), (
        "no usage chunk after a failure"
    )
    assert validators().is_valid(SchemaKind.ERROR, last)
    assert last["error"]["type"] == "provider_error" and last["error"]["code"] == "provider_error"


def test_sdk_raises_on_an_in_stream_error(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="openai/gpt-4o", messages=user("x", tokens=6, fault="mid_stream_error"), stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received


@pytest.fixture
def short(short_timeout_gateway: LocalServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEYS['default']}"}
    with httpx.Client(
        base_url=short_timeout_gateway.url, headers=headers, timeout=10, trust_env=False
    ) as client:
        yield client


def test_no_answer_in_time_is_504(short: httpx.Client) -> None:
    body = {"model": "openai/gpt-4o", "messages": user("x", ttft_ms=2000)}
    response = short.post("/v1/chat/completions", json=body)
    error = _error(response, 504, "provider_timeout")
    assert error["type"] == "provider_error"
    assert response.headers["x-edgee-provider"] == "openai"


def test_stream_whose_headers_never_come_is_504(short: httpx.Client) -> None:
    body = {
        "model": "openai/gpt-4o",
        "messages": user("x", fault="slow_headers", fault_ms=2000),
        "stream": True,
    }
    _error(short.post("/v1/chat/completions", json=body), 504, "provider_timeout")


def test_stream_that_stalls_ends_with_a_timeout_event(short: httpx.Client) -> None:
    body = {"model": "openai/gpt-4o", "messages": user("x", tokens=4, itl_ms=2000), "stream": True}
    response = short.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "provider_timeout"


def test_unreachable_provider_is_502(dead_upstream_gateway: LocalServer) -> None:
    response = httpx.post(
        dead_upstream_gateway.url + "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {KEYS['default']}"},
        timeout=10,
        trust_env=False,
    )
    _error(response, 502, "provider_error")
