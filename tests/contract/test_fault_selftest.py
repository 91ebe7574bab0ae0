"""The suite catches faults: each deliberately faulty gateway fails under the check that names its fault.

One mock provider serves every faulty gateway; each gateway runs one named fault
from the reference gateway's registry. Only the scenario that exposes a fault is
run against it, which keeps this test fast; the unfaulted gateway passes the same
scenarios in test_reference_passes.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateproof.cli.launch import KEY_ENVS, LocalServer, free_port, start_server
from gateproof.contract import Outcome, RunOptions, TargetConfig, run_contract
from gateproof.contract._runner import Layers
from gateproof.contract.checks import Profile
from gateproof.reference_gateway import FAULTS

#: fault -> (the check that must fail, the scenario that exposes it)
CAUGHT_BY: dict[str, tuple[str, str]] = {
    "no_done": ("done_terminates_stream", "stream_basic"),
    "usage_chunk_missing": ("usage_chunk_present", "stream_include_usage"),
    "usage_chunk_with_choices": ("usage_chunk_empty_choices", "stream_include_usage"),
    "usage_total_wrong": ("response_usage_totals_add_up", "chat_basic"),
    "object_wrong": ("response_schema_conformance", "chat_basic"),
    "role_missing": ("first_chunk_has_role", "stream_basic"),
    "double_finish": ("single_finish_reason", "stream_basic"),
    "invalid_json_500": ("not_a_server_error", "invalid_json"),
    "accept_max_tokens_zero": ("status_code_expected", "max_tokens_zero"),
    "no_auth": ("status_code_expected", "auth_missing"),
    "error_not_enveloped": ("error_body_conforms", "unknown_model"),
    "tool_args_object": ("tool_call_arguments_json_string", "tools_auto"),
    "sse_wrong_content_type": ("content_type_matches_mode", "stream_basic"),
    "buffered_stream": ("stream_not_buffered", "stream_paced"),
    "model_prefix_forwarded": ("upstream_model_unprefixed", "chat_basic"),
    "edgee_fields_forwarded": ("edgee_fields_not_forwarded", "chat_basic"),
    "chunk_id_changes": ("constant_id", "stream_basic"),
    "tools_dropped": ("upstream_params_intact", "tools_auto"),
    "stream_error_as_done": ("stream_error_propagated", "upstream_mid_stream_error"),
    "provider_header_missing": ("provider_header_present", "chat_basic"),
    "unknown_model_404": ("status_code_expected", "unknown_model"),
}

KEYS = {role: f"gp-selftest-{role}-key" for role in KEY_ENVS}


def test_every_registered_fault_has_a_catching_check() -> None:
    assert set(CAUGHT_BY) == set(FAULTS), "a fault without a check that catches it (or the reverse)"


@pytest.fixture(scope="module")
def faulty_gateways(
    mock_server: LocalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LocalServer]]:
    env = {KEY_ENVS[role]: key for role, key in KEYS.items()}
    logs = tmp_path_factory.mktemp("faulty")
    started: dict[str, LocalServer] = {}
    try:
        for fault in CAUGHT_BY:
            started[fault] = start_server(
                f"gateway-{fault}",
                ["gateway", "--upstream", f"openai={mock_server.url}/v1", "--fault", fault],
                port=free_port(),
                env=env,
                log_dir=logs,
            )
        yield started
    finally:
        for server in started.values():
            server.stop()


def _config(server: LocalServer, mock_url: str) -> TargetConfig:
    for role, env in KEY_ENVS.items():
        os.environ[env] = KEYS[role]
    return TargetConfig(
        base_url=server.url + "/v1",
        api_key_env=KEY_ENVS["default"],
        profile=Profile.EDGEE,
        name=server.name,
        inactive_key_env=KEY_ENVS["inactive"],
        restricted_key_env=KEY_ENVS["restricted"],
        restricted_model="openai/gpt-4o",
        mock_url=mock_url,
    ).validate()


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_fault_is_caught_by_its_check(
    fault: str, faulty_gateways: dict[str, LocalServer], mock_server: LocalServer
) -> None:
    check, scenario = CAUGHT_BY[fault]
    config = _config(faulty_gateways[fault], mock_server.url)
    run = run_contract(
        config, RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=frozenset({scenario}))
    )
    failed = {(r.check, r.scenario) for r in run.results if r.outcome is Outcome.FAILED}
    assert (check, scenario) in failed, f"{fault} was not caught by {check}; failures: {sorted(failed)}"
    assert run.exit_code() == 1


def test_cli_exits_non_zero_and_names_the_check(
    faulty_gateways: dict[str, LocalServer], mock_server: LocalServer, tmp_path: Path
) -> None:
    server = faulty_gateways["no_done"]
    env = {**os.environ, **{KEY_ENVS[role]: key for role, key in KEYS.items()}}
    completed = subprocess.run(
        [
            sys.executable, "-m", "gateproof.cli", "contract",
            "--base-url", server.url + "/v1",
            "--api-key-env", KEY_ENVS["default"],
            "--mock-url", mock_server.url,
            "--layers", "scenario",
            "--scenarios", "stream_basic",
            "--junit", str(tmp_path / "junit.xml"),
            "--json", str(tmp_path / "results.json"),
        ],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "done_terminates_stream" in completed.stdout
    assert "done_terminates_stream" in (tmp_path / "junit.xml").read_text()
    assert KEYS["default"] not in (tmp_path / "results.json").read_text()
