"""Retry and fallback before the first byte (D44), judged on the stack through the mock's journal.

The stack's config is the packaged default: ``openai/gpt-4o`` has no fallbacks and
``openai/gpt-4.1`` falls back to ``anthropic/claude-haiku-4-5`` (the mock's ``/anthropic``
route). A fault the mock serves on the first N requests of a cid (``fail_first=N``) is how a
transient failure is made; without it the failure persists on every attempt, fallbacks included
(the directive travels with the conversation).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from gateproof.cli.launch import LocalStack
from gateproof.openapi import FALLBACK_HEADER, PROVIDER_HEADER

from .conftest import journal, new_cid, sse_events, user

PLAIN = "openai/gpt-4o"
WITH_FALLBACK = "openai/gpt-4.1"
FALLBACK = "anthropic/claude-haiku-4-5"
OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/anthropic/v1/messages"


def _ask(
    raw: httpx.Client, auth: dict[str, str], model: str, stream: bool, **directive: Any
) -> tuple[str, httpx.Response]:
    cid = new_cid("rf")
    body: dict[str, Any] = {"model": model, "messages": user("Hello.", cid=cid, **directive)}
    if stream:
        body["stream"] = True
    return cid, raw.post("/v1/chat/completions", json=body, headers=auth)


def _journal(stack: LocalStack, cid: str) -> list[dict[str, Any]]:
    return journal(stack.mock.url, cid)


def _upstream_paths(stack: LocalStack, cid: str) -> list[str]:
    return [entry["path"] for entry in _journal(stack, cid)]


def _one_clean_answer(response: httpx.Response, stream: bool) -> str:
    """The answer's text, after checking it is one whole answer (one role, one [DONE], no error)."""
    assert response.status_code == 200, response.text
    if not stream:
        body = response.json()
        assert "error" not in body
        return str(body["choices"][0]["message"]["content"])
    events = sse_events(response.text)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1, events[-3:]
    chunks = [json.loads(event) for event in events[:-1]]
    assert not any("error" in chunk for chunk in chunks)
    roles = [c["choices"][0]["delta"].get("role") for c in chunks if c["choices"]]
    assert [role for role in roles if role] == ["assistant"], "the retried stream is one answer"
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# -- retry on the same route -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("failure", [{"status": 503}, {"status": 429, "retry_after": 1}, {"fault": "reset"}])
def test_a_transient_failure_is_retried_once_and_answered(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], stream: bool, failure: dict[str, Any]
) -> None:
    began = time.monotonic()
    cid, response = _ask(raw, auth, PLAIN, stream, fail_first=1, **failure)
    assert _one_clean_answer(response, stream)
    entries = _journal(stack, cid)
    assert [entry["attempt"] for entry in entries] == [1, 2]
    assert entries[0]["fault"] is not None and entries[1]["fault"] is None
    assert response.headers[PROVIDER_HEADER] == "openai"
    assert FALLBACK_HEADER.lower() not in response.headers, "the primary answered: no fallback header"
    if "retry_after" in failure:
        # Retry-After: 1 is within the 2 s bound: it was waited before the retry
        assert entries[1]["received_at"] - entries[0]["received_at"] >= 0.9
        assert time.monotonic() - began >= 0.9


@pytest.mark.parametrize("stream", [False, True])
def test_a_persistent_429_is_passed_on_with_retry_after_after_two_attempts(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], stream: bool
) -> None:
    cid, response = _ask(raw, auth, PLAIN, stream, status=429, retry_after=1)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "provider_rate_limited"
    assert response.headers["retry-after"] == "1"
    assert len(_journal(stack, cid)) == 2


def test_a_retry_after_over_the_bound_ends_the_route_at_once(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    began = time.monotonic()
    cid, response = _ask(raw, auth, PLAIN, False, status=429, retry_after=7)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert len(_journal(stack, cid)) == 1, "a client told to wait 7 s is told, not held"
    assert time.monotonic() - began < 2


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_persistent_server_error_is_502_after_two_attempts(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], stream: bool, status: int
) -> None:
    cid, response = _ask(raw, auth, PLAIN, stream, status=status, retry_after=0)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_error"
    assert [entry["status"] for entry in _journal(stack, cid)] == [status, status]


def test_a_persistent_reset_is_502_after_two_attempts(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid, response = _ask(raw, auth, PLAIN, True, fault="reset")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_error"
    assert len(_journal(stack, cid)) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_the_gateways_own_credential_refused_is_not_retried(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], status: int
) -> None:
    cid, response = _ask(raw, auth, PLAIN, False, status=status)
    assert response.status_code == 502, "the client's key is fine: a provider credential problem is a 5xx"
    assert len(_journal(stack, cid)) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_the_provider_rejects_is_terminal(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], stream: bool
) -> None:
    cid, response = _ask(raw, auth, WITH_FALLBACK, stream, status=400)
    assert response.status_code == 400
    assert _upstream_paths(stack, cid) == [OPENAI_PATH], "another route would refuse the same request"


def test_a_non_streamed_body_cut_short_is_retried(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid, response = _ask(raw, auth, PLAIN, False, fault="truncate", fail_first=1)
    assert _one_clean_answer(response, False)
    assert len(_journal(stack, cid)) == 2


def test_a_non_streamed_body_that_is_not_json_is_502_without_a_retry(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid, response = _ask(raw, auth, PLAIN, False, fault="malformed_chunk")
    assert response.status_code == 502
    assert len(_journal(stack, cid)) == 1, "an unusable answer falls back at once (none configured)"


# -- fallback -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallback_answers_when_the_primary_keeps_failing(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], stream: bool
) -> None:
    cid, response = _ask(raw, auth, WITH_FALLBACK, stream, status=503, retry_after=0, fail_first=2)
    _one_clean_answer(response, stream)
    assert _upstream_paths(stack, cid) == [OPENAI_PATH, OPENAI_PATH, ANTHROPIC_PATH]
    assert response.headers[FALLBACK_HEADER] == "true"
    assert response.headers[PROVIDER_HEADER] == "anthropic"
    # the answer still names the model the client asked for (D20: the header says who answered)
    if stream:
        first = json.loads(sse_events(response.text)[0])
        assert first["model"] == WITH_FALLBACK
    else:
        assert response.json()["model"] == WITH_FALLBACK


@pytest.mark.parametrize("failure", [{"status": 401}, {"status": 504}, {"fault": "malformed_chunk"}])
def test_a_route_that_cannot_answer_falls_back_at_once(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str], failure: dict[str, Any]
) -> None:
    cid, response = _ask(raw, auth, WITH_FALLBACK, False, fail_first=1, **failure)
    _one_clean_answer(response, False)
    assert _upstream_paths(stack, cid) == [OPENAI_PATH, ANTHROPIC_PATH]
    assert response.headers[FALLBACK_HEADER] == "true"


def test_when_every_route_fails_the_last_failure_is_answered(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid, response = _ask(raw, auth, WITH_FALLBACK, False, status=429, retry_after=1)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert FALLBACK_HEADER.lower() not in response.headers, "no fallback answered"
    assert response.headers[PROVIDER_HEADER] == "anthropic", "the last attempt's provider"
    paths = _upstream_paths(stack, cid)
    assert paths == [OPENAI_PATH, OPENAI_PATH, ANTHROPIC_PATH]
    assert len(paths) <= 5


def test_the_sdk_sees_a_fallback_answer_as_a_plain_answer(stack: LocalStack, sdk: openai.OpenAI) -> None:
    cid = new_cid("rf")
    answer = sdk.chat.completions.with_raw_response.create(
        model=WITH_FALLBACK, messages=user("Hi.", cid=cid, status=502, fail_first=2)
    )
    assert answer.headers[FALLBACK_HEADER] == "true"
    completion = answer.parse()
    assert completion.model == WITH_FALLBACK and completion.choices[0].message.content


def test_the_request_log_counts_every_attempt(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    tag = new_cid("attempts")
    cid = new_cid("rf")
    body = {
        "model": WITH_FALLBACK,
        "messages": user("Hi.", cid=cid, status=503, retry_after=0, fail_first=2),
        "tags": [tag],
    }
    assert raw.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
    lines = [json.loads(line) for line in stack.request_log.read_text().splitlines() if tag in line]
    (line,) = lines
    assert line["attempts"] == 3
    assert line["provider"] == "anthropic"
    assert line["model"] == WITH_FALLBACK


def test_debug_names_the_route_that_answered_and_counts_the_attempts(
    raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid = new_cid("rf")
    body = {
        "model": WITH_FALLBACK,
        "messages": user("Hi.", cid=cid, status=503, retry_after=0, fail_first=2),
        "enable_debug": True,
    }
    debug = raw.post("/v1/chat/completions", json=body, headers=auth).json()["debug"]
    assert debug["provider"] == "anthropic" and debug["upstream_model"] == "claude-haiku-4-5"
    assert debug["upstream_attempts"] == 3
    assert debug["upstream_status"] == 200


def test_edge_tool_rounds_each_get_the_retry_and_fallback_policy(
    stack: LocalStack, raw: httpx.Client, auth: dict[str, str]
) -> None:
    cid = new_cid("rf")
    # a reset, not a status: the mock answers a script round that is due before a status= error
    body = {
        "model": WITH_FALLBACK,
        "messages": user("Time?", cid=cid, script="edgee_current_time", fault="reset", fail_first=2),
        "edgee_tool_ids": ["edgee_current_time"],
    }
    response = raw.post("/v1/chat/completions", json=body, headers=auth)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["edgee_tools_executed"] == [{"name": "edgee_current_time", "success": True}]
    assert answer["model"] == WITH_FALLBACK
    # round 1: the primary twice, then the fallback asks for the tool; round 2: the primary answers
    assert _upstream_paths(stack, cid) == [OPENAI_PATH, OPENAI_PATH, ANTHROPIC_PATH, OPENAI_PATH]
    assert response.headers[FALLBACK_HEADER] == "true", "a fallback answered one of its calls"
    assert response.headers[PROVIDER_HEADER] == "openai", "the last call's provider"
