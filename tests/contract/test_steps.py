"""Scenario steps: further requests built from the first answer, each with its share of the journal.

Run against the real stack (mock provider + reference gateway): the runner sends the steps in
order, hands each builder the answers so far, and splits the scenario's journal between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateproof.cli.launch import LocalStack
from gateproof.contract._exchange import bounded_client, send
from gateproof.contract._runner import _ScenarioRun
from gateproof.contract._scenarios import FIRST, Scenario, Step
from gateproof.contract.checks import Observed, load_all_checks

from .conftest import stack_config


def _again_with_more_tokens(body: dict[str, Any], answers: Mapping[str, Observed]) -> dict[str, Any]:
    first = answers[FIRST].json()
    body["max_tokens"] = 32
    body["messages"].append({"role": "assistant", "content": first["choices"][0]["message"]["content"]})
    body["messages"].append({"role": "user", "content": "And again."})
    return body


def _never(body: dict[str, Any], answers: Mapping[str, Observed]) -> None:
    return None


def _broken(body: dict[str, Any], answers: Mapping[str, Observed]) -> dict[str, Any]:
    return {"messages": answers["no-such-step"].json()}


SCENARIO = Scenario(
    name="steps_probe",
    description="A first request, a continuation built from its answer, a declined and a broken step.",
    body={"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16},
    checks=(),
    mock={"scenario": "text", "tokens": 5},
    headers={"X-Edgee-Tags": "first"},
    steps=(
        Step("continue", _again_with_more_tokens),
        # a step's headers replace the scenario's: a bad boolean header is the gateway's 400 (D7)
        Step("bad-header", lambda body, answers: body, headers={"X-Edgee-Debug": "maybe"}),
        Step("declined", _never),
        Step("broken", _broken),
        Step("models", lambda body, answers: body, path="/no-such-path"),
    ),
)


def test_steps_are_sent_in_order_with_their_own_journal(stack: LocalStack) -> None:
    load_all_checks()
    config = stack_config(stack)
    with bounded_client(config.timeout_s) as client:
        runner = _ScenarioRun(config, client, config.api_key(), config.satisfied(), "steps-test")
        cid = "steps-test-probe"
        sent, parsed = runner.build(SCENARIO, cid)
        first, _ = send(client, sent)
        journal = runner._journal(cid)
        assert first.status == 200 and journal is not None and len(journal) == 1
        done = runner._steps(SCENARIO, sent, parsed, first, cid, journal)

    # the continuation was built from the first answer and sent with its own headers
    assert list(done.answers) == ["continue", "bad-header", "models"]
    assert done.answers["continue"].status == 200
    sent_messages = done.requests["continue"]["messages"]
    assert [m["role"] for m in sent_messages] == ["user", "assistant", "user"]
    assert sent_messages[1]["content"] == first.json()["choices"][0]["message"]["content"]
    # what the provider received during the step is the step's own share of the journal
    upstream = done.journals["continue"]
    assert len(upstream) == 1
    assert upstream[0].body["max_tokens"] == 32
    assert upstream[0].body["messages"][-1]["content"].startswith("And again. [[gateproof ")
    refused = done.answers["bad-header"]
    assert refused.status == 400 and refused.json()["error"]["param"].lower() == "x-edgee-debug"
    assert done.journals["bad-header"] == []
    # a step the gateway answered with an error still counts as answered; the provider saw nothing
    assert done.answers["models"].status == 404
    assert done.journals["models"] == []
