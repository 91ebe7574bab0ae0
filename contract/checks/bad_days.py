"""Checks of the failure matrix (D48): what a gateway owes when its provider has a bad day.

They read the mock's journal of the scenario's correlation id: every request the provider
received for one client request, retries and fallbacks included (the gateway sends the same
conversation, so the same directive and cid, each time). The status, the envelope and the
stream's error event are judged by the checks that judge them everywhere
(``status_code_expected``, ``error_code_expected``, ``stream_error_propagated``,
``retry_after_passed_on``); these add what only a bad day shows: how often the provider was
asked, which route answered and whether the answer says so, and what became of a stall, a
drip and a client that left.
"""

from __future__ import annotations

from typing import Any

from gateproof.contract._bad_days import MAX_UPSTREAM_ATTEMPTS, BadDay
from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._registry import (
    EDGEE_ONLY,
    CheckFailed,
    NotApplicable,
    Profile,
    Redundant,
    Requirement,
    check,
)
from gateproof.contract.results import Layer, Severity
from gateproof.openapi import FALLBACK_HEADER, FALLBACK_USED_VALUES, PROVIDER_HEADER, JournalRecord

__all__ = [
    "CANCEL_WITHIN_S",
    "drip_delivered_whole",
    "fallback_header_truthful",
    "fallback_served",
    "idle_stall_cut_off",
    "no_retry_after_first_chunk",
    "retries_as_decided",
    "upstream_attempts_bounded",
    "upstream_cancelled_on_disconnect",
]

_MOCK = frozenset({Requirement.MOCK_JOURNAL})
_STATUS = ("status_code_expected",)
_BOUNDED = "upstream_attempts_bounded"
#: a gateway closes the provider's request within this many seconds of its client leaving (D46)
CANCEL_WITHIN_S = 2.0


def _day(ctx: CheckContext) -> BadDay:
    if ctx.scenario.bad_day is None:
        raise NotApplicable("not a failure-matrix scenario")
    return ctx.scenario.bad_day


def _route(record: JournalRecord) -> tuple[str | None, str, Any]:
    """Where a request went: the dialect, the path (Gemini names the model there) and the body's model."""
    model = record.body.get("model") if isinstance(record.body, dict) else None
    return record.dialect, record.path, model


def _tried(records: list[JournalRecord]) -> str:
    """The attempts in one line: ``openai 500, openai 500, anthropic 200`` (``openai 200 aborted``: cut short)."""
    shown = [
        " ".join(
            str(part)
            for part in (record.dialect or record.path, record.status, record.outcome)
            if part is not None and part != "complete"
        )
        for record in records[:8]
    ]
    more = f", +{len(records) - 8} more" if len(records) > 8 else ""
    return ", ".join(shown) + more


def _fallback_answered(records: list[JournalRecord]) -> bool:
    """Whether the request that produced the answer (the last one) went to another route than the first."""
    return _route(records[-1]) != _route(records[0])


@check(requires=_MOCK, severity=Severity.ERROR)
def upstream_attempts_bounded(ctx: CheckContext) -> None:
    """One client request costs the provider at most 5 upstream requests, retries and fallbacks included (D44)."""
    if ctx.journal is None:
        raise NotApplicable("the target is not wired to the gateproof mock")
    # a gateway that answered without calling the provider made 0 attempts: within the bound
    records = ctx.journal
    if len(records) > MAX_UPSTREAM_ATTEMPTS:
        raise CheckFailed(
            f"one client request reached the provider {len(records)} times ({_tried(records)}): a gateway "
            f"that asks a failing provider more than {MAX_UPSTREAM_ATTEMPTS} times multiplies the load "
            "of a provider that is already overloaded",
            expected=f"at most {MAX_UPSTREAM_ATTEMPTS} upstream requests",
            actual=str(len(records)),
        )


@check(
    profiles=EDGEE_ONLY,
    requires=_MOCK,
    severity=Severity.ERROR,
    depends_on=(*_STATUS, "fallback_served"),
    defers_to=(_BOUNDED,),
)
def retries_as_decided(ctx: CheckContext) -> None:
    """A provider failure before the first byte is tried as D44 decides: 2 attempts on the route, 1 per fallback, 1 when not retried."""
    wanted = _day(ctx).attempts
    if wanted is None:
        raise NotApplicable("the row does not judge attempts")
    records = ctx.require_journal()
    if _BOUNDED in ctx.failed:
        raise Redundant(_BOUNDED)
    got = len(records)
    if got == wanted:
        return
    if got < wanted:
        why = "the failure was not retried" if got == 1 else "fewer attempts than decided"
    elif wanted == 1:
        why = "a failure D44 does not retry (no answer in time, the gateway's own credential refused, an unusable answer) was retried"
    else:
        why = "more attempts than decided"
    raise CheckFailed(
        f"{why}: {got} upstream request(s) ({_tried(records)}), D44 makes {wanted} on this row "
        "(2 on the requested model's route, 1 on each fallback, no retry for a timeout, a refused "
        "credential or an unusable answer)",
        expected=f"{wanted} upstream request(s)",
        actual=str(got),
    )


@check(requires=_MOCK, severity=Severity.ERROR, defers_to=(_BOUNDED,))
def no_retry_after_first_chunk(ctx: CheckContext) -> None:
    """Once the provider's stream has started, the gateway never asks the provider again (D45)."""
    records = ctx.require_journal()
    if len(records) <= 1:
        return
    if _BOUNDED in ctx.failed:
        raise Redundant(_BOUNDED)
    raise CheckFailed(
        f"the provider's stream had started and the gateway asked again: {len(records)} upstream "
        f"requests ({_tried(records)}); the client already read content from the first, which a "
        "second answer repeats or contradicts",
        expected="1 upstream request",
        actual=str(len(records)),
    )


@check(requires=_MOCK, severity=Severity.WARNING)
def fallback_header_truthful(ctx: CheckContext) -> None:
    """X-Edgee-Fallback-Used says true (or 1) only when a fallback route answered, and (edgee) always when one did (D44)."""
    # A warning: the official SDK never reads the header, so no client breaks on it; what it
    # misleads is the monitoring and the billing that count fallbacks.
    name = FALLBACK_HEADER.lower()
    sent = ctx.observed.headers.get(name)
    says_used = sent is not None and sent.strip().lower() in FALLBACK_USED_VALUES
    spellings = " or ".join(FALLBACK_USED_VALUES)
    if ctx.journal is not None and not ctx.journal and sent is None:
        raise NotApplicable("nothing reached the provider, and the answer claims no fallback")
    records = ctx.require_journal()
    if _fallback_answered(records):
        if says_used or ctx.profile is not Profile.EDGEE or ctx.observed.status >= 400:
            return
        raise CheckFailed(
            f"a fallback route answered ({_tried(records)}) and {FALLBACK_HEADER} "
            + ("is missing" if sent is None else f"says {sent!r}"),
            expected=f"{FALLBACK_HEADER}: {spellings}",
            actual="missing" if sent is None else sent,
        )
    if says_used or (sent is not None and ctx.profile is Profile.EDGEE):
        raise CheckFailed(
            f"the requested model's own route answered ({_tried(records)}), yet {FALLBACK_HEADER} is "
            f"{sent!r}: an answer from the primary carries no such header",
            expected=f"no {FALLBACK_HEADER}",
            actual=str(sent),
        )


@check(requires=_MOCK, severity=Severity.ERROR)
def fallback_served(ctx: CheckContext) -> None:
    """A model whose primary route keeps failing is answered 200 by its fallback route, which X-Edgee-Provider names (edgee) (D44)."""
    records = ctx.require_journal()
    status = ctx.observed.status
    first = records[0]
    others = [record for record in records if _route(record) != _route(first)]
    if status != 200:
        what = (
            f"though the fallback route was tried ({_tried(records)})"
            if others
            else f"after {len(records)} upstream request(s), all on the primary route ({_tried(records)}): "
            "the configured fallback was never tried"
        )
        raise CheckFailed(
            f"got HTTP {status} {what}", expected="200 from the fallback route", actual=f"HTTP {status}"
        )
    if not _fallback_answered(records):
        raise CheckFailed(
            f"the answer came from the primary route ({_tried(records)}), not from the fallback: the "
            "primary was asked again after its two attempts",
            expected="the fallback route's answer",
            actual=f"{len(records)} requests to {first.dialect}",
        )
    if ctx.profile is not Profile.EDGEE:
        return
    provider = ctx.observed.headers.get(PROVIDER_HEADER.lower(), "").strip()
    answered = records[-1]
    if not provider:
        raise CheckFailed(
            f"the fallback ({answered.dialect}) answered and {PROVIDER_HEADER} is missing",
            expected=f"{PROVIDER_HEADER} naming the fallback's provider",
            actual="missing",
        )
    if answered.dialect != first.dialect and provider.lower() == (first.dialect or "").lower():
        raise CheckFailed(
            f"the fallback ({answered.dialect}) answered and {PROVIDER_HEADER} still names the primary "
            f"({provider})",
            expected=f"{PROVIDER_HEADER} naming the fallback's provider",
            actual=provider,
        )


def _stall_seconds(ctx: CheckContext) -> str:
    delay = ctx.scenario.mock.get("fault_ms")
    return f"{float(str(delay)) / 1000:g} s" if delay is not None else "a while"


@check(layer=Layer.STREAM, requires=_MOCK, severity=Severity.ERROR, depends_on=_STATUS)
def idle_stall_cut_off(ctx: CheckContext) -> None:
    """A provider stream that pauses past the declared idle timeout ends in an error event (edgee: provider_timeout, no [DONE]) (D46)."""
    stream = ctx.require_stream()
    summary = stream.summary
    if summary.error is None:
        pause = f"the provider paused its stream for {_stall_seconds(ctx)}, past the declared idle timeout"
        if summary.finish_reason is not None:
            reason, actual = f"{pause}, and the gateway waited it out: the stream finished whole", "waited"
        elif summary.done:
            reason = f"{pause}; the stream ended with [DONE] and no finish_reason: a cut answer passed off as whole"
            actual = "clean [DONE]"
        else:
            reason, actual = f"{pause}; the stream ended without an error event", "no error event"
        raise CheckFailed(
            reason, expected="a D9 error event (provider_timeout), then the end without [DONE]", actual=actual
        )
    if ctx.profile is not Profile.EDGEE:
        return
    code = summary.error.get("code") if isinstance(summary.error, dict) else None
    if code != "provider_timeout":
        raise CheckFailed(
            f"the stall was cut off with error code {code!r}",
            expected="'provider_timeout'",
            actual=repr(code),
        )
    if summary.done:
        raise CheckFailed(
            "data: [DONE] followed the timeout's error event",
            expected="the stream ends after the error event",
            actual="[DONE] sent",
        )


@check(layer=Layer.STREAM, requires=_MOCK, severity=Severity.ERROR, depends_on=_STATUS)
def drip_delivered_whole(ctx: CheckContext) -> None:
    """A slow provider stream whose every event arrives within the idle timeout reaches the client whole: finish_reason, [DONE], no error."""
    stream = ctx.require_stream()
    summary = stream.summary
    missing = []
    if summary.error is not None:
        missing.append("an error event arrived")
    if summary.finish_reason is None:
        missing.append("no finish_reason")
    if not summary.done:
        missing.append("no [DONE]")
    if not missing:
        return
    record = ctx.upstream_request()
    sent = f" after {record.chunks_sent} chunks" if record.chunks_sent is not None else ""
    raise CheckFailed(
        f"a slow but steady provider stream did not reach the client whole ({', '.join(missing)}; the "
        f"provider's side: {record.outcome}{sent}): the gateway seems to time the whole stream, not "
        "the gap between two events",
        expected="every chunk, a finish_reason and [DONE]",
        actual="; ".join(missing),
    )


@check(requires=_MOCK, severity=Severity.ERROR)
def upstream_cancelled_on_disconnect(ctx: CheckContext) -> None:
    """A client that hangs up mid-stream makes the gateway close its provider request within 2 s (D46)."""
    left = ctx.client_left_at
    if left is None:
        raise NotApplicable("the stream ended before its first content chunk, so the client could not leave")
    record = ctx.require_journal()[0]
    ended = record.finished_at
    after = f"{ended - left:.1f} s after the client left" if ended is not None else ""
    if record.outcome == "disconnected" and ended is not None and ended - left <= CANCEL_WITHIN_S:
        return
    if record.outcome == "disconnected":
        reason = f"the gateway closed the provider's request only {after}"
    elif record.outcome == "complete":
        reason = (
            f"the provider sent its whole answer ({record.chunks_sent} chunks), the last {after}: the "
            "gateway kept reading (and paying for) a stream nobody reads"
        )
    else:
        reason = f"the provider's request was still {record.outcome} more than {CANCEL_WITHIN_S:g} s after the client left"
    raise CheckFailed(
        reason,
        expected=f"the provider's request closed within {CANCEL_WITHIN_S:g} s (journal outcome disconnected)",
        actual=f"{record.outcome} {after}".strip(),
    )
