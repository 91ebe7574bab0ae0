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
    """Where one request goes: the client's model id, the model entry and its provider."""

    model: ModelConfig
    provider: ProviderConfig

    @property
    def model_id(self) -> str:
        return self.model.id

    @property
    def upstream_model(self) -> str:
        return self.model.upstream_model


class Router:
    """The routing table built from the configured models."""

    def __init__(self, models: Mapping[str, ModelConfig], providers: Mapping[str, ProviderConfig]) -> None:
        self._routes = {
            model_id: Route(model, providers[model.provider]) for model_id, model in models.items()
        }

    def route(self, model_id: str) -> Route:
        """The route for ``model_id``, or 400 ``bad_model_id`` / ``model_not_found``."""
        if not is_model_id(model_id):
            raise _errors.bad_model_id(model_id)
        route = self._routes.get(model_id)
        if route is None:
            raise _errors.model_not_found(model_id)
        return route
