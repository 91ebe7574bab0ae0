"""What one chat request measured, independent of how it was sent.

The locustfile fills one :class:`Measurement` per request (streaming or not) and
hands it to the recorder; keeping it a plain dataclass lets the recorder and the
stream analysis be tested without locust or a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateproof.load._compression import CompressionSample

__all__ = ["METRICS", "Measurement"]

#: latency metrics gateproof records, in the order reports list them
METRICS = ("ttfb", "ttft", "inter_chunk", "tpot", "e2e")


@dataclass
class Measurement:
    """One request's outcome. Durations are seconds from just before the request was sent.

    - ``ttfb``: until the response's status line and headers had arrived;
    - ``ttft``: until the first chunk carrying non-empty content had arrived;
    - ``inter_chunk``: gaps between consecutive content chunks' arrivals;
    - ``tpot``: (last content chunk - first content chunk) / (output tokens - 1);
    - ``e2e``: until the last byte of the response had arrived.
    """

    started_wall: float
    ok: bool = True
    #: why the request failed (a grammar rule name, ``http_503``, ``timeout``, ...)
    reason: str | None = None
    #: an HTTP status line came back (False for refused connections and connect timeouts)
    got_response: bool = False
    status: int = 0
    output_tokens: int = 0
    ttfb: float | None = None
    ttft: float | None = None
    e2e: float | None = None
    tpot: float | None = None
    inter_chunk: list[float] = field(default_factory=list)
    #: what the gateway said about compressing this request (compression scenario only)
    compression: CompressionSample | None = None
    #: open loop: the schedule index and the intended send time (wall clock, seconds); the
    #: latencies of an open-loop request count from the intended time (``lag`` added back in),
    #: so a late send is never hidden (no coordinated omission)
    index: int | None = None
    scheduled_wall: float | None = None
    #: seconds from the intended send time to the actual send (open loop; None otherwise)
    lag: float | None = None
    #: "target" or "baseline" (a paired run's two legs; "target" otherwise)
    leg: str = "target"
    #: the correlation id the request carried ("" for none)
    cid: str = ""
    #: the mock's chunk stamps (``gateproof.openapi.parse_stamps``), when it stamped them: per
    #: stamped chunk, client arrival minus provider send, in seconds, in stamp order
    chunk_delays: list[float] = field(default_factory=list)
    #: stamps seen, client events carrying more than one stamp, stamps cut across events,
    #: sequence numbers never seen; ``buffered``: content arrived in a burst after a wait
    stamps: int = 0
    coalesced: int = 0
    split: int = 0
    missing: int = 0
    buffered: bool = False
    #: timings the server reported about this request (``compression.time_ms``, debug timings),
    #: name -> milliseconds
    server_ms: dict[str, float] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        """Mark the request failed; the first reason found is the one kept."""
        if self.ok:
            self.ok = False
            self.reason = reason
