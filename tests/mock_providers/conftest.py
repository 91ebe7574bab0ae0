"""Fixtures for the mock provider tests: clients aimed at a mock server of their own.

The mock refuses keys it was not given, as a provider does; these tests' mock is
started with one known key (``MOCK_KEY``, passed through the environment) and the
clients send it. Tests of the refusals themselves send other keys, or none.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateproof.cli.launch import LocalServer, start_server

#: the one key the mock of these tests accepts
MOCK_KEY = "sk-gp-mock-test-" + secrets.token_urlsafe(24)
MOCK_KEY_ENV = "GATEPROOF_MOCK_TEST_KEY"
AUTH = {"Authorization": f"Bearer {MOCK_KEY}"}


@pytest.fixture(scope="session")
def mock_server(logs_dir: Path) -> Iterator[LocalServer]:
    """The mock, accepting ``MOCK_KEY`` only (this replaces the session-wide mock of tests/conftest.py)."""
    server = start_server(
        "mock-keyed",
        ["mock", "--api-key-env", MOCK_KEY_ENV],
        env={MOCK_KEY_ENV: MOCK_KEY},
        log_dir=logs_dir / "mock-keyed",
    )
    try:
        yield server
    finally:
        server.stop()


#: (seconds since the request was sent, the ``data:`` payload) for each SSE event
Events = list[tuple[float, str]]


@pytest.fixture
def cid() -> str:
    """A fresh correlation id, so each test reads only its own journal entries."""
    return "t-" + uuid.uuid4().hex[:16]


@pytest.fixture
def http(mock_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_server.url, timeout=10.0, trust_env=False, headers=AUTH) as client:
        yield client


@pytest.fixture
def sdk(mock_server: LocalServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=mock_server.url + "/v1", api_key=MOCK_KEY, max_retries=0, timeout=10.0)
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
