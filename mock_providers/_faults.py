"""Provider faults: named ways for the mock to misbehave, chosen per request.

A directive ``fault=NAME`` picks one. Each fault is one small class that rewrites
the rendered ``Reply`` (its frames, headers delay, abort flag) by frame *role*, so
it works for every dialect; the only dialect-specific bytes it needs (an in-stream
error event, a deliberately broken chunk) come from the ``FaultRenderer`` the
dialect provides.

Registered faults:

- ``mid_stream_error``: a 200 stream sends some content, then an error event in
  the dialect's envelope, and ends without the end-of-stream marker.
- ``no_done``: the stream is complete but its end-of-stream marker is missing.
- ``truncate``: the connection is dropped mid-answer (a stream after some content;
  a non-streamed body after half of its declared length).
- ``malformed_chunk``: one chunk that is not valid JSON is slipped into the stream
  (non-streamed: the body is cut short and is not valid JSON).
- ``slow_headers``: nothing, not even the status line, is sent for ``fault_ms``
  (default 1000 ms); the whole answer is shifted by that delay.

"Some content" is ``fault_after`` content chunks, half of them by default.
Adding a fault is one class with the ``@register`` decorator.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol, TypeVar

from gateproof.mock_providers._errors import DirectiveError, ProviderError
from gateproof.mock_providers._replies import Frame, FrameRole, Reply

__all__ = ["FAULTS", "Fault", "FaultContext", "FaultRenderer", "register"]

#: default delay of faults that wait, in seconds
DEFAULT_FAULT_DELAY = 1.0


class FaultRenderer(Protocol):
    """The dialect-specific bytes a fault may need."""

    def stream_error(self, error: ProviderError) -> bytes:
        """One in-stream error event (the dialect's error envelope, framed as an event)."""

    def malformed(self, frame: bytes) -> bytes:
        """A variant of the stream frame ``frame`` whose payload is not valid JSON."""


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

    head: tuple[Frame, ...]
    tail: tuple[Frame, ...]
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


def _only(predicate: Callable[[Frame], bool], frames: tuple[Frame, ...]) -> tuple[Frame, ...]:
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
    summary = "the connection drops mid-answer"

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        if reply.streamed:
            return replace(reply, frames=_cut(reply, context.after).head, abort=True)
        # keep the declared Content-Length, send half of it, then drop the connection
        frames = tuple(f._replace(data=f.data[: len(f.data) // 2]) for f in reply.frames)
        return replace(reply, frames=frames, abort=True)


@register
class MalformedChunk(Fault):
    name = "malformed_chunk"
    summary = "one chunk that is not JSON (non-streamed: a body cut short)"

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        if not reply.streamed:
            frames = tuple(f._replace(data=f.data[: len(f.data) // 2]) for f in reply.frames)
            size = str(sum(len(f.data) for f in frames)).encode()
            headers = tuple((k, size if k == b"content-length" else v) for k, v in reply.headers)
            return replace(reply, frames=frames, headers=headers)
        cut = _cut(reply, context.after)
        model = next((f for f in reply.frames if f.role is FrameRole.CONTENT), None)
        source = model.data if model is not None else b'data: {"choices": []}\n\n'
        broken = Frame(context.renderer.malformed(source), cut.at, FrameRole.MALFORMED)
        return replace(reply, frames=(*cut.head, broken, *cut.tail))


@register
class SlowHeaders(Fault):
    name = "slow_headers"
    summary = "nothing is sent for fault_ms (default 1000 ms); the whole answer shifts by that"

    def rewrite(self, reply: Reply, context: FaultContext) -> Reply:
        delay = DEFAULT_FAULT_DELAY if context.delay is None else context.delay
        frames = tuple(f._replace(at=f.at + delay) for f in reply.frames)
        return replace(reply, frames=frames, header_delay=reply.header_delay + delay)
