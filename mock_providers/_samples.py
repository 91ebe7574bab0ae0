"""A small chat request in each dialect the mock speaks, as that provider's client sends it.

The mock's own tests and benchmarks drive its ASGI app with these (the same matrix of
dialects, streams and tools in both), so the paths, key headers and model names they use
come from one place, next to the dialects that define them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateproof.mock_providers.dialects.anthropic import ANTHROPIC_VERSION_HEADER
from gateproof.mock_providers.dialects.anthropic import PREFIX as ANTHROPIC_PREFIX
from gateproof.mock_providers.dialects.gemini import API_VERSIONS, GEMINI_PREFIX

__all__ = ["SAMPLE_DIALECTS", "SAMPLE_TOOL_SCHEMA", "SampleRequest", "sample_request"]

#: the dialects ``sample_request`` knows, in the order the mock serves them
SAMPLE_DIALECTS = ("openai", "anthropic", "gemini")
#: the parameters of the one tool a sample offers when asked to (``tools=True``)
SAMPLE_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["city"],
}
_TOOL_NAME = "get_weather"
#: the version an Anthropic client names (the mock asks only that one is named; the gateway's
#: providers/anthropic.py holds the one it sends, which the mock may not import)
_ANTHROPIC_VERSION = b"2023-06-01"


@dataclass(frozen=True, slots=True)
class SampleRequest:
    """What goes on the wire, less ``Host`` and ``Content-Length`` (the caller's to add)."""

    path: str
    query: bytes
    #: ``Content-Type`` first, then the dialect's key header(s)
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def sample_request(
    dialect: str, text: str, *, key: str, stream: bool = False, tools: bool = False
) -> SampleRequest:
    """One user message ``text`` to the dialect's generation endpoint, with ``key`` where that provider wants it.

    ``stream`` asks for the dialect's event stream (OpenAI's with usage included), ``tools``
    offers one function tool. Raises ``ValueError`` for a dialect not in ``SAMPLE_DIALECTS``.
    """
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    query = b""
    body: dict[str, Any]
    if dialect == "openai":
        path = "/v1/chat/completions"
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        if tools:
            body["tools"] = [
                {"type": "function", "function": {"name": _TOOL_NAME, "parameters": SAMPLE_TOOL_SCHEMA}}
            ]
        headers.append((b"authorization", f"Bearer {key}".encode()))
    elif dialect == "anthropic":
        path = ANTHROPIC_PREFIX + "/v1/messages"
        body = {
            "model": "claude-haiku-4-5",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": text}],
        }
        if stream:
            body["stream"] = True
        if tools:
            body["tools"] = [{"name": _TOOL_NAME, "input_schema": SAMPLE_TOOL_SCHEMA}]
        headers += [(b"x-api-key", key.encode()), (ANTHROPIC_VERSION_HEADER.encode(), _ANTHROPIC_VERSION)]
    elif dialect == "gemini":
        method = "streamGenerateContent" if stream else "generateContent"
        path = f"{GEMINI_PREFIX}/{API_VERSIONS[0]}/models/gemini-2.5-flash:{method}"
        query = b"alt=sse" if stream else b""
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if tools:
            body["tools"] = [
                {"functionDeclarations": [{"name": _TOOL_NAME, "parameters": SAMPLE_TOOL_SCHEMA}]}
            ]
        headers.append((b"x-goog-api-key", key.encode()))
    else:
        raise ValueError(f"no sample request for dialect {dialect!r} (known: {', '.join(SAMPLE_DIALECTS)})")
    return SampleRequest(path, query, tuple(headers), json.dumps(body).encode())
