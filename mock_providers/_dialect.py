"""What a provider dialect must provide: parse its requests, render plans in its wire format.

Everything else (directives, planning, timing, the journal, faults, delivery) is
shared, so a new dialect (Anthropic's ``/v1/messages``, Gemini's
``generateContent``) is one module in ``dialects/`` implementing this protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateproof.mock_providers._catalogue import Catalogue
from gateproof.mock_providers._errors import ProviderError
from gateproof.mock_providers._replies import Reply
from gateproof.mock_providers._scenarios import ChatRequest, Scenario, Usage
from gateproof.openapi import Intent

__all__ = ["Dialect", "Incoming", "StaticRoute", "truncated_data_frame"]


# Not frozen: one is built per request, and a frozen dataclass's __init__ costs about five
# times as much. Treat it as immutable all the same: nothing changes one once it is built.
@dataclass(slots=True)
class Incoming:
    """Where a request came in, beyond its body.

    Some dialects need it: Gemini names the model and the streaming mode in the
    path and may carry options in the query; Anthropic versions its API in a header.
    """

    path: str
    path_params: Mapping[str, str]
    #: the raw query string
    query: str
    #: ASGI headers (lower-case names), unredacted: read them, never store them
    headers: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]]


def truncated_data_frame(frame: bytes) -> bytes:
    """An SSE frame whose ``data:`` payload is cut in half, so it is no longer valid JSON.

    Any ``event:`` line before the data is kept, so the frame still names its event; every
    dialect that streams SSE breaks its frames this way for the ``malformed_chunk`` fault.
    """
    head, _, payload = frame.partition(b"data: ")
    payload = payload.rstrip(b"\n")
    return head + b"data: " + payload[: max(len(payload) // 2, 1)] + b"\n\n"


@dataclass(frozen=True, slots=True)
class StaticRoute:
    """A route answered without a scenario (a model catalogue, say)."""

    path: str
    method: str
    answer: Callable[[Incoming], Reply]


class Dialect(Protocol):
    """One provider's wire format."""

    #: short name, recorded in the journal (``openai``, ``anthropic``, ...)
    name: str
    #: the path prefix every route of the dialect lives under ("" at the root): an unknown path
    #: under it is answered in this dialect's error envelope
    prefix: str
    #: Starlette path patterns of the POST routes that generate answers
    generation_paths: tuple[str, ...]
    #: the HTTP status the provider answers when overloaded (Anthropic 529, 503 elsewhere)
    overload_status: int

    def credential(self, incoming: Incoming) -> str | None:
        """The API key the request carries, where this provider expects it (``None``: no key)."""

    def refuse_credential(self, key: str | None) -> ProviderError:
        """The provider's 401 for a missing (``None``) or unknown key; never shows the whole key."""

    def parse(self, body: Any, incoming: Incoming, catalogue: Catalogue) -> ChatRequest:
        """Read a request body (already JSON-decoded); raise ``RequestRejected`` if the provider would refuse it.

        A prompt too long to count on the spot is left uncounted (``prompt_tokens`` None,
        ``prompt`` set): the exchange counts it off the event loop.
        """

    def parse_key(self, incoming: Incoming) -> Hashable:
        """All that ``parse`` reads of ``incoming``: equal keys and equal bodies parse alike.

        A repeated request is read once and remembered by its body and this key (``_repeats``),
        so it must cover every header, path or query detail ``parse`` looks at.
        """

    def correlation_id(self, body: Any) -> str | None:
        """Best effort: the ``cid`` of the directive in a body that was refused before it was read."""

    def context_exceeded(
        self, request: ChatRequest, prompt_tokens: int, complete: bool
    ) -> ProviderError | None:
        """The provider's refusal when the prompt (plus requested output) exceeds the window, else None.

        ``complete`` false: counting stopped past the budget, ``prompt_tokens`` is a lower bound.
        """

    def render(self, scenario: Scenario, request: ChatRequest, created: int) -> Reply:
        """The reply for a planned answer (including ``scenario.error`` answers)."""

    def usage_record(self, usage: Usage) -> dict[str, Any]:
        """The true usage as the journal records it: this provider's own key names and shape."""

    def intent(self, body: Any, path: str, query: str) -> Intent:
        """What a request this dialect accepted asks for (``body`` JSON-decoded), in neutral terms.

        Called when the journal is read, never while answering: it costs nothing under load.
        ``path`` and ``query`` are as journaled (the query's keys redacted); Gemini names the
        model and the streaming mode in the path.
        """

    def render_error(self, error: ProviderError, at: float = 0.0) -> Reply:
        """An error reply in the provider's envelope, due ``at`` seconds after arrival."""

    def stream_error(self, error: ProviderError) -> bytes:
        """One in-stream error event."""

    def malformed(self, frame: bytes) -> bytes:
        """A copy of stream frame ``frame`` whose payload is not valid JSON."""

    def static_routes(self, catalogue: Catalogue) -> tuple[StaticRoute, ...]:
        """Routes such as the model list."""
