"""The Edge Tool scenarios against the unfaulted reference gateway: every check judges, and passes.

test_reference_passes.py proves nothing failed; this proves the Edge Tool checks were not
quietly "not applicable" (no mock, no script, a step never sent), that openai-core leaves
them out, and that the pending step builders make the continuation the checks read.
"""

from __future__ import annotations

import pytest

from gateproof.cli.launch import LocalStack
from gateproof.contract import Layers, Outcome, RunOptions, RunResult, run_contract
from gateproof.contract._scenarios import FIRST, SCENARIOS
from gateproof.contract.checks import Observed, Profile
from gateproof.contract.checks.edge_tools import CONTINUE_STEP, continuation

from .conftest import stack_config

EDGE_SCENARIOS = frozenset(
    s.name for s in SCENARIOS if s.name.startswith("edge_tools_") or s.name.startswith("edgee_")
)


@pytest.fixture(scope="module")
def edge_runs(stack: LocalStack) -> dict[Profile, RunResult]:
    options = RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=EDGE_SCENARIOS)
    return {profile: run_contract(stack_config(stack, profile), options) for profile in Profile}


def test_every_edge_tool_check_passes_in_the_edgee_profile(edge_runs: dict[Profile, RunResult]) -> None:
    results = edge_runs[Profile.EDGEE].results
    edge_checks = {(r.check, r.scenario): r.outcome for r in results if r.check.startswith("edge_")}
    assert edge_checks, "no Edge Tool check ran"
    assert all(outcome is Outcome.PASSED for outcome in edge_checks.values()), edge_checks
    wanted = {
        ("edge_tools_injected", "edge_tools_loop"),
        ("edge_tool_results_well_formed", "edge_tools_loop_stream"),
        ("edge_tools_executed_reported", "edge_tools_pending_stream"),
        ("edge_tool_calls_hidden", "edge_tools_pending"),
        ("edge_pending_continued", "edge_tools_pending"),
        ("edge_pending_single_use", "edge_tools_pending"),
        ("edge_pending_continued", "edge_tools_pending_stream"),
        ("edge_usage_summed", "edge_tools_loop_stream"),
        ("edge_tool_ids_error_message", "edgee_tool_ids_listed"),
    }
    assert wanted <= set(edge_checks)
    failures = [
        f"{r.check} [{r.scenario}]: {r.reason}"
        for r in results
        if r.outcome in (Outcome.FAILED, Outcome.ERROR)
    ]
    assert failures == []


def test_openai_core_leaves_every_edge_tool_scenario_out(edge_runs: dict[Profile, RunResult]) -> None:
    core = [r for r in edge_runs[Profile.OPENAI_CORE].results if r.scenario in EDGE_SCENARIOS]
    assert core
    assert {r.outcome for r in core} == {Outcome.NOT_APPLICABLE}


def test_the_continuation_answers_the_client_calls_and_sends_the_pending_id_back() -> None:
    first = Observed(
        status=200,
        headers={"content-type": "text/event-stream"},
        body=b"",
        chunks=[
            {
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}
                ]
            },
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_1",
                                    "function": {"name": "get_weather", "arguments": '{"ci'},
                                }
                            ]
                        },
                        "finish_reason": None,
                    }
                ]
            },
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"x"}'}}]},
                    }
                ]
            },
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
            {"choices": [], "edgee_pending_id": "pend_" + "x" * 22},
        ],
    )
    sent = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    body = continuation(sent, first)
    assert body is not None
    assert body["edgee_pending_id"] == "pend_" + "x" * 22
    assistant, tool = body["messages"][1:]
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"x"}'}
    assert tool["tool_call_id"] == "call_1"
    assert sent["messages"] == [{"role": "user", "content": "hi"}]  # the first body is left alone
    without = Observed(status=200, headers={}, body=b'{"choices": [{"message": {"content": "hi"}}]}')
    assert continuation(sent, without) is None
    assert FIRST == "" and CONTINUE_STEP == "continue"
