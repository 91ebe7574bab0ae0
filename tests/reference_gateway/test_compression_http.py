"""Token compression through the real stack: chat (plain and streamed) and ``POST /v1/compress``.

The mock provider is the oracle: its journal shows the prompt that reached it and the
tokens it billed, so every figure of the ``compression`` object is checked against what a
provider actually saw (D2, D3, D30-D33).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import openai
import pytest

from gateproof.cli.launch import LocalStack
from gateproof.openapi import count_chat_prompt, load_transcript

from .conftest import TIMEOUT, directive, journal, new_cid, sse_events

COMPRESS = {"X-Edgee-Enable-Compression": "true"}
#: the stack's default config prices openai/gpt-4o input at 2.5 USD per million tokens
GPT_4O_INPUT_PRICE = 2.5

#: facts a model must still see after compression
NEEDLES = (
    "FAILED tests/test_parser.py::test_unicode_escape - AssertionError: assert 'caf\\xe9' == 'café'",
    '"build_id":"b-4417"',
    "src/parser/escape.py:88",
)

ESC = "\x1b"


def _pytest_output(passing: int) -> str:
    """A coloured pytest run: many passing tests, one failure (what an agent's shell tool returns)."""
    lines = [
        f"{ESC}[1m============================= test session starts =============================={ESC}[0m"
    ]
    lines.append("platform linux -- Python 3.11.9, pytest-8.3.2, pluggy-1.5.0")
    lines.append(f"collected {passing + 1} items")
    lines.append("")
    for number in range(passing):
        lines.append(f"tests/test_parser.py::test_case_{number:04d} {ESC}[32mPASSED{ESC}[0m")
    lines.append(f"tests/test_parser.py::test_unicode_escape {ESC}[31mFAILED{ESC}[0m")
    lines.append("")
    lines.append("    def test_unicode_escape():")
    lines.append(">       assert unescape('caf\\\\xe9') == 'café'")
    lines.append("E       AssertionError: assert 'caf\\xe9' == 'café'")
    lines.append("")
    lines.append("src/parser/escape.py:88: AssertionError")
    lines.append(
        f"{ESC}[31mFAILED tests/test_parser.py::test_unicode_escape - {NEEDLES[0].split(' - ', 1)[1]}{ESC}[0m"
    )
    lines.append(
        f"{ESC}[31m========================= 1 failed, {passing} passed in 4.21s ========================={ESC}[0m"
    )
    return "\n".join(lines)


def _build_status() -> str:
    """A pretty-printed JSON API answer (indentation is what a model does not need)."""
    document = {
        "build_id": "b-4417",
        "status": "failed",
        "steps": [{"name": f"step-{n}", "status": "ok", "duration_s": n * 1.5} for n in range(30)],
        "artifacts": {"log": "https://ci.example.invalid/b-4417/log", "junit": "report.xml"},
    }
    return json.dumps(document, indent=4)


def transcript(cid: str, *, passing: int = 120, tokens: int = 5) -> list[dict[str, Any]]:
    """An agent conversation whose tokens are mostly tool output, ending in a user turn with the directive."""
    return [
        {"role": "system", "content": "You are a coding agent. Fix failing tests with minimal changes."},
        {"role": "user", "content": "The parser tests fail on CI; find out why."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "shell", "arguments": '{"cmd":"pytest"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": _pytest_output(passing)},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_2", "type": "function", "function": {"name": "ci_status", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_2", "content": _build_status()},
        {"role": "user", "content": f"Go on. {directive(cid=cid, tokens=tokens)}"},
    ]


def plain_conversation(cid: str) -> list[dict[str, Any]]:
    """Nothing for compression to trim: no tool results at all."""
    return [{"role": "user", "content": f"Say hello. {directive(cid=cid, tokens=3)}"}]


def _post(raw: httpx.Client, auth: dict[str, str], body: dict[str, Any], **headers: str) -> httpx.Response:
    return raw.post("/v1/chat/completions", json=body, headers={**auth, **headers})


def _needles_in(messages: list[dict[str, Any]]) -> list[str]:
    text = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
    # the JSON needle is looked for in the compacted text of each tool result
    contents = "\n".join(str(m.get("content")) for m in messages)
    compact = contents.replace(": ", ":").replace(",\n", ",")
    return [
        needle
        for needle in NEEDLES
        if needle not in text and needle not in contents and needle not in compact
    ]


def _expected_reduction(saved: int, billed: int) -> float:
    return round(saved * 100 / (billed + saved), 2) if saved else 0.0


# ---------------------------------------------------------------- chat, not streamed


def test_chat_compression_forwards_a_smaller_prompt_and_reports_it(
    sdk: openai.OpenAI, stack: LocalStack
) -> None:
    cid = new_cid()
    messages = transcript(cid)
    started = time.monotonic()
    response = sdk.chat.completions.with_raw_response.create(
        model="openai/gpt-4o",
        messages=messages,
        extra_headers=COMPRESS,  # type: ignore[arg-type]
    )
    latency_ms = (time.monotonic() - started) * 1000
    body = response.http_response.json()
    usage, compression = body["usage"], body["compression"]

    (entry,) = journal(stack.mock.url, cid)
    forwarded = entry["body"]["messages"]
    # the provider billed the compressed prompt, and that is what the client is told
    assert usage["prompt_tokens"] == entry["usage"]["prompt_tokens"] == count_chat_prompt(forwarded)
    original = count_chat_prompt(messages)
    assert compression["saved_tokens"] == original - usage["prompt_tokens"] > 0
    # 120 coloured PASSED lines and an indented JSON document: well over a quarter goes
    assert compression["saved_tokens"] > original // 4
    assert compression["reduction"] == _expected_reduction(
        compression["saved_tokens"], usage["prompt_tokens"]
    )
    assert compression["cost_savings"] == math.floor(compression["saved_tokens"] * GPT_4O_INPUT_PRICE + 0.5)
    assert isinstance(compression["time_ms"], int) and 0 <= compression["time_ms"] <= latency_ms
    assert set(compression) == {"saved_tokens", "cost_savings", "reduction", "time_ms"}

    # only tool results changed (D31), and every needle reached the provider
    assert len(forwarded) == len(messages)
    for sent, received in zip(messages, forwarded, strict=True):
        if sent["role"] == "tool":
            assert len(received["content"]) < len(sent["content"])
        else:
            assert received == sent
    assert _needles_in(forwarded) == []
    assert ESC not in json.dumps(forwarded)
    # the switch itself is the gateway's (D11)
    assert "enable_compression" not in entry["body"]
    assert not [name for name in entry["headers"] if name.lower().startswith("x-edgee-")]


def test_no_compression_object_and_no_compression_unless_asked(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid()
    messages = transcript(cid)
    answer = _post(raw, auth, {"model": "openai/gpt-4o", "messages": messages})
    assert answer.status_code == 200
    assert "compression" not in answer.json()
    (entry,) = journal(stack.mock.url, cid)
    assert entry["body"]["messages"] == messages


@pytest.mark.parametrize(
    ("body_switch", "header", "runs"),
    [
        (True, None, True),
        (False, None, False),
        (True, "false", True),  # any true wins (D30)
        (False, "1", True),
        (None, "0", False),
    ],
)
def test_body_and_header_switches(
    raw: httpx.Client,
    auth: dict[str, str],
    stack: LocalStack,
    body_switch: bool | None,
    header: str | None,
    runs: bool,
) -> None:
    cid = new_cid()
    body: dict[str, Any] = {"model": "openai/gpt-4o", "messages": transcript(cid, passing=20)}
    if body_switch is not None:
        body["enable_compression"] = body_switch
    headers = {"X-Edgee-Enable-Compression": header} if header is not None else {}
    answer = _post(raw, auth, body, **headers)
    assert answer.status_code == 200, answer.text
    assert ("compression" in answer.json()) is runs
    (entry,) = journal(stack.mock.url, cid)
    assert (entry["body"]["messages"] != body["messages"]) is runs
    assert "enable_compression" not in entry["body"]


def test_a_key_default_compresses_until_the_request_says_false(raw: httpx.Client, stack: LocalStack) -> None:
    auth = {"Authorization": f"Bearer {stack.keys['compressing']}"}
    cid = new_cid()
    on = _post(raw, auth, {"model": "openai/gpt-4o", "messages": transcript(cid, passing=20)})
    assert on.status_code == 200, on.text
    assert on.json()["compression"]["saved_tokens"] > 0

    for switched_off in ({"X-Edgee-Enable-Compression": "false"}, {}):
        cid = new_cid()
        body: dict[str, Any] = {"model": "openai/gpt-4o", "messages": transcript(cid, passing=20)}
        if not switched_off:
            body["enable_compression"] = False
        off = _post(raw, auth, body, **switched_off)
        assert off.status_code == 200, off.text
        assert "compression" not in off.json()
        (entry,) = journal(stack.mock.url, cid)
        assert entry["body"]["messages"] == body["messages"]


def test_compression_that_saves_nothing_still_reports_zeros(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid()
    messages = plain_conversation(cid)
    answer = _post(raw, auth, {"model": "openai/gpt-4o", "messages": messages}, **COMPRESS)
    assert answer.status_code == 200
    compression = answer.json()["compression"]
    assert (
        compression["saved_tokens"] == 0
        and compression["reduction"] == 0
        and compression["cost_savings"] == 0
    )
    assert isinstance(compression["time_ms"], int) and compression["time_ms"] >= 0
    (entry,) = journal(stack.mock.url, cid)
    assert entry["body"]["messages"] == messages


def test_an_invalid_compression_header_is_a_400(raw: httpx.Client, auth: dict[str, str]) -> None:
    answer = _post(
        raw,
        auth,
        {"model": "openai/gpt-4o", "messages": plain_conversation(new_cid())},
        **{"X-Edgee-Enable-Compression": "yes"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "X-Edgee-Enable-Compression"


# ---------------------------------------------------------------- chat, streamed (D1)


def test_stream_with_usage_carries_compression_on_the_usage_chunk(
    sdk: openai.OpenAI, stack: LocalStack
) -> None:
    cid = new_cid()
    messages = transcript(cid)
    chunks = list(
        sdk.chat.completions.create(
            model="openai/gpt-4o",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=COMPRESS,
        )
    )
    carrying = [chunk for chunk in chunks if (chunk.model_extra or {}).get("compression") is not None]
    assert carrying == [chunks[-1]]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    compression = (last.model_extra or {})["compression"]
    (entry,) = journal(stack.mock.url, cid)
    assert last.usage.prompt_tokens == entry["usage"]["prompt_tokens"]
    assert compression["saved_tokens"] == count_chat_prompt(messages) - last.usage.prompt_tokens > 0
    assert compression["reduction"] == _expected_reduction(
        compression["saved_tokens"], last.usage.prompt_tokens
    )


def test_stream_without_usage_gets_one_extra_chunk_with_only_the_edgee_fields(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid()
    messages = transcript(cid)
    answer = _post(raw, auth, {"model": "openai/gpt-4o", "messages": messages, "stream": True}, **COMPRESS)
    assert answer.status_code == 200
    events = sse_events(answer.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert [chunk for chunk in chunks[:-1] if "compression" in chunk] == []
    last = chunks[-1]
    assert last["choices"] == [] and "usage" not in last
    # the stream's identity (as on every chunk) and the Edgee fields, nothing else
    identity = {"id", "object", "created", "model", "system_fingerprint"}
    assert set(last) - identity == {"choices", "compression"}
    assert last["id"] == chunks[0]["id"] and last["object"] == "chat.completion.chunk"
    # the gateway asked for usage upstream, so reduction still divides by what the provider billed
    (entry,) = journal(stack.mock.url, cid)
    saved = last["compression"]["saved_tokens"]
    assert saved == count_chat_prompt(messages) - entry["usage"]["prompt_tokens"]
    assert last["compression"]["reduction"] == _expected_reduction(saved, entry["usage"]["prompt_tokens"])


def test_stream_without_compression_or_debug_has_no_extra_chunk(
    raw: httpx.Client, auth: dict[str, str]
) -> None:
    answer = _post(
        raw, auth, {"model": "openai/gpt-4o", "messages": plain_conversation(new_cid()), "stream": True}
    )
    chunks = [json.loads(event) for event in sse_events(answer.text)[:-1]]
    assert all(chunk["choices"] for chunk in chunks)


# ---------------------------------------------------------------- POST /v1/compress (D33)


def _compress(raw: httpx.Client, auth: dict[str, str], body: Any) -> httpx.Response:
    return raw.post("/v1/compress", json=body, headers=auth)


@pytest.mark.parametrize("stream", [False, True])
def test_compress_returns_exactly_what_chat_forwards(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack, stream: bool
) -> None:
    cid = new_cid()
    body: dict[str, Any] = {
        "model": "openai/gpt-4o",
        "messages": transcript(cid),
        "temperature": 0.2,
        "tags": ["compress-test"],
        "stream": stream,
    }
    compressed = _compress(raw, auth, body)
    assert compressed.status_code == 200, compressed.text
    assert "x-edgee-provider" not in compressed.headers
    answer = compressed.json()
    stats = answer.pop("compression")
    # every other field is echoed as sent
    assert {k: v for k, v in answer.items() if k != "messages"} == {
        k: v for k, v in body.items() if k != "messages"
    }

    chat = _post(raw, auth, body, **COMPRESS)
    assert chat.status_code == 200
    (entry,) = journal(stack.mock.url, cid)
    assert answer["messages"] == entry["body"]["messages"]
    if stream:
        last = json.loads(sse_events(chat.text)[-2])
        saved = last["compression"]["saved_tokens"]
    else:
        saved = chat.json()["compression"]["saved_tokens"]
        assert chat.json()["usage"]["prompt_tokens"] == stats["compressed_input_tokens"]
    assert stats["uncompressed_input_tokens"] - stats["compressed_input_tokens"] == saved > 0
    assert stats["uncompressed_input_tokens"] == count_chat_prompt(body["messages"])
    assert stats["compressed_input_tokens"] == entry["usage"]["prompt_tokens"]
    assert stats["technique"] == "tool"
    assert stats["applied_strategies"] and all(isinstance(name, str) for name in stats["applied_strategies"])
    assert stats["compression_rate"] == round(saved / stats["uncompressed_input_tokens"], 4)
    assert isinstance(stats["compression_time_ms"], int) and stats["compression_time_ms"] >= 0


def test_compress_counts_tools_too(raw: httpx.Client, auth: dict[str, str]) -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "shell", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    body = {"model": "openai/gpt-4o", "messages": transcript(new_cid(), passing=10), "tools": tools}
    stats = _compress(raw, auth, body).json()["compression"]
    assert stats["uncompressed_input_tokens"] == count_chat_prompt(body["messages"], tools)


def test_compress_a_large_transcript(raw: httpx.Client, auth: dict[str, str]) -> None:
    """Over 64 KiB the work runs on a worker thread; the answer is the same kind."""
    body = {"model": "openai/gpt-4o", "messages": transcript(new_cid(), passing=2500)}
    assert len(json.dumps(body)) > 64 * 1024
    answer = _compress(raw, auth, body)
    assert answer.status_code == 200
    stats = answer.json()["compression"]
    assert stats["compression_rate"] > 0.25
    assert _needles_in(answer.json()["messages"]) == []


def test_compress_always_reports_even_when_nothing_changed(raw: httpx.Client, auth: dict[str, str]) -> None:
    body = {"model": "anything/at-all", "messages": [{"role": "user", "content": "hello"}]}
    answer = _compress(raw, auth, body)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["messages"] == body["messages"]
    stats = document["compression"]
    assert stats["applied_strategies"] == [] and stats["compression_rate"] == 0
    assert (
        stats["uncompressed_input_tokens"]
        == stats["compressed_input_tokens"]
        == count_chat_prompt(body["messages"])
    )


def test_compress_refusals(raw: httpx.Client, auth: dict[str, str], stack: LocalStack) -> None:
    good = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
    assert raw.post("/v1/compress", json=good).status_code == 401
    inactive = {"Authorization": f"Bearer {stack.keys['inactive']}"}
    assert raw.post("/v1/compress", json=good, headers=inactive).status_code == 403
    for field, value in (("system", "You are terse."), ("input", "hello")):
        refused = _compress(raw, auth, {**good, field: value})
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_request"
        assert refused.json()["error"]["param"] == field
    missing = _compress(raw, auth, {"model": "openai/gpt-4o"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    not_json = raw.post("/v1/compress", content=b"{", headers={**auth, "Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    wrong_method = raw.get("/v1/compress", headers=auth)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"


def test_compress_through_the_openai_sdk_client(stack: LocalStack) -> None:
    """The SDK's generic ``post`` reaches the route with its own auth and parsing."""
    with openai.OpenAI(
        base_url=stack.base_url, api_key=stack.api_key, max_retries=0, timeout=TIMEOUT
    ) as client:
        body = {"model": "openai/gpt-4o", "messages": transcript(new_cid(), passing=30)}
        answer = client.post("/compress", body=body, cast_to=httpx.Response)
        stats = answer.json()["compression"]
        assert stats["compressed_input_tokens"] < stats["uncompressed_input_tokens"]


# ---------------------------------------------------------------- the project's transcript corpus


@pytest.mark.parametrize("size", ["8k", "32k"])
def test_corpus_transcript_through_chat_keeps_every_needle(
    sdk: openai.OpenAI, stack: LocalStack, raw: httpx.Client, auth: dict[str, str], size: str
) -> None:
    chosen = load_transcript(size)
    cid = new_cid()
    body = chosen.request()
    last = body["messages"][-1]
    body["messages"][-1] = {**last, "content": f"{last['content']} {directive(cid=cid, tokens=5)}"}
    original = count_chat_prompt(body["messages"], body["tools"])

    response = sdk.chat.completions.with_raw_response.create(
        model=body["model"], messages=body["messages"], tools=body["tools"], extra_headers=COMPRESS
    )
    answer = response.http_response.json()
    (entry,) = journal(stack.mock.url, cid)
    forwarded = entry["body"]["messages"]
    text = "\n".join(str(message.get("content")) for message in forwarded)
    assert [needle for needle in chosen.needles if needle not in text] == []
    billed = answer["usage"]["prompt_tokens"]
    assert billed == entry["usage"]["prompt_tokens"] == count_chat_prompt(forwarded, body["tools"])
    assert answer["compression"]["saved_tokens"] == original - billed > 0
    assert answer["compression"]["reduction"] == _expected_reduction(original - billed, billed)

    # and /v1/compress says the same for the same body
    stats = raw.post("/v1/compress", json=body, headers=auth).json()["compression"]
    assert stats["uncompressed_input_tokens"] == original
    assert stats["compressed_input_tokens"] == billed
