"""Bodies that parse but cannot be carried, and bodies that are costly: 400s, never 500s or a stalled loop.

Through the real stack: JSON nested past ``limits.max_json_depth``, a lone surrogate, a number
out of range (D6 ``invalid_json``), more than ``limits.max_messages`` messages (D6
``invalid_request``), and a 10k-message body, during which the gateway keeps answering.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import HEALTH_PATH, LocalStack
from gateproof.openapi import validators
from gateproof.reference_gateway import ChatCall, GatewayError, Limits, ModelConfig, ProviderConfig
from gateproof.reference_gateway._body import parse_body
from gateproof.reference_gateway._config import MAX_JSON_DEPTH_CEILING
from gateproof.reference_gateway._routing import Route
from gateproof.reference_gateway._validation import RequestValidator, shipped_request_schema
from gateproof.reference_gateway.providers import OpenAIAdapter

from .conftest import new_cid, user

DEPTH = Limits().max_json_depth


def _nested(levels: int) -> str:
    """A JSON array nested ``levels`` deep (``levels`` = 1 is ``[]``)."""
    return "[" * levels + "]" * levels


def _body_text(extra_json: str, cid: str | None = None) -> str:
    """A valid request with ``"x": <extra_json>`` added (unknown fields are forwarded, D11)."""
    messages = json.dumps(user("hi", cid=cid or new_cid()))
    return f'{{"model": "openai/gpt-4o", "messages": {messages}, "x": {extra_json}}}'


def _post(raw: httpx.Client, auth: dict[str, str], text: str | bytes) -> httpx.Response:
    headers = {**auth, "Content-Type": "application/json"}
    return raw.post("/v1/chat/completions", content=text, headers=headers)


def _invalid_json(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_json", None)
    message: str = error["message"]
    return message


# -- D6: what parses but cannot be carried ---------------------------------------------------------------


@pytest.mark.parametrize("levels", [500, 979, 5000, 200_000])
def test_deep_nesting_is_invalid_json_not_500(raw: httpx.Client, auth: dict[str, str], levels: int) -> None:
    message = _invalid_json(_post(raw, auth, _body_text(_nested(levels))))
    assert f"nesting deeper than {DEPTH} levels" in message


def test_nesting_up_to_the_limit_is_served(raw: httpx.Client, auth: dict[str, str]) -> None:
    # the body object is level 1, so "x" may nest DEPTH - 1 levels and no more
    assert _post(raw, auth, _body_text(_nested(DEPTH - 1))).status_code == 200
    message = _invalid_json(_post(raw, auth, _body_text(_nested(DEPTH))))
    assert "(at x" in message


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ('"\\ud800"', "a string at x"),
        ('["ok", "tail \\udfff"]', "a string at x[1]"),
        ('{"\\ud800": 1}', "a key in x"),
    ],
)
def test_a_lone_surrogate_is_invalid_json(
    raw: httpx.Client, auth: dict[str, str], extra: str, where: str
) -> None:
    message = _invalid_json(_post(raw, auth, _body_text(extra)))
    assert where in message and "lone surrogate" in message


def test_a_lone_surrogate_in_a_message_names_the_field(raw: httpx.Client, auth: dict[str, str]) -> None:
    text = '{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "a \\ud83d b"}]}'
    assert "a string at messages[0].content" in _invalid_json(_post(raw, auth, text))


def test_a_surrogate_pair_is_an_ordinary_character(raw: httpx.Client, auth: dict[str, str]) -> None:
    assert _post(raw, auth, _body_text('"smile \\ud83d\\ude00"')).status_code == 200


@pytest.mark.parametrize("number", ["1e999", "-1e999", "[1, 2e400]"])
def test_a_number_out_of_range_is_invalid_json(raw: httpx.Client, auth: dict[str, str], number: str) -> None:
    assert "out of range" in _invalid_json(_post(raw, auth, _body_text(number)))


def test_max_tokens_out_of_range_is_invalid_json(raw: httpx.Client, auth: dict[str, str]) -> None:
    text = '{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e999}'
    assert "the number at max_tokens is out of range" in _invalid_json(_post(raw, auth, text))


@pytest.mark.parametrize(
    ("raw_body", "needle"),
    [
        (_nested(DEPTH + 1).encode(), "nesting deeper than"),
        (b'{"a": NaN}', "NaN is not a JSON value"),
        (b'{"a": ' + b"1" * 5000 + b"}", "digits"),
        (b'{"a": "\xff"}', "utf-8"),
    ],
)
def test_parse_body_refusals(raw_body: bytes, needle: str) -> None:
    with pytest.raises(GatewayError) as refused:
        parse_body(raw_body, max_depth=DEPTH)
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "invalid_json", None)
    assert needle in refused.value.message


def test_parse_body_keeps_paths_short() -> None:
    key = "k" * 5000
    with pytest.raises(GatewayError) as refused:
        parse_body(f'{{"{key}": {{"a": 1e999}}}}'.encode(), max_depth=DEPTH)
    message = refused.value.message
    assert "out of range" in message and len(message) < 400


# -- D6: the message limit --------------------------------------------------------------------------------


def _conversation(count: int, cid: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} about nothing much"}
        for i in range(count - 1)
    ]
    messages += user("And now?", cid=cid)
    return {"model": "openai/gpt-4o", "messages": messages}


def test_more_messages_than_the_limit_is_400(raw: httpx.Client, auth: dict[str, str]) -> None:
    limit = Limits().max_messages
    response = raw.post("/v1/chat/completions", json=_conversation(limit + 1, new_cid()), headers=auth)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", "messages")
    assert f"at most {limit}" in error["message"]


@pytest.mark.timing
def test_a_10k_message_body_is_served_while_health_stays_prompt(stack: LocalStack) -> None:
    """The body is validated (and forwarded) without holding the gateway's loop: probes keep answering."""
    body = json.dumps(_conversation(10_000, new_cid())).encode()
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}

    async def measure() -> tuple[int, list[float]]:
        async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=30, trust_env=False) as client:
            await client.get(HEALTH_PATH)  # a warm connection for the probes
            big = asyncio.create_task(client.post("/v1/chat/completions", content=body, headers=headers))
            waits: list[float] = []
            while not big.done() or not waits:
                started = time.perf_counter()
                assert (await client.get(HEALTH_PATH)).status_code == 200
                waits.append(time.perf_counter() - started)
                await asyncio.sleep(0.005)
            return (await big).status_code, waits

    status, waits = asyncio.run(measure())
    assert status == 200
    # Before validation was compiled this probe waited as long as the whole validation (1.5 s here).
    assert max(waits) < 0.25, f"health waited {max(waits) * 1000:.0f} ms behind a 10k-message request"


def _deep_object(levels: int) -> Any:
    """``{"a": {"a": ... {}}}``, ``levels`` objects deep."""
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_the_deepest_configurable_body_survives_every_step() -> None:
    """At ``MAX_JSON_DEPTH_CEILING`` nothing downstream of the parser recurses too far (no 500)."""
    room = MAX_JSON_DEPTH_CEILING - 4  # the body, tools, the tool and its function hold the rest
    body = {
        "model": "openai/gpt-4o",
        "messages": [{"role": "user", "content": "hi", "extra": _deep_object(room)}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": _deep_object(room)}}],
        "x": _deep_object(MAX_JSON_DEPTH_CEILING - 1),
    }
    parsed = parse_body(json.dumps(body).encode(), max_depth=MAX_JSON_DEPTH_CEILING)
    for checker in (
        RequestValidator(validators(), shipped_request_schema()),
        RequestValidator(validators()),
    ):
        checker.check_body(parsed)
    model = ModelConfig(
        id="openai/gpt-4o", provider="openai", upstream_model="gpt-4o", created=1, owned_by="openai"
    )
    provider = ProviderConfig(name="openai", dialect="openai", base_url="http://127.0.0.1:1/v1")
    call = ChatCall(body=parsed, route=Route(model, provider))
    upstream = OpenAIAdapter(provider).build_request(call)
    assert json.loads(json.dumps(upstream.json)) == {**body, "model": "gpt-4o"}
