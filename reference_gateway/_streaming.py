"""Relaying a provider's event stream to the client, one event at a time, as it arrives.

Nothing is buffered and nothing is compressed: each upstream event is decoded by the
provider's adapter, rewritten into Edgee's shape and written out before the provider is
read again, so the client sees the provider's pacing. Events that arrived in one read
are written in one write (the role chunk and the first content chunk usually come
together: one write less before the first token). The relay owns what only the
gateway knows:

- usage is always requested upstream but reaches the client only when it asked
  (``stream_options.include_usage``), on a closing chunk with ``choices: []`` (D19);
- the Edgee per-request fields (``compression``, ``edgee_pending_id``,
  ``edgee_tools_executed``, ``debug``) go on the last chunk before ``[DONE]`` (D1): the
  usage chunk when there is one, else one extra ``choices: []`` chunk that carries only
  them (and the stream's identity fields every chunk has). They are rendered from the
  final usage, after the provider's stream completed;
- a stream that completes ends with ``data: [DONE]``; a stream that fails after it
  started ends with one error event and no ``[DONE]`` (D9);
- when the client goes away, the upstream request is closed at once;
- when the stream completes, the rest of the upstream body (after ``[DONE]`` only the end
  of the chunked encoding, normally already in the socket buffer) is read before the
  response is closed: a connection goes back to the pool only when its answer was read to
  its end (``_upstream``), and closing it one event early made every stream cost a new
  upstream connection (and a TIME_WAIT socket).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

from httpx_sse import ServerSentEvent
from starlette.types import Receive, Scope, Send

from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._events import DONE, Chunk, StreamFailure, StreamItem, encode
from gateproof.reference_gateway._extras import ResponseExtras
from gateproof.reference_gateway._sse import EventSource
from gateproof.reference_gateway._upstream import UpstreamError, UpstreamTimeout
from gateproof.reference_gateway._usage import Usage
from gateproof.reference_gateway.providers import StreamDecoder

__all__ = ["Backlog", "EventStreamResponse", "encode_stream", "relay"]

logger = logging.getLogger("gateproof.gateway")

#: the fields of the stream's first chunk that a synthesized closing chunk repeats
_STREAM_IDENTITY = ("id", "object", "created", "model", "system_fingerprint")
#: after a completed stream, how long the rest of the upstream body may take to arrive, and how
#: many stray events it may hold, before the connection is given up instead of kept for reuse
DRAIN_TIMEOUT_S = 1.0
DRAIN_MAX_EVENTS = 16
#: a closing chunk's id not drawn yet (None would be a provider's own ``"id": null``)
_UNDRAWN: Final = object()


class Backlog:
    """How many more items the relay holds that need no wait: made from bytes already read.

    The relay decodes every event of a piece of the upstream body before it yields the first of
    them; :func:`encode_stream` sends a frame together with the ones that follow it this way
    (the role chunk and the first content chunk often arrive in one read), so one write carries
    what one read brought, and nothing is held while the provider is awaited.
    """

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


async def relay(
    source: EventSource,
    decoder: StreamDecoder,
    *,
    model_id: str,
    provider: str,
    timeout_s: float,
    include_usage: bool,
    on_usage: Callable[[Usage | None], None],
    extras: ResponseExtras | None = None,
    on_failure: Callable[[GatewayError], None] | None = None,
    backlog: Backlog | None = None,
) -> AsyncIterator[StreamItem]:
    """The client's stream items for one upstream stream; ``on_usage`` gets the final usage (None on failure).

    ``timeout_s`` is the stream idle timeout (D46), the longest wait for the provider's next bytes;
    the upstream response's read timeout enforces it (a timer per event would cost more CPU than
    the rest of the relay), and the relay reports it.
    Every way the upstream stream can fail once it started (an error event, the body ending
    without the dialect's terminator, a reset, a chunk that is not JSON, a pause over
    ``timeout_s``) ends the client's stream with one error event and no ``[DONE]`` (D45).
    ``extras`` are rendered with the final usage onto the last chunk (D1); ``on_failure``
    hears the error of a stream that failed after it started, before it is sent.
    ``backlog``, when given, is kept at the number of items that follow the one just yielded
    without waiting for the provider.
    """
    usage_chunk: dict[str, Any] | None = None
    # What a closing chunk says about the stream when the provider sent no chunk to copy it from
    # (its random id is drawn only if a closing chunk needs it and no chunk gave one).
    identity: dict[str, Any] = {
        "id": _UNDRAWN,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_id,
    }
    seen_first = False
    failure: StreamFailure | None = None
    held = backlog if backlog is not None else Backlog()
    batches = source.batches()
    try:
        try:
            async for events in batches:
                parts: list[Chunk] = []
                for event in events:
                    for part in decoder.feed(event):
                        if isinstance(part, StreamFailure):
                            failure = part
                            break
                        data = part.data
                        if not seen_first:
                            seen_first = True
                            identity.update((name, data[name]) for name in _STREAM_IDENTITY if name in data)
                        if "usage" in data:
                            # Held back: it goes out last, and only if the client asked for it.
                            usage_chunk = data
                            if part.is_usage_only:
                                continue
                            part = Chunk({name: value for name, value in data.items() if name != "usage"})
                        parts.append(part)
                    if failure is not None or decoder.finished:
                        break
                ends = failure is not None or decoder.finished
                # when the stream ends in this piece, its last items follow these without a wait
                held.count = len(parts) + (1 if ends else 0)
                for part in parts:
                    held.count -= 1
                    yield part
                if ends:
                    break
            else:
                # the body ended cleanly but the provider never said the answer was complete
                failure = StreamFailure(
                    _errors.provider_error(provider, "the stream ended before it completed")
                )
        except UpstreamTimeout:
            # D46: the provider went quiet for longer than the idle timeout, which the upstream
            # response's own read timeout enforces (see ``_gateway``): no timer per event here
            failure = StreamFailure(_errors.provider_timeout(provider, timeout_s))
        except UpstreamError as exc:
            failure = StreamFailure(
                _errors.provider_error(provider, f"the stream broke off ({type(exc).__name__})")
            )
        held.count = 0
        if failure is not None:
            on_usage(None)
            if on_failure is not None:
                on_failure(failure.error)
            yield failure
            return
        usage = Usage.from_edgee(usage_chunk.get("usage") if usage_chunk else None)
        on_usage(usage)
        edgee = extras.render(usage) if extras is not None else {}
        if identity["id"] is _UNDRAWN:
            identity["id"] = "chatcmpl-" + secrets.token_hex(12)
        if include_usage:
            held.count = 1
            yield Chunk({**_closing_usage_chunk(identity, usage_chunk, usage), **edgee})
        elif edgee:
            held.count = 1
            yield Chunk({**identity, "object": "chat.completion.chunk", "choices": [], **edgee})
        held.count = 0
        yield DONE
        # The client has its [DONE]; what is left is for the connection pool's sake.
        await _drain(batches)
    finally:
        held.count = 0
        await batches.aclose()


async def _drain(batches: AsyncIterator[list[ServerSentEvent]]) -> None:
    """Read a completed stream's upstream body to its end, within bounds, so its connection is reused.

    A provider that keeps sending after ``[DONE]``, or holds the body open, gets its connection
    closed instead (the bound keeps a bad provider from holding the stream's task).
    """
    drained = 0
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for events in batches:
                drained += len(events)
                if drained >= DRAIN_MAX_EVENTS:
                    return
    except (TimeoutError, UpstreamError):
        return


def _closing_usage_chunk(
    identity: Mapping[str, Any], held: Mapping[str, Any] | None, usage: Usage
) -> dict[str, Any]:
    closing: dict[str, Any] = {**identity, **(held or {})}
    closing["object"] = "chat.completion.chunk"
    closing["choices"] = []
    closing["usage"] = usage.to_edgee()
    return closing


async def encode_stream(
    items: AsyncIterator[StreamItem], backlog: Backlog | None = None
) -> AsyncIterator[bytes]:
    """SSE bytes for each item; ``[DONE]`` or a failure is the last thing sent.

    With the relay's ``backlog`` (only when ``items`` are the relay's own, unchanged), a frame
    waits for the ones the relay already holds behind it, and they go out as one write.
    The items are still consumed to their end after the last frame, without sending anything,
    so the relay finishes its work after ``[DONE]`` (reading the upstream body to its end).
    """
    ended = False
    waiting: list[bytes] = []
    async for item in items:
        if ended:
            continue
        frame = encode(item)
        ended = not isinstance(item, Chunk)
        if backlog is not None and backlog.count and not ended:
            waiting.append(frame)
            continue
        if waiting:
            waiting.append(frame)
            frame = b"".join(waiting)
            waiting = []
        yield frame
    if waiting:
        yield b"".join(waiting)


class EventStreamResponse:
    """An ASGI response that writes each frame as soon as it is produced.

    Unlike a plain streaming response it watches for the client's disconnect while
    streaming (whatever ASGI version the server speaks) and always runs ``on_close``,
    which releases the upstream connection. A disconnect stops the frames at once (the
    upstream request is closed, D46) unless ``cancel_on_disconnect`` is off: then the
    stream is read to its end for nobody (the self-test's "upstream never cancelled").
    """

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        headers: Mapping[str, str],
        on_close: Callable[[], Awaitable[None]],
        cancel_on_disconnect: bool = True,
    ) -> None:
        self._frames = frames
        self._cancel_on_disconnect = cancel_on_disconnect
        self._headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ]
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        finished = False
        left = False

        def disconnected(watcher: asyncio.Task[None]) -> None:
            # runs on the loop while this task waits (for a frame or for the client to take one)
            nonlocal left
            if watcher.cancelled() or watcher.exception() is not None or not self._cancel_on_disconnect:
                return
            if not finished:
                logger.info("client went away mid-stream; closing the upstream stream")
            left = True
            task.cancel()

        watcher: asyncio.Task[None] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            # A watcher task, not an anyio task group: the same cancellation at a fraction of the CPU.
            watcher = asyncio.get_running_loop().create_task(_until_disconnect(receive))
            watcher.add_done_callback(disconnected)
            try:
                async for frame in self._frames:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                logger.info("client went away mid-stream")
            except asyncio.CancelledError:
                if not left:
                    raise
                task.uncancel()
        finally:
            if watcher is not None:
                watcher.remove_done_callback(disconnected)
                watcher.cancel()
            # closing only releases resources (no waits), so nothing can hold it up
            await self._on_close()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
