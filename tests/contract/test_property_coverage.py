"""The property layer judges every check on every case, whatever another check found.

schemathesis stops an operation at its first failure unless told to continue: a gateway
with one fault used to have the other checks of ``POST /v1/chat/completions`` "pass" on
the two or three cases that had run by then. Each test starts the reference stack with
one fault (a 5xx on some inputs, a missing header, a refused valid body) and reads what
the property layer says on every check of the operation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gateproof.cli.launch import LocalStack, local_stack
from gateproof.contract import Outcome, Profile
from gateproof.contract._property import PropertyRun, run_property
from gateproof.contract.results import CheckResult, Severity

from .conftest import stack_config

CHAT = "POST /v1/chat/completions"
MODELS = "GET /v1/models"
COMPRESS = "POST /v1/compress"
EXAMPLES = 10

#: fault -> the property check it fails (on some or all cases of the chat operation)
FAULTED_CHECK = {
    "invalid_json_500": "not_a_server_error",
    "provider_header_missing": "response_headers_conformance",
    "content_parts_rejected": "positive_data_acceptance",
}


@pytest.fixture(scope="module", params=sorted(FAULTED_CHECK))
def faulty(request: pytest.FixtureRequest) -> Iterator[tuple[str, PropertyRun]]:
    fault: str = request.param
    with local_stack(gateway_args=["--fault", fault, "--log-level", "warning"]) as stack:
        config = stack_config(stack, property_examples=EXAMPLES)
        yield fault, run_property(config, stack.api_key)


def _on(run: PropertyRun, route: str) -> dict[str, CheckResult]:
    return {r.check: r for r in run.results if r.route == route}


def test_the_faulted_check_fails_in_n_of_m_cases(faulty: tuple[str, PropertyRun]) -> None:
    fault, run = faulty
    result = _on(run, CHAT)[FAULTED_CHECK[fault]]
    assert result.outcome is Outcome.FAILED, result.reason
    assert 0 < result.failed_cases <= result.cases
    assert f"failed in {result.failed_cases} of {result.cases} cases" in result.reason


def test_the_other_checks_still_ran_every_case(faulty: tuple[str, PropertyRun]) -> None:
    fault, run = faulty
    on_chat = _on(run, CHAT)
    generated = int(run.operations[CHAT]["cases"])
    assert generated > EXAMPLES  # examples, coverage and fuzzing phases
    for name, result in on_chat.items():
        cases = result.cases
        # before: 2 or 3 cases for every check, the first failure having ended the operation
        assert cases >= 0.9 * generated, f"{name} judged {cases} of {generated} cases under --fault {fault}"
        if name != FAULTED_CHECK[fault] and result.outcome is Outcome.PASSED:
            assert result.reason == f"passed in {cases} of {cases} cases"


def test_failures_carry_the_failing_answer(faulty: tuple[str, PropertyRun]) -> None:
    fault, run = faulty
    result = _on(run, CHAT)[FAULTED_CHECK[fault]]
    raw, exchange = result.raw, result.exchange
    assert result.severity is None  # a shape check: measured by impact
    assert raw is not None and exchange is not None
    assert raw.status == exchange.status
    assert raw.body and isinstance(raw.body, bytes)
    if fault != "invalid_json_500":  # that fault's failing requests are the bodies that are not JSON
        assert raw.request is not None and "messages" in raw.request
    # the failing request's own latency, not the operation's wall time
    assert (
        exchange.elapsed_ms is not None and 0 < exchange.elapsed_ms < run.operations[CHAT]["seconds"] * 1000
    )


def test_reasons_say_what_was_sent_and_what_came(faulty: tuple[str, PropertyRun]) -> None:
    fault, run = faulty
    reason = _on(run, CHAT)[FAULTED_CHECK[fault]].reason
    if fault == "content_parts_rejected":
        assert re.match(r"a valid request \(model openai/gpt-4o(, stream)?\) got 400: ", reason), reason
        assert "invalid_request" in reason
    elif fault == "invalid_json_500":
        assert re.match(r"a (valid|schema-violating) request.* got 500: invalid_json", reason), reason
    else:
        assert reason.startswith("the 200 answer to a valid request (model openai/gpt-4o"), reason
        assert "X-Edgee-Provider" in reason or "x-edgee-provider" in reason.lower()


def test_an_operations_time_is_counted_once(faulty: tuple[str, PropertyRun]) -> None:
    _, run = faulty
    assert set(run.operations) == {CHAT, MODELS, COMPRESS}
    assert sum(op["seconds"] for op in run.operations.values()) <= run.seconds
    for route, cost in run.operations.items():
        judged = sum(r.duration_ms for r in run.results if r.route == route) / 1000
        # every check's own evaluation time; together they fit in the operation's wall time
        assert judged <= cost["seconds"] + 0.05, (route, judged, cost)


@pytest.fixture(scope="module")
def no_auth_stack() -> Iterator[LocalStack]:
    with local_stack(gateway_args=["--fault", "no_auth", "--log-level", "warning"]) as stack:
        yield stack


def test_ignored_auth_is_an_error_with_the_unauthenticated_answer(no_auth_stack: LocalStack) -> None:
    config = stack_config(no_auth_stack, property_examples=EXAMPLES)
    run = run_property(config, no_auth_stack.api_key, only=frozenset({"ignored_auth"}))
    result = _on(run, CHAT)["ignored_auth"]
    assert result.outcome is Outcome.FAILED
    assert result.severity is Severity.ERROR
    assert result.raw is not None and result.raw.status == 200
    assert result.raw.expected_statuses == frozenset({401})
    assert "no key" in result.reason or "invalid key" in result.reason


def test_a_target_without_auth_is_not_judged_on_it(no_auth_stack: LocalStack) -> None:
    config = stack_config(no_auth_stack, Profile.EDGEE, property_examples=EXAMPLES, auth_required=False)
    run = run_property(config, no_auth_stack.api_key, only=frozenset({"ignored_auth"}))
    [result] = run.results
    assert result.outcome is Outcome.NOT_APPLICABLE
    assert result.reason == "the target declares no authentication (auth_required: false)"
    assert result.cases == 0
    assert run.operations == {}  # nothing to judge, nothing sent
