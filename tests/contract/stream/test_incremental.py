"""Properties: cutting a stream anywhere changes nothing, and no input makes the checker raise."""

from __future__ import annotations

import itertools
import json
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateproof.contract.stream import (
    ChatStreamGrammar,
    EventResult,
    SSEDecoder,
    SSEEvent,
    StreamChecker,
    StreamReport,
    check_stream,
)

Piece = TypeVar("Piece", str, bytes)

BASE: dict[str, Any] = {
    "id": "chatcmpl-9",
    "object": "chat.completion.chunk",
    "created": 1767225600,
    "model": "m/x",
}
# Any text but lone surrogates (which cannot be UTF-8 encoded); CR, LF and non-ASCII are all welcome.
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {**BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _pieces(whole: Piece, cuts: list[int]) -> list[Piece]:
    """Cut `whole` at the given points (taken modulo its length), dropping empty pieces."""
    points = sorted({cut % (len(whole) + 1) for cut in cuts} | {0, len(whole)})
    return [whole[a:b] for a, b in itertools.pairwise(points) if b > a]


@st.composite
def correct_streams(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A stream that satisfies every rule, in varied shapes: text or tool calls, with or without usage,
    comments, a BOM, any line-end style."""
    include_usage = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    events: list[dict[str, Any] | str] = [_chunk({"role": "assistant", "content": ""})]
    if draw(st.booleans()):
        events += [_chunk({"content": piece}) for piece in draw(st.lists(TEXT, max_size=6))]
        events.append(_chunk({}, draw(st.sampled_from(["stop", "length", "content_filter"]))))
    else:
        arguments = json.dumps(draw(st.dictionaries(TEXT, JSON_VALUES, max_size=3)), ensure_ascii=False)
        fragments = _pieces(arguments, draw(st.lists(st.integers(min_value=0), max_size=5)))
        first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
        events.append(_chunk({"tool_calls": [first]}))
        events += [_chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in fragments]
        events.append(_chunk({}, "tool_calls"))
    if include_usage:
        prompt, completion = draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000))
        counts = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        events.append({**BASE, "choices": [], "usage": counts})
    events.append("[DONE]")
    comment_after = draw(st.sets(st.integers(0, len(events) - 1), max_size=3))
    out = ["\ufeff"] if draw(st.booleans()) else []
    for position, event in enumerate(events):
        data = event if isinstance(event, str) else json.dumps(event, ensure_ascii=draw(st.booleans()))
        out.append(f"data: {data}{newline}{newline}")
        if position in comment_after:
            out.append(f": keep-alive{newline}")
    return "".join(out).encode(), include_usage


def _feed_in_pieces(
    body: bytes, cuts: list[int], include_usage: bool
) -> tuple[list[EventResult], StreamReport]:
    checker = StreamChecker(ChatStreamGrammar(include_usage=include_usage))
    results = [result for piece in _pieces(body, cuts) for result in checker.feed(piece)]
    return results, checker.close()


def _decode(pieces: list[bytes]) -> tuple[list[SSEEvent], int]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    assert decoder.close() == []
    return events, decoder.comment_count


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=correct_streams(), cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_any_split_gives_the_same_events_and_summary(stream: tuple[bytes, bool], cuts: list[int]) -> None:
    body, include_usage = stream
    whole = check_stream(body, include_usage=include_usage)
    assert whole.ok, str(whole)

    whole_results, whole_report = _feed_in_pieces(body, [], include_usage)
    results, report = _feed_in_pieces(body, cuts, include_usage)
    assert results == whole_results
    assert report.violations == whole.violations == ()
    assert report.summary == whole.summary == whole_report.summary

    assert _decode(_pieces(body, cuts)) == _decode([body])


@settings(max_examples=150, deadline=None)
@given(stream=correct_streams())
def test_byte_by_byte_equals_whole(stream: tuple[bytes, bool]) -> None:
    body, include_usage = stream
    checker = StreamChecker(ChatStreamGrammar(include_usage=include_usage))
    for i in range(len(body)):
        checker.feed(body[i : i + 1])
    assert checker.close() == check_stream(body, include_usage=include_usage)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_arbitrary_bytes_never_raise(body: bytes, cuts: list[int]) -> None:
    _, report = _feed_in_pieces(body, cuts, include_usage=True)
    assert not report.ok  # nothing meaningful can pass: at the least [DONE] or a choice is missing


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(
        JSON_VALUES
        | st.dictionaries(st.sampled_from([*sorted(BASE), "choices", "usage", "error"]), JSON_VALUES),
        max_size=5,
    ),
    include_usage=st.booleans(),
    expect=st.none() | st.booleans(),
)
def test_arbitrary_json_payloads_never_raise(
    payloads: list[Any], include_usage: bool, expect: bool | None
) -> None:
    body = b"".join(f"data: {json.dumps(p)}\n\n".encode() for p in payloads)
    report = check_stream(body, include_usage=include_usage, expect_tool_call=expect)
    assert all(v.rule in ChatStreamGrammar.rules for v in report.violations)


@settings(max_examples=200, deadline=None)
@given(
    choices=st.lists(
        st.fixed_dictionaries(
            {"index": st.integers(0, 2) | JSON_VALUES, "finish_reason": st.none() | JSON_VALUES},
            optional={
                "delta": st.fixed_dictionaries(
                    {},
                    optional={
                        "role": JSON_VALUES,
                        "content": JSON_VALUES,
                        "refusal": JSON_VALUES,
                        "tool_calls": st.lists(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "index": st.integers(0, 2) | JSON_VALUES,
                                    "id": JSON_VALUES,
                                    "function": st.fixed_dictionaries(
                                        {}, optional={"name": JSON_VALUES, "arguments": JSON_VALUES}
                                    )
                                    | JSON_VALUES,
                                },
                            )
                            | JSON_VALUES,
                            max_size=3,
                        )
                        | JSON_VALUES,
                    },
                )
                | JSON_VALUES
            },
        ),
        max_size=4,
    ),
    include_usage=st.booleans(),
)
def test_malformed_chunks_never_raise(choices: list[dict[str, Any]], include_usage: bool) -> None:
    body = (
        b"".join(f"data: {json.dumps({**BASE, 'choices': [c]})}\n\n".encode() for c in choices)
        + b"data: [DONE]\n\n"
    )
    report = check_stream(body, include_usage=include_usage)
    assert report.summary.chunk_count == len(choices)
