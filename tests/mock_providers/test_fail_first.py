"""``fail_first=N`` and the journal's ``attempt``/``fault``: a transient failure a retry absorbs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateproof.cli.launch import LocalServer
from gateproof.mock_providers import DirectiveError, parse_directive
from gateproof.mock_providers._attempts import AttemptCounter
from gateproof.mock_providers.dialects.anthropic import PREFIX

from ._chaos_wire import DIALECTS, data_payloads, settled, wire_request
from .conftest import MOCK_KEY

ReadJournal = Callable[[str], list[dict[str, Any]]]


def _ask(sdk: openai.OpenAI, text: str) -> str:
    answer = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
    return answer.choices[0].message.content or ""


def test_a_transient_429_is_absorbed_by_the_sdks_own_retry(
    mock_server: LocalServer, cid: str, journal: ReadJournal
) -> None:
    retrying = openai.OpenAI(base_url=mock_server.url + "/v1", api_key=MOCK_KEY, max_retries=2, timeout=10.0)
    try:
        text = _ask(retrying, f"hi [[gateproof status=429 retry_after=0 fail_first=1 cid={cid}]]")
    finally:
        retrying.close()
    assert text  # the second attempt is a plain text answer
    entries = journal(cid)
    assert [(e["attempt"], e["status"], e["fault"], e["scenario"]) for e in entries] == [
        (1, 429, "status_429", "error"),
        (2, 200, None, "text"),
    ]


def test_fail_first_counts_per_cid(sdk: openai.OpenAI, cid: str, journal: ReadJournal) -> None:
    directive = f"[[gateproof fault=status_503 fail_first=2 tokens=3 cid={cid}]]"
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as raised:
            _ask(sdk, directive)
        assert raised.value.status_code == 503
        assert raised.value.response.headers["retry-after"] == "1"
    assert len(_ask(sdk, directive).split()) >= 1
    assert _ask(sdk, directive)
    entries = journal(cid)
    assert [e["attempt"] for e in entries] == [1, 2, 3, 4]
    assert [e["fault"] for e in entries] == ["status_503", "status_503", None, None]
    assert [e["status"] for e in entries] == [503, 503, 200, 200]
    # another cid starts from 1
    other = cid + "-b"
    with pytest.raises(openai.InternalServerError):
        _ask(sdk, directive.replace(cid, other))
    assert journal(other)[0]["attempt"] == 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_stream_fault_on_the_first_attempt_only(
    http: httpx.Client, dialect: str, cid: str, journal: ReadJournal
) -> None:
    request = wire_request(
        dialect, f"[[gateproof fault=mid_stream_error fail_first=1 tokens=6 cid={cid}]]", stream=True
    )
    first = http.post(request.path, headers=request.headers, json=request.body)
    second = http.post(request.path, headers=request.headers, json=request.body)
    assert first.status_code == second.status_code == 200
    assert second.headers["content-type"].startswith("text/event-stream")

    def has_error(raw: bytes) -> bool:
        return any("error" in json.loads(p) for p in data_payloads(raw) if p != "[DONE]")

    assert has_error(first.content) and not has_error(second.content)
    entries = settled(journal, cid, 2)
    assert [(e["attempt"], e["fault"], e["outcome"]) for e in entries] == [
        (1, "mid_stream_error", "complete"),
        (2, None, "complete"),
    ]
    assert entries[1]["chunks_sent"] == 6


def test_overload_on_the_first_attempt_is_anthropics_529(
    mock_server: LocalServer, cid: str, journal: ReadJournal
) -> None:
    claude = anthropic.Anthropic(
        base_url=mock_server.url + PREFIX, api_key=MOCK_KEY, max_retries=0, timeout=10.0
    )
    messages: Any = [{"role": "user", "content": f"[[gateproof fault=overload fail_first=1 cid={cid}]]"}]
    try:
        with pytest.raises(anthropic.OverloadedError) as raised:
            claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=messages)
        assert raised.value.status_code == 529
        answer = claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=messages)
    finally:
        claude.close()
    assert answer.stop_reason == "end_turn"
    assert [e["fault"] for e in journal(cid)] == ["status_529", None]


def test_a_request_without_cid_has_no_attempt(http: httpx.Client) -> None:
    marker = "no-cid-" + MOCK_KEY[-8:]
    request = wire_request("openai", f"{marker} [[gateproof tokens=2]]", stream=False)
    assert http.post(request.path, headers=request.headers, json=request.body).status_code == 200
    entries = http.get("/_gateproof/journal", params={"limit": 50}).json()["entries"]
    mine = [e for e in entries if marker in json.dumps(e["body"])]
    assert mine and mine[-1]["attempt"] is None and mine[-1]["cid"] is None and mine[-1]["fault"] is None


def test_the_header_cid_is_counted_too(http: httpx.Client, cid: str, journal: ReadJournal) -> None:
    request = wire_request("openai", "[[gateproof status=502 fail_first=1]]", stream=False)
    headers = {**request.headers, "X-Gateproof-Correlation-Id": cid}
    statuses = [http.post(request.path, headers=headers, json=request.body).status_code for _ in range(2)]
    assert statuses == [502, 200]
    assert [e["attempt"] for e in journal(cid)] == [1, 2]


@pytest.mark.parametrize(
    ("directive", "needle"),
    [
        ("[[gateproof status=429 fail_first=1]]", "fail_first needs a cid"),
        ("[[gateproof tokens=3 fail_first=1 cid=x-ff]]", "fail_first needs a fault="),
        ("[[gateproof fault=status_429 status=503 cid=x-ff2]]", "both set the error status"),
    ],
)
def test_fail_first_misuse_is_a_400(http: httpx.Client, directive: str, needle: str) -> None:
    request = wire_request("openai", directive, stream=False)
    response = http.post(request.path, headers=request.headers, json=request.body)
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]


@pytest.mark.parametrize("raw", ["0", "101", "x"])
def test_fail_first_range(raw: str) -> None:
    with pytest.raises(DirectiveError, match="fail_first must be an integer from 1 to 100"):
        parse_directive(f"[[gateproof fail_first={raw}]]")


def test_clearing_a_cid_restarts_its_count(http: httpx.Client, cid: str, journal: ReadJournal) -> None:
    request = wire_request("openai", f"[[gateproof status=429 fail_first=1 cid={cid}]]", stream=False)
    assert http.post(request.path, headers=request.headers, json=request.body).status_code == 429
    http.delete("/_gateproof/journal", params={"cid": cid}).raise_for_status()
    assert http.post(request.path, headers=request.headers, json=request.body).status_code == 429
    assert [e["attempt"] for e in journal(cid)] == [1]


def test_the_counter_is_bounded() -> None:
    counter = AttemptCounter(capacity=3)
    assert [counter.next(c) for c in "abca"] == [1, 1, 1, 2]
    for c in "defg":
        counter.next(c)
    assert len(counter) == 3
    assert counter.next("a") == 1  # forgotten: least recently seen


def test_a_reset_on_the_first_attempt_is_retried_by_the_sdk(
    mock_server: LocalServer, cid: str, journal: ReadJournal
) -> None:
    retrying = openai.OpenAI(base_url=mock_server.url + "/v1", api_key=MOCK_KEY, max_retries=1, timeout=10.0)
    try:
        assert _ask(retrying, f"[[gateproof fault=reset fail_first=1 cid={cid}]]")
    finally:
        retrying.close()
    entries = journal(cid)
    assert [(e["attempt"], e["fault"], e["status"], e["outcome"]) for e in entries] == [
        (1, "reset", None, "aborted"),
        (2, None, 200, "complete"),
    ]


def test_route_down_fails_only_the_route_the_cid_first_came_on(
    mock_server: LocalServer, sdk: openai.OpenAI, cid: str, journal: ReadJournal
) -> None:
    """A primary route down and a fallback up: the same directive on another dialect is answered."""
    directive = f"hi [[gateproof status=500 route_down=1 tokens=3 cid={cid}]]"
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            _ask(sdk, directive)
    claude = anthropic.Anthropic(
        base_url=mock_server.url + PREFIX, api_key=MOCK_KEY, max_retries=0, timeout=10.0
    )
    try:
        answer = claude.messages.create(
            model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": directive}]
        )
    finally:
        claude.close()
    assert answer.content and answer.stop_reason == "end_turn"
    with pytest.raises(openai.InternalServerError):
        _ask(sdk, directive)  # the first route is still down
    entries = journal(cid)
    assert [(e["dialect"], e["attempt"], e["status"], e["fault"]) for e in entries] == [
        ("openai", 1, 500, "status_500"),
        ("openai", 2, 500, "status_500"),
        ("anthropic", 3, 200, None),
        ("openai", 4, 500, "status_500"),
    ]


def test_route_down_needs_a_cid_and_something_to_fail(sdk: openai.OpenAI) -> None:
    for text, wanted in (
        ("hi [[gateproof status=500 route_down=1]]", "route_down needs a cid"),
        ("hi [[gateproof route_down=1 cid=gp-rd-x]]", "route_down needs a fault="),
    ):
        with pytest.raises(openai.BadRequestError) as raised:
            _ask(sdk, text)
        assert wanted in str(raised.value)
