"""Provider faults, over real HTTP, plus the registry's contract."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import LocalServer
from gateproof.mock_providers import (
    FAULTS,
    FaultContext,
    FrameRole,
    Incoming,
    MockConfig,
    error_fault_status,
    is_fault_name,
    plan_scenario,
)
from gateproof.mock_providers._directives import parse_directive
from gateproof.mock_providers.dialects import OpenAIDialect

Events = list[tuple[float, str]]
StreamEvents = Callable[[dict[str, Any]], tuple[httpx.Response, Events]]
ReadJournal = Callable[[str], list[dict[str, Any]]]


def _chat(text: str, stream: bool = True) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "stream": stream}


def _content(events: Events) -> list[str]:
    found = []
    for _, payload in events:
        try:
            chunk = json.loads(payload)
        except ValueError:
            continue
        if isinstance(chunk, dict) and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
            found.append(chunk["choices"][0]["delta"]["content"])
    return found


def test_registry_lists_the_required_faults() -> None:
    required = {"mid_stream_error", "no_done", "truncate", "malformed_chunk", "slow_headers"}
    assert required | {"reset", "cut", "stall", "drip"} <= set(FAULTS)
    assert all(fault.summary for fault in FAULTS.values())


def test_error_fault_names() -> None:
    assert error_fault_status("status_429", 503) == 429
    assert error_fault_status("overload", 529) == 529
    assert error_fault_status("status_600", 503) is None and error_fault_status("reset", 503) is None
    assert all(is_fault_name(name) for name in [*FAULTS, "overload", "status_400", "status_599"])
    assert not is_fault_name("status_399") and not is_fault_name("gremlins")


def test_timing_faults_keep_every_frame_and_its_role() -> None:
    dialect = OpenAIDialect()
    request = dialect.parse(_chat("[[gateproof tokens=6]]"), Incoming("/v1/chat/completions", {}, "", []))
    reply = dialect.render(
        plan_scenario(request, parse_directive("[[gateproof tokens=6]]"), MockConfig()), request, 0
    )
    stalled = FAULTS["stall"].apply(reply, FaultContext(dialect, after=2, delay=0.5))
    assert [f.data for f in stalled.frames] == [f.data for f in reply.frames]
    assert [round(f.at - g.at, 6) for f, g in zip(stalled.frames, reply.frames, strict=True)] == [0.0] * 3 + [
        0.5
    ] * (len(reply.frames) - 3)
    dripped = FAULTS["drip"].apply(reply, FaultContext(dialect, delay=0.2))
    assert b"".join(f.data for f in dripped.frames) == b"".join(f.data for f in reply.frames)
    whole = [f.role for f in dripped.frames if f.role is not FrameRole.PARTIAL]
    assert whole == [f.role for f in reply.frames]  # each frame's last piece keeps its role
    times = [f.at for f in dripped.frames]
    assert all(0 < b - a <= 0.05 + 1e-9 for a, b in itertools.pairwise(times))
    assert times[-1] >= 0.2 * len(reply.frames) - 1e-9
    cut = FAULTS["cut"].apply(reply, FaultContext(dialect, after=2))
    assert [f.role for f in cut.frames] == [FrameRole.OPEN, FrameRole.CONTENT, FrameRole.CONTENT]
    assert not cut.abort and not cut.reset
    reset = FAULTS["reset"].apply(reply, FaultContext(dialect))
    assert reset.reset and reset.frames == ()


def test_faults_rewrite_by_frame_role_only() -> None:
    dialect = OpenAIDialect()
    request = dialect.parse(_chat("[[gateproof tokens=6]]"), Incoming("/v1/chat/completions", {}, "", []))
    reply = dialect.render(
        plan_scenario(request, parse_directive("[[gateproof tokens=6]]"), MockConfig()), request, 0
    )
    context = FaultContext(dialect, after=2)
    cut = FAULTS["truncate"].apply(reply, context)
    assert [f.role for f in cut.frames] == [FrameRole.OPEN, FrameRole.CONTENT, FrameRole.CONTENT]
    assert cut.abort
    errored = FAULTS["mid_stream_error"].apply(reply, context)
    assert errored.frames[-1].role is FrameRole.ERROR
    assert errored.frames[-1].at == reply.frames[3].at  # the error comes when chunk 3 was due
    no_done = FAULTS["no_done"].apply(reply, context)
    assert FrameRole.TERMINAL not in {f.role for f in no_done.frames}
    assert len(no_done.frames) == len(reply.frames) - 1


def test_mid_stream_error(stream_events: StreamEvents, cid: str, journal: ReadJournal) -> None:
    response, events = stream_events(_chat(f"[[gateproof tokens=10 fault=mid_stream_error cid={cid}]]"))
    assert response.status_code == 200
    assert len(_content(events)) == 5  # half of them by default
    last = json.loads(events[-1][1])
    assert set(last["error"]) == {"message", "type", "param", "code"}
    assert last["error"]["type"] == "server_error"
    assert all(payload != "[DONE]" for _, payload in events)
    assert journal(cid)[0]["outcome"] == "complete"


def test_no_done(stream_events: StreamEvents) -> None:
    response, events = stream_events(_chat("[[gateproof tokens=4 fault=no_done]]"))
    assert response.status_code == 200
    assert len(_content(events)) == 4
    assert json.loads(events[-1][1])["choices"][0]["finish_reason"] == "stop"
    assert all(payload != "[DONE]" for _, payload in events)


def test_truncate_drops_the_connection_mid_stream(
    mock_server: LocalServer, http: httpx.Client, cid: str, journal: ReadJournal
) -> None:
    received: list[str] = []
    body = _chat(f"[[gateproof tokens=10 fault=truncate fault_after=3 itl_ms=5 cid={cid}]]")
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            received.append(line)
    assert sum(1 for line in received if '"content":"' in line and '"content":""' not in line) == 3
    entry = journal(cid)[0]
    assert entry["outcome"] == "aborted" and entry["chunks_sent"] == 3
    # a deliberate drop is not an error worth a traceback in the server log
    assert "ConnectionDropped" not in mock_server.log_tail(500)


def test_truncate_non_streamed_body(http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/chat/completions", json=_chat("[[gateproof fault=truncate]]", stream=False))


def test_malformed_chunk(stream_events: StreamEvents) -> None:
    response, events = stream_events(_chat("[[gateproof tokens=6 fault=malformed_chunk fault_after=2]]"))
    assert response.status_code == 200
    broken = []
    for index, (_, payload) in enumerate(events):
        if payload == "[DONE]":
            continue
        try:
            json.loads(payload)
        except ValueError:
            broken.append(index)
    assert broken == [3]  # role chunk, two content chunks, then the broken one
    assert len(_content(events)) == 6
    assert events[-1][1] == "[DONE]"


def test_malformed_non_streamed_body(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions", json=_chat("[[gateproof fault=malformed_chunk]]", stream=False)
    )
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_slow_headers(http: httpx.Client) -> None:
    start = time.perf_counter()
    with http.stream(
        "POST", "/v1/chat/completions", json=_chat("[[gateproof fault=slow_headers fault_ms=400]]")
    ) as r:
        headers_at = time.perf_counter() - start
        assert r.status_code == 200
        r.read()
    assert 0.4 <= headers_at < 0.4 + 0.25


def test_stream_only_fault_on_a_non_streamed_request_is_a_400(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=_chat("[[gateproof fault=no_done]]", stream=False))
    assert response.status_code == 400
    assert "stream" in response.json()["error"]["message"]


def test_unknown_fault_lists_the_known_ones(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=_chat("[[gateproof fault=gremlins]]"))
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert all(name in message for name in FAULTS)
