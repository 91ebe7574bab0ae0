"""Each fault makes the gateway deviate, and only the faulty gateway.

For every registered fault there is a *probe*: a small exchange with a gateway that
answers "does this gateway show that deviation?". A probe must say yes for the
gateway started with ``--fault NAME`` and no for the correct gateway, so a fault
that silently does nothing (or a probe that cannot tell) fails here.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import LocalServer, LocalStack
from gateproof.openapi import FALLBACK_HEADER, count_chat_prompt, load_transcript
from gateproof.reference_gateway import load_config
from gateproof.reference_gateway.providers import CORRECT_TRANSLATION
from gateproof.selftest import FAULTS, Hook

from .conftest import KEYS, directive, fingerprint, journal, new_cid, request_log_of, sse_events, user

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@dataclass(frozen=True)
class Target:
    """A gateway to probe and the mock behind it."""

    url: str
    key: str
    mock_url: str
    #: the gateway's structured request log (D34)
    request_log: Path

    def post(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        *,
        key: bool = True,
        path: str = "/v1/chat/completions",
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.key}"} if key else {}
        with httpx.Client(base_url=self.url, timeout=15, trust_env=False) as client:
            if isinstance(body, bytes):
                return client.post(path, content=body, headers={**sent, **(headers or {})})
            return client.post(path, json=body, headers={**sent, **(headers or {})})

    def chat(self, cid: str, **fields: Any) -> httpx.Response:
        return self.post({"model": "openai/gpt-4o", "messages": user("hi", cid=cid, tokens=4), **fields})

    def stream_text(
        self, include_usage: bool = False, fields: dict[str, Any] | None = None, **directive: Any
    ) -> str:
        """The raw body of a streamed answer (``fields`` are extra body fields)."""
        body: dict[str, Any] = {
            "model": "openai/gpt-4o",
            "messages": user("hi", **{"tokens": 4, **directive}),
            "stream": True,
            **(fields or {}),
        }
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        response = self.post(body)
        assert response.status_code == 200, response.text
        return response.text

    def stream(
        self, include_usage: bool = False, fields: dict[str, Any] | None = None, **directive: Any
    ) -> list[str]:
        events: list[str] = sse_events(self.stream_text(include_usage, fields, **directive))
        return events

    def tool_stream(self) -> list[dict[str, Any]]:
        """The chunks of a streamed answer in which the model calls a tool."""
        return _chunks(self.stream(fields={"tools": [WEATHER_TOOL]}, scenario="tool_call"))


def _chunks(events: list[str]) -> list[dict[str, Any]]:
    return [json.loads(event) for event in events if event != "[DONE]"]


def _usage_chunks(events: list[str]) -> list[dict[str, Any]]:
    return [chunk for chunk in _chunks(events) if chunk.get("usage")]


def _forwarded(target: Target, **fields: Any) -> dict[str, Any]:
    cid = new_cid("probe")
    response = target.chat(cid, **fields)
    assert response.status_code == 200, response.text
    (entry,) = journal(target.mock_url, cid)
    forwarded: dict[str, Any] = entry
    return forwarded


def _usage_chunk_has_choices(target: Target) -> bool:
    (usage_chunk,) = _usage_chunks(target.stream(include_usage=True))
    return bool(usage_chunk["choices"])


def _total_wrong(usage: dict[str, Any]) -> bool:
    return bool(usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"])


def _probe_usage_total(target: Target) -> bool:
    body = target.chat(new_cid("probe")).json()
    (usage_chunk,) = _usage_chunks(target.stream(include_usage=True))
    return _total_wrong(body["usage"]) and _total_wrong(usage_chunk["usage"])


def _probe_object(target: Target) -> bool:
    body = target.chat(new_cid("probe")).json()
    chunks = _chunks(target.stream())
    return body["object"] != "chat.completion" and all(c["object"] != "chat.completion.chunk" for c in chunks)


def _probe_buffered(target: Target) -> bool:
    body = {"model": "openai/gpt-4o", "messages": user("hi", tokens=5, itl_ms=80), "stream": True}
    arrivals: list[float] = []
    headers = {"Authorization": f"Bearer {target.key}"}
    with (
        httpx.Client(base_url=target.url, timeout=15, trust_env=False) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.monotonic())
    return arrivals[-1] - arrivals[0] < 0.1


def _probe_edgee_forwarded(target: Target) -> bool:
    cid = new_cid("probe")
    body = {
        "model": "openai/gpt-4o",
        "messages": user("hi", cid=cid),
        "tags": ["t"],
        "enable_debug": False,
        "edgee_tool_ids": [],
    }
    assert target.post(body, {"X-Edgee-Tags": "x"}).status_code == 200
    (entry,) = journal(target.mock_url, cid)
    return "tags" in entry["body"] and "x-edgee-tags" in entry["headers"]


def _probe_compression_forwarded(target: Target) -> bool:
    cid = new_cid("probe")
    body = {"model": "openai/gpt-4o", "messages": user("hi", cid=cid), "enable_compression": False}
    assert target.post(body).status_code == 200
    (entry,) = journal(target.mock_url, cid)
    return "enable_compression" in entry["body"]


def _probe_tool_args(target: Target) -> bool:
    cid = new_cid("probe")
    response = target.post(
        {
            "model": "openai/gpt-4o",
            "messages": user("w?", scenario="tool_call", cid=cid),
            "tools": [WEATHER_TOOL],
        }
    )
    arguments = response.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    return isinstance(arguments, dict)


def _probe_max_tokens_zero(target: Target) -> bool:
    cid = new_cid("probe")
    response = target.chat(cid, max_tokens=0)
    entries = journal(target.mock_url, cid)
    return response.status_code == 200 and len(entries) == 1 and "max_tokens" not in entries[0]["body"]


def _probe_stream_error_as_done(target: Target) -> bool:
    events = target.stream(fault="mid_stream_error")
    return events[-1] == "[DONE]" and not any("error" in chunk for chunk in _chunks(events))


def _probe_content_type(target: Target) -> bool:
    body = {"model": "openai/gpt-4o", "messages": user("hi"), "stream": True}
    return target.post(body).headers["content-type"].startswith("application/json")


def _get(target: Target, path: str) -> httpx.Response:
    with httpx.Client(base_url=target.url, timeout=15, trust_env=False) as client:
        return client.get(path)


def _unknown_model(target: Target) -> httpx.Response:
    return target.post({"model": "openai/gpt-1", "messages": user("x")})


def _finish_reasons(chunks: list[dict[str, Any]]) -> list[str]:
    return [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]


def _tool_deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls") or []]


def _probe_length_as_stop(target: Target) -> bool:
    body = target.chat(new_cid("probe"), max_tokens=3).json()
    streamed = _chunks(target.stream(fields={"max_tokens": 3}))
    return body["choices"][0]["finish_reason"] == "stop" and _finish_reasons(streamed) == ["stop"]


def _probe_provider_model_named(target: Target) -> bool:
    body = target.chat(new_cid("probe")).json()
    return body["model"] == "gpt-4o" and {c["model"] for c in _chunks(target.stream())} == {"gpt-4o"}


def _probe_refusal_dropped(target: Target) -> bool:
    response = target.post({"model": "openai/gpt-4o", "messages": user("no", scenario="refusal")})
    message = response.json()["choices"][0]["message"]
    return message["refusal"] is None and message["content"] is None


def _probe_usage_undercounted(target: Target) -> bool:
    cid = new_cid("probe")
    billed = target.chat(cid).json()["usage"]
    (entry,) = journal(target.mock_url, cid)
    stream_cid = new_cid("probe")
    (usage_chunk,) = _usage_chunks(target.stream(include_usage=True, cid=stream_cid))
    (stream_entry,) = journal(target.mock_url, stream_cid)
    return (
        billed["completion_tokens"] == entry["usage"]["completion_tokens"] - 1
        and usage_chunk["usage"]["completion_tokens"] == stream_entry["usage"]["completion_tokens"] - 1
        and not _total_wrong(billed)
    )


def _probe_retry_after_dropped(target: Target) -> bool:
    response = target.post({"model": "openai/gpt-4o", "messages": user("x", scenario="error", status=429)})
    return response.status_code == 429 and "retry-after" not in response.headers


def _probe_tool_call_id_dropped(target: Target) -> bool:
    cid = new_cid("probe")
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
        *user("Summarise.", cid=cid),
    ]
    target.post({"model": "openai/gpt-4o", "messages": messages, "tools": [WEATHER_TOOL]})
    (entry,) = journal(target.mock_url, cid)
    return "tool_call_id" not in entry["body"]["messages"][2]


def _probe_client_key_forwarded(target: Target) -> bool:
    return bool(_forwarded(target)["headers"]["authorization"] == "Bearer " + fingerprint(target.key))


def _probe_first_delta_dropped(target: Target) -> bool:
    answer = target.post({"model": "openai/gpt-4o", "messages": user("hi", tokens=4)}).json()
    text = answer["choices"][0]["message"]["content"]
    streamed = "".join(
        chunk["choices"][0]["delta"].get("content") or ""
        for chunk in _chunks(target.stream())
        if chunk["choices"]
    )
    return bool(streamed) and text.endswith(streamed) and streamed != text


def _probe_not_json(target: Target) -> bool:
    payloads = [event for event in target.stream() if event != "[DONE]"]
    broken = 0
    for payload in payloads:
        try:
            json.loads(payload)
        except ValueError:
            broken += 1
    return broken == 1


def _probe_model_named_twice(target: Target) -> bool:
    """Every chunk's own key list says model twice, the provider's id first (json.loads would hide it)."""
    chunks = [event for event in target.stream() if event != "[DONE]"]
    models = [
        [value for key, value in json.loads(chunk, object_pairs_hook=lambda pairs: pairs) if key == "model"]
        for chunk in chunks
    ]
    return bool(chunks) and all(found == ["gpt-4o", "openai/gpt-4o"] for found in models)


def _probe_usage_early(target: Target) -> bool:
    chunks = _chunks(target.stream(include_usage=True))
    usage_at = next(i for i, c in enumerate(chunks) if c.get("usage"))
    finish_at = next(i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0]["finish_reason"])
    return usage_at < finish_at


def _probe_fragment_lost(target: Target) -> bool:
    arguments = "".join(
        call.get("function", {}).get("arguments", "") for call in _tool_deltas(target.tool_stream())
    )
    try:
        json.loads(arguments)
    except ValueError:
        return True
    return False


def _probe_tool_finish_stop(target: Target) -> bool:
    chunks = target.tool_stream()
    return bool(_tool_deltas(chunks)) and _finish_reasons(chunks) == ["stop"]


def _probe_tool_calls_dropped(target: Target) -> bool:
    chunks = target.tool_stream()
    return not _tool_deltas(chunks) and _finish_reasons(chunks) == ["stop"]


def _probe_error_event(target: Target) -> bool:
    events = target.stream()
    return events[-1] == "[DONE]" and any("error" in chunk for chunk in _chunks(events))


def _probe_plain_text_errors(target: Target) -> bool:
    response = _unknown_model(target)
    return response.headers["content-type"].startswith("text/plain") and not response.text.startswith("{")


def _probe_unknown_fields(target: Target) -> bool:
    response = target.chat(new_cid("probe"), temperature=0.2)
    return response.status_code == 400 and response.json()["error"]["param"] == "temperature"


def _probe_content_parts(target: Target) -> bool:
    parts = [{"type": "text", "text": "hi"}]
    response = target.post({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": parts}]})
    return response.status_code == 400 and response.json()["error"]["param"] == "messages[0].content"


# -- compression (D1-D3, D30-D33), tags and debug (D7, D8, D34): an agent transcript, mostly tool output --

_COMPRESS = {"X-Edgee-Enable-Compression": "true"}


def _transcript(cid: str, **fields: Any) -> dict[str, Any]:
    """The 8k agent transcript, closed by a user turn whose directive names ``cid`` for the journal."""
    body = load_transcript("8k").request()
    body["messages"] += user("Go on.", cid=cid, tokens=4)
    return {**body, **fields}


def _compressed(target: Target, cid: str, **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What was sent, and the answer, of a chat request with compression switched on."""
    sent = _transcript(cid, **fields)
    response = target.post(sent, _COMPRESS)
    assert response.status_code == 200, response.text
    return sent, response.json()


def _compression(target: Target) -> tuple[dict[str, Any], dict[str, Any]]:
    """A compressed answer's ``compression`` object and the provider's own bill for it (the journal)."""
    cid = new_cid("probe")
    info = _compressed(target, cid)[1]["compression"]
    (entry,) = journal(target.mock_url, cid)
    return info, entry["usage"]


def _compressed_stream(target: Target) -> list[dict[str, Any]]:
    body = _transcript(new_cid("probe"), stream=True, stream_options={"include_usage": True})
    response = target.post(body, _COMPRESS)
    assert response.status_code == 200, response.text
    return _chunks(sse_events(response.text))


def _probe_reduction_inconsistent(target: Target) -> bool:
    info, billed = _compression(target)
    original = billed["prompt_tokens"] + info["saved_tokens"]
    return bool(abs(info["reduction"] - info["saved_tokens"] * 100 / original) > 0.01)


def _probe_prompt_uncompressed(target: Target) -> bool:
    cid = new_cid("probe")
    answered = _compressed(target, cid)[1]["usage"]["prompt_tokens"]
    (entry,) = journal(target.mock_url, cid)
    return bool(answered != entry["usage"]["prompt_tokens"])


def _probe_saved_in_characters(target: Target) -> bool:
    cid = new_cid("probe")
    sent, answer = _compressed(target, cid)
    (entry,) = journal(target.mock_url, cid)
    saved = count_chat_prompt(sent["messages"], sent["tools"]) - entry["usage"]["prompt_tokens"]
    return bool(saved > 0 and answer["compression"]["saved_tokens"] != saved)


def _probe_cost_at_output_price(target: Target) -> bool:
    price = load_config(env={}).models["openai/gpt-4o"].input_price_per_mtok
    info = _compression(target)[0]
    return bool(abs(info["cost_savings"] - info["saved_tokens"] * price) > 1)


def _probe_time_in_microseconds(target: Target) -> bool:
    started = time.monotonic()
    info = _compression(target)[0]
    return bool(info["time_ms"] > (time.monotonic() - started) * 1000)


def _probe_compression_before_usage(target: Target) -> bool:
    chunks = _compressed_stream(target)
    return any("compression" in chunk and not chunk.get("usage") for chunk in chunks)


def _probe_error_lines_dropped(target: Target) -> bool:
    cid = new_cid("probe")
    _compressed(target, cid)
    (entry,) = journal(target.mock_url, cid)
    seen = "\n".join(m["content"] for m in entry["body"]["messages"] if isinstance(m.get("content"), str))
    return any(needle not in seen for needle in load_transcript("8k").needles)


def _probe_prompt_lengthened(target: Target) -> bool:
    cid = new_cid("probe")
    sent = _compressed(target, cid)[0]
    (entry,) = journal(target.mock_url, cid)
    return bool(entry["usage"]["prompt_tokens"] > count_chat_prompt(sent["messages"], sent["tools"]))


def _probe_compress_disagrees(target: Target) -> bool:
    response = target.post(load_transcript("8k").request(), path="/v1/compress")
    assert response.status_code == 200, response.text
    answer = response.json()
    counted = count_chat_prompt(answer["messages"], answer.get("tools") or [])
    return bool(answer["compression"]["compressed_input_tokens"] != counted)


def _probe_tags_forwarded(target: Target) -> bool:
    cid = new_cid("probe")
    body = {"model": "openai/gpt-4o", "messages": user("hi", cid=cid, tokens=2), "tags": ["t"]}
    assert target.post(body, {"X-Edgee-Tags": "x"}).status_code == 200
    (entry,) = journal(target.mock_url, cid)
    return "tags" in entry["body"] or "x-edgee-tags" in entry["headers"]


def _probe_tags_not_logged(target: Target) -> bool:
    tag = "probe-" + uuid.uuid4().hex[:12]
    answer = target.chat(new_cid("probe"), tags=[tag], enable_debug=True).json()
    lines = [json.loads(line) for line in target.request_log.read_text(encoding="utf-8").split("\n") if line]
    (line,) = [line for line in lines if line["request_id"] == answer["debug"]["request_id"]]
    return bool(line["tags"] != [tag])


def _probe_debug_public_model(target: Target) -> bool:
    cid = new_cid("probe")
    debug = target.chat(cid, enable_debug=True).json()["debug"]
    (entry,) = journal(target.mock_url, cid)
    return bool(debug["upstream_model"] != entry["body"]["model"])


#: fault -> probe (True: the deviation is there)
# -- Edge Tools (D4, D5, D35-D39): the mock's ``script`` plays the model -------------------------------

_EDGE = ["edgee_current_time", "edgee_generate_uuid"]


def _edge_chat(target: Target, script: str, cid: str, **fields: Any) -> httpx.Response:
    messages = [{"role": "user", "content": f"go {directive(script=script, cid=cid, tokens=3)}"}]
    body = {"model": "openai/gpt-4o", "messages": messages, "edgee_tool_ids": _EDGE, **fields}
    return target.post(body)


def _probe_edge_ids_unchecked(target: Target) -> bool:
    body = {
        "model": "openai/gpt-4o",
        "messages": user("hi", tokens=2),
        "edgee_tool_ids": ["edgee_gateproof_x"],
    }
    return target.post(body).status_code == 200


def _probe_edge_not_injected(target: Target) -> bool:
    cid = new_cid("probe-edge")
    assert _edge_chat(target, "edgee_generate_uuid", cid).status_code == 200
    first = journal(target.mock_url, cid)[0]["body"]
    return "edgee_generate_uuid" not in [tool["function"]["name"] for tool in first.get("tools") or []]


def _probe_edge_uuid(target: Target) -> bool:
    cid = new_cid("probe-edge")
    assert _edge_chat(target, "edgee_generate_uuid", cid).status_code == 200
    result = journal(target.mock_url, cid)[1]["body"]["messages"][-1]["content"]
    return uuid.UUID(json.loads(result)["uuid"]).version != 4


def _probe_edge_executed_missing(target: Target) -> bool:
    response = _edge_chat(target, "edgee_generate_uuid", new_cid("probe-edge"))
    return "edgee_tools_executed" not in response.json()


def _mixed(target: Target, cid: str) -> tuple[list[dict[str, Any]], httpx.Response]:
    messages = [
        {"role": "user", "content": f"go {directive(script='edgee_generate_uuid+get_weather', cid=cid)}"}
    ]
    body = {"model": "openai/gpt-4o", "messages": messages, "tools": [WEATHER_TOOL], "edgee_tool_ids": _EDGE}
    response = target.post(body)
    assert response.status_code == 200, response.text
    return messages, response


def _probe_edge_leaked(target: Target) -> bool:
    _, response = _mixed(target, new_cid("probe-edge"))
    calls = response.json()["choices"][0]["message"]["tool_calls"]
    return any(call["function"]["name"] in _EDGE for call in calls)


def _continue(target: Target, messages: list[dict[str, Any]], answer: dict[str, Any]) -> httpx.Response:
    calls = answer["choices"][0]["message"]["tool_calls"]
    follow_up = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": calls},
        *({"role": "tool", "tool_call_id": call["id"], "content": "{}"} for call in calls),
    ]
    body = {"model": "openai/gpt-4o", "messages": follow_up, "tools": [WEATHER_TOOL]}
    return target.post({**body, "edgee_pending_id": answer["edgee_pending_id"]})


def _probe_pending_ignored(target: Target) -> bool:
    cid = new_cid("probe-edge")
    messages, response = _mixed(target, cid)
    assert _continue(target, messages, response.json()).status_code == 200
    restored = journal(target.mock_url, cid)[-1]["body"]["messages"][len(messages)]["tool_calls"]
    return "edgee_generate_uuid" not in [call["function"]["name"] for call in restored]


def _probe_edge_usage_last_round(target: Target) -> bool:
    cid = new_cid("probe-edge")
    billed = _edge_chat(target, "edgee_generate_uuid", cid).json()["usage"]["prompt_tokens"]
    return bool(billed == journal(target.mock_url, cid)[-1]["usage"]["prompt_tokens"])


def _probe_pending_reusable(target: Target) -> bool:
    messages, response = _mixed(target, new_cid("probe-edge"))
    assert _continue(target, messages, response.json()).status_code == 200
    return _continue(target, messages, response.json()).status_code == 200


# -- translation faults of the Anthropic and Gemini routes (one TranslationRules switch each) ----------

ANTHROPIC_MODEL = "anthropic/claude-haiku-4-5"
GEMINI_MODEL = "google/gemini-2.5-flash"


def _routed(target: Target, model: str, text: str, cid: str, **fields: Any) -> httpx.Response:
    """One request on a provider route, the directive carrying ``cid`` (for the journal)."""
    directive_keys = fields.pop("directive", {})
    messages = fields.pop("messages", None) or user(text, **{"cid": cid, "tokens": 4, **directive_keys})
    return target.post({"model": model, "messages": messages, **fields})


def _routed_chunks(target: Target, model: str, cid: str, **fields: Any) -> list[dict[str, Any]]:
    response = _routed(target, model, "hi", cid, stream=True, **fields)
    assert response.status_code == 200, response.text
    return _chunks(sse_events(response.text))


def _finishes(chunks: list[dict[str, Any]]) -> list[Any]:
    return [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]


def _probe_anthropic_length_as_stop(target: Target) -> bool:
    body = _routed(target, ANTHROPIC_MODEL, "hi", new_cid("probe"), directive={"scenario": "length"}).json()
    chunks = _routed_chunks(target, ANTHROPIC_MODEL, new_cid("probe"), directive={"scenario": "length"})
    return bool(body["choices"][0]["finish_reason"] == "stop" and _finishes(chunks) == ["stop"])


def _probe_anthropic_refusal_as_stop(target: Target) -> bool:
    body = _routed(target, ANTHROPIC_MODEL, "hi", new_cid("probe"), directive={"scenario": "refusal"}).json()
    choice = body["choices"][0]
    return bool(
        choice["finish_reason"] == "stop"
        and choice["message"]["refusal"] is None
        and choice["message"]["content"]
    )


def _probe_anthropic_usage_from_start(target: Target) -> bool:
    cid = new_cid("probe")
    chunks = _routed_chunks(
        target, ANTHROPIC_MODEL, cid, directive={"tokens": 6}, stream_options={"include_usage": True}
    )
    (usage_chunk,) = [c for c in chunks if c.get("usage") and not c["choices"]]
    (entry,) = journal(target.mock_url, cid)
    return bool(usage_chunk["usage"]["completion_tokens"] < entry["usage"]["output_tokens"])


def _probe_anthropic_stream_args_dropped(target: Target) -> bool:
    chunks = _routed_chunks(
        target, ANTHROPIC_MODEL, new_cid("probe"), directive={"scenario": "tool_call"}, tools=[WEATHER_TOOL]
    )
    arguments: dict[int, str] = {}
    for call in _tool_deltas(chunks):
        arguments[call["index"]] = arguments.get(call["index"], "") + call["function"].get("arguments", "")
    return bool(arguments) and all(text == "" for text in arguments.values())


def _probe_anthropic_tool_result_id(target: Target) -> bool:
    cid = new_cid("probe")
    messages = [
        *user("weather?", cid=cid, tokens=4),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_probe1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_probe1", "content": "sunny"},
    ]
    response = _routed(target, ANTHROPIC_MODEL, "", cid, messages=messages, tools=[WEATHER_TOOL])
    (entry,) = journal(target.mock_url, cid)
    return response.status_code == 400 and entry["status"] == 400


def _probe_anthropic_cache_dropped(target: Target) -> bool:
    cid = new_cid("probe")
    usage = _routed(target, ANTHROPIC_MODEL, "hi", cid, directive={"cached": 3}).json()["usage"]
    (entry,) = journal(target.mock_url, cid)
    truth = entry["usage"]
    whole_prompt = (
        truth["input_tokens"] + truth["cache_read_input_tokens"] + truth["cache_creation_input_tokens"]
    )
    return bool(
        truth["cache_read_input_tokens"] > 0
        and usage["prompt_tokens"] < whole_prompt
        and usage["input_tokens_details"]["cached_tokens"] == 0
    )


def _probe_anthropic_overloaded(target: Target) -> bool:
    directive_keys = {"scenario": "error", "status": 529}
    response = _routed(target, ANTHROPIC_MODEL, "hi", new_cid("probe"), directive=directive_keys)
    return response.status_code == 400


def _probe_system_dropped(target: Target) -> bool:
    upstream: list[dict[str, Any]] = []
    for model in (ANTHROPIC_MODEL, GEMINI_MODEL):
        cid = new_cid("probe")
        messages = [{"role": "system", "content": "You are terse."}, *user("hi", cid=cid, tokens=4)]
        assert _routed(target, model, "", cid, messages=messages).status_code == 200
        (entry,) = journal(target.mock_url, cid)
        upstream.append(entry["body"])
    anthropic, gemini = upstream
    return "system" not in anthropic and "systemInstruction" not in gemini


def _probe_gemini_args_objects(target: Target) -> bool:
    tool_call = {"directive": {"scenario": "tool_call"}, "tools": [WEATHER_TOOL]}
    body = _routed(target, GEMINI_MODEL, "hi", new_cid("probe"), **tool_call).json()
    whole = [call["function"]["arguments"] for call in body["choices"][0]["message"]["tool_calls"]]
    streamed = [
        call["function"]["arguments"]
        for call in _tool_deltas(_routed_chunks(target, GEMINI_MODEL, new_cid("probe"), **tool_call))
    ]
    return bool(whole and streamed) and all(isinstance(arguments, dict) for arguments in whole + streamed)


def _probe_gemini_tool_choice_dropped(target: Target) -> bool:
    cid = new_cid("probe")
    forced = {"type": "function", "function": {"name": "get_weather"}}
    body = _routed(target, GEMINI_MODEL, "hi", cid, tools=[WEATHER_TOOL], tool_choice=forced).json()
    (entry,) = journal(target.mock_url, cid)
    return "toolConfig" not in entry["body"] and body["choices"][0]["finish_reason"] != "tool_calls"


def _probe_routing_ignores_provider(target: Target) -> bool:
    """An Anthropic model that reaches the mock's OpenAI route, not its Anthropic one."""
    cid = new_cid("probe")
    assert _routed(target, ANTHROPIC_MODEL, "hi", cid).status_code == 200
    (entry,) = journal(target.mock_url, cid)
    return bool(entry["dialect"] == "openai" and not entry["path"].startswith("/anthropic"))


def _probe_history_dropped(target: Target) -> bool:
    """A three-turn conversation reaches the provider as its last message only."""
    cid = new_cid("probe")
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "second"},
        *user("third", cid=cid, tokens=4),
    ]
    assert target.post({"model": "openai/gpt-4o", "messages": messages}).status_code == 200
    (entry,) = journal(target.mock_url, cid)
    return len(entry["body"]["messages"]) == 1


# -- bad days (D44-D48): the mock's faults behind the gateway (the stack's 2 s timeouts, STACK_LIMITS) ---

FALLBACK_MODEL = "openai/gpt-4.1"  # its fallback is anthropic/claude-haiku-4-5 (default.yaml)


def _bad_day(
    target: Target, *, stream: bool = False, model: str = "openai/gpt-4o", **keys: Any
) -> httpx.Response:
    body = {"model": model, "messages": user("hi", **{"tokens": 4, **keys}), "stream": stream}
    return target.post(body)


def _attempts(target: Target, **keys: Any) -> int:
    cid = new_cid("probe-bad")
    _bad_day(target, cid=cid, **keys)
    return len(journal(target.mock_url, cid))


def _probe_retried_mid_stream(target: Target) -> bool:
    return _attempts(target, stream=True, fault="mid_stream_error") > 1


def _probe_empty_200(target: Target) -> bool:
    response = _bad_day(target, scenario="error", status=500)
    return response.status_code == 200 and response.content == b""


def _probe_never_cancelled(target: Target) -> bool:
    """Read the first content chunk of a slow stream, hang up: the provider's request runs to its end."""
    cid = new_cid("probe-bad")
    body = {"model": "openai/gpt-4o", "messages": user("hi", cid=cid, tokens=30, itl_ms=100), "stream": True}
    headers = {"Authorization": f"Bearer {target.key}"}
    with (
        httpx.Client(base_url=target.url, timeout=15, trust_env=False) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        for line in response.iter_lines():
            if '"content"' in line:
                break
    deadline = time.monotonic() + 8
    while (outcome := journal(target.mock_url, cid)[0]["outcome"]) not in ("complete", "disconnected"):
        assert time.monotonic() < deadline, f"the provider's request is still {outcome}"
        time.sleep(0.1)
    return bool(outcome == "complete")


def _probe_fallback_answer(target: Target) -> httpx.Response:
    """The fallback model's primary route fails twice (the mock counts attempts by ``cid``)."""
    keys = {"scenario": "error", "status": 500, "fail_first": 2, "cid": new_cid("probe-bad")}
    return _bad_day(target, model=FALLBACK_MODEL, **keys)


def _probe_stall_waited_out(target: Target) -> bool:
    events = sse_events(_bad_day(target, stream=True, fault="stall", fault_after=2, fault_ms=3000).text)
    return events[-1] == "[DONE]" and not any("error" in chunk for chunk in _chunks(events))


def _probe_drip_cut(target: Target) -> bool:
    events = sse_events(_bad_day(target, stream=True, tokens=3, fault="drip", fault_ms=600).text)
    return any("error" in chunk for chunk in _chunks(events))


PROBES: dict[str, Callable[[Target], bool]] = {
    "retry_after_first_chunk": _probe_retried_mid_stream,
    "empty_200_on_provider_500": _probe_empty_200,
    "rate_limit_as_502": lambda t: (
        _bad_day(t, scenario="error", status=429, retry_after=1).status_code == 502
    ),
    "upstream_never_cancelled": _probe_never_cancelled,
    "no_retry": lambda t: _attempts(t, scenario="error", status=500) == 1,
    "retries_forever": lambda t: _attempts(t, scenario="error", status=500) > 5,
    "fallback_never_tried": lambda t: _probe_fallback_answer(t).status_code != 200,
    "fallback_header_missing": lambda t: (
        (answer := _probe_fallback_answer(t)).status_code == 200 and FALLBACK_HEADER not in answer.headers
    ),
    "fallback_header_on_primary": lambda t: FALLBACK_HEADER in t.chat(new_cid("probe")).headers,
    "idle_timeout_ignored": _probe_stall_waited_out,
    "stream_timed_whole": _probe_drip_cut,
    "provider_ignored_in_routing": _probe_routing_ignores_provider,
    "history_dropped": _probe_history_dropped,
    "no_done": lambda t: t.stream()[-1] != "[DONE]",
    "usage_chunk_missing": lambda t: _usage_chunks(t.stream(include_usage=True)) == [],
    "usage_chunk_with_choices": _usage_chunk_has_choices,
    "usage_total_wrong": _probe_usage_total,
    "object_wrong": _probe_object,
    "role_missing": lambda t: "role" not in _chunks(t.stream())[0]["choices"][0]["delta"],
    "double_finish": lambda t: sum(1 for c in _chunks(t.stream()) if c["choices"][0]["finish_reason"]) > 1,
    "invalid_json_500": lambda t: t.post(b"{not json").status_code == 500,
    "accept_max_tokens_zero": _probe_max_tokens_zero,
    "no_auth": lambda t: (
        t.post({"model": "openai/gpt-4o", "messages": user("hi")}, key=False).status_code == 200
    ),
    "error_not_enveloped": lambda t: (
        "error" not in t.post({"model": "openai/gpt-1", "messages": user("x")}).json()
    ),
    "tool_args_object": _probe_tool_args,
    "sse_wrong_content_type": _probe_content_type,
    "buffered_stream": _probe_buffered,
    "model_prefix_forwarded": lambda t: _forwarded(t)["body"]["model"] == "openai/gpt-4o",
    "edgee_fields_forwarded": _probe_edgee_forwarded,
    "compression_fields_forwarded": _probe_compression_forwarded,
    "chunk_id_changes": lambda t: len({c["id"] for c in _chunks(t.stream())}) > 1,
    "tools_dropped": lambda t: "tools" not in _forwarded(t, tools=[WEATHER_TOOL], tool_choice="auto")["body"],
    "stream_error_as_done": _probe_stream_error_as_done,
    "provider_header_missing": lambda t: "x-edgee-provider" not in t.chat(new_cid("probe")).headers,
    "unknown_model_404": lambda t: (
        t.post({"model": "openai/gpt-1", "messages": user("x")}).status_code == 404
    ),
    "models_list_malformed": lambda t: any("owned_by" not in m for m in _get(t, "/v1/models").json()["data"]),
    "error_code_is_status": lambda t: _unknown_model(t).json()["error"]["code"] == "400",
    "finish_reason_rewritten": _probe_length_as_stop,
    "upstream_model_echoed": _probe_provider_model_named,
    "max_tokens_dropped": lambda t: "max_tokens" not in _forwarded(t, max_tokens=7)["body"],
    "refusal_dropped": _probe_refusal_dropped,
    "usage_undercounted": _probe_usage_undercounted,
    "retry_after_dropped": _probe_retry_after_dropped,
    "tool_call_id_dropped": _probe_tool_call_id_dropped,
    "client_key_forwarded": _probe_client_key_forwarded,
    "first_delta_dropped": _probe_first_delta_dropped,
    "sse_single_newline": lambda t: "\n\n" not in t.stream_text(),
    "sse_named_events": lambda t: "event: chunk\n" in t.stream_text(),
    "chunk_not_json": _probe_not_json,
    "duplicate_model_key": _probe_model_named_twice,
    "chunk_model_changes": lambda t: len({c["model"] for c in _chunks(t.stream())}) > 1,
    "chunk_created_changes": lambda t: len({c["created"] for c in _chunks(t.stream(include_usage=True))}) > 1,
    "usage_chunk_unrequested": lambda t: _usage_chunks(t.stream()) != [],
    "usage_chunk_early": _probe_usage_early,
    "tool_call_index_missing": lambda t: any("index" not in call for call in _tool_deltas(t.tool_stream())),
    "tool_call_fragment_lost": _probe_fragment_lost,
    "tool_finish_reason_stop": _probe_tool_finish_stop,
    "tool_calls_dropped_in_stream": _probe_tool_calls_dropped,
    "error_event_in_stream": _probe_error_event,
    "validation_422": lambda t: t.chat(new_cid("probe"), max_tokens=0).status_code == 422,
    "error_text_plain": _probe_plain_text_errors,
    "wrong_method_404": lambda t: _get(t, "/v1/chat/completions").status_code == 404,
    "unknown_fields_rejected": _probe_unknown_fields,
    "content_parts_rejected": _probe_content_parts,
    "edge_tool_ids_unchecked": _probe_edge_ids_unchecked,
    "edge_tools_not_injected": _probe_edge_not_injected,
    "edge_uuid_not_v4": _probe_edge_uuid,
    "edge_tools_executed_missing": _probe_edge_executed_missing,
    "edge_tool_call_leaked": _probe_edge_leaked,
    "pending_id_ignored": _probe_pending_ignored,
    "pending_id_reusable": _probe_pending_reusable,
    "edge_usage_last_round_only": _probe_edge_usage_last_round,
    "compression_reduction_inconsistent": _probe_reduction_inconsistent,
    "compression_reduction_unrounded": lambda t: (
        (reduction := _compression(t)[0]["reduction"]) != round(reduction, 2)
    ),
    "compression_prompt_tokens_uncompressed": _probe_prompt_uncompressed,
    "compression_saved_in_characters": _probe_saved_in_characters,
    "compression_cost_savings_zero": lambda t: (
        (info := _compression(t)[0])["saved_tokens"] > 0 and info["cost_savings"] == 0
    ),
    "compression_time_in_microseconds": _probe_time_in_microseconds,
    "compression_cost_at_output_price": _probe_cost_at_output_price,
    "compression_unasked": lambda t: "compression" in t.chat(new_cid("probe")).json(),
    "compression_missing": lambda t: "compression" not in _compressed(t, new_cid("probe"))[1],
    "compression_on_first_chunk": lambda t: "compression" in _chunks(t.stream())[0],
    "compression_before_usage_chunk": _probe_compression_before_usage,
    "compression_drops_error_lines": _probe_error_lines_dropped,
    "compression_lengthens_prompt": _probe_prompt_lengthened,
    "compress_endpoint_disagrees": _probe_compress_disagrees,
    "tags_forwarded": _probe_tags_forwarded,
    "tags_not_logged": _probe_tags_not_logged,
    "debug_unasked": lambda t: "debug" in t.chat(new_cid("probe")).json(),
    "debug_missing": lambda t: "debug" not in t.chat(new_cid("probe"), enable_debug=True).json(),
    "debug_public_model": _probe_debug_public_model,
    "anthropic_max_tokens_as_stop": _probe_anthropic_length_as_stop,
    "anthropic_refusal_as_stop": _probe_anthropic_refusal_as_stop,
    "anthropic_usage_from_message_start": _probe_anthropic_usage_from_start,
    "anthropic_stream_tool_args_dropped": _probe_anthropic_stream_args_dropped,
    "anthropic_tool_result_wrong_id": _probe_anthropic_tool_result_id,
    "anthropic_cache_tokens_dropped": _probe_anthropic_cache_dropped,
    "anthropic_overloaded_as_400": _probe_anthropic_overloaded,
    "system_prompt_dropped": _probe_system_dropped,
    "gemini_args_not_stringified": _probe_gemini_args_objects,
    "gemini_tool_choice_dropped": _probe_gemini_tool_choice_dropped,
}


def test_every_fault_has_a_probe() -> None:
    assert set(PROBES) == set(FAULTS)


def test_every_fault_is_described() -> None:
    for fault in FAULTS.values():
        assert fault.description.endswith("."), fault.name
        assert fault.hooks and all(isinstance(hook, Hook) for hook in fault.hooks)


def test_every_translation_rule_is_broken_by_exactly_one_fault() -> None:
    """Each adapter switch is one named bug (a rule nothing breaks is untested, two faults are one)."""
    broken: list[str] = []
    for fault in FAULTS.values():
        rules = fault.on_translation(CORRECT_TRANSLATION)
        off = [f.name for f in dataclasses.fields(rules) if getattr(rules, f.name) is False]
        assert len(off) == (1 if fault.translation else 0), (fault.name, off)
        broken += off
    assert sorted(broken) == sorted(f.name for f in dataclasses.fields(CORRECT_TRANSLATION))


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_the_faulty_gateway_deviates(
    name: str, fault_gateways: dict[str, LocalServer], mock_server: LocalServer
) -> None:
    server = fault_gateways[name]
    target = Target(server.url, KEYS["default"], mock_server.url, request_log_of(server))
    assert PROBES[name](target), f"--fault {name} did not change the gateway's behaviour"


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_the_correct_gateway_does_not(name: str, stack: LocalStack) -> None:
    target = Target(stack.gateway.url, stack.api_key, stack.mock.url, stack.request_log)
    assert not PROBES[name](target), f"the correct gateway shows the {name} deviation"


def test_health_names_the_active_fault(fault_gateways: dict[str, LocalServer], stack: LocalStack) -> None:
    assert (
        httpx.get(fault_gateways["no_done"].url + "/_gateproof/health", trust_env=False).json()["fault"]
        == "no_done"
    )
    assert httpx.get(stack.gateway.url + "/_gateproof/health", trust_env=False).json()["fault"] == "none"
