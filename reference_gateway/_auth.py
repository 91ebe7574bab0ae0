"""Who is calling (D14): ``Authorization: Bearer <key>`` against the configured keys.

Missing header, another scheme or an unknown key is 401; a key that exists but is
switched off, or that may not use the requested model, is 403. Keys are compared in
constant time, and no message ever repeats what the client sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._config import KeyConfig

__all__ = ["InFlight", "Keyring", "Principal", "Slot"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key's name (never its value), what it may use, its defaults."""

    name: str
    allowed_models: frozenset[str] | None = None
    #: compress prompts when the request does not say (D30)
    compression: bool = False
    #: Edge Tools the key may ask for (None: every one) and those injected unasked (D35)
    edge_tools: frozenset[str] | None = None
    hydrated_edge_tools: tuple[str, ...] = ()
    #: requests of this key served at once (D47); None: unlimited
    max_concurrent: int | None = None

    def check_model(self, model_id: str) -> None:
        """Raise 403 when this key may not use ``model_id``."""
        if self.allowed_models is not None and model_id not in self.allowed_models:
            raise _errors.forbidden(f"Model {model_id!r} is not allowed for this API key")


#: what a gateway switched to "accept anyone" (the ``no_auth`` fault) treats a caller as
ANONYMOUS = Principal(name="anonymous")


class Keyring:
    """The configured client keys."""

    def __init__(self, keys: Iterable[KeyConfig]) -> None:
        self._keys = tuple(keys)
        # a key's principal never changes: made once, not on every request
        self._principals = {
            id(key): Principal(
                name=key.name,
                allowed_models=key.allowed_models,
                compression=key.compression,
                edge_tools=key.edge_tools,
                hydrated_edge_tools=key.hydrated_edge_tools,
                max_concurrent=key.max_concurrent,
            )
            for key in self._keys
        }

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization`` header value, or a 401/403 error."""
        if authorization is None or not authorization.strip():
            raise _errors.unauthorized("Missing Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _errors.unauthorized("Invalid Authorization header format; expected 'Bearer <api key>'")
        key = self._find(token)
        if key is None:
            raise _errors.unauthorized("Invalid API key")
        if not key.active:
            raise _errors.forbidden("API key is inactive")
        return self._principals[id(key)]

    def _find(self, token: str) -> KeyConfig | None:
        presented = token.encode()
        found: KeyConfig | None = None
        for key in self._keys:
            # Look at every key, so the time taken does not say which one came close.
            if hmac.compare_digest(presented, key.secret.encode()):
                found = key
        return found


class Slot:
    """One request's place among its key's requests in flight; released once, however it ends."""

    def __init__(self, counts: dict[str, int] | None, name: str) -> None:
        self._counts = counts
        self._name = name

    def release(self) -> None:
        counts, self._counts = self._counts, None
        if counts is not None:
            counts[self._name] -= 1
            if not counts[self._name]:
                del counts[self._name]


class InFlight:
    """How many requests each key has in progress, against its ``max_concurrent`` (D47).

    One event loop serves the gateway, so plain counts are safe: nothing awaits between the
    check and the increment.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def take(self, principal: Principal) -> Slot:
        """A slot for one request of ``principal``, or 429 ``concurrency_limit_exceeded``."""
        limit = principal.max_concurrent
        if limit is None:
            return Slot(None, principal.name)
        held = self._counts.get(principal.name, 0)
        if held >= limit:
            raise _errors.concurrency_limit_exceeded(limit)
        self._counts[principal.name] = held + 1
        return Slot(self._counts, principal.name)
