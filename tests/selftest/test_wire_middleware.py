"""Wire-level faults stand in front of any ASGI app: here a small one that is not the reference gateway.

The app is served by uvicorn on a loopback port and spoken to over real HTTP, so what is
checked is what a client receives: rewritten headers, re-rendered errors, rewritten events
(an event the app writes in two pieces is still one event), and a stream that is not buffered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from gateproof.cli.launch import free_port
from gateproof.selftest import ErrorFault, FramesFault, HeadersFault, WireError

#: the pause between the app's stream events: a buffering middleware would show it as one burst
PAUSE_S = 0.3


async def _events() -> AsyncIterator[bytes]:
    yield b'data: {"n":0}\n\n'
    await asyncio.sleep(PAUSE_S)
    yield b'data: {"n"'  # one event written in two pieces
    yield b":1}\n\ndata: [DONE]\n\n"


async def stream(request: Request) -> Response:
    return StreamingResponse(_events(), media_type="text/event-stream")


async def limited(request: Request) -> Response:
    envelope = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limited"}}
    return JSONResponse(envelope, status_code=429, headers={"Retry-After": "1", "X-Other": "kept"})


async def missing(request: Request) -> Response:
    return PlainTextResponse("no such page", status_code=404)


async def fine(request: Request) -> Response:
    return JSONResponse({"ok": True}, headers={"X-Edgee-Provider": "elsewhere"})


APP = Starlette(
    routes=[
        Route("/stream", stream),
        Route("/limited", limited),
        Route("/missing", missing),
        Route("/fine", fine),
    ]
)


@contextmanager
def served(app: ASGIApp) -> Iterator[str]:
    """``app`` behind uvicorn on a free loopback port, in a thread, for the length of the block."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _get(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, timeout=10, trust_env=False)


def test_headers_fault_rewrites_every_answer_and_knows_a_stream() -> None:
    seen: list[bool] = []

    def rewrite(headers: dict[str, str], streaming: bool) -> dict[str, str]:
        seen.append(streaming)
        kept = {name: value for name, value in headers.items() if name != "x-edgee-provider"}
        return {**kept, "content-type": "application/json"} if streaming else kept

    with served(HeadersFault(APP, rewrite)) as base:
        answer = _get(base, "/fine")
        streamed = _get(base, "/stream")
    assert answer.json() == {"ok": True} and "x-edgee-provider" not in answer.headers
    assert streamed.headers["content-type"] == "application/json"
    assert streamed.text.endswith("data: [DONE]\n\n")
    assert seen == [False, True]


def test_error_fault_re_renders_json_errors_only() -> None:
    def rewrite(error: WireError) -> WireError:
        if error.code != "rate_limited":
            return error
        headers = {name: value for name, value in error.headers.items() if name != "retry-after"}
        return dataclasses.replace(
            error, status=502, headers=headers, body=error.message, media_type="text/plain"
        )

    with served(ErrorFault(APP, rewrite)) as base:
        limited_answer = _get(base, "/limited")
        missing_answer = _get(base, "/missing")
        fine_answer = _get(base, "/fine")
    assert limited_answer.status_code == 502
    assert limited_answer.text == "slow down"
    assert limited_answer.headers["content-type"].startswith("text/plain")
    assert limited_answer.headers["content-length"] == str(len("slow down"))
    assert "retry-after" not in limited_answer.headers and limited_answer.headers["x-other"] == "kept"
    assert (missing_answer.status_code, missing_answer.text) == (404, "no such page")  # not JSON: untouched
    assert fine_answer.json() == {"ok": True}


def test_an_error_left_alone_is_sent_byte_for_byte() -> None:
    with served(ErrorFault(APP, lambda error: error)) as base, served(APP) as plain:
        through, direct = _get(base, "/limited"), _get(plain, "/limited")
    assert (through.status_code, through.content) == (direct.status_code, direct.content)
    assert through.headers["retry-after"] == "1"


def test_frames_fault_sees_whole_events_in_order_and_does_not_buffer() -> None:
    frames: list[tuple[int, bytes]] = []

    def rewrite(frame: bytes, position: int) -> bytes:
        frames.append((position, frame))
        return b"event: chunk\n" + frame

    arrivals: list[float] = []
    received = bytearray()
    with (
        served(FramesFault(APP, rewrite)) as base,
        httpx.stream("GET", base + "/stream", timeout=10, trust_env=False) as response,
    ):
        for piece in response.iter_raw():
            arrivals.append(time.monotonic())
            received += piece
        fine_answer = _get(base, "/fine")
    assert frames == [(0, b'data: {"n":0}\n\n'), (1, b'data: {"n":1}\n\n'), (2, b"data: [DONE]\n\n")]
    assert received.decode().count("event: chunk\n") == 3
    assert arrivals[-1] - arrivals[0] >= PAUSE_S * 0.8, "the first event waited for the rest"
    assert fine_answer.json() == {"ok": True}  # not a stream: untouched


@pytest.mark.parametrize("middleware", [HeadersFault, ErrorFault, FramesFault])
def test_lifespan_and_other_scopes_pass_through(middleware: type) -> None:
    started: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        started.append(str(scope["type"]))

    asyncio.run(middleware(app, lambda *args: args[0])({"type": "lifespan"}, None, None))
    assert started == ["lifespan"]
