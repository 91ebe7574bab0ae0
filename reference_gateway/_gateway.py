"""The chat completions pipeline: from an HTTP request to a provider and back.

The steps, in order, each able to stop the request with a :class:`GatewayError`:

1. authenticate the key (D14; the inactive key is refused here, before the body is read);
2. read the body within the size limit (D17) and parse it within the depth limit (D6 ``invalid_json``);
3. validate it against the spec, the message limit and the Edgee headers (D6, D7, D18);
4. route the model (D15) and check the key may use it (D14);
5. refuse Edge Tool fields, since this gateway has none activated (D4, D5);
6. call the provider through its adapter and map its failures (D16), dropping the call if the
   client leaves before the provider answers (nobody would read it, so nobody is billed);
7. answer with the translated response or relay the stream (D9, D19), with
   ``X-Edgee-Provider`` on everything that reached the provider (D20).

The active fault (``_faults``) is consulted at each of its hooks; with no fault every
hook is the identity.

Steps 2 and 3 are CPU work proportional to the body; for a large body they run on a worker
thread, so a 4 MiB request does not hold up every other connection (health probes included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import anyio
import httpx
import jsonschema_rs
from httpx_sse import EventSource, aconnect_sse
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive

from gateproof.openapi import Validators, is_edgee_header
from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._auth import Keyring, Principal
from gateproof.reference_gateway._body import parse_body
from gateproof.reference_gateway._call import ChatCall
from gateproof.reference_gateway._config import ConfigError, GatewayConfig
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._events import encode_json
from gateproof.reference_gateway._faults import Fault
from gateproof.reference_gateway._routing import Router
from gateproof.reference_gateway._streaming import EventStreamResponse, encode_stream, relay
from gateproof.reference_gateway._usage import Usage
from gateproof.reference_gateway._validation import RequestValidator
from gateproof.reference_gateway.providers import ProviderAdapter, UpstreamFormatError, adapter_for

__all__ = ["PROVIDER_HEADER", "Gateway"]

logger = logging.getLogger("gateproof.gateway")

#: names the provider that served (or refused) the request (D20)
PROVIDER_HEADER = "X-Edgee-Provider"

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
            self._adapters = {name: adapter_for(provider) for name, provider in config.providers.items()}
        except ConfigError as exc:
            raise ConfigError(f"{config.source}: {exc}") from None
        self._client: httpx.AsyncClient | None = None

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

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the gateway has not been started (no lifespan?)")
        return self._client

    # -- POST /v1/chat/completions -----------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response | EventStreamResponse:
        provider: str | None = None
        try:
            principal = self._authenticate(request.headers.get("authorization"))
            raw = await self._read_body(request)
            if len(raw) < OFF_LOOP_BYTES:
                body = self._admit(raw)
            else:
                body = await anyio.to_thread.run_sync(self._admit, raw, limiter=self._parsers)
            options = self._validator.options(body, request.headers)
            route = self._router.route(body["model"])
            principal.check_model(route.model_id)
            self._validator.check_edge_tools(body)
            call = ChatCall(
                body=body,
                route=route,
                edgee_headers={k: v for k, v in request.headers.items() if is_edgee_header(k)},
                tags=options.tags,
                client_authorization=request.headers.get("authorization"),
            )
            adapter = self._adapters[route.provider.name]
            provider = adapter.name
            if call.stream:
                return await self._stream(call, adapter, principal, request.receive)
            return await self._complete(call, adapter, principal, request.receive)
        except GatewayError as error:
            return self.error_response(error, provider=provider)

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
            return self._client_left(call, principal, started)
        if not response.is_success:
            raise self._upstream_failure(adapter, response.status_code, response.headers, response.content)
        try:
            body = adapter.translate_response(call, response.json())
        except (ValueError, UpstreamFormatError) as exc:
            detail = str(exc) if isinstance(exc, UpstreamFormatError) else "the response is not JSON"
            raise _errors.provider_error(adapter.name, f"answered with an unusable body: {detail}") from None
        self._account(call, principal, Usage.from_edgee(body.get("usage")), started)
        body = self.fault.on_response(body)
        headers = self.fault.on_headers({PROVIDER_HEADER: adapter.name}, False)
        return Response(encode_json(body), headers=headers, media_type="application/json")

    async def _stream(
        self, call: ChatCall, adapter: ProviderAdapter, principal: Principal, receive: Receive
    ) -> Response | EventStreamResponse:
        upstream = self.fault.on_upstream(adapter.build_request(call), call)
        # A compressed upstream stream would arrive in compressor-sized bursts, not event by event.
        request_headers = {**upstream.headers, "Accept-Encoding": "identity"}
        started = time.monotonic()
        timeout = self._limits.provider_timeout_s
        resources = AsyncExitStack()

        async def connect() -> EventSource:
            return await resources.enter_async_context(
                aconnect_sse(self.client, "POST", upstream.url, json=upstream.json, headers=request_headers)
            )

        try:
            # Until the provider's headers arrive, nothing watches the client but this (after
            # that, EventStreamResponse does).
            connected = await _unless_client_leaves(receive, connect)
            if connected is None:
                await resources.aclose()
                return self._client_left(call, principal, started)
            source = connected
            response = source.response
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

        def account(usage: Usage | None) -> None:
            if usage is not None:
                self._account(call, principal, usage, started)
            else:
                logger.info(
                    "chat model=%s key=%s stream=true failed mid-stream", call.route.model_id, principal.name
                )

        items = relay(
            source,
            adapter.stream_decoder(call),
            model_id=call.route.model_id,
            provider=adapter.name,
            timeout_s=timeout,
            include_usage=call.include_usage,
            on_usage=account,
        )
        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            PROVIDER_HEADER: adapter.name,
        }
        return EventStreamResponse(
            self.fault.on_frames(encode_stream(self.fault.on_stream(items))),
            headers=self.fault.on_headers(headers, True),
            on_close=resources.aclose,
        )

    def _upstream_failure(
        self, adapter: ProviderAdapter, status: int, headers: httpx.Headers, content: bytes
    ) -> GatewayError:
        """D16: what the client is told when the provider answered with an error status."""
        if status == 429:
            return _errors.provider_rate_limited(adapter.name, headers.get("retry-after"))
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
        return Response(status_code=CLIENT_CLOSED)

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
