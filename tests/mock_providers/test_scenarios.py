"""The planner: deterministic, dialect-neutral plans from request + directive + defaults."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gateproof.mock_providers import ChatRequest, Finish, Incoming, MockConfig, parse_directive, plan_scenario
from gateproof.mock_providers._scenarios import PieceKind, sample_arguments
from gateproof.mock_providers.dialects import OpenAIDialect

CONFIG = MockConfig(ttft_ms=5, itl_ms=7, tokens=12)
INCOMING = Incoming("/v1/chat/completions", {}, "", [])


def _request(text: str, **extra: Any) -> ChatRequest:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}
    return OpenAIDialect().parse(body, INCOMING)


def _plan(text: str, **extra: Any) -> Any:
    request = _request(text, **extra)
    return plan_scenario(request, parse_directive(request.last_user_text), CONFIG)


def test_same_conversation_same_plan_streamed_or_not() -> None:
    a = _plan("hello [[gateproof tokens=9]]")
    b = _plan("hello [[gateproof tokens=9]]", stream=True, model="gpt-4o-mini")
    assert a.ident == b.ident and a.pieces == b.pieces and a.text == b.text
    assert _plan("hello [[gateproof tokens=9 seed=3]]").text != a.text
    assert _plan("hello! [[gateproof tokens=9]]").text != a.text


def test_defaults_come_from_the_config() -> None:
    plan = _plan("no directive")
    assert plan.name == "text" and len(plan.pieces) == 12
    assert plan.pacing.ttft == pytest.approx(0.005) and plan.pacing.itl == pytest.approx(0.007)
    timed = _plan("[[gateproof ttft_ms=0 itl_ms=30]]")
    assert timed.pacing.ttft == 0 and timed.pacing.itl == pytest.approx(0.03)


def test_max_tokens_cuts_the_text() -> None:
    plan = _plan("[[gateproof tokens=30]]", max_tokens=4)
    assert plan.finish is Finish.LENGTH and len(plan.pieces) == 4 and plan.usage.completion_tokens == 4
    untouched = _plan("[[gateproof tokens=3]]", max_tokens=4)
    assert untouched.finish is Finish.STOP and len(untouched.pieces) == 3


def test_zero_tokens_is_an_empty_answer() -> None:
    plan = _plan("[[gateproof tokens=0]]")
    assert plan.text == "" and plan.pieces == () and plan.usage.completion_tokens == 0


@pytest.mark.parametrize(
    ("text", "extra", "scenario"),
    [
        ("[[gateproof status=429]]", {}, "error"),
        ("[[gateproof tool=lookup]]", {}, "tool_call"),
        ("[[gateproof calls=2]]", {}, "tool_call"),
        (
            "plain",
            {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"},
            "tool_call",
        ),
        (
            "plain",
            {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"},
            "text",
        ),
        ("[[gateproof scenario=text status=429]]", {}, "text"),
    ],
)
def test_implied_scenarios(text: str, extra: dict[str, Any], scenario: str) -> None:
    assert _plan(text, **extra).name == scenario


def test_error_defaults() -> None:
    plan = _plan("[[gateproof scenario=error]]")
    assert plan.error is not None and plan.error.status == 500 and plan.error.retry_after is None
    limited = _plan("[[gateproof status=429]]")
    assert limited.error is not None and limited.error.retry_after == 1


def test_tool_call_pieces_rebuild_the_arguments() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    plan = _plan("[[gateproof scenario=tool_call]]", tools=tools)
    assert plan.finish is Finish.TOOL_CALLS
    assert plan.pieces[0] == (PieceKind.TOOL_START, "f", 0)
    arguments = "".join(text for kind, text, _ in plan.pieces if kind is PieceKind.TOOL_ARGS)
    assert arguments == plan.tool_calls[0].arguments
    assert set(json.loads(arguments)) == {"q"}


def test_unknown_tool_name_is_called_with_empty_arguments() -> None:
    plan = _plan("[[gateproof tool=not_offered]]")
    assert plan.tool_calls[0].name == "not_offered" and plan.tool_calls[0].arguments == "{}"


@pytest.mark.parametrize(
    ("schema", "check"),
    [
        ({"const": 5}, lambda v: v == 5),
        ({"enum": ["a", "b"]}, lambda v: v in ("a", "b")),
        ({"type": "integer", "minimum": 10, "maximum": 12}, lambda v: isinstance(v, int) and 10 <= v <= 12),
        ({"type": "number", "minimum": -1, "maximum": 1}, lambda v: isinstance(v, float) and -1 <= v <= 1),
        ({"type": ["null", "boolean"]}, lambda v: isinstance(v, bool)),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 2}, lambda v: len(v) == 2),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, lambda v: isinstance(v, int)),
        ({"type": "string", "format": "date"}, lambda v: v == "2024-05-01"),
        (
            {"properties": {"a": {"type": "object", "properties": {"b": {"type": "null"}}}}},
            lambda v: v == {"a": {"b": None}},
        ),
        ({"$ref": "#/defs/x"}, lambda v: isinstance(v, str)),
    ],
)
def test_sample_arguments_fit_the_schema(schema: dict[str, Any], check: Any) -> None:
    assert check(sample_arguments(schema, random.Random(1)))
