"""The scenario: a dialect-neutral plan of one answer, and the planner that makes it.

A dialect parses its request into a ``ChatRequest`` (model, streaming wishes,
tools, the last user message, the true prompt token count); the planner combines
it with the directive and the server defaults into a ``Scenario``: the pieces of
the answer in order (text, refusal, tool-call starts and argument fragments), why
it finishes, its true usage, its pacing, an error to answer instead, and a fault.
Dialects only render that plan, so every scenario is written once here.

Everything is derived from a seed that hashes the conversation (messages and
tools, as the dialect canonicalises them) and the directive's ``seed``: the same
request gets the same ids, text and arguments, streamed or not.

Answer sizes: a text answer has ``tokens`` tokens, cut to the request's
``max_tokens`` (finish ``length``) when that is smaller; ``scenario=length``
finishes ``length`` in any case. A refusal is always ``REFUSAL_TEXT``; tool-call
arguments are as long as their schema makes them (``max_tokens`` does not cut
them). ``completion_tokens`` counts exactly what is sent: the text's tokens, the
refusal's, or each call's function name plus its arguments. ``cached=N`` marks N of the
prompt tokens as read from the provider's cache (clamped to the prompt): the prompt count
stays the same, each dialect reports the cached part its own way.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from gateproof.mock_providers._config import MockConfig
from gateproof.mock_providers._directives import NO_DIRECTIVE, Directive
from gateproof.mock_providers._errors import ProviderError
from gateproof.mock_providers._faults import FAULTS, Fault
from gateproof.mock_providers._timing import Pacing
from gateproof.mock_providers._tokens import openers, token_pieces, vocabulary
from gateproof.openapi import PromptText, count_text

__all__ = [
    "BUILTIN_TOOL",
    "REFUSAL_TEXT",
    "ChatRequest",
    "Finish",
    "Piece",
    "PieceKind",
    "Scenario",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "plan_scenario",
    "sample_arguments",
]

#: the text of every refusal
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


class Finish(enum.Enum):
    """Why an answer ended (dialects map it to their own vocabulary)."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"


class PieceKind(enum.Enum):
    TEXT = "text"
    REFUSAL = "refusal"
    #: the start of a tool call: id and function name, no arguments yet
    TOOL_START = "tool_start"
    #: a fragment of a tool call's JSON arguments
    TOOL_ARGS = "tool_args"


#: One streamed unit of the answer, one chunk paced by ``itl``: ``(kind, text, call)``,
#: ``call`` being the index of the tool call the piece belongs to (0 otherwise). A plain
#: tuple because an answer has one per token and building them must cost next to nothing.
Piece = tuple[PieceKind, str, int]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered by the request."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    index: int
    id: str
    name: str
    #: JSON text of the arguments
    arguments: str


# Not frozen: one is built per request, and a frozen dataclass's __init__ costs about five
# times as much. Treat it as immutable all the same: nothing changes one once it is built.
@dataclass(slots=True)
class Usage:
    """The true usage of one answer, in neutral names."""

    #: every prompt token, the cached ones included
    prompt_tokens: int
    completion_tokens: int
    #: the prompt tokens read from the provider's cache (directive ``cached``; at most ``prompt_tokens``)
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# Not frozen: one is built per request, and a frozen dataclass's __init__ costs about five
# times as much. Treat it as immutable all the same: nothing changes one once it is built.
@dataclass(slots=True)
class ChatRequest:
    """What the planner needs from a request, whatever dialect it came in."""

    model: str
    stream: bool
    include_usage: bool
    #: the answer budget in tokens, if the request set one
    max_tokens: int | None
    tools: tuple[ToolSpec, ...]
    #: a function the request forces (``tool_choice``); with ``tool_required`` and no name: any tool
    forced_tool: str | None
    tool_required: bool
    #: the text of the last user message (where the directive lives)
    last_user_text: str
    #: the true prompt token count; ``None`` while a long prompt still waits to be counted
    prompt_tokens: int | None
    #: canonical bytes of the conversation, the seed of everything generated
    identity: bytes
    #: the texts that cost tokens (for a count the dialect left to the exchange)
    prompt: PromptText | None = None
    #: the model's context window, when the provider enforces one
    context_window: int | None = None
    #: assistant messages with tool calls after the last user message: the ``script`` round due
    tool_rounds: int = 0


#: called when the request offers no tool and the directive names none
BUILTIN_TOOL = ToolSpec(
    name="gateproof_lookup",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


# Not frozen: one is built per request, and a frozen dataclass's __init__ costs about five
# times as much. Treat it as immutable all the same: nothing changes one once it is built.
@dataclass(slots=True)
class Scenario:
    """The plan of one answer."""

    name: str
    #: hex digest identifying this answer (dialects prefix it: ``chatcmpl-...``)
    ident: str
    pieces: tuple[Piece, ...]
    tool_calls: tuple[ToolCall, ...]
    #: the whole text answer (``None`` when the answer is a refusal or tool calls)
    text: str | None
    refusal: str | None
    finish: Finish
    usage: Usage
    pacing: Pacing
    #: answer with this error instead (``scenario=error``)
    error: ProviderError | None
    fault: Fault | None
    fault_after: int | None
    fault_delay: float | None
    #: start each streamed text chunk with its stamp (directive ``stamp=1``; ``_stamps``)
    stamp: bool = False


def _seed(identity: bytes, extra: int | None) -> bytes:
    """16 bytes that determine everything generated for this request."""
    digest = hashlib.blake2b(identity, digest_size=16, person=b"gateproof-mock").digest()
    if extra is not None:
        digest = hashlib.blake2b(digest + extra.to_bytes(8, "big"), digest_size=16).digest()
    return digest


def _text_pieces(seed: bytes, tokens: int) -> tuple[str, ...]:
    """A sentence of exactly ``tokens`` tokens: an opener, single-token words, a full stop.

    Word choices come from a SHAKE-128 stream of the seed, one byte per word: one C
    call for the whole answer instead of a pseudo-random generator per request.
    """
    if tokens <= 0:
        return ()
    stream = hashlib.shake_128(seed).digest(tokens)
    starts = openers()
    first = starts[stream[0] % len(starts)]
    if tokens == 1:
        return (first,)
    return (first, *map(_byte_words().__getitem__, stream[1 : tokens - 1]), ".")


@functools.cache
def _byte_words() -> tuple[str, ...]:
    """The word each byte of the stream picks (``vocabulary()[byte % size]``), looked up, not computed."""
    words = vocabulary()
    return tuple(words[byte % len(words)] for byte in range(256))


_WORD_FORMATS = {
    "date-time": "2024-05-01T12:00:00Z",
    "date": "2024-05-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/item",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def sample_arguments(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A JSON value that fits a (simple) JSON schema, chosen deterministically by ``rng``.

    Honours ``const``, ``enum``, the first branch of ``anyOf``/``oneOf``, ``type``
    (the first non-null one of a list), object ``properties`` (all of them), array
    ``items``/``minItems``, number bounds and common string formats. Anything it
    does not understand becomes a string.
    """
    if depth > 6:  # deep enough: a schema that nests further gets null there
        return None
    if not isinstance(schema, Mapping):
        return rng.choice(vocabulary()).strip()
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        # what a model does with a documented example: use it (and the tests can rely on it)
        return schema["examples"][0]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return sample_arguments(schema[key][0], rng, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {str(k): sample_arguments(v, rng, depth + 1) for k, v in properties.items()}
    if kind == "array":
        low = schema.get("minItems")
        count = min(max(low if isinstance(low, int) else 1, 1), 3)
        return [sample_arguments(schema.get("items", {}), rng, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        low = low if isinstance(low, int | float) else 0
        high = high if isinstance(high, int | float) and high >= low else low + 100
        if kind == "integer":
            return rng.randint(int(low), int(high))
        return round(rng.uniform(low, high), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _WORD_FORMATS:
        return _WORD_FORMATS[fmt]
    return rng.choice(vocabulary()).strip()


def _tool_calls(
    request: ChatRequest, directive: Directive, rng: random.Random, ident: str
) -> tuple[ToolCall, ...]:
    offered = {tool.name: tool for tool in request.tools}
    name = directive.tool or request.forced_tool
    scripted = _script_round(request, directive)
    if scripted is not None:
        chosen = [offered.get(called, ToolSpec(name=called, parameters={})) for called in scripted]
    elif name is not None:
        chosen = [offered.get(name, ToolSpec(name=name, parameters={}))]
    else:
        chosen = list(request.tools) or [BUILTIN_TOOL]
    count = len(scripted) if scripted is not None else directive.calls or 1
    calls = []
    for index in range(count):
        tool = chosen[index % len(chosen)]
        value = sample_arguments(tool.parameters, rng) if tool.parameters else {}
        # arguments are always a JSON object, whatever the schema said at its top
        arguments = json.dumps(value if isinstance(value, dict) else {}, separators=(",", ":"))
        call_id = hashlib.blake2b(f"{ident}:{index}".encode(), digest_size=12).hexdigest()
        calls.append(ToolCall(index=index, id="call_" + call_id, name=tool.name, arguments=arguments))
    return tuple(calls)


@functools.cache
def _refusal_pieces() -> tuple[Piece, ...]:
    """The refusal, one piece per token (it is plain ASCII, so pieces and tokens match)."""
    return tuple(zip(repeat(PieceKind.REFUSAL), token_pieces(REFUSAL_TEXT), repeat(0)))


def _script_round(request: ChatRequest, directive: Directive) -> tuple[str, ...] | None:
    """The functions the script calls in this turn; None when there is no script or it is done."""
    if directive.script is None or request.tool_rounds >= len(directive.script):
        return None
    return directive.script[request.tool_rounds]


def _implied_scenario(request: ChatRequest, directive: Directive) -> str:
    """The scenario when the directive names none: what its other keys (or the request) imply."""
    if _script_round(request, directive) is not None:
        return "tool_call"
    if directive.status is not None:
        return "error"
    if directive.tool is not None or directive.calls is not None or request.tool_required:
        return "tool_call"
    return "text"


def plan_scenario(request: ChatRequest, directive: Directive | None, config: MockConfig) -> Scenario:
    """Decide the whole answer to ``request``: a pure function of its three arguments (``_repeats``)."""
    if request.prompt_tokens is None:
        raise ValueError("plan_scenario needs a request whose prompt has been counted")
    directive = directive or NO_DIRECTIVE
    seed = _seed(request.identity, directive.seed)
    ident = seed[:12].hex()
    name = directive.scenario or _implied_scenario(request, directive)
    if _script_round(request, directive) is not None:
        name = "tool_call"  # a script round due outranks the scenario, which is for after it
    pacing = Pacing.from_ms(
        config.ttft_ms if directive.ttft_ms is None else directive.ttft_ms,
        config.itl_ms if directive.itl_ms is None else directive.itl_ms,
    )
    pieces: tuple[Piece, ...] = ()
    calls: tuple[ToolCall, ...] = ()
    text: str | None = None
    refusal: str | None = None
    error: ProviderError | None = None
    finish = Finish.STOP
    completion = 0
    if name in ("text", "length"):
        words = _text_pieces(seed, config.tokens if directive.tokens is None else directive.tokens)
        limit = request.max_tokens
        if limit is not None and len(words) > limit:
            words, finish = words[:limit], Finish.LENGTH
        elif name == "length":
            finish = Finish.LENGTH
        pieces = tuple(zip(repeat(PieceKind.TEXT), words, repeat(0)))
        text, completion = "".join(words), len(words)
    elif name == "refusal":
        pieces = _refusal_pieces()
        refusal, completion = REFUSAL_TEXT, len(pieces)
    elif name == "tool_call":
        calls = _tool_calls(request, directive, random.Random(seed), ident)
        built: list[Piece] = []
        for call in calls:
            built.append((PieceKind.TOOL_START, call.name, call.index))
            built.extend((PieceKind.TOOL_ARGS, part, call.index) for part in token_pieces(call.arguments))
            completion += count_text(call.name) + count_text(call.arguments)
        pieces, finish = tuple(built), Finish.TOOL_CALLS
    else:  # "error": the directive grammar admits no other name
        status = directive.status or 500
        retry = directive.retry_after
        if retry is None and status in (429, 503):
            retry = 1
        error = ProviderError(
            status=status,
            message=f"The provider answered {status} (gateproof scenario=error).",
            retry_after=retry,
        )
    return Scenario(
        name=name,
        ident=ident,
        pieces=pieces,
        tool_calls=calls,
        text=text,
        refusal=refusal,
        finish=finish,
        usage=Usage(request.prompt_tokens, completion, min(directive.cached or 0, request.prompt_tokens)),
        pacing=pacing,
        error=error,
        fault=FAULTS[directive.fault] if directive.fault else None,
        fault_after=directive.fault_after,
        fault_delay=None if directive.fault_ms is None else directive.fault_ms / 1000.0,
        stamp=directive.stamp == 1,
    )
