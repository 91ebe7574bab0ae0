"""Checks on the status line and the media type."""

from __future__ import annotations

from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._registry import CheckFailed, check

__all__ = ["content_type_matches_mode", "not_a_server_error", "status_code_expected"]


@check()
def status_code_expected(ctx: CheckContext) -> None:
    """The response status is the one the spec prescribes for the scenario."""
    allowed = ctx.scenario.expect.statuses(ctx.profile)
    if ctx.observed.status not in allowed:
        raise CheckFailed(
            f"got HTTP {ctx.observed.status}, expected {' or '.join(map(str, sorted(allowed)))}",
            expected=", ".join(map(str, sorted(allowed))),
            actual=str(ctx.observed.status),
        )


@check()
def not_a_server_error(ctx: CheckContext) -> None:
    """A malformed or oversized request never produces a 5xx."""
    if ctx.observed.status >= 500:
        raise CheckFailed(
            f"got HTTP {ctx.observed.status} for a client error",
            expected="4xx",
            actual=str(ctx.observed.status),
        )


@check()
def content_type_matches_mode(ctx: CheckContext) -> None:
    """Streaming answers are text/event-stream, everything else application/json."""
    expected = (
        "text/event-stream" if ctx.scenario.stream and ctx.observed.status == 200 else "application/json"
    )
    actual = ctx.observed.content_type
    if actual != expected:
        raise CheckFailed(f"Content-Type is {actual or 'missing'}", expected=expected, actual=actual)
