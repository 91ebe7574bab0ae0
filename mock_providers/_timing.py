"""When each piece of an answer is due: absolute deadlines from the request's arrival.

Every deadline is ``t0 + ttft + i * itl`` on the event loop's monotonic clock,
where ``t0`` is when the request reached the app and ``i`` counts the chunks that
carry content. Sleeping *until* a deadline, rather than sleeping ``itl`` after the
previous write, keeps lateness from adding up: a chunk delayed by a busy loop does
not push every later chunk back by the same amount.

A non-streamed answer is due when its last piece would have been streamed:
``ttft + (n - 1) * itl`` for ``n`` pieces (just ``ttft`` for an empty answer).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = ["Pacing", "sleep_until"]


# Not frozen: one is built per request, and a frozen dataclass's __init__ costs about five
# times as much. Treat it as immutable all the same: nothing changes one once it is built.
@dataclass(slots=True)
class Pacing:
    """Time to first content and gap between content chunks, in seconds."""

    ttft: float = 0.0
    itl: float = 0.0

    @classmethod
    def from_ms(cls, ttft_ms: float, itl_ms: float) -> Pacing:
        return cls(ttft=ttft_ms / 1000.0, itl=itl_ms / 1000.0)

    def chunk_at(self, index: int) -> float:
        """Offset (s after arrival) at which content chunk ``index`` (0-based) is due."""
        return self.ttft + index * self.itl

    def whole_at(self, pieces: int) -> float:
        """Offset at which a non-streamed answer of ``pieces`` pieces is due."""
        return self.ttft + max(pieces - 1, 0) * self.itl


async def sleep_until(deadline: float) -> None:
    """Sleep until the running loop's clock reads ``deadline``; return at once if it has passed.

    Loop timers have millisecond granularity and may fire a hair early, so the
    remaining time is checked again (a few times at most) rather than trusted.
    """
    loop = asyncio.get_running_loop()
    for _ in range(4):
        delay = deadline - loop.time()
        if delay <= 0:
            return
        await asyncio.sleep(delay)
