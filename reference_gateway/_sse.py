"""A provider's ``text/event-stream`` body as events, decoded piece by piece as it arrives.

The rules are the WHATWG event-stream interpretation, as ``httpx_sse`` (which the gateway used
before) applies them, so every adapter's decoder sees the same :class:`ServerSentEvent` values:
lines end at CR, LF or CRLF (a CR at the end of a piece waits for the next one, which may bring
its LF); a blank line dispatches the event gathered so far; ``data`` lines join with LF; a line
starting with ``:`` is a comment; ``id`` is kept across events (and one without NUL replaces it),
``retry`` must be an integer; an event not closed by a blank line when the body ends is dropped.

It works on bytes and decodes each complete line as UTF-8 (invalid bytes replaced), so a
character split across two pieces is never a problem.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from httpx_sse import ServerSentEvent

from gateproof.reference_gateway._upstream import UpstreamResponse

__all__ = ["EventSource", "SSEDecoder"]


class SSEDecoder:
    """Turns body pieces into events; keeps what an unfinished line or event holds between pieces."""

    def __init__(self) -> None:
        self._tail = b""
        self._event = ""
        self._data: list[str] = []
        self._id = ""
        self._retry: int | None = None

    def feed(self, piece: bytes) -> list[ServerSentEvent]:
        if not self._tail and not self._data and not self._event and self._retry is None:
            whole = self._data_events(piece)
            if whole is not None:
                return whole
        data = self._tail + piece if self._tail else piece
        held_cr = data.endswith(b"\r")
        if held_cr:
            data = data[:-1]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        rest = lines.pop()
        self._tail = rest + b"\r" if held_cr else rest
        events: list[ServerSentEvent] = []
        for raw in lines:
            event = self._line(raw.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def _data_events(self, piece: bytes) -> list[ServerSentEvent] | None:
        """The events of a piece made only of whole one-line ``data:`` events (None for any other).

        That is nearly every piece a provider sends (one event per write), and what the line by
        line rules make of it is plain: one event per block, its data the line's value, the
        last ``id`` kept. About a third of the cost of those rules; anything else takes them.
        """
        if not piece.endswith(b"\n\n") or b"\r" in piece:
            return None
        blocks = piece.split(b"\n\n")
        if blocks.pop():
            return None  # it ended with a third LF: a blank line the rules must see
        events: list[ServerSentEvent] = []
        for block in blocks:
            if not block.startswith(b"data:") or b"\n" in block:
                return None
            value = block[6:] if block[5:6] == b" " else block[5:]
            events.append(
                ServerSentEvent(event="", data=value.decode("utf-8", "replace"), id=self._id, retry=None)
            )
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._event and not self._data and not self._id and self._retry is None:
                return None
            event = ServerSentEvent(
                event=self._event, data="\n".join(self._data), id=self._id, retry=self._retry
            )
            self._event = ""
            self._data = []
            self._retry = None
            return event
        if line[0] == ":":
            return None
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            with contextlib.suppress(ValueError):
                self._retry = int(value)
        return None


class EventSource:
    """The events of one upstream answer (its headers already checked by the gateway)."""

    def __init__(self, response: UpstreamResponse) -> None:
        self.response = response

    async def batches(self) -> AsyncGenerator[list[ServerSentEvent], None]:
        """The events completed by each piece of the body, as it arrives (pieces that complete none
        are not reported): the relay sends what one piece brought in one write."""
        decoder = SSEDecoder()
        async for piece in self.response.pieces():
            events = decoder.feed(piece)
            if events:
                yield events
