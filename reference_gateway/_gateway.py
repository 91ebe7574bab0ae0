"""The chat completions pipeline: from an HTTP request to a provider and back.

The steps, in order, each able to stop the request with a :class:`GatewayError`:

1. authenticate the key (D14; the inactive key is refused here, before the body is read);
2. read the body within the size limit (D17) and parse it within the depth limit (D6 ``invalid_json``);
3. validate it against the spec, the message limit and the Edgee headers (D6, D7, D18);
4. route the model (D15) and check the key may use it (D14);
5. check the Edge Tool fields: the ids the key activated (D5, D35), a pending turn restored
   into the history (D4, D37);
   then compress the messages when the request or the key's default asks for it (D30, D31);
6. call the provider through its adapter and map its failures (D16), dropping the call if the
   client leaves before the provider answers (nobody would read it, so nobody is billed);
   with Edge Tools in play, ``_edge_loop`` makes one such call per round (D36, D38);
7. answer with the translated response or relay the stream (D9, D19), with
   ``X-Edgee-Provider`` on everything that reached the provider (D20).

The Edgee per-request fields (``compression``, ``debug``, and the Edge Tool ones) are put on
``call.extras`` by the step that decides them and emitted once, at the end (D1). Every request
that reaches a handler, served or refused, leaves one line in the request log (D34), under the
same ``request_id`` as its ``debug`` object.

``POST /v1/compress`` shares steps 1-3 and the compression step, and answers without a model call.

The active fault (``_faults``) is consulted at each of its hooks; with no fault every
hook is the identity.

Steps 2 and 3 are CPU work proportional to the body; for a large body they run on a worker
thread, so a 4 MiB request does not hold up every other connection (health probes included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
import jsonschema_rs
from httpx_sse import EventSource, aconnect_sse
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive

from gateproof.openapi import PROVIDER_HEADER, Validators, count_chat_prompt, is_edgee_header
from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._auth import Keyring, Principal
from gateproof.reference_gateway._body import parse_body
from gateproof.reference_gateway._call import ChatCall
from gateproof.reference_gateway._compression_report import (
    chat_compression,
    compress_body,
    compression_wanted,
    reported_ms,
)
from gateproof.reference_gateway._config import ConfigError, GatewayConfig
from gateproof.reference_gateway._debug import debug_builder
from gateproof.reference_gateway._edge_loop import EdgeLoop, EdgeTools
from gateproof.reference_gateway._edge_tools import CORRECT_RULES
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._events import StreamItem, encode_json
from gateproof.reference_gateway._faults import Fault
from gateproof.reference_gateway._request_log import RequestLog, RequestRecord, bounded_tags
from gateproof.reference_gateway._routing import Router
from gateproof.reference_gateway._streaming import EventStreamResponse, encode_stream, relay
from gateproof.reference_gateway._trace import RequestTrace
from gateproof.reference_gateway._usage import Usage
from gateproof.reference_gateway._validation import RequestValidator
from gateproof.reference_gateway.compression import Compression, compress_messages
from gateproof.reference_gateway.providers import (
    CORRECT_TRANSLATION,
    ProviderAdapter,
    UpstreamFormatError,
    adapter_for,
)

__all__ = ["CHAT_PATH", "COMPRESS_PATH", "PROVIDER_HEADER", "Gateway"]

logger = logging.getLogger("gateproof.gateway")

#: the two request paths this pipeline serves (the app routes them here)
CHAT_PATH = "/v1/chat/completions"
COMPRESS_PATH = "/v1/compress"
#: top-level fields that mark the Anthropic (``system``) and Responses (``input``) bodies Edgee's
#: ``/v1/compress`` also reads; this gateway compresses chat completions bodies only (D33)
_OTHER_FORMAT_FIELDS = ("system", "input")
#: a tool result that every compression strategy looks at, compressed once at start-up
_WARM_UP = [{"role": "tool", "tool_call_id": "warm", "content": "\x1b[0mok\nok\nok\nok\n"}]

#: the most of an upstream error body the gateway reads before quoting it
_MAX_ERROR_BODY = 64 * 1024
#: bodies at least this large are parsed and validated on a worker thread: below it the work
#: (~1.5 ms at 64 KiB) costs less than waiting for the thread hop would save other requests
OFF_LOOP_BYTES = 64 * 1024
#: at most this many bodies are parsed at once on worker threads; they share one GIL, so more
#: would only slow each other down while the loop waits for its turn
_PARSE_THREADS = 2
#: the status logged when the client left before its answer was ready (nginx's "client closed request");
#: the client never sees it
CLIENT_CLOSED = 499

_T = TypeVar("_T")


@dataclass
class _Seen:
    """What is known of a request so far, for its request log line if it is refused part way."""

    endpoint: str
    key: str | None = None
    model: Any = None
    stream: bool = False
    tags: tuple[str, ...] = ()


class Gateway:
    """One gateway instance: its config, keys, routes, adapters, fault and upstream client."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        fault: Fault,
        validators: Validators,
        compiled: jsonschema_rs.Validator | None = None,
    ) -> None:
        self.config = config
        self.fault = fault
        self._limits = config.limits
        self._keyring = Keyring(config.keys)
        self._router = Router(config.models, config.providers)
        self._validator = RequestValidator(validators, compiled, max_messages=config.limits.max_messages)
        self._parsers: anyio.CapacityLimiter | None = None
        try:
            rules = fault.on_translation(CORRECT_TRANSLATION)
            self._adapters = {
                name: adapter_for(provider, rules) for name, provider in config.providers.items()
            }
        except ConfigError as exc:
            raise ConfigError(f"{config.source}: {exc}") from None
        self._client: httpx.AsyncClient | None = None
        self.request_log = RequestLog(config.request_log)
        self._edge = EdgeTools(rules=fault.on_edge(CORRECT_RULES))

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the one pooled upstream client this gateway uses for every provider."""
        limits = self._limits
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(limits.provider_timeout_s, connect=limits.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=limits.max_upstream_connections,
                max_keepalive_connections=limits.max_upstream_connections,
            ),
            trust_env=False,
            follow_redirects=False,
        )
        self._parsers = anyio.CapacityLimiter(_PARSE_THREADS)
        self.request_log.open()
        # The tokenizer loads on first use (~0.1 s): load it now, so the first compressed request's
        # time_ms measures compression, not start-up.
        await anyio.to_thread.run_sync(compress_messages, _WARM_UP)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.request_log.close()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the gateway has not been started (no lifespan?)")
        return self._client

    # -- POST /v1/chat/completions -----------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response | EventStreamResponse:
        provider: str | None = None
        trace = RequestTrace()
        # what the request log can say about a request refused part way
        seen = _Seen(endpoint=CHAT_PATH)
        try:
            principal, raw, body = await self._received(request, seen)
            options = self._validator.options(body, request.headers)
            seen.tags = options.tags
            route = self._router.route(body["model"])
            principal.check_model(route.model_id)
            body, edge_tools = self._edge.admit(body, principal)
            compressed: Compression | None = None
            if compression_wanted(options.compression, principal.compression):
                body, compressed = await self._compress(body, len(raw), trace)
            call = ChatCall(
                body=body,
                route=route,
                edgee_headers={k: v for k, v in request.headers.items() if is_edgee_header(k)},
                tags=options.tags,
                client_authorization=request.headers.get("authorization"),
                debug=options.debug,
                edge_tools=edge_tools,
                trace=trace,
            )
            self._plan_extras(call, compressed)
            adapter = self._adapters[route.provider.name]
            provider = adapter.name
            if call.stream:
                return await self._stream(call, adapter, principal, request.receive)
            return await self._complete(call, adapter, principal, request.receive)
        except GatewayError as error:
            self._record(trace, seen, error.status, provider=provider, error=error.code)
            return self.error_response(error, provider=provider)
        except Exception:
            self._record(trace, seen, 500, provider=provider, error="internal_error")
            raise

    async def _received(self, request: Request, seen: _Seen) -> tuple[Principal, bytes, Any]:
        """Steps 1-3 for both routes: the key, the raw body, the body parsed and checked.

        What is learnt on the way goes into ``seen``, so a request refused part way is still
        logged with its key and model.
        """
        principal = self._authenticate(request.headers.get("authorization"))
        seen.key = principal.name
        raw = await self._read_body(request)
        if len(raw) < OFF_LOOP_BYTES:
            body = self._admit(raw)
        else:
            body = await anyio.to_thread.run_sync(self._admit, raw, limiter=self._parsers)
        seen.model, seen.stream = body["model"], body.get("stream") is True
        return principal, raw, body

    async def _compress(
        self, body: dict[str, Any], size: int, trace: RequestTrace
    ) -> tuple[dict[str, Any], Compression]:
        """``body`` with its messages compressed (D30, D31); a large body is compressed on a worker thread."""
        began = time.monotonic()
        if size < OFF_LOOP_BYTES:
            result = compress_messages(body["messages"])
        else:
            result = await anyio.to_thread.run_sync(
                compress_messages, body["messages"], limiter=self._parsers
            )
        trace.compression_s = time.monotonic() - began
        trace.compression = result
        return {**body, "messages": result.messages}, result

    def _plan_extras(self, call: ChatCall, compressed: Compression | None) -> None:
        """Register the ``compression`` (D3: whenever it ran) and ``debug`` (D8: when asked) fields."""
        if compressed is not None:
            body = call.body

            def forwarded() -> int:
                return count_chat_prompt(body["messages"], body.get("tools") or [])

            call.extras.defer("compression", chat_compression(compressed, call.route.model, forwarded))
        if call.debug:
            call.extras.defer("debug", debug_builder(call, compressed))

    # -- POST /v1/compress ----------------------------------------------------------------------------------

    async def compress(self, request: Request) -> Response:
        """D33: the chat body with its messages compressed as chat would forward them; no model call."""
        trace = RequestTrace()
        seen = _Seen(endpoint=COMPRESS_PATH)
        try:
            _, raw, body = await self._received(request, seen)
            for name in _OTHER_FORMAT_FIELDS:
                if name in body:
                    raise _errors.invalid_request(
                        name,
                        f"This gateway compresses chat completions bodies only; remove the top-level {name!r}",
                    )
            seen.tags = self._validator.options(body, request.headers).tags
            if len(raw) < OFF_LOOP_BYTES:
                answer, result = _compressed_answer(body)
            else:
                answer, result = await anyio.to_thread.run_sync(
                    _compressed_answer, body, limiter=self._parsers
                )
            trace.compression = result
            self._record(trace, seen, 200)
            return Response(encode_json(self.fault.on_compress(answer)), media_type="application/json")
        except GatewayError as error:
            self._record(trace, seen, error.status, error=error.code)
            return self.error_response(error)
        except Exception:
            self._record(trace, seen, 500, error="internal_error")
            raise

    def error_response(self, error: GatewayError, *, provider: str | None = None) -> Response:
        """An error as the client sees it: the D13 envelope (unless a fault says otherwise)."""
        rendered = self.fault.render_error(error)
        headers = dict(rendered.headers)
        if provider is not None:
            headers[PROVIDER_HEADER] = provider
            headers = self.fault.on_headers(headers, False)
        return Response(
            rendered.content(), status_code=rendered.status, headers=headers, media_type=rendered.media_type
        )

    def _authenticate(self, authorization: str | None) -> Principal:
        outcome: Principal | GatewayError
        try:
            outcome = self._keyring.authenticate(authorization)
        except GatewayError as error:
            outcome = error
        outcome = self.fault.on_auth(outcome)
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome

    async def _read_body(self, request: Request) -> bytes:
        limit = self._limits.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _errors.body_too_large(limit)
        received = bytearray()
        try:
            async for piece in request.stream():
                received += piece
                if len(received) > limit:
                    raise _errors.body_too_large(limit)
        except ClientDisconnect:
            # Nobody will read this answer; it only keeps the disconnect out of the error log.
            raise _errors.invalid_request(None, "The client went away while sending the body") from None
        return bytes(received)

    def _admit(self, raw: bytes) -> Any:
        """Parse (D6 ``invalid_json``), let the fault see the body, then check it (D6, D12, D18).

        Plain CPU work with no awaits, so the caller may run it on a worker thread.
        """
        body = parse_body(raw, max_depth=self._limits.max_json_depth)
        if isinstance(body, dict):
            body = self.fault.on_request(body)
        self._validator.check_body(body)
        return body

    # -- one upstream call ---------------------------------------------------------------------------------

    async def _complete(
        self, call: ChatCall, adapter: ProviderAdapter, principal: Principal, receive: Receive
    ) -> Response:
        started = time.monotonic()
        loop = self._edge.loop(call, principal)
        if loop is None:
            answered = await self._answer(call, adapter, receive)
        else:
            # D4: the Edge Tool rounds, each one upstream call like the one above
            answered = await loop.complete(lambda round_call: self._answer(round_call, adapter, receive))
        if answered is None:
            return self._client_left(call, principal, started)
        body = answered
        usage = Usage.from_edgee(body.get("usage"))
        self._account(call, principal, usage, started)
        # D1: the Edgee per-request fields join the body (before a fault may rewrite it)
        body.update(call.extras.render(usage))
        self._record_call(call, principal, 200, usage=usage)
        body = self.fault.on_response(body)
        headers = self.fault.on_headers({PROVIDER_HEADER: adapter.name}, False)
        return Response(encode_json(body), headers=headers, media_type="application/json")

    async def _answer(
        self, call: ChatCall, adapter: ProviderAdapter, receive: Receive
    ) -> dict[str, Any] | None:
        """One upstream call's translated answer; None when the client left first (the call is dropped)."""
        upstream = self.fault.on_upstream(adapter.build_request(call), call)
        started = time.monotonic()
        timeout = self._limits.provider_timeout_s

        async def post() -> httpx.Response:
            return await self.client.post(upstream.url, json=upstream.json, headers=upstream.headers)

        try:
            with anyio.fail_after(timeout):
                response = await _unless_client_leaves(receive, post)
        except (TimeoutError, httpx.TimeoutException):
            raise _errors.provider_timeout(adapter.name, timeout) from None
        except httpx.HTTPError as exc:
            raise _errors.provider_error(
                adapter.name, f"could not be reached ({type(exc).__name__})"
            ) from None
        if response is None:
            return None
        call.trace.add_upstream(time.monotonic() - started, response.status_code)
        if not response.is_success:
            raise self._upstream_failure(adapter, response.status_code, response.headers, response.content)
        try:
            return adapter.translate_response(call, response.json())
        except (ValueError, UpstreamFormatError) as exc:
            detail = str(exc) if isinstance(exc, UpstreamFormatError) else "the response is not JSON"
            raise _errors.provider_error(adapter.name, f"answered with an unusable body: {detail}") from None

    async def _stream(
        self, call: ChatCall, adapter: ProviderAdapter, principal: Principal, receive: Receive
    ) -> Response | EventStreamResponse:
        started = time.monotonic()
        timeout = self._limits.provider_timeout_s
        resources = AsyncExitStack()
        loop = self._edge.loop(call, principal)
        # with Edge Tools in play the first round already offers them (D4)
        first = loop.round_call() if loop is not None else call
        connected = await self._connect_stream(first, adapter, resources, receive)
        if connected is None:
            return self._client_left(call, principal, started)
        source = connected

        def account(usage: Usage | None) -> None:
            # the provider's stream is over (completed or failed): its time is known now
            call.trace.add_upstream(time.monotonic() - started, None)
            if usage is not None:
                self._account(call, principal, usage, started)
                self._record_call(call, principal, 200, usage=usage)
            else:
                logger.info(
                    "chat model=%s key=%s stream=true failed mid-stream", call.route.model_id, principal.name
                )

        def failed(error: GatewayError) -> None:
            self._record_call(call, principal, error.status, error=error.code)

        async def close() -> None:
            await resources.aclose()
            # neither completed nor failed: the client went away mid-stream
            self._record_call(call, principal, CLIENT_CLOSED, error="client_closed")

        if loop is None:
            items = relay(
                source,
                adapter.stream_decoder(call),
                model_id=call.route.model_id,
                provider=adapter.name,
                timeout_s=timeout,
                include_usage=call.include_usage,
                on_usage=account,
                extras=call.extras,
                on_failure=failed,
            )
        else:
            items = self._edge_stream(loop, first, source, adapter, resources, account, failed)
        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            PROVIDER_HEADER: adapter.name,
        }
        return EventStreamResponse(
            self.fault.on_frames(encode_stream(self.fault.on_stream(items))),
            headers=self.fault.on_headers(headers, True),
            on_close=close,
        )

    async def _connect_stream(
        self, call: ChatCall, adapter: ProviderAdapter, resources: AsyncExitStack, receive: Receive | None
    ) -> EventSource | None:
        """Open one upstream stream inside ``resources`` (all closed here if it fails).

        None when the client left before the provider's headers arrived (``receive`` given:
        until then nothing else watches the client; after that, EventStreamResponse does).
        """
        upstream = self.fault.on_upstream(adapter.build_request(call), call)
        # A compressed upstream stream would arrive in compressor-sized bursts, not event by event.
        request_headers = {**upstream.headers, "Accept-Encoding": "identity"}
        timeout = self._limits.provider_timeout_s

        async def connect() -> EventSource:
            return await resources.enter_async_context(
                aconnect_sse(self.client, "POST", upstream.url, json=upstream.json, headers=request_headers)
            )

        try:
            connected = await (connect() if receive is None else _unless_client_leaves(receive, connect))
            if connected is None:
                await resources.aclose()
                return None
            source = connected
            response = source.response
            call.trace.add_upstream(0.0, response.status_code)
            if not response.is_success:
                content = await _read_some(response, _MAX_ERROR_BODY)
                raise self._upstream_failure(adapter, response.status_code, response.headers, content)
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                raise _errors.provider_error(
                    adapter.name, f"answered a stream with Content-Type {content_type or 'none'!r}"
                )
        except httpx.TimeoutException:
            await resources.aclose()
            raise _errors.provider_timeout(adapter.name, timeout) from None
        except httpx.HTTPError as exc:
            await resources.aclose()
            raise _errors.provider_error(
                adapter.name, f"could not be reached ({type(exc).__name__})"
            ) from None
        except BaseException:
            await resources.aclose()
            raise
        return source

    def _edge_stream(
        self,
        loop: EdgeLoop,
        first: ChatCall,
        source: EventSource,
        adapter: ProviderAdapter,
        resources: AsyncExitStack,
        on_usage: Callable[[Usage | None], None],
        on_failure: Callable[[GatewayError], None],
    ) -> AsyncIterator[StreamItem]:
        """The client stream over every Edge Tool round (D38): each round one upstream stream."""

        def round_items(round_call: ChatCall, round_source: EventSource) -> AsyncIterator[StreamItem]:
            return relay(
                round_source,
                adapter.stream_decoder(round_call),
                model_id=round_call.route.model_id,
                provider=adapter.name,
                timeout_s=self._limits.provider_timeout_s,
                include_usage=False,
                on_usage=loop.round_usage,
                on_failure=on_failure,
            )

        async def open_round(round_call: ChatCall) -> AsyncIterator[StreamItem]:
            opened = await self._connect_stream(round_call, adapter, resources, None)
            assert opened is not None  # without ``receive`` there is no early return
            return round_items(round_call, opened)

        return loop.stream(
            round_items(first, source),
            open_round,
            include_usage=first.include_usage,
            on_usage=on_usage,
            on_failure=on_failure,
        )

    def _upstream_failure(
        self, adapter: ProviderAdapter, status: int, headers: httpx.Headers, content: bytes
    ) -> GatewayError:
        """D16: what the client is told when the provider answered with an error status."""
        status = adapter.upstream_status(status)
        if status == 429:
            return _errors.provider_rate_limited(adapter.name, adapter.retry_after(headers, content))
        if status in (401, 403):
            return _errors.provider_error(adapter.name, f"refused the gateway's credential (HTTP {status})")
        if 400 <= status < 500:
            return _errors.provider_rejected(adapter.name, adapter.error_message(content))
        return _errors.provider_error(adapter.name, f"HTTP {status}: {adapter.error_message(content)}")

    def _client_left(self, call: ChatCall, principal: Principal, started: float) -> Response:
        """The client hung up before the provider answered: the call was dropped, nothing is billed."""
        logger.info(
            "chat model=%s key=%s stream=%s tags=%s client went away after %d ms; upstream call cancelled, not billed",
            call.route.model_id,
            principal.name,
            str(call.stream).lower(),
            ",".join(call.tags) or "-",
            round((time.monotonic() - started) * 1000),
        )
        self._record_call(call, principal, CLIENT_CLOSED, error="client_closed")
        return Response(status_code=CLIENT_CLOSED)

    def _record_call(
        self,
        call: ChatCall,
        principal: Principal,
        status: int,
        *,
        usage: Usage | None = None,
        error: str | None = None,
    ) -> None:
        seen = _Seen(
            endpoint=CHAT_PATH,
            key=principal.name,
            model=call.route.model_id,
            stream=call.stream,
            tags=call.tags,
        )
        cost = usage.cost_micro_usd(call.route.model) if usage is not None else None
        self._record(
            call.trace, seen, status, provider=call.route.provider.name, usage=usage, error=error, cost=cost
        )

    def _record(
        self,
        trace: RequestTrace,
        seen: _Seen,
        status: int,
        *,
        provider: str | None = None,
        usage: Usage | None = None,
        error: str | None = None,
        cost: int | None = None,
    ) -> None:
        """The request's one line in the structured request log (D34); later calls are ignored."""
        if trace.recorded:
            return
        trace.recorded = True
        compression = trace.compression
        record = RequestRecord(
            request_id=trace.request_id,
            endpoint=seen.endpoint,
            key=seen.key,
            model=seen.model if isinstance(seen.model, str) else None,
            provider=provider,
            stream=seen.stream,
            status=status,
            latency_ms=trace.elapsed_ms(),
            error=error,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
            cost_micro_usd=cost,
            compression=(
                {
                    "saved_tokens": max(0, compression.saved_tokens),
                    "time_ms": reported_ms(compression.time_ms),
                }
                if compression is not None
                else None
            ),
            tags=bounded_tags(seen.tags),
        )
        self.request_log.write(self.fault.on_log(record))

    def _account(self, call: ChatCall, principal: Principal, usage: Usage, started: float) -> None:
        """One line per completed request: who, what, how many tokens, what it cost."""
        logger.info(
            "chat model=%s provider=%s key=%s stream=%s prompt_tokens=%d completion_tokens=%d "
            "cost_micro_usd=%d tags=%s ms=%d",
            call.route.model_id,
            call.route.provider.name,
            principal.name,
            str(call.stream).lower(),
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cost_micro_usd(call.route.model),
            ",".join(call.tags) or "-",
            round((time.monotonic() - started) * 1000),
        )


def _compressed_answer(body: dict[str, Any]) -> tuple[dict[str, Any], Compression]:
    """Compress and count (CPU work, no awaits: the caller may run it on a worker thread)."""
    result = compress_messages(body["messages"])
    return compress_body(body, result, body.get("tools") or []), result


async def _unless_client_leaves(receive: Receive, work: Callable[[], Awaitable[_T]]) -> _T | None:
    """``work()``'s result, or None when the client disconnected first (``work`` is then cancelled).

    Only for use once the request body has been read: from then on the only message
    ``receive`` can bring is ``http.disconnect`` (or, once the answer is sent, nothing).
    """
    result: list[_T] = []
    failure: Exception | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            result.append(await work())
        except Exception as exc:  # re-raised below as itself, not wrapped in an ExceptionGroup
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result[0] if result else None


async def _read_some(response: httpx.Response, limit: int) -> bytes:
    received = bytearray()
    async for piece in response.aiter_bytes():
        received += piece
        if len(received) >= limit:
            break
    return bytes(received[:limit])
