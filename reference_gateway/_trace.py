"""What one request did and how long each part took: the gateway's own record of it.

Every request gets a :class:`RequestTrace` the moment it arrives, before authentication,
so even a refused request has an id and a latency for the request log. The pipeline
fills it in as it goes (the upstream status and time, the compression step, Edge Tool
rounds); the ``debug`` object (D8) and the request log line are both read from it, so
the two always tell the same story under the same ``request_id``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateproof.reference_gateway._routing import Route
    from gateproof.reference_gateway.compression import Compression

__all__ = ["REQUEST_ID_PREFIX", "RequestTrace"]

#: request ids look like ``req_`` and 24 hex digits
REQUEST_ID_PREFIX = "req_"


def _new_request_id() -> str:
    return REQUEST_ID_PREFIX + secrets.token_hex(12)


def _ms(seconds: float) -> float:
    """Milliseconds, three decimals (a microsecond), never negative."""
    return max(0.0, round(seconds * 1000, 3))


@dataclass
class RequestTrace:
    """One request's id, start time and the measurements the pipeline adds to it.

    ``upstream_s`` and ``upstream_status`` describe the provider calls (several when Edge
    Tools run: the time adds up, the status is the last one's); ``edge_tool_rounds`` counts
    the rounds of Edge Tools the gateway ran itself; ``attempts`` counts every upstream request
    (each retry and fallback is one) and ``served_by`` is the route of the last answer; ``compression_s`` is the wall time of
    the compression step as the pipeline saw it (worker-thread hop included), None when
    compression did not run; ``compression`` is then the engine's result.
    """

    started: float = field(default_factory=time.monotonic)
    upstream_status: int | None = None
    upstream_s: float = 0.0
    compression_s: float | None = None
    compression: Compression | None = None
    edge_tool_rounds: int = 0
    #: upstream requests sent for this client request, retries and fallbacks included (D44)
    attempts: int = 0
    #: the route of the latest upstream attempt (after a success: the one that answered), None before
    served_by: Route | None = None
    #: a fallback route answered one of this request's upstream calls (D44)
    fallback_used: bool = False
    #: set once the request's line is in the request log, so no request is logged twice
    recorded: bool = False
    _request_id: str | None = field(default=None, repr=False)

    @property
    def request_id(self) -> str:
        """The request's id, drawn the first time it is asked for: only a request log line or a
        ``debug`` object names it, so most requests never pay for the random draw."""
        if self._request_id is None:
            self._request_id = _new_request_id()
        return self._request_id

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return _ms(time.monotonic() - self.started)

    def add_upstream(self, seconds: float, status: int | None) -> None:
        """Count one provider call (its status is None when no answer arrived)."""
        self.upstream_s += seconds
        if status is not None:
            self.upstream_status = status

    def timings_ms(self) -> dict[str, Any]:
        """``debug.timings_ms``: ``total`` so far, ``upstream``, and ``compression`` when it ran."""
        timings: dict[str, Any] = {"total": self.elapsed_ms(), "upstream": _ms(self.upstream_s)}
        if self.compression_s is not None:
            timings["compression"] = _ms(self.compression_s)
        return timings
