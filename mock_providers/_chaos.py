"""Which fault a request gets: ``fail_first``, the seeded chaos of load runs, error faults.

Three rules decide the directive a request is planned with, before the planner sees it:

1. ``fail_first=N`` (with a ``cid`` and a ``fault=``, ``status=`` or ``scenario=error``):
   the fault or error applies to the first N requests of that cid (the journal's
   ``attempt``); later ones are planned as if ``fault``, ``fault_after``, ``fault_ms``,
   ``status``, ``retry_after`` and ``scenario=error`` were absent: the answer the other
   keys imply, normally text, streamed when the request streams. This is how a
   gateway's retry is seen absorbing a transient failure. ``route_down=1`` does the same
   by route: the fault or error applies only to requests on the route (dialect) the cid's
   first request came on, so a fallback to another route is answered (a primary route down).
2. Seeded chaos (``gateproof mock --chaos-rate R --chaos-faults a,b --chaos-seed S``): a
   generation request (model lists and unknown routes are never touched) that brings no ``fault=``, ``status=``, ``scenario=error`` or ``fail_first`` / ``route_down``
   of its own gets, with probability R, one of the listed faults, chosen uniformly. The
   draw depends only on the seed and on the request's rank among such requests (the
   n-th one the process parsed, across all dialects): the same seed and the same order
   of requests give the same faults. A stream-only fault drawn for a request that does
   not stream is skipped (that request is answered cleanly and the draw is spent), so
   the rate of faults on non-streamed requests is R times the share of listed faults
   that apply to them.
3. Error faults (``fault=status_503``, ``fault=overload``, or drawn by chaos) become
   ``scenario=error status=N``; ``overload`` is the dialect's own overload status.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from gateproof.mock_providers._directives import NO_DIRECTIVE, Directive
from gateproof.mock_providers._errors import DirectiveError
from gateproof.mock_providers._faults import FAULTS, error_fault_status, is_fault_name

__all__ = ["Chaos", "ChaosPolicy", "parse_chaos_faults", "planned_directive"]

_FAULT_KEYS = ("fault", "fault_after", "fault_ms", "status", "retry_after", "fail_first", "route_down")


@dataclass(frozen=True, slots=True)
class ChaosPolicy:
    """The seeded chaos of a load run: how often, which faults, from which seed."""

    rate: float
    faults: tuple[str, ...]
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"the chaos rate must be from 0 to 1, got {self.rate}")
        if not self.faults:
            raise ValueError("the chaos needs at least one fault")
        unknown = [name for name in self.faults if not is_fault_name(name)]
        if unknown:
            raise ValueError(
                f"unknown chaos fault {', '.join(map(repr, unknown))}; known: {', '.join(FAULTS)},"
                " overload, status_400..status_599"
            )
        if self.seed < 0:
            raise ValueError(f"the chaos seed must not be negative, got {self.seed}")


def parse_chaos_faults(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Fault names from ``a,b,c`` (or a list), blanks dropped."""
    items = raw.split(",") if isinstance(raw, str) else raw
    return tuple(name.strip() for name in items if name.strip())


class Chaos:
    """The draws of one mock process (its state is the rank of the next eligible request)."""

    def __init__(self, policy: ChaosPolicy) -> None:
        self.policy = policy
        self._rank = itertools.count(1)

    def draw(self) -> str | None:
        """The fault for the next eligible request, or None."""
        rank = next(self._rank)
        digest = hashlib.blake2b(
            rank.to_bytes(8, "big"), key=self.policy.seed.to_bytes(8, "big"), digest_size=16
        ).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= self.policy.rate:
            return None
        return self.policy.faults[int.from_bytes(digest[8:], "big") % len(self.policy.faults)]


def _cleared(planned: Directive) -> Directive:
    """``planned`` without its fault and error keys: the request is answered as if they were absent."""
    cleared: dict[str, object] = {key: None for key in _FAULT_KEYS}
    if planned.scenario == "error":
        cleared["scenario"] = None
    return dataclasses.replace(planned, **cleared)  # type: ignore[arg-type]


def _asks_for_failure(directive: Directive) -> bool:
    return directive.fault is not None or directive.status is not None or directive.scenario == "error"


def planned_directive(
    directive: Directive | None,
    *,
    attempt: int | None,
    stream: bool,
    overload_status: int,
    chaos: Chaos | None = None,
    on_first_route: bool | None = None,
) -> Directive:
    """The directive to plan this request with (see the module's rules). Raises ``DirectiveError``."""
    planned = directive or NO_DIRECTIVE
    if planned.route_down is not None:
        if on_first_route is None:
            raise DirectiveError("route_down needs a cid (the directive's, or the correlation header)")
        if not _asks_for_failure(planned):
            raise DirectiveError("route_down needs a fault=, status= or scenario=error to apply")
        if not on_first_route:
            return _cleared(planned)
    if planned.fail_first is not None:
        if attempt is None:
            raise DirectiveError("fail_first needs a cid (the directive's, or the correlation header)")
        if not _asks_for_failure(planned):
            raise DirectiveError("fail_first needs a fault=, status= or scenario=error to apply")
        if attempt > planned.fail_first:
            return _cleared(planned)
    elif chaos is not None and not _asks_for_failure(planned):
        drawn = chaos.draw()
        fault = FAULTS.get(drawn) if drawn is not None else None
        if drawn is not None and not (fault is not None and fault.streams_only and not stream):
            planned = dataclasses.replace(planned, fault=drawn)
    if planned.fault is not None:
        status = error_fault_status(planned.fault, overload_status)
        if status is not None:
            if planned.status is not None:
                raise DirectiveError(f"fault={planned.fault} and status= both set the error status: give one")
            planned = dataclasses.replace(planned, fault=None, scenario="error", status=status)
    return planned
