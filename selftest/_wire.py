"""Wire-level faults: pure ASGI middleware that rewrites what a gateway ``send``s.

A deviation in how an answer looks on the wire (the bytes of an event stream, the response
headers, how an error is rendered) needs nothing from inside the gateway: it can be made by
wrapping the app's ``send``, as starlette's own middleware do (no ``BaseHTTPMiddleware``,
which would buffer streams). So the same fault stands in front of the reference gateway or any
other ASGI gateway: ``HeadersFault(app, rewrite)``.

This module imports nothing from gateproof: it knows HTTP, SSE framing and the D13 error
envelope (``{"error": {"message", "code", ...}}``), nothing of any gateway's code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "JSON",
    "DelayFault",
    "ErrorFault",
    "ErrorRewrite",
    "FrameRewrite",
    "FramesFault",
    "HeadersFault",
    "HeadersRewrite",
    "WireError",
]

JSON = "application/json"
_EVENT_STREAM = "text/event-stream"
#: the end of one SSE event (the gateway frames every event with a blank line)
_EVENT_END = b"\n\n"

#: (response headers, lower-case names; whether the answer is an event stream) -> the headers to send
HeadersRewrite = Callable[[dict[str, str], bool], dict[str, str]]
#: (one SSE event as sent, its position in the stream from 0) -> the bytes to send instead
FrameRewrite = Callable[[bytes, int], bytes]


@dataclass(frozen=True)
class WireError:
    """An error answer as it goes on the wire: a JSON value, or text when the media type is not JSON."""

    status: int
    body: Any
    #: the answer's own headers (lower-case names), without content-type and content-length
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = JSON

    @property
    def error(self) -> Mapping[str, Any]:
        """The D13 envelope's inner object (empty when the body has none)."""
        inner = self.body.get("error") if isinstance(self.body, dict) else None
        return inner if isinstance(inner, dict) else {}

    @property
    def code(self) -> Any:
        return self.error.get("code")

    @property
    def message(self) -> str:
        return str(self.error.get("message", ""))

    def content(self) -> bytes:
        """The body as sent: JSON, or text for another media type; None is no body at all."""
        if self.body is None:
            return b""
        if self.media_type == JSON:
            return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()
        return str(self.body).encode()


#: the error as the gateway rendered it -> the error to send instead
ErrorRewrite = Callable[[WireError], WireError]


def _headers(message: Message) -> dict[str, str]:
    return {bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1") for k, v in message["headers"]}


def _raw(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


class DelayFault:
    """Waits ``delay_s`` seconds before handing every HTTP request to the app: a gateway that is
    correct in every answer and slower by exactly that much (what a paired load run must see)."""

    def __init__(self, app: ASGIApp, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("path", "").startswith("/_gateproof"):
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


class HeadersFault:
    """Rewrites the headers of every HTTP answer (``rewrite`` is told whether it is a stream)."""

    def __init__(self, app: ASGIApp, rewrite: HeadersRewrite) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def rewritten(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = _headers(message)
                streaming = _media_type(headers) == _EVENT_STREAM
                message = {**message, "headers": _raw(self.rewrite(headers, streaming))}
            await send(message)

        await self.app(scope, receive, rewritten)


class ErrorFault:
    """Re-renders error answers (status >= 400 with a JSON body); every other answer passes untouched.

    The error's body is held until it is complete (an error answer is small and sent at once),
    then ``rewrite`` sees it as a :class:`WireError`; an error it returns unchanged goes out as
    the very bytes the gateway wrote.
    """

    def __init__(self, app: ASGIApp, rewrite: ErrorRewrite) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        held = bytearray()

        async def rewritten(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            held.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            for out in self._render(start, bytes(held)):
                await send(out)

        await self.app(scope, receive, rewritten)

    def _render(self, start: Message, body: bytes) -> list[Message]:
        original = [start, {"type": "http.response.body", "body": body, "more_body": False}]
        headers = _headers(start)
        if _media_type(headers) != JSON:
            return original
        try:
            value = json.loads(body)
        except ValueError:
            return original
        own = {k: v for k, v in headers.items() if k not in ("content-type", "content-length")}
        error = WireError(start["status"], value, own)
        changed = self.rewrite(error)
        if changed == error:
            return original
        content = changed.content()
        media = changed.media_type if changed.media_type == JSON else f"{changed.media_type}; charset=utf-8"
        sent = {**changed.headers, "content-type": media, "content-length": str(len(content))}
        return [
            {**start, "status": changed.status, "headers": _raw(sent)},
            {"type": "http.response.body", "body": content, "more_body": False},
        ]


class FramesFault:
    """Rewrites an event stream one SSE event at a time, as each one completes (nothing is buffered
    beyond the event being written); answers that are not ``text/event-stream`` pass untouched."""

    def __init__(self, app: ASGIApp, rewrite: FrameRewrite) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        streaming = False
        pending = b""
        position = 0

        async def rewritten(message: Message) -> None:
            nonlocal streaming, pending, position
            if message["type"] == "http.response.start":
                streaming = _media_type(_headers(message)) == _EVENT_STREAM
            if not streaming or message["type"] != "http.response.body":
                await send(message)
                return
            pending += message.get("body", b"")
            out = bytearray()
            while (end := pending.find(_EVENT_END)) >= 0:
                frame, pending = pending[: end + len(_EVENT_END)], pending[end + len(_EVENT_END) :]
                out += self.rewrite(frame, position)
                position += 1
            more = message.get("more_body", False)
            if not more:
                out += pending  # an unfinished last event goes out as it was
                pending = b""
            if out or not more:
                await send({**message, "body": bytes(out)})

        await self.app(scope, receive, rewritten)
