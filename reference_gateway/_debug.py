"""The ``debug`` object (D8, D34): what a client asked to see about how its request was served.

It is built at the end of the request (complete response or last stream chunk), from the
request's :class:`~gateproof.reference_gateway._trace.RequestTrace`, so its ``request_id``
is the one in the request log line and its timings cover the whole request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateproof.reference_gateway._call import ChatCall
from gateproof.reference_gateway._usage import Usage
from gateproof.reference_gateway.compression import Compression

__all__ = ["debug_builder"]


def debug_builder(call: ChatCall, compressed: Compression | None) -> Callable[[Usage], dict[str, Any]]:
    """A builder for ``call.extras`` of the ``debug`` object of ``call``.

    Always: ``request_id``, ``provider``, ``upstream_model``, ``timings_ms`` (``total``,
    ``upstream``, and ``compression`` when it ran), ``upstream_status`` (the provider's HTTP
    status, of the last call when there were several), ``edge_tool_rounds`` (0 when the
    gateway ran no Edge Tool) and ``upstream_attempts`` (every provider request, retries and
    fallbacks included, D44); ``provider`` and ``upstream_model`` are those of the route that
    answered. When compression ran: ``compression`` with the engine's
    ``strategies``, ``saved_tokens`` and ``changed_messages``.
    """
    trace = call.trace

    def build(usage: Usage) -> dict[str, Any]:
        # the route that answered: a fallback's when one did (D44)
        route = trace.served_by or call.route
        info: dict[str, Any] = {
            "request_id": trace.request_id,
            "provider": route.provider.name,
            "upstream_model": route.upstream_model,
            "timings_ms": trace.timings_ms(),
            "edge_tool_rounds": trace.edge_tool_rounds,
            "upstream_attempts": trace.attempts,
        }
        if trace.upstream_status is not None:
            info["upstream_status"] = trace.upstream_status
        if compressed is not None:
            info["compression"] = {
                "strategies": list(compressed.strategies),
                "saved_tokens": max(0, compressed.saved_tokens),
                "changed_messages": compressed.changed_messages,
            }
        return info

    return build
