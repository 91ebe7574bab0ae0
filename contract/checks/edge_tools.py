"""Checks of Edge Tools (D4, D5, D35-D39): what the provider is offered and given back, what the client sees.

The mock is told which tools to call in which turn (the directive's ``script``), so these
checks know what the model asked for. The journal shows each provider call of a request:
the first one must offer the Edge Tools, the later ones must carry their results. The
pending flow takes two more requests (``Scenario.steps``): the continuation, whose provider
call must hold the restored turn, and a reuse of the same id, which must be refused.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateproof.contract.checks._context import CheckContext, Observed
from gateproof.contract.checks._registry import EDGEE_ONLY, CheckFailed, NotApplicable, Requirement, check
from gateproof.contract.results import Severity
from gateproof.openapi import EDGE_CURRENT_TIME, EDGE_GENERATE_UUID, EDGE_TOOL_NAMES, JournalRecord

__all__ = [
    "CLIENT_RESULT",
    "CONTINUE_STEP",
    "REUSE_STEP",
    "answer_tool_calls",
    "continuation",
    "edge_pending_continued",
    "edge_pending_single_use",
    "edge_tool_calls_hidden",
    "edge_tool_ids_error_message",
    "edge_tool_results_well_formed",
    "edge_tools_executed_reported",
    "edge_tools_injected",
    "edge_usage_summed",
    "pending_id_of",
]

#: the scenario steps the pending checks read (their builders live with the scenarios)
CONTINUE_STEP = "continue"
REUSE_STEP = "reuse"

_MOCK = frozenset({Requirement.MOCK_JOURNAL})
#: what the harness answers for each of its own tool calls in a continuation
CLIENT_RESULT = '{"city": "Paris", "temperature_c": 12}'
_ERROR = Severity.ERROR
#: how far an Edge Tool's clock may be from the harness's (the run itself takes seconds)
_CLOCK_SLACK_S = 300


# -- reading answers and requests -----------------------------------------------------------------


def _name(call: Any) -> str | None:
    function = call.get("function") if isinstance(call, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    return name if isinstance(name, str) else None


def _final_chunk(observed: Observed) -> Mapping[str, Any]:
    """The last JSON chunk of a stream (where D1 puts the per-request fields)."""
    chunks = [chunk for chunk in observed.chunks if isinstance(chunk, Mapping)]
    return chunks[-1] if chunks else {}


def answer_tool_calls(observed: Observed) -> list[dict[str, Any]]:
    """The tool calls the client was shown, whole (a stream's fragments joined by ``index``)."""
    if not observed.chunks:
        body = observed.json()
        choices = body.get("choices") if isinstance(body, Mapping) else None
        choice = choices[0] if isinstance(choices, list) and choices else {}
        message = choice.get("message") if isinstance(choice, Mapping) else None
        calls = message.get("tool_calls") if isinstance(message, Mapping) else None
        return [dict(call) for call in calls or [] if isinstance(call, Mapping)]
    joined: dict[int, dict[str, Any]] = {}
    for chunk in observed.chunks:
        for choice in (chunk.get("choices") or []) if isinstance(chunk, Mapping) else []:
            delta = choice.get("delta") if isinstance(choice, Mapping) else None
            for fragment in (delta.get("tool_calls") or []) if isinstance(delta, Mapping) else []:
                if not isinstance(fragment, Mapping):
                    continue
                given = fragment.get("index")
                index = given if isinstance(given, int) else len(joined)
                call = joined.setdefault(index, {"id": None, "function": {"name": "", "arguments": ""}})
                if fragment.get("id"):
                    call["id"] = fragment["id"]
                function = fragment.get("function")
                if isinstance(function, Mapping):
                    call["function"]["name"] += str(function.get("name") or "")
                    call["function"]["arguments"] += str(function.get("arguments") or "")
    return [joined[index] for index in sorted(joined)]


def _per_request_field(observed: Observed, name: str) -> Any:
    if observed.chunks:
        return _final_chunk(observed).get(name)
    body = observed.json()
    return body.get(name) if isinstance(body, Mapping) else None


def pending_id_of(observed: Observed) -> str | None:
    """The ``edgee_pending_id`` of an answer (a stream's last chunk), if it carries one."""
    value = _per_request_field(observed, "edgee_pending_id")
    return value if isinstance(value, str) else None


def _requested(ctx: CheckContext) -> list[str]:
    ids = (ctx.request_body or {}).get("edgee_tool_ids")
    if not isinstance(ids, list) or not ids:
        raise NotApplicable("the request names no Edge Tools")
    return [str(name) for name in dict.fromkeys(ids)]


def _edge_names(ctx: CheckContext) -> set[str]:
    """Names the client must never be shown: the tools asked for, and every Edge Tool there is."""
    ids = (ctx.request_body or {}).get("edgee_tool_ids")
    return {*EDGE_TOOL_NAMES, *(str(name) for name in ids or [])}


def _script(ctx: CheckContext) -> list[list[str]]:
    script = ctx.scenario.mock.get("script")
    if not isinstance(script, str):
        raise NotApplicable("the scenario does not script the model's tool calls")
    return [round_.split("+") for round_ in script.split(";")]


def _body(record: JournalRecord) -> Mapping[str, Any]:
    if not isinstance(record.body, Mapping):
        raise CheckFailed(
            "the provider received no JSON body", expected="a JSON body", actual=repr(record.body)[:200]
        )
    return record.body


def _messages(record: JournalRecord) -> list[Mapping[str, Any]]:
    messages = _body(record).get("messages")
    return [m for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else []


def continuation(first_body: Mapping[str, Any], first: Observed) -> dict[str, Any] | None:
    """The client's next request after a pending answer: its calls answered, the pending id sent back.

    None when the first answer handed out no pending id or no tool call (nothing to continue).
    """
    if first.status != 200:
        return None
    pending_id = pending_id_of(first)
    calls = answer_tool_calls(first)
    if pending_id is None or not calls:
        return None
    body = json.loads(json.dumps(first_body))
    body["messages"] = [
        *body.get("messages", []),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"type": "function", **call} for call in calls],
        },
        *({"role": "tool", "tool_call_id": call["id"], "content": CLIENT_RESULT} for call in calls),
    ]
    body["edgee_pending_id"] = pending_id
    return dict(body)


# -- what a result must look like (D39) -----------------------------------------------------------


def _result_problem(name: str, arguments: Any, content: Any) -> str | None:
    """Why an Edge Tool result is not what D39 promises (None when it is)."""
    try:
        value = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        value = None
    if not isinstance(value, Mapping):
        return f"{name}'s result is not a JSON object: {str(content)[:120]!r}"
    if name == EDGE_GENERATE_UUID:
        made = value.get("uuid")
        try:
            parsed = uuid.UUID(str(made))
        except ValueError:
            return f"{name} gave {made!r}, not a UUID"
        if parsed.version != 4 or str(parsed) != made:
            return (
                f"{name} gave {made!r}: a UUID, but not a canonical version 4 one (version {parsed.version})"
            )
        return None
    if name == EDGE_CURRENT_TIME:
        try:
            asked = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
        except ValueError:
            asked = {}
        zone = asked.get("timezone") if isinstance(asked, Mapping) else None
        zone = zone if isinstance(zone, str) and zone else "UTC"
        if set(value) != {"timezone", "iso8601", "unix"}:
            return f"{name}'s result has fields {sorted(value)}, not timezone, iso8601, unix"
        if value["timezone"] != zone:
            return f"{name} was asked for {zone!r} and answered for {value['timezone']!r}"
        unix = value["unix"]
        if isinstance(unix, bool) or not isinstance(unix, int):
            return f"{name}'s unix is {unix!r}, not an integer"
        try:
            local = datetime.fromisoformat(str(value["iso8601"]))
        except ValueError:
            return f"{name}'s iso8601 {value['iso8601']!r} is not an ISO 8601 time"
        if local.utcoffset() is None:
            return f"{name}'s iso8601 {value['iso8601']!r} has no UTC offset"
        try:
            expected_offset = datetime.fromtimestamp(unix, ZoneInfo(zone)).utcoffset()
        except (ZoneInfoNotFoundError, ValueError, OverflowError, OSError):
            return None  # a zone this machine does not know: nothing more to compare
        if local.utcoffset() != expected_offset:
            return f"{name}'s iso8601 {value['iso8601']!r} is not in {zone} (offset there: {expected_offset})"
        if abs(local.timestamp() - unix) >= 1:
            return f"{name}'s iso8601 and unix name different instants ({value['iso8601']!r} vs {unix})"
        if abs(unix - time.time()) > _CLOCK_SLACK_S:
            return f"{name}'s time {value['iso8601']!r} is not now"
        return None
    return None


def _edge_results(records: Iterable[JournalRecord], edge: set[str]) -> list[tuple[str, str | None]]:
    """(tool name, problem or None) for each Edge Tool result found in the provider's requests."""
    found: dict[str, tuple[str, str | None]] = {}
    for record in records:
        messages = _messages(record)
        calls: dict[str, Mapping[str, Any]] = {}
        for message in messages:
            for call in message.get("tool_calls") or [] if message.get("role") == "assistant" else []:
                if isinstance(call, Mapping) and _name(call) in edge:
                    calls[str(call.get("id"))] = call
            if message.get("role") == "tool" and str(message.get("tool_call_id")) in calls:
                call = calls[str(message.get("tool_call_id"))]
                held = call.get("function")
                function: Mapping[str, Any] = held if isinstance(held, Mapping) else {}
                name = str(_name(call))
                found[str(call.get("id"))] = (
                    name,
                    _result_problem(name, function.get("arguments"), message.get("content")),
                )
    return list(found.values())


# -- the checks ------------------------------------------------------------------------------------


@check(profiles=EDGEE_ONLY, requires=_MOCK, severity=_ERROR)
def edge_tools_injected(ctx: CheckContext) -> None:
    """The provider is offered every Edge Tool the request names, after the client's own tools, unchanged."""
    requested = _requested(ctx)
    first = _body(ctx.require_journal()[0])
    offered_tools = first.get("tools")
    tools: list[Any] = offered_tools if isinstance(offered_tools, list) else []
    sent: list[Any] = (ctx.request_body or {}).get("tools") or []
    if tools[: len(sent)] != sent:
        raise CheckFailed(
            "the client's own tools did not reach the provider first and unchanged",
            expected=json.dumps([_name(t) for t in sent]),
            actual=json.dumps([_name(t) for t in tools]),
        )
    offered = [_name(tool) for tool in tools[len(sent) :]]
    missing = [name for name in requested if name not in offered]
    if missing:
        raise CheckFailed(
            f"the provider was not offered {', '.join(missing)}",
            expected=f"tools ending with {', '.join(requested)}",
            actual=", ".join(str(name) for name in offered) or "no tool after the client's",
        )
    for tool in tools[len(sent) :]:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        parameters = function.get("parameters") if isinstance(function, Mapping) else None
        if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
            raise CheckFailed(
                f"the definition of {_name(tool)} has no object parameters schema",
                expected='"parameters": {"type": "object", ...}',
                actual=json.dumps(tool)[:300],
            )
    if "edgee_tool_ids" in first:
        raise CheckFailed("edgee_tool_ids itself reached the provider", expected="absent", actual="present")


@check(profiles=EDGEE_ONLY, requires=_MOCK, severity=_ERROR)
def edge_tool_results_well_formed(ctx: CheckContext) -> None:
    """The model is called again with one result per Edge Tool call: a version 4 UUID, the time in the zone asked for."""
    edge = set(_requested(ctx))
    journal = ctx.require_journal()
    wanted = [name for round_ in _script(ctx) for name in round_ if name in edge]
    records: list[JournalRecord] = list(journal[1:])
    if CONTINUE_STEP in ctx.steps:
        records += ctx.step_journal(CONTINUE_STEP)
    if not records:
        raise CheckFailed(
            "the provider was called once: the Edge Tool calls the model made were not run and answered",
            expected=f"a further provider call with results for {', '.join(wanted)}",
            actual="one provider call",
        )
    results = _edge_results(records, edge)
    got = sorted(name for name, _ in results)
    if got != sorted(wanted):
        raise CheckFailed(
            "the provider did not receive one result per Edge Tool call",
            expected=", ".join(sorted(wanted)),
            actual=", ".join(got) or "no Edge Tool result",
        )
    for name, problem in results:
        if problem is not None:
            raise CheckFailed(problem, expected=f"a {name} result as D39 says", actual=problem)


@check(profiles=EDGEE_ONLY, requires=_MOCK)
def edge_tools_executed_reported(ctx: CheckContext) -> None:
    """The answer lists every Edge Tool the gateway ran for it, in order, in edgee_tools_executed."""
    edge = set(_requested(ctx))
    wanted = [{"name": name, "success": True} for round_ in _script(ctx) for name in round_ if name in edge]
    got = _per_request_field(ctx.observed, "edgee_tools_executed")
    if got != wanted:
        raise CheckFailed(
            "edgee_tools_executed does not list the Edge Tools that ran",
            expected=json.dumps(wanted),
            actual=json.dumps(got) if got is not None else "absent",
        )


@check(profiles=EDGEE_ONLY, requires=_MOCK)
def edge_usage_summed(ctx: CheckContext) -> None:
    """After Edge Tool rounds, usage is the sum of what the provider counted over every call (D36)."""
    truths = [record.usage for record in ctx.require_journal()]
    if any(truth is None for truth in truths):
        raise NotApplicable("the provider did not record its usage")
    usage = _per_request_field(ctx.observed, "usage")
    if not isinstance(usage, Mapping):
        raise NotApplicable("the answer carries no usage")
    for key in ("prompt_tokens", "completion_tokens"):
        expected = sum(int((truth or {}).get(key) or 0) for truth in truths)
        if usage.get(key) != expected:
            raise CheckFailed(
                f"usage.{key} is {usage.get(key)!r}, but the {len(truths)} provider calls counted {expected}",
                expected=str(expected),
                actual=str(usage.get(key)),
            )


@check(profiles=EDGEE_ONLY, requires=_MOCK, severity=_ERROR)
def edge_tool_calls_hidden(ctx: CheckContext) -> None:
    """The client is never shown an Edge Tool call: only its own tool calls reach it."""
    edge = _edge_names(ctx)
    shown = [_name(call) for call in answer_tool_calls(ctx.observed)]
    leaked = [str(name) for name in shown if name in edge]
    if leaked:
        raise CheckFailed(
            f"the client was shown Edge Tool calls: {', '.join(leaked)}",
            expected="only the client's own tool calls",
            actual=", ".join(str(name) for name in shown),
        )
    client_wanted = [name for round_ in _script(ctx)[:1] for name in round_ if name not in edge]
    if client_wanted and shown != client_wanted:
        raise CheckFailed(
            "the client was not shown its own tool calls of the turn",
            expected=", ".join(client_wanted),
            actual=", ".join(str(name) for name in shown) or "none",
        )
    if client_wanted and pending_id_of(ctx.observed) is None:
        raise CheckFailed(
            "a turn with client and Edge Tool calls came back without edgee_pending_id",
            expected="edgee_pending_id (pend_...)",
            actual="absent",
        )


@check(profiles=EDGEE_ONLY, requires=_MOCK, severity=_ERROR)
def edge_pending_continued(ctx: CheckContext) -> None:
    """With edgee_pending_id the provider sees the whole turn again: every call, then one result per call in order."""
    edge = set(_requested(ctx))
    answer = ctx.require_step(CONTINUE_STEP)
    if answer.status != 200:
        raise CheckFailed(
            "the continuation with edgee_pending_id was refused",
            expected="200",
            actual=f"{answer.status} {answer.body[:200].decode('utf-8', 'replace')}",
        )
    received = ctx.step_journal(CONTINUE_STEP)
    if not received:
        raise CheckFailed(
            "the continuation never reached the provider", expected="one provider call", actual="none"
        )
    shown = answer_tool_calls(ctx.observed)
    shown_ids = [str(call.get("id")) for call in shown]
    messages = _messages(received[0])
    at = next(
        (
            i
            for i in range(len(messages) - 1, -1, -1)
            if messages[i].get("role") == "assistant"
            and set(shown_ids)
            <= {str(c.get("id")) for c in messages[i].get("tool_calls") or [] if isinstance(c, Mapping)}
        ),
        None,
    )
    if at is None:
        raise CheckFailed(
            "the provider did not receive the assistant turn the client answered",
            expected=f"an assistant message with tool calls {', '.join(shown_ids)}",
            actual="none",
        )
    calls = [c for c in messages[at].get("tool_calls") or [] if isinstance(c, Mapping)]
    names = [_name(call) for call in calls]
    wanted_edge = [name for name in _script(ctx)[0] if name in edge]
    if sorted(str(n) for n in names if n in edge) != sorted(wanted_edge):
        raise CheckFailed(
            "the held Edge Tool calls were not restored into the assistant turn",
            expected=", ".join(_script(ctx)[0]),
            actual=", ".join(str(name) for name in names),
        )
    after = messages[at + 1 : at + 1 + len(calls)]
    answered = [str(m.get("tool_call_id")) for m in after if m.get("role") == "tool"]
    ids = [str(call.get("id")) for call in calls]
    if answered != ids:
        raise CheckFailed(
            "the tool results after the turn are not one per call in call order",
            expected=", ".join(ids),
            actual=", ".join(answered) or "no tool message",
        )
    client_sent = {
        str(m.get("tool_call_id")): m.get("content")
        for m in (ctx.step_requests.get(CONTINUE_STEP) or {}).get("messages") or []
        if isinstance(m, Mapping) and m.get("role") == "tool"
    }
    for message in after:
        call_id = str(message.get("tool_call_id"))
        if call_id in client_sent and message.get("content") != client_sent[call_id]:
            raise CheckFailed(
                f"the client's result for {call_id} changed on the way",
                expected=str(client_sent[call_id])[:200],
                actual=str(message.get("content"))[:200],
            )
    for name, problem in _edge_results(received[:1], edge):
        if problem is not None:
            raise CheckFailed(problem, expected=f"a {name} result as D39 says", actual=problem)


@check(profiles=EDGEE_ONLY, requires=_MOCK, severity=_ERROR, depends_on=("edge_pending_continued",))
def edge_pending_single_use(ctx: CheckContext) -> None:
    """A pending id works once: the same continuation sent again is 400 invalid_edgee_pending_id."""
    again = ctx.require_step(REUSE_STEP)
    try:
        error = again.json().get("error") if again.status == 400 else None
    except CheckFailed:
        error = None
    code = error.get("code") if isinstance(error, Mapping) else None
    param = error.get("param") if isinstance(error, Mapping) else None
    if (again.status, code, param) != (400, "invalid_edgee_pending_id", "edgee_pending_id"):
        raise CheckFailed(
            "a pending id was accepted a second time",
            expected="400 invalid_edgee_pending_id (param edgee_pending_id)",
            actual=f"{again.status} {code or ''}".strip(),
        )


@check(profiles=EDGEE_ONLY)
def edge_tool_ids_error_message(ctx: CheckContext) -> None:
    """invalid_edgee_tool_ids names each bad id once, in request order, in D5's message."""
    ids = (ctx.request_body or {}).get("edgee_tool_ids") or []
    bad = [str(name) for name in dict.fromkeys(ids) if str(name) not in EDGE_TOOL_NAMES]
    expected = "Invalid or non-activated Edge Tool IDs: " + ", ".join(bad)
    body = ctx.observed.json() if ctx.observed.status == 400 else None
    error = body.get("error") if isinstance(body, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else None
    if message != expected:
        raise CheckFailed(
            "the refusal does not name the bad Edge Tool ids as D5 says",
            expected=expected,
            actual=f"{ctx.observed.status} {message!r}",
        )
