"""The per-request JSON-lines log: one line per finished request, for analysis outside gateproof.

The histograms answer the usual questions; this file answers the others (which requests were
slow, when, on which leg, for what reason). Each locust process appends to its own file as its
requests end (buffered; flushed when the test stops), the runner concatenates them, so the log
costs no memory however long the run. Times are milliseconds; ``scheduled_at``/``sent_at`` are
wall-clock seconds. The API key never reaches it (nothing of the request's headers is written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from gateproof.load._measurement import Measurement

__all__ = ["RECORD_FIELDS", "RequestLog", "record_of"]

#: the keys of every line, in order (documented in docs/load.md)
RECORD_FIELDS = (
    "index",
    "leg",
    "cid",
    "scheduled_at",
    "sent_at",
    "lag_ms",
    "status",
    "ok",
    "reason",
    "ttfb_ms",
    "ttft_ms",
    "e2e_ms",
    "gaps_ms",
    "chunk_delays_ms",
    "output_tokens",
    "server_ms",
)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def record_of(measurement: Measurement) -> dict[str, object]:
    """One request's line (latencies count from the intended send time in an open loop)."""
    m = measurement
    return {
        "index": m.index,
        "leg": m.leg,
        "cid": m.cid,
        "scheduled_at": m.scheduled_wall,
        "sent_at": m.started_wall,
        "lag_ms": _ms(m.lag),
        "status": m.status,
        "ok": m.ok,
        "reason": m.reason,
        "ttfb_ms": _ms(m.ttfb),
        "ttft_ms": _ms(m.ttft),
        "e2e_ms": _ms(m.e2e),
        "gaps_ms": [round(g * 1000.0, 3) for g in m.inter_chunk],
        "chunk_delays_ms": [round(d * 1000.0, 3) for d in m.chunk_delays],
        "output_tokens": m.output_tokens,
        "server_ms": dict(m.server_ms),
    }


class RequestLog:
    """Appends one JSON line per measurement to ``path`` (opened on the first line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def __call__(self, measurement: Measurement) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8", buffering=1 << 16)
        self._file.write(json.dumps(record_of(measurement), separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
