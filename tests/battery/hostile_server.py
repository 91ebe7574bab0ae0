"""A hostile gateway for the battery: raw asyncio sockets, so every byte on the wire is ours.

Run as a script (``python hostile_server.py --port-file F --log F``), usually inside a
loopback-only network namespace next to the gateproof process under test. One process
serves every behaviour: the first path segment names it, so the base URL of a target
that misbehaves in way ``drip`` is ``http://127.0.0.1:PORT/drip/v1``. A second port, the
decoy, answers like a correct gateway and logs every hit: a client that follows a
redirect to it shows up there.

Each behaviour has a scope: ``chat`` misbehaves on ``/chat/completions`` only (the model
list is answered correctly, so gateproof's reachability probe passes and the scenarios
meet the fault), ``all`` misbehaves on every path, ``models`` on ``/models`` only.

Nothing here allocates a large body: 100 MB answers are written in 64 KiB pieces, and
endless answers stop when the client goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

PIECE = 64 * 1024
HUNDRED_MB = 100 * 1024 * 1024
#: how long a "hang" lasts; far longer than any bound the battery allows gateproof
HANG_S = 600.0
MODEL = "openai/gpt-4o"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    behaviour: str = ""
    route: str = ""  # "chat", "models" or "other"
    stream: bool = False
    include_usage: bool = False
    model: str = MODEL
    extra: dict[str, Any] = field(default_factory=dict)


Writer = asyncio.StreamWriter
Behaviour = Callable[[Request, Writer], Awaitable[None]]


# -- correct answers, the material every behaviour bends ---------------------------------------------


def completion(request: Request) -> dict[str, Any]:
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 1764547200,
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello there", "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def chunk(request: Request, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 1764547200,
        "model": request.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def stream_events(request: Request) -> list[bytes]:
    events = [
        chunk(request, {"role": "assistant", "content": "hello"}),
        chunk(request, {"content": " there"}),
        chunk(request, {}, "stop"),
    ]
    if request.include_usage:
        usage = chunk(request, {})
        usage["choices"] = []
        usage["usage"] = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        events.append(usage)
    out = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events]
    out.append(b"data: [DONE]\n\n")
    return out


def models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 1, "owned_by": "openai"}]}


def head(status: int, headers: dict[str, str] | list[tuple[str, str]], reason: str = "") -> bytes:
    reasons = {200: "OK", 204: "No Content", 302: "Found", 401: "Unauthorized", 502: "Bad Gateway"}
    lines = [f"HTTP/1.1 {status} {reason or reasons.get(status, 'Status')}"]
    items = headers.items() if isinstance(headers, dict) else headers
    lines += [f"{name}: {value}" for name, value in items]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send(writer: Writer, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def answer_json(
    writer: Writer, status: int, body: bytes, content_type: str = "application/json"
) -> None:
    await send(
        writer,
        head(status, {"Content-Type": content_type, "Content-Length": str(len(body)), "Connection": "close"})
        + body,
    )


async def answer_chunked(writer: Writer, status: int, content_type: str, pieces: Any) -> None:
    """A chunked body from an (async or plain) iterable of byte strings."""
    await send(
        writer,
        head(status, {"Content-Type": content_type, "Transfer-Encoding": "chunked", "Connection": "close"}),
    )
    if hasattr(pieces, "__aiter__"):
        async for piece in pieces:
            await send(writer, f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    else:
        for piece in pieces:
            await send(writer, f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    await send(writer, b"0\r\n\r\n")


async def correct(request: Request, writer: Writer) -> None:
    """What a correct gateway would answer (no auth, one model)."""
    if request.route == "models":
        await answer_json(writer, 200, json.dumps(models()).encode())
    elif request.route == "chat" and request.stream:
        await answer_chunked(writer, 200, "text/event-stream", stream_events(request))
    elif request.route == "chat":
        await answer_json(writer, 200, json.dumps(completion(request)).encode())
    else:
        error = {
            "error": {"message": "no such route", "type": "not_found", "code": "not_found", "param": None}
        }
        await answer_json(writer, 404, json.dumps(error).encode())


def normal_body(request: Request) -> tuple[str, bytes]:
    if request.route == "models":
        return "application/json", json.dumps(models()).encode()
    if request.stream:
        return "text/event-stream", b"".join(stream_events(request))
    return "application/json", json.dumps(completion(request)).encode()


# -- the behaviours ----------------------------------------------------------------------------------


async def hang_before_headers(request: Request, writer: Writer) -> None:
    await asyncio.sleep(HANG_S)


async def hang_mid_stream(request: Request, writer: Writer) -> None:
    content_type, body = normal_body(request)
    await send(writer, head(200, {"Content-Type": content_type, "Content-Length": str(len(body))}))
    await send(writer, body[: len(body) // 3])
    await asyncio.sleep(HANG_S)


async def endless_chunks(request: Request, writer: Writer) -> None:
    """A stream of valid content chunks that never ends (a non-streamed answer whose content never ends)."""
    if request.stream:

        async def events() -> Any:
            yield (
                b"data: "
                + json.dumps(chunk(request, {"role": "assistant", "content": ""})).encode()
                + b"\n\n"
            )
            event = b"data: " + json.dumps(chunk(request, {"content": " word"})).encode() + b"\n\n"
            batch = event * 64
            while True:
                yield batch

        await answer_chunked(writer, 200, "text/event-stream", events())
    else:

        async def pieces() -> Any:
            yield b'{"id":"chatcmpl-hostile","object":"chat.completion","choices":[{"index":0,"message":{"content":"'
            while True:
                yield b"word " * (PIECE // 5)

        await answer_chunked(writer, 200, "application/json", pieces())


async def endless_models(request: Request, writer: Writer) -> None:
    entry = json.dumps({"id": MODEL, "object": "model", "created": 1, "owned_by": "openai"}).encode() + b","

    async def pieces() -> Any:
        yield b'{"object":"list","data":['
        while True:
            yield entry * 512

    await answer_chunked(writer, 200, "application/json", pieces())


async def body_100mb(request: Request, writer: Writer) -> None:
    """A declared 100 MB body: one huge content string, or 100 MB of valid chunks when streaming."""
    if request.stream:
        event = b"data: " + json.dumps(chunk(request, {"content": "x" * 4000})).encode() + b"\n\n"
        count = HUNDRED_MB // len(event)
        first = (
            b"data: " + json.dumps(chunk(request, {"role": "assistant", "content": ""})).encode() + b"\n\n"
        )
        await send(writer, head(200, {"Content-Type": "text/event-stream", "Connection": "close"}))
        await send(writer, first)
        batch = event * 16
        for _ in range(count // 16):
            await send(writer, batch)
        await send(writer, b"data: [DONE]\n\n")
        return
    prefix = b'{"id":"chatcmpl-hostile","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"'
    suffix = (
        b'"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
    )
    filler = HUNDRED_MB - len(prefix) - len(suffix)
    await send(
        writer,
        head(
            200,
            {"Content-Type": "application/json", "Content-Length": str(HUNDRED_MB), "Connection": "close"},
        )
        + prefix,
    )
    piece = b"x" * PIECE
    for _ in range(filler // PIECE):
        await send(writer, piece)
    await send(writer, b"x" * (filler % PIECE) + suffix)


async def sse_line_100mb(request: Request, writer: Writer) -> None:
    """A single 100 MB ``data:`` line (no newline until the very end)."""
    if not request.stream:
        await correct(request, writer)
        return
    await send(writer, head(200, {"Content-Type": "text/event-stream", "Connection": "close"}))
    await send(
        writer,
        b'data: {"id":"chatcmpl-hostile","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"',
    )
    piece = b"x" * PIECE
    for _ in range(HUNDRED_MB // PIECE):
        await send(writer, piece)
    await send(writer, b'"},"finish_reason":null}]}\n\ndata: [DONE]\n\n')


async def invalid_utf8(request: Request, writer: Writer) -> None:
    content_type, body = normal_body(request)
    body = body.replace(b"hello", b"hel\xff\xfelo", 1)
    await answer_json(writer, 200, body, content_type)


async def garbage_sse(request: Request, writer: Writer) -> None:
    rng = random.Random(7)
    lines = [bytes(rng.randrange(32, 127) for _ in range(rng.randrange(5, 80))) for _ in range(50)]
    body = b"\n".join(lines) + b"\n\n"
    await answer_json(writer, 200, body, "text/event-stream" if request.stream else "application/json")


async def no_blank_lines(request: Request, writer: Writer) -> None:
    if not request.stream:
        await correct(request, writer)
        return
    body = b"".join(event.rstrip(b"\n") + b"\n" for event in stream_events(request))
    await answer_json(writer, 200, body, "text/event-stream")


async def reset_mid_body(request: Request, writer: Writer) -> None:
    content_type, body = normal_body(request)
    await send(writer, head(200, {"Content-Type": content_type, "Content-Length": str(len(body))}))
    await send(writer, body[: len(body) // 2])
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def drip(request: Request, writer: Writer) -> None:
    """The correct answer, one byte a second."""
    content_type, body = normal_body(request)
    await send(writer, head(200, {"Content-Type": content_type, "Content-Length": str(len(body))}))
    for index in range(len(body)):
        await send(writer, body[index : index + 1])
        await asyncio.sleep(1.0)


async def wrong_content_type(request: Request, writer: Writer) -> None:
    content_type, body = normal_body(request)
    swapped = "application/json" if content_type == "text/event-stream" else "text/event-stream"
    await answer_json(writer, 200, body, swapped if request.route == "chat" else content_type)


async def broken_chunked(request: Request, writer: Writer) -> None:
    content_type, body = normal_body(request)
    await send(
        writer,
        head(200, {"Content-Type": content_type, "Transfer-Encoding": "chunked", "Connection": "close"})
        + f"{len(body) // 2:x}\r\n".encode()
        + body[: len(body) // 2]
        + b"\r\nzz-not-a-size\r\n"
        + body[len(body) // 2 :]
        + b"\r\n0\r\n\r\n",
    )


async def _redirect(location: str, writer: Writer) -> None:
    await send(
        writer,
        head(302, {"Location": location, "Content-Length": "0", "Connection": "close"}),
    )


async def redirect_offhost(request: Request, writer: Writer) -> None:
    # 192.0.2.0/24 is TEST-NET-1: never routed. A client that follows this is the defect.
    await _redirect("http://192.0.2.1" + request.path, writer)


async def redirect_loopback(request: Request, writer: Writer) -> None:
    suffix = request.path.split("/", 2)[2] if request.path.count("/") >= 2 else ""
    await _redirect(f"http://127.0.0.1:{request.extra['decoy_port']}/{suffix}", writer)


async def empty_200(request: Request, writer: Writer) -> None:
    content_type, _ = normal_body(request)
    await answer_json(writer, 200, b"", content_type)


async def html_error(request: Request, writer: Writer) -> None:
    page = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
    await answer_json(writer, 502, page, "text/html")


async def duplicate_keys(request: Request, writer: Writer) -> None:
    content_type, body = normal_body(request)
    # a stale "model" key written before the right one, as a hand-rolled encoder might
    body = body.replace(b'"model": ', b'"model": "stale/model", "model": ')
    await answer_json(writer, 200, body, content_type)


async def numbers_as_strings(request: Request, writer: Writer) -> None:
    content_type, body = normal_body(request)
    for name in (b"prompt_tokens", b"completion_tokens", b"total_tokens", b"created", b"index"):
        for value in (b"5", b"2", b"7", b"1764547200", b"0", b"1"):
            body = body.replace(b'"' + name + b'": ' + value + b",", b'"' + name + b'": "' + value + b'",')
            body = body.replace(b'"' + name + b'": ' + value + b"}", b'"' + name + b'": "' + value + b'"}')
    await answer_json(writer, 200, body, content_type)


async def deep_json(request: Request, writer: Writer) -> None:
    depth = 100_000
    deep = b"[" * depth + b"]" * depth
    if request.stream:
        await answer_json(writer, 200, b"data: " + deep + b"\n\ndata: [DONE]\n\n", "text/event-stream")
    else:
        await answer_json(writer, 200, deep)


async def huge_headers(request: Request, writer: Writer) -> None:
    content_type, body = normal_body(request)
    pads = [(f"X-Pad-{index}", "p" * 1000) for index in range(1024)]
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
        *pads,
    ]
    await send(writer, head(200, headers) + body)


async def no_content_204(request: Request, writer: Writer) -> None:
    await send(writer, head(204, {"Connection": "close"}))


async def immediate_close(request: Request, writer: Writer) -> None:
    writer.close()


async def echo_key_401(request: Request, writer: Writer) -> None:
    """A 401 that quotes the credential back: plain, base64, URL-encoded, and in a header."""
    authorization = request.headers.get("authorization", "")
    key = authorization.partition(" ")[2] or authorization
    body = json.dumps(
        {
            "error": {
                "message": f"Incorrect API key provided: {key}",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
                "param": None,
            },
            "echo": {
                "authorization": authorization,
                "b64": base64.b64encode(key.encode()).decode(),
                "b64_header": base64.b64encode(authorization.encode()).decode(),
                "urlencoded": quote(key, safe=""),
                "query": f"/v1/models?api_key={quote(key, safe='')}",
            },
        }
    ).encode()
    await send(
        writer,
        head(
            401,
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "WWW-Authenticate": f'Bearer realm="gw", error="invalid_token", token="{key}"',
                "X-Echo-Authorization": authorization,
                "Connection": "close",
            },
        )
        + body,
    )


#: behaviour -> (scope, function)
BEHAVIOURS: dict[str, tuple[str, Behaviour]] = {
    "hang_before_headers": ("chat", hang_before_headers),
    "hang_mid_stream": ("chat", hang_mid_stream),
    "endless_chunks": ("chat", endless_chunks),
    "endless_models": ("models", endless_models),
    "body_100mb": ("chat", body_100mb),
    "sse_line_100mb": ("chat", sse_line_100mb),
    "invalid_utf8": ("chat", invalid_utf8),
    "garbage_sse": ("chat", garbage_sse),
    "no_blank_lines": ("chat", no_blank_lines),
    "reset_mid_body": ("chat", reset_mid_body),
    "drip": ("chat", drip),
    "wrong_content_type": ("chat", wrong_content_type),
    "broken_chunked": ("chat", broken_chunked),
    "redirect_offhost": ("all", redirect_offhost),
    "redirect_loopback": ("all", redirect_loopback),
    "empty_200": ("chat", empty_200),
    "html_error": ("chat", html_error),
    "duplicate_keys": ("chat", duplicate_keys),
    "numbers_as_strings": ("chat", numbers_as_strings),
    "deep_json": ("chat", deep_json),
    "huge_headers": ("chat", huge_headers),
    "no_content_204": ("chat", no_content_204),
    "immediate_close": ("chat", immediate_close),
    "echo_key_401": ("all", echo_key_401),
}


# -- the server ------------------------------------------------------------------------------------


class HostileServer:
    def __init__(self, log_path: Path) -> None:
        self.log = log_path.open("a", buffering=1, encoding="utf-8")
        self.decoy_port = 0
        self.logged = 0

    def record(self, **entry: Any) -> None:
        if self.logged < 100_000:
            self.logged += 1
            self.log.write(json.dumps({"t": time.time(), **entry}) + "\n")

    async def read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            return None
        lines = raw.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.rpartition(" ")[0] or rest
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) <= 8 * 1024 * 1024:
            with contextlib.suppress(asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                body = await asyncio.wait_for(reader.readexactly(int(length)), 30)
        request = Request(method=method, path=path.split("?")[0], headers=headers, body=body)
        if request.path.endswith("/chat/completions"):
            request.route = "chat"
        elif request.path.endswith("/models"):
            request.route = "models"
        else:
            request.route = "other"
        with contextlib.suppress(ValueError, RecursionError):
            parsed = json.loads(body) if body else {}
            if isinstance(parsed, dict):
                request.stream = parsed.get("stream") is True
                options = parsed.get("stream_options")
                request.include_usage = isinstance(options, dict) and options.get("include_usage") is True
                if isinstance(parsed.get("model"), str):
                    request.model = parsed["model"]
        return request

    async def handle(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        port = writer.get_extra_info("sockname")[1]
        peer = writer.get_extra_info("peername")
        try:
            request = await self.read_request(reader)
            if request is None:
                return
            decoy = port == self.decoy_port
            segments = request.path.strip("/").split("/")
            request.behaviour = "" if decoy else segments[0]
            request.extra["decoy_port"] = self.decoy_port
            self.record(
                port=port, decoy=decoy, peer=str(peer), behaviour=request.behaviour, method=request.method,
                route=request.route, stream=request.stream,
            )  # fmt: skip
            scope, behaviour = BEHAVIOURS.get(request.behaviour, ("", correct))
            applies = scope == "all" or scope == request.route
            await (behaviour if applies else correct)(request, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    server = HostileServer(args.log)
    main_server = await asyncio.start_server(server.handle, "127.0.0.1", 0, limit=1024 * 1024, backlog=512)
    decoy = await asyncio.start_server(server.handle, "127.0.0.1", 0, limit=1024 * 1024)
    port = main_server.sockets[0].getsockname()[1]
    server.decoy_port = decoy.sockets[0].getsockname()[1]
    args.port_file.write_text(json.dumps({"port": port, "decoy_port": server.decoy_port}))
    async with main_server, decoy:
        await asyncio.gather(main_server.serve_forever(), decoy.serve_forever())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    sys.exit(0)
