"""The exit codes of ``gateproof load``, one home for the command, its docs and the tests.

Like k6's thresholds, an SLO breach has a code of its own, distinct from a run whose requests
failed and from a run that measured the load generator rather than the target. When several
apply, the most fundamental wins: bad input, then an invalid run (its figures mean nothing),
then an unreachable target, then failures, then SLOs.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILURES",
    "EXIT_INVALID_RUN",
    "EXIT_OK",
    "EXIT_SLO_BREACHED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
]

#: the run completed, within the failure budget, and met every SLO
EXIT_OK = 0
#: correctness failures under load over --max-failure-ratio, or the run broke down
EXIT_FAILURES = 1
#: bad input (options, SLO file, workload file, a non-loopback URL, a missing key)
EXIT_USAGE = 2
#: no request got an HTTP status line back
EXIT_UNREACHABLE = 3
#: an SLO of the SLO file was breached
EXIT_SLO_BREACHED = 4
#: the harness was saturated: the load generator, not the target, was the bottleneck (late sends,
#: or an offered rate beyond what calibration measured), so the figures are not a measurement
EXIT_INVALID_RUN = 5

#: code -> meaning, for the command's help and the README
EXIT_CODES = {
    EXIT_OK: "the run completed within the failure budget and met every SLO",
    EXIT_FAILURES: "correctness failures under load over --max-failure-ratio, or the run broke down",
    EXIT_USAGE: "bad input (options, SLO or workload file, non-loopback URL, missing key)",
    EXIT_UNREACHABLE: "no request got an HTTP status line back",
    EXIT_SLO_BREACHED: "an SLO was breached",
    EXIT_INVALID_RUN: "the harness was saturated (the load generator was the bottleneck): the run is invalid",
}
