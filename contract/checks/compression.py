"""Checks of Edgee's token compression: the ``compression`` object of a chat answer, and ``/v1/compress``.

The oracle is the provider, not the gateway's own arithmetic: each compression scenario also
sends the same body without the switch (the ``baseline`` step), whose ``usage.prompt_tokens`` is
what the uncompressed prompt costs. That works on any gateway behind any provider; with the mock
wired in, the journal adds what the provider really received (its token count, the needles).
"""

from __future__ import annotations

import json
import math
from typing import Any

from gateproof.contract.checks._context import CheckContext, Observed
from gateproof.contract.checks._extras import (
    COMPRESSION_FIELD,
    asked,
    carrier,
    edgee_field,
    is_stream_answer,
    prompt_tokens,
)
from gateproof.contract.checks._registry import (
    EDGEE_ONLY,
    CheckFailed,
    NotApplicable,
    Redundant,
    Requirement,
    check,
)
from gateproof.contract.results import Severity
from gateproof.openapi import JournalRecord

__all__ = [
    "BASELINE_STEP",
    "COMPRESS_STEP",
    "compress_endpoint_matches_chat",
    "compression_absent_unless_asked",
    "compression_cost_savings_consistent",
    "compression_fields_in_range",
    "compression_keeps_needles",
    "compression_never_lengthens_prompt",
    "compression_on_final_chunk_only",
    "compression_present_when_asked",
    "compression_reduction_consistent",
    "compression_saved_tokens_match_baseline",
    "compression_time_within_latency",
]

#: the step that sends the scenario's body without the compression switch: the uncompressed cost
BASELINE_STEP = "baseline"
#: the step that sends the scenario's body to POST /v1/compress
COMPRESS_STEP = "compress"

_MOCK = frozenset({Requirement.MOCK_JOURNAL})
_STATUS = "status_code_expected"
_PRESENT = "compression_present_when_asked"
_RANGE = "compression_fields_in_range"
_SAVED = "compression_saved_tokens_match_baseline"
_PLACED = "compression_on_final_chunk_only"
#: what the figures of the compression object need first: it is there, where D1 puts it, well typed
_JUDGED = (_STATUS, _PRESENT, _PLACED, _RANGE)
_CHUNK_SCHEMA = "chunk_schema_conformance"
#: the check that judges usage.prompt_tokens against the provider's count: when it failed, every
#: figure derived from prompt_tokens is that failure again
_USAGE = "usage_matches_provider"
_SCHEMAS = ("response_schema_conformance", "chunk_schema_conformance")
#: the integer fields of CompressionInfo (D2)
_COUNTS = ("saved_tokens", "cost_savings", "time_ms")
#: D2: reduction has two decimals; a tolerance of one unit in the last place, plus float noise
_REDUCTION_TOLERANCE = 0.01 + 1e-9


def _require_asked(ctx: CheckContext) -> None:
    if asked(ctx, COMPRESSION_FIELD) is not True:
        raise NotApplicable("the request did not ask for compression")


def _compression(observed: Observed, what: str = "the answer") -> dict[str, Any]:
    """The compression object where D1 puts it; the check fails when it is missing or not an object."""
    value = edgee_field(observed, COMPRESSION_FIELD)
    if not isinstance(value, dict):
        where = "on the stream's last chunk" if is_stream_answer(observed) else "in the body"
        raise CheckFailed(
            f"{what} carries no compression object {where}",
            expected="compression {saved_tokens, cost_savings, reduction, time_ms}",
            actual=json.dumps(value)[:200],
        )
    return value


def _count(compression: dict[str, Any], name: str) -> int:
    value = compression.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CheckFailed(
            f"compression.{name} is not an integer", expected="an integer", actual=json.dumps(value)[:100]
        )
    return value


def _number(value: Any) -> float | None:
    """A JSON number as a float (None for anything else, booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _forwarded_prompt_tokens(records: list[JournalRecord], what: str) -> int:
    """The prompt tokens the provider counted for the last request it received during ``what``."""
    if not records:
        raise CheckFailed(
            f"the provider received no request during {what}", expected="one request", actual="none"
        )
    usage = records[-1].usage or {}
    value = usage.get("prompt_tokens")
    if not isinstance(value, int) or isinstance(value, bool):
        raise NotApplicable(f"the provider recorded no prompt_tokens for {what}")
    return value


@check(profiles=EDGEE_ONLY, depends_on=(_STATUS,))
def compression_absent_unless_asked(ctx: CheckContext) -> None:
    """An answer to a request that switched compression off carries no compression object (D3)."""
    if asked(ctx, COMPRESSION_FIELD) is not False:
        raise NotApplicable("the request did not switch compression off (a key's default may turn it on)")
    payloads = ctx.observed.chunks if is_stream_answer(ctx.observed) else [carrier(ctx.observed)]
    carrying = [i for i, p in enumerate(payloads) if isinstance(p, dict) and COMPRESSION_FIELD in p]
    if carrying:
        where = f"chunk {carrying[0]}" if is_stream_answer(ctx.observed) else "the body"
        raise CheckFailed(
            f"compression was switched off, yet {where} carries a compression object",
            expected="no compression object",
            actual=json.dumps(payloads[carrying[0]].get(COMPRESSION_FIELD))[:200],
        )


@check(profiles=EDGEE_ONLY, depends_on=(_STATUS,))
def compression_present_when_asked(ctx: CheckContext) -> None:
    """An answer to a request that asked for compression carries the compression object, zeros included (D3)."""
    _require_asked(ctx)
    observed = ctx.observed
    if is_stream_answer(observed) and any(_carries(chunk) for chunk in observed.chunks):
        return  # where in the stream is compression_on_final_chunk_only's to judge
    _compression(observed)


def _carries(chunk: Any) -> bool:
    return isinstance(chunk, dict) and COMPRESSION_FIELD in chunk


@check(profiles=EDGEE_ONLY, depends_on=(_STATUS, _PRESENT, _PLACED), defers_to=_SCHEMAS)
def compression_fields_in_range(ctx: CheckContext) -> None:
    """compression's saved_tokens, cost_savings and time_ms are integers >= 0, reduction a percentage in [0, 100] with two decimals (D2)."""
    _require_asked(ctx)
    compression = _compression(ctx.observed)
    issues: list[str] = []
    for name in _COUNTS:
        value = compression.get(name)
        if type(value) is not int or value < 0:
            issues.append(f"{name} is {json.dumps(value)}, not an integer >= 0")
    reduction = _number(compression.get("reduction"))
    if reduction is None or not 0 <= reduction <= 100:
        issues.append(f"reduction is {json.dumps(compression.get('reduction'))}, not a number in [0, 100]")
    schema_failed = next((name for name in _SCHEMAS if name in ctx.failed), None)
    if issues and schema_failed is not None:
        # the spec's CompressionInfo says all of the above: the schema check reported it
        raise Redundant(schema_failed)
    if reduction is not None and not issues and round(reduction, 2) != reduction:
        issues.append(f"reduction is {reduction!r}, not rounded to two decimals")
    if issues:
        raise CheckFailed(
            f"compression.{issues[0]}" + (f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""),
            expected="saved_tokens, cost_savings, time_ms integers >= 0; reduction in [0, 100], 2 decimals",
            actual=json.dumps(compression)[:300],
        )


def _baseline_prompt_tokens(ctx: CheckContext) -> int:
    return prompt_tokens(ctx.require_step(BASELINE_STEP), "the uncompressed baseline")


def _redundant_when_usage_failed(ctx: CheckContext) -> None:
    if _USAGE in ctx.failed:
        raise Redundant(_USAGE, f"skipped because {_USAGE} failed: prompt_tokens is already wrong")


@check(profiles=EDGEE_ONLY, depends_on=_JUDGED, defers_to=(_USAGE,))
def compression_saved_tokens_match_baseline(ctx: CheckContext) -> None:
    """saved_tokens equals the uncompressed baseline's usage.prompt_tokens minus this answer's (D2)."""
    _require_asked(ctx)
    compression = _compression(ctx.observed)
    _redundant_when_usage_failed(ctx)
    baseline = _baseline_prompt_tokens(ctx)
    billed = prompt_tokens(ctx.observed, "the compressed answer")
    saved = _count(compression, "saved_tokens")
    if saved != baseline - billed:
        raise CheckFailed(
            f"saved_tokens is {saved}, but the same body uncompressed costs {baseline} prompt tokens and "
            f"compressed {billed}: {baseline - billed} saved",
            expected=str(baseline - billed),
            actual=str(saved),
        )


@check(profiles=EDGEE_ONLY, depends_on=_JUDGED, defers_to=(_USAGE,))
def compression_reduction_consistent(ctx: CheckContext) -> None:
    """reduction equals saved_tokens / (usage.prompt_tokens + saved_tokens) x 100, to two decimals (D2)."""
    _require_asked(ctx)
    compression = _compression(ctx.observed)
    _redundant_when_usage_failed(ctx)
    saved = _count(compression, "saved_tokens")
    billed = prompt_tokens(ctx.observed, "the compressed answer")
    original = billed + saved
    expected = saved / original * 100 if original else 0.0
    reduction = _number(compression.get("reduction"))
    if reduction is None or abs(reduction - expected) > _REDUCTION_TOLERANCE:
        raise CheckFailed(
            f"reduction is {json.dumps(compression.get('reduction'))}, but {saved} saved of {original} original prompt tokens "
            f"is {expected:.2f} %",
            expected=f"{expected:.2f}",
            actual=json.dumps(compression.get("reduction")),
        )


@check(profiles=EDGEE_ONLY, depends_on=_JUDGED)
def compression_cost_savings_consistent(ctx: CheckContext) -> None:
    """cost_savings is saved_tokens x the model's input price in micro-USD (declared prices), else 0 exactly when nothing was saved (D2)."""
    _require_asked(ctx)
    compression = _compression(ctx.observed)
    saved = _count(compression, "saved_tokens")
    cost = _count(compression, "cost_savings")
    price = ctx.declared_input_price
    if price is not None:
        # D2: USD per million tokens x tokens = micro-USD, rounded (either way at the half)
        exact = saved * price
        if abs(cost - exact) > 0.5 + 1e-9:
            raise CheckFailed(
                f"cost_savings is {cost} micro-USD, but {saved} saved tokens at the declared input price "
                f"of {price:g} USD per million tokens are {exact:.1f}",
                expected=str(round(exact)),
                actual=str(cost),
            )
        return
    # Undeclared, the price is the gateway's own configuration: what holds for every positive
    # price is that a saving is worth something and no saving nothing.
    if (saved == 0) != (cost == 0):
        raise CheckFailed(
            f"cost_savings is {cost} for {saved} saved tokens: "
            + ("a saving at a positive input price is worth something" if saved else "nothing was saved"),
            expected="cost_savings > 0" if saved else "cost_savings 0",
            actual=str(cost),
        )


@check(profiles=EDGEE_ONLY, requires=_MOCK, severity=Severity.ERROR, depends_on=(_STATUS,))
def compression_keeps_needles(ctx: CheckContext) -> None:
    """Every fact planted in a compressed prompt (an error line, a failing test, a value) reaches the provider."""
    _require_asked(ctx)
    if not ctx.scenario.needles:
        raise NotApplicable("the scenario plants no needles")
    text = ctx.upstream_request().body_text()
    lost = [needle for needle in ctx.scenario.needles if needle not in text]
    if lost:
        raise CheckFailed(
            f"{len(lost)} of {len(ctx.scenario.needles)} planted facts did not reach the provider; "
            f"first: {lost[0][:120]!r}",
            expected="every needle verbatim in the forwarded prompt",
            actual="; ".join(needle[:80] for needle in lost[:5]),
        )


@check(profiles=EDGEE_ONLY, requires=_MOCK, severity=Severity.ERROR, depends_on=(_STATUS,))
def compression_never_lengthens_prompt(ctx: CheckContext) -> None:
    """With compression the provider receives no more prompt tokens than the same body without it."""
    _require_asked(ctx)
    compressed = _forwarded_prompt_tokens(ctx.require_journal(), "the compressed request")
    ctx.require_step(BASELINE_STEP)
    original = _forwarded_prompt_tokens(ctx.step_journal(BASELINE_STEP), "the uncompressed baseline")
    if compressed > original:
        raise CheckFailed(
            f"compression made the prompt longer: the provider counted {compressed} prompt tokens, "
            f"{original} without compression",
            expected=f"<= {original}",
            actual=str(compressed),
        )


@check(profiles=EDGEE_ONLY, depends_on=_JUDGED)
def compression_time_within_latency(ctx: CheckContext) -> None:
    """compression.time_ms is no longer than the whole request took, as the client measured it."""
    _require_asked(ctx)
    time_ms = _count(_compression(ctx.observed), "time_ms")
    # the gateway may round its wall time up to the next millisecond
    latency_ms = ctx.observed.end_s * 1000.0
    if time_ms > math.ceil(latency_ms):
        raise CheckFailed(
            f"compression.time_ms is {time_ms} ms, but the whole request took {latency_ms:.1f} ms",
            expected=f"<= {math.ceil(latency_ms)}",
            actual=str(time_ms),
        )


@check(profiles=EDGEE_ONLY, depends_on=(_STATUS, _PRESENT), defers_to=(_CHUNK_SCHEMA,))
def compression_on_final_chunk_only(ctx: CheckContext) -> None:
    """In a stream, the compression object rides on the last chunk before [DONE] and on no other (D1)."""
    _require_asked(ctx)
    ctx.require_stream()
    chunks = ctx.observed.chunks
    early = [index for index, chunk in enumerate(chunks[:-1]) if _carries(chunk)]
    # D27 (the chunk schema) already forbids compression on a chunk with choices: its failure says that
    content = [index for index in early if chunks[index].get("choices")]
    own = [index for index in early if index not in content]
    last = bool(chunks) and _carries(chunks[-1])
    if last and not own and content and _CHUNK_SCHEMA in ctx.failed:
        raise Redundant(
            _CHUNK_SCHEMA, f"skipped because {_CHUNK_SCHEMA} failed: compression on content chunks"
        )
    if not last or early:
        also = (
            f"chunk {early[0]}" if len(early) == 1 else f"chunks {early[:5]}" if early else "no other chunk"
        )
        raise CheckFailed(
            (
                f"compression rides on {also} before the last"
                if last
                else f"the last chunk carries no compression ({also} carries it)"
            )
            + f" of {len(chunks)} (D1: the last chunk before [DONE] only)",
            expected=f"compression on chunk {len(chunks) - 1} only",
            actual=f"on {also}" + (" and the last" if last else ""),
        )


@check(
    profiles=EDGEE_ONLY,
    requires=_MOCK,
    severity=Severity.ERROR,
    depends_on=(_STATUS, _PRESENT),
    defers_to=(_SAVED,),
)
def compress_endpoint_matches_chat(ctx: CheckContext) -> None:
    """POST /v1/compress returns the messages chat compression forwards for the same body, and the same saving."""
    _require_asked(ctx)
    answer = ctx.require_step(COMPRESS_STEP)
    if answer.status != 200:
        raise CheckFailed(
            f"POST /v1/compress answered HTTP {answer.status}",
            expected="200",
            actual=answer.body[:200].decode("utf-8", "replace"),
        )
    body = answer.json()
    forwarded = ctx.upstream_request().body
    messages = forwarded.get("messages") if isinstance(forwarded, dict) else None
    got = body.get("messages") if isinstance(body, dict) else None
    if got != messages:
        differ = _first_difference(got, messages)
        raise CheckFailed(
            "the messages /v1/compress returns differ from what chat compression sent the provider"
            + (f" (from message {differ})" if differ is not None else ""),
            expected=json.dumps(messages)[:300],
            actual=json.dumps(got)[:300],
        )
    info = body.get(COMPRESSION_FIELD) if isinstance(body, dict) else None
    if not isinstance(info, dict):
        raise CheckFailed(
            "the /v1/compress answer has no compression object", expected="an object", actual=repr(info)[:100]
        )
    before, after = info.get("uncompressed_input_tokens"), info.get("compressed_input_tokens")
    if type(before) is not int or type(after) is not int:
        raise CheckFailed(
            "/v1/compress reports no integer uncompressed_input_tokens and compressed_input_tokens",
            expected="two integers",
            actual=json.dumps(info)[:200],
        )
    saved = _count(_compression(ctx.observed), "saved_tokens")
    if before - after != saved and _SAVED in ctx.failed:
        raise Redundant(_SAVED, f"skipped because {_SAVED} failed: chat's saved_tokens is already wrong")
    if before - after != saved:
        raise CheckFailed(
            f"/v1/compress saves {before} - {after} = {before - after} tokens, chat compression of the "
            f"same body {saved}",
            expected=str(saved),
            actual=str(before - after),
        )


def _first_difference(got: Any, expected: Any) -> int | None:
    """The index of the first message that differs, when both are lists."""
    if not isinstance(got, list) or not isinstance(expected, list):
        return None
    for index, (a, b) in enumerate(zip(got, expected, strict=False)):
        if a != b:
            return index
    return min(len(got), len(expected)) if len(got) != len(expected) else None
