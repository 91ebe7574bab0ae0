"""The workload file: parsing and its errors, reproducible plans, the mix over many draws, and the
bodies it builds, judged by the tokenizer convention and by the real mock provider on loopback."""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import LocalServer
from gateproof.load._workload import (
    DEFAULT_PROMPT,
    TOOL,
    TOOL_NAME,
    Distribution,
    PlannedCall,
    Workload,
    load_workload,
    workload_from_dict,
)
from gateproof.mock_providers._directives import parse_directive
from gateproof.openapi import COMPRESSION_HEADER, count_chat_prompt, load_transcript

ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai/gpt-4o"

MIX: dict[str, Any] = {
    "scenarios": {"chat": 2, "stream": 5, "tools": 1, "compression": 2},
    "prompt_tokens": {"uniform": [40, 3000]},
    "output_tokens": {"choices": [16, {"value": 128, "weight": 3}]},
    "models": {"default": [{"model": "a/one", "weight": 3}, "b/two"], "tools": "c/tools"},
    "compression": {"sizes": ["1k"], "endpoints": ["chat", "compress"]},
}


def _workload(data: dict[str, Any] | None = None, **overrides: Any) -> Workload:
    return workload_from_dict({**(MIX if data is None else data), **overrides}, default_model=MODEL)


def _plain(call: PlannedCall) -> str:
    return call.directive(cid=f"wl-{call.index}", ttft_ms=0, itl_ms=0)


# -- the file -----------------------------------------------------------------------------------


def test_the_example_workload_file_loads() -> None:
    workload = load_workload(ROOT / "docs" / "examples" / "workload.yaml")
    assert workload.scenarios.shares() == {"chat": 0.2, "stream": 0.6, "tools": 0.1, "compression": 0.1}
    assert workload.prompt_tokens == Distribution("uniform", (50, 2000))
    assert workload.output_tokens is not None and workload.output_tokens.values == (16, 128, 512)
    assert workload.models["tools"].names == ("openai/gpt-4o",)
    assert workload.models["stream"].shares() == {"openai/gpt-4o": 0.75, "anthropic/claude-haiku-4-5": 0.25}
    assert workload.sizes == ("1k", "8k") and workload.endpoints == ("chat", "compress")
    assert workload.source.endswith("workload.yaml")


def test_the_smallest_file_is_its_scenarios_and_the_run_model_serves_them(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("scenarios: {stream: 1}\n", encoding="utf-8")
    workload = load_workload(path, default_model="openai/gpt-4o")
    call = workload.plan(0, 1)
    assert (call.scenario, call.stream, call.model, call.prompt_tokens, call.output_tokens) == (
        "stream",
        True,
        "openai/gpt-4o",
        None,
        None,
    )
    assert workload.sizes == ("1k", "8k", "32k") and workload.endpoints == ("chat", "compress")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, r"is empty; it needs at least `scenarios:`"),
        ([1, 2], r"must be a mapping, got list; it needs at least `scenarios:`"),
        ({"prompt_tokens": 5}, r"missing `scenarios:`"),
        ({"scenarios": {"chat": 1}, "users": 5}, r"unknown key users \(known: scenarios, prompt_tokens"),
        ({"scenarios": []}, r"scenarios: must map scenarios \(chat, stream, tools, compression\) to weights"),
        ({"scenarios": {}}, r"scenarios: must map scenarios"),
        (
            {"scenarios": {"toolz": 1}},
            r"scenarios: unknown scenario toolz \(known: chat, stream, tools, compression\)",
        ),
        ({"scenarios": {"chat": 0, "stream": 0}}, r"scenarios: every weight is 0"),
        ({"scenarios": {"chat": -1}}, r"scenarios\.chat: a weight must be a number >= 0, got -1"),
        ({"scenarios": {"chat": "lots"}}, r"scenarios\.chat: a weight must be a number >= 0, got 'lots'"),
        ({"scenarios": {"chat": True}}, r"scenarios\.chat: a weight must be a number >= 0, got True"),
        (
            {"scenarios": {"chat": 1}, "prompt_tokens": "long"},
            r"prompt_tokens: must be a number of tokens, \{uniform",
        ),
        ({"scenarios": {"chat": 1}, "prompt_tokens": 1.5}, r"prompt_tokens: must be a number of tokens"),
        (
            {"scenarios": {"chat": 1}, "prompt_tokens": -1},
            r"prompt_tokens: -1 is out of range 0\.\.1000000 tokens",
        ),
        ({"scenarios": {"chat": 1}, "prompt_tokens": 2_000_000}, r"out of range 0\.\.1000000"),
        (
            {"scenarios": {"chat": 1}, "output_tokens": 0},
            r"output_tokens: 0 is out of range 1\.\.100000 tokens",
        ),
        (
            {"scenarios": {"chat": 1}, "output_tokens": {"fixed": True}},
            r"output_tokens\.fixed: a length is a whole number of tokens, got True",
        ),
        (
            {"scenarios": {"chat": 1}, "prompt_tokens": {"normal": [5, 1]}},
            r"prompt_tokens: unknown form 'normal'",
        ),
        (
            {"scenarios": {"chat": 1}, "prompt_tokens": {"uniform": [5, 1], "fixed": 3}},
            r"prompt_tokens: must be a number",
        ),
        (
            {"scenarios": {"chat": 1}, "prompt_tokens": {"uniform": [500, 100]}},
            r"prompt_tokens\.uniform: low 500 is above high 100",
        ),
        (
            {"scenarios": {"chat": 1}, "prompt_tokens": {"uniform": [1, 2, 3]}},
            r"prompt_tokens\.uniform: must be \[low, high\]",
        ),
        (
            {"scenarios": {"chat": 1}, "prompt_tokens": {"uniform": [1, "x"]}},
            r"prompt_tokens\.uniform: a length is a whole number",
        ),
        (
            {"scenarios": {"chat": 1}, "output_tokens": {"choices": []}},
            r"output_tokens\.choices: must be a non-empty list",
        ),
        (
            {"scenarios": {"chat": 1}, "output_tokens": {"choices": [16, {"value": 64, "weight": 0}]}},
            r"output_tokens\.choices\[2\]: a weight must be a number > 0, got 0",
        ),
        (
            {"scenarios": {"chat": 1}, "output_tokens": {"choices": [{"weight": 2}]}},
            r"output_tokens\.choices\[1\]: must be a number or \{value: N, weight: W\}",
        ),
        (
            {"scenarios": {"chat": 1}, "output_tokens": {"choices": [{"value": 2, "p": 0.5}]}},
            r"output_tokens\.choices\[1\]: must be a number or",
        ),
        ({"scenarios": {"chat": 1}, "models": []}, r"models: must be a model, or a list of models"),
        ({"scenarios": {"chat": 1}, "models": 7}, r"models: must be a model, or a list"),
        (
            {"scenarios": {"chat": 1}, "models": ["a", ""]},
            r"models\[2\]: a model is a non-empty name, got ''",
        ),
        ({"scenarios": {"chat": 1}, "models": ["a", "a"]}, r"models\[2\]: model 'a' is listed twice"),
        (
            {"scenarios": {"chat": 1}, "models": [{"model": "a", "weight": -2}]},
            r"models\[1\]: a weight must be a number > 0",
        ),
        (
            {"scenarios": {"chat": 1}, "models": [{"name": "a"}]},
            r"models\[1\]: unknown key name \(known: model, weight\)",
        ),
        (
            {"scenarios": {"chat": 1}, "models": {"chats": "a"}},
            r"models: unknown scenario chats \(per-scenario keys:",
        ),
        (
            {"scenarios": {"chat": 1}, "models": {"stream": "a"}},
            r"models: scenario chat has no model \(add `default:`",
        ),
        (
            {"scenarios": {"chat": 1}, "compression": ["1k"]},
            r"compression: must be a mapping with sizes and endpoints",
        ),
        (
            {"scenarios": {"chat": 1}, "compression": {"size": ["1k"]}},
            r"compression: unknown key size \(known: sizes, endpoints\)",
        ),
        (
            {"scenarios": {"chat": 1}, "compression": {"sizes": ["2k"]}},
            r"compression\.sizes: unknown 2k \(known: 1k, 8k, 32k, 128k\)",
        ),
        (
            {"scenarios": {"chat": 1}, "compression": {"sizes": []}},
            r"compression\.sizes: must be a non-empty list",
        ),
        (
            {"scenarios": {"chat": 1}, "compression": {"sizes": ["1k", "1k"]}},
            r"compression\.sizes: a value is repeated",
        ),
        (
            {"scenarios": {"chat": 1}, "compression": {"endpoints": ["responses"]}},
            r"compression\.endpoints: unknown responses",
        ),
        ({"scenarios": {"chat": 1}, "description": 5}, r"description: must be text, got 5"),
    ],
)
def test_every_mistake_is_named_with_the_file_and_the_key(tmp_path: Path, data: Any, message: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("" if data is None else json.dumps(data), encoding="utf-8")  # JSON is YAML
    with pytest.raises(ValueError, match=message) as raised:
        load_workload(path)
    assert str(raised.value).startswith(f"workload file {path}: ")


def test_a_scenario_without_a_model_is_refused_only_without_a_run_model(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("scenarios: {chat: 1, tools: 0}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"models: scenario chat has no model"):
        load_workload(path)
    # a scenario weighted 0 is never drawn, so it needs no model
    assert set(load_workload(path, default_model="m").models) == {"chat"}


def test_unreadable_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"workload file .*missing\.yaml: cannot be read"):
        load_workload(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("scenarios: {chat: 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"workload file .*broken\.yaml: is not valid YAML"):
        load_workload(broken)


# -- plans --------------------------------------------------------------------------------------


def test_the_same_seed_and_index_give_the_same_call_in_any_order() -> None:
    workload = _workload()
    forward = [workload.plan(i, 42) for i in range(300)]
    backward = [workload.plan(i, 42) for i in reversed(range(300))][::-1]
    assert forward == backward
    # a workload read again (another process) plans the same calls
    assert [_workload().plan(i, 42) for i in range(300)] == forward
    assert {call.scenario for call in forward} == {"chat", "stream", "tools", "compression"}


def test_different_seeds_give_different_plans() -> None:
    workload = _workload()
    plans = {seed: [workload.plan(i, seed) for i in range(200)] for seed in (1, 2, 12)}
    assert plans[1] != plans[2] and plans[1] != plans[12] and plans[2] != plans[12]
    # seed 1 index 23 and seed 12 index 3 must not collide ("1:23" vs "12:3")
    assert [c.scenario for c in plans[1][:50]] != [c.scenario for c in plans[12][:50]]


def test_weights_are_respected_over_many_draws() -> None:
    workload = _workload()
    draws = 20_000
    calls = [workload.plan(i, 7) for i in range(draws)]
    scenarios = collections.Counter(call.scenario for call in calls)
    for name, share in {"chat": 0.2, "stream": 0.5, "tools": 0.1, "compression": 0.2}.items():
        assert scenarios[name] / draws == pytest.approx(share, abs=0.015), name
    models = collections.Counter(call.model for call in calls if call.scenario != "tools")
    assert models["a/one"] / (models["a/one"] + models["b/two"]) == pytest.approx(0.75, abs=0.015)
    assert {call.model for call in calls if call.scenario == "tools"} == {"c/tools"}
    outputs = collections.Counter(call.output_tokens for call in calls if call.scenario in ("chat", "stream"))
    assert set(outputs) == {16, 128}
    assert outputs[128] / sum(outputs.values()) == pytest.approx(0.75, abs=0.015)
    prompts = [c.prompt_tokens for c in calls if c.scenario != "compression" and c.prompt_tokens is not None]
    assert len(prompts) == scenarios["chat"] + scenarios["stream"] + scenarios["tools"]
    assert min(prompts) >= 40 and max(prompts) <= 3000
    # uniform over 40..3000: the mean in the middle
    assert sum(prompts) / len(prompts) == pytest.approx(1520, rel=0.03)


def test_uniform_draws_reach_both_ends() -> None:
    workload = _workload(prompt_tokens={"uniform": [10, 12]})
    seen = {workload.plan(i, 3).prompt_tokens for i in range(300) if workload.plan(i, 3).scenario == "chat"}
    assert seen == {10, 11, 12}


def test_a_zero_weight_is_never_drawn() -> None:
    workload = _workload(scenarios={"chat": 1, "stream": 0, "tools": 0, "compression": 0})
    assert {workload.plan(i, 5).scenario for i in range(2000)} == {"chat"}


def test_changing_one_distribution_leaves_the_other_draws_alone() -> None:
    before = [_workload().plan(i, 9) for i in range(500)]
    after = [_workload(output_tokens=64).plan(i, 9) for i in range(500)]
    assert [(c.scenario, c.model, c.prompt_tokens) for c in before] == [
        (c.scenario, c.model, c.prompt_tokens) for c in after
    ]
    assert {c.output_tokens for c in after if c.scenario in ("chat", "stream")} == {64}


def test_each_scenario_plans_its_own_kind_of_call() -> None:
    calls = {call.scenario: call for call in (_workload().plan(i, 11) for i in range(200))}
    assert (calls["chat"].stream, calls["chat"].endpoint, calls["chat"].label) == (False, "chat", "chat")
    assert (calls["stream"].stream, calls["stream"].label) == (True, "chat stream")
    tools = calls["tools"]
    assert (tools.stream, tools.output_tokens, tools.label) == (False, None, "tools")
    compression = calls["compression"]
    assert compression.stream is False and compression.size == "1k"
    assert compression.prompt_tokens == load_transcript("1k").tokens
    assert compression.label == f"{compression.endpoint} 1k"
    assert dict(compression.headers) == {COMPRESSION_HEADER: "true"}
    assert dict(calls["chat"].headers) == {}


def test_without_lengths_the_default_prompt_and_answer_are_used() -> None:
    # absent keys and YAML nulls (`prompt_tokens:` with nothing after it) mean the same
    data = {k: v for k, v in MIX.items() if k not in ("prompt_tokens", "output_tokens")}
    absent = workload_from_dict({**data, "scenarios": {"chat": 1}}).plan(0, 1)
    call = _workload(scenarios={"chat": 1}, prompt_tokens=None, output_tokens=None).plan(0, 1)
    assert call == absent
    assert (call.prompt_tokens, call.output_tokens, call.directive_keys()) == (None, None, {})
    body = call.body(lambda c: c.directive(cid="x"))
    assert body["messages"] == [{"role": "user", "content": f"{DEFAULT_PROMPT} [[gateproof cid=x]]"}]
    assert call.body(lambda c: "")["messages"][0]["content"] == DEFAULT_PROMPT


def test_describe_sums_up_the_mix() -> None:
    text = _workload().describe()
    assert text.startswith("chat 20%, stream 50%, tools 10%, compression 20%; prompt uniform 40..3000 tokens")
    assert "output choices 16 (weight 1), 128 (weight 3) tokens" in text
    assert "models a/one, b/two, c/tools" in text and "transcripts 1k to chat,compress" in text


# -- bodies -------------------------------------------------------------------------------------


def test_the_prompt_costs_exactly_the_planned_tokens_directive_and_tool_included() -> None:
    workload = _workload(prompt_tokens={"uniform": [120, 20_000]})
    checked = collections.Counter[str]()
    for index in range(400):
        call = workload.plan(index, 13)
        if call.scenario == "compression":
            continue
        body = call.body(_plain)
        assert count_chat_prompt(body["messages"], body.get("tools", [])) == call.prompt_tokens, call
        checked[call.scenario] += 1
    assert set(checked) == {"chat", "stream", "tools"}


def test_a_prompt_longer_than_the_word_pool_is_still_exact() -> None:
    call = _workload(scenarios={"chat": 1}, prompt_tokens=30_000).plan(3, 1)
    body = call.body(_plain)
    assert count_chat_prompt(body["messages"]) == 30_000
    without = call.body(lambda c: "")
    assert count_chat_prompt(without["messages"]) == 30_000


def test_a_prompt_below_the_framing_is_as_short_as_it_can_be() -> None:
    call = _workload(scenarios={"tools": 1}, prompt_tokens=0).plan(0, 1)
    body = call.body(_plain)
    content = body["messages"][0]["content"]
    assert content == _plain(call)  # the directive alone
    assert count_chat_prompt(body["messages"], body["tools"]) > 0


def test_prompts_differ_between_calls_of_the_same_length() -> None:
    workload = _workload(scenarios={"chat": 1}, prompt_tokens=300)
    contents = {workload.plan(i, 1).body(lambda c: "")["messages"][0]["content"] for i in range(50)}
    assert len(contents) > 40


def test_a_chat_body_asks_for_its_output_and_a_stream_for_usage() -> None:
    workload = _workload(scenarios={"chat": 1, "stream": 1}, output_tokens=33)
    calls = {c.scenario: c for c in (workload.plan(i, 2) for i in range(50))}
    chat = calls["chat"].body(_plain)
    assert "stream" not in chat and "tools" not in chat and chat["model"] in ("a/one", "b/two")
    directive = parse_directive(chat["messages"][0]["content"])
    assert directive is not None and directive.tokens == 33 and directive.cid == f"wl-{calls['chat'].index}"
    stream = calls["stream"].body(_plain, model="gpt-4o", max_tokens=50)
    assert stream["stream"] is True and stream["stream_options"] == {"include_usage": True}
    assert stream["model"] == "gpt-4o" and stream["max_tokens"] == 50


def test_the_calls_own_directive_keys_win_over_the_runs() -> None:
    call = _workload(scenarios={"chat": 1}, output_tokens=20).plan(0, 1)
    directive = parse_directive(call.directive(tokens=64, cid="c1", ttft_ms=5))
    assert directive is not None and (directive.tokens, directive.cid, directive.ttft_ms) == (20, "c1", 5)


def test_a_tools_body_offers_one_function_and_asks_the_mock_to_call_it() -> None:
    call = _workload(scenarios={"tools": 1}).plan(0, 1)
    body = call.body(_plain)
    assert body["tools"] == [TOOL]
    directive = parse_directive(body["messages"][-1]["content"])
    assert directive is not None and (directive.scenario, directive.tool) == ("tool_call", TOOL_NAME)
    assert directive.tokens is None  # a tool call's length is its arguments'


def test_a_compression_body_is_the_transcript_with_the_directive_on_its_last_user_turn() -> None:
    workload = _workload(scenarios={"compression": 1}, compression={"sizes": ["1k"], "endpoints": ["chat"]})
    call = workload.plan(0, 1)
    transcript = load_transcript("1k")
    body = call.body(_plain, model="m")
    assert body["model"] == "m" and len(body["messages"]) >= len(transcript.messages)
    assert body["messages"][: len(transcript.messages) - 1] == [dict(m) for m in transcript.messages[:-1]]
    directive = parse_directive(body["messages"][-1]["content"])
    assert directive is not None and directive.tokens == call.output_tokens
    # the shared transcript is left as it was
    assert _plain(call) not in json.dumps([dict(m) for m in transcript.messages])
    compress = _workload(
        scenarios={"compression": 1}, compression={"sizes": ["1k"], "endpoints": ["compress"]}
    ).plan(0, 1)
    assert compress.endpoint == "compress" and compress.output_tokens is None
    assert compress.directive_keys() == {}


def test_prepare_warms_everything_a_body_needs() -> None:
    workload = _workload()
    workload.prepare()
    # after prepare, planning and building a thousand calls is quick (no tokenizer over prompts)
    started = time.perf_counter()
    for index in range(1000):
        workload.plan(index, 5).body(_plain)
    assert time.perf_counter() - started < 5.0


# -- against the real mock provider -------------------------------------------------------------


def _post(server: LocalServer, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10.0, trust_env=False) as client:
        return client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer x"})


def test_the_mock_bills_the_planned_prompt_and_answers_the_planned_length(mock_server: LocalServer) -> None:
    workload = _workload(
        scenarios={"chat": 1}, prompt_tokens={"choices": [200, 1500]}, output_tokens={"uniform": [5, 40]}
    )
    for index in range(4):
        call = workload.plan(index, 21)
        answer = _post(mock_server, call.body(_plain, model="gpt-4o"))
        assert answer.status_code == 200, answer.text
        usage = answer.json()["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
            call.prompt_tokens,
            call.output_tokens,
        )


def test_the_mock_answers_a_tools_call_with_a_call_to_the_tool(mock_server: LocalServer) -> None:
    call = _workload(scenarios={"tools": 1}, prompt_tokens=400).plan(0, 3)
    answer = _post(mock_server, call.body(_plain, model="gpt-4o"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == [TOOL_NAME]
    assert data["usage"]["prompt_tokens"] == 400


def test_the_mock_streams_a_stream_call_with_usage(mock_server: LocalServer) -> None:
    call = _workload(scenarios={"stream": 1}, prompt_tokens=250, output_tokens=9).plan(0, 4)
    answer = _post(mock_server, call.body(_plain, model="gpt-4o"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: {")]
    assert any(event["choices"] and event["choices"][0]["delta"].get("content") for event in events)
    usage = [event["usage"] for event in events if event.get("usage")]
    assert [(u["prompt_tokens"], u["completion_tokens"]) for u in usage] == [(250, 9)]
