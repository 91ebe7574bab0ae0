"""The stream path's shortcuts say and send exactly what the long way did.

Three things were made cheaper for the first token (issue 11): the SSE decoder reads a piece of
whole one-line ``data:`` events without walking it line by line; the relay writes the events one
upstream read brought in one write; and ``POST /v1/chat/completions`` skips starlette's layers.
Each test here holds one of them to the slower way it replaced: the same events, the same bytes
in the same order (and never one held while the provider is awaited), the same answers.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from httpx_sse._decoders import SSEDecoder as ReferenceDecoder
from httpx_sse._decoders import SSELineDecoder
from starlette.applications import Starlette
from starlette.routing import Mount

from gateproof.reference_gateway._app import create_app
from gateproof.reference_gateway._call import ChatCall
from gateproof.reference_gateway._config import default_config_path, parse_config
from gateproof.reference_gateway._events import DONE as DONE_ITEM
from gateproof.reference_gateway._events import StreamItem
from gateproof.reference_gateway._hooks import Hooks
from gateproof.reference_gateway._routing import Router
from gateproof.reference_gateway._sse import EventSource, SSEDecoder
from gateproof.reference_gateway._streaming import Backlog, encode_stream, relay
from gateproof.reference_gateway._upstream import UpstreamResponse
from gateproof.reference_gateway.providers.openai import OpenAIAdapter

# -- the SSE decoder's whole-event pieces ----------------------------------------------------------------

#: events as providers write them (one per write, or a few per read), and some the fast path must refuse
BLOCKS = [
    b'data: {"a": 1}\n\n',
    b"data:no space\n\n",
    b"data:  two spaces\n\n",
    b"data: \n\n",
    b"data: caf\xc3\xa9 \xe2\x82\xac\n\n",
    b"data: [DONE]\n\n",
    b"id: 7\ndata: with an id\n\n",
    b"id: 8\n\n",
    b"\n\n",
    b"data: one\ndata: two\n\n",
    b"event: message_start\ndata: {}\n\n",
    b": comment\n\n",
    b"retry: 3000\ndata: r\n\n",
    b"data: crlf\r\n\r\n",
    b"data\n\n",
]


def _reference(stream: bytes) -> list[tuple[str, str, str, int | None]]:
    """What httpx_sse (the decoder the gateway used before its own) makes of the whole stream."""
    lines, events = SSELineDecoder(), ReferenceDecoder()
    out = []
    for line in [*lines.decode(stream.decode("utf-8")), *lines.flush()]:
        event = events.decode(line)
        if event is not None:
            out.append((event.event, event.data, event.id, event.retry))
    return out


def test_pieces_of_whole_events_decode_as_httpx_sse_decodes_them() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        blocks = [rng.choice(BLOCKS) for _ in range(rng.randint(1, 8))]
        # cut only between events, as a provider's writes arrive: one or several whole events per piece
        cuts = sorted(rng.sample(range(1, len(blocks)), rng.randint(0, len(blocks) - 1)))
        pieces = [b"".join(blocks[a:b]) for a, b in zip([0, *cuts], [*cuts, len(blocks)], strict=True)]
        decoder = SSEDecoder()
        ours = [(e.event, e.data, e.id, e.retry) for piece in pieces for e in decoder.feed(piece)]
        assert ours == _reference(b"".join(blocks)), pieces


def test_invalid_utf8_in_a_whole_event_is_replaced_as_line_by_line() -> None:
    class LineByLine(SSEDecoder):
        def _data_events(self, piece: bytes) -> None:
            return None

    piece = b"data: \xff\xfe half \xe2\x82\n\ndata: ok\n\n"
    assert [e.data for e in SSEDecoder().feed(piece)] == [e.data for e in LineByLine().feed(piece)]
    assert SSEDecoder().feed(piece)[0].data == "\ufffd\ufffd half \ufffd"


# -- one write for what one read brought ------------------------------------------------------------------

_HEAD = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",'
    '"system_fingerprint":"fp","choices":[{"index":0,"delta":'
)


def _event(delta: str, finish: str = "null") -> bytes:
    return f'data: {_HEAD}{delta},"logprobs":null,"finish_reason":{finish}}}],"usage":null}}\n\n'.encode()


ROLE = _event('{"role":"assistant","content":""}')
FIRST = _event('{"content":"Hello"}')
SECOND = _event('{"content":" there"}')
FINISH = _event("{}", '"stop"')
USAGE = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",'
    b'"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
)
DONE = b"data: [DONE]\n\n"


class _Body:
    """Stands in for an upstream answer: its body in the pieces given, waiting at each event."""

    def __init__(self, pieces: list[bytes | asyncio.Event]) -> None:
        self._pieces = pieces

    async def pieces(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, asyncio.Event):
                await piece.wait()
            else:
                yield piece


def _relay(
    pieces: list[bytes | asyncio.Event], *, include_usage: bool, backlog: Backlog | None
) -> AsyncIterator[StreamItem]:
    """The gateway's relay of an OpenAI stream whose body arrives in ``pieces``."""
    config = _config()
    call = ChatCall(
        body={"stream": True}, route=Router(config.models, config.providers).route("openai/gpt-4o")
    )
    return relay(
        EventSource(cast(UpstreamResponse, _Body(pieces))),
        OpenAIAdapter(config.providers["openai"]).stream_decoder(call),
        model_id="openai/gpt-4o",
        provider="openai",
        timeout_s=5.0,
        include_usage=include_usage,
        on_usage=lambda usage: None,
        backlog=backlog,
    )


def _frames(pieces: list[bytes | asyncio.Event], *, batched: bool) -> AsyncIterator[bytes]:
    backlog = Backlog() if batched else None
    return encode_stream(_relay(pieces, include_usage=True, backlog=backlog), backlog)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


async def _all(frames: AsyncIterator[bytes]) -> list[bytes]:
    return [frame async for frame in frames]


def _events(frame: bytes) -> list[str]:
    return [block for block in frame.decode().split("\n\n") if block]


def test_events_of_one_read_leave_in_one_write_and_the_bytes_are_the_same() -> None:
    pieces: list[bytes | asyncio.Event] = [ROLE + FIRST, SECOND, FINISH + USAGE + DONE, b""]
    batched = _run(_all(_frames(pieces, batched=True)))
    one_by_one = _run(_all(_frames(pieces, batched=False)))
    assert b"".join(batched) == b"".join(one_by_one)
    # role, two contents, finish, the closing usage chunk, [DONE] (the provider's usage chunk is held)
    assert [len(_events(frame)) for frame in one_by_one] == [1, 1, 1, 1, 1, 1]
    # the role chunk and the first content chunk together; the finish, the usage chunk and [DONE] together
    assert [len(_events(frame)) for frame in batched] == [2, 1, 3]
    assert '"content":"Hello"' in batched[0].decode() and batched[-1].endswith(DONE)


def test_no_frame_waits_for_the_provider() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        frames = _frames([ROLE + FIRST, gate, SECOND, FINISH + USAGE + DONE], batched=True)
        first = await asyncio.wait_for(frames.__anext__(), 5)
        # out before the next piece came: what was in hand went, nothing waited for more
        assert not gate.is_set()
        assert len(_events(first)) == 2
        gate.set()
        rest = await _all(frames)
        assert [len(_events(frame)) for frame in rest] == [1, 3]

    _run(scenario())


def test_a_failure_in_a_read_ends_the_write_of_that_read() -> None:
    pieces: list[bytes | asyncio.Event] = [ROLE + FIRST + b"data: {not json\n\n" + SECOND]
    batched = _run(_all(_frames(pieces, batched=True)))
    one_by_one = _run(_all(_frames(pieces, batched=False)))
    assert b"".join(batched) == b"".join(one_by_one)
    (frame,) = batched
    events = _events(frame)
    assert len(events) == 3 and '"error"' in events[-1] and "[DONE]" not in frame.decode()


def test_items_are_the_same_with_or_without_a_backlog() -> None:
    async def items(backlog: Backlog | None) -> list[StreamItem]:
        pieces: list[bytes | asyncio.Event] = [ROLE + FIRST + SECOND, FINISH + USAGE + DONE]
        return [item async for item in _relay(pieces, include_usage=False, backlog=backlog)]

    with_backlog = _run(items(Backlog()))
    assert with_backlog == _run(items(None))
    assert len(with_backlog) == 5 and with_backlog[-1] is DONE_ITEM


# -- POST /v1/chat/completions without starlette's layers ---------------------------------------------


_KEY = "gp-stream-path-test-key"


def _config() -> Any:
    document = yaml.safe_load(Path(default_config_path()).read_text())
    return parse_config(document, source="default.yaml", env={"GATEPROOF_API_KEY": _KEY})


def _boom(body: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("an unexpected failure inside the gateway")


async def _post(app: Any, path: str, *, key: str | None, raise_errors: bool = False) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_errors)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.post(path, json=body, headers=headers)


def _answer(response: httpx.Response) -> tuple[int, str | None, Any]:
    return response.status_code, response.headers.get("content-type"), json.loads(response.content)


@pytest.mark.parametrize("key", [None, "gp-not-a-key"])
def test_a_refused_chat_request_is_answered_as_through_starlette(key: str | None) -> None:
    app = create_app(_config())
    # mounted under a prefix, the same app is reached through starlette's router
    mounted = Starlette(routes=[Mount("/gw", app=app)])
    direct = _run(_post(app, "/v1/chat/completions", key=key))
    routed = _run(_post(mounted, "/gw/v1/chat/completions", key=key))
    assert direct.status_code == 401
    assert _answer(direct) == _answer(routed)


def test_an_unexpected_exception_is_a_500_envelope_and_is_raised_as_through_starlette() -> None:
    app = create_app(_config(), hooks=Hooks(name="boom", request=_boom))
    mounted = Starlette(routes=[Mount("/gw", app=app)])
    direct = _run(_post(app, "/v1/chat/completions", key=_KEY))
    routed = _run(_post(mounted, "/gw/v1/chat/completions", key=_KEY))
    assert direct.status_code == 500
    assert _answer(direct) == _answer(routed)
    assert _answer(direct)[2]["error"]["code"] == "internal_error"
    for target, path in ((app, "/v1/chat/completions"), (mounted, "/gw/v1/chat/completions")):
        with pytest.raises(RuntimeError, match="unexpected failure"):
            _run(_post(target, path, key=_KEY, raise_errors=True))
