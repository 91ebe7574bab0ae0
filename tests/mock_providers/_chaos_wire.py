"""Raw requests to each dialect of the mock, and journal polling, for the chaos tests.

The chaos tests look below the SDKs (a reset, a clean cut, a drip are byte-level
behaviour), so they speak each dialect's wire format with httpx directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from gateproof.mock_providers.dialects.anthropic import PREFIX as ANTHROPIC_PREFIX
from gateproof.mock_providers.dialects.gemini import GEMINI_PREFIX

from .conftest import MOCK_KEY

DIALECTS = ("openai", "anthropic", "gemini")


@dataclass(frozen=True)
class WireRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def wire_request(dialect: str, text: str, *, stream: bool) -> WireRequest:
    """A chat request whose last user message is ``text``, in ``dialect``'s own format."""
    if dialect == "openai":
        return WireRequest(
            "/v1/chat/completions",
            {"Authorization": f"Bearer {MOCK_KEY}"},
            {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "stream": stream},
        )
    if dialect == "anthropic":
        return WireRequest(
            ANTHROPIC_PREFIX + "/v1/messages",
            {"x-api-key": MOCK_KEY, "anthropic-version": "2023-06-01"},
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 256,
                "messages": [{"role": "user", "content": text}],
                "stream": stream,
            },
        )
    assert dialect == "gemini"
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return WireRequest(
        f"{GEMINI_PREFIX}/v1beta/models/gemini-2.5-flash:{method}",
        {"x-goog-api-key": MOCK_KEY},
        {"contents": [{"role": "user", "parts": [{"text": text}]}]},
    )


def data_payloads(raw: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in raw.decode().splitlines() if line.startswith("data: ")]


def event_names(raw: bytes) -> list[str]:
    """The ``event:`` names of an SSE body, in order."""
    return [line[len("event: ") :] for line in raw.decode().splitlines() if line.startswith("event: ")]


def settled(
    read: Callable[[str], list[dict[str, Any]]], cid: str, count: int = 1, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """The journal entries of ``cid`` once ``count`` of them have left ``pending``."""
    deadline = time.monotonic() + timeout
    while True:
        entries = read(cid)
        if len(entries) >= count and all(e["outcome"] != "pending" for e in entries):
            return entries
        if time.monotonic() > deadline:
            raise AssertionError(f"journal entries of {cid} still pending after {timeout}s: {entries}")
        time.sleep(0.02)


def new_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)
