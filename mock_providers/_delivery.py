"""Writing a ``Reply`` to an ASGI connection on time, and stopping when the client leaves.

Streamed replies send their headers at once (after ``header_delay``), then each
group of frames that share a due time in one write, sleeping until each absolute
deadline. A group's frames are made only then (a stream's ``LazyFrames`` builds each
frame when asked for it), and a frame holding a ``Render`` (a stamped chunk) is given
the wall-clock time of that write. Other replies send headers and body together when
the body is due.

While anything is still to wait for, a watcher reads ``receive()``: an
``http.disconnect`` cancels the writing at once, so an abandoned stream stops
generating and leaves no task behind. Replies with nothing to wait for are
written straight away without the watcher, which keeps the zero-delay hot path
cheap; a client that leaves during such a write (a long stream held up by a client
that stopped reading) is seen afterwards from the server's own flag (uvicorn's
request cycle says ``disconnected``), whose later writes it dropped.

A reply with ``abort`` ends by raising ``ConnectionDropped`` (after the journal
has been updated, see the exchange): the server then closes the connection
without ending the body, which is how an ASGI app cuts a response short.

A reply with ``reset`` (``fault=reset``) must not get even a status line, and an
exception raised before the response started makes the server answer 500 in the
app's place. So the connection itself is reset: the server's transport is reached
through the ``receive`` callable it handed the app (uvicorn's is a bound method of
the request cycle, which holds it), ``SO_LINGER`` 0 makes the close a TCP RST, and
the app waits (at most ``_RESET_WAIT`` s) until the server has seen the connection
go, so it does not answer for the app. On a server that hides its transport the
mock falls back to ``ConnectionDropped`` and logs that the reset was not possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import Message, Receive, Send

from gateproof.mock_providers._journal import Outcome
from gateproof.mock_providers._replies import FrameRole, LazyFrames, Reply, frame_bytes, last_due
from gateproof.mock_providers._timing import now, sleep_until

__all__ = ["ConnectionDropped", "Delivery", "deliver"]

#: frames due within this many seconds of each other go out in one write
_SAME_TIME = 0.0002
#: at most this many frames per write (a 100k-token answer with no gap is not one 30 MB write)
_MAX_GROUP = 256
#: how long a reset waits for the server to notice the connection is gone
_RESET_WAIT = 1.0
_log = logging.getLogger("gateproof.mock")


class ConnectionDropped(Exception):
    """Raised on purpose to make the server drop a connection mid-response."""


@dataclass(slots=True)
class Delivery:
    """How writing a reply went (what the journal records)."""

    outcome: Outcome
    #: content frames written before the answer ended
    chunks_sent: int
    #: the delivery itself closed the connection (a reset): nothing is left for the server to drop
    closed: bool = False


def _start(reply: Reply) -> Message:
    return {"type": "http.response.start", "status": reply.status, "headers": reply.headers}


def _client_gone(receive: Receive) -> bool:
    """Whether the server saw the client leave before the response was complete."""
    return getattr(getattr(receive, "__self__", None), "disconnected", False) is True


def _transport(receive: Receive) -> Any:
    """The server's transport behind ``receive``, when the server lets it be reached."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None


async def _reset(receive: Receive) -> bool:
    """Reset the connection before any response byte; False when the transport is out of reach."""
    transport = _transport(receive)
    if transport is None:
        _log.warning(
            "gateproof mock: the server hides its transport; fault=reset drops the connection instead"
        )
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receive(), _RESET_WAIT)
    return True


async def _write_whole(reply: Reply, send: Send, progress: Delivery) -> None:
    """Write a non-streamed answer: headers and body, the body in one piece."""
    frames = reply.frames
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
    body = frame_bytes(frames[0]) if len(frames) == 1 else b"".join(frame_bytes(f) for f in frames)
    await send({"type": "http.response.body", "body": body, "more_body": reply.abort})
    progress.chunks_sent = 0 if reply.abort else reply.pieces


async def _write(
    reply: Reply, t0: float, receive: Receive, send: Send, progress: Delivery, due: float
) -> None:
    """Write ``reply``; ``due`` is ``last_due(reply)`` (when a non-streamed answer goes out)."""
    frames = reply.frames
    if reply.reset:
        await sleep_until(t0 + reply.header_delay)
        progress.closed = await _reset(receive)
        return
    if not reply.streamed:
        await sleep_until(t0 + due)
        await _write_whole(reply, send, progress)
        return
    await sleep_until(t0 + reply.header_delay)
    await send(_start(reply))
    content = FrameRole.CONTENT
    due_of = frames.due if isinstance(frames, LazyFrames) else (lambda i: frames[i].at)
    index, count = 0, len(frames)
    while index < count:
        # which frames go in this write is decided from due times alone; they are made once due
        first = index
        due = due_of(index)
        index += 1
        while index < count and index - first < _MAX_GROUP and due_of(index) - due <= _SAME_TIME:
            index += 1
        if t0 + due > now():
            await sleep_until(t0 + due)
        sent_us = time.time_ns() // 1000
        if index - first == 1:
            data, _, role = frames[first]
            body = data if isinstance(data, bytes) else data(sent_us)
            sent = int(role is content)
        else:
            parts, sent = [], 0
            for position in range(first, index):
                data, _, role = frames[position]
                parts.append(data if isinstance(data, bytes) else data(sent_us))
                sent += role is content
            body = b"".join(parts)
        last = index == count and not reply.abort
        await send({"type": "http.response.body", "body": body, "more_body": not last})
        progress.chunks_sent += sent
    if count == 0 and not reply.abort:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def deliver(reply: Reply, t0: float, receive: Receive, send: Send) -> Delivery:
    """Write ``reply`` (``t0`` = the request's arrival on ``_timing.now``); say how it ended."""
    loop = asyncio.get_running_loop()
    progress = Delivery(Outcome.ABORTED if reply.abort or reply.reset else Outcome.COMPLETE, 0)
    due = last_due(reply)
    if t0 + due <= now():
        if reply.streamed or reply.reset:
            await _write(reply, t0, receive, send, progress, due)
        else:  # the hot path: a whole answer already due
            await _write_whole(reply, send, progress)
        if not progress.closed and _client_gone(receive):
            progress.outcome = Outcome.DISCONNECTED
        return progress

    writer = asyncio.current_task()
    assert writer is not None  # an ASGI app always runs inside a task
    state = {"writing": True, "gone": False}

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if state["writing"]:
                    state["gone"] = True
                    writer.cancel()
                return

    watcher = loop.create_task(watch())
    try:
        await _write(reply, t0, receive, send, progress, due)
        state["writing"] = False
    except asyncio.CancelledError:
        if not state["gone"]:
            raise
        writer.uncancel()
        progress.outcome = Outcome.DISCONNECTED
    finally:
        state["writing"] = False
        watcher.cancel()
    return progress
