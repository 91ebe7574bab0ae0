"""The directive: how a test tells the mock what to answer, through any gateway.

Gateways drop unknown headers and rewrite model names, but they forward the
conversation. So the test writes its wishes into the **last user message**, as
one token anywhere in its text::

    [[gateproof scenario=text tokens=40 ttft_ms=200 itl_ms=20 cid=abc]]

Grammar: ``[[gateproof`` then zero or more whitespace-separated ``key=value``
pairs, then ``]]``. Keys are lower case, values have no spaces and no ``]``;
each key at most once; at most one directive per message. Keys:

=============  ===========================================================================
scenario       ``text`` (default) | ``tool_call`` | ``refusal`` | ``length`` | ``error``
tokens         answer length in tokens for text/length (0..100000; default 12 or --tokens)
tool           function to call (default: the forced ``tool_choice``, else the first tool
               in the request, else the built-in ``gateproof_lookup``)
calls          how many tool calls in one answer (1..16, default 1), over the request's tools
script         tool calls over several turns: rounds split by ``;``, the calls of one round
               by ``+`` (``edgee_generate_uuid;edgee_current_time+get_weather``); round n is
               answered when the conversation holds n assistant tool-call messages after
               the last user message; after the last round the other keys decide (text)
status         HTTP status of ``scenario=error`` (400..599, default 500)
retry_after    seconds for the ``Retry-After`` header of an error (default 1 on 429 and 503)
ttft_ms        time to the first content chunk (0..600000; default --ttft-ms)
itl_ms         gap between content chunks (0..600000; default --itl-ms)
cid            correlation id for the journal ([A-Za-z0-9._:-], at most 128 characters)
fault          a provider fault by name: ``mid_stream_error``, ``no_done``, ``cut``,
               ``truncate``, ``reset``, ``malformed_chunk``, ``slow_headers``, ``stall``,
               ``drip`` (``gateproof.mock_providers.FAULTS``), or an error before the
               stream: ``status_<400..599>`` (same as ``status=``) or ``overload`` (the
               provider's own overload status: Anthropic 529, 503 elsewhere)
fault_after    content chunks sent before the fault strikes (default: half of them)
fault_ms       delay of waiting faults: ``slow_headers`` and ``stall`` (default 1000),
               the time one frame takes under ``drip`` (default 200)
fail_first     1..100: the fault or error (``fault``, ``status``, ``scenario=error``)
               applies only to the first N requests with this ``cid`` (which is then
               required); later ones are answered as if those keys were absent
route_down     1: the fault or error applies only to requests on the route (dialect) where
               this ``cid`` first arrived, the others are answered as if those keys were
               absent: the primary route is down and a fallback route is up (needs a cid)
seed           any non-negative integer; changes the generated text, ids and arguments
cached         prompt tokens read from the provider's cache (0..10000000, clamped to the
               prompt; default 0): the prompt count is unchanged, the dialect reports the
               cached part natively (OpenAI ``prompt_tokens_details.cached_tokens``,
               Anthropic ``cache_read_input_tokens`` beside ``input_tokens`` less them,
               Gemini ``cachedContentTokenCount``)
stamp          1: chunk stamps (``gateproof.openapi.STAMP_DIRECTIVE_KEY``). In a stream, the
               text of every content chunk that carries text (answer or refusal, every
               dialect) starts with ``format_stamp(seq, sent_us)`` (``~gp:<seq>:<us>~``):
               ``seq`` counts the stream's content chunks from 0, ``sent_us`` is the wall
               clock (``time.time_ns() // 1000``) when the chunk is written to the socket.
               Tool-call chunks (JSON arguments) and non-streamed answers are not stamped.
               Usage does not count the stamps: they are the harness's marks on the wire,
               not generated text, so ``usage``, the journal's ``true_usage`` and Gemini's
               running ``candidatesTokenCount`` are those of the same answer unstamped
               (a gateway that re-counts the content it relays counts the stamps too)
=============  ===========================================================================

Without ``scenario`` the other keys imply one: a ``script`` round still to answer, ``tool``
or ``calls`` mean ``tool_call``, ``status`` means ``error`` (as does a request whose ``tool_choice`` forces a tool);
otherwise, and without a directive at all, the answer is plain text of the default length.
An unknown key, a repeated key, a bad value or a broken directive is answered
with a 400 provider error that names the problem; ``cid`` is still read from a
rejected directive when its own value is valid, so the journal can find it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from gateproof.mock_providers._errors import DirectiveError
from gateproof.mock_providers._faults import FAULTS, OVERLOAD, is_fault_name
from gateproof.openapi import CORRELATION_HEADER, STAMP_DIRECTIVE_KEY
from gateproof.openapi._directive import DIRECTIVE_MARKER, DIRECTIVE_PATTERN

__all__ = [
    "NO_DIRECTIVE",
    "SCENARIOS",
    "Directive",
    "directive_cid",
    "directive_help",
    "find_directive",
    "parse_directive",
]

SCENARIOS = ("text", "tool_call", "refusal", "length", "error")

#: the syntax has one home, shared with every part that writes directives
MARKER = DIRECTIVE_MARKER
_DIRECTIVE = DIRECTIVE_PATTERN
_CID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,19}")


# Not frozen: one is built per request, and a frozen dataclass's __init__ costs about five
# times as much. Treat it as immutable all the same: nothing changes one once it is built.
@dataclass(slots=True)
class Directive:
    """The parsed directive; ``None`` means the key was not given."""

    scenario: str | None = None
    tokens: int | None = None
    tool: str | None = None
    calls: int | None = None
    script: tuple[tuple[str, ...], ...] | None = None
    status: int | None = None
    retry_after: int | None = None
    ttft_ms: int | None = None
    itl_ms: int | None = None
    cid: str | None = None
    fault: str | None = None
    fault_after: int | None = None
    fault_ms: int | None = None
    seed: int | None = None
    cached: int | None = None
    fail_first: int | None = None
    route_down: int | None = None
    #: chunk stamps (the key is ``STAMP_DIRECTIVE_KEY``; the field bears its name)
    stamp: int | None = None

    def given(self) -> dict[str, Any]:
        """The keys that were set, as a JSON-ready mapping (what the journal records)."""
        return {name: value for name in _FIELD_NAMES if (value := getattr(self, name)) is not None}


#: the directive's keys in field order (``dataclasses.fields`` is slow to ask on every request)
_FIELD_NAMES = tuple(f.name for f in fields(Directive))

#: what a request without a directive is planned with: one shared object, so a plan made from
#: it can be told apart from a plan made from a directive the chaos or ``fail_first`` rewrote
NO_DIRECTIVE = Directive()


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def convert(key: str, raw: str) -> int:
        if _DIGITS.fullmatch(raw) and low <= int(raw) <= high:
            return int(raw)
        raise ValueError(f"{key} must be an integer from {low} to {high}, got {raw!r}")

    return convert


def _choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def convert(key: str, raw: str) -> str:
        if raw in choices:
            return raw
        raise ValueError(f"{key} must be one of {', '.join(choices)}; got {raw!r}")

    return convert


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[str, str], str]:
    def convert(key: str, raw: str) -> str:
        if pattern.fullmatch(raw):
            return raw
        raise ValueError(f"{key} must be {what}, got {raw!r}")

    return convert


#: the most rounds, and calls in one round, a script may hold
MAX_SCRIPT_ROUNDS = 16
MAX_SCRIPT_CALLS = 16


def _script(key: str, raw: str) -> tuple[tuple[str, ...], ...]:
    rounds = tuple(tuple(part.split("+")) for part in raw.split(";"))
    if len(rounds) > MAX_SCRIPT_ROUNDS or any(len(calls) > MAX_SCRIPT_CALLS for calls in rounds):
        raise ValueError(
            f"{key} holds at most {MAX_SCRIPT_ROUNDS} rounds of at most {MAX_SCRIPT_CALLS} calls, got {raw!r}"
        )
    if not all(_NAME.fullmatch(name) for calls in rounds for name in calls):
        raise ValueError(
            f"{key} must be function names joined by '+' (one round) and ';' (rounds), got {raw!r}"
        )
    return rounds


def _fault(key: str, raw: str) -> str:
    if is_fault_name(raw):
        return raw
    raise ValueError(
        f"unknown fault {raw!r}; known faults: {', '.join(FAULTS)}, {OVERLOAD}, status_400..status_599"
    )


_MS = _integer(0, 600_000)
#: key -> converter (raises ValueError with a message naming the problem)
_KEYS: dict[str, Callable[[str, str], Any]] = {
    "scenario": _choice(SCENARIOS),
    "tokens": _integer(0, 100_000),
    "tool": _pattern(_NAME, "a function name ([A-Za-z0-9_-], at most 64 characters)"),
    "calls": _integer(1, 16),
    "script": _script,
    "status": _integer(400, 599),
    "retry_after": _integer(0, 86_400),
    "ttft_ms": _MS,
    "itl_ms": _MS,
    "cid": _pattern(_CID, "made of [A-Za-z0-9._:-], at most 128 characters"),
    "fault": _fault,
    "fault_after": _integer(0, 100_000),
    "fault_ms": _MS,
    "seed": _integer(0, 2**63 - 1),
    "cached": _integer(0, 10_000_000),
    "fail_first": _integer(1, 100),
    "route_down": _integer(1, 1),
    STAMP_DIRECTIVE_KEY: _integer(1, 1),
}


def find_directive(text: str) -> str | None:
    """The body of the one directive in ``text`` (``""`` for a bare ``[[gateproof]]``), or ``None``."""
    if MARKER not in text:
        return None
    found = _DIRECTIVE.findall(text)
    if len(found) != text.count(MARKER):
        raise DirectiveError("a '[[gateproof' marker is not followed by 'key=value' pairs and ']]'")
    if len(found) > 1:
        raise DirectiveError("more than one directive in the last user message")
    body: str = found[0]
    return body


def parse_directive(text: str) -> Directive | None:
    """Read the directive in ``text``; ``None`` when there is none. Raises ``DirectiveError``."""
    body = find_directive(text)
    if body is None:
        return None
    pairs: dict[str, str] = {}
    problems: list[str] = []
    for item in body.split():
        key, sep, raw = item.partition("=")
        if not sep or not key or not raw:
            problems.append(f"expected key=value, got {item!r}")
        elif key not in _KEYS:
            problems.append(f"unknown key {key!r}; known keys: {', '.join(_KEYS)}")
        elif key in pairs:
            problems.append(f"key {key!r} given twice")
        else:
            pairs[key] = raw
    raw_cid = pairs.get("cid")
    cid = raw_cid if raw_cid is not None and _CID.fullmatch(raw_cid) else None
    values: dict[str, Any] = {}
    for key, raw in pairs.items():
        try:
            values[key] = _KEYS[key](key, raw)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise DirectiveError("; ".join(problems), cid=cid)
    return Directive(**values)


def directive_cid(text: str) -> str | None:
    """The correlation id of the directive in ``text``, or ``None``.

    Read also from a directive the mock rejects (when the id itself is valid), so every dialect
    can file a refused request under the test that sent it.
    """
    try:
        directive = parse_directive(text)
    except DirectiveError as rejected:
        return rejected.cid
    return directive.cid if directive is not None else None


def directive_help() -> str:
    """The grammar, for ``gateproof mock --help``."""
    return (
        "Directives: put one token anywhere in the last user message, e.g.\n"
        "  [[gateproof scenario=tool_call tool=get_weather ttft_ms=200 itl_ms=20 cid=t42]]\n"
        "keys: " + ", ".join(_KEYS) + "\n"
        f"  scenario = {' | '.join(SCENARIOS)}; tokens = answer length; tool/calls = tool calls;\n"
        "  script = tool calls per turn (a;b+c: first turn a, second turn b and c);\n"
        "  status/retry_after = error answer; ttft_ms/itl_ms = timing; cid = correlation id;\n"
        f"  fault = {' | '.join(FAULTS)} | {OVERLOAD} | status_NNN\n"
        "    (fault_after = content chunks first, fault_ms = delay);\n"
        "  fail_first = N: the fault/error only on the first N requests with this cid;\n"
        "  route_down = 1: the fault/error only on the route this cid first arrived on;\n"
        "  seed = vary the deterministic output; cached = prompt tokens read from the provider's cache;\n"
        f"  {STAMP_DIRECTIVE_KEY} = 1: each streamed text chunk starts with its stamp (sequence, send time in us).\n"
        "A bad directive is answered with HTTP 400 naming the problem. The correlation id may\n"
        f"also come from the {CORRELATION_HEADER} header (the directive wins)."
    )
