"""The SSE decoder on its own: WHATWG line and field rules, pieces cut anywhere, framing issues."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field

import pytest

from gateproof.contract.stream import (
    MAX_LINE_CHARS,
    ChatStreamGrammar,
    SSEDecoder,
    SSEEvent,
    StreamChecker,
    check_stream,
)


@dataclass(frozen=True)
class Case:
    name: str
    feeds: list[bytes]
    events: list[SSEEvent]
    issues: list[str] = field(default_factory=list)
    comments: int = 0


def ev(data: str, event: str = "message", id: str = "", retry: int | None = None) -> SSEEvent:
    return SSEEvent(data=data, event=event, id=id, retry=retry)


CASES = [
    Case("lf", [b"data: a\n\n"], [ev("a")]),
    Case("crlf", [b"data: a\r\n\r\n"], [ev("a")]),
    Case("cr", [b"data: a\r\r"], [ev("a")]),
    Case("mixed line ends", [b"data: a\r\ndata: b\rdata: c\n\n"], [ev("a\nb\nc")]),
    # The LF of a CRLF arriving in the next piece must not count as a second (blank) line.
    Case("crlf split across feeds", [b"data: a\r", b"\ndata: b\r\n\r\n"], [ev("a\nb")]),
    Case(
        "lone cr then lf in separate feeds",
        [b"data: a", b"\r", b"\n", b"data: b", b"\r", b"\n", b"\r", b"\n"],
        [ev("a\nb")],
    ),
    Case("cr cr lf", [b"data: a\r\r\n"], [ev("a")]),
    Case(
        "comments are counted, not events",
        [b": OPENROUTER PROCESSING\n\n: ping\ndata: x\n\n"],
        [ev("x")],
        comments=2,
    ),
    Case("no space after colon", [b"data:a\n\n"], [ev("a")]),
    Case("only one space is removed", [b"data:  a\n\n"], [ev(" a")]),
    Case("colon inside the value", [b"data: a: b\n\n"], [ev("a: b")]),
    Case("multi-line data", [b'data: {\ndata: "k": 1\ndata: }\n\n'], [ev('{\n"k": 1\n}')]),
    Case("data line without colon", [b"data\n\n"], [ev("")]),
    Case("empty data value", [b"data:\n\n"], [ev("")]),
    Case("event type", [b"event: ping\ndata: x\n\n"], [ev("x", event="ping")]),
    Case("empty event type means message", [b"event:\ndata: x\n\n"], [ev("x")]),
    Case("a block without data is not dispatched", [b"event: ping\n\nid: 5\n\n"], []),
    Case("id carries over", [b"id: 7\ndata: a\n\ndata: b\n\n"], [ev("a", id="7"), ev("b", id="7")]),
    Case(
        "id with NUL is ignored",
        [b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n"],
        [ev("a", id="1"), ev("b", id="1")],
    ),
    Case("retry", [b"retry: 1500\ndata: a\n\nretry: soon\ndata: b\n\n"], [ev("a", retry=1500), ev("b")]),
    Case("unknown fields are ignored", [b"foo: bar\ndata: a\nDATA: b\n\n"], [ev("a")]),
    Case("two events in one feed", [b"data: a\n\ndata: b\n\n"], [ev("a"), ev("b")]),
    Case("utf-8 split across feeds", [b"data: caf\xc3", b"\xa9\n\n"], [ev("caf\u00e9")]),
    Case("4-byte character in three feeds", [b"data: \xf0\x9f", b"\x98", b"\x80!\n\n"], [ev("\U0001f600!")]),
    Case("bom at start", [b"\xef\xbb\xbfdata: a\n\n"], [ev("a")]),
    Case("bom split across feeds", [b"\xef", b"\xbb", b"\xbfdata: a\n\n"], [ev("a")]),
    # Only one leading BOM is dropped; a second one makes the field name "\ufeffdata", which is unknown.
    Case("second bom is kept", [b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n"], [ev("b")]),
    Case("no trailing blank line", [b"data: a\n\ndata: b\n"], [ev("a")], issues=["unterminated_event"]),
    Case("no final line end", [b"data: a\n\ndata: b"], [ev("a")], issues=["unterminated_event"]),
    Case("unfinished comment at the end", [b"data: a\n\n: ping"], [ev("a")], issues=["unterminated_event"]),
    Case(
        "invalid utf-8 is replaced and reported",
        [b"data: \xff!\n\n"],
        [ev("\ufffd!")],
        issues=["invalid_utf8"],
    ),
    Case("body ends inside a character", [b"data: a\n\n\xc3"], [ev("a")], issues=["invalid_utf8"]),
    Case("empty body", [b""], []),
]


def _run(feeds: list[bytes]) -> tuple[list[SSEEvent], list[str], int]:
    decoder = SSEDecoder()
    events = [event for piece in feeds for event in decoder.feed(piece)]
    issues = [issue.kind for issue in decoder.close()]
    return events, issues, decoder.comment_count


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decoder_as_fed(case: Case) -> None:
    assert _run(case.feeds) == (case.events, case.issues, case.comments)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decoder_whole_and_byte_by_byte(case: Case) -> None:
    body = b"".join(case.feeds)
    expected = (case.events, case.issues, case.comments)
    assert _run([body]) == expected
    assert _run([body[i : i + 1] for i in range(len(body))]) == expected


def test_feed_returns_events_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [ev("a")]
    assert decoder.feed(b"data: b\r") == []
    # A CR alone already ends the blank line; the event must not wait for a possible LF.
    assert decoder.feed(b"\r") == [ev("b")]
    assert decoder.feed(b"\n") == []
    assert decoder.close() == []
    assert decoder.event_count == 2


def test_issue_offsets_point_into_the_body() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: ok\n\n")  # 10 bytes
    decoder.feed(b"data: \xc3")  # 7 bytes; the lead byte is at offset 16 ...
    decoder.feed(b"(\n\n")  # ... and turns out invalid when the next byte arrives
    issues = decoder.close()
    assert [(issue.kind, issue.offset) for issue in issues] == [("invalid_utf8", 16)]
    assert decoder.bytes_fed == 20


def test_unterminated_event_message_shows_what_was_lost() -> None:
    decoder = SSEDecoder()
    decoder.feed(b'data: {"x": 1}\n')
    (issue,) = decoder.close()
    assert issue.kind == "unterminated_event"
    assert '{"x": 1}' in issue.message


def test_close_is_idempotent_and_feed_after_close_fails() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a")
    first = decoder.close()
    assert decoder.closed
    assert decoder.close() == first
    with pytest.raises(RuntimeError):
        decoder.feed(b"\n\n")


# -- long lines: linear time, bounded memory -----------------------------------------------------

PIECE = b"x" * 65536


def _feed_line(decoder: SSEDecoder, megabytes: int) -> list[SSEEvent]:
    """One ``data:`` line of ``megabytes`` MiB fed in 64 KiB pieces (as a socket delivers it), then its end."""
    events = decoder.feed(b"data: ")
    for _ in range(megabytes * 16):
        events += decoder.feed(PIECE)
    return events + decoder.feed(b"\n\n")


@pytest.mark.timing
def test_a_long_line_costs_linear_time() -> None:
    """A 32 MiB line took 45 s when each piece was appended to one string; joined once it takes well under 1 s."""
    decoder = SSEDecoder(max_line_chars=64 * 1024 * 1024)
    started = time.perf_counter()
    (event,) = _feed_line(decoder, 32)
    elapsed = time.perf_counter() - started
    assert len(event.data) == 32 * 1024 * 1024
    assert elapsed < 5.0, f"{elapsed:.1f} s"


@pytest.mark.timing
def test_a_100mb_line_is_dropped_with_bounded_memory() -> None:
    decoder = SSEDecoder()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        events = _feed_line(decoder, 100)
        events += decoder.feed(b"data: after\n\n")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events == [ev("after")]  # the next event is decoded as usual
    assert [issue.kind for issue in decoder.close()] == ["line_too_long"]
    assert peak < 3 * MAX_LINE_CHARS, f"peak {peak / 2**20:.1f} MiB"  # one line at most, not the body
    assert elapsed < 10.0, f"{elapsed:.1f} s"


def test_a_line_at_the_limit_is_kept_and_one_past_it_dropped() -> None:
    decoder = SSEDecoder(max_line_chars=16)
    assert decoder.feed(b"data: 1234567890\n\n") == [ev("1234567890")]  # 16 characters with "data: "
    assert decoder.feed(b"data: 12345678901\n\ndata: ok\n\n") == [ev("ok")]
    assert [issue.kind for issue in decoder.close()] == ["line_too_long"]


@pytest.mark.parametrize("split", [1, 7, 1000], ids=["byte_by_byte", "7_bytes", "whole"])
def test_an_overlong_comment_is_dropped_however_it_is_split(split: int) -> None:
    body = b": " + b"c" * 40 + b"\ndata: a\n\n"
    decoder = SSEDecoder(max_line_chars=20)
    events = [event for i in range(0, len(body), split) for event in decoder.feed(body[i : i + split])]
    assert events == [ev("a")]
    assert [issue.kind for issue in decoder.close()] == ["line_too_long"]
    assert decoder.comment_count == 0


def test_an_event_whose_data_lines_pass_the_limit_is_dropped() -> None:
    decoder = SSEDecoder(max_line_chars=32)
    body = b"".join(b"data: 0123456789\n" for _ in range(5)) + b"\ndata: next\n\n"
    assert decoder.feed(body) == [ev("next")]
    assert [issue.kind for issue in decoder.close()] == ["event_too_large"]


def test_a_100mb_line_through_the_checker_is_a_framing_violation() -> None:
    checker = StreamChecker(ChatStreamGrammar(include_usage=False))
    checker.feed(b"data: ")
    for _ in range(100 * 16):
        checker.feed(PIECE)
    checker.feed(b"\n\ndata: [DONE]\n\n")
    report = checker.close()
    assert "sse_framing" in report.rules_violated
    assert any("line_too_long" in violation.message for violation in report.violations)


def test_deep_json_in_a_chunk_is_not_json_to_the_grammar() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    report = check_stream(b"data: " + deep + b"\n\ndata: [DONE]\n\n", include_usage=False)
    (violation,) = [v for v in report.violations if v.rule == "chunk_is_json"]
    assert "nested deeper than 256 levels" in violation.message
