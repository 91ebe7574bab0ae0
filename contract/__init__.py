"""The conformance suite: scenarios, stream grammar and schemathesis, one result model.

Run it with ``gateproof contract`` or :func:`run_contract`. Checks live in
``gateproof.contract.checks`` (one registry), the stream grammar in
``gateproof.contract.stream``, the result model in ``gateproof.contract.results``.

The names below are loaded on first use: the load generator imports
``gateproof.contract.stream`` in its own (gevent) process and must not pay for
jsonschema, schemathesis and the runner it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateproof.contract._bad_days import BAD_DAY_ROWS, BadDay
    from gateproof.contract._config import ConfigError, TargetConfig, is_loopback_url, load_target_config
    from gateproof.contract._runner import Layers, RunOptions, describe_checks, run_contract
    from gateproof.contract._scenarios import SCENARIOS, Scenario
    from gateproof.contract._wire import (
        MAX_HEADER_BYTES,
        MAX_JSON_DEPTH,
        MAX_RESPONSE_BYTES,
        JSONTooDeep,
        TransportFailure,
        json_depth,
        loads_bounded,
    )
    from gateproof.contract.checks import CHECKS, CheckContext, CheckFailed, Profile, check
    from gateproof.contract.results import CheckResult, Exchange, Layer, Outcome, RunResult

_EXPORTS: dict[str, str] = {
    "BAD_DAY_ROWS": "gateproof.contract._bad_days",
    "BadDay": "gateproof.contract._bad_days",
    "ConfigError": "gateproof.contract._config",
    "TargetConfig": "gateproof.contract._config",
    "is_loopback_url": "gateproof.contract._config",
    "load_target_config": "gateproof.contract._config",
    "Layers": "gateproof.contract._runner",
    "RunOptions": "gateproof.contract._runner",
    "describe_checks": "gateproof.contract._runner",
    "run_contract": "gateproof.contract._runner",
    "SCENARIOS": "gateproof.contract._scenarios",
    "Scenario": "gateproof.contract._scenarios",
    "MAX_HEADER_BYTES": "gateproof.contract._wire",
    "MAX_JSON_DEPTH": "gateproof.contract._wire",
    "MAX_RESPONSE_BYTES": "gateproof.contract._wire",
    "JSONTooDeep": "gateproof.contract._wire",
    "TransportFailure": "gateproof.contract._wire",
    "json_depth": "gateproof.contract._wire",
    "loads_bounded": "gateproof.contract._wire",
    "CHECKS": "gateproof.contract.checks",
    "CheckContext": "gateproof.contract.checks",
    "CheckFailed": "gateproof.contract.checks",
    "Profile": "gateproof.contract.checks",
    "check": "gateproof.contract.checks",
    "CheckResult": "gateproof.contract.results",
    "Exchange": "gateproof.contract.results",
    "Layer": "gateproof.contract.results",
    "Outcome": "gateproof.contract.results",
    "RunResult": "gateproof.contract.results",
}

__all__ = [
    "BAD_DAY_ROWS",
    "CHECKS",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_RESPONSE_BYTES",
    "SCENARIOS",
    "BadDay",
    "CheckContext",
    "CheckFailed",
    "CheckResult",
    "ConfigError",
    "Exchange",
    "JSONTooDeep",
    "Layer",
    "Layers",
    "Outcome",
    "Profile",
    "RunOptions",
    "RunResult",
    "Scenario",
    "TargetConfig",
    "TransportFailure",
    "check",
    "describe_checks",
    "is_loopback_url",
    "json_depth",
    "load_target_config",
    "loads_bounded",
    "run_contract",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateproof.contract' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
