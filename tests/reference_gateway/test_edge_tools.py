"""Edge Tools through the real gateway and the real mock (D4, D5, D35-D39).

The mock is told which tools to call in which turn with ``script=`` (rounds split by ``;``,
calls of one round by ``+``); the journal shows what the gateway sent the provider in each
round. Every request talks loopback HTTP to real servers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openai
import pytest

from gateproof.cli.launch import LocalServer, LocalStack
from gateproof.reference_gateway._config import ConfigError, parse_config
from gateproof.reference_gateway._edge_tools import (
    CURRENT_TIME,
    GENERATE_UUID,
    MAX_EDGE_ROUNDS,
    run_edge_tool,
)
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._pending import PendingStore, PendingTurn, splice_pending

from .conftest import KEYS, TIMEOUT, _start_gateway, journal, new_cid, sse_events, user

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _chat(raw: httpx.Client, auth: dict[str, str], **body: Any) -> httpx.Response:
    return raw.post(
        "/v1/chat/completions", json={"model": "openai/gpt-4o", "max_tokens": 32, **body}, headers=auth
    )


def _tool_names(entry: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in entry["body"].get("tools") or []]


# -- injection and the 400s ----------------------------------------------------------------------------


def test_edgee_tool_ids_are_injected_after_the_client_tools_and_not_forwarded(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid("edge-inject")
    response = _chat(
        raw,
        auth,
        messages=user("hi", scenario="text", tokens=3, cid=cid),
        tools=[WEATHER],
        edgee_tool_ids=[GENERATE_UUID, CURRENT_TIME, GENERATE_UUID],
    )
    assert response.status_code == 200, response.text
    (entry,) = journal(stack.mock.url, cid)
    assert _tool_names(entry) == ["get_weather", GENERATE_UUID, CURRENT_TIME]
    assert "edgee_tool_ids" not in entry["body"]
    assert "edgee_tools_executed" not in response.json()  # nothing ran


def test_unknown_ids_are_400_naming_each_once_in_request_order(
    raw: httpx.Client, auth: dict[str, str]
) -> None:
    response = _chat(
        raw, auth, messages=user("hi"), edgee_tool_ids=["edgee_nope", CURRENT_TIME, "other", "edgee_nope"]
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {
        "message": "Invalid or non-activated Edge Tool IDs: edgee_nope, other",
        "type": "invalid_request_error",
        "code": "invalid_edgee_tool_ids",
        "param": "edgee_tool_ids",
    }


@pytest.mark.parametrize("pending_id", ["pend_" + "A" * 22, "nonsense", ""])
def test_unknown_pending_id_is_400(raw: httpx.Client, auth: dict[str, str], pending_id: str) -> None:
    response = _chat(raw, auth, messages=user("hi"), edgee_pending_id=pending_id)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_edgee_pending_id", "edgee_pending_id")


# -- the loop -------------------------------------------------------------------------------------------


def test_edge_only_rounds_run_and_the_model_is_asked_again(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid("edge-loop")
    response = _chat(
        raw,
        auth,
        messages=user("what time is it", script=f"{GENERATE_UUID};{CURRENT_TIME}", tokens=4, cid=cid),
        edgee_tool_ids=[CURRENT_TIME, GENERATE_UUID],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"].get("tool_calls") is None
    assert body["edgee_tools_executed"] == [
        {"name": GENERATE_UUID, "success": True},
        {"name": CURRENT_TIME, "success": True},
    ]
    entries = journal(stack.mock.url, cid)
    assert len(entries) == 3
    # round 2 saw the uuid call and its result
    second = entries[1]["body"]["messages"]
    assistant, result = second[-2], second[-1]
    assert (
        assistant["role"] == "assistant" and assistant["tool_calls"][0]["function"]["name"] == GENERATE_UUID
    )
    assert result["role"] == "tool" and result["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert uuid.UUID(json.loads(result["content"])["uuid"]).version == 4
    # round 3 saw the time call, in the zone the model asked for
    third = entries[2]["body"]["messages"]
    call = third[-2]["tool_calls"][0]
    zone = json.loads(call["function"]["arguments"])["timezone"]
    answer = json.loads(third[-1]["content"])
    assert answer["timezone"] == zone == "Europe/Paris"
    local = datetime.fromisoformat(answer["iso8601"])
    assert local.utcoffset() == datetime.fromtimestamp(answer["unix"], ZoneInfo(zone)).utcoffset()
    assert abs(local.timestamp() - answer["unix"]) < 1
    # usage is the sum over the three provider calls
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 4


def test_hydrated_tools_are_offered_without_asking(
    hydrating_gateway: LocalServer, mock_server: LocalServer
) -> None:
    cid = new_cid("edge-hydrate")
    with httpx.Client(base_url=hydrating_gateway.url, timeout=TIMEOUT, trust_env=False) as client:
        response = _chat(client, _auth("default"), messages=user("hi", script=GENERATE_UUID, cid=cid))
        assert response.status_code == 200, response.text
        assert response.json()["edgee_tools_executed"] == [{"name": GENERATE_UUID, "success": True}]
        # the request's own list replaces the hydrated one
        cid2 = new_cid("edge-hydrate-own")
        response = _chat(
            client, _auth("default"), messages=user("hi", cid=cid2), edgee_tool_ids=[CURRENT_TIME]
        )
        assert response.status_code == 200
    assert _tool_names(journal(mock_server.url, cid)[0]) == [GENERATE_UUID]
    assert _tool_names(journal(mock_server.url, cid2)[0]) == [CURRENT_TIME]


def test_a_tool_the_key_did_not_activate_is_refused(hydrating_gateway: LocalServer) -> None:
    with httpx.Client(base_url=hydrating_gateway.url, timeout=TIMEOUT, trust_env=False) as client:
        response = _chat(client, _auth("restricted"), messages=user("hi"), edgee_tool_ids=[GENERATE_UUID])
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"Invalid or non-activated Edge Tool IDs: {GENERATE_UUID}"


def test_time_results_in_a_zone_default_to_utc_and_an_unknown_zone_is_a_failed_tool() -> None:
    instant = 1_780_000_000.0
    paris = run_edge_tool(CURRENT_TIME, '{"timezone": "Europe/Paris"}', now=lambda: instant)
    assert paris.success
    value = json.loads(paris.content)
    assert value == {
        "timezone": "Europe/Paris",
        "iso8601": "2026-05-28T22:26:40+02:00",
        "unix": 1_780_000_000,
    }
    utc = json.loads(run_edge_tool(CURRENT_TIME, "", now=lambda: instant).content)
    assert utc["timezone"] == "UTC" and utc["iso8601"].endswith("+00:00")
    unknown = run_edge_tool(CURRENT_TIME, '{"timezone": "Mars/Olympus"}')
    assert not unknown.success and "Mars/Olympus" in json.loads(unknown.content)["error"]
    assert not run_edge_tool(CURRENT_TIME, "[1]").success
    assert not run_edge_tool(CURRENT_TIME, '{"timezone": 3}').success
    made = json.loads(run_edge_tool(GENERATE_UUID, "{}").content)["uuid"]
    assert uuid.UUID(made).version == 4 and str(uuid.UUID(made)) == made


def test_the_pending_store_expires_bounds_and_binds_to_the_key() -> None:
    now = [0.0]
    store = PendingStore(ttl_s=600, max_entries=2, clock=lambda: now[0])
    turn = PendingTurn(owner="a", calls=({"id": "c1"}, {"id": "e1"}), results={"e1": "{}"})
    first = store.put(turn)
    assert first.startswith("pend_") and len(first) >= 21
    assert store.peek(first, "a") is turn
    with pytest.raises(GatewayError):
        store.peek(first, "b")
    now[0] = 601.0
    with pytest.raises(GatewayError):
        store.peek(first, "a")
    ids = [store.put(turn) for _ in range(3)]
    assert len(store) == 2
    with pytest.raises(GatewayError):
        store.peek(ids[0], "a")
    store.discard(ids[2])
    with pytest.raises(GatewayError):
        store.peek(ids[2], "a")


def test_the_round_limit_is_a_502(raw: httpx.Client, auth: dict[str, str], stack: LocalStack) -> None:
    cid = new_cid("edge-limit")
    script = ";".join([GENERATE_UUID] * (MAX_EDGE_ROUNDS + 1))
    response = _chat(raw, auth, messages=user("loop", script=script, cid=cid), edgee_tool_ids=[GENERATE_UUID])
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "edge_tool_loop_limit"
    assert len(journal(stack.mock.url, cid)) == MAX_EDGE_ROUNDS + 1
    # exactly the limit is fine
    cid = new_cid("edge-limit-ok")
    script = ";".join([GENERATE_UUID] * MAX_EDGE_ROUNDS)
    response = _chat(raw, auth, messages=user("loop", script=script, cid=cid), edgee_tool_ids=[GENERATE_UUID])
    assert response.status_code == 200
    assert len(response.json()["edgee_tools_executed"]) == MAX_EDGE_ROUNDS


# -- the pending flow -----------------------------------------------------------------------------------


def _mixed_turn(
    raw: httpx.Client, auth: dict[str, str], cid: str, **extra: Any
) -> tuple[list[Any], httpx.Response]:
    messages = user(
        "weather and time", script=f"{CURRENT_TIME}+get_weather+{GENERATE_UUID}", tokens=3, cid=cid
    )
    response = _chat(
        raw, auth, messages=messages, tools=[WEATHER], edgee_tool_ids=[CURRENT_TIME, GENERATE_UUID], **extra
    )
    return messages, response


def test_mixed_calls_hold_the_edge_results_and_the_continuation_restores_them(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid("edge-pending")
    messages, response = _mixed_turn(raw, auth, cid)
    assert response.status_code == 200, response.text
    body = response.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather"]
    pending_id = body["edgee_pending_id"]
    assert pending_id.startswith("pend_") and len(pending_id) >= 21
    assert body["edgee_tools_executed"] == [
        {"name": CURRENT_TIME, "success": True},
        {"name": GENERATE_UUID, "success": True},
    ]
    (first,) = journal(stack.mock.url, cid)
    follow_up = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"c": 12}'},
    ]
    again = _chat(raw, auth, messages=follow_up, tools=[WEATHER], edgee_pending_id=pending_id)
    assert again.status_code == 200, again.text
    assert again.json()["choices"][0]["finish_reason"] == "stop"
    entries = journal(stack.mock.url, cid)
    sent = entries[-1]["body"]["messages"]
    assistant = sent[len(messages)]
    names = [c["function"]["name"] for c in assistant["tool_calls"]]
    assert names == [CURRENT_TIME, "get_weather", GENERATE_UUID]
    results = sent[len(messages) + 1 :]
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in assistant["tool_calls"]]
    assert results[1]["content"] == '{"c": 12}'
    assert "iso8601" in json.loads(results[0]["content"])
    assert uuid.UUID(json.loads(results[2]["content"])["uuid"]).version == 4
    assert "edgee_pending_id" not in entries[-1]["body"]
    # single use
    reused = _chat(raw, auth, messages=follow_up, tools=[WEATHER], edgee_pending_id=pending_id)
    assert reused.status_code == 400
    assert reused.json()["error"]["code"] == "invalid_edgee_pending_id"
    assert first["body"]["tools"][0]["function"]["name"] == "get_weather"


def test_a_pending_id_works_only_for_its_own_key(
    hydrating_gateway: LocalServer,
) -> None:
    cid = new_cid("edge-owner")
    with httpx.Client(base_url=hydrating_gateway.url, timeout=TIMEOUT, trust_env=False) as client:
        messages, response = _mixed_turn(client, _auth("default"), cid)
        assert response.status_code == 200, response.text
        pending_id = response.json()["edgee_pending_id"]
        calls = response.json()["choices"][0]["message"]["tool_calls"]
        follow_up = [
            *messages,
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "ok"},
        ]
        other = _chat(client, _auth("compressing"), messages=follow_up, edgee_pending_id=pending_id)
        assert other.status_code == 400
        # the conversation must hold the turn's calls
        wrong = _chat(client, _auth("default"), messages=messages, edgee_pending_id=pending_id)
        assert wrong.status_code == 400
        assert (
            _chat(client, _auth("default"), messages=follow_up, edgee_pending_id=pending_id).status_code
            == 200
        )


# -- streams --------------------------------------------------------------------------------------------


def _stream(raw: httpx.Client, auth: dict[str, str], **body: Any) -> list[Any]:
    response = _chat(raw, auth, stream=True, stream_options={"include_usage": True}, **body)
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


def test_a_stream_hides_the_edge_rounds_and_continues_with_the_answer(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid("edge-stream")
    chunks = _stream(
        raw,
        auth,
        messages=user("go", script=f"{GENERATE_UUID};{CURRENT_TIME}", tokens=5, cid=cid),
        edgee_tool_ids=[CURRENT_TIME, GENERATE_UUID],
    )
    assert len(journal(stack.mock.url, cid)) == 3
    assert len({chunk["id"] for chunk in chunks}) == 1
    deltas = [c["choices"][0] for c in chunks if c["choices"]]
    assert not any(d["delta"].get("tool_calls") for d in deltas)
    assert [d["finish_reason"] for d in deltas if d["finish_reason"]] == ["stop"]
    assert sum(1 for d in deltas if "role" in d["delta"]) == 1
    assert "".join(d["delta"].get("content") or "" for d in deltas)
    closing = chunks[-1]
    assert closing["choices"] == []
    assert closing["edgee_tools_executed"] == [
        {"name": GENERATE_UUID, "success": True},
        {"name": CURRENT_TIME, "success": True},
    ]
    assert closing["usage"]["completion_tokens"] > 5


def test_a_stream_of_a_mixed_turn_shows_only_the_client_calls(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid = new_cid("edge-stream-mixed")
    chunks = _stream(
        raw,
        auth,
        messages=user("go", script=f"{GENERATE_UUID}+get_weather", cid=cid),
        tools=[WEATHER],
        edgee_tool_ids=[GENERATE_UUID],
    )
    fragments = [f for c in chunks if c["choices"] for f in c["choices"][0]["delta"].get("tool_calls") or []]
    assert [(f["index"], f["function"]["name"]) for f in fragments] == [(0, "get_weather")]
    json.loads(fragments[0]["function"]["arguments"])
    finishes = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finishes == ["tool_calls"]
    closing = chunks[-1]
    assert closing["choices"] == [] and closing["edgee_pending_id"].startswith("pend_")
    assert closing["edgee_tools_executed"] == [{"name": GENERATE_UUID, "success": True}]


def test_the_round_limit_in_a_stream_is_an_error_event(raw: httpx.Client, auth: dict[str, str]) -> None:
    script = ";".join([GENERATE_UUID] * (MAX_EDGE_ROUNDS + 1))
    response = _chat(
        raw, auth, stream=True, messages=user("loop", script=script), edgee_tool_ids=[GENERATE_UUID]
    )
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[-1] != "[DONE]"
    assert json.loads(events[-1])["error"]["code"] == "edge_tool_loop_limit"


def test_the_sdk_reads_a_pending_stream(stack: LocalStack) -> None:
    client = openai.OpenAI(base_url=stack.base_url, api_key=stack.api_key, max_retries=0, timeout=15.0)
    with client:
        stream = client.chat.completions.create(
            model="openai/gpt-4o",
            messages=user("go", script=f"{CURRENT_TIME}+get_weather"),  # type: ignore[arg-type]
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
            extra_body={"edgee_tool_ids": [CURRENT_TIME]},
        )
        names = [
            call.function.name
            for chunk in stream
            for choice in chunk.choices
            for call in choice.delta.tool_calls or []
            if call.function is not None and call.function.name
        ]
    assert names == ["get_weather"]


# -- a gateway with other key settings ------------------------------------------------------------------

HYDRATING_CONFIG = """\
providers:
  openai:
    dialect: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: GATEPROOF_UPSTREAM_OPENAI_KEY
models:
  - id: openai/gpt-4o
    provider: openai
    upstream_model: gpt-4o
    created: 1715367049
keys:
  - name: default
    key_env: GATEPROOF_API_KEY
    hydrated_edge_tools: [edgee_generate_uuid]
  - name: restricted
    key_env: GATEPROOF_RESTRICTED_API_KEY
    edge_tools: [edgee_current_time]
  - name: compressing
    key_env: GATEPROOF_COMPRESSING_API_KEY
"""


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


@pytest.fixture(scope="module")
def hydrating_gateway(
    mock_server: LocalServer, logs_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    """A gateway whose default key hydrates edgee_generate_uuid and whose restricted key has only the time tool."""
    config = tmp_path_factory.mktemp("edge-config") / "edge.yaml"
    config.write_text(HYDRATING_CONFIG)
    server = _start_gateway(
        "gateway-edge-tools", mock_server.url, ["--config", str(config)], logs_dir / "edge"
    )
    try:
        yield server
    finally:
        server.stop()


# -- the config -----------------------------------------------------------------------------------------


def _keys_config(**key: Any) -> dict[str, Any]:
    return {
        "providers": {"openai": {"dialect": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        "models": [{"id": "openai/gpt-4o", "provider": "openai", "created": 1}],
        "keys": [{"name": "k", "key": "secret-value", **key}],
    }


def test_a_key_activates_every_edge_tool_unless_it_lists_them() -> None:
    (key,) = parse_config(_keys_config(), env={}).keys
    assert key.edge_tools is None and key.hydrated_edge_tools == ()
    (key,) = parse_config(
        _keys_config(edge_tools=[CURRENT_TIME], hydrated_edge_tools=[CURRENT_TIME, CURRENT_TIME]), env={}
    ).keys
    assert key.edge_tools == frozenset({CURRENT_TIME}) and key.hydrated_edge_tools == (CURRENT_TIME,)


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ({"edge_tools": ["edgee_weather"]}, "keys[0].edge_tools[0]: unknown Edge Tool 'edgee_weather'"),
        (
            {"edge_tools": [CURRENT_TIME], "hydrated_edge_tools": [GENERATE_UUID]},
            "keys[0].hydrated_edge_tools[0]: 'edgee_generate_uuid' is not in this key's edge_tools",
        ),
        ({"hydrated_edge_tools": "edgee_current_time"}, "keys[0].hydrated_edge_tools: must be a list"),
    ],
)
def test_bad_edge_tool_settings_stop_the_gateway_naming_the_field(key: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(where)):
        parse_config(_keys_config(**key), env={})


def test_the_held_turn_goes_back_at_the_clients_assistant_message_in_call_order() -> None:
    calls = ({"id": "e1", "function": {"name": CURRENT_TIME}}, {"id": "c1"}, {"id": "e2"}, {"id": "c2"})
    turn = PendingTurn(owner="a", calls=calls, results={"e1": "time", "e2": "uuid"})
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}, {"id": "c2"}]},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "user", "content": "more"},
    ]
    spliced = splice_pending(history, turn)
    assert spliced[0] == history[0] and spliced[-1] == history[-1]
    assert [c["id"] for c in spliced[1]["tool_calls"]] == ["e1", "c1", "e2", "c2"]
    assert [(m["tool_call_id"], m["content"]) for m in spliced[2:6]] == [
        ("e1", "time"),
        ("c1", "one"),
        ("e2", "uuid"),
        ("c2", "two"),
    ]
    assert history[1]["tool_calls"] == [{"id": "c1"}, {"id": "c2"}]  # the client's list is left alone
    with pytest.raises(GatewayError):
        splice_pending([{"role": "user", "content": "q"}], turn)
