"""The suite catches faults: every check fails on at least one deliberately faulty gateway.

The proof table is the fault records of ``gateproof.selftest``: each names, in ``caught_by``,
the (check, scenario) pairs that must fail against a gateway started with ``--fault NAME``;
the scenario ``generated`` stands for the property layer (schemathesis). Two tests keep
the table honest: every record names at least one pair, and every check the suite has,
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
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateproof.cli.launch import (
    HEALTH_PATH,
    KEY_ENVS,
    STACK_FALLBACK_MODEL,
    STACK_LIMITS,
    STACK_PROVIDERS,
    STACK_TIMEOUTS,
    UPSTREAMS,
    LocalServer,
    start_server,
)
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
from gateproof.selftest import CONVERSATIONS, FAULTS, PROPERTY_SCENARIOS, Pair

from .conftest import reference_input_prices

#: the module fixture plays every fault before the first test reports, so that test's setup holds the
#: whole self-test (about 100 gateways, 8 at a time, on 2 shared cores): bounded, but not by 300 s
pytestmark = pytest.mark.timeout(900)

#: examples per operation for property pairs: enough for every property fault below to be found
#: with the suite's fixed seed (unknown_fields_rejected is the rarest: it shows from about 15)
PROPERTY_EXAMPLES = 25

#: fault -> the (check, scenario) pairs that must fail against it (each record's ``caught_by``)
CAUGHT_BY: dict[str, tuple[Pair, ...]] = {name: fault.caught_by for name, fault in FAULTS.items()}

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
    if scenario in PROPERTY_SCENARIOS:
        return Layer.PROPERTY.value
    return CHECKS.get(check).layer.value


def _scenarios(fault: str) -> frozenset[str]:
    return frozenset(scenario for _, scenario in CAUGHT_BY[fault] if scenario not in PROPERTY_SCENARIOS)


def _property_checks(fault: str) -> frozenset[str]:
    return frozenset(check for check, scenario in CAUGHT_BY[fault] if scenario in PROPERTY_SCENARIOS)


def test_every_fault_names_the_checks_that_catch_it() -> None:
    """A record without pairs is a fault nothing is shown to catch: it fails here, by name."""
    unproven = sorted(name for name, pairs in CAUGHT_BY.items() if not pairs)
    assert not unproven, f"faults with no (check, scenario) pair in caught_by: {unproven}"


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
        said = [
            f"{r.check} [{r.scenario}, {r.route}] {r.outcome.value}: {r.reason}"
            for run in self.results
            for r in run.results
            if (r.check, r.scenario) in pairs
        ]
        return said + [f"run ended early: {run.unreachable}" for run in self.results if run.unreachable]


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
        # the failure matrix's cells: the gateways run the stack's timeouts (STACK_LIMITS) and fallbacks
        timeouts=dict(STACK_TIMEOUTS),
        fallback_model=STACK_FALLBACK_MODEL,
    ).validate()


def _request_log(logs: Path, fault: str) -> Path:
    """Where the gateway running ``fault`` writes its structured request log (the tags checks read it)."""
    return logs / f"requests-{fault}.jsonl"


def _start_faulty_gateway(
    fault: str, mock_url: str, logs: Path, owner: list[LocalServer] | None = None
) -> LocalServer:
    """A gateway running ``fault`` (the launcher makes sure the server that answers is this one)."""
    env = {KEY_ENVS[role]: key for role, key in KEYS.items()}
    # every provider of the gateway's config reaches its dialect of the one (lenient) mock
    env.update({upstream.key_env: f"gp-selftest-{upstream.role}-key" for upstream in UPSTREAMS})
    routes = [arg for up in UPSTREAMS for arg in ("--upstream", f"{up.provider}={mock_url}{up.prefix}")]
    command = ["gateway", *routes, *STACK_LIMITS, "--fault", fault, "--log-level", "warning"]
    command += ["--request-log", str(_request_log(logs, fault))]
    server = start_server(f"gateway-{fault}", command, env=env, log_dir=logs, owner=owner)
    health = httpx.get(server.url + HEALTH_PATH, timeout=5.0, trust_env=False).json()
    assert health.get("fault") == fault, f"{server.url} runs {health.get('fault')!r}, not {fault!r}"
    return server


def _run_reachable(config: TargetConfig, options: RunOptions) -> RunResult:
    """``run_contract``, once more if its first probe found the gateway or the mock unreachable.

    About a hundred gateways share two cores with the rest of the suite here, and a probe that
    waits past its deadline ends a run before any scenario (a live gateway, its request log
    empty): the second try tells load from a gateway that really does not answer.
    """
    result = run_contract(config, options)
    if result.unreachable is None:
        return result
    time.sleep(1.0)
    return run_contract(config, options)


def _start_and_run(
    fault: str, mock_url: str, logs: Path, property_turn: threading.Lock, started: list[LocalServer]
) -> FaultRun:
    server = _start_faulty_gateway(fault, mock_url, logs, owner=started)
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
            run.results.append(_run_reachable(config, options))
        property_checks = _property_checks(fault)
        if property_checks:
            options = RunOptions(
                layers=frozenset({Layers.PROPERTY}),
                checks=property_checks,
                run_id=run_id + "-property",
                strict=True,
            )
            with property_turn:
                run.results.append(_run_reachable(config, options))
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
    #: each gateway the moment its process exists (start_server appends it), so all are stopped
    started: list[LocalServer] = []
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {
                fault: pool.submit(_start_and_run, fault, mock_server.url, logs, property_turn, started)
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
            # every gateway that was started, also those of runs that never reported (a timeout)
            list(pool.map(LocalServer.stop, started))


def _selected_faults(items: list[pytest.Item]) -> list[str]:
    """The faults the selected tests judge (``-k`` picks some): starting the other gateways is wasted work."""
    wanted: set[str] = set()
    for item in items:
        params = getattr(item, "callspec", None)
        if params is not None and "fault" in params.params:
            wanted.add(params.params["fault"])
        elif item.name == "test_cli_exits_non_zero_and_names_the_check":
            wanted.add("no_done")
    # a fault with no pairs has nothing to run: its test fails on that alone
    return [fault for fault, pairs in CAUGHT_BY.items() if fault in wanted and pairs]


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_fault_is_caught_by_its_checks(fault: str, fault_runs: dict[str, FaultRun]) -> None:
    assert CAUGHT_BY[fault], (
        f"--fault {fault} names no check that catches it (its record's caught_by is empty)"
    )
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
