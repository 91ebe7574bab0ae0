"""The ``script`` directive: tool calls over several turns, round by round, then text.

The round due is the number of assistant tool-call messages after the last user message,
so a gateway that runs tools itself (Edge Tools) walks the script by sending its results back.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateproof.mock_providers import Finish, Incoming, MockConfig, parse_directive, plan_scenario
from gateproof.mock_providers.dialects import OpenAIDialect

CONFIG = MockConfig(ttft_ms=0, itl_ms=0, tokens=5)
INCOMING = Incoming("/v1/chat/completions", {}, "", [])
SCRIPT = "[[gateproof script=edgee_generate_uuid;edgee_current_time+get_weather]]"
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "edgee_current_time",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string", "examples": ["Europe/Paris"]}},
        },
    },
}


def _plan(messages: list[dict[str, Any]], **extra: Any) -> Any:
    request = OpenAIDialect().parse({"model": "gpt-4o", "messages": messages, **extra}, INCOMING)
    return plan_scenario(request, parse_directive(request.last_user_text), CONFIG)


def _calls_message(plan: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in plan.tool_calls
        ],
    }


def _results(plan: Any) -> list[dict[str, Any]]:
    return [{"role": "tool", "tool_call_id": c.id, "content": "{}"} for c in plan.tool_calls]


def test_the_script_is_walked_round_by_round_then_text() -> None:
    history: list[dict[str, Any]] = [{"role": "user", "content": f"go {SCRIPT}"}]
    first = _plan(history, tools=[TIME_TOOL])
    assert first.finish is Finish.TOOL_CALLS
    assert [c.name for c in first.tool_calls] == ["edgee_generate_uuid"]
    history += [_calls_message(first), *_results(first)]
    second = _plan(history, tools=[TIME_TOOL])
    assert [c.name for c in second.tool_calls] == ["edgee_current_time", "get_weather"]
    # a documented example is what the mock passes: deterministic arguments
    assert json.loads(second.tool_calls[0].arguments) == {"timezone": "Europe/Paris"}
    assert len({c.id for c in (*first.tool_calls, *second.tool_calls)}) == 3
    history += [_calls_message(second), *_results(second)]
    third = _plan(history, tools=[TIME_TOOL])
    assert third.name == "text" and third.finish is Finish.STOP and third.tool_calls == ()


def test_a_new_user_message_starts_the_script_again() -> None:
    history: list[dict[str, Any]] = [{"role": "user", "content": "first"}]
    plan = _plan([{"role": "user", "content": f"go {SCRIPT}"}])
    history += [_calls_message(plan), *_results(plan), {"role": "user", "content": f"again {SCRIPT}"}]
    assert [c.name for c in _plan(history).tool_calls] == ["edgee_generate_uuid"]


@pytest.mark.parametrize(
    "raw",
    ["script=", "script=a;;b", "script=a+", "script=a b", f"script={';'.join(['a'] * 17)}", "script=a+b$"],
)
def test_a_bad_script_is_refused_with_its_problem(raw: str) -> None:
    from gateproof.mock_providers._errors import DirectiveError

    with pytest.raises(DirectiveError):
        parse_directive(f"[[gateproof {raw}]]")


def test_the_script_over_http(http: httpx.Client) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"go {SCRIPT}"}], "stream": True}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    names = [
        fragment["function"]["name"]
        for event in events[:-1]
        for choice in json.loads(event)["choices"]
        for fragment in choice["delta"].get("tool_calls") or []
        if fragment.get("function", {}).get("name")
    ]
    assert names == ["edgee_generate_uuid"]
