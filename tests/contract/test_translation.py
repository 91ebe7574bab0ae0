"""The intent comparison behind the translation checks: what counts as the same request (D41)."""

from __future__ import annotations

from typing import Any

from gateproof.contract.checks.translation import Topic, intent_differences
from gateproof.openapi import Intent, Part, ToolIntent, intent_from_openai

_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

_BODY: dict[str, Any] = {
    "model": "anthropic/claude-haiku-4-5",
    "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Weather in Rome and Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "cold"},
        {"role": "user", "content": "Which is warmer?"},
    ],
    "tools": [_TOOL],
    "tool_choice": "auto",
    "max_tokens": 64,
    "stop": ["END"],
}


def _anthropic_like(
    *,
    system: tuple[str, ...] = ("Be terse.",),
    ids: tuple[str, str] = ("toolu_a", "toolu_b"),
    answered: tuple[str, str] | None = None,
    result: Any = '{"temp_c": 21}',
    max_tokens: int = 64,
    schema_type: str = "object",
) -> Intent:
    """What a correct (or, with arguments, a faulty) Anthropic translation of ``_BODY`` reads as."""
    answered = answered or ids
    return Intent(
        model="claude-haiku-4-5",
        system=system,
        parts=(
            Part("user", "text", text="Weather in Rome\nand Oslo?"),
            Part("assistant", "tool_call", id=ids[0], name="get_weather", arguments={"city": "Rome"}),
            Part("assistant", "tool_call", id=ids[1], name="get_weather", arguments={"city": "Oslo"}),
            Part("user", "tool_result", id=answered[0], name=None, content=result),
            Part("user", "tool_result", id=answered[1], name=None, content="cold"),
            Part("user", "text", text="Which is warmer?"),
        ),
        tools=(
            ToolIntent(
                "get_weather",
                "Weather for a city.",
                {"type": schema_type, "properties": {"city": {"type": "string"}}, "required": ["city"]},
            ),
        ),
        tool_choice="auto",
        max_tokens=max_tokens,
        stop=("END",),
    )


def _topics(received: Intent) -> set[Topic]:
    return {d.topic for d in intent_differences(intent_from_openai(_BODY), received)}


def test_a_faithful_translation_with_renamed_ids_and_other_whitespace_has_no_difference() -> None:
    assert intent_differences(intent_from_openai(_BODY), _anthropic_like()) == []


def test_a_json_result_wrapped_in_one_key_and_upper_case_schema_types_are_the_same_intent() -> None:
    received = _anthropic_like(result={"output": {"temp_c": 21}}, schema_type="OBJECT")
    assert intent_differences(intent_from_openai(_BODY), received) == []


def test_a_dropped_system_prompt_is_a_system_difference() -> None:
    found = intent_differences(intent_from_openai(_BODY), _anthropic_like(system=()))
    assert [d.topic for d in found] == [Topic.SYSTEM]
    assert "dropped" in found[0].message


def test_results_swapped_between_calls_are_a_tool_results_difference() -> None:
    assert _topics(_anthropic_like(answered=("toolu_b", "toolu_a"))) == {Topic.TOOL_RESULTS}


def test_a_result_answering_no_call_is_a_tool_results_difference() -> None:
    found = intent_differences(intent_from_openai(_BODY), _anthropic_like(answered=("toolu_x", "toolu_b")))
    assert [d.topic for d in found] == [Topic.TOOL_RESULTS]
    assert "no tool call" in found[0].message


def test_a_changed_result_and_a_changed_budget_are_reported_under_their_topics() -> None:
    assert _topics(_anthropic_like(result='{"temp_c": 5}', max_tokens=4096)) == {
        Topic.CONVERSATION,
        Topic.PARAMS,
    }


def test_a_dialect_without_ids_matches_results_by_function_name() -> None:
    sent = intent_from_openai(_BODY)
    parts = tuple(
        Part(
            p.role,
            p.kind,
            text=p.text,
            id=None,
            name=p.name or "get_weather",
            arguments=p.arguments,
            content=p.content,
        )
        for p in sent.parts
    )
    assert intent_differences(sent, Intent(**{**sent.__dict__, "parts": parts})) == []
    renamed = tuple(
        Part(p.role, p.kind, text=p.text, id=None, name="lookup" if p.kind == "tool_result" else p.name,
             arguments=p.arguments, content=p.content)
        for p in parts
    )  # fmt: skip
    assert {d.topic for d in intent_differences(sent, Intent(**{**sent.__dict__, "parts": renamed}))} == {
        Topic.TOOL_RESULTS
    }


def test_without_texts_only_the_structure_is_compared() -> None:
    received = _anthropic_like(result="[compressed]", system=("Terse.",))
    assert intent_differences(intent_from_openai(_BODY), received, texts=False) == []
    assert Topic.SYSTEM in {d.topic for d in intent_differences(intent_from_openai(_BODY), received)}


def test_a_missing_part_says_what_is_missing() -> None:
    sent = intent_from_openai(_BODY)
    found = intent_differences(sent, Intent(**{**sent.__dict__, "parts": sent.parts[:-1]}))
    assert [d.topic for d in found] == [Topic.CONVERSATION]
    assert found[0].message == 'the provider did not receive the client\'s user text "Which is warmer?"'


def test_a_dropped_turn_whose_neighbours_merge_is_named_as_dropped() -> None:
    """A gateway that drops an assistant refusal from the history (its user turns then merge)."""
    sent = intent_from_openai(
        {
            "messages": [
                {"role": "user", "content": "Open the door."},
                {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                {"role": "user", "content": "Why not?"},
            ]
        }
    )
    received = Intent(
        parts=(Part("user", "text", text="Open the door."), Part("user", "text", text="Why not?"))
    )
    (found,) = intent_differences(sent, received)
    assert found.topic is Topic.CONVERSATION
    assert (
        found.message
        == "the provider did not receive the client's assistant text \"I can't help with that.\""
    )
