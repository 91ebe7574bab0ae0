"""The gateway's HTTP surface: routes, error rendering for everything, and the lifespan.

``create_app`` is the one way to get a gateway: the CLI serves it with uvicorn, and
tests or embedders can mount it anywhere an ASGI app goes. A self-test fault reaches it
as :class:`Hooks` (the core's seam); its wire-level part, if any, wraps the app from
outside (``gateproof.selftest``), so nothing here knows a fault by name.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from gateproof.openapi import HEALTH_PATH, Validators, validators
from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._config import GatewayConfig
from gateproof.reference_gateway._gateway import CHAT_PATH, COMPRESS_PATH, Gateway
from gateproof.reference_gateway._hooks import NO_HOOKS, Hooks
from gateproof.reference_gateway._resilience import CORRECT_RESILIENCE
from gateproof.reference_gateway._streaming import EventStreamResponse
from gateproof.reference_gateway._validation import shipped_request_schema

__all__ = ["HEALTH_PATH", "create_app"]


def create_app(
    config: GatewayConfig,
    *,
    hooks: Hooks = NO_HOOKS,
    request_validators: Validators | None = None,
) -> Starlette:
    """The reference gateway as an ASGI app.

    Parameters:
        config: providers, models, keys and limits (see ``load_config``).
        hooks: the core's part of a self-test fault (``gateproof.selftest``), to deviate from
            the contract in exactly one way; the correct gateway by default.
        request_validators: validators for request bodies; the shipped spec's by default,
            which are backed by the same spec compiled with ``jsonschema_rs`` for speed.
            Validators built from another spec are used alone (correct, but ~1000x slower).

    Raises ``ConfigError`` for a config it cannot serve, before anything listens.
    """
    active = hooks
    config = active.on_config(config)
    resilience = active.on_resilience(CORRECT_RESILIENCE)
    if request_validators is None:
        gateway = Gateway(
            config,
            fault=active,
            resilience=resilience,
            validators=validators(),
            compiled=shipped_request_schema(),
        )
    else:
        gateway = Gateway(config, fault=active, resilience=resilience, validators=request_validators)

    async def models(request: Request) -> Response:
        """GET /v1/models (D10): no key needed; ``provider`` keeps the models it owns."""
        wanted = request.query_params.get("provider")
        data = [
            {"id": model.id, "object": "model", "created": model.created, "owned_by": model.owned_by}
            for model in config.models.values()
            if wanted is None or model.owned_by == wanted
        ]
        return JSONResponse(gateway.fault.on_models({"object": "list", "data": data}))

    # set by whoever starts the server (gateproof.cli.launch) and echoed here, so a launcher can
    # tell its own server from another one that won the same port
    instance = os.environ.get("GATEPROOF_INSTANCE_ID", "")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "fault": active.name, "instance": instance})

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own 404/405 (unknown path, wrong method), in the D13 envelope (D17)."""
        if not isinstance(exc, HTTPException):  # registered for HTTPException only
            raise exc
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            error = _errors.method_not_allowed(request.method, [m.strip() for m in allowed.split(",") if m])
        elif exc.status_code == 404:
            error = _errors.not_found(request.url.path)
        else:
            error = _errors.GatewayError(exc.status_code, "invalid_request_error", None, exc.detail)
        return gateway.error_response(error)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after this response, so the server logs the traceback once.
        return gateway.error_response(_errors.internal_error())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = _GatewayApp(
        chat=gateway.chat_completions,
        on_unexpected=unexpected,
        routes=[
            Route(CHAT_PATH, gateway.chat_completions, methods=["POST"]),
            Route(COMPRESS_PATH, gateway.compress, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: unexpected},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app


class _GatewayApp(Starlette):
    """Starlette, with ``POST /v1/chat/completions`` handed straight to the gateway.

    Every request pays for starlette's layers (its error middleware, its exception middleware,
    the router, the route's own exception wrapper), and so does every message a stream sends
    (one wrapper per layer): on the stream path about a tenth of the gateway's own time before
    the first token. This route needs none of them: its handler answers every error itself and
    re-raises only an unexpected exception, which is what starlette does here too: the 500
    envelope (when nothing was sent yet), then the exception for the server to log. Any other
    request, or a chat request the shortcut does not recognise (another method, a path under a
    ``root_path``), goes through starlette as before.
    """

    def __init__(
        self,
        *,
        chat: Callable[[Request], Awaitable[Response | EventStreamResponse]],
        on_unexpected: Callable[[Request, Exception], Awaitable[Response]],
        **starlette: Any,
    ) -> None:
        super().__init__(**starlette)
        self._chat = chat
        self._on_unexpected = on_unexpected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != CHAT_PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            response = await self._chat(Request(scope, receive, send))
            await response(scope, receive, sending)
        except Exception as exc:
            if not started:
                await (await self._on_unexpected(Request(scope), exc))(scope, receive, send)
            raise
