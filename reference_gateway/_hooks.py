"""The gateway's fault seam: the points inside the core where a deliberate deviation may act.

The faults themselves (what each one changes, how it shows, which checks catch it) live in
``gateproof.selftest``, which the gateway never imports; the composition root
(``gateproof gateway --fault NAME``) hands the core the :class:`Hooks` of the chosen fault.
What happens on the wire (the bytes of a stream, response headers, how an error is rendered)
is not here: those faults are ASGI middleware in ``selftest`` that wrap the app's ``send``,
so they need nothing from the core and can stand in front of any gateway.

Each hook is a plain function over a value the core hands it; one left as None is the
identity, and :data:`NO_HOOKS` (the correct gateway) changes nothing:

- ``request``: the parsed client body, before validation (it may refuse the request by
  raising a :class:`GatewayError`);
- ``auth``: the outcome of authentication (a principal or the error);
- ``upstream``: the HTTP request about to be sent to the provider;
- ``response``: a complete (non-stream) response body;
- ``stream``: the whole sequence of stream items (chunks, failure, ``[DONE]``);
- ``models``: the ``GET /v1/models`` body;
- ``edge``: the rules of the Edge Tool machinery (id checks, pending ids, what the client sees);
- ``compress``: the ``POST /v1/compress`` answer body;
- ``log``: a line of the structured request log, before it is written;
- ``translation``: the :class:`TranslationRules` the provider adapters are built with (once,
  at start-up): a fault returns a copy with one rule off;
- ``resilience``: the :class:`ResilienceRules` of retries, fallbacks and cancellation (once, at
  start-up; D44-D46), the same way;
- ``config``: the :class:`GatewayConfig` the gateway is built with (once, at start-up), for a
  fault that ignores one of its limits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from gateproof.reference_gateway._auth import Principal
from gateproof.reference_gateway._call import ChatCall, UpstreamRequest
from gateproof.reference_gateway._config import GatewayConfig
from gateproof.reference_gateway._edge_tools import EdgeRules
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._events import StreamItem
from gateproof.reference_gateway._request_log import RequestRecord
from gateproof.reference_gateway._resilience import ResilienceRules
from gateproof.reference_gateway.providers._translation import TranslationRules

__all__ = [
    "NO_HOOKS",
    "AuthHook",
    "CompressHook",
    "ConfigHook",
    "EdgeHook",
    "Hooks",
    "Items",
    "LogHook",
    "ModelsHook",
    "RequestHook",
    "ResilienceHook",
    "ResponseHook",
    "StreamHook",
    "TranslationHook",
    "UpstreamHook",
]

Items = AsyncIterator[StreamItem]
RequestHook = Callable[[dict[str, Any]], dict[str, Any]]
AuthHook = Callable[[Principal | GatewayError], Principal | GatewayError]
UpstreamHook = Callable[[UpstreamRequest, ChatCall], UpstreamRequest]
ResponseHook = Callable[[dict[str, Any]], dict[str, Any]]
StreamHook = Callable[[Items], Items]
ModelsHook = Callable[[dict[str, Any]], dict[str, Any]]
EdgeHook = Callable[[EdgeRules], EdgeRules]
CompressHook = Callable[[dict[str, Any]], dict[str, Any]]
LogHook = Callable[[RequestRecord], RequestRecord]
TranslationHook = Callable[[TranslationRules], TranslationRules]
ResilienceHook = Callable[[ResilienceRules], ResilienceRules]
ConfigHook = Callable[[GatewayConfig], GatewayConfig]


@dataclass(frozen=True)
class Hooks:
    """What the core runs at each of its fault points; ``name`` is echoed by the health check."""

    name: str = "none"
    request: RequestHook | None = None
    auth: AuthHook | None = None
    upstream: UpstreamHook | None = None
    response: ResponseHook | None = None
    stream: StreamHook | None = None
    models: ModelsHook | None = None
    edge: EdgeHook | None = None
    compress: CompressHook | None = None
    log: LogHook | None = None
    translation: TranslationHook | None = None
    resilience: ResilienceHook | None = None
    config: ConfigHook | None = None

    # The core calls these on every request; each is the identity unless a hook is set.

    def on_request(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request(body) if self.request else body

    def on_auth(self, outcome: Principal | GatewayError) -> Principal | GatewayError:
        return self.auth(outcome) if self.auth else outcome

    def on_upstream(self, request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
        return self.upstream(request, call) if self.upstream else request

    def on_response(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.response(body) if self.response else body

    def on_stream(self, items: Items) -> Items:
        return self.stream(items) if self.stream else items

    def on_models(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.models(body) if self.models else body

    def on_edge(self, rules: EdgeRules) -> EdgeRules:
        return self.edge(rules) if self.edge else rules

    def on_compress(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.compress(body) if self.compress else body

    def on_log(self, record: RequestRecord) -> RequestRecord:
        return self.log(record) if self.log else record

    def on_translation(self, rules: TranslationRules) -> TranslationRules:
        return self.translation(rules) if self.translation else rules

    def on_resilience(self, rules: ResilienceRules) -> ResilienceRules:
        return self.resilience(rules) if self.resilience else rules

    def on_config(self, config: GatewayConfig) -> GatewayConfig:
        return self.config(config) if self.config else config


#: the correct gateway: every hook is the identity
NO_HOOKS = Hooks()
