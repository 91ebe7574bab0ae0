"""Debug (D7, D8, D34) and tags (D7, D11) through the real stack, with the OpenAI SDK where it fits."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pytest

from gateproof.cli.launch import LocalStack

from .conftest import journal, new_cid, sse_events, user
from .test_compression_http import COMPRESS, transcript
from .test_request_log import log_line

REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")


def _post(raw: httpx.Client, auth: dict[str, str], body: dict[str, Any], **headers: str) -> httpx.Response:
    return raw.post("/v1/chat/completions", json=body, headers={**auth, **headers})


def test_no_debug_object_unless_asked(raw: httpx.Client, auth: dict[str, str]) -> None:
    answer = _post(raw, auth, {"model": "openai/gpt-4o", "messages": user("hi", tokens=3)})
    assert answer.status_code == 200
    assert "debug" not in answer.json()
    off = _post(
        raw,
        auth,
        {"model": "openai/gpt-4o", "messages": user("hi"), "enable_debug": False},
        **{"X-Edgee-Debug": "0"},
    )
    assert "debug" not in off.json()


@pytest.mark.parametrize("how", ["header", "body"])
def test_debug_object_when_asked(sdk: openai.OpenAI, stack: LocalStack, how: str) -> None:
    cid = new_cid()
    extra: dict[str, Any] = (
        {"extra_headers": {"X-Edgee-Debug": "true"}}
        if how == "header"
        else {"extra_body": {"enable_debug": True}}
    )
    response = sdk.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=user("hi", tokens=4, cid=cid), **extra
    )
    debug = response.http_response.json()["debug"]
    assert REQUEST_ID.match(debug["request_id"])
    assert debug["provider"] == "openai" and debug["upstream_model"] == "gpt-4o-mini"
    assert debug["upstream_status"] == 200
    assert debug["edge_tool_rounds"] == 0
    assert "compression" not in debug
    timings = debug["timings_ms"]
    assert set(timings) == {"total", "upstream"}
    assert 0 < timings["upstream"] <= timings["total"]
    # the debug switch is the gateway's own: nothing of it reaches the provider (D11)
    (entry,) = journal(stack.mock.url, cid)
    assert "enable_debug" not in entry["body"]
    assert not [name for name in entry["headers"] if name.lower().startswith("x-edgee-")]
    # and the id is the one the request log carries
    assert log_line(stack, debug["request_id"])["key"] == "default"


def test_each_request_gets_its_own_request_id(raw: httpx.Client, auth: dict[str, str]) -> None:
    ids = {
        _post(raw, auth, {"model": "openai/gpt-4o", "messages": user("hi")}, **{"X-Edgee-Debug": "1"}).json()[
            "debug"
        ]["request_id"]
        for _ in range(3)
    }
    assert len(ids) == 3


def test_debug_with_compression_names_what_it_did(raw: httpx.Client, auth: dict[str, str]) -> None:
    body = {"model": "openai/gpt-4o", "messages": transcript(new_cid()), "enable_debug": True}
    answer = _post(raw, auth, body, **COMPRESS).json()
    debug, compression = answer["debug"], answer["compression"]
    assert debug["compression"]["saved_tokens"] == compression["saved_tokens"] > 0
    assert debug["compression"]["changed_messages"] == 2
    stats = raw.post("/v1/compress", json=body, headers=auth).json()["compression"]
    assert debug["compression"]["strategies"] == stats["applied_strategies"]
    timings = debug["timings_ms"]
    assert 0 <= timings["compression"] <= timings["total"]
    assert timings["upstream"] + timings["compression"] <= timings["total"]


def test_debug_rides_on_the_last_chunk_of_a_stream(raw: httpx.Client, auth: dict[str, str]) -> None:
    for include_usage in (True, False):
        body: dict[str, Any] = {"model": "openai/gpt-4o", "messages": user("hi", tokens=5), "stream": True}
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        answer = _post(raw, auth, body, **{"X-Edgee-Debug": "true"})
        events = sse_events(answer.text)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(event) for event in events[:-1]]
        assert [chunk for chunk in chunks[:-1] if "debug" in chunk] == []
        last = chunks[-1]
        assert last["choices"] == [] and ("usage" in last) is include_usage
        assert REQUEST_ID.match(last["debug"]["request_id"])
        assert last["debug"]["upstream_status"] == 200
        # the upstream time covers the whole provider stream, measured when it completed
        assert 0 < last["debug"]["timings_ms"]["upstream"] <= last["debug"]["timings_ms"]["total"]


def test_tags_never_reach_the_provider_and_are_logged_merged(sdk: openai.OpenAI, stack: LocalStack) -> None:
    cid = new_cid()
    response = sdk.chat.completions.with_raw_response.create(
        model="openai/gpt-4o",
        messages=user("hi", tokens=3, cid=cid),
        extra_body={"tags": ["team-a", "exp-7"], "enable_debug": True},
        extra_headers={"X-Edgee-Tags": "exp-7 , nightly,,"},
    )
    request_id = response.http_response.json()["debug"]["request_id"]
    (entry,) = journal(stack.mock.url, cid)
    assert "tags" not in entry["body"]
    assert "team-a" not in json.dumps(entry)
    assert log_line(stack, request_id)["tags"] == ["team-a", "exp-7", "nightly"]
