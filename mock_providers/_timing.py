"""When each piece of an answer is due: absolute deadlines from the request's arrival.

Every deadline is ``t0 + ttft + i * itl`` on :func:`now` (the system's monotonic clock),
where ``t0`` is when the request reached the app and ``i`` counts the chunks that
carry content. Sleeping *until* a deadline, rather than sleeping ``itl`` after the
previous write, keeps lateness from adding up: a chunk delayed by a busy loop does
not push every later chunk back by the same amount.

A non-streamed answer is due when its last piece would have been streamed:
``ttft + (n - 1) * itl`` for ``n`` pieces (just ``ttft`` for an empty answer).

Not the event loop's clock: uvloop's ``loop.time()`` has millisecond steps and is read once
per loop turn, so a ``t0`` taken from it can be a turn old, and a deadline checked against it
passes up to a millisecond early. A chunk must never go out before it is due (a real provider
is never early; a test that asked for 20 ms saw 19.9), so deadlines are set and checked on a
clock read when asked, and a sleep is rounded up to the loop timer's whole milliseconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

__all__ = ["Pacing", "now", "sleep_until"]

#: the clock of every deadline (seconds, monotonic, read when called)
now = time.monotonic


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
    """Sleep until :func:`now` reads ``deadline``; return at once if it has passed.

    Loop timers count whole milliseconds from a clock read once per loop turn, so a timer
    may fire early; the time left is checked again on :func:`now` and slept again, each
    sleep rounded up to a whole millisecond: late by under a millisecond, never early.
    """
    for _ in range(8):
        delay = deadline - now()
        if delay <= 0:
            return
        await asyncio.sleep(math.ceil(delay * 1000.0) / 1000.0)
