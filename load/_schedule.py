"""The open loop's arrival schedule: when each request is meant to be sent, decided before the run.

A closed loop (N users, each sending its next request when the last one ends) lets a slow
target slow the load down, so its latencies hide the wait a real client would have had
(coordinated omission). An open loop sends on a schedule fixed in advance, whatever the target
does, and counts every latency from the *intended* send time: a send the generator could not
make on time is reported as late, never quietly shifted.

The schedule is a pure function of (mode, rate, duration, seed): every locust process of a
distributed run computes the same one and takes its share (request ``i`` goes to worker
``i % workers``), so a run with two workers sends exactly the requests a single process would.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["ARRIVAL_MODES", "LATE_THRESHOLD_S", "START_DELAY_S", "Schedule"]

#: open-loop arrival processes: evenly spaced sends, or a Poisson process (exponential gaps)
ARRIVAL_MODES = ("constant", "poisson")

#: a send more than this after its intended time counts as late (the generator fell behind)
LATE_THRESHOLD_S = 0.010

#: the schedule starts this long after its user does, so that a locust process's own start-up
#: (spawning, the first reports to a master) does not land on its first sends; the run time is
#: longer by as much
START_DELAY_S = 0.5


@dataclass(frozen=True)
class Schedule:
    """Intended send offsets (seconds from the start of the run), all before ``duration_s``."""

    mode: str
    rate: float
    duration_s: float
    seed: int = 1

    def __post_init__(self) -> None:
        if self.mode not in ARRIVAL_MODES:
            raise ValueError(f"unknown arrival mode {self.mode!r}; choose from {', '.join(ARRIVAL_MODES)}")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"the arrival rate must be a positive number of requests/s, got {self.rate!r}")
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ValueError("the run time must be positive")

    def offsets(self) -> list[float]:
        """Every intended send time of the run, ascending."""
        if self.mode == "constant":
            count = math.ceil(self.rate * self.duration_s - 1e-9)
            return [i / self.rate for i in range(count)]
        draw = random.Random(f"gateproof-arrivals:{self.seed}").expovariate
        offsets: list[float] = []
        t = draw(self.rate)
        while t < self.duration_s:
            offsets.append(t)
            t += draw(self.rate)
        return offsets

    def share(self, worker: int, workers: int) -> list[tuple[int, float]]:
        """(schedule index, offset) of the requests worker ``worker`` of ``workers`` sends."""
        if workers < 1 or not 0 <= worker < workers:
            raise ValueError(f"worker {worker} of {workers} does not exist")
        return [(i, t) for i, t in enumerate(self.offsets()) if i % workers == worker]
