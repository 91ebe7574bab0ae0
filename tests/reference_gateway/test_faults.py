"""Each fault makes the gateway deviate, and only the faulty gateway.

For every registered fault there is a *probe*: a small exchange with a gateway that
answers "does this gateway show that deviation?". A probe must say yes for the
gateway started with ``--fault NAME`` and no for the correct gateway, so a fault
that silently does nothing (or a probe that cannot tell) fails here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import LocalServer, LocalStack
from gateproof.reference_gateway import FAULTS, Hook

from .conftest import KEYS, fingerprint, journal, new_cid, sse_events, user

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

    def post(self, body: Any, headers: dict[str, str] | None = None, *, key: bool = True) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.key}"} if key else {}
        with httpx.Client(base_url=self.url, timeout=15, trust_env=False) as client:
            if isinstance(body, bytes):
                return client.post("/v1/chat/completions", content=body, headers={**sent, **(headers or {})})
            return client.post("/v1/chat/completions", json=body, headers={**sent, **(headers or {})})

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


#: fault -> probe (True: the deviation is there)
PROBES: dict[str, Callable[[Target], bool]] = {
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
}


def test_every_fault_has_a_probe() -> None:
    assert set(PROBES) == set(FAULTS)


def test_every_fault_is_described() -> None:
    for fault in FAULTS.values():
        assert fault.description.endswith("."), fault.name
        assert fault.hooks and all(isinstance(hook, Hook) for hook in fault.hooks)


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_the_faulty_gateway_deviates(
    name: str, fault_gateways: dict[str, LocalServer], mock_server: LocalServer
) -> None:
    target = Target(url=fault_gateways[name].url, key=KEYS["default"], mock_url=mock_server.url)
    assert PROBES[name](target), f"--fault {name} did not change the gateway's behaviour"


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_the_correct_gateway_does_not(name: str, stack: LocalStack) -> None:
    target = Target(url=stack.gateway.url, key=stack.api_key, mock_url=stack.mock.url)
    assert not PROBES[name](target), f"the correct gateway shows the {name} deviation"


def test_health_names_the_active_fault(fault_gateways: dict[str, LocalServer], stack: LocalStack) -> None:
    assert (
        httpx.get(fault_gateways["no_done"].url + "/_gateproof/health", trust_env=False).json()["fault"]
        == "no_done"
    )
    assert httpx.get(stack.gateway.url + "/_gateproof/health", trust_env=False).json()["fault"] == "none"
