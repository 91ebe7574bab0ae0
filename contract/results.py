"""The results model: one record per (check, scenario, target) outcome.

A leaf module on purpose: it imports nothing from the rest of gateproof, so the
checks that produce results, the load runner that adds its own, and the reports
that render them can all depend on it without depending on each other.

The JSON form (`RunResult.to_dict`) is versioned by ``RESULTS_SCHEMA_VERSION``
and described by ``results.schema.json`` beside this module; bump the version
when a field changes meaning or disappears (adding an optional field does not).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "SECRET_HEADERS",
    "CheckResult",
    "Exchange",
    "Layer",
    "Outcome",
    "RunResult",
]

RESULTS_SCHEMA_VERSION = "1.0"

#: header names (lower case) whose values are credentials: producers of results mask them, and
#: renderers mask them again as defence in depth
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "x-edgee-api-key",
        "cookie",
        "set-cookie",
    }
)


class Outcome(StrEnum):
    """What happened to one check on one scenario."""

    PASSED = "passed"
    #: the target deviated from the spec: this is what gates a release
    FAILED = "failed"
    #: the harness could not evaluate the check (target unreachable, timeout, ...)
    ERROR = "error"
    #: the check is outside the target's profile or wiring (never counted as a failure)
    NOT_APPLICABLE = "not_applicable"


class Layer(StrEnum):
    """The three layers of the conformance suite, plus load runs."""

    PROPERTY = "property"  # schemathesis, generated from the spec
    SCENARIO = "scenario"  # hand-written scenarios validated with the spec's validators
    STREAM = "stream"  # the stream grammar state machine
    LOAD = "load"


@dataclass(frozen=True)
class Exchange:
    """One HTTP request/response pair as sent and seen; secrets already redacted."""

    method: str
    url: str
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: Any = None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    #: the body (JSON) or an excerpt of it (text, SSE transcript), bounded in size
    response_body: Any = None
    elapsed_ms: float | None = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one scenario against one target."""

    check: str
    description: str
    layer: Layer
    profile: str
    target: str
    route: str
    scenario: str
    outcome: Outcome
    #: a failed required check fails the run; an advisory one is reported only
    required: bool = True
    expected: str = ""
    actual: str = ""
    reason: str = ""
    exchange: Exchange | None = None
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer"] = self.layer.value
        data["outcome"] = self.outcome.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        exchange = data.get("exchange")
        return cls(
            **{
                **data,
                "layer": Layer(data["layer"]),
                "outcome": Outcome(data["outcome"]),
                "exchange": Exchange(**exchange) if exchange else None,
            }
        )


@dataclass
class RunResult:
    """Every result of one run against one target, plus what identifies the run."""

    run_id: str
    target: str
    base_url: str
    profile: str
    started_at: float
    finished_at: float = 0.0
    results: list[CheckResult] = field(default_factory=list)
    #: set when the target could not be reached at all (exit code 3)
    unreachable: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> Counter[str]:
        return Counter(result.outcome.value for result in self.results)

    @property
    def gating_failures(self) -> list[CheckResult]:
        """Required checks that failed or could not be evaluated."""
        return [r for r in self.results if r.required and r.outcome in (Outcome.FAILED, Outcome.ERROR)]

    @property
    def passed(self) -> bool:
        return self.unreachable is None and not self.gating_failures

    def exit_code(self) -> int:
        """0 all applicable required checks passed; 1 some failed; 3 target unreachable."""
        if self.unreachable is not None:
            return 3
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "run_id": self.run_id,
            "target": self.target,
            "base_url": self.base_url,
            "profile": self.profile,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "unreachable": self.unreachable,
            "passed": self.passed,
            "counts": dict(self.counts),
            "metadata": self.metadata,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        version = data.get("schema_version")
        if version != RESULTS_SCHEMA_VERSION:
            raise ValueError(f"results schema version {version!r} is not {RESULTS_SCHEMA_VERSION!r}")
        return cls(
            run_id=data["run_id"],
            target=data["target"],
            base_url=data["base_url"],
            profile=data["profile"],
            started_at=data["started_at"],
            finished_at=data["finished_at"],
            unreachable=data.get("unreachable"),
            metadata=data.get("metadata", {}),
            results=[CheckResult.from_dict(r) for r in data["results"]],
        )

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
