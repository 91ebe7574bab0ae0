"""Provider faults: named ways for the mock to misbehave, chosen per request.

A directive ``fault=NAME`` picks one (``fail_first=N`` limits it to the first N
requests of a ``cid``; the mock's ``--chaos-*`` options draw one at random, see
``_chaos``). Each fault is one small class that rewrites the rendered ``Reply``
(its frames, headers delay, abort and reset flags) by frame *role*, so it works
for every dialect; the only dialect-specific bytes it needs (an in-stream error
event, a deliberately broken chunk) come from the ``FaultRenderer`` the dialect
provides.

Registered faults (those marked *stream* need a successful streamed answer; asked
for by a directive on a non-streamed request they are a 400):

- ``mid_stream_error`` (stream): a 200 stream sends some content, then an error
  event in the dialect's envelope, and ends without the end-of-stream marker.
- ``no_done`` (stream): the whole answer, but no end-of-stream marker (OpenAI's
  ``[DONE]``, Anthropic's ``message_stop``; Gemini has none, so its stream is whole).
- ``cut`` (stream): the body ends cleanly (a well-formed end of the chunked body)
  after ``fault_after`` content chunks, without the rest: no finish chunk, no usage,
  no terminator (unlike ``no_done``, which sends the whole answer).
- ``truncate``: a reset after N chunks: the connection is dropped mid-answer (a
  stream after ``fault_after`` content chunks; a non-streamed body after half of
  its declared ``Content-Length``).
- ``reset``: the connection is reset (TCP RST) before the status line: no HTTP
  response at all; the client sees a connection error.
- ``malformed_chunk``: one chunk that is not valid JSON is slipped into the stream
  (non-streamed: the body is cut short and is not valid JSON).
- ``slow_headers``: nothing, not even the status line, is sent for ``fault_ms``
  (default 1000 ms); the whole answer is shifted by that delay.
- ``stall`` (stream): after ``fault_after`` content chunks the stream pauses for
  ``fault_ms`` (default 1000 ms), then the rest follows as planned.
- ``drip`` (stream): every frame is written in pieces, so that each takes about
  ``fault_ms`` (default 200 ms) to arrive in full; no pause between two writes is
  longer than ``DRIP_MAX_GAP`` (50 ms) unless a frame has fewer bytes than pieces
  wanted. The answer completes, terminator included.

Errors before the stream are not rewrites of a reply but error answers in the
dialect's envelope; as fault names (for ``fault=``, the chaos list and the
journal's ``fault`` field) they are ``status_<NNN>`` (400..599: ``status_429``,
``status_503``; 429 and 503 carry ``Retry-After: 1``) and ``overload``: the
provider's own overload status (``FaultRenderer.overload_status``: Anthropic 529
``overloaded_error``, 503 elsewhere).

"Some content" is ``fault_after`` content chunks, half of them by default.
Adding a fault is one class with the ``@register`` decorator.
"""

from __future__ import annotations

import abc
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol, TypeVar

from gateproof.mock_providers._errors import DirectiveError, ProviderError
from gateproof.mock_providers._replies import Frame, FrameRole, Render, Reply, frame_bytes, now_us

__all__ = [
    "DRIP_MAX_GAP",
    "FAULTS",
    "OVERLOAD",
    "Fault",
    "FaultContext",
    "FaultRenderer",
    "error_fault_status",
    "is_fault_name",
    "register",
    "status_fault_name",
]

#: default delay of faults that wait, in seconds
DEFAULT_FAULT_DELAY = 1.0
#: default time one frame takes to arrive under ``fault=drip``, in seconds
DEFAULT_DRIP = 0.2
#: the longest pause between two writes of a dripped frame, in seconds
DRIP_MAX_GAP = 0.05
#: the fault name of the provider's own overload answer (Anthropic 529, 503 elsewhere)
OVERLOAD = "overload"
_STATUS_FAULT = re.compile(r"status_([45][0-9][0-9])")


class FaultRenderer(Protocol):
    """The dialect-specific bytes a fault may need."""

    def stream_error(self, error: ProviderError) -> bytes:
        """One in-stream error event (the dialect's error envelope, framed as an event)."""

    def malformed(self, frame: bytes) -> bytes:
        """A variant of the stream frame ``frame`` whose payload is not valid JSON."""

    @property
    def overload_status(self) -> int:
        """The HTTP status this provider answers when it is overloaded (fault ``overload``)."""


@dataclass(frozen=True, slots=True)
class FaultContext:
    renderer: FaultRenderer
    #: content chunks to let through before the fault strikes; ``None`` = half of them
    after: int | None = None
    #: delay for faults that wait, in seconds; ``None`` = ``DEFAULT_FAULT_DELAY``
    delay: float | None = None


class Fault(abc.ABC):
    """Base class: a named rewrite of a rendered reply."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: the fault only makes sense on a successful streamed answer
    streams_only: ClassVar[bool] = False

    def apply(self, reply: Reply, context: FaultContext) -> Reply:
        if self.streams_only and not (reply.streamed and reply.status == 200):
            raise DirectiveError(f"fault={self.name} needs a successful streamed answer (stream: true)")
        return self.rewrite(reply, context)

    @abc.abstractmethod
    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        """Return the faulty version of ``reply`` (``apply`` has checked it applies)."""

    def __repr__(self) -> str:
        return f"<fault {self.name}>"


_FAULTS: dict[str, Fault] = {}
#: name -> fault, in registration order
FAULTS: Mapping[str, Fault] = _FAULTS

_F = TypeVar("_F", bound=type[Fault])


def register(cls: _F) -> _F:
    """Class decorator: add one instance of ``cls`` to ``FAULTS`` under ``cls.name``."""
    if cls.name in _FAULTS:
        raise ValueError(f"fault {cls.name!r} registered twice")
    _FAULTS[cls.name] = cls()
    return cls


@dataclass(frozen=True, slots=True)
class _Cut:
    """A stream split where the fault strikes."""

    head: Sequence[Frame]
    tail: Sequence[Frame]
    #: when the first frame after the cut was due (the fault strikes then)
    at: float


def _cut(reply: Reply, after: int | None) -> _Cut:
    """Split the frames just before content chunk number ``after`` (0-based)."""
    content = sum(1 for frame in reply.frames if frame.role is FrameRole.CONTENT)
    keep = max(1, content // 2) if after is None else after
    keep = min(max(keep, 0), content)
    seen = 0
    for index, frame in enumerate(reply.frames):
        if frame.role is FrameRole.CONTENT:
            if seen == keep:
                return _Cut(reply.frames[:index], reply.frames[index:], frame.at)
            seen += 1
        elif seen == keep and frame.role is not FrameRole.OPEN:
            return _Cut(reply.frames[:index], reply.frames[index:], frame.at)
    last = reply.frames[-1].at if reply.frames else 0.0
    return _Cut(reply.frames, (), last)


def status_fault_name(status: int) -> str:
    """The fault name of an error answer with ``status`` (what the journal's ``fault`` says)."""
    return f"status_{status}"


def error_fault_status(name: str, overload_status: int) -> int | None:
    """The HTTP status of an error fault name (``status_429``, ``overload``); None for other names."""
    if name == OVERLOAD:
        return overload_status
    found = _STATUS_FAULT.fullmatch(name)
    return int(found.group(1)) if found else None


def is_fault_name(name: str) -> bool:
    """A registered fault, ``overload`` or ``status_<400..599>``."""
    return name in _FAULTS or error_fault_status(name, 503) is not None


def _only(predicate: Callable[[Frame], bool], frames: Sequence[Frame]) -> tuple[Frame, ...]:
    return tuple(frame for frame in frames if predicate(frame))


@register
class MidStreamError(Fault):
    name = "mid_stream_error"
    summary = "some content, then an in-stream error event and no end-of-stream marker"
    streams_only = True

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        cut = _cut(reply, context.after)
        error = ProviderError(
            status=500,
            message="The provider failed in the middle of the answer (gateproof fault mid_stream_error).",
        )
        frame = Frame(context.renderer.stream_error(error), cut.at, FrameRole.ERROR)
        return replace(reply, frames=(*cut.head, frame))


@register
class NoDone(Fault):
    name = "no_done"
    summary = "a complete stream without its end-of-stream marker"
    streams_only = True

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        return replace(reply, frames=_only(lambda f: f.role is not FrameRole.TERMINAL, reply.frames))


@register
class Truncate(Fault):
    name = "truncate"
    summary = "reset after N chunks: the connection drops after fault_after content chunks (non-stream: half the body)"

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        if reply.streamed:
            return replace(reply, frames=_cut(reply, context.after).head, abort=True)
        # keep the declared Content-Length, send half of it, then drop the connection
        frames = tuple(f._replace(data=_half(frame_bytes(f))) for f in reply.frames)
        return replace(reply, frames=frames, abort=True)


@register
class MalformedChunk(Fault):
    name = "malformed_chunk"
    summary = "one chunk that is not JSON (non-streamed: a body cut short)"

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        if not reply.streamed:
            halves = [_half(frame_bytes(f)) for f in reply.frames]
            frames = tuple(f._replace(data=half) for f, half in zip(reply.frames, halves, strict=True))
            size = str(sum(map(len, halves))).encode()
            headers = tuple((k, size if k == b"content-length" else v) for k, v in reply.headers)
            return replace(reply, frames=frames, headers=headers)
        cut = _cut(reply, context.after)
        model = next((f for f in reply.frames if f.role is FrameRole.CONTENT), None)
        source = frame_bytes(model) if model is not None else b'data: {"choices": []}\n\n'
        broken = Frame(context.renderer.malformed(source), cut.at, FrameRole.MALFORMED)
        return replace(reply, frames=(*cut.head, broken, *cut.tail))


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


@register
class SlowHeaders(Fault):
    name = "slow_headers"
    summary = "nothing is sent for fault_ms (default 1000 ms); the whole answer shifts by that"

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        delay = DEFAULT_FAULT_DELAY if context.delay is None else context.delay
        frames = tuple(f._replace(at=f.at + delay) for f in reply.frames)
        return replace(reply, frames=frames, header_delay=reply.header_delay + delay)


@register
class Reset(Fault):
    name = "reset"
    summary = "the connection is reset before the status line: no HTTP response at all"

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        return replace(reply, frames=(), abort=False, reset=True)


@register
class CutStream(Fault):
    name = "cut"
    summary = "the stream ends cleanly after fault_after content chunks, with no finish event or terminator"
    streams_only = True

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        return replace(reply, frames=_cut(reply, context.after).head)


@register
class Stall(Fault):
    name = "stall"
    summary = "after fault_after content chunks the stream pauses fault_ms (default 1000 ms), then goes on"
    streams_only = True

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        delay = DEFAULT_FAULT_DELAY if context.delay is None else context.delay
        cut = _cut(reply, context.after)
        tail = tuple(frame._replace(at=frame.at + delay) for frame in cut.tail)
        return replace(reply, frames=(*cut.head, *tail))


@register
class Drip(Fault):
    name = "drip"
    summary = "every frame arrives in pieces over fault_ms (default 200 ms), at most 50 ms apart"
    streams_only = True

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        duration = DEFAULT_DRIP if context.delay is None else context.delay
        frames: list[Frame] = []
        done = 0.0  # when the previous frame has fully arrived
        for data, at, role in reply.frames:
            # a frame made when written (a stamped chunk) is measured now, cut when its first piece goes
            whole = data if isinstance(data, bytes) else data(now_us())
            count = max(1, min(len(whole), math.ceil(duration / DRIP_MAX_GAP)))
            gap = duration / count
            start = max(at, done)
            size = math.ceil(len(whole) / count)
            bounds = range(0, len(whole), size)
            pieces: list[bytes | Render]
            if isinstance(data, bytes):
                pieces = [data[i : i + size] for i in bounds] or [data]
            else:
                shared = _Made(data)
                pieces = [shared.piece(i, i + size if i + size < len(whole) else None) for i in bounds] or [
                    data
                ]
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                frames.append(Frame(piece, start + (index + 1) * gap, role if last else FrameRole.PARTIAL))
            done = start + len(pieces) * gap
        return replace(reply, frames=tuple(frames))


class _Made:
    """A frame made when its first dripped piece is written; every piece is a slice of that one making."""

    __slots__ = ("_data", "_render")

    def __init__(self, render: Render) -> None:
        self._render = render
        self._data: bytes | None = None

    def piece(self, start: int, stop: int | None) -> Render:
        def render(sent_us: int) -> bytes:
            if self._data is None:
                self._data = self._render(sent_us)
            return self._data[start:stop]

        return render
