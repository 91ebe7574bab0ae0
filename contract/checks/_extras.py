"""Reading the Edgee per-request fields of an answer: where they sit, and whether they were asked for.

``compression`` and ``debug`` (like the Edge Tools fields) are facts about the whole request: a
complete response carries them at its top level, a stream on its last chunk before ``[DONE]``
(D1). Whether the client asked for them is read from the request as sent, body field and
``X-Edgee-*`` header alike (D7); the header names come from the spec, their one home. The
compression and debug checks both read answers through this module, so the D1 placement and the
D7 switch rules are written once on the suite's side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateproof.contract.checks._context import CheckContext, Observed
from gateproof.contract.checks._registry import CheckFailed
from gateproof.openapi import COMPRESSION_HEADER, DEBUG_HEADER, TAGS_HEADER

__all__ = [
    "COMPRESSION_FIELD",
    "DEBUG_FIELD",
    "asked",
    "carrier",
    "compression_header",
    "debug_header",
    "edgee_field",
    "header_value",
    "is_stream_answer",
    "prompt_tokens",
    "switch",
    "tags_header",
    "usage_of",
]

#: the body switches (D7) and the response fields they turn on (D1, D3, D8)
COMPRESSION_FIELD = "compression"
DEBUG_FIELD = "debug"
_COMPRESSION_SWITCH = "enable_compression"
_DEBUG_SWITCH = "enable_debug"
#: the boolean spellings of an X-Edgee-* switch header, any letter case (D7)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def compression_header() -> str:
    return COMPRESSION_HEADER


def debug_header() -> str:
    return DEBUG_HEADER


def tags_header() -> str:
    return TAGS_HEADER


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A request header's value, looked up without regard to letter case."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _header_switch(headers: Mapping[str, str], name: str) -> bool | None:
    value = header_value(headers, name)
    if value is None:
        return None
    word = value.strip().lower()
    return True if word in _TRUE else False if word in _FALSE else None


def switch(body: Any, headers: Mapping[str, str], feature: str) -> bool | None:
    """Whether the request turned ``feature`` (``compression`` or ``debug``) on (D7).

    True when the body field or the header says so (either is enough); False when one of them
    says off and neither says on; None when the request says nothing (a per-key default, which
    the suite cannot see, then decides).
    """
    field, header = (
        (_COMPRESSION_SWITCH, compression_header())
        if feature == COMPRESSION_FIELD
        else (_DEBUG_SWITCH, debug_header())
    )
    said = [body.get(field) if isinstance(body, dict) and isinstance(body.get(field), bool) else None]
    said.append(_header_switch(headers, header))
    if True in said:
        return True
    return False if False in said else None


def asked(ctx: CheckContext, feature: str) -> bool | None:
    """``switch`` for the scenario's first request as it was sent."""
    return switch(ctx.request_body, ctx.scenario.headers, feature)


def is_stream_answer(observed: Observed) -> bool:
    return observed.content_type == "text/event-stream"


def carrier(observed: Observed) -> dict[str, Any]:
    """The object that carries the per-request fields: the body, or a stream's last chunk (D1)."""
    if is_stream_answer(observed):
        last = observed.chunks[-1] if observed.chunks else None
        if not isinstance(last, dict):
            raise CheckFailed("the stream has no final chunk", expected="a last chunk (D1)", actual="none")
        return last
    body = observed.json()
    if not isinstance(body, dict):
        raise CheckFailed("the body is not a JSON object", expected="an object", actual=repr(body)[:200])
    return body


def edgee_field(observed: Observed, name: str) -> Any:
    """The per-request field ``name`` where D1 puts it (None when absent)."""
    return carrier(observed).get(name)


def usage_of(observed: Observed) -> dict[str, Any] | None:
    """The usage the answer reports: the body's, or a stream's last chunk that carries one."""
    if is_stream_answer(observed):
        for chunk in reversed(observed.chunks):
            if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
                usage: dict[str, Any] = chunk["usage"]
                return usage
        return None
    found = carrier(observed).get("usage")
    return found if isinstance(found, dict) else None


def prompt_tokens(observed: Observed, what: str) -> int:
    """``usage.prompt_tokens`` of an answer; the check fails when it has none."""
    usage = usage_of(observed)
    value = usage.get("prompt_tokens") if usage is not None else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise CheckFailed(
            f"{what} reports no usage.prompt_tokens", expected="an integer", actual=repr(value)[:100]
        )
    return value
