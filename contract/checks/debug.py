"""Checks of Edgee's tags and debug switches: the ``debug`` object (D8) and the request log (D7).

Tags never reaching the provider is ``edgee_fields_not_forwarded`` (journal): body ``tags`` is a
gateway field of the spec and ``X-Edgee-Tags`` an ``X-Edgee-*`` header. What the gateway does
with them is seen in its structured request log, when the target declares where it writes one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._extras import (
    DEBUG_FIELD,
    asked,
    carrier,
    header_value,
    is_stream_answer,
    tags_header,
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
from gateproof.openapi import PROVIDER_HEADER

__all__ = [
    "CID_TAG_PREFIX",
    "debug_absent_unless_asked",
    "debug_matches_upstream",
    "debug_present_when_asked",
    "merged_tags",
    "tags_recorded_in_request_log",
]

_STATUS = "status_code_expected"
_PRESENT = "debug_present_when_asked"
_SCHEMAS = ("response_schema_conformance", "chunk_schema_conformance")
#: the string fields D8 requires of debug (timings_ms, an object of durations, is judged apart)
_DEBUG_STRINGS = ("request_id", "provider", "upstream_model")
#: a body tag that starts so carries the scenario's correlation id: how a check finds its log line
CID_TAG_PREFIX = "gateproof-cid:"
#: the most of a request log the check reads (from its end): a run's lines are the newest
_LOG_TAIL_BYTES = 8 * 1024 * 1024


def _debug_payloads(ctx: CheckContext) -> list[Any]:
    return ctx.observed.chunks if is_stream_answer(ctx.observed) else [carrier(ctx.observed)]


@check(profiles=EDGEE_ONLY, depends_on=(_STATUS,))
def debug_absent_unless_asked(ctx: CheckContext) -> None:
    """An answer carries no debug object unless enable_debug or X-Edgee-Debug asked for it (D7, D8)."""
    if asked(ctx, DEBUG_FIELD) is True:
        raise NotApplicable("the request asked for debug")
    payloads = _debug_payloads(ctx)
    carrying = [i for i, p in enumerate(payloads) if isinstance(p, dict) and DEBUG_FIELD in p]
    if carrying:
        where = f"chunk {carrying[0]}" if is_stream_answer(ctx.observed) else "the body"
        raise CheckFailed(
            f"debug was not asked for, yet {where} carries a debug object",
            expected="no debug object",
            actual=json.dumps(payloads[carrying[0]].get(DEBUG_FIELD))[:200],
        )


def _debug(ctx: CheckContext) -> dict[str, Any]:
    value = carrier(ctx.observed).get(DEBUG_FIELD)
    if not isinstance(value, dict):
        where = "on the stream's last chunk" if is_stream_answer(ctx.observed) else "in the body"
        raise CheckFailed(
            f"debug was asked for, but there is no debug object {where}",
            expected="debug {request_id, provider, upstream_model, timings_ms}",
            actual=json.dumps(value)[:200],
        )
    return value


@check(profiles=EDGEE_ONLY, depends_on=(_STATUS,), defers_to=_SCHEMAS)
def debug_present_when_asked(ctx: CheckContext) -> None:
    """When debug is asked for, the answer carries debug with request_id, provider, upstream_model and timings_ms (D8)."""
    if asked(ctx, DEBUG_FIELD) is not True:
        raise NotApplicable("the request did not ask for debug")
    debug = _debug(ctx)
    issues = [f"{name} is not a non-empty string" for name in _DEBUG_STRINGS if not _text(debug.get(name))]
    timings = debug.get("timings_ms")
    if not isinstance(timings, dict) or not all(_duration(v) for v in timings.values()):
        issues.append("timings_ms is not an object of durations >= 0")
    if issues:
        schema_failed = next((name for name in _SCHEMAS if name in ctx.failed), None)
        if schema_failed is not None:
            raise Redundant(schema_failed)  # DebugInfo in the spec requires all of these
        raise CheckFailed(
            f"debug.{issues[0]}" + (f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""),
            expected="request_id, provider, upstream_model strings; timings_ms durations",
            actual=json.dumps(debug)[:300],
        )


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _duration(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


@check(profiles=EDGEE_ONLY, requires=frozenset({Requirement.MOCK_JOURNAL}), depends_on=(_STATUS, _PRESENT))
def debug_matches_upstream(ctx: CheckContext) -> None:
    """debug.provider names the provider of X-Edgee-Provider and debug.upstream_model the model it received (D8)."""
    if asked(ctx, DEBUG_FIELD) is not True:
        raise NotApplicable("the request did not ask for debug")
    debug = _debug(ctx)
    forwarded = ctx.upstream_request().body
    model = forwarded.get("model") if isinstance(forwarded, dict) else None
    if debug.get("upstream_model") != model:
        raise CheckFailed(
            f"debug.upstream_model is {debug.get('upstream_model')!r}, the provider was asked for {model!r}",
            expected=repr(model),
            actual=repr(debug.get("upstream_model")),
        )
    provider = ctx.observed.headers.get(PROVIDER_HEADER.lower())
    if provider is not None and debug.get("provider") != provider:
        raise CheckFailed(
            f"debug.provider is {debug.get('provider')!r}, X-Edgee-Provider says {provider!r}",
            expected=repr(provider),
            actual=repr(debug.get("provider")),
        )


def merged_tags(body: Any, header: str | None) -> list[str]:
    """The tags of a request per D7: body tags first, then the header's (trimmed, empties dropped), no repeats."""
    tags = [
        tag for tag in (body.get("tags") if isinstance(body, dict) else None) or [] if isinstance(tag, str)
    ]
    if header is not None:
        tags += [tag.strip() for tag in header.split(",")]
    return list(dict.fromkeys(tag for tag in tags if tag))


def _log_lines(path: Path) -> list[str]:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            data = handle.read()
    except OSError as exc:
        raise CheckFailed(
            f"the declared request log {path} cannot be read ({exc.strerror or exc})",
            expected="a readable JSON-lines file",
            actual=type(exc).__name__,
        ) from None
    # JSON Lines ends a record at "\n" only: str.splitlines would also cut at U+2028, U+0085, ...,
    # which a gateway may legitimately write raw inside a string
    return [line.rstrip("\r") for line in data.decode("utf-8", "replace").split("\n") if line.strip()]


@check(profiles=EDGEE_ONLY, severity=Severity.ERROR, depends_on=(_STATUS,))
def tags_recorded_in_request_log(ctx: CheckContext) -> None:
    """The request log line of a request holds its merged tags (D7) and its key's name, never the key."""
    if ctx.request_log is None:
        raise NotApplicable("the target declares no request log (request_log)")
    wanted = merged_tags(ctx.request_body, header_value(ctx.scenario.headers, tags_header()))
    marker = next((tag for tag in wanted if tag.startswith(CID_TAG_PREFIX)), None)
    if marker is None:
        raise NotApplicable(f"the request carries no {CID_TAG_PREFIX} tag to find its log line by")
    lines = _log_lines(Path(ctx.request_log))
    if ctx.client_key and any(ctx.client_key in line for line in lines):
        raise CheckFailed(
            "the request log holds the client's key",
            expected="key names only",
            actual="the key itself (redacted here)",
        )
    records = [record for record in map(_record, lines) if marker in record.get("tags", [])]
    if not records:
        raise CheckFailed(
            f"no line of the request log carries the request's tag {marker!r}",
            expected=f"a line with tags {wanted}",
            actual=f"{len(lines)} lines, none with it",
        )
    record = records[-1]
    if record.get("tags") != wanted:
        raise CheckFailed(
            f"the request log records tags {record.get('tags')}, not the merged {wanted} (D7)",
            expected=json.dumps(wanted),
            actual=json.dumps(record.get("tags"))[:300],
        )
    key = record.get("key")
    if not _text(key):
        raise CheckFailed(
            "the request log line names no key", expected="the key's name", actual=json.dumps(key)[:100]
        )


def _record(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    if not isinstance(value, dict) or not isinstance(value.get("tags"), list):
        return {}
    return value
