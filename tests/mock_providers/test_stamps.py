"""Chunk stamps (``stamp=1``), over real HTTP in every dialect: each content chunk starts with its
sequence number and the moment it was written, the usage stays that of the answer, faults keep them."""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateproof.mock_providers import FAULTS, FaultContext, Incoming, MockConfig, plan_scenario
from gateproof.mock_providers._directives import parse_directive
from gateproof.mock_providers._replies import frame_bytes
from gateproof.mock_providers.dialects import OpenAIDialect
from gateproof.openapi import STAMP_DIRECTIVE_KEY, STAMP_PATTERN, STAMP_PREFIX, format_directive, parse_stamps

from ._chaos_wire import DIALECTS, data_payloads, settled, wire_request

ReadJournal = Callable[[str], list[dict[str, Any]]]

TTFT_MS, ITL_MS, TOKENS = 100, 40, 8


def _texts(dialect: str, payloads: list[str]) -> list[str]:
    """The text of every content chunk, in order (refusal text included)."""
    texts = []
    for payload in payloads:
        if payload == "[DONE]":
            continue
        event = json.loads(payload)
        if dialect == "openai":
            delta = event["choices"][0]["delta"] if event.get("choices") else {}
            text = delta.get("content") or delta.get("refusal")
        elif dialect == "anthropic":
            text = event["delta"].get("text") if event["type"] == "content_block_delta" else None
        else:
            parts = event["candidates"][0].get("content", {}).get("parts", [])
            text = "".join(part.get("text", "") for part in parts)
        if text:
            texts.append(text)
    return texts


def _stream(http: httpx.Client, dialect: str, text: str) -> tuple[list[str], int]:
    """The content texts of a streamed answer, and the wall clock (us) just before the request went."""
    request = wire_request(dialect, text, stream=True)
    sent_us = time.time_ns() // 1000
    response = http.post(request.path, headers=request.headers, json=request.body)
    assert response.status_code == 200, response.text
    return _texts(dialect, data_payloads(response.content)), sent_us


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_content_chunk_starts_with_its_stamp_sent_when_written(
    http: httpx.Client, journal: ReadJournal, cid: str, dialect: str
) -> None:
    directive = format_directive(
        tokens=TOKENS, ttft_ms=TTFT_MS, itl_ms=ITL_MS, cid=cid, **{STAMP_DIRECTIVE_KEY: 1}
    )
    texts, asked_us = _stream(http, dialect, f"Hello {directive}")
    received_us = time.time_ns() // 1000
    assert len(texts) == TOKENS
    stamps = []
    for text in texts:
        found = STAMP_PATTERN.match(text)
        assert found is not None, text  # the stamp opens the chunk's text
        stamps.append((int(found.group(1)), int(found.group(2))))
        assert text[found.end() :] and STAMP_PREFIX not in text[found.end() :]  # then the answer's piece
    assert [seq for seq, _ in stamps] == list(range(TOKENS))
    sent = [at for _, at in stamps]
    assert sent == sorted(sent) and asked_us < sent[0] <= sent[-1] <= received_us
    # each chunk is stamped when it is written, on its own deadline: not when the request arrived
    for index, at in enumerate(sent):
        due = asked_us + (TTFT_MS + index * ITL_MS) * 1000
        assert due - 2_000 <= at <= due + 250_000, (index, at - asked_us)
    gaps_ms = [(b - a) / 1000 for a, b in itertools.pairwise(sent)]
    assert abs(statistics.median(gaps_ms) - ITL_MS) <= 10, gaps_ms
    # usage counts the answer, not the stamps: the stamped answer bills the tokens asked for
    (entry,) = settled(journal, cid)
    assert entry["true_usage"]["completion_tokens"] == TOKENS
    assert entry["chunks_sent"] == TOKENS


@pytest.mark.parametrize("dialect", DIALECTS)
def test_without_the_key_no_chunk_is_stamped(http: httpx.Client, dialect: str) -> None:
    texts, _ = _stream(http, dialect, "Hello " + format_directive(tokens=TOKENS))
    assert len(texts) == TOKENS
    assert not any(STAMP_PREFIX in text for text in texts)


def test_a_refusal_is_stamped_and_a_tool_call_is_not(http: httpx.Client) -> None:
    refusal, _ = _stream(http, "openai", format_directive(scenario="refusal", stamp=1))
    assert [seq for seq, _ in parse_stamps("".join(refusal))] == list(range(len(refusal)))
    request = wire_request("openai", format_directive(scenario="tool_call", stamp=1), stream=True)
    raw = http.post(request.path, headers=request.headers, json=request.body).content
    arguments = "".join(
        call["function"].get("arguments", "")
        for payload in data_payloads(raw)
        if payload != "[DONE]"
        for choice in json.loads(payload)["choices"]
        for call in choice["delta"].get("tool_calls", [])
    )
    assert STAMP_PREFIX.encode() not in raw and isinstance(json.loads(arguments), dict)


def test_a_non_streamed_answer_is_not_stamped(http: httpx.Client) -> None:
    request = wire_request("openai", format_directive(tokens=TOKENS, stamp=1), stream=False)
    body = http.post(request.path, headers=request.headers, json=request.body).json()
    assert STAMP_PREFIX not in body["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("fault", "expected"), [("cut", 3), ("stall", TOKENS), ("drip", TOKENS), ("mid_stream_error", 3)]
)
def test_faults_keep_the_stamps_of_what_they_send(http: httpx.Client, fault: str, expected: int) -> None:
    directive = format_directive(tokens=TOKENS, fault=fault, fault_after=3, fault_ms=60, stamp=1)
    texts, _ = _stream(http, "openai", directive)
    stamps = parse_stamps("".join(texts))
    assert [seq for seq, _ in stamps] == list(range(expected))
    assert all(STAMP_PATTERN.match(text) for text in texts)


def test_the_stamp_is_made_when_the_frame_is_written() -> None:
    """A stamped frame holds no bytes until it is written; a fault that re-times it keeps it so."""
    dialect = OpenAIDialect()
    text = format_directive(tokens=4, stamp=1)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "stream": True}
    request = dialect.parse(body, Incoming("/v1/chat/completions", {}, "", []))
    reply = dialect.render(plan_scenario(request, parse_directive(text), MockConfig()), request, 0)
    content = [frame for frame in reply.frames if frame.data.__class__ is not bytes]
    assert len(content) == 4
    stalled = FAULTS["stall"].apply(reply, FaultContext(dialect, after=1, delay=0.5))
    assert sum(frame.data.__class__ is not bytes for frame in stalled.frames) == 4
    written = [frame_bytes(frame, sent_us=1_000 + index) for index, frame in enumerate(content)]
    assert [parse_stamps(data.decode()) for data in written] == [[(i, 1_000 + i)] for i in range(4)]
