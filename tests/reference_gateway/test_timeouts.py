"""Timeouts (D46), what happens after the first byte (D45) and a client that leaves, on the stack.

The stack's gateway runs with ``first_byte_timeout_s=2`` and ``stream_idle_timeout_s=2``
(``STACK_LIMITS`` of the launcher), so a provider that stalls 3 s is cut off in 2.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from gateproof.cli import main
from gateproof.cli.launch import (
    STACK_FIRST_BYTE_TIMEOUT_S,
    STACK_STREAM_IDLE_TIMEOUT_S,
    LocalServer,
    LocalStack,
)
from gateproof.openapi import FALLBACK_HEADER
from gateproof.reference_gateway._config import ConfigError, load_config

from .conftest import KEYS, journal, new_cid, sse_events, user

PLAIN = "openai/gpt-4o"
WITH_FALLBACK = "openai/gpt-4.1"
#: a wait one second longer than the stack's timeouts, as the suite's rows use
STALL_MS = int(max(STACK_FIRST_BYTE_TIMEOUT_S, STACK_STREAM_IDLE_TIMEOUT_S) * 1000) + 1000


def _post(
    raw: httpx.Client, auth: dict[str, str], model: str, stream: bool, **directive: Any
) -> tuple[str, httpx.Response, float]:
    cid = new_cid("to")
    body: dict[str, Any] = {
        "model": model,
        "messages": user("Hello.", cid=cid, **directive),
        "stream": stream,
    }
    began = time.monotonic()
    response = raw.post("/v1/chat/completions", json=body, headers=auth)
    return cid, response, time.monotonic() - began


def _settled(stack: LocalStack, cid: str, count: int = 1) -> list[dict[str, Any]]:
    """The cid's journal once its ``count`` entries have ended (the mock notes a closed client late)."""
    deadline = time.monotonic() + 8
    entries = journal(stack.mock.url, cid)
    while time.monotonic() < deadline and (
        len(entries) < count or any(entry["outcome"] == "pending" for entry in entries)
    ):
        time.sleep(0.05)
        entries = journal(stack.mock.url, cid)
    return entries


def _error_event_and_no_done(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200
    events = sse_events(response.text)
    assert "[DONE]" not in events, "an upstream failure must never end in a clean [DONE]"
    last = json.loads(events[-1])
    assert set(last) == {"error"}, last
    assert sum("error" in json.loads(event) for event in events) == 1
    return dict(last["error"])


# -- before the first byte: D46 first_byte_timeout_s -----------------------------------------------


@pytest.mark.timing
def test_stream_headers_that_never_come_are_504_after_the_first_byte_timeout(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid, response, took = _post(raw, auth, PLAIN, True, fault="slow_headers", fault_ms=STALL_MS)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "provider_timeout"
    assert STACK_FIRST_BYTE_TIMEOUT_S - 0.2 <= took < STALL_MS / 1000, took
    (entry,) = _settled(stack, cid)
    assert entry["outcome"] == "disconnected", "the gateway hung up on the slow provider"


def test_a_non_streamed_answer_may_take_longer_than_the_first_byte_timeout(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    """A provider sends a non-streamed answer's headers with the answer: only provider_timeout_s bounds it."""
    tokens, itl_ms = 8, int(STACK_FIRST_BYTE_TIMEOUT_S * 1000) // 6
    cid, response, took = _post(raw, auth, PLAIN, False, tokens=tokens, itl_ms=itl_ms, ttft_ms=itl_ms)
    assert response.status_code == 200, response.text
    assert took > STACK_FIRST_BYTE_TIMEOUT_S, "the answer really took longer than the first-byte timeout"
    (entry,) = _settled(stack, cid)
    assert entry["outcome"] == "complete"


@pytest.mark.timing
def test_a_slow_primary_falls_back_at_once(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid, response, took = _post(
        raw, auth, WITH_FALLBACK, True, fault="slow_headers", fault_ms=STALL_MS, fail_first=1
    )
    assert response.status_code == 200 and sse_events(response.text)[-1] == "[DONE]"
    assert response.headers[FALLBACK_HEADER] == "true"
    assert [entry["path"] for entry in _settled(stack, cid, 2)] == [
        "/v1/chat/completions",
        "/anthropic/v1/messages",
    ], "a timeout is not retried on the same route"
    assert took < STALL_MS / 1000


# -- after the first byte: D45 -----------------------------------------------------------------------


@pytest.mark.parametrize("model", [PLAIN, WITH_FALLBACK])
@pytest.mark.parametrize("fault", ["mid_stream_error", "no_done", "cut", "truncate", "malformed_chunk"])
def test_a_stream_that_fails_after_it_started_ends_with_one_error_event(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], fault: str, model: str
) -> None:
    cid, response, _ = _post(raw, auth, model, True, fault=fault, tokens=8, fault_after=2)
    error = _error_event_and_no_done(response)
    assert error["code"] == "provider_error"
    entries = _settled(stack, cid)
    assert len(entries) == 1, "no retry and no fallback once the stream started"
    assert FALLBACK_HEADER.lower() not in response.headers


@pytest.mark.timing
def test_a_stream_that_stalls_past_the_idle_timeout_ends_with_a_timeout_event(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid, response, took = _post(
        raw, auth, PLAIN, True, fault="stall", fault_ms=STALL_MS, tokens=6, fault_after=2
    )
    error = _error_event_and_no_done(response)
    assert error["code"] == "provider_timeout"
    assert took < STACK_STREAM_IDLE_TIMEOUT_S + 1.0
    (entry,) = _settled(stack, cid)
    assert entry["outcome"] == "disconnected", "the stalled upstream stream was closed"


def test_the_idle_timeout_is_its_own_not_the_first_byte_ones(short_timeout_gateway: LocalServer) -> None:
    """A pause longer than the idle timeout (0.5 s) but shorter than the first-byte one (1.5 s)."""
    body = {
        "model": PLAIN,
        "messages": user("x", fault="stall", fault_ms=1000, tokens=6, fault_after=2),
        "stream": True,
    }
    began = time.monotonic()
    response = httpx.post(
        short_timeout_gateway.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEYS['default']}"},
        timeout=10,
        trust_env=False,
    )
    assert _error_event_and_no_done(response)["code"] == "provider_timeout"
    assert time.monotonic() - began < 1.0


def test_a_pause_under_the_idle_timeout_is_waited_for(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    _, response, _ = _post(raw, auth, PLAIN, True, fault="stall", fault_ms=800, tokens=6, fault_after=2)
    assert sse_events(response.text)[-1] == "[DONE]"


def test_a_slow_drip_is_a_whole_answer(stack: LocalStack, raw: httpx.Client, auth: dict[str, str]) -> None:
    cid, response, _ = _post(raw, auth, PLAIN, True, fault="drip", fault_ms=300, tokens=5)
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    content = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in map(json.loads, events[:-1]) if c["choices"]
    )
    (entry,) = _settled(stack, cid)
    assert entry["outcome"] == "complete" and content


# -- a client that leaves: the upstream request is cancelled at once (D46) ---------------------------


def test_a_client_that_leaves_mid_stream_cancels_the_upstream_stream(
    stack: LocalStack, auth: dict[str, str]
) -> None:
    cid = new_cid("to")
    body = {
        "model": PLAIN,
        "messages": user("Go.", cid=cid, fault="stall", fault_ms=1500, fault_after=1),
        "stream": True,
    }
    with (
        httpx.Client(base_url=stack.gateway.url, timeout=10, trust_env=False) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers=auth) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                break  # the first event, then hang up during the stall
    left = time.monotonic()
    (entry,) = _settled(stack, cid)
    assert entry["outcome"] == "disconnected", entry
    assert entry["finished_at"] is not None
    assert time.monotonic() - left < 3


def test_a_client_that_leaves_before_the_headers_cancels_the_upstream_request(
    stack: LocalStack, auth: dict[str, str]
) -> None:
    cid = new_cid("to")
    body = {
        "model": PLAIN,
        "messages": user("Go.", cid=cid, fault="slow_headers", fault_ms=1500),
        "stream": True,
    }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            stack.gateway.url + "/v1/chat/completions", json=body, headers=auth, timeout=0.4, trust_env=False
        )
    (entry,) = _settled(stack, cid)
    assert entry["outcome"] == "disconnected", entry


# -- the limits themselves -----------------------------------------------------------------------------


def test_limits_can_be_replaced_and_are_checked_like_the_configs() -> None:
    config = load_config().with_limits({"first_byte_timeout_s": "2", "stream_idle_timeout_s": "0.5"})
    assert config.limits.first_byte_timeout_s == 2.0
    assert config.limits.stream_idle_timeout_s == 0.5
    assert load_config().limits.first_byte_timeout_s == 60.0
    assert load_config().limits.stream_idle_timeout_s == 30.0
    with pytest.raises(ConfigError, match="unknown limit 'idle'"):
        load_config().with_limits({"idle": "2"})
    with pytest.raises(ConfigError, match="stream_idle_timeout_s: must be positive"):
        load_config().with_limits({"stream_idle_timeout_s": "0"})
    with pytest.raises(ConfigError, match="must be a number"):
        load_config().with_limits({"first_byte_timeout_s": "soon"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--limit", "first_byte_timeout_s"], "expected NAME=VALUE"),
        (["--limit", "nope=1"], "unknown limit 'nope'"),
        (["--limit", "max_messages=0"], "max_messages: must be at least 1"),
    ],
)
def test_a_bad_limit_option_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gateway", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateproof gateway: ") and message in err
