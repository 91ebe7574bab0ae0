"""The transcript corpus: sizes, needles, validity as requests, determinism, and realistic noise."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from gateproof.mock_providers._provider_rules import check_messages
from gateproof.openapi import (
    TRANSCRIPT_SIZES,
    SchemaKind,
    Transcript,
    count_chat_prompt,
    load_transcript,
    transcripts,
    validators,
)
from gateproof.openapi._transcripts import _TARGETS, MAX_RESULT_CHARS, TOLERANCE, _assemble

SIZES = list(TRANSCRIPT_SIZES)


def _tool_texts(transcript: Transcript) -> list[str]:
    return [m["content"] for m in transcript.messages if m["role"] == "tool"]


@pytest.mark.parametrize("size", SIZES)
def test_size_is_within_tolerance_and_tokens_is_the_convention_count(size: str) -> None:
    transcript = load_transcript(size)
    assert transcript.size == size
    assert transcript.name == f"agent-{size}"
    assert transcript.tokens == count_chat_prompt(list(transcript.messages), list(transcript.tools))
    target = _TARGETS[size]
    assert abs(transcript.tokens - target) <= target * TOLERANCE, transcript.tokens


@pytest.mark.parametrize("size", SIZES)
def test_needles_are_verbatim_in_the_tool_results(size: str) -> None:
    transcript = load_transcript(size)
    assert transcript.needles, "every transcript has needles"
    assert len(set(transcript.needles)) == len(transcript.needles)
    results = "\n".join(_tool_texts(transcript))
    for needle in transcript.needles:
        assert needle in results, needle


@pytest.mark.parametrize("size", ["8k", "32k", "128k"])
def test_larger_transcripts_plant_needles_of_several_kinds(size: str) -> None:
    needles = load_transcript(size).needles
    assert len(needles) >= 4
    kinds = {
        "failing test id": any(re.fullmatch(r"tests/\S+\.py::\S+", n) for n in needles),
        "assertion line": any(n.startswith("E  ") for n in needles),
        "error log line": any(n.startswith("ERROR ") for n in needles),
        "file path": any(re.fullmatch(r"[\w./-]+/[\w.-]+\.py", n) for n in needles),
        "JSON value": any("differs from ledger" in n for n in needles),
    }
    assert all(kinds.values()), kinds


@pytest.mark.parametrize("size", SIZES)
def test_every_transcript_is_a_valid_request_for_the_spec_and_the_provider(size: str) -> None:
    transcript = load_transcript(size)
    body = transcript.request()
    assert validators().issues(SchemaKind.REQUEST, body) == []
    check_messages(body["messages"])  # raises on a tool message that answers no call
    called = {m["tool_calls"][0]["function"]["name"] for m in transcript.messages if m.get("tool_calls")}
    assert called == {tool["function"]["name"] for tool in transcript.tools}
    json.dumps(body, ensure_ascii=False)  # JSON-ready


@pytest.mark.parametrize("size", SIZES)
def test_no_tool_result_is_longer_than_the_counting_piece(size: str) -> None:
    assert max(len(text) for text in _tool_texts(load_transcript(size))) <= MAX_RESULT_CHARS


@pytest.mark.parametrize("size", SIZES)
def test_assembly_is_deterministic(size: str) -> None:
    again = _assemble(size)
    assert again == load_transcript(size)
    assert json.dumps(again.messages) == json.dumps(load_transcript(size).messages)


def test_the_corpus_carries_the_noise_compression_is_for() -> None:
    text = "\n".join(_tool_texts(load_transcript("32k")))
    assert "\x1b[" in text  # colour codes
    assert "\r" in text  # progress bars redrawn in place
    assert text.count("PASSED") > 50  # a long verbose test run
    assert "\n  {\n" in text or '\n    "' in text  # pretty-printed JSON
    assert re.search(r"^services/\S+\.py:\d+:", text, re.MULTILINE)  # grep hits
    assert re.search(r"^2026-11-30T\d\d:\d\d:\d\d\.\d{3}Z INFO", text, re.MULTILINE)  # timestamped logs
    big = "\n".join(_tool_texts(load_transcript("128k")))
    assert "-- More --" in big  # pager prompts
    results = _tool_texts(load_transcript("128k"))
    assert len(results) > len(set(results))  # a tool result repeated verbatim (the test run, twice)


def test_transcripts_lists_every_size_and_unknown_sizes_are_refused() -> None:
    assert [t.size for t in transcripts()] == SIZES
    with pytest.raises(ValueError, match="1k, 8k, 32k, 128k"):
        load_transcript("64k")


#: the corpus's fingerprint: the same bytes on every machine (results recorded elsewhere stay
#: comparable). Changing a fragment or the assembler changes it: update it in the same change.
DIGESTS = {
    "1k": "793f059d48cf5e5a",
    "8k": "0ec223963b362901",
    "32k": "42b2c2d735ef1adb",
    "128k": "8609d1d8d0b8d972",
}


@pytest.mark.parametrize("size", SIZES)
def test_the_corpus_is_byte_identical_everywhere(size: str) -> None:
    transcript = load_transcript(size)
    text = json.dumps([transcript.messages, transcript.tools, transcript.needles], ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == DIGESTS[size]
