"""The bad-day faults in every dialect's own form, over real HTTP: reset, cut, stall, drip,
and the errors before the stream (429, 5xx, overload, the provider's 401/403) as each SDK sees them."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from gateproof.cli.launch import LocalServer
from gateproof.mock_providers._faults import DRIP_MAX_GAP
from gateproof.mock_providers.dialects.anthropic import PREFIX
from gateproof.mock_providers.dialects.gemini import GEMINI_PREFIX

from ._chaos_wire import DIALECTS, data_payloads, event_names, settled, wire_request
from .conftest import MOCK_KEY

ReadJournal = Callable[[str], list[dict[str, Any]]]


def _timed_lines(
    http: httpx.Client, dialect: str, text: str
) -> tuple[httpx.Response, list[tuple[float, str]]]:
    request = wire_request(dialect, text, stream=True)
    lines: list[tuple[float, str]] = []
    start = time.perf_counter()
    with http.stream("POST", request.path, headers=request.headers, json=request.body) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                lines.append((time.perf_counter() - start, line[len("data: ") :]))
    return response, lines


def _content_times(dialect: str, lines: list[tuple[float, str]]) -> list[float]:
    """Arrival times of the events that carry answer text."""
    times = []
    for at, payload in lines:
        if payload == "[DONE]":
            continue
        event = json.loads(payload)
        if dialect == "openai":
            if event.get("choices") and event["choices"][0]["delta"].get("content"):
                times.append(at)
        elif dialect == "anthropic":
            if event["type"] == "content_block_delta":
                times.append(at)
        elif any(part.get("text") for part in event["candidates"][0]["content"].get("parts", [])):
            times.append(at)
    return times


# -- reset ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stream", [True, False])
def test_reset_sends_no_response_at_all(
    mock_server: LocalServer, http: httpx.Client, dialect: str, stream: bool, cid: str, journal: ReadJournal
) -> None:
    request = wire_request(dialect, f"[[gateproof fault=reset cid={cid}]]", stream=stream)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)) as raised:
        http.post(request.path, headers=request.headers, json=request.body)
    assert "Internal Server Error" not in str(raised.value)
    entry = settled(journal, cid)[0]
    assert (entry["status"], entry["outcome"], entry["fault"], entry["attempt"]) == (
        None,
        "aborted",
        "reset",
        1,
    )
    log = mock_server.log_tail(400)
    assert "Exception in ASGI application" not in log and "without starting response" not in log


def test_reset_is_a_connection_error_for_the_openai_sdk(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[[gateproof fault=reset]]"}]
        )


def test_reset_leaves_the_server_answering(http: httpx.Client) -> None:
    request = wire_request("openai", "[[gateproof fault=reset]]", stream=False)
    for _ in range(3):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.post(request.path, headers=request.headers, json=request.body)
    ok = wire_request("openai", "[[gateproof tokens=2]]", stream=False)
    assert http.post(ok.path, headers=ok.headers, json=ok.body).status_code == 200


# -- cut --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cut_ends_the_body_cleanly_without_finish_or_terminator(
    http: httpx.Client, dialect: str, cid: str, journal: ReadJournal
) -> None:
    request = wire_request(dialect, f"[[gateproof fault=cut fault_after=3 tokens=8 cid={cid}]]", stream=True)
    response = http.post(request.path, headers=request.headers, json=request.body)  # no transport error
    assert response.status_code == 200
    payloads = data_payloads(response.content)
    assert "[DONE]" not in payloads
    events = [json.loads(p) for p in payloads]
    assert len(_content_times(dialect, [(0.0, p) for p in payloads])) == 3
    if dialect == "openai":
        assert all(not e["choices"] or e["choices"][0]["finish_reason"] is None for e in events)
    elif dialect == "anthropic":
        names = event_names(response.content)
        assert names[0] == "message_start" and names[-1] == "content_block_delta"
        assert not {"content_block_stop", "message_delta", "message_stop"} & set(names)
    else:
        assert all("finishReason" not in e["candidates"][0] for e in events)
    entry = settled(journal, cid)[0]
    assert (entry["outcome"], entry["fault"], entry["chunks_sent"]) == ("complete", "cut", 3)


def test_cut_differs_from_no_done(http: httpx.Client) -> None:
    whole = wire_request("openai", "[[gateproof fault=no_done tokens=8]]", stream=True)
    cut = wire_request("openai", "[[gateproof fault=cut fault_after=3 tokens=8]]", stream=True)
    finished = data_payloads(http.post(whole.path, headers=whole.headers, json=whole.body).content)
    stopped = data_payloads(http.post(cut.path, headers=cut.headers, json=cut.body).content)
    assert json.loads(finished[-1])["choices"][0]["finish_reason"] == "stop"
    assert len(stopped) < len(finished)


def test_cut_on_a_non_streamed_request_is_a_400(http: httpx.Client) -> None:
    request = wire_request("openai", "[[gateproof fault=cut]]", stream=False)
    response = http.post(request.path, headers=request.headers, json=request.body)
    assert response.status_code == 400 and "stream" in response.json()["error"]["message"]


# -- stall ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_stall_pauses_after_n_chunks_then_completes(
    http: httpx.Client, dialect: str, cid: str, journal: ReadJournal
) -> None:
    response, lines = _timed_lines(
        http, dialect, f"[[gateproof fault=stall fault_after=2 fault_ms=400 tokens=5 cid={cid}]]"
    )
    assert response.status_code == 200
    times = _content_times(dialect, lines)
    assert len(times) == 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # the pause comes between content chunks 2 and 3: chunk 3 cannot arrive before 400 ms from the
    # request (a client that reads chunk 2 late only shortens the gap it sees, never this)
    assert times[1] < 0.3 <= 0.4 <= times[2]
    assert max(gaps) == gaps[1]  # and only there
    if dialect == "openai":
        assert lines[-1][1] == "[DONE]"
    entry = settled(journal, cid)[0]
    assert (entry["outcome"], entry["fault"], entry["chunks_sent"]) == ("complete", "stall", 5)


# -- drip -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_drip_sends_every_frame_in_small_late_pieces_and_completes(
    http: httpx.Client, dialect: str, cid: str, journal: ReadJournal
) -> None:
    request = wire_request(dialect, f"[[gateproof fault=drip fault_ms=300 tokens=2 cid={cid}]]", stream=True)
    arrivals: list[float] = []
    body = b""
    start = time.perf_counter()
    with http.stream("POST", request.path, headers=request.headers, json=request.body) as response:
        for piece in response.iter_raw():
            arrivals.append(time.perf_counter() - start)
            body += piece
    assert response.status_code == 200
    frames = body.count(b"\n\n")
    assert len(arrivals) >= 2 * frames  # each frame came in several writes
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # slow (each frame took about fault_ms), but never silent for long
    assert arrivals[-1] >= 0.9 * 0.300 * frames
    assert max(gaps) < DRIP_MAX_GAP + 0.15
    payloads = data_payloads(body)
    assert all(p == "[DONE]" or json.loads(p) for p in payloads)  # nothing broken
    if dialect == "openai":
        assert payloads[-1] == "[DONE]"
    elif dialect == "anthropic":
        assert event_names(body)[-1] == "message_stop"
    else:
        assert json.loads(payloads[-1])["candidates"][0]["finishReason"] == "STOP"
    entry = settled(journal, cid)[0]
    assert (entry["outcome"], entry["fault"], entry["chunks_sent"]) == ("complete", "drip", 2)


# -- errors before the stream, as each official SDK sees them -------------------------------------


@pytest.fixture
def claude(mock_server: LocalServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=mock_server.url + PREFIX, api_key=MOCK_KEY, max_retries=0, timeout=10.0
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def gemini(mock_server: LocalServer) -> Iterator[genai.Client]:
    transport = httpx.Client(timeout=10.0, trust_env=False)
    options = genai_types.HttpOptions(
        base_url=mock_server.url + GEMINI_PREFIX,
        timeout=10_000,
        retry_options=genai_types.HttpRetryOptions(attempts=1),
        httpx_client=transport,
    )
    try:
        yield genai.Client(api_key=MOCK_KEY, http_options=options)
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("fault", "status", "kind", "error_type", "code"),
    [
        ("status_401", 401, openai.AuthenticationError, "invalid_request_error", "invalid_api_key"),
        ("status_403", 403, openai.PermissionDeniedError, "invalid_request_error", "permission_denied"),
        ("status_429", 429, openai.RateLimitError, "requests", "rate_limit_exceeded"),
        ("status_500", 500, openai.InternalServerError, "server_error", None),
        ("status_502", 502, openai.InternalServerError, "server_error", "bad_gateway"),
        ("overload", 503, openai.InternalServerError, "server_error", "service_unavailable"),
    ],
)
def test_openai_errors(
    sdk: openai.OpenAI,
    cid: str,
    journal: ReadJournal,
    fault: str,
    status: int,
    kind: type[openai.APIStatusError],
    error_type: str,
    code: str | None,
) -> None:
    with pytest.raises(kind) as raised:
        sdk.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": f"[[gateproof fault={fault} cid={cid}]]"}],
            stream=True,
        )
    assert raised.value.status_code == status
    error = raised.value.response.json()["error"]
    assert list(error) == ["message", "type", "param", "code"]
    assert (error["type"], error["code"]) == (error_type, code)
    assert (raised.value.response.headers.get("retry-after") == "1") is (status in (429, 503))
    assert journal(cid)[0]["fault"] == f"status_{status}"


@pytest.mark.parametrize(
    ("fault", "status", "kind", "error_type"),
    [
        ("status_401", 401, anthropic.AuthenticationError, "authentication_error"),
        ("status_403", 403, anthropic.PermissionDeniedError, "permission_error"),
        ("status_429", 429, anthropic.RateLimitError, "rate_limit_error"),
        ("status_500", 500, anthropic.InternalServerError, "api_error"),
        ("overload", 529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_anthropic_errors(
    claude: anthropic.Anthropic,
    cid: str,
    journal: ReadJournal,
    fault: str,
    status: int,
    kind: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    messages: Any = [{"role": "user", "content": f"[[gateproof fault={fault} cid={cid}]]"}]
    with (
        pytest.raises(kind) as raised,
        claude.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=messages) as stream,
    ):
        stream.get_final_message()
    assert raised.value.status_code == status
    body = raised.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert body["request_id"] == raised.value.response.headers["request-id"]
    assert (raised.value.response.headers.get("retry-after") == "1") is (status == 429)
    assert journal(cid)[0]["fault"] == f"status_{status}"


@pytest.mark.parametrize(
    ("fault", "status", "name", "kind"),
    [
        ("status_401", 401, "UNAUTHENTICATED", genai_errors.ClientError),
        ("status_403", 403, "PERMISSION_DENIED", genai_errors.ClientError),
        ("status_429", 429, "RESOURCE_EXHAUSTED", genai_errors.ClientError),
        ("status_500", 500, "INTERNAL", genai_errors.ServerError),
        ("overload", 503, "UNAVAILABLE", genai_errors.ServerError),
    ],
)
def test_gemini_errors(
    gemini: genai.Client,
    cid: str,
    journal: ReadJournal,
    fault: str,
    status: int,
    name: str,
    kind: type[genai_errors.APIError],
) -> None:
    with pytest.raises(kind) as raised:
        for _ in gemini.models.generate_content_stream(
            model="gemini-2.5-flash", contents=f"[[gateproof fault={fault} cid={cid}]]"
        ):
            pass
    assert raised.value.code == status and raised.value.status == name
    delays = [d.get("retryDelay") for d in (raised.value.details or {}).get("error", {}).get("details", [])]
    assert ("1s" in delays) is (status in (429, 503))  # Google's delay is in RetryInfo, not a header
    assert journal(cid)[0]["fault"] == f"status_{status}"
