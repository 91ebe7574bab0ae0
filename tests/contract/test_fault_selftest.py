"""The suite catches faults: every check fails on at least one deliberately faulty gateway.

``CAUGHT_BY`` is the proof table. Each fault of the reference gateway's registry names the
(check, scenario) pairs that must fail against a gateway started with ``--fault NAME``;
the scenario ``generated`` stands for the property layer (schemathesis). Two tests keep
the table honest: its faults are exactly the registry's, and every check the suite has,
in all three layers, is named by at least one fault. The unfaulted gateway passes the
same checks in test_reference_passes.py, so a failure here is the fault's doing.

For speed, one mock provider serves every faulty gateway, the gateways start in
parallel, and each one is run only through the scenarios its pairs name (and, when it
has property pairs, through a small property run with a fixed seed). Scenario runs go
in parallel threads; property runs take turns, because schemathesis and Hypothesis are
not meant to run two engines in one process at once.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateproof.cli.launch import HEALTH_PATH, KEY_ENVS, STACK_PROVIDERS, UPSTREAMS, LocalServer, start_server
from gateproof.contract import (
    CHECKS,
    Layer,
    Layers,
    Outcome,
    Profile,
    RunOptions,
    RunResult,
    TargetConfig,
    describe_checks,
    run_contract,
)
from gateproof.contract.checks import load_all_checks
from gateproof.reference_gateway import FAULTS

from .conftest import reference_input_prices

#: the scenario name of a property-layer pair (what the property layer reports as its scenario)
GENERATED = "generated"
#: the scenario name of a conversation-layer pair (generated multi-turn conversations, every route)
CONVERSATIONS = "conversations"
#: both run in the property layer (``Layers.PROPERTY``)
_PROPERTY_LAYER = frozenset({GENERATED, CONVERSATIONS})
#: examples per operation for property pairs: enough for every property fault below to be found
#: with the suite's fixed seed (unknown_fields_rejected is the rarest: it shows from about 15)
PROPERTY_EXAMPLES = 25

#: fault -> the (check, scenario) pairs that must fail against it
CAUGHT_BY: dict[str, tuple[tuple[str, str], ...]] = {
    "no_done": (("done_terminates_stream", "stream_basic"),),
    "usage_chunk_missing": (("usage_chunk_present", "stream_include_usage"),),
    "usage_chunk_with_choices": (("usage_chunk_empty_choices", "stream_include_usage"),),
    "usage_total_wrong": (
        ("response_usage_totals_add_up", "chat_basic"),
        ("usage_totals_add_up", "stream_include_usage"),
    ),
    # the chunks' schema issue is chunk_object_type's failure: chunk_schema_conformance skips it
    "object_wrong": (("response_schema_conformance", "chat_basic"), ("chunk_object_type", "stream_basic")),
    "role_missing": (("first_chunk_has_role", "stream_basic"),),
    "double_finish": (("single_finish_reason", "stream_basic"),),
    "invalid_json_500": (("not_a_server_error", "invalid_json"), ("not_a_server_error", GENERATED)),
    "accept_max_tokens_zero": (
        ("status_code_expected", "max_tokens_zero"),
        ("negative_data_rejection", GENERATED),
    ),
    "no_auth": (("status_code_expected", "auth_missing"), ("ignored_auth", GENERATED)),
    "error_not_enveloped": (
        ("error_body_conforms", "unknown_model"),
        ("response_schema_conformance", GENERATED),
    ),
    "tool_args_object": (("tool_call_arguments_json_string", "tools_auto"),),
    "sse_wrong_content_type": (("content_type_matches_mode", "stream_basic"),),
    "buffered_stream": (("stream_not_buffered", "stream_paced"),),
    "model_prefix_forwarded": (("upstream_model_unprefixed", "chat_basic"),),
    "edgee_fields_forwarded": (("edgee_fields_not_forwarded", "chat_basic"),),
    "compression_fields_forwarded": (("edgee_fields_not_forwarded", "chat_basic"),),
    "chunk_id_changes": (("constant_id", "stream_basic"),),
    "tools_dropped": (("upstream_params_intact", "tools_auto"),),
    "stream_error_as_done": (("stream_error_propagated", "upstream_mid_stream_error"),),
    "provider_header_missing": (
        ("provider_header_present", "chat_basic"),
        ("response_headers_conformance", GENERATED),
    ),
    "unknown_model_404": (("status_code_expected", "unknown_model"),),
    "models_list_malformed": (("models_schema_conformance", "models_list"),),
    "error_code_is_status": (("error_code_expected", "unknown_model"),),
    "finish_reason_rewritten": (("finish_reason_expected", "max_tokens_length"),),
    "upstream_model_echoed": (("response_model_echoes_request", "chat_basic"),),
    "max_tokens_dropped": (
        ("completion_within_max_tokens", "max_tokens_length"),
        ("upstream_params_intact", "chat_basic"),
    ),
    "refusal_dropped": (("refusal_carried", "refusal"),),
    "usage_undercounted": (
        ("usage_matches_provider", "chat_basic"),
        ("usage_matches_provider", "stream_include_usage"),
    ),
    "retry_after_dropped": (("retry_after_passed_on", "upstream_rate_limited"),),
    "tool_call_id_dropped": (("upstream_tool_results_matched", "multi_turn_tool_result"),),
    "history_dropped": (
        ("upstream_messages_intact", "multi_turn_tool_result"),
        ("upstream_messages_intact", "multi_turn_parallel_tools[anthropic]"),
        ("upstream_messages_intact", "multi_turn_parallel_tools[gemini]"),
    ),
    # translation faults of the Anthropic and Gemini adapters, each caught on its own route
    "anthropic_max_tokens_as_stop": (("finish_reason_expected", "max_tokens_length[anthropic]"),),
    "anthropic_refusal_as_stop": (("refusal_carried", "refusal[anthropic]"),),
    "anthropic_usage_from_message_start": (("usage_matches_provider", "stream_include_usage[anthropic]"),),
    "anthropic_stream_tool_args_dropped": (("tool_call_arguments_json", "tools_named_stream[anthropic]"),),
    "anthropic_tool_result_wrong_id": (
        ("upstream_tool_results_matched", "multi_turn_tool_result[anthropic]"),
        ("conversation_response_valid", CONVERSATIONS),
    ),
    "anthropic_cache_tokens_dropped": (
        ("usage_matches_provider", "cached_prompt[anthropic]"),
        ("usage_matches_provider", "stream_cached_prompt[anthropic]"),
        ("conversation_usage_matches_provider", CONVERSATIONS),
    ),
    "anthropic_overloaded_as_400": (("status_code_expected", "upstream_overloaded[anthropic]"),),
    "system_prompt_dropped": (
        ("upstream_system_intact", "chat_basic[anthropic]"),
        ("upstream_system_intact", "chat_basic[gemini]"),
        ("conversation_translated_faithfully", CONVERSATIONS),
    ),
    "gemini_args_not_stringified": (
        ("tool_call_arguments_json_string", "tools_auto[gemini]"),
        ("conversation_response_valid", CONVERSATIONS),
    ),
    "gemini_tool_choice_dropped": (("upstream_params_intact", "tools_named_stream[gemini]"),),
    "provider_ignored_in_routing": (
        ("routed_to_declared_provider", "chat_basic[anthropic]"),
        ("routed_to_declared_provider", "chat_basic[gemini]"),
    ),
    "client_key_forwarded": (("client_key_not_forwarded", "chat_basic"),),
    "first_delta_dropped": (("stream_matches_non_stream", "stream_basic"),),
    "sse_single_newline": (("sse_framing", "stream_basic"),),
    "sse_named_events": (("event_type_is_message", "stream_basic"),),
    "chunk_not_json": (("chunk_is_json", "stream_basic"),),
    "duplicate_model_key": (("no_duplicate_json_keys", "stream_basic"),),
    "chunk_model_changes": (("constant_model", "stream_basic"),),
    "chunk_created_changes": (("constant_created", "stream_include_usage"),),
    "usage_chunk_unrequested": (("usage_only_when_requested", "stream_basic"),),
    "usage_chunk_early": (("usage_chunk_last", "stream_include_usage"),),
    "tool_call_index_missing": (("tool_call_deltas_indexed", "tools_named_stream"),),
    "tool_call_fragment_lost": (("tool_call_arguments_json", "tools_named_stream"),),
    "tool_finish_reason_stop": (("finish_reason_matches_content", "tools_named_stream"),),
    "tool_calls_dropped_in_stream": (("tool_call_matches_request", "tools_named_stream"),),
    "error_event_in_stream": (("no_error_event", "stream_basic"),),
    "validation_422": (
        ("status_code_expected", "max_tokens_zero"),
        ("status_code_conformance", GENERATED),
    ),
    "error_text_plain": (
        ("content_type_matches_mode", "unknown_model"),
        ("content_type_conformance", GENERATED),
    ),
    "wrong_method_404": (("unsupported_method", GENERATED),),
    "unknown_fields_rejected": (("positive_data_acceptance", GENERATED),),
    "content_parts_rejected": (("positive_data_acceptance", GENERATED),),
    # compression (D1-D3): the provider's counts are the oracle, the uncompressed baseline step its origin
    "compression_reduction_inconsistent": (
        ("compression_reduction_consistent", "chat_compressed"),
        ("compression_reduction_consistent", "stream_compressed"),
    ),
    "compression_reduction_unrounded": (("compression_fields_in_range", "chat_compressed"),),
    # the saving and the reduction derived from it are that failure again (defers_to)
    "compression_prompt_tokens_uncompressed": (
        ("usage_matches_provider", "chat_compressed"),
        ("usage_matches_provider", "stream_compressed"),
    ),
    "compression_saved_in_characters": (
        ("compression_saved_tokens_match_baseline", "chat_compressed"),
        ("compression_saved_tokens_match_baseline", "stream_compressed"),
    ),
    "compression_cost_savings_zero": (("compression_cost_savings_consistent", "chat_compressed"),),
    "compression_cost_at_output_price": (("compression_cost_savings_consistent", "chat_compressed"),),
    "compression_time_in_microseconds": (
        ("compression_time_within_latency", "chat_compressed"),
        ("compression_time_within_latency", "stream_compressed"),
    ),
    "compression_unasked": (
        ("compression_absent_unless_asked", "chat_basic"),
        ("compression_absent_unless_asked", "stream_debug"),
    ),
    "compression_missing": (
        ("compression_present_when_asked", "chat_compressed"),
        ("compression_present_when_asked", "stream_compressed"),
        ("compression_present_when_asked", "chat_compressed_nothing_saved"),
    ),
    # compression on a content chunk breaks the chunk schema (D27), which reports it
    "compression_on_first_chunk": (("chunk_schema_conformance", "stream_compressed"),),
    "compression_before_usage_chunk": (("compression_on_final_chunk_only", "stream_compressed"),),
    "compression_drops_error_lines": (
        ("compression_keeps_needles", "chat_compressed"),
        ("compression_keeps_needles", "chat_compressed_32k"),
    ),
    "compression_lengthens_prompt": (
        ("compression_never_lengthens_prompt", "chat_compressed"),
        ("compression_never_lengthens_prompt", "chat_compressed_32k"),
    ),
    "compress_endpoint_disagrees": (("compress_endpoint_matches_chat", "chat_compressed"),),
    # tags (D7, D11): never at the provider, always in the request log
    "tags_forwarded": (
        ("edgee_fields_not_forwarded", "chat_basic"),
        ("edgee_fields_not_forwarded", "chat_tags_logged"),
    ),
    "tags_not_logged": (("tags_recorded_in_request_log", "chat_tags_logged"),),
    # debug (D7, D8)
    "debug_unasked": (
        ("debug_absent_unless_asked", "chat_basic"),
        ("debug_absent_unless_asked", "chat_compressed"),
        ("debug_absent_unless_asked", "stream_compressed"),
    ),
    "debug_missing": (
        ("debug_present_when_asked", "chat_debug"),
        ("debug_present_when_asked", "stream_debug"),
    ),
    "debug_public_model": (
        ("debug_matches_upstream", "chat_debug"),
        ("debug_matches_upstream", "stream_debug"),
    ),
    # Edge Tools (D4, D5, D35-D39): the mock's script is the model, the journal shows each round
    "edge_tool_ids_unchecked": (
        ("status_code_expected", "edgee_tool_ids_not_activated"),
        ("edge_tool_ids_error_message", "edgee_tool_ids_listed"),
    ),
    "edge_tools_not_injected": (
        ("edge_tools_injected", "edge_tools_loop"),
        ("edge_tools_injected", "edge_tools_loop_stream"),
    ),
    "edge_uuid_not_v4": (
        ("edge_tool_results_well_formed", "edge_tools_loop"),
        ("edge_tool_results_well_formed", "edge_tools_loop_stream"),
    ),
    "edge_tools_executed_missing": (("edge_tools_executed_reported", "edge_tools_loop"),),
    "edge_tool_call_leaked": (
        ("edge_tool_calls_hidden", "edge_tools_pending"),
        ("edge_tool_calls_hidden", "edge_tools_pending_stream"),
    ),
    "pending_id_ignored": (
        ("edge_pending_continued", "edge_tools_pending"),
        ("edge_pending_continued", "edge_tools_pending_stream"),
        ("status_code_expected", "edgee_pending_id_unknown"),
    ),
    "pending_id_reusable": (
        ("edge_pending_single_use", "edge_tools_pending"),
        ("edge_pending_single_use", "edge_tools_pending_stream"),
    ),
    "edge_usage_last_round_only": (
        ("edge_usage_summed", "edge_tools_loop"),
        ("edge_usage_summed", "edge_tools_loop_stream"),
    ),
}

KEYS = {role: f"gp-selftest-{role}-key" for role in KEY_ENVS}

#: a variable holding a key the gateways do not know (the configured key a target refuses)
UNKNOWN_KEY_ENV = "GATEPROOF_SELFTEST_UNKNOWN_KEY"

#: checks every fault of the reference gateway shares with a more specific check (which then reports
#: it alone), proven instead against a small loopback target: check -> the test that proves it
CAUGHT_ON_LOOPBACK: dict[str, str] = {
    "chunk_schema_conformance": "test_root_causes.py::test_chunk_schema_reports_what_no_stream_rule_owns",
}

#: checks only a target's declared facts bring into play: check -> (fault, facts, scenario that must fail)
CAUGHT_WITH_FACTS: dict[str, tuple[str, dict[str, object], str]] = {
    # a gateway with auth off, declared so: one security failure, not a schema failure per scenario
    "auth_enforced": ("no_auth", {"auth_required": False}, "auth_missing"),
    # a correct gateway declared a pass-through proxy: it does not forward the key, so that fails
    "client_key_forwarded_unchanged": ("none", {"key_passthrough": True}, "chat_basic"),
    # the configured key is one the gateway does not know
    "configured_key_accepted": ("none", {"api_key_env": UNKNOWN_KEY_ENV}, "chat_basic"),
}


def _layer(check: str, scenario: str) -> str:
    """The layer a pair belongs to: some names exist in the scenario and the property layer alike."""
    if scenario in _PROPERTY_LAYER:
        return Layer.PROPERTY.value
    return CHECKS.get(check).layer.value


def _scenarios(fault: str) -> frozenset[str]:
    return frozenset(scenario for _, scenario in CAUGHT_BY[fault] if scenario not in _PROPERTY_LAYER)


def _property_checks(fault: str) -> frozenset[str]:
    return frozenset(check for check, scenario in CAUGHT_BY[fault] if scenario in _PROPERTY_LAYER)


def test_the_catalogue_names_exactly_the_registered_faults() -> None:
    assert set(CAUGHT_BY) == set(FAULTS), "a fault without a check that catches it (or the reverse)"
    assert all(CAUGHT_BY.values()), "a fault with no pair"


def test_every_check_of_every_layer_is_proven_by_a_fault() -> None:
    load_all_checks()
    every_check = {(layer, name) for layer, name, _ in describe_checks()}
    named = {(_layer(check, scenario), check) for pairs in CAUGHT_BY.values() for check, scenario in pairs}
    named |= {(CHECKS.get(check).layer.value, check) for check in CAUGHT_WITH_FACTS}
    named |= {(CHECKS.get(check).layer.value, check) for check in CAUGHT_ON_LOOPBACK}
    assert named <= every_check, f"the catalogue names checks the suite lacks: {sorted(named - every_check)}"
    unproven = sorted(every_check - named)
    assert not unproven, f"checks no faulty gateway fails: {unproven}"
    assert {layer for layer, _ in every_check} == {"scenario", "stream", "property"}


@dataclass
class FaultRun:
    """One faulty gateway and what the suite reported on it (or why the run itself broke)."""

    server: LocalServer
    results: list[RunResult]
    error: BaseException | None = None

    def failed(self) -> set[tuple[str, str]]:
        return {
            (r.check, r.scenario) for run in self.results for r in run.results if r.outcome is Outcome.FAILED
        }

    def outcomes(self, pairs: list[tuple[str, str]]) -> list[str]:
        """What the suite said on the given pairs, for the message of a fault that went uncaught."""
        return [
            f"{r.check} [{r.scenario}, {r.route}] {r.outcome.value}: {r.reason}"
            for run in self.results
            for r in run.results
            if (r.check, r.scenario) in pairs
        ]


def _config(server: LocalServer, mock_url: str) -> TargetConfig:
    return TargetConfig(
        base_url=server.url + "/v1",
        api_key_env=KEY_ENVS["default"],
        profile=Profile.EDGEE,
        name=server.name,
        inactive_key_env=KEY_ENVS["inactive"],
        restricted_key_env=KEY_ENVS["restricted"],
        restricted_model="openai/gpt-4o",
        mock_url=mock_url,
        property_examples=PROPERTY_EXAMPLES,
        input_prices=reference_input_prices(),
        providers=dict(STACK_PROVIDERS),
    ).validate()


def _request_log(logs: Path, fault: str) -> Path:
    """Where the gateway running ``fault`` writes its structured request log (the tags checks read it)."""
    return logs / f"requests-{fault}.jsonl"


def _start_faulty_gateway(fault: str, mock_url: str, logs: Path) -> LocalServer:
    """A gateway running ``fault`` (the launcher makes sure the server that answers is this one)."""
    env = {KEY_ENVS[role]: key for role, key in KEYS.items()}
    # every provider of the gateway's config reaches its dialect of the one (lenient) mock
    env.update({upstream.key_env: f"gp-selftest-{upstream.role}-key" for upstream in UPSTREAMS})
    routes = [arg for up in UPSTREAMS for arg in ("--upstream", f"{up.provider}={mock_url}{up.prefix}")]
    command = ["gateway", *routes, "--fault", fault, "--log-level", "warning"]
    command += ["--request-log", str(_request_log(logs, fault))]
    server = start_server(f"gateway-{fault}", command, env=env, log_dir=logs)
    health = httpx.get(server.url + HEALTH_PATH, timeout=5.0, trust_env=False).json()
    assert health.get("fault") == fault, f"{server.url} runs {health.get('fault')!r}, not {fault!r}"
    return server


def _start_and_run(fault: str, mock_url: str, logs: Path, property_turn: threading.Lock) -> FaultRun:
    server = _start_faulty_gateway(fault, mock_url, logs)
    run = FaultRun(server, [])
    try:
        # the provider routes only for a fault whose pairs name one (or the conversations, which run on
        # every route): the others are caught on the primary route, as their plain names say
        routed = any("[" in scenario or scenario == CONVERSATIONS for _, scenario in CAUGHT_BY[fault])
        config = dataclasses.replace(
            _config(server, mock_url),
            request_log=str(_request_log(logs, fault)),
            providers=dict(STACK_PROVIDERS) if routed else {},
        )
        run_id = f"selftest-{fault}-{secrets.token_hex(3)}"
        scenarios = _scenarios(fault)
        if scenarios:
            # strict: a fault the official clients tolerate (a warning) is still a deviation to catch
            options = RunOptions(
                layers=frozenset({Layers.SCENARIO}), scenarios=scenarios, run_id=run_id, strict=True
            )
            run.results.append(run_contract(config, options))
        property_checks = _property_checks(fault)
        if property_checks:
            options = RunOptions(
                layers=frozenset({Layers.PROPERTY}),
                checks=property_checks,
                run_id=run_id + "-property",
                strict=True,
            )
            with property_turn:
                run.results.append(run_contract(config, options))
    except Exception as exc:  # reported by the fault's own test, not by every test of the module
        run.error = exc
    return run


@pytest.fixture(scope="module")
def fault_runs(
    mock_server: LocalServer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, FaultRun]]:
    """Every faulty gateway the selected tests need, started and run through its pairs' scenarios, in parallel."""
    for role, env in KEY_ENVS.items():
        os.environ[env] = KEYS[role]
    load_all_checks()
    logs = tmp_path_factory.mktemp("faulty")
    property_turn = threading.Lock()
    runs: dict[str, FaultRun] = {}
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {
                fault: pool.submit(_start_and_run, fault, mock_server.url, logs, property_turn)
                for fault in _selected_faults(request.session.items)
            }
            unstarted: list[BaseException] = []
            for fault, future in futures.items():
                try:
                    runs[fault] = future.result(timeout=300)
                except Exception as exc:  # keep collecting, so every started gateway is stopped
                    unstarted.append(exc)
        if unstarted:
            raise unstarted[0]
        yield runs
    finally:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda run: run.server.stop(), runs.values()))


def _selected_faults(items: list[pytest.Item]) -> list[str]:
    """The faults the selected tests judge (``-k`` picks some): starting the other gateways is wasted work."""
    wanted: set[str] = set()
    for item in items:
        params = getattr(item, "callspec", None)
        if params is not None and "fault" in params.params:
            wanted.add(params.params["fault"])
        elif item.name == "test_cli_exits_non_zero_and_names_the_check":
            wanted.add("no_done")
    return [fault for fault in CAUGHT_BY if fault in wanted]


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_fault_is_caught_by_its_checks(fault: str, fault_runs: dict[str, FaultRun]) -> None:
    run = fault_runs[fault]
    if run.error is not None:
        raise run.error
    failed = run.failed()
    missed = [pair for pair in CAUGHT_BY[fault] if pair not in failed]
    assert not missed, f"--fault {fault} was not caught by {missed}: {run.outcomes(missed)}"
    assert all(result.exit_code() == 1 for result in run.results)


def test_cli_exits_non_zero_and_names_the_check(
    fault_runs: dict[str, FaultRun], mock_server: LocalServer, tmp_path: Path
) -> None:
    server = fault_runs["no_done"].server
    env = {**os.environ, **{KEY_ENVS[role]: key for role, key in KEYS.items()}}
    completed = subprocess.run(
        [
            sys.executable, "-m", "gateproof.cli", "contract",
            "--base-url", server.url + "/v1",
            "--api-key-env", KEY_ENVS["default"],
            "--mock-url", mock_server.url,
            "--layers", "scenario",
            "--scenarios", "stream_basic",
            "--strict",  # no [DONE] is a warning (the openai client tolerates it): only --strict fails it
            "--junit", str(tmp_path / "junit.xml"),
            "--json", str(tmp_path / "results.json"),
        ],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "done_terminates_stream" in completed.stdout
    assert "done_terminates_stream" in (tmp_path / "junit.xml").read_text()
    assert KEYS["default"] not in (tmp_path / "results.json").read_text()


@pytest.fixture(scope="module")
def fact_runs(
    mock_server: LocalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunResult]]:
    """Each CAUGHT_WITH_FACTS entry: its gateway, run through its scenario with the declared facts."""
    for role, env in KEY_ENVS.items():
        os.environ[env] = KEYS[role]
    os.environ[UNKNOWN_KEY_ENV] = "gp-selftest-key-nobody-issued"
    load_all_checks()
    logs = tmp_path_factory.mktemp("facts")
    servers: dict[str, LocalServer] = {}
    try:
        for fault in sorted({fault for fault, _, _ in CAUGHT_WITH_FACTS.values()}):
            servers[fault] = _start_faulty_gateway(fault, mock_server.url, logs)
        runs = {}
        for check, (fault, facts, scenario) in CAUGHT_WITH_FACTS.items():
            config = dataclasses.replace(_config(servers[fault], mock_server.url), **facts).validate()  # type: ignore[arg-type]
            options = RunOptions(layers=frozenset({Layers.SCENARIO}), scenarios=frozenset({scenario}))
            runs[check] = run_contract(config, options)
        yield runs
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("check", sorted(CAUGHT_WITH_FACTS))
def test_a_declared_fact_brings_its_check_into_play(check: str, fact_runs: dict[str, RunResult]) -> None:
    run = fact_runs[check]
    _, _, scenario = CAUGHT_WITH_FACTS[check]
    failed = [r for r in run.results if r.outcome is Outcome.FAILED]
    # the same fact fails the scenario on every provider route it runs on (chat_basic, chat_basic[anthropic], ...)
    assert {(r.check, r.scenario.split("[")[0]) for r in failed} == {(check, scenario)}, [
        f"{r.check} [{r.scenario}] {r.outcome.value}: {r.reason}" for r in run.results
    ]
    assert run.exit_code() == 1
