"""The unfaulted reference gateway passes the whole suite, in both profiles."""

from __future__ import annotations

import pytest

from gateproof.contract import Outcome, RunResult
from gateproof.contract.checks import Profile


def _failures(run: RunResult) -> list[str]:
    return [
        f"{r.check} [{r.scenario}] {r.outcome.value}: {r.reason}"
        for r in run.results
        if r.outcome in (Outcome.FAILED, Outcome.ERROR)
    ]


@pytest.mark.parametrize("profile", list(Profile))
def test_reference_gateway_passes_every_applicable_check(
    stack_runs: dict[Profile, RunResult], profile: Profile
) -> None:
    run = stack_runs[profile]
    assert run.unreachable is None
    assert _failures(run) == []
    assert run.counts["passed"] > 60
    assert run.exit_code() == 0
    layers = {r.layer.value for r in run.results if r.outcome is Outcome.PASSED}
    assert {"scenario", "stream", "property"} <= layers


def test_openai_core_marks_edgee_only_checks_not_applicable(stack_runs: dict[Profile, RunResult]) -> None:
    by_check = {(r.check, r.scenario): r for r in stack_runs[Profile.OPENAI_CORE].results}
    assert by_check[("provider_header_present", "chat_basic")].outcome is Outcome.NOT_APPLICABLE
    assert by_check[("error_code_expected", "bad_model_id")].outcome is Outcome.NOT_APPLICABLE
    assert by_check[("status_code_expected", "chat_basic")].outcome is Outcome.PASSED


def test_every_result_names_check_profile_route_and_scenario(stack_runs: dict[Profile, RunResult]) -> None:
    for result in stack_runs[Profile.EDGEE].results:
        assert result.check and result.description and result.route and result.scenario
        assert result.profile == "edgee"
        if result.outcome is Outcome.NOT_APPLICABLE:
            assert result.reason


def test_results_round_trip_through_json(stack_runs: dict[Profile, RunResult]) -> None:
    run = stack_runs[Profile.EDGEE]
    again = RunResult.from_dict(run.to_dict())
    assert again.to_dict() == run.to_dict()


def test_results_json_validates_against_its_published_schema(stack_runs: dict[Profile, RunResult]) -> None:
    import json
    from importlib import resources

    import jsonschema

    schema = json.loads(resources.files("gateproof.contract").joinpath("results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(
        json.loads(json.dumps(stack_runs[Profile.EDGEE].to_dict()))
    )
