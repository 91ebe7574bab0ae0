"""Fixtures for the mock provider tests: clients aimed at the session's mock server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from gateproof.cli.launch import LocalServer

#: (seconds since the request was sent, the ``data:`` payload) for each SSE event
Events = list[tuple[float, str]]


@pytest.fixture
def cid() -> str:
    """A fresh correlation id, so each test reads only its own journal entries."""
    return "t-" + uuid.uuid4().hex[:16]


@pytest.fixture
def http(mock_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_server.url, timeout=10.0, trust_env=False) as client:
        yield client


@pytest.fixture
def sdk(mock_server: LocalServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=mock_server.url + "/v1", api_key="test", max_retries=0, timeout=10.0)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def stream_events(http: httpx.Client) -> Callable[[dict[str, Any]], tuple[httpx.Response, Events]]:
    """POST a chat request and collect its SSE events with their arrival times."""

    def run(body: dict[str, Any]) -> tuple[httpx.Response, Events]:
        events: Events = []
        start = time.perf_counter()
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append((time.perf_counter() - start, line[len("data: ") :]))
        return response, events

    return run


@pytest.fixture
def journal(http: httpx.Client) -> Callable[[str], list[dict[str, Any]]]:
    """Read the journal entries of one correlation id."""

    def read(cid: str) -> list[dict[str, Any]]:
        response = http.get("/_gateproof/journal", params={"cid": cid})
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    return read
