"""Self-calibration: what this machine's load generator can drive, measured before the run.

An open loop's figures are only about the target while the generator keeps its schedule. Before
the run, a short closed loop with the run's own scenario (and worker count) goes straight to the
mock provider with every provider delay set to zero, so the mock answers as fast as it can and
the figure is the most this generator reaches here. A run whose offered rate (a paired run
sends two requests per scheduled one) exceeds :data:`SAFE_FRACTION` of it is marked invalid: its
latencies would include the generator's own queueing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from gateproof.load._options import LoadOptions
from gateproof.load._runner import run_load
from gateproof.load.results import Calibration

__all__ = ["CALIBRATION_SECONDS", "CALIBRATION_USERS", "SAFE_FRACTION", "calibrate"]

#: the share of the calibrated maximum an open loop may offer and still count as a measurement
SAFE_FRACTION = 0.5
CALIBRATION_SECONDS = 3.0
#: closed-loop users per worker during calibration (enough to keep one process busy)
CALIBRATION_USERS = 16


def calibrate(
    options: LoadOptions,
    *,
    url: str,
    model: str,
    api_key_env: str,
    seconds: float = CALIBRATION_SECONDS,
    safe_fraction: float = SAFE_FRACTION,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Drive the mock at ``url`` as hard as the generator can; judge ``options``' offered rate."""
    if progress is not None:
        progress(f"load: calibrating the load generator against {url} for {seconds:g} s")
    probe = replace(
        options,
        base_url=url,
        model=model,
        api_key_env=api_key_env,
        out_dir=options.out_dir / "calibration",
        arrival="closed",
        users=CALIBRATION_USERS * options.workers,
        spawn_rate=1000.0,
        duration_s=seconds,
        stop_timeout_s=2.0,
        request_timeout_s=None,
        ttft_ms=0,
        itl_ms=0,
        baseline_url="",
        records=False,
        stamp=options.stamp,
    )
    result = run_load(probe)
    max_rate = result.requests_per_s
    offered = options.offered_rate
    valid = max_rate > 0 and offered <= safe_fraction * max_rate
    if max_rate <= 0:
        detail = f"calibration against {url} measured no request ({result.failures} failed)"
    elif valid:
        detail = (
            f"the generator reached {max_rate:.0f} req/s against the mock; the run offers {offered:g} req/s "
            f"({offered / max_rate:.0%} of it, at most {safe_fraction:.0%} allowed)"
        )
    else:
        detail = (
            f"the run offers {offered:g} req/s but this machine's load generator reached only {max_rate:.0f} "
            f"req/s against the mock ({safe_fraction:.0%} of it, {safe_fraction * max_rate:.0f} req/s, is the "
            "most a valid run may offer); add --workers or lower --rate"
        )
    return Calibration(
        url=url,
        max_rate=round(max_rate, 1),
        safe_fraction=safe_fraction,
        offered_rate=offered,
        valid=valid,
        detail=detail,
    )
