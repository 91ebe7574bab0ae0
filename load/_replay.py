"""Replay one received stream through the chat stream grammar, cheaply when the stream is ordinary.

The load user judges every stream by the rules of ``gateproof.contract.stream`` (the sans-IO
decoder and grammar the conformance suite uses), after the last byte. Run event by event, that
replay cost more than everything else the user does: a JSON parse and a walk of the grammar for
each of a stream's ~70 events. Most of those events are alike: content chunks that differ from
one another only in their text. So :func:`replay_stream` takes a shortcut:

1. A stream qualifies when its body is nothing but single-line ``data:`` events, each ended by
   ``\\n\\n`` (no CR, no comments, no other fields, nothing after the last event). Anything else
   is replayed in full, exactly as before.
2. Events are fed to the grammar one by one. After a content event the grammar accepted without
   a violation (one choice, non-empty ``delta.content``, no tool calls, refusal, finish reason or
   usage), the event's bytes become a template: everything before and after the content string.
   Each following event made of the same bytes around a different content string (one with no
   quote, backslash or control character, so it is one plain JSON string token, valid UTF-8,
   short) is counted as content without being parsed: the grammar would see the same chunk with
   other text, in the same state, and for such a chunk its rules depend only on the text being a
   non-empty string (the constants are the same bytes, and nothing the earlier event did can make
   the later one break a rule: it sets no finish reason, carries no usage, creates no choice).
   The first event that does not fit is fed to the grammar and ends the run.
3. A stream the shortcut finds anything wrong with (a violation, an error event, an event that
   is not one ``data:`` line) is replayed in full from its first byte, so a broken stream is
   always named by the full grammar's first violation, as if the shortcut did not exist.

What the shortcut checks a skipped event against was proved on the first event of the run by
the grammar itself (the template is re-parsed with a probe text and must parse to the same
chunk), so the shortcut adds no rule of its own. ``tests/load/test_measurement_units.py`` holds
streams where the two paths must agree.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateproof.contract.stream import (
    ChatStreamGrammar,
    EventKind,
    EventResult,
    SSEEvent,
    StreamChecker,
    StreamReport,
)

__all__ = ["Replay", "replay_stream"]

#: the longest content string of a skipped event, well below the decoder's line limit
_MAX_CONTENT_CHARS = 64 * 1024
#: where an event with content text may be (a batch of events for the grammar ends with it)
_CONTENT_TEXT = re.compile(r'"content": ?"[^"]')


@dataclass(frozen=True, slots=True)
class Replay:
    """What the grammar said about one stream, and when its content arrived.

    ``arrivals`` and ``texts`` hold, for every event that carried content, refusal text or
    tool-call arguments, in order, its arrival (the ``perf_counter`` of the read that completed
    it) and its content text ("" for refusal text and tool-call arguments). ``shortcut`` tells
    whether the shortcut judged it (for tests and benchmarks).
    """

    report: StreamReport
    error_event: bool
    arrivals: list[float]
    texts: list[str]
    shortcut: bool


def replay_stream(reads: Sequence[tuple[float, bytes]], *, include_usage: bool) -> Replay:
    """Judge the stream made of ``reads`` ((arrival perf_counter, bytes), in order)."""
    if reads:
        quick = _shortcut(reads, include_usage)
        if quick is not None:
            return quick
    return _full(reads, include_usage)


class _TextGrammar(ChatStreamGrammar):
    """The chat grammar, keeping the content text each content event added (for the stamps)."""

    def __init__(self, *, include_usage: bool) -> None:
        super().__init__(include_usage=include_usage)
        self.texts: list[str] = []

    def feed_event(self, event: SSEEvent) -> EventResult:
        choices = self.summary.choices
        before = {number: len(choice.content_parts) for number, choice in choices.items()}
        result = super().feed_event(event)
        if result.has_content:
            self.texts.append(
                "".join(
                    part
                    for number, choice in choices.items()
                    for part in choice.content_parts[before.get(number, 0) :]
                )
            )
        return result


def _full(reads: Sequence[tuple[float, bytes]], include_usage: bool) -> Replay:
    """The whole grammar over every event, each event timed by the read that completed it."""
    grammar = _TextGrammar(include_usage=include_usage)
    checker = StreamChecker(grammar)
    arrivals: list[float] = []
    error_event = False
    for arrived, data in _line_pieces(reads):
        for result in checker.feed(data):
            if result.has_content:
                arrivals.append(arrived)
            if result.kind is EventKind.ERROR:
                error_event = True
    return Replay(checker.close(), error_event, arrivals, grammar.texts, shortcut=False)


def _line_pieces(reads: Sequence[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """The reads, with every run of pieces that hold no line end joined to the piece that ends it.

    An event can only complete at a line end, so a piece without CR or LF completes nothing and
    joining it to the next one (stamped with that one's arrival) changes no timing. It keeps the
    SSE decoder from growing one long line by repeated concatenation, which is quadratic in the
    line's length.
    """
    pending: list[bytes] = []
    for arrived, data in reads:
        if b"\n" not in data and b"\r" not in data:
            pending.append(data)
            continue
        if pending:
            pending.append(data)
            data = b"".join(pending)
            pending.clear()
        yield arrived, data
    if pending:
        yield reads[-1][0], b"".join(pending)


def _shortcut(reads: Sequence[tuple[float, bytes]], include_usage: bool) -> Replay | None:
    """The replay with template runs skipped, or None when the stream needs the full replay."""
    body = reads[0][1] if len(reads) == 1 else b"".join(data for _, data in reads)
    if not body.startswith(b"data:") or not body.endswith(b"\n\n") or b"\r" in body or not body.isascii():
        return None
    # ASCII: character offsets are byte offsets, and no byte can be invalid UTF-8
    text = body.decode("ascii")
    # ends[k]: the body offset just past read k; an event is complete (dispatched) in the read
    # that holds its last byte, the second LF of its blank line
    ends = list(itertools.accumulate(len(data) for _, data in reads))
    read = 0
    checker = StreamChecker(ChatStreamGrammar(include_usage=include_usage))
    arrivals: list[float] = []
    texts: list[str] = []
    template: _Template | None = None
    known: dict[str, _Template] = {}
    position, size = 0, len(body)
    while position < size:
        if template is not None:
            found, run_end = template.run(text, position)
            if found:
                texts += found
                if ends[read] >= run_end:
                    arrivals += [reads[read][0]] * len(found)
                else:
                    event_end = position
                    for content in found:
                        event_end += template.frame + len(content)
                        while ends[read] < event_end:
                            read += 1
                        arrivals.append(reads[read][0])
                position = run_end
                if position >= size:
                    break
        # the events up to the next one with content text go to the grammar in one piece: that
        # one may head a run, the ones before it cannot
        upcoming = _CONTENT_TEXT.search(text, position)
        batch_end = size if upcoming is None else text.find("\n\n", upcoming.end()) + 2
        events = text[position:batch_end].split("\n\n")
        events.pop()
        if not all(event.startswith("data:") and "\n" not in event for event in events):
            return None
        results = checker.feed(body[position:batch_end])
        if len(results) != len(events) or checker.violations:
            return None
        last = results[-1]
        if any(result.has_content for result in results[:-1]):
            return None  # content the batching did not expect: the full replay keeps each text
        if last.has_content:
            while ends[read] < batch_end:
                read += 1
            chunk = checker.summary.last_chunk
            arrivals.append(reads[read][0])
            texts.append(_content_text(chunk))
            template = _template(events[-1], chunk, known)
        position = batch_end
    report = checker.close()
    if report.violations:
        return None
    return Replay(report, False, arrivals, texts, shortcut=True)


@dataclass(frozen=True, slots=True)
class _Template:
    """The events equal to an accepted content event but for their content string.

    Such an event is ``prefix + content + suffix + "\\n\\n"``; the content must be one plain
    JSON string body: non-empty, printable ASCII (no control character), no quote, no backslash.
    """

    prefix: str
    suffix: str

    @property
    def frame(self) -> int:
        """The characters of one such event besides its content."""
        return len(self.prefix) + len(self.suffix) + 2

    def run(self, text: str, position: int) -> tuple[list[str], int]:
        """The contents of the run of such events that starts at ``position``, and where it ends.

        Each content ends at the first quote after its prefix (a plain content holds none);
        the boundary to the next event of the run must follow it, or the run's last event ends
        there. The contents are then checked all at once, and the run cut before the first that
        fails the content rule.
        """
        prefix, suffix = self.prefix, self.suffix
        if not text.startswith(prefix, position):
            return [], position
        boundary = f"{suffix}\n\n{prefix}"
        step, last = len(boundary), f"{suffix}\n\n"
        find, follows = text.find, text.startswith
        contents: list[str] = []
        start = position + len(prefix)
        while True:
            close = find('"', start)
            if close < 0:
                break
            if follows(boundary, close):
                contents.append(text[start:close])
                start = close + step
                continue
            if follows(last, close):
                contents.append(text[start:close])
            break
        if not _clean(contents):
            for index, content in enumerate(contents):
                if not _clean([content]):
                    del contents[index:]
                    break
        return contents, position + self.frame * len(contents) + sum(map(len, contents))


def _clean(contents: list[str]) -> bool:
    """Whether every one of ``contents`` is a plain JSON string body (see :class:`_Template`)."""
    if not contents:
        return True
    joined = "".join(contents)
    return (
        all(contents)
        and max(map(len, contents)) <= _MAX_CONTENT_CHARS
        and joined.isprintable()
        and '"' not in joined
        and "\\" not in joined
    )


def _content_text(chunk: dict[str, Any] | None) -> str:
    """The content text of a parsed chunk (every choice's ``delta.content``, joined)."""
    choices = chunk.get("choices") if chunk is not None else None
    if type(choices) is not list:
        return ""
    parts: list[str] = []
    for choice in choices:
        delta = choice.get("delta") if type(choice) is dict else None
        content = delta.get("content") if type(delta) is dict else None
        if type(content) is str:
            parts.append(content)
    return "".join(parts)


def _template(event: str, chunk: dict[str, Any] | None, known: dict[str, _Template]) -> _Template | None:
    """The template of ``event`` (one ``data:`` line) when it is a plain content chunk (see the
    module docstring), else None."""
    if chunk is None or chunk.get("usage") is not None:
        return None
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1 or type(choices[0]) is not dict:
        return None
    choice = choices[0]
    delta = choice.get("delta")
    if choice.get("finish_reason") is not None or type(delta) is not dict:
        return None
    content = delta.get("content")
    if type(content) is not str or not content or delta.get("tool_calls") or delta.get("refusal"):
        return None
    token = f'"{content}"'
    field = 6 if event.startswith("data: ") else 5
    start = event.rfind(token)
    while start >= field:
        prefix, suffix = event[: start + 1], event[start + len(token) - 1 :]
        key = f"{prefix}\0{suffix}"
        found = known.get(key)
        if found is not None:
            return found
        if _probe(prefix[field:], suffix, chunk, content):
            found = known[key] = _Template(prefix, suffix)
            return found
        start = event.rfind(token, 0, start)
    return None


def _probe(prefix: str, suffix: str, chunk: dict[str, Any], content: str) -> bool:
    """Whether ``prefix + <other text> + suffix`` parses to ``chunk`` with only its content changed."""
    other = "~" if content != "~" else "~~"
    try:
        probed: Any = json.loads(prefix + other + suffix)
        delta = probed["choices"][0]["delta"]
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    if type(delta) is not dict or delta.get("content") != other:
        return False
    delta["content"] = content
    return bool(probed == chunk)
