"""The chat completions pipeline: from an HTTP request to a provider and back.

The steps, in order, each able to stop the request with a :class:`GatewayError`:

1. authenticate the key (D14; the inactive key is refused here, before the body is read);
2. read the body within the size limit (D17) and parse it within the depth limit (D6 ``invalid_json``);
3. validate it against the spec, the message limit and the Edgee headers (D6, D7, D18);
4. route the model (D15) and check the key may use it (D14);
5. check the Edge Tool fields: the ids the key activated (D5, D35), a pending turn restored
   into the history (D4, D37);
   then compress the messages when the request or the key's default asks for it (D30, D31);
6. take one of the key's concurrency slots (D47: 429 ``concurrency_limit_exceeded`` when none
   is free, before any provider call), then call the provider through its adapter and map its
   failures (D16): until the first byte (the whole answer, or a stream's 200 headers) a failed
   attempt is retried on the same route or the model's fallbacks are tried, as ``_resilience``
   decides (D44), each attempt within the first-byte and whole-answer timeouts (D46); the call
   is dropped if the client leaves before the provider answers (nobody would read it, so
   nobody is billed); with Edge Tools in play, ``_edge_loop`` makes one such call per round
   (D36, D38);
7. answer with the translated response or relay the stream (D9, D19), with
   ``X-Edgee-Provider`` on everything that reached the provider (D20) and
   ``X-Edgee-Fallback-Used: true`` when a fallback answered (D44); after the first byte nothing
   is retried, and any upstream failure is one in-band error event without ``[DONE]`` (D45).

The Edgee per-request fields (``compression``, ``debug``, and the Edge Tool ones) are put on
``call.extras`` by the step that decides them and emitted once, at the end (D1). Every request
that reaches a handler, served or refused, leaves one line in the request log (D34), under the
same ``request_id`` as its ``debug`` object.

``POST /v1/compress`` shares steps 1-3 and the compression step, and answers without a model call.

The active hooks (``_hooks``: a self-test fault from ``gateproof.selftest``) are consulted at each seam; with none every
hook is the identity.

Steps 2 and 3 are CPU work proportional to the body; for a large body they run on a worker
thread, so a 4 MiB request does not hold up every other connection (health probes included).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import anyio
import jsonschema_rs
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive

from gateproof.openapi import (
    FALLBACK_HEADER,
    PROVIDER_HEADER,
    Validators,
    count_chat_prompt,
    is_edgee_header,
)
from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._auth import InFlight, Keyring, Principal, Slot
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
from gateproof.reference_gateway._events import StreamFailure, StreamItem, encode_json
from gateproof.reference_gateway._hooks import Hooks as Fault
from gateproof.reference_gateway._request_log import RequestLog, RequestRecord, bounded_tags
from gateproof.reference_gateway._resilience import (
    CORRECT_RESILIENCE,
    FailedAttempt,
    FailureClass,
    ResilienceRules,
    classify_exception,
    classify_status,
    run_attempts,
)
from gateproof.reference_gateway._routing import Route, Router
from gateproof.reference_gateway._sse import EventSource
from gateproof.reference_gateway._streaming import Backlog, EventStreamResponse, encode_stream, relay
from gateproof.reference_gateway._trace import RequestTrace
from gateproof.reference_gateway._upstream import (
    ConnectTimeout,
    PoolTimeout,
    UpstreamClient,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)
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
#: what a streamed upstream request asks for on top of the adapter's headers (as an SSE client asks)
_STREAM_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-store", "Accept-Encoding": "identity"}
#: bodies at least this large are parsed and validated on a worker thread: below it the work
#: (~1.5 ms at 64 KiB) costs less than waiting for the thread hop would save other requests
OFF_LOOP_BYTES = 64 * 1024
#: at most this many bodies are parsed at once on worker threads; they share one GIL, so more
#: would only slow each other down while the loop waits for its turn
_PARSE_THREADS = 2
#: the status logged when the client left before its answer was ready (nginx's "client closed request");
#: the client never sees it
CLIENT_CLOSED = 499
#: ``X-Edgee-Fallback-Used`` on an answer a fallback served (D44: Edgee's docs spell it ``true``)
FALLBACK_USED = "true"

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Connected:
    """An upstream stream whose 200 headers arrived: the call that opened it (on its route), the
    adapter of that route's provider, and its events."""

    source: EventSource
    adapter: ProviderAdapter
    call: ChatCall


def _served(call: ChatCall) -> Route:
    """The route that answered ``call`` (a fallback's, D44), or the requested one."""
    return call.trace.served_by or call.route


def _answered_headers(call: ChatCall) -> dict[str, str]:
    """D20 and D44: who answered (the last upstream call's provider), and whether a fallback answered
    any of the request's upstream calls (the header is absent otherwise).

    A stream's headers go out after its first upstream call, so there they tell of that call;
    with Edge Tools a later round may still fall back, which the headers can no longer say.
    """
    headers = {PROVIDER_HEADER: _served(call).provider.name}
    if call.trace.fallback_used:
        headers[FALLBACK_HEADER] = FALLBACK_USED
    return headers


def _describe(route: Route) -> str:
    return f"{route.served_model_id} via {route.provider.name}"


def _timed_out(adapter: ProviderAdapter, seconds: float) -> FailedAttempt:
    """No answer in time (D46): 504 ``provider_timeout``, and the next route is tried at once (D44)."""
    return FailedAttempt(_errors.provider_timeout(adapter.name, seconds), FailureClass.FALLBACK)


def _unreachable(adapter: ProviderAdapter, exc: UpstreamError) -> FailedAttempt:
    """The connection failed (refused, reset, cut short): 502, and usually worth one more try (D44)."""
    error = _errors.provider_error(adapter.name, f"could not be reached ({type(exc).__name__})")
    return FailedAttempt(error, classify_exception(exc))


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
        resilience: ResilienceRules = CORRECT_RESILIENCE,
    ) -> None:
        self.config = config
        self.fault = fault
        #: the retry and fallback policy (D44-D46); a self-test fault may hand in another
        self.resilience = resilience
        self._in_flight = InFlight()
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
        self._client: UpstreamClient | None = None
        self.request_log = RequestLog(config.request_log)
        self._edge = EdgeTools(rules=fault.on_edge(CORRECT_RULES))

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the one pooled upstream client this gateway uses for every provider."""
        self._client = UpstreamClient(max_connections=self._limits.max_upstream_connections)
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
    def client(self) -> UpstreamClient:
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
            # D47: a key over its concurrency is refused here, before any provider is called
            slot = self._in_flight.take(principal)
            try:
                if call.stream:
                    answer = await self._stream(call, principal, request.receive, slot)
                else:
                    answer = await self._complete(call, principal, request.receive)
            except BaseException:
                slot.release()
                raise
            if not isinstance(answer, EventStreamResponse):
                slot.release()  # a stream releases it when it ends
            return answer
        except GatewayError as error:
            # the provider of the last upstream attempt, if one was made (D20)
            if trace.served_by is not None:
                provider = trace.served_by.provider.name
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
        """An error as the client sees it: the D13 envelope (a fault may rewrite it on the wire)."""
        headers = dict(error.headers)
        if provider is not None:
            headers[PROVIDER_HEADER] = provider
        return Response(
            encode_json(error.envelope()),
            status_code=error.status,
            headers=headers,
            media_type="application/json",
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

    # -- upstream calls: retried and re-routed before the first byte (D44-D46) ------------------------------

    async def _complete(self, call: ChatCall, principal: Principal, receive: Receive) -> Response:
        started = time.monotonic()
        loop = self._edge.loop(call, principal)
        if loop is None:
            answered = await self._answer(call, receive)
        else:
            # D4: the Edge Tool rounds, each one upstream call like the one above
            answered = await loop.complete(lambda round_call: self._answer(round_call, receive))
        if answered is None:
            return self._client_left(call, principal, started)
        body = answered
        usage = Usage.from_edgee(body.get("usage"))
        self._account(call, principal, usage, started)
        # D1: the Edgee per-request fields join the body (before a fault may rewrite it)
        body.update(call.extras.render(usage))
        self._record_call(call, principal, 200, usage=usage)
        body = self.fault.on_response(body)
        headers = _answered_headers(call)
        return Response(encode_json(body), headers=headers, media_type="application/json")

    def _routes(self, call: ChatCall) -> tuple[Route, ...]:
        """The requested model's route, then its fallbacks (D44)."""
        return (call.route, *self._router.fallbacks(call.route))

    async def _attempts(
        self, call: ChatCall, receive: Receive | None, attempt: Callable[[ChatCall], Awaitable[_T]]
    ) -> _T | None:
        """``attempt`` on each route as D44 orders; None when the client left first (all dropped, D46)."""

        async def run() -> _T:
            def one(route: Route) -> Awaitable[_T]:
                on_route = call if route is call.route else replace(call, route=route)
                call.trace.attempts += 1
                call.trace.served_by = route
                return attempt(on_route)

            attempted = await run_attempts(self.resilience, self._routes(call), one, describe=_describe)
            if attempted.route.is_fallback:
                call.trace.fallback_used = True
            return attempted.result

        if receive is None or not self.resilience.cancel_on_disconnect:
            return await run()
        return await _unless_client_leaves(receive, run)

    async def _answer(self, call: ChatCall, receive: Receive) -> dict[str, Any] | None:
        """One upstream call's translated answer, retried or re-routed as D44 says; None when the client left."""
        return await self._attempts(call, receive, self._answer_once)

    async def _answer_once(self, call: ChatCall) -> dict[str, Any]:
        """One attempt without streaming: the whole answer within ``provider_timeout_s`` (D46); a
        failure is raised as a :class:`FailedAttempt`.

        No first-byte timeout here: a provider sends a non-streamed answer's headers only once the
        whole answer is generated, so its first byte comes as late as its last.
        """
        adapter = self._adapters[call.route.provider.name]
        upstream = self.fault.on_upstream(adapter.build_request(call), call)
        payload = _upstream_body(upstream.json)
        started = time.monotonic()
        limits = self._limits
        # every wait of the exchange (a free connection, connecting, the answer) ends by this deadline
        deadline = asyncio.get_running_loop().time() + limits.provider_timeout_s
        try:
            response = await self.client.post(
                upstream.url,
                upstream.headers,
                payload,
                connect_timeout=limits.connect_timeout_s,
                pool_timeout=limits.provider_timeout_s,
                read_timeout=limits.provider_timeout_s,
                deadline=deadline,
            )
            try:
                content = await response.read()
            finally:
                response.close()
        except (ConnectTimeout, PoolTimeout):
            raise _timed_out(adapter, limits.connect_timeout_s) from None
        except UpstreamTimeout:
            raise _timed_out(adapter, limits.provider_timeout_s) from None
        except UpstreamError as exc:
            raise _unreachable(adapter, exc) from None
        call.trace.add_upstream(time.monotonic() - started, response.status_code)
        if not response.is_success:
            raise self._failed_status(adapter, response.status_code, response.headers, content)
        try:
            return adapter.translate_response(call, json.loads(content))
        except (ValueError, UpstreamFormatError) as exc:
            detail = str(exc) if isinstance(exc, UpstreamFormatError) else "the response is not JSON"
            error = _errors.provider_error(adapter.name, f"answered with an unusable body: {detail}")
            raise FailedAttempt(error, FailureClass.FALLBACK) from None

    async def _stream(
        self, call: ChatCall, principal: Principal, receive: Receive, slot: Slot
    ) -> Response | EventStreamResponse:
        started = time.monotonic()
        idle = self._limits.stream_idle_timeout_s
        resources = AsyncExitStack()
        loop = self._edge.loop(call, principal)
        # with Edge Tools in play the first round already offers them (D4)
        first = loop.round_call() if loop is not None else call
        connected = await self._connect_stream(first, resources, receive)
        if connected is None:
            return self._client_left(call, principal, started)

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
            slot.release()
            await resources.aclose()
            # neither completed nor failed: the client went away mid-stream
            self._record_call(call, principal, CLIENT_CLOSED, error="client_closed")

        items: AsyncIterator[StreamItem]
        # frames the relay already holds go out together, when nothing stands between the relay
        # and the encoder that could wait for something else (an Edge Tool round, a restart, a fault)
        backlog: Backlog | None = None
        if loop is None and not self.resilience.retry_after_first_chunk and self.fault.stream is None:
            backlog = Backlog()
        if loop is None:

            def relayed(stream: _Connected) -> AsyncIterator[StreamItem]:
                return relay(
                    stream.source,
                    stream.adapter.stream_decoder(stream.call),
                    model_id=stream.call.route.model_id,
                    provider=stream.adapter.name,
                    timeout_s=idle,
                    include_usage=call.include_usage,
                    on_usage=account,
                    extras=call.extras,
                    on_failure=failed,
                    backlog=backlog,
                )

            items = relayed(connected)
            if self.resilience.retry_after_first_chunk:
                items = self._restarted(items, call, resources, relayed)
        else:
            items = self._edge_stream(loop, connected, resources, account, failed)
        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            **_answered_headers(call),
        }
        return EventStreamResponse(
            encode_stream(self.fault.on_stream(items), backlog),
            headers=headers,
            on_close=close,
            cancel_on_disconnect=self.resilience.cancel_on_disconnect,
        )

    async def _restarted(
        self,
        items: AsyncIterator[StreamItem],
        call: ChatCall,
        resources: AsyncExitStack,
        relayed: Callable[[_Connected], AsyncIterator[StreamItem]],
    ) -> AsyncIterator[StreamItem]:
        """The wrong D45: a stream that failed after it started is opened again and relayed on.

        Only a self-test fault turns this on (``retry_after_first_chunk``): the client gets the
        content again from the start, after what it already had.
        """
        left = max(0, self.resilience.primary_attempts - 1)
        while True:
            failure: StreamItem | None = None
            async for item in items:
                if isinstance(item, StreamFailure) and left > 0:
                    failure = item
                    break
                yield item
            if failure is None:
                return
            left -= 1
            try:
                again = await self._connect_stream(call, resources, None)
            except GatewayError:
                again = None
            if again is None:
                yield failure
                return
            items = relayed(again)

    async def _connect_stream(
        self, call: ChatCall, resources: AsyncExitStack, receive: Receive | None
    ) -> _Connected | None:
        """Open one upstream stream, retried or re-routed as D44 says, and keep it in ``resources``.

        The first byte is the provider's 200 ``text/event-stream`` headers: until then the client
        has seen nothing and another attempt is allowed. None when the client left before that
        (``receive`` given: until then nothing else watches the client; after that,
        EventStreamResponse does).
        """
        connected = await self._attempts(call, receive, self._connect_once)
        if connected is not None:
            # the stream is the caller's from now on; it closes with everything else in ``resources``
            resources.callback(connected.source.response.close)
        return connected

    async def _connect_once(self, call: ChatCall) -> _Connected:
        """One streamed attempt, up to the provider's headers within ``first_byte_timeout_s`` (D46)."""
        adapter = self._adapters[call.route.provider.name]
        upstream = self.fault.on_upstream(adapter.build_request(call), call)
        # What an SSE client asks for, uncompressed: a compressed upstream stream would arrive in
        # compressor-sized bursts, not event by event.
        headers = {**upstream.headers, **_STREAM_HEADERS}
        payload = _upstream_body(upstream.json)
        limits = self._limits
        # until the headers (and an error answer's body) no wait may end later than the first-byte
        # timeout; then each wait for the provider's next bytes is bounded by the idle one
        deadline = asyncio.get_running_loop().time() + limits.first_byte_timeout_s
        response: UpstreamResponse | None = None
        try:
            response = await self.client.post(
                upstream.url,
                headers,
                payload,
                connect_timeout=limits.connect_timeout_s,
                pool_timeout=limits.provider_timeout_s,
                read_timeout=limits.first_byte_timeout_s,
                deadline=deadline,
            )
            call.trace.add_upstream(0.0, response.status_code)
            if not response.is_success:
                content = await response.read(_MAX_ERROR_BODY)
                raise self._failed_status(adapter, response.status_code, response.headers, content)
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                error = _errors.provider_error(
                    adapter.name, f"answered a stream with Content-Type {content_type or 'none'!r}"
                )
                raise FailedAttempt(error, FailureClass.FALLBACK)
            response.deadline = None
            response.read_timeout = limits.stream_idle_timeout_s
        except BaseException as exc:
            if response is not None:
                response.close()
            if isinstance(exc, ConnectTimeout | PoolTimeout):
                raise _timed_out(adapter, limits.connect_timeout_s) from None
            if isinstance(exc, UpstreamTimeout):
                raise _timed_out(adapter, limits.first_byte_timeout_s) from None
            if isinstance(exc, UpstreamError):
                raise _unreachable(adapter, exc) from None
            raise
        return _Connected(EventSource(response), adapter, call)

    def _edge_stream(
        self,
        loop: EdgeLoop,
        first: _Connected,
        resources: AsyncExitStack,
        on_usage: Callable[[Usage | None], None],
        on_failure: Callable[[GatewayError], None],
    ) -> AsyncIterator[StreamItem]:
        """The client stream over every Edge Tool round (D38): each round one upstream stream."""

        def round_items(stream: _Connected) -> AsyncIterator[StreamItem]:
            return relay(
                stream.source,
                stream.adapter.stream_decoder(stream.call),
                model_id=stream.call.route.model_id,
                provider=stream.adapter.name,
                timeout_s=self._limits.stream_idle_timeout_s,
                include_usage=False,
                on_usage=loop.round_usage,
                on_failure=on_failure,
            )

        async def open_round(round_call: ChatCall) -> AsyncIterator[StreamItem]:
            opened = await self._connect_stream(round_call, resources, None)
            assert opened is not None  # without ``receive`` there is no early return
            return round_items(opened)

        return loop.stream(
            round_items(first),
            open_round,
            include_usage=first.call.include_usage,
            on_usage=on_usage,
            on_failure=on_failure,
        )

    def _failed_status(
        self, adapter: ProviderAdapter, status: int, headers: Mapping[str, str], content: bytes
    ) -> FailedAttempt:
        """An attempt the provider answered with an error status: D16's error and D44's class."""
        kind = classify_status(adapter.upstream_status(status))
        retry_after = adapter.retry_after(headers, content) if kind is FailureClass.RETRY else None
        return FailedAttempt(self._upstream_failure(adapter, status, headers, content), kind, retry_after)

    def _upstream_failure(
        self, adapter: ProviderAdapter, status: int, headers: Mapping[str, str], content: bytes
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
        served = _served(call)
        # billed at the prices of the model that answered (a fallback's own, D44)
        cost = usage.cost_micro_usd(served.model) if usage is not None else None
        self._record(
            call.trace, seen, status, provider=served.provider.name, usage=usage, error=error, cost=cost
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
        if not self.request_log.enabled:
            return  # nothing would be written: the record is not built
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
            attempts=trace.attempts,
        )
        self.request_log.write(self.fault.on_log(record))

    def _account(self, call: ChatCall, principal: Principal, usage: Usage, started: float) -> None:
        """One line per completed request: who, what, how many tokens, what it cost."""
        served = _served(call)
        logger.info(
            "chat model=%s provider=%s key=%s stream=%s prompt_tokens=%d completion_tokens=%d "
            "cost_micro_usd=%d tags=%s attempts=%d fallback=%s ms=%d",
            call.route.model_id,
            served.provider.name,
            principal.name,
            str(call.stream).lower(),
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cost_micro_usd(served.model),
            ",".join(call.tags) or "-",
            call.trace.attempts,
            served.served_model_id if served.is_fallback else "-",
            round((time.monotonic() - started) * 1000),
        )


def _compressed_answer(body: dict[str, Any]) -> tuple[dict[str, Any], Compression]:
    """Compress and count (CPU work, no awaits: the caller may run it on a worker thread)."""
    result = compress_messages(body["messages"])
    return compress_body(body, result, body.get("tools") or []), result


#: built once (``json.dumps`` with options builds an encoder per call)
_UPSTREAM_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _upstream_body(payload: Any) -> bytes:
    """The JSON bytes sent upstream: compact, UTF-8 kept as is, no NaN (what httpx's ``json=`` sent)."""
    return _UPSTREAM_JSON.encode(payload).encode("utf-8")


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_client_leaves(receive: Receive, work: Callable[[], Awaitable[_T]]) -> _T | None:
    """``work()``'s result, or None when the client disconnected first (``work`` is then cancelled).

    Only for use once the request body has been read: from then on the only message
    ``receive`` can bring is ``http.disconnect`` (or, once the answer is sent, nothing).
    ``work`` runs in this task; a watcher task cancels it when the disconnect comes. (An anyio
    task group did the same at ~15x the CPU, on every request.)
    """
    task = asyncio.current_task()
    assert task is not None
    left = False

    def disconnected(watcher: asyncio.Task[None]) -> None:
        nonlocal left
        if not watcher.cancelled() and watcher.exception() is None:
            left = True
            task.cancel()

    watcher = asyncio.get_running_loop().create_task(_until_disconnect(receive))
    watcher.add_done_callback(disconnected)
    try:
        return await work()
    except asyncio.CancelledError:
        if not left:
            raise
        task.uncancel()
        return None
    finally:
        watcher.remove_done_callback(disconnected)
        watcher.cancel()
