"""Incremental Server-Sent Events decoder that reports framing faults instead of hiding them.

The rules are the WHATWG "event stream interpretation": lines end in CRLF, LF or a lone CR; a line
starting with `:` is a comment; `field: value` loses at most one space after the colon; `data` lines
of one event are joined with LF; `event`, `id` and `retry` are understood and every other field is
ignored; an event is dispatched by a blank line, and only if it carried at least one `data` line.

We do not use httpx-sse here, although it is installed, because a conformance checker has to *say*
when a stream is badly framed, and httpx-sse (like a browser) quietly copes: it drops a last event
that never got its blank line, lets httpx replace invalid UTF-8 with U+FFFD, and dispatches blocks
that carried no data. This decoder follows the same interpretation but records each of those
situations as a `FramingIssue`, so the grammar can report them under the `sse_framing` rule.

The decoder is sans-IO: it is given bytes (`feed`) and told when the body has ended (`close`). It
never reads a clock or a socket, so the same object serves a whole recorded body and a load
generator feeding network chunks as they arrive.

Its cost is linear in the body, however the body is split: a line still arriving is kept as a list
of pieces and joined once, when its end arrives (appending to one string would copy the whole line
at every piece, which is quadratic in the line's length). A line, and the data of one event, may not
grow past `MAX_LINE_CHARS`: a longer one is a framing issue and is dropped, so the decoder's memory
stays bounded whatever a target sends, also in the load generator, which has no body cap of its own.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_LINE_CHARS", "FramingIssue", "SSEDecoder", "SSEEvent"]

_BOM: Final = "\ufeff"
_EXCERPT: Final = 60

#: the longest line, and the most data of one event, the decoder accepts, in characters; a chat
#: completions chunk is a few hundred bytes, a large tool-call fragment a few KiB
MAX_LINE_CHARS: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event.

    `event` is the event type (`"message"` when the block had no `event:` line, as the standard says);
    `id` is the last event id seen so far in the stream (it carries over between events); `retry` is
    the reconnection delay in milliseconds when this block set one.
    """

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


@dataclass(frozen=True, slots=True)
class FramingIssue:
    """A place where the byte stream breaks the event-stream format.

    `kind` is `"unterminated_event"` (the body ended before the blank line that dispatches the last
    event, so that event is lost), `"invalid_utf8"` (bytes that are not UTF-8, decoded as U+FFFD),
    `"line_too_long"` (a line longer than the decoder's limit, dropped) or `"event_too_large"` (an
    event whose data lines together pass the limit, dropped). `offset` is the position in the body,
    in bytes, where the problem was found (for the two size limits: the end of the piece where the
    limit was passed).
    """

    kind: str
    message: str
    offset: int


def _excerpt(text: str) -> str:
    if len(text) > _EXCERPT:
        text = text[:_EXCERPT] + "..."
    return repr(text)


class SSEDecoder:
    """Turn the bytes of one `text/event-stream` body into events, a piece at a time.

    `feed` may be called with any split of the body (a CRLF, or a multi-byte character, cut in two
    across calls is fine) and returns the events completed by that piece. `close` ends the body and
    returns every framing issue of the whole stream, including those found while feeding; `issues`
    holds the ones found so far. Comment lines (keep-alives such as `: OPENROUTER PROCESSING`) are
    not errors: they are counted in `comment_count`. `max_line_chars` bounds a line and the data of
    one event (see the module docstring).
    """

    def __init__(self, max_line_chars: int = MAX_LINE_CHARS) -> None:
        self.issues: list[FramingIssue] = []
        self.comment_count = 0
        self.event_count = 0
        self.bytes_fed = 0
        self.max_line_chars = max_line_chars
        self._undecoded = b""
        self._started = False
        #: the pieces of the line still arriving, joined when it ends; and their total length
        self._partial: list[str] = []
        self._partial_chars = 0
        #: inside a line already found too long: its rest is dropped up to its end
        self._skipping_line = False
        self._trailing_cr = False
        self._data: list[str] = []
        self._data_chars = 0
        #: the current event's data went past the limit: it is dropped at its blank line
        self._dropping_event = False
        self._event = ""
        self._retry: int | None = None
        self._last_id = ""
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Decode the next piece of the body; return the events it completes, in order."""
        if self._closed:
            raise RuntimeError("SSEDecoder.feed() called after close()")
        text = self._decode(data)
        self.bytes_fed += len(data)
        if not text:
            return []
        if self._trailing_cr:
            # The previous piece ended in CR: if this one starts with LF, the pair is one line end.
            self._trailing_cr = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            self._trailing_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._grow_partial(text)
            return []
        lines = text.split("\n")
        rest = lines.pop()
        if self._partial or self._skipping_line:
            first = self._end_partial(lines[0])
            if first is None:
                del lines[0]
            else:
                lines[0] = first
        limit = self.max_line_chars
        if lines and max(map(len, lines)) > limit:
            lines = [line for line in lines if len(line) <= limit or self._too_long()]
        if rest:
            self._grow_partial(rest)
        return self._interpret(lines)

    def _grow_partial(self, text: str) -> None:
        """Add a piece of the line still arriving (dropped if that line is already too long)."""
        if self._skipping_line or not text:
            return
        self._partial.append(text)
        self._partial_chars += len(text)
        if self._partial_chars > self.max_line_chars:
            self._too_long()
            self._partial = []
            self._partial_chars = 0
            self._skipping_line = True

    def _end_partial(self, tail: str) -> str | None:
        """The line that ``tail`` completes, or None when it is the end of a line dropped as too long."""
        if self._skipping_line:
            self._skipping_line = False
            return None
        if not self._partial:
            return tail
        self._partial.append(tail)
        line = "".join(self._partial)
        self._partial = []
        self._partial_chars = 0
        if len(line) > self.max_line_chars:
            self._too_long()
            return None
        return line

    def _too_long(self) -> bool:
        """Record a line past the limit (returns False, to filter the line out)."""
        self.issues.append(
            FramingIssue(
                "line_too_long",
                f"a line longer than {self.max_line_chars} characters; it is dropped",
                self.bytes_fed,
            )
        )
        return False

    def close(self) -> list[FramingIssue]:
        """End the body; return all framing issues of the stream (those found earlier included)."""
        if self._closed:
            return list(self.issues)
        self._closed = True
        if self._undecoded:
            self.issues.append(
                FramingIssue(
                    "invalid_utf8",
                    "the body ends inside a multi-byte UTF-8 character "
                    f"({len(self._undecoded)} byte(s) left)",
                    self.bytes_fed - len(self._undecoded),
                )
            )
            self._undecoded = b""
        if self._partial or self._data:
            pending = "\n".join(self._data)
            if self._partial:
                partial = "".join(self._partial)
                pending = f"{pending}\n{partial}" if pending else partial
            self.issues.append(
                FramingIssue(
                    "unterminated_event",
                    "the body ends without the blank line that dispatches the last event, so it is "
                    f"dropped: {_excerpt(pending)}",
                    self.bytes_fed,
                )
            )
        self._partial = []
        self._partial_chars = 0
        self._data = []
        self._data_chars = 0
        return list(self.issues)

    def _decode(self, data: bytes) -> str:
        """UTF-8 decode across pieces; invalid bytes become U+FFFD and are recorded as an issue."""
        buffer = self._undecoded + data if self._undecoded else data
        try:
            text, used = codecs.utf_8_decode(buffer, "strict", False)
        except UnicodeDecodeError as exc:
            start = self.bytes_fed - len(self._undecoded) + exc.start
            self.issues.append(
                FramingIssue(
                    "invalid_utf8", f"bytes that are not UTF-8 at offset {start}: {exc.reason}", start
                )
            )
            text, used = codecs.utf_8_decode(buffer, "replace", False)
        self._undecoded = buffer[used:]
        if not self._started and text:
            self._started = True
            if text[0] == _BOM:
                text = text[1:]
        return text

    def _interpret(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data and not self._dropping_event:
                    events.append(
                        SSEEvent("\n".join(self._data), self._event or "message", self._last_id, self._retry)
                    )
                self._data = []
                self._data_chars = 0
                self._dropping_event = False
                self._event = ""
                self._retry = None
                continue
            if line[0] == ":":
                self.comment_count += 1
                continue
            name, _, value = line.partition(":")
            if value and value[0] == " ":
                value = value[1:]
            if name == "data":
                if self._dropping_event:
                    continue
                self._data_chars += len(value) + 1
                if self._data_chars > self.max_line_chars:
                    self.issues.append(
                        FramingIssue(
                            "event_too_large",
                            f"an event with more than {self.max_line_chars} characters of data; it is dropped",
                            self.bytes_fed,
                        )
                    )
                    self._dropping_event = True
                    self._data = []
                    continue
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self._retry = int(value)
        self.event_count += len(events)
        return events
