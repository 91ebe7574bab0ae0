"""From a public model id (``{author}/{model}``, D15) to the provider that serves it.

The schema only asks for a non-empty string; the shape is checked here so that a
malformed id (400 ``bad_model_id``) and a well-formed id nobody serves
(400 ``model_not_found``) stay distinguishable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._config import ModelConfig, ProviderConfig

__all__ = ["Route", "Router", "is_model_id"]

# author: a plain name; model: anything without whitespace (it may hold further slashes,
# as hosted open models do: ``together/meta-llama/Llama-3-8b``).
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[^\s/][^\s]*")


def is_model_id(value: str) -> bool:
    """Whether ``value`` has the ``{author}/{model}`` shape."""
    return _MODEL_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class Route:
    """Where one request goes: the client's model id, the model entry and its provider.

    A fallback route (D44) serves another model entry on the client's behalf: ``requested``
    keeps the id the client asked for, which the answer's ``model`` repeats (D20: the
    ``X-Edgee-Provider`` header, not the body, says who answered).
    """

    model: ModelConfig
    provider: ProviderConfig
    requested: str | None = None

    @property
    def model_id(self) -> str:
        """The public model id the client asked for (what answers name)."""
        return self.requested or self.model.id

    @property
    def served_model_id(self) -> str:
        """The configured model entry this route calls (the fallback's own id on a fallback)."""
        return self.model.id

    @property
    def is_fallback(self) -> bool:
        return self.requested is not None and self.requested != self.model.id

    @property
    def upstream_model(self) -> str:
        return self.model.upstream_model


class Router:
    """The routing table built from the configured models."""

    def __init__(self, models: Mapping[str, ModelConfig], providers: Mapping[str, ProviderConfig]) -> None:
        self._routes = {
            model_id: Route(model, providers[model.provider]) for model_id, model in models.items()
        }

    def fallbacks(self, route: Route) -> tuple[Route, ...]:
        """The routes tried, in order, when ``route`` failed before the first byte (D44)."""
        return tuple(
            Route(self._routes[other].model, self._routes[other].provider, requested=route.model_id)
            for other in route.model.fallbacks
        )

    def route(self, model_id: str) -> Route:
        """The route for ``model_id``, or 400 ``bad_model_id`` / ``model_not_found``."""
        if not is_model_id(model_id):
            raise _errors.bad_model_id(model_id)
        route = self._routes.get(model_id)
        if route is None:
            raise _errors.model_not_found(model_id)
        return route
