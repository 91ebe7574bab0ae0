"""Capacity search: step the arrival rate up until an SLO breaks, and keep the highest rate that held.

The search is pure: the caller hands it a ``run_step(rate) -> LoadResult`` that runs one open-loop
step (the lead's runner, or a fake in the tests), and it decides, step by step, whether to go on.
A step *holds* when it is a valid measurement, its failures are within the failure budget and it
meets every SLO. The search stops at the first step that does not hold, because a higher rate
would only measure a target already past its limit:

- a breached SLO or failures over the budget: the capacity is the last step that held;
- an invalid step (``LoadResult.invalid``: the load generator could not keep the schedule, so
  the step measured the harness; or ``LoadResult.error``: the run broke down): nothing is known
  about the target at that rate, so the capacity is *at least* the last step that held.

Goodput is the successful requests per second of a step (its request rate times the share that
succeeded); the result's goodput is the one at the capacity rate.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from gateproof.load._slo import Slo, evaluate
from gateproof.load.results import CapacityResult, CapacityStep, LoadResult

__all__ = ["FAILURE_BUDGET", "MAX_STEPS", "describe_capacity", "parse_rates", "search_capacity"]

#: the name a step's ``breaches`` carries when its failures were over the failure budget
FAILURE_BUDGET = "max_failure_ratio"
#: the most steps one search may plan (each step is a run of its own)
MAX_STEPS = 100


def _step(rate: float, result: LoadResult, slos: Sequence[Slo], max_failure_ratio: float) -> CapacityStep:
    breaches = [outcome.metric for outcome in evaluate(slos, result) if not outcome.met]
    ratio = result.failures / result.requests if result.requests else 1.0
    if ratio > max_failure_ratio:
        breaches.append(FAILURE_BUDGET)
    invalid = result.invalid or (f"the run broke down: {result.error}" if result.error else "")
    successes = max(result.requests - result.failures, 0)
    goodput = result.requests_per_s * successes / result.requests if result.requests else 0.0
    achieved = result.arrivals.achieved_rate if result.arrivals is not None else result.requests_per_s
    return CapacityStep(
        rate=rate,
        achieved_rate=achieved,
        requests=result.requests,
        failures=result.failures,
        goodput=goodput,
        met=not breaches and not invalid,
        breaches=breaches,
        invalid=invalid,
        e2e_p99_ms=e2e.p99 if (e2e := result.latencies.get("e2e")) is not None else None,
        ttft_p99_ms=ttft.p99 if (ttft := result.latencies.get("ttft")) is not None else None,
    )


def _check_rates(rates: Sequence[float]) -> list[float]:
    if not rates:
        raise ValueError("a capacity search needs at least one rate")
    bad = [rate for rate in rates if not (math.isfinite(rate) and rate > 0)]
    if bad:
        raise ValueError(f"rates must be positive numbers, got {', '.join(f'{r:g}' for r in bad)}")
    ordered = sorted(rates)
    repeated = sorted({a for a, b in itertools.pairwise(ordered) if a == b})
    if repeated:
        raise ValueError(f"rate {', '.join(f'{r:g}' for r in repeated)} is given twice")
    return ordered


def search_capacity(
    rates: Sequence[float],
    run_step: Callable[[float], LoadResult],
    slos: list[Slo],
    *,
    max_failure_ratio: float,
) -> CapacityResult:
    """Run ``run_step`` at each rate, lowest first, until a step does not hold (module docstring).

    ``capacity_rate`` is the highest rate that held (None when the first step did not), and
    ``goodput`` the successful requests per second at that rate. ``step_duration_s`` is the first
    step's ``duration_s``. ValueError for no rates, a rate that is not positive, or a repeated one.
    """
    ordered = _check_rates(rates)
    if not 0.0 <= max_failure_ratio <= 1.0:
        raise ValueError(f"max_failure_ratio must be between 0 and 1, got {max_failure_ratio:g}")
    capacity = CapacityResult()
    for rate in ordered:
        result = run_step(rate)
        if not capacity.steps:
            capacity.step_duration_s = result.duration_s
        step = _step(rate, result, slos, max_failure_ratio)
        capacity.steps.append(step)
        if not step.met:
            break
        capacity.capacity_rate = step.rate
        capacity.goodput = step.goodput
    return capacity


def describe_capacity(capacity: CapacityResult) -> str:
    """One sentence on what the search found, for the console and the reports."""
    if not capacity.steps:
        return "no capacity step was run"
    last = capacity.steps[-1]
    found = capacity.capacity_rate
    held = f"{found:g} req/s (goodput {capacity.goodput:.1f} successful req/s)" if found is not None else ""
    if last.met:
        return f"every step held: capacity is at least {held}, the highest rate tried"
    if last.invalid:
        why = f"at {last.rate:g} req/s the step is invalid ({last.invalid})"
        return f"capacity is at least {held}; {why}" if held else f"no capacity found: {why}"
    why = f"{last.rate:g} req/s breached {', '.join(last.breaches)}"
    return f"capacity {held}; {why}" if held else f"no capacity found: the first step, {why}"


def _number(text: str, what: str, source: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"rates {source!r}: {what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"rates {source!r}: {what} must be a positive number, got {text.strip()!r}")
    return value


def parse_rates(text: str) -> tuple[float, ...]:
    """The arrival rates (req/s) of a capacity search, ascending.

    ``"50:400:50"`` is start:stop:step, stop included when the steps land on it (50, 100, ...,
    400); ``"50,100,200"`` lists them. ValueError, quoting the text, for anything else: an empty
    list, a rate that is not a positive number, a list that does not ascend, a stop below the
    start, or more than ``MAX_STEPS`` steps.
    """
    source = text
    text = text.strip()
    if not text:
        raise ValueError(
            "rates: none given (write start:stop:step, e.g. 50:400:50, or a list, e.g. 50,100,200)"
        )
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"rates {source!r}: a range is start:stop:step, e.g. 50:400:50")
        start, stop, step = (
            _number(p, w, source) for p, w in zip(parts, ("start", "stop", "step"), strict=True)
        )
        if stop < start:
            raise ValueError(f"rates {source!r}: stop {stop:g} is below start {start:g}")
        # a tolerance of one millionth of a step, so 0.1:0.3:0.1 keeps 0.3
        count = math.floor((stop - start) / step + 1e-6) + 1
        if count > MAX_STEPS:
            raise ValueError(f"rates {source!r}: {count} steps; at most {MAX_STEPS}")
        return tuple(round(start + i * step, 9) for i in range(count))
    rates = tuple(_number(part, "rate", source) for part in text.split(","))
    if len(rates) > MAX_STEPS:
        raise ValueError(f"rates {source!r}: {len(rates)} steps; at most {MAX_STEPS}")
    for earlier, later in itertools.pairwise(rates):
        if later <= earlier:
            raise ValueError(f"rates {source!r}: must ascend, but {later:g} follows {earlier:g}")
    return rates
