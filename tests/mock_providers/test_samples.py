"""The sample requests are what each dialect's endpoint accepts: a 200 answer in that dialect's shape."""

from __future__ import annotations

import httpx
import pytest

from gateproof.cli.launch import LocalServer
from gateproof.mock_providers import SAMPLE_DIALECTS, SampleRequest, sample_request

from .conftest import MOCK_KEY

#: the field every non-streamed answer of the dialect carries
ANSWER_FIELD = {"openai": "choices", "anthropic": "content", "gemini": "candidates"}


def _send(mock_server: LocalServer, sample: SampleRequest) -> httpx.Response:
    url = mock_server.url + sample.path + (f"?{sample.query.decode()}" if sample.query else "")
    headers = [(name.decode(), value.decode()) for name, value in sample.headers]
    return httpx.post(url, content=sample.body, headers=headers, timeout=10.0, trust_env=False)


@pytest.mark.parametrize("tools", [False, True], ids=["plain", "tools"])
@pytest.mark.parametrize("dialect", SAMPLE_DIALECTS)
def test_a_sample_is_answered_in_its_dialect(mock_server: LocalServer, dialect: str, tools: bool) -> None:
    sample = sample_request(dialect, "Hi [[gateproof tokens=3]]", key=MOCK_KEY, tools=tools)
    answer = _send(mock_server, sample)
    assert answer.status_code == 200, answer.text
    assert ANSWER_FIELD[dialect] in answer.json()


@pytest.mark.parametrize("dialect", SAMPLE_DIALECTS)
def test_a_streamed_sample_is_answered_with_events(mock_server: LocalServer, dialect: str) -> None:
    sample = sample_request(dialect, "Hi [[gateproof tokens=3]]", key=MOCK_KEY, stream=True)
    answer = _send(mock_server, sample)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.count("data:") >= 3


def test_an_unknown_dialect_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'cohere'"):
        sample_request("cohere", "Hi", key=MOCK_KEY)
