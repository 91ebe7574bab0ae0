"""A rendered answer, ready to be written: status, headers and timed frames of bytes.

Dialects turn a ``Scenario`` into a ``Reply``; faults rewrite a ``Reply``; the
delivery code writes it. Keeping the wire bytes and their deadlines in one plain
value is what lets a fault (drop the terminator, cut the connection, slip in a
broken chunk) be written once for every dialect: it only needs to know each
frame's *role*, never the dialect's JSON.

A stream's bytes are made when they are due, not when the request arrives: a
thousand streams arriving together must not each render fifty frames before the
first of them can start. So a dialect hands its stream over as ``LazyFrames`` (each
frame made when the delivery reaches it), and a frame whose bytes depend on the
moment they are written (a chunk stamp, ``stamp=1``) carries a ``Render``, called
with that moment, instead of bytes. Faults handle both without knowing which they
hold: they select, slice and re-time frames, and ``frame_bytes`` gives the bytes of
the few frames whose content they rewrite.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

__all__ = ["Frame", "FrameRole", "LazyFrames", "Render", "Reply", "frame_bytes", "last_due", "now_us"]

#: bytes made when they are written: called with the send time, in microseconds since the epoch
Render = Callable[[int], bytes]


class FrameRole(enum.Enum):
    """What a frame is for; faults select frames by role."""

    #: stream preamble that carries no content (OpenAI's role-only chunk)
    OPEN = "open"
    #: a chunk carrying a piece of the answer (text, refusal, tool call or its arguments)
    CONTENT = "content"
    #: the chunk that states why the answer ended
    FINISH = "finish"
    #: the usage chunk
    USAGE = "usage"
    #: the end-of-stream marker (``data: [DONE]`` for OpenAI)
    TERMINAL = "terminal"
    #: an error event inside a started stream
    ERROR = "error"
    #: bytes that deliberately break the dialect's framing
    MALFORMED = "malformed"
    #: the whole body of a non-streamed answer
    BODY = "body"
    #: a leading piece of a frame sent in several writes (``fault=drip``); the last piece keeps the role
    PARTIAL = "partial"


class Frame(NamedTuple):
    """Bytes to write no earlier than ``at`` seconds after the request arrived.

    ``data`` is the bytes, or a ``Render`` that makes them at the moment they are
    written (the delivery calls it with that moment). (A named tuple rather than a
    dataclass: a stream holds one per chunk, and tuples are the cheapest immutable
    record to build.)
    """

    data: bytes | Render
    at: float
    role: FrameRole


def now_us() -> int:
    """The wall clock in microseconds since the epoch (what a ``Render`` is called with)."""
    return time.time_ns() // 1000


def frame_bytes(frame: Frame, sent_us: int | None = None) -> bytes:
    """The bytes of ``frame``, made now (or as if sent at ``sent_us``) when it holds a ``Render``."""
    data = frame.data
    if isinstance(data, bytes):
        return data
    return data(now_us() if sent_us is None else sent_us)


class LazyFrames(Sequence[Frame]):
    """A stream's frames, each made only when it is asked for (by the delivery, when it is due).

    ``make(i)`` builds frame ``i`` of ``count``; ``due(i)`` says when it is due without building
    it. Due times never decrease along a stream (every dialect's stream is built so), which is
    what lets ``last_due`` read only the last one. A slice is another ``LazyFrames`` over the
    same frames, so a fault that keeps a head of the stream (``cut``) keeps it lazy.
    """

    __slots__ = ("_due", "_make", "_start", "_stop")

    def __init__(
        self, make: Callable[[int], Frame], due: Callable[[int], float], count: int, start: int = 0
    ) -> None:
        self._make = make
        self._due = due
        self._start = start
        self._stop = start + count

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> Frame: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Frame]: ...

    def __getitem__(self, index: int | slice) -> Frame | Sequence[Frame]:
        size = self._stop - self._start
        if isinstance(index, slice):
            start, stop, step = index.indices(size)
            if step != 1:
                return tuple(self)[index]
            return LazyFrames(self._make, self._due, max(stop - start, 0), self._start + start)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("frame index out of range")
        return self._make(self._start + index)

    def __iter__(self) -> Iterator[Frame]:
        make = self._make
        for index in range(self._start, self._stop):
            yield make(index)

    def due(self, index: int) -> float:
        """When frame ``index`` (0 <= index < len) is due, without building it."""
        return self._due(self._start + index)

    def last_due(self) -> float | None:
        """When the last frame is due (None for no frame), without building any frame."""
        return self._due(self._stop - 1) if self._stop > self._start else None

    def __repr__(self) -> str:
        return f"<LazyFrames {len(self)}>"


def last_due(reply: Reply) -> float:
    """When the last thing of ``reply`` is due: its headers or its latest frame."""
    frames = reply.frames
    if len(frames) == 1:  # a non-streamed answer: the common case
        at = frames[0].at
        return at if at > reply.header_delay else reply.header_delay
    if isinstance(frames, LazyFrames):
        last = frames.last_due()
        return reply.header_delay if last is None else max(reply.header_delay, last)
    return max([reply.header_delay, *(frame.at for frame in frames)])


# Not frozen: one is built per request, and a frozen dataclass's __init__ costs about five
# times as much. Treat it as immutable all the same: nothing changes one once it is built.
@dataclass(slots=True)
class Reply:
    """Everything needed to answer one request.

    Streamed replies send their headers at ``header_delay`` and each frame at its
    own time; other replies send headers and body together when the (single) body
    frame is due. With ``abort`` the connection is dropped after the last frame
    instead of the body being ended properly; with ``reset`` it is reset at
    ``header_delay`` before anything, not even the status line, was written.
    """

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    #: a tuple, or for a stream the ``LazyFrames`` its dialect made
    frames: Sequence[Frame]
    streamed: bool = False
    header_delay: float = 0.0
    abort: bool = False
    reset: bool = False
    #: how many content pieces the answer holds (what the pacing counted)
    pieces: int = 0
