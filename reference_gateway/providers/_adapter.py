"""The seam between the gateway core and one provider dialect.

The core only speaks the Edgee/OpenAI shape. For each configured provider it holds one
:class:`ProviderAdapter`, which

- builds the upstream HTTP request from a :class:`ChatCall` (model id, body, credential),
- translates a complete upstream response into an Edgee ``chat.completion``,
- decodes the upstream event stream, one event at a time, into Edgee chunks
  (a fresh :class:`StreamDecoder` per stream, since dialects such as Anthropic's
  carry state from one event to the next),
- extracts a human-readable message from an upstream error body,
- names the status D16 classifies for an upstream error status (the dialect's own
  codes, such as Anthropic's 529, are read as what they mean).

An adapter follows :class:`TranslationRules` (``_translation.py``): all of them unless the
active fault turned one off, which is how the self-test gets its translation bugs.

Everything else (auth, validation, error mapping, the usage chunk, ``[DONE]``,
timeouts, faults) is the core's job, so a new dialect is one module beside
``openai.py`` registered in ``providers/__init__.py``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from httpx_sse import ServerSentEvent

from gateproof.reference_gateway._call import ChatCall, UpstreamRequest
from gateproof.reference_gateway._config import ProviderConfig
from gateproof.reference_gateway._events import Chunk, StreamFailure
from gateproof.reference_gateway.providers._translation import CORRECT_TRANSLATION, TranslationRules

__all__ = ["ProviderAdapter", "StreamDecoder", "UpstreamFormatError", "event_object"]


class UpstreamFormatError(ValueError):
    """The provider answered 2xx with something its dialect does not allow (the gateway says 502)."""


def event_object(event: ServerSentEvent) -> dict[str, Any] | None:
    """The JSON object an upstream stream event carries (None for an event with no data).

    Every dialect streams JSON objects; anything else is the provider breaking its own format,
    raised as :class:`UpstreamFormatError` for the decoder to turn into a stream failure.
    """
    data = event.data.strip()
    if not data:
        return None
    try:
        payload = json.loads(data)
    except ValueError:
        raise UpstreamFormatError("sent a malformed stream event") from None
    if not isinstance(payload, dict):
        raise UpstreamFormatError("sent a malformed stream event")
    return payload


class StreamDecoder(ABC):
    """Turns one upstream stream, event by event, into Edgee chunks.

    ``finished`` becomes true when the provider signalled a complete stream; a stream
    that ends before that was cut off, and the core reports it as a failure (D9).
    """

    finished: bool = False

    @abstractmethod
    def feed(self, event: ServerSentEvent) -> list[Chunk | StreamFailure]:
        """The Edgee items for one upstream event (often one chunk, sometimes none)."""


class ProviderAdapter(ABC):
    """Speaks one provider dialect on behalf of the gateway core."""

    #: the ``dialect`` value in the config that selects this adapter
    dialect: ClassVar[str]

    def __init__(self, provider: ProviderConfig, rules: TranslationRules = CORRECT_TRANSLATION) -> None:
        self.provider = provider
        self.rules = rules

    @property
    def name(self) -> str:
        """The provider's configured name, reported in ``X-Edgee-Provider`` (D20)."""
        return self.provider.name

    @abstractmethod
    def build_request(self, call: ChatCall) -> UpstreamRequest:
        """The upstream request for ``call``; the credential is the provider's own, never the client's."""

    @abstractmethod
    def translate_response(self, call: ChatCall, payload: Any) -> dict[str, Any]:
        """An upstream JSON response as an Edgee ``chat.completion`` (raise UpstreamFormatError if unusable)."""

    @abstractmethod
    def stream_decoder(self, call: ChatCall) -> StreamDecoder:
        """A decoder for one upstream stream answering ``call``."""

    def upstream_status(self, status: int) -> int:
        """The status the core's D16 mapping reads for an upstream error ``status`` (most dialects: itself)."""
        return status

    def retry_after(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """When the provider says to retry a 429, as a ``Retry-After`` value (most dialects: its header)."""
        return headers.get("retry-after")

    def error_message(self, body: bytes) -> str:
        """The provider's own words from an error body (``error.message`` in most dialects)."""
        text = body.decode("utf-8", errors="replace").strip()
        try:
            payload = json.loads(text)
        except ValueError:
            return text or "no details"
        if isinstance(payload, dict):
            error = payload.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return str(error["message"])
            if isinstance(error, str):
                return error
            if isinstance(payload.get("message"), str):
                return str(payload["message"])
        return text or "no details"
