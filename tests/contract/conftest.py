"""Fixtures for the conformance suite's own tests: a target config for the embedded stack."""

from __future__ import annotations

import os

import pytest

from gateproof.cli.launch import (
    API_KEY_ENV,
    KEY_ENVS,
    STACK_FALLBACK_MODEL,
    STACK_PROVIDERS,
    STACK_TIMEOUTS,
    LocalStack,
)
from gateproof.contract import TargetConfig
from gateproof.contract.checks import Profile


def reference_input_prices() -> dict[str, float]:
    """The input prices of the reference gateway's shipped models (its default.yaml): a declared fact."""
    from gateproof.reference_gateway import load_config

    return {model.id: model.input_price_per_mtok for model in load_config(env={}).models.values()}


def stack_config(stack: LocalStack, profile: Profile = Profile.EDGEE, **overrides: object) -> TargetConfig:
    """A TargetConfig for a running stack; its keys are exported to this process's environment."""
    for role, env in KEY_ENVS.items():
        os.environ[env] = stack.keys[role]
    settings: dict[str, object] = {
        "base_url": stack.base_url,
        "api_key_env": API_KEY_ENV,
        "profile": profile,
        "name": "reference",
        "inactive_key_env": KEY_ENVS["inactive"],
        "restricted_key_env": KEY_ENVS["restricted"],
        "restricted_model": "openai/gpt-4o",
        "mock_url": stack.mock.url,
        # the stack's gateway writes a request log: the tags checks read each request's line there
        "request_log": str(stack.request_log),
        "input_prices": reference_input_prices(),
        "property_examples": 10,
        # every provider route the stack wires: the per-provider scenarios run on all three
        "providers": dict(STACK_PROVIDERS),
        # what the stack's gateway declares for the failure matrix (D44, D46), as `gateproof run` does
        "timeouts": dict(STACK_TIMEOUTS),
        "fallback_model": STACK_FALLBACK_MODEL,
        **overrides,
    }
    return TargetConfig(**settings).validate()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stack_runs(stack: LocalStack) -> dict[Profile, object]:
    """One full run per profile against the unfaulted stack, shared by the tests that read it."""
    from gateproof.contract import run_contract

    return {profile: run_contract(stack_config(stack, profile)) for profile in Profile}
