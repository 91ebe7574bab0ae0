"""A rendered answer, ready to be written: status, headers and timed frames of bytes.

Dialects turn a ``Scenario`` into a ``Reply``; faults rewrite a ``Reply``; the
delivery code writes it. Keeping the wire bytes and their deadlines in one plain
value is what lets a fault (drop the terminator, cut the connection, slip in a
broken chunk) be written once for every dialect: it only needs to know each
frame's *role*, never the dialect's JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Frame", "FrameRole", "Reply"]


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

    (A named tuple rather than a dataclass: a stream holds one per chunk, and
    tuples are the cheapest immutable record to build.)
    """

    data: bytes
    at: float
    role: FrameRole


@dataclass(frozen=True, slots=True)
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
    frames: tuple[Frame, ...]
    streamed: bool = False
    header_delay: float = 0.0
    abort: bool = False
    reset: bool = False
    #: how many content pieces the answer holds (what the pacing counted)
    pieces: int = 0
