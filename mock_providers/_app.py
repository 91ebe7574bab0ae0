"""The mock provider as one Starlette app: every dialect's routes plus the control routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateproof.mock_providers._chaos import Chaos
from gateproof.mock_providers._config import MockConfig
from gateproof.mock_providers._control import control_routes
from gateproof.mock_providers._dialect import Dialect
from gateproof.mock_providers._exchange import GenerationEndpoint, StaticEndpoint, UnknownRoute
from gateproof.mock_providers._journal import Journal
from gateproof.mock_providers._tokens import openers, vocabulary
from gateproof.mock_providers.dialects import DIALECTS

__all__ = ["MockApp", "create_app"]


class MockApp(Starlette):
    """Starlette, with a short cut for the generation routes that have no path parameters.

    A load test sends thousands of requests a second to ``POST /v1/chat/completions``;
    those go straight to their endpoint (one dictionary lookup) instead of through
    the middleware stack and the route table, which would otherwise also wrap every
    streamed chunk's ``send``. Everything else is routed by Starlette as usual. The
    endpoints handle their own errors, so nothing is lost by the short cut.
    """

    def __init__(self, *, routes: Sequence[BaseRoute], direct: Mapping[str, ASGIApp]) -> None:
        super().__init__(routes=routes)
        self._direct = dict(direct)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._direct.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(config: MockConfig | None = None, dialects: Sequence[Dialect] = DIALECTS) -> MockApp:
    """Build the app; ``app.state.journal`` is its ``Journal``.

    The tokenizer and the answer vocabulary are loaded here, so the first request
    does not pay for them.
    """
    config = config or MockConfig()
    if not dialects:
        raise ValueError("the mock needs at least one dialect")
    vocabulary()
    openers()
    journal = Journal(config.journal_size, config.credential_cache)
    chaos = Chaos(config.chaos) if config.chaos is not None else None
    routes: list[BaseRoute] = []
    direct: dict[str, ASGIApp] = {}
    for dialect in dialects:
        endpoint = GenerationEndpoint(dialect, config, journal, chaos)
        for path in dialect.generation_paths:
            routes.append(Route(path, endpoint, methods=["POST"]))
            if "{" not in path:
                direct[path] = endpoint
        routes.extend(
            Route(static.path, StaticEndpoint(dialect, static, journal, config), methods=[static.method])
            for static in dialect.static_routes(config.catalogue)
        )
    routes.extend(control_routes(journal))
    # an unknown path under a dialect's prefix gets that provider's 404, anything else the first's
    routes.extend(
        Route(dialect.prefix + "/{path:path}", UnknownRoute(dialect, journal))
        for dialect in dialects
        if dialect.prefix
    )
    routes.append(Route("/{path:path}", UnknownRoute(dialects[0], journal)))
    app = MockApp(routes=routes, direct=direct)
    app.state.journal = journal
    app.state.config = config
    return app
