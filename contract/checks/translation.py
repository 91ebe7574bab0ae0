"""Checks that the provider received the client's intent, in whatever dialect the target speaks to it.

A gateway in front of Anthropic or Gemini rewrites the whole request; comparing field names would
judge the rewrite, not what it carries. The mock reads every request it accepts into a
provider-neutral ``Intent`` (``gateproof.openapi._intent``) and the suite reads the client's body
into another (``intent_from_openai``); these checks compare the two: the system prompt, the
conversation in order, the tool results answering their calls, the tools, the tool choice, the
limits. ``intent_differences`` is the comparison itself, also used by the conversation layer.

What is compared is what a model sees, not how it is spelled: texts whitespace-insensitively and
across turn boundaries (Anthropic merges consecutive user turns, Gemini puts function responses in
user turns), tool-call arguments and results as JSON values, tool schemas by their structure
(types, properties, required, items, enum), tool call ids as a consistent renaming (a gateway may
rewrite ids a provider would refuse) or, for a dialect without ids, by function name.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._extras import COMPRESSION_FIELD, asked
from gateproof.contract.checks._registry import CheckFailed, NotApplicable, Requirement, check
from gateproof.contract.results import Severity
from gateproof.openapi import Intent, JournalRecord, Part, intent_from_openai, json_value

__all__ = [
    "Difference",
    "Topic",
    "intent_differences",
    "routed_to_declared_provider",
    "upstream_messages_intact",
    "upstream_params_intact",
    "upstream_system_intact",
    "upstream_tool_results_matched",
]

_MOCK = frozenset({Requirement.MOCK_JOURNAL})
#: what reaches the provider is never a matter of client tolerance
_ERROR = Severity.ERROR


class Topic(StrEnum):
    """Which part of the intent a difference is about (one check each)."""

    SYSTEM = "system"
    CONVERSATION = "conversation"
    TOOL_RESULTS = "tool_results"
    PARAMS = "params"


@dataclass(frozen=True)
class Difference:
    """One way the received intent differs from the one sent."""

    topic: Topic
    message: str
    expected: str
    actual: str


def _words(text: str) -> str:
    """A text with its whitespace removed: the same words in the same order compare equal."""
    return "".join(text.split())


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _merged(parts: Sequence[Part]) -> list[Part]:
    """Consecutive text parts of one speaker as one part: turn and block boundaries are the dialect's."""
    merged: list[Part] = []
    for part in parts:
        if not part.text and part.kind == "text":
            continue
        last = merged[-1] if merged else None
        if last is not None and part.kind == "text" and last.kind == "text" and last.role == part.role:
            merged[-1] = Part(part.role, "text", text=last.text + "\n" + part.text)
        else:
            merged.append(part)
    return merged


def _describe(part: Part) -> str:
    if part.kind == "text":
        return f"{part.role} text {_short(part.text, 80)!r}"
    if part.kind == "tool_call":
        return f"{part.role} tool call {part.name}({_short(part.arguments, 80)})"
    return f"tool result for {part.name or part.id} ({_short(part.content, 80)})"


def _same_content(sent: Any, received: Any) -> bool:
    """A tool result's content arrived: as the same text, the same JSON value, or wrapped in one key."""
    if isinstance(received, str) and isinstance(sent, str) and _words(received) == _words(sent):
        return True
    value = json_value(sent)
    if received == value:
        return True
    if isinstance(received, Mapping) and len(received) == 1:
        (inner,) = received.values()
        return _same_content(sent, inner)
    return False


def _same_arguments(a: Any, b: Any) -> bool:
    return bool(a == b or (isinstance(a, str) and isinstance(b, str) and _words(a) == _words(b)))


#: one unit of the conversation as the diff sees it: a word of a text (role, "w", word), or a
#: whole tool call or tool result (role, kind, what identifies it)
_Token = tuple[str, ...]


def _tokens(parts: Sequence[Part], *, texts: bool) -> list[_Token]:
    tokens: list[_Token] = []
    for part in parts:
        if part.kind == "text":
            tokens += (
                [(part.role, "w", word) for word in part.text.split()] if texts else [(part.role, "text")]
            )
        elif part.kind == "tool_call":
            arguments = json.dumps(part.arguments, sort_keys=True, separators=(",", ":"))
            tokens.append((part.role, "tool_call", part.name or "", _words(arguments)))
        else:
            tokens.append((part.role, "tool_result"))
    return tokens


def _phrase(tokens: Sequence[_Token]) -> str:
    """What a run of diff tokens says, for a message: the words of a text, or the tool items."""
    pieces: list[str] = []
    for token in tokens:
        if token[1] == "w":
            if pieces and pieces[-1].startswith(f"{token[0]} text "):
                pieces[-1] = pieces[-1][:-1] + " " + token[2] + '"'
            else:
                pieces.append(f'{token[0]} text "{token[2]}"')
        elif token[1] == "tool_call":
            pieces.append(f"{token[0]} tool call {token[2]}({_short(token[3], 60)})")
        else:
            pieces.append(f"{token[0]} {token[1].replace('_', ' ')}")
    return _short("; ".join(pieces), 240)


def _diff(sent: Sequence[Part], received: Sequence[Part], *, texts: bool) -> Difference | None:
    """The first place where the conversations part ways, found by aligning them.

    Aligning (rather than walking both side by side) names what really happened when a part is
    dropped and its neighbours are merged: "the assistant text ... is missing", not "part 0
    changed".
    """
    a, b = _tokens(sent, texts=texts), _tokens(received, texts=texts)
    if a == b:
        return None
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        lost, got = _phrase(a[i1:i2]), _phrase(b[j1:j2])
        if tag == "delete":
            message = f"the provider did not receive the client's {lost}"
        elif tag == "insert":
            message = f"the provider received {got}, which the client did not send"
        else:
            message = f"the client's {lost} reached the provider as {got}"
        return Difference(Topic.CONVERSATION, message, lost or "nothing", got or "nothing")
    return None


def _conversation(sent: Sequence[Part], received: Sequence[Part], *, texts: bool) -> list[Difference]:
    difference = _diff(sent, received, texts=texts)
    if difference is not None:
        return [difference]
    # the same words and items in the same order: what the tokens do not hold is compared part by part
    for a, b in zip(
        (p for p in sent if p.kind != "text"), (p for p in received if p.kind != "text"), strict=False
    ):
        if a.kind == "tool_call" and not _same_arguments(a.arguments, b.arguments):
            return [
                Difference(
                    Topic.CONVERSATION,
                    f"the arguments of the assistant's call to {a.name} changed",
                    _short(a.arguments),
                    _short(b.arguments),
                )
            ]
        if a.kind == "tool_result" and texts and not _same_content(a.content, b.content):
            return [
                Difference(
                    Topic.CONVERSATION,
                    f"the tool result for {a.name or a.id} changed on the way",
                    _short(a.content),
                    _short(b.content),
                )
            ]
    return []


def _calls(parts: Sequence[Part]) -> dict[str, int]:
    """Tool call id -> its position among the conversation's tool calls."""
    found: dict[str, int] = {}
    for position, part in enumerate(p for p in parts if p.kind == "tool_call"):
        if part.id is not None:
            found.setdefault(part.id, position)
    return found


def _tool_results(sent: Sequence[Part], received: Sequence[Part]) -> list[Difference]:
    sent_calls, received_calls = _calls(sent), _calls(received)
    calls = [p for p in sent if p.kind == "tool_call"]
    received_names = [p.name for p in received if p.kind == "tool_call"]
    sent_results = [p for p in sent if p.kind == "tool_result"]
    received_results = [p for p in received if p.kind == "tool_result"]
    for number, (a, b) in enumerate(zip(sent_results, received_results, strict=False), start=1):
        wanted = sent_calls.get(a.id or "")
        if wanted is None:
            continue  # the client's own result answers no call: the provider's refusal says so
        call = calls[wanted]
        if b.id is not None:
            got = received_calls.get(b.id)
            if got != wanted:
                answered = (
                    "no tool call of the conversation"
                    if got is None
                    else f"call {got + 1} ({received_names[got]})"
                )
                return [
                    Difference(
                        Topic.TOOL_RESULTS,
                        f"tool result {number} answers call {wanted + 1} ({call.name}, id {a.id}) as sent, "
                        f"but the provider received it for {answered} (id {b.id})",
                        f"the id of call {wanted + 1}",
                        repr(b.id),
                    )
                ]
        elif b.name != call.name:
            return [
                Difference(
                    Topic.TOOL_RESULTS,
                    f"tool result {number} answers {call.name} as sent, but the provider received it "
                    f"named {b.name!r} and without an id",
                    repr(call.name),
                    repr(b.name),
                )
            ]
    return []


def _schema_shape(schema: Any) -> Any:
    """What a tool's parameter schema says about the arguments' structure, however it is spelled."""
    if isinstance(schema, list):
        return [_schema_shape(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    shape: dict[str, Any] = {}
    for key in ("type", "properties", "required", "items", "enum"):
        if key not in schema:
            continue
        value = schema[key]
        if key == "type":
            value = value.lower() if isinstance(value, str) else value
        elif key == "properties" and isinstance(value, Mapping):
            value = {name: _schema_shape(inner) for name, inner in value.items()}
        elif key == "required" and isinstance(value, list):
            value = sorted(str(v) for v in value)
        elif key == "items":
            value = _schema_shape(value)
        shape[key] = value
    return shape


def _params(sent: Intent, received: Intent) -> list[Difference]:
    found: list[Difference] = []
    if sent.max_tokens is not None and received.max_tokens != sent.max_tokens:
        found.append(
            Difference(
                Topic.PARAMS,
                f"an answer budget of {sent.max_tokens} tokens was sent (max_tokens or "
                "max_completion_tokens), but the provider received "
                + (f"{received.max_tokens}" if received.max_tokens is not None else "no budget"),
                str(sent.max_tokens),
                str(received.max_tokens),
            )
        )
    if sent.tool_choice is not None and received.tool_choice != sent.tool_choice:
        found.append(
            Difference(
                Topic.PARAMS,
                f"tool_choice {sent.tool_choice!r} arrived as {received.tool_choice!r}",
                repr(sent.tool_choice),
                repr(received.tool_choice),
            )
        )
    if sent.stop and list(received.stop) != list(sent.stop):
        found.append(
            Difference(Topic.PARAMS, "the stop sequences changed", _short(sent.stop), _short(received.stop))
        )
    sent_tools = {tool.name: tool for tool in sent.tools}
    received_tools = {tool.name: tool for tool in received.tools}
    if set(sent_tools) != set(received_tools):
        found.append(
            Difference(
                Topic.PARAMS,
                "the tools offered changed: "
                + ", ".join(
                    f"{name} {'missing' if name in sent_tools else 'added'}"
                    for name in sorted(set(sent_tools) ^ set(received_tools))
                ),
                ", ".join(sorted(sent_tools)) or "none",
                ", ".join(sorted(received_tools)) or "none",
            )
        )
    for name, tool in sent_tools.items():
        other = received_tools.get(name)
        if other is None:
            continue
        if tool.description and _words(other.description or "") != _words(tool.description):
            found.append(
                Difference(
                    Topic.PARAMS,
                    f"the description of tool {name} changed",
                    _short(tool.description),
                    _short(other.description),
                )
            )
        if tool.parameters and _schema_shape(other.parameters) != _schema_shape(tool.parameters):
            found.append(
                Difference(
                    Topic.PARAMS,
                    f"the parameter schema of tool {name} changed",
                    _short(_schema_shape(tool.parameters)),
                    _short(_schema_shape(other.parameters)),
                )
            )
    return found


def intent_differences(sent: Intent, received: Intent, *, texts: bool = True) -> list[Difference]:
    """Every way ``received`` (what the provider got) differs from ``sent`` (what the client asked).

    ``texts`` false compares the conversation's structure only (who said what kind of thing, in
    which order, which call each result answers): what compression may not change, while it
    rewrites the texts themselves (the needles checks judge what of them must survive).
    """
    found: list[Difference] = []
    system_changed = _words("\n".join(sent.system)) != _words("\n".join(received.system))
    if system_changed and (texts or bool(sent.system) != bool(received.system)):
        found.append(
            Difference(
                Topic.SYSTEM,
                "the system prompt was dropped on the way to the provider"
                if sent.system and not received.system
                else "the system prompt changed on the way to the provider",
                _short("\n".join(sent.system)) or "none",
                _short("\n".join(received.system)) or "none",
            )
        )
    sent_parts, received_parts = _merged(sent.parts), _merged(received.parts)
    found += _conversation(sent_parts, received_parts, texts=texts)
    found += _tool_results(sent_parts, received_parts)
    found += _params(sent, received)
    return found


def _received_intent(ctx: CheckContext) -> tuple[Intent, JournalRecord]:
    entry = ctx.upstream_request()
    try:
        received = entry.request_intent()
    except ValueError as exc:
        raise CheckFailed(f"the mock's record of the request is unreadable: {exc}") from None
    if received is None:
        raise CheckFailed(
            "the provider did not accept the request as one of its own "
            f"({entry.dialect or 'unknown'} dialect, answered {entry.status})",
            expected="a request the provider reads",
            actual=f"{entry.method} {entry.path} answered {entry.status}",
        )
    return received, entry


def _judge(ctx: CheckContext, topic: Topic) -> None:
    if not isinstance(ctx.request_body, Mapping):
        raise NotApplicable("the request had no JSON body")
    received, _ = _received_intent(ctx)
    texts = not asked(ctx, COMPRESSION_FIELD)
    for difference in intent_differences(intent_from_openai(ctx.request_body), received, texts=texts):
        if difference.topic is topic:
            raise CheckFailed(difference.message, expected=difference.expected, actual=difference.actual)


@check(requires=_MOCK, severity=_ERROR)
def upstream_system_intact(ctx: CheckContext) -> None:
    """The system and developer instructions reach the provider, in its dialect's place for them."""
    _judge(ctx, Topic.SYSTEM)


@check(requires=_MOCK, severity=_ERROR)
def upstream_messages_intact(ctx: CheckContext) -> None:
    """The conversation reaches the provider in order: every text, tool call (name, arguments) and tool result."""
    _judge(ctx, Topic.CONVERSATION)


@check(requires=_MOCK, severity=_ERROR)
def upstream_tool_results_matched(ctx: CheckContext) -> None:
    """Every tool result reaches the provider answering the same call it answered as sent (by id, or by name)."""
    _judge(ctx, Topic.TOOL_RESULTS)


@check(requires=_MOCK, severity=_ERROR)
def upstream_params_intact(ctx: CheckContext) -> None:
    """The answer budget, stop sequences, tools (names, descriptions, schemas) and tool_choice reach the provider."""
    _judge(ctx, Topic.PARAMS)


@check(requires=_MOCK, severity=_ERROR)
def routed_to_declared_provider(ctx: CheckContext) -> None:
    """The request reached the provider the target declares for its model (the route's dialect)."""
    if ctx.route is None:
        raise NotApplicable("the scenario is not run per provider route")
    entry = ctx.upstream_request()
    if entry.dialect != ctx.route:
        where = f"the {entry.dialect} provider" if entry.dialect else "no provider route the mock knows"
        raise CheckFailed(
            f"the model {ctx.route_model!r} reached {where}, not {ctx.route} "
            f"({entry.method} {entry.path}, answered {entry.status})",
            expected=ctx.route,
            actual=str(entry.dialect),
        )
