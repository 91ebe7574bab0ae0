"""The conformance suite: scenarios, stream grammar and schemathesis, one result model.

Run it with ``gateproof contract`` or :func:`run_contract`. Checks live in
``gateproof.contract.checks`` (one registry), the stream grammar in
``gateproof.contract.stream``, the result model in ``gateproof.contract.results``.
"""

from gateproof.contract._config import ConfigError, TargetConfig, is_loopback_url, load_target_config
from gateproof.contract._runner import Layers, RunOptions, describe_checks, run_contract
from gateproof.contract._scenarios import SCENARIOS, Scenario
from gateproof.contract.checks import CHECKS, CheckContext, CheckFailed, Profile, check
from gateproof.contract.results import CheckResult, Exchange, Layer, Outcome, RunResult

__all__ = [
    "CHECKS",
    "SCENARIOS",
    "CheckContext",
    "CheckFailed",
    "CheckResult",
    "ConfigError",
    "Exchange",
    "Layer",
    "Layers",
    "Outcome",
    "Profile",
    "RunOptions",
    "RunResult",
    "Scenario",
    "TargetConfig",
    "check",
    "describe_checks",
    "is_loopback_url",
    "load_target_config",
    "run_contract",
]
