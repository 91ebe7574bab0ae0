"""The journal's ``intent``: what each dialect reads a request to ask, sent by the official SDKs.

One conversation (a system prompt, a question, an assistant turn with text and a tool
call, the tool's result, a follow-up question holding the directive; a tool, a forced
tool choice, an answer budget, a stop sequence and a temperature) is written in each
dialect and sent with that provider's SDK. The mock must read the same intent from
all three as ``intent_from_openai`` reads from the OpenAI body: that is what lets the
suite judge a gateway's translation by comparing the two.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from gateproof.cli.launch import LocalServer
from gateproof.mock_providers import Journal, Usage
from gateproof.mock_providers.dialects import GEMINI_PREFIX, AnthropicDialect, GeminiDialect, OpenAIDialect
from gateproof.mock_providers.dialects.anthropic import PREFIX as ANTHROPIC_PREFIX
from gateproof.mock_providers.dialects.anthropic import messages_intent
from gateproof.mock_providers.dialects.gemini import generate_content_intent
from gateproof.openapi import Intent, JournalRecord, Part, ToolIntent, intent_from_openai

from .conftest import MOCK_KEY

Journaled = Callable[[str], list[dict[str, Any]]]

SYSTEM = "You are a weather bot. Answer in one line."
QUESTION = "What's the weather in Paris?"
PREAMBLE = "Let me check."
RESULT = "sunny, 21C"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city"],
}
DESCRIPTION = "Weather for a city"
ARGUMENTS = {"city": "Paris"}
CALL_ID = "call_weather_1"


def _follow_up(cid: str, extra: str = "") -> str:
    return f"Thanks. And tomorrow? [[gateproof cid={cid}{extra}]]"


def _openai_body(cid: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
            {
                "role": "assistant",
                "content": PREAMBLE,
                "tool_calls": [
                    {
                        "id": CALL_ID,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps(ARGUMENTS)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": CALL_ID, "content": RESULT},
            {"role": "user", "content": _follow_up(cid)},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "description": DESCRIPTION, "parameters": SCHEMA},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 200,
        "stop": ["END"],
        "temperature": 0.5,
    }


def _expected(cid: str, model: str, stream: bool, result: Any = RESULT, ids: bool = True) -> Intent:
    """The intent of the conversation, written out by hand (not by any of the readers under test)."""
    call_id = CALL_ID if ids else None
    return Intent(
        model=model,
        stream=stream,
        system=(SYSTEM,),
        parts=(
            Part("user", "text", text=QUESTION),
            Part("assistant", "text", text=PREAMBLE),
            Part("assistant", "tool_call", id=call_id, name="get_weather", arguments=ARGUMENTS),
            Part("user", "tool_result", id=call_id, name="get_weather", content=result),
            Part("user", "text", text=_follow_up(cid)),
        ),
        tools=(ToolIntent("get_weather", DESCRIPTION, SCHEMA),),
        tool_choice="function:get_weather",
        max_tokens=200,
        stop=("END",),
        temperature=0.5,
    )


def _served_intent(journal: Journaled, cid: str) -> tuple[JournalRecord, Intent]:
    entries = journal(cid)
    assert entries, "the mock journaled nothing under this cid"
    record = JournalRecord.from_json(entries[-1])
    intent = record.request_intent()
    assert intent is not None, entries[-1]
    return record, intent


# -- clients -------------------------------------------------------------------------------------


@pytest.fixture
def claude(mock_server: LocalServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=mock_server.url + ANTHROPIC_PREFIX, api_key=MOCK_KEY, max_retries=0, timeout=10.0
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def gemini(mock_server: LocalServer) -> Iterator[genai.Client]:
    transport = httpx.Client(timeout=10.0, trust_env=False)
    options = types.HttpOptions(
        base_url=mock_server.url + GEMINI_PREFIX,
        timeout=10_000,
        retry_options=types.HttpRetryOptions(attempts=1),
        httpx_client=transport,
    )
    try:
        yield genai.Client(api_key=MOCK_KEY, http_options=options)
    finally:
        transport.close()


# -- the conversation in each dialect ------------------------------------------------------------


def _anthropic_request(cid: str, extra: str = "") -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "system": [{"type": "text", "text": SYSTEM}],
        "messages": [
            {"role": "user", "content": QUESTION},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": PREAMBLE},
                    {"type": "tool_use", "id": CALL_ID, "name": "get_weather", "input": ARGUMENTS},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": CALL_ID,
                        "content": [{"type": "text", "text": RESULT}],
                    },
                    {"type": "text", "text": _follow_up(cid, extra)},
                ],
            },
        ],
        "tools": [{"name": "get_weather", "description": DESCRIPTION, "input_schema": SCHEMA}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "max_tokens": 200,
        "stop_sequences": ["END"],
        "temperature": 0.5,
    }


def _anthropic_kwargs(request: dict[str, Any]) -> dict[str, Any]:
    """The request as the SDK's keyword arguments: SDK 2.x has no ``temperature`` of its own."""
    kwargs = dict(request)
    kwargs["extra_body"] = {"temperature": kwargs.pop("temperature")}
    return kwargs


GEMINI_RESULT = {"forecast": RESULT}


def _gemini_request(cid: str, extra: str = "") -> tuple[list[Any], types.GenerateContentConfig]:
    contents: list[Any] = [
        types.Content(role="user", parts=[types.Part(text=QUESTION)]),
        types.Content(
            role="model",
            parts=[
                types.Part(text=PREAMBLE),
                types.Part(function_call=types.FunctionCall(id=CALL_ID, name="get_weather", args=ARGUMENTS)),
            ],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        id=CALL_ID, name="get_weather", response=GEMINI_RESULT
                    )
                ),
                types.Part(text=_follow_up(cid, extra)),
            ],
        ),
    ]
    config = types.GenerateContentConfig(
        system_instruction=SYSTEM,
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="get_weather", description=DESCRIPTION, parameters_json_schema=SCHEMA
                    )
                ]
            )
        ],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"]
            )
        ),
        max_output_tokens=200,
        stop_sequences=["END"],
        temperature=0.5,
    )
    return contents, config


# -- intent through the SDKs ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_openai_intent_is_the_suite_reading(
    sdk: openai.OpenAI, journal: Journaled, cid: str, stream: bool
) -> None:
    body = _openai_body(cid)
    if stream:
        list(sdk.chat.completions.create(**body, stream=True))
    else:
        sdk.chat.completions.create(**body)
    record, intent = _served_intent(journal, cid)
    assert record.dialect == "openai"
    assert intent == _expected(cid, "gpt-4o-mini", stream)
    assert intent == intent_from_openai(record.body)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_intent_matches_the_openai_reading(
    claude: anthropic.Anthropic, journal: Journaled, cid: str, stream: bool
) -> None:
    request = _anthropic_request(cid)
    if stream:
        with claude.messages.stream(**_anthropic_kwargs(request)) as events:
            events.get_final_message()
    else:
        claude.messages.create(**_anthropic_kwargs(request))
    record, intent = _served_intent(journal, cid)
    assert record.dialect == "anthropic" and record.status == 200
    assert intent == _expected(cid, "claude-sonnet-4-5", stream)
    # the same conversation asked of OpenAI reads the same, the model apart
    openai_intent = intent_from_openai(_openai_body(cid))
    assert intent.parts == openai_intent.parts and intent.system == openai_intent.system
    assert intent.tools == openai_intent.tools and intent.tool_choice == openai_intent.tool_choice
    assert (intent.max_tokens, intent.stop, intent.temperature) == (200, ("END",), 0.5)


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_intent_reads_model_and_stream_from_the_path(
    gemini: genai.Client, journal: Journaled, cid: str, stream: bool
) -> None:
    contents, config = _gemini_request(cid)
    model = "gemini-2.5-flash"
    if stream:
        list(gemini.models.generate_content_stream(model=model, contents=contents, config=config))
    else:
        gemini.models.generate_content(model=model, contents=contents, config=config)
    record, intent = _served_intent(journal, cid)
    assert record.dialect == "gemini" and record.status == 200
    assert record.path.endswith(":streamGenerateContent" if stream else ":generateContent")
    # Gemini carries a function's result as a JSON object, and the SDK sends the call ids given
    assert intent == _expected(cid, model, stream, result=GEMINI_RESULT)


def test_the_intent_of_gemini_calls_without_ids_has_none(
    http: httpx.Client, journal: Journaled, cid: str
) -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": QUESTION}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": ARGUMENTS}}]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": GEMINI_RESULT}},
                    {"text": _follow_up(cid)},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "get_weather", "description": DESCRIPTION, "parameters": SCHEMA}
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
        "generationConfig": {"maxOutputTokens": 200, "stopSequences": ["END"], "temperature": 0.5},
    }
    response = http.post(
        GEMINI_PREFIX + "/v1beta/models/gemini-2.5-pro:generateContent",
        json=body,
        headers={"x-goog-api-key": MOCK_KEY},
    )
    assert response.status_code == 200, response.text
    _, intent = _served_intent(journal, cid)
    assert [(p.kind, p.id) for p in intent.parts] == [
        ("text", None),
        ("tool_call", None),
        ("tool_result", None),
        ("text", None),
    ]
    assert intent.model == "gemini-2.5-pro" and intent.tool_choice == "none" and not intent.stream
    assert intent.tools == (ToolIntent("get_weather", DESCRIPTION, SCHEMA),)


def test_refused_requests_keep_their_intent_and_non_generation_requests_have_none(
    http: httpx.Client, claude: anthropic.Anthropic, journal: Journaled, cid: str
) -> None:
    request = _anthropic_request(cid)
    request["model"] = "claude-not-a-model"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(**_anthropic_kwargs(request))
    http.get("/v1/models", headers={"x-gateproof-correlation-id": cid})
    # an error scenario was read and planned: its intent is known, its usage is not
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(**_anthropic_kwargs(_anthropic_request(cid, " scenario=error status=500")))
    entries = [JournalRecord.from_json(entry) for entry in journal(cid)]
    # a refused request still says what it asked for (the suite explains the refusal with it)
    assert [(e.status, e.intent is None, e.true_usage is None) for e in entries] == [
        (404, False, True),
        (200, True, True),
        (500, False, True),
    ]
    assert entries[2].usage is None and entries[1].path == "/v1/models"


# -- true usage and cache reads -------------------------------------------------------------------


def _true(prompt: int, completion: int, cached: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cached_tokens": cached,
    }


def _served_usage(journal: Journaled, cid: str) -> tuple[dict[str, int], dict[str, Any]]:
    record = JournalRecord.from_json(journal(cid)[-1])
    assert record.true_usage is not None and record.usage is not None
    return dict(record.true_usage), dict(record.usage)


@pytest.mark.parametrize("cached", [0, 7, 10_000_000])
@pytest.mark.parametrize("stream", [False, True])
def test_openai_reports_cached_tokens_in_prompt_details(
    sdk: openai.OpenAI, journal: Journaled, cid: str, stream: bool, cached: int
) -> None:
    messages: Any = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": _follow_up(cid, f" cached={cached}")},
    ]
    if stream:
        chunks = list(
            sdk.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
            )
        )
        usage = chunks[-1].usage
    else:
        usage = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages).usage
    assert usage is not None and usage.prompt_tokens_details is not None
    seen = usage.prompt_tokens_details.cached_tokens
    assert seen == min(cached, usage.prompt_tokens)  # clamped to the prompt
    true_usage, native = _served_usage(journal, cid)
    assert true_usage == _true(usage.prompt_tokens, usage.completion_tokens, seen or 0)
    assert true_usage["total_tokens"] == usage.total_tokens
    assert native["prompt_tokens_details"] == {"cached_tokens": seen}


@pytest.mark.parametrize("cached", [0, 7, 10_000_000])
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_reports_cache_reads_apart_from_input_tokens(
    claude: anthropic.Anthropic, journal: Journaled, cid: str, stream: bool, cached: int
) -> None:
    request = _anthropic_request(cid, f" scenario=text cached={cached}")
    del request["tool_choice"]
    if stream:
        with claude.messages.stream(**_anthropic_kwargs(request)) as events:
            started = next(e for e in events if e.type == "message_start")
            final = events.get_final_message()
        # the cache split is in message_start already, as Anthropic sends it
        assert started.message.usage.cache_read_input_tokens == final.usage.cache_read_input_tokens
        assert started.message.usage.input_tokens == final.usage.input_tokens
    else:
        final = claude.messages.create(**_anthropic_kwargs(request))
    usage = final.usage
    read = usage.cache_read_input_tokens or 0
    prompt = usage.input_tokens + read + (usage.cache_creation_input_tokens or 0)
    true_usage, native = _served_usage(journal, cid)
    assert true_usage == _true(prompt, usage.output_tokens, read)
    assert read == min(cached, prompt) and (cached < prompt or usage.input_tokens == 0)
    assert native["input_tokens"] == usage.input_tokens and native["cache_read_input_tokens"] == read


@pytest.mark.parametrize("cached", [0, 7, 10_000_000])
@pytest.mark.parametrize("stream", [False, True])
def test_gemini_reports_cached_content_within_the_prompt(
    gemini: genai.Client, journal: Journaled, cid: str, stream: bool, cached: int
) -> None:
    contents, config = _gemini_request(cid, f" scenario=text cached={cached}")
    config.tool_config = None
    model = "gemini-2.5-flash"
    if stream:
        chunks = list(gemini.models.generate_content_stream(model=model, contents=contents, config=config))
        metas = [chunk.usage_metadata for chunk in chunks]
        # every event repeats the usage, the cache read included
        assert len({None if m is None else m.cached_content_token_count for m in metas}) == 1
        meta = metas[-1]
    else:
        meta = gemini.models.generate_content(model=model, contents=contents, config=config).usage_metadata
    assert meta is not None and meta.prompt_token_count is not None
    assert meta.candidates_token_count is not None and meta.total_token_count is not None
    read = meta.cached_content_token_count or 0
    assert read == min(cached, meta.prompt_token_count)
    true_usage, native = _served_usage(journal, cid)
    assert true_usage == _true(meta.prompt_token_count, meta.candidates_token_count, read)
    assert true_usage["total_tokens"] == meta.total_token_count
    assert (
        native.get("cachedContentTokenCount", 0) == read
        and native["promptTokenCount"] == meta.prompt_token_count
    )


# -- the readers on their own ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, "function:get_weather"),
        (None, None),
    ],
)
def test_anthropic_tool_choice(choice: Any, expected: str | None) -> None:
    body = _anthropic_request("x")
    body["tool_choice"] = choice
    assert messages_intent(body).tool_choice == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"mode": "AUTO"}, "auto"),
        ({"mode": "ANY"}, "required"),
        ({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}, "function:get_weather"),
        ({"mode": "ANY", "allowed_function_names": ["get_weather", "other"]}, "required"),
        ({"mode": "NONE"}, "none"),
        ({}, "auto"),
    ],
)
def test_gemini_tool_choice(config: dict[str, Any], expected: str) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}], "toolConfig": {"functionCallingConfig": config}}
    intent = generate_content_intent(body, GEMINI_PREFIX + "/v1/models/gemini-2.5-flash:generateContent")
    assert intent.tool_choice == expected and intent.model == "gemini-2.5-flash"
    assert (
        generate_content_intent({"contents": []}, "/gemini/v1/models/m:generateContent").tool_choice is None
    )


def test_anthropic_string_system_and_string_tool_result() -> None:
    body = _anthropic_request("x")
    body["system"] = SYSTEM
    body["messages"][2]["content"][0]["content"] = RESULT
    body["tools"].append({"type": "web_search_20250305", "name": "web_search"})  # a server tool: no schema
    intent = messages_intent(body)
    assert intent == _expected("x", "claude-sonnet-4-5", False)


def test_a_served_record_round_trips_to_the_intent_the_dialect_read() -> None:
    """What the journal serves, through JSON and ``JournalRecord.from_json``, is the dialect's reading."""
    cases: list[tuple[Any, str, bytes]] = [
        (OpenAIDialect(), "/v1/chat/completions", json.dumps(_openai_body("rt")).encode()),
        (
            AnthropicDialect(),
            ANTHROPIC_PREFIX + "/v1/messages",
            json.dumps(_anthropic_request("rt")).encode(),
        ),
        (
            GeminiDialect(),
            GEMINI_PREFIX + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            json.dumps(
                {
                    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                    "systemInstruction": {"parts": [{"text": SYSTEM}]},
                }
            ).encode(),
        ),
    ]
    journal = Journal()
    for dialect, path, raw in cases:
        entry = journal.record(
            method="POST", path=path, query="", headers=[], body=raw, received_at=0.0, dialect=dialect.name
        )
        # before the dialect accepted the body, nothing is derived from it
        assert entry.record().intent is None and entry.record().true_usage is None
        entry.reader, entry.truth = dialect, Usage(40, 9, 30)
        served = json.loads(json.dumps({"entries": [entry.as_json()]}))["entries"][0]
        record = JournalRecord.from_json(served)
        assert record.request_intent() == dialect.intent(json.loads(raw), path, "")
        assert record.true_usage == _true(40, 9, 30)
        assert record.usage == dialect.usage_record(Usage(40, 9, 30))
    gemini_intent = JournalRecord.from_json(journal.entries()[-1].as_json()).request_intent()
    assert gemini_intent == Intent(
        model="gemini-2.5-flash", stream=True, system=(SYSTEM,), parts=(Part("user", "text", text="hi"),)
    )


def test_the_dialect_names_the_suite_knows_are_the_mock_dialects_and_the_stack_routes() -> None:
    """``openapi.DIALECT_NAMES`` (what a config's providers may name) is what the mock mounts and the stack wires."""
    from gateproof.cli.launch import STACK_PROVIDERS, UPSTREAMS
    from gateproof.mock_providers.dialects import DIALECTS
    from gateproof.openapi import DIALECT_NAMES

    assert tuple(dialect.name for dialect in DIALECTS) == DIALECT_NAMES
    assert set(STACK_PROVIDERS) == set(DIALECT_NAMES) == {upstream.dialect for upstream in UPSTREAMS}
