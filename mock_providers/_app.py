"""The mock provider as one Starlette app: every dialect's routes plus the control routes."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from gateproof.mock_providers._config import MockConfig
from gateproof.mock_providers._control import control_routes
from gateproof.mock_providers._dialect import Dialect
from gateproof.mock_providers._exchange import GenerationEndpoint, StaticEndpoint, UnknownRoute
from gateproof.mock_providers._journal import Journal
from gateproof.mock_providers._tokens import openers, vocabulary
from gateproof.mock_providers.dialects import DIALECTS

__all__ = ["create_app"]


def create_app(config: MockConfig | None = None, dialects: Sequence[Dialect] = DIALECTS) -> Starlette:
    """Build the app; ``app.state.journal`` is its ``Journal``.

    The tokenizer and the answer vocabulary are loaded here, so the first request
    does not pay for them.
    """
    config = config or MockConfig()
    if not dialects:
        raise ValueError("the mock needs at least one dialect")
    vocabulary()
    openers()
    journal = Journal(config.journal_size)
    routes: list[BaseRoute] = []
    for dialect in dialects:
        endpoint = GenerationEndpoint(dialect, config, journal)
        routes.extend(Route(path, endpoint, methods=["POST"]) for path in dialect.generation_paths)
        routes.extend(
            Route(static.path, StaticEndpoint(dialect, static, journal), methods=[static.method])
            for static in dialect.static_routes()
        )
    routes.extend(control_routes(journal))
    routes.append(Route("/{path:path}", UnknownRoute(dialects[0], journal)))
    app = Starlette(routes=routes)
    app.state.journal = journal
    app.state.config = config
    return app
