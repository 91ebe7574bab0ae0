"""Checks on the status line and the media type, and on whom the target lets in."""

from __future__ import annotations

from gateproof.contract._wire import loads_bounded
from gateproof.contract.checks._context import CheckContext, Observed
from gateproof.contract.checks._registry import CheckFailed, Redundant, check
from gateproof.contract.results import Severity

__all__ = [
    "SERVER_ERROR_OWNERS",
    "auth_enforced",
    "configured_key_accepted",
    "content_type_matches_mode",
    "error_message",
    "not_a_server_error",
    "status_code_expected",
    "status_runs",
]


#: the more specific checks a wrong status is often the symptom of: a 5xx for a client error, or a
#: request the gateway mangled on its way to the provider (which then refused it)
_STATUS_CAUSES = (
    "not_a_server_error",
    "upstream_messages_intact",
    "upstream_system_intact",
    "upstream_tool_results_matched",
    "upstream_params_intact",
    "upstream_model_unprefixed",
)


@check(severity=Severity.ERROR, depends_on=_STATUS_CAUSES)
def status_code_expected(ctx: CheckContext) -> None:
    """The response status is the one the spec prescribes for the scenario."""
    allowed = ctx.scenario.expect.statuses(ctx.profile)
    if ctx.observed.status not in allowed:
        raise CheckFailed(
            f"got HTTP {ctx.observed.status}, expected {_statuses(allowed)}",
            expected=status_runs(allowed),
            actual=str(ctx.observed.status),
        )


def status_runs(statuses: frozenset[int]) -> str:
    """``500-599`` for a run of consecutive statuses, ``400, 404`` otherwise (a report reads it whole)."""
    runs: list[list[int]] = []
    for status in sorted(statuses):
        if runs and status == runs[-1][-1] + 1:
            runs[-1].append(status)
        else:
            runs.append([status])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)) for run in runs)


def _statuses(allowed: frozenset[int]) -> str:
    if len(allowed) > 3 and allowed == frozenset(range(min(allowed), max(allowed) + 1)):
        return f"{min(allowed)}-{max(allowed)}"
    return " or ".join(map(str, sorted(allowed)))


@check(severity=Severity.ERROR)
def not_a_server_error(ctx: CheckContext) -> None:
    """A malformed or oversized request never produces a 5xx."""
    if ctx.observed.status >= 500:
        raise CheckFailed(
            f"got HTTP {ctx.observed.status} for a client error",
            expected="4xx",
            actual=str(ctx.observed.status),
        )


#: the checks that report a server error where another status was due: what a crash page's
#: content type and body are folded into (one home; bodies.py uses it too)
SERVER_ERROR_OWNERS = ("not_a_server_error", "status_code_expected")


@check(defers_to=SERVER_ERROR_OWNERS)
def content_type_matches_mode(ctx: CheckContext) -> None:
    """Streaming answers are text/event-stream, everything else application/json."""
    expected = (
        "text/event-stream" if ctx.scenario.stream and ctx.observed.status == 200 else "application/json"
    )
    actual = ctx.observed.content_type
    if actual == expected:
        return
    # A server error where another status was due is one deviation: the crash page's content
    # type is part of it (the status check reports it), not a second root cause.
    owner = next((name for name in SERVER_ERROR_OWNERS if name in ctx.failed), None)
    if ctx.observed.status >= 500 and owner is not None:
        raise Redundant(
            owner,
            f"skipped because {owner} failed: the HTTP {ctx.observed.status} answer's {actual or 'missing'} "
            "Content-Type is part of that deviation",
        )
    raise CheckFailed(f"Content-Type is {actual or 'missing'}", expected=expected, actual=actual)


def error_message(observed: Observed, limit: int = 200) -> str:
    """The ``error.message`` of an answer (or the start of its text), for a one-line reason."""
    try:
        body = loads_bounded(observed.body)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message")
        if isinstance(message, str) and message.strip():
            return message.strip()[:limit]
    return observed.body[:limit].decode("utf-8", "replace").strip()


@check(severity=Severity.ERROR)
def configured_key_accepted(ctx: CheckContext) -> None:
    """A basic request with the configured key is not refused (401/403); otherwise no other result means anything."""
    status = ctx.observed.status
    if status not in (401, 403):
        return
    message = error_message(ctx.observed)
    env = f"${ctx.client_key_env}" if ctx.client_key_env else "the configured key variable"
    raise CheckFailed(
        f"the request with the key in {env} got HTTP {status}"
        + (f": {message}" if message else "")
        + " -- the target refuses the configured key, so every scenario sent with it is skipped",
        expected="the key accepted (a status other than 401 or 403)",
        actual=f"HTTP {status}",
    )


@check(severity=Severity.ERROR)
def auth_enforced(ctx: CheckContext) -> None:
    """Requests without a valid key are refused with 401/403 (a target with auth off serves anyone who reaches it)."""
    status = ctx.observed.status
    if status in (401, 403):
        return
    what = {"missing": "without any key", "wrong": "with a made-up key"}.get(
        ctx.scenario.auth.value, f"with the {ctx.scenario.auth.value} key"
    )
    raise CheckFailed(
        f"a request {what} got HTTP {status}: authentication is off (auth_required: false), so "
        "anyone who can reach the target gets completions",
        expected="401 or 403",
        actual=f"HTTP {status}",
    )
