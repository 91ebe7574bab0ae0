"""How schemathesis reads our `text/event-stream` response, pinned down: per-event validation of a
`data:` field that is `[DONE]`, a JSON chunk, or a JSON in-stream error (D9, D28)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateproof.openapi import SchemaKind, load_corpus, validators

from .conftest import CHAT, ResponseFactory

CHUNKS = {entry.name: entry.payload for entry in load_corpus(SchemaKind.CHUNK)}
STREAM_ERROR = {"error": {"message": "The provider dropped the connection.", "type": "provider_error",
                          "code": "provider_error", "param": None}}  # fmt: skip


def sse(build: ResponseFactory, raw: str) -> Any:
    return build.make(CHAT, 200, "text/event-stream", raw.encode())


def test_full_stream_with_usage_and_edgee_chunk(chat_operation: Any, build: ResponseFactory) -> None:
    events = [
        CHUNKS["role-chunk"],
        CHUNKS["content-chunk"],
        CHUNKS["finish-chunk"],
        CHUNKS["usage-chunk-with-compression"],
        CHUNKS["edgee-chunk"],
        "[DONE]",
    ]
    chat_operation.validate_response(build.sse(events))


def test_tool_call_stream(chat_operation: Any, build: ResponseFactory) -> None:
    events = [
        CHUNKS["tool-call-first-fragment"],
        CHUNKS["tool-call-arguments-fragment"],
        CHUNKS["finish-tool-calls"],
        "[DONE]",
    ]
    assert chat_operation.is_valid_response(build.sse(events))


def test_one_bad_event_fails_the_stream_and_is_numbered(chat_operation: Any, build: ResponseFactory) -> None:
    events = [CHUNKS["role-chunk"], CHUNKS["tool-call-fragment-without-index"], "[DONE]"]
    with pytest.raises(Exception) as caught:  # schemathesis raises its own failure types
        chat_operation.validate_response(build.sse(events))
    assert "Event #1" in str(caught.value)


def test_in_stream_error_event_passes_the_schema(chat_operation: Any, build: ResponseFactory) -> None:
    """D9: the event schema accepts the error event; ending without [DONE] is the grammar's business."""
    assert validators().is_valid(SchemaKind.ERROR, STREAM_ERROR)
    events = [CHUNKS["role-chunk"], CHUNKS["content-chunk"], STREAM_ERROR]
    assert chat_operation.is_valid_response(build.sse(events))


@pytest.mark.parametrize(
    "payload",
    [
        {"error": "boom"},
        {"error": {"message": "boom"}},
        {"error": {"message": "m", "type": "nope", "code": None, "param": None}},
    ],
    ids=["string", "incomplete", "unknown-type"],
)
def test_malformed_error_event_is_rejected(payload: Any, chat_operation: Any, build: ResponseFactory) -> None:
    assert not chat_operation.is_valid_response(build.sse([CHUNKS["role-chunk"], payload]))


@pytest.mark.parametrize("data", ["hello", "[done]", "42", '"[DONE]"', "null"])
def test_data_that_is_neither_done_nor_a_payload_is_rejected(
    data: str, chat_operation: Any, build: ResponseFactory
) -> None:
    assert not chat_operation.is_valid_response(sse(build, f"data: {data}\n\n"))


def test_framing_variants_are_all_read(chat_operation: Any, build: ResponseFactory) -> None:
    chunk = json.dumps(CHUNKS["content-chunk"])
    bad = json.dumps(CHUNKS["object-chat-completion"])
    good_variants = [
        f": keep-alive comment\n\nevent: message\nid: 1\ndata: {chunk}\n\ndata: [DONE]\n\n",
        f"data:{chunk}\r\n\r\ndata: [DONE]\r\n\r\n",
        f"data: {chunk}",  # no closing blank line
    ]
    for raw in good_variants:
        assert chat_operation.is_valid_response(sse(build, raw)), raw
    # the same variants really are parsed: a bad chunk in each is caught
    for raw in good_variants:
        assert not chat_operation.is_valid_response(sse(build, raw.replace(chunk, bad))), raw


def test_data_split_over_lines_is_joined_before_decoding(chat_operation: Any, build: ResponseFactory) -> None:
    head, tail = json.dumps(CHUNKS["usage-chunk"], separators=(",", ":")).split(',"created"', 1)
    raw = f'data: {head},\ndata: "created"{tail}\n\n'
    assert chat_operation.is_valid_response(sse(build, raw))


def test_blind_spots_of_per_event_validation(chat_operation: Any, build: ResponseFactory) -> None:
    """What the per-event schema cannot see, so the stream grammar checks must: an empty body,
    a stream that never sends [DONE], two finish chunks, events out of order."""
    assert chat_operation.is_valid_response(sse(build, ""))
    assert chat_operation.is_valid_response(build.sse([CHUNKS["content-chunk"]]))
    assert chat_operation.is_valid_response(
        build.sse([CHUNKS["finish-chunk"], CHUNKS["finish-chunk"], "[DONE]"])
    )
    assert chat_operation.is_valid_response(build.sse(["[DONE]", CHUNKS["role-chunk"]]))


def test_media_type_and_status_that_are_not_documented_are_not_checked(
    chat_operation: Any, build: ResponseFactory
) -> None:
    """is_valid_response is only a body check: a stream sent under 400, or text/plain under 200,
    passes it. Status and content type conformance are separate schemathesis checks."""
    bad_stream = ResponseFactory.sse_body([{"not": "a chunk"}])
    assert chat_operation.is_valid_response(build.make(CHAT, 400, "text/event-stream", bad_stream))
    assert chat_operation.is_valid_response(build.make(CHAT, 200, "text/plain", b"hello"))
    assert not chat_operation.is_valid_response(build.make(CHAT, 200, "text/event-stream", bad_stream))
