"""Checks on streams: the grammar rules, equivalence with the non-stream answer, pacing, errors.

Every rule of the stream grammar (``gateproof.contract.stream.RULES``) is registered
here as a check of the stream layer, under the rule's own name, so a report line
reads e.g. ``done_terminates_stream``.
"""

from __future__ import annotations

import json

from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._registry import (
    ALL_PROFILES,
    CHECKS,
    Check,
    CheckFailed,
    CheckFunction,
    NotApplicable,
    Profile,
    Requirement,
    check,
)
from gateproof.contract.results import Layer, Severity
from gateproof.contract.stream import RULES
from gateproof.openapi import json_value

__all__ = ["stream_error_propagated", "stream_matches_non_stream", "stream_not_buffered"]


def _rule_check(rule: str) -> CheckFunction:
    def run(ctx: CheckContext) -> None:
        stream = ctx.require_stream()
        broken = [v for v in stream.violations if v.rule == rule]
        if broken:
            first = broken[0]
            more = f" (+{len(broken) - 1} more)" if len(broken) > 1 else ""
            raise CheckFailed(f"{first.message}{more}", expected=RULES[rule], actual=first.message)

    run.__name__ = rule
    return run


#: rules whose failure no client replay can weigh: billing, and what a client acts on (finish_reason,
#: tool calls); every other rule's severity is measured by replaying the stream
_RULE_SEVERITY: dict[str, Severity] = {
    "usage_chunk_present": Severity.ERROR,
    "usage_totals_add_up": Severity.ERROR,
    "finish_reason_matches_content": Severity.ERROR,
    "tool_call_matches_request": Severity.ERROR,
}
_STATUS = ("status_code_expected",)
#: a broken event-stream framing loses events: what the other rules then see is its consequence
_FRAMING = "sse_framing"

for _rule, _description in RULES.items():
    CHECKS.register(
        Check(
            name=_rule,
            description=_description,
            layer=Layer.STREAM,
            function=_rule_check(_rule),
            profiles=ALL_PROFILES,
            severity=_RULE_SEVERITY.get(_rule),
            depends_on=_STATUS if _rule == _FRAMING else (*_STATUS, _FRAMING),
        )
    )


@check(
    layer=Layer.STREAM,
    severity=Severity.ERROR,
    # events lost to framing, to a payload that is not JSON or to an error event lose their text too
    depends_on=(*_STATUS, _FRAMING, "chunk_is_json", "no_error_event"),
)
def stream_matches_non_stream(ctx: CheckContext) -> None:
    """A stream says what the non-streaming answer to the same request says: text, refusal, tool calls, finish_reason."""
    stream = ctx.require_stream()
    if ctx.companion is None or ctx.journal is None:
        raise NotApplicable("needs a deterministic provider behind the target (the gateproof mock)")
    if ctx.companion.status != 200:
        raise CheckFailed(f"the non-streaming request failed with {ctx.companion.status}")
    choice = (ctx.companion.json().get("choices") or [{}])[0]
    message = choice.get("message") or {}
    expected = message.get("content") or ""
    actual = stream.summary.content
    if actual != expected:
        raise CheckFailed(
            "streamed text differs from the non-streaming answer",
            expected=expected[:200],
            actual=actual[:200],
        )
    refusal = message.get("refusal") or ""
    if refusal and stream.summary.refusal != refusal and stream.summary.content != refusal:
        raise CheckFailed(
            "the non-streaming answer refuses, the stream does not say so",
            expected=refusal[:200],
            actual=(stream.summary.refusal or stream.summary.content)[:200],
        )
    calls = [
        (call.get("function", {}).get("name"), json_value(call.get("function", {}).get("arguments")))
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    ]
    streamed = [(call.name, json_value(call.arguments)) for call in stream.summary.tool_calls]
    if streamed != calls:
        raise CheckFailed(
            "the streamed tool calls differ from the non-streaming answer's",
            expected=json.dumps(calls)[:300],
            actual=json.dumps(streamed)[:300],
        )
    finish = choice.get("finish_reason")
    if stream.summary.finish_reason != finish:
        raise CheckFailed(
            f"the stream finished {stream.summary.finish_reason!r}, the non-streaming answer {finish!r}",
            expected=repr(finish),
            actual=repr(stream.summary.finish_reason),
        )


@check(
    layer=Layer.STREAM,
    requires=frozenset({Requirement.MOCK_JOURNAL}),
    severity=Severity.ERROR,
    depends_on=_STATUS,
)
def stream_not_buffered(ctx: CheckContext) -> None:
    """Chunks reach the client as the provider sends them, not all at the end."""
    times = ctx.observed.content_event_times_s
    if len(times) < 3:
        raise CheckFailed(f"only {len(times)} content events arrived", expected=">= 3 content events")
    spread = times[-1] - times[0]
    itl = float(str(ctx.scenario.mock.get("itl_ms", 0))) / 1000.0
    expected_spread = itl * (len(times) - 1)
    # Pacing survives when the content events are spread over at least half of the provider's pacing.
    if spread < expected_spread / 2:
        raise CheckFailed(
            f"content events arrived within {spread * 1000:.0f} ms; the provider paced them over "
            f"{expected_spread * 1000:.0f} ms",
            expected=f">= {expected_spread * 500:.0f} ms between first and last content event",
            actual=f"{spread * 1000:.0f} ms",
        )


@check(
    layer=Layer.STREAM,
    requires=frozenset({Requirement.MOCK_JOURNAL}),
    severity=Severity.ERROR,
    depends_on=_STATUS,
)
def stream_error_propagated(ctx: CheckContext) -> None:
    """A provider failure after the stream started reaches the client as an error event (edgee: and no [DONE])."""
    stream = ctx.require_stream()
    if stream.summary.error is None:
        raise CheckFailed(
            "the stream ended without an error event",
            expected='data: {"error": {...}} and no [DONE] (decision D9)',
            actual="done" if stream.summary.done else "no error event",
        )
    # The error event is what an OpenAI client raises on; ending without [DONE] as well is D9 (Edgee).
    if stream.summary.done and ctx.profile is Profile.EDGEE:
        raise CheckFailed(
            "data: [DONE] followed a mid-stream error",
            expected="the stream ends after the error event",
            actual="[DONE] sent",
        )
