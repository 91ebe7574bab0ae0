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

from .conftest import KEYS, journal, new_cid, sse_events, user

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

    def stream(self, include_usage: bool = False, **directive: Any) -> list[str]:
        body: dict[str, Any] = {
            "model": "openai/gpt-4o",
            "messages": user("hi", **{"tokens": 4, **directive}),
            "stream": True,
        }
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        response = self.post(body)
        assert response.status_code == 200, response.text
        events: list[str] = sse_events(response.text)
        return events


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
    "chunk_id_changes": lambda t: len({c["id"] for c in _chunks(t.stream())}) > 1,
    "tools_dropped": lambda t: "tools" not in _forwarded(t, tools=[WEATHER_TOOL], tool_choice="auto")["body"],
    "stream_error_as_done": _probe_stream_error_as_done,
    "provider_header_missing": lambda t: "x-edgee-provider" not in t.chat(new_cid("probe")).headers,
    "unknown_model_404": lambda t: (
        t.post({"model": "openai/gpt-1", "messages": user("x")}).status_code == 404
    ),
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
