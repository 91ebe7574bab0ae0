"""The results model: one record per (check, scenario, target) outcome.

A leaf module on purpose: it imports nothing from the rest of gateproof but the
redaction engine (``_secrets``, itself a leaf), so the checks that produce results,
the load runner that adds its own, and the reports that render them can all depend
on it without depending on each other. ``redact_run`` lives here, next to the
shapes it walks, so the runner (which knows the keys when it records) and the
reports (which scrub again before rendering) share one implementation.

The JSON form (`RunResult.to_dict`) is versioned by ``RESULTS_SCHEMA_VERSION``
and described by ``results.schema.json`` beside this module; bump the version
when a field changes meaning or disappears (adding an optional field does not).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateproof.contract._secrets import REDACTED, SECRET_HEADERS, Scrubber, secret_forms

__all__ = [
    "INTERRUPTED_EXIT_CODE",
    "REDACTED",
    "RESULTS_SCHEMA_VERSION",
    "SECRET_HEADERS",
    "CheckResult",
    "Exchange",
    "Layer",
    "Outcome",
    "RunResult",
    "Scrubber",
    "redact_run",
    "secret_forms",
]

RESULTS_SCHEMA_VERSION = "1.0"

#: the exit code of a run stopped by Ctrl-C (128 + SIGINT), whatever its results so far say
INTERRUPTED_EXIT_CODE = 130


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
    #: the run was stopped (Ctrl-C, SIGTERM) before it finished: never a pass, whatever ran
    interrupted: bool = False

    @property
    def counts(self) -> Counter[str]:
        return Counter(result.outcome.value for result in self.results)

    @property
    def gating_failures(self) -> list[CheckResult]:
        """Required checks that failed or could not be evaluated."""
        return [r for r in self.results if r.required and r.outcome in (Outcome.FAILED, Outcome.ERROR)]

    @property
    def passed(self) -> bool:
        return not self.interrupted and self.unreachable is None and not self.gating_failures

    def exit_code(self) -> int:
        """0 all applicable required checks passed; 1 some failed; 3 target unreachable; 130 interrupted."""
        if self.interrupted:
            return INTERRUPTED_EXIT_CODE
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
            "interrupted": self.interrupted,
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
            interrupted=bool(data.get("interrupted", False)),
            metadata=data.get("metadata", {}),
            results=[CheckResult.from_dict(r) for r in data["results"]],
        )

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")


def _redact_exchange(scrubber: Scrubber, exchange: Exchange) -> Exchange:
    return dataclasses.replace(
        exchange,
        method=scrubber.text(exchange.method),
        url=scrubber.url(exchange.url),
        request_headers=scrubber.headers(exchange.request_headers),
        request_body=scrubber.value(exchange.request_body),
        response_headers=scrubber.headers(exchange.response_headers),
        response_body=scrubber.value(exchange.response_body),
    )


def _redact_result(scrubber: Scrubber, result: CheckResult) -> CheckResult:
    return dataclasses.replace(
        result,
        target=scrubber.text(result.target),
        route=scrubber.text(result.route),
        scenario=scrubber.text(result.scenario),
        description=scrubber.text(result.description),
        expected=scrubber.text(result.expected),
        actual=scrubber.text(result.actual),
        reason=scrubber.text(result.reason),
        exchange=_redact_exchange(scrubber, result.exchange) if result.exchange is not None else None,
    )


def redact_run(run: RunResult, secrets: Iterable[str] = ()) -> RunResult:
    """A copy of ``run`` with every credential replaced by ``[redacted]``.

    ``secrets`` are the key values the caller knows (every form of each is scrubbed: plain,
    base64, URL-encoded, escaped); credential header values still in clear in the run are
    scrubbed everywhere too, and so are recognisable token shapes.
    """
    scrubber = Scrubber.for_headers(
        (
            headers
            for result in run.results
            if result.exchange is not None
            for headers in (result.exchange.request_headers, result.exchange.response_headers)
        ),
        secrets,
    )
    return dataclasses.replace(
        run,
        target=scrubber.text(run.target),
        base_url=scrubber.url(run.base_url),
        unreachable=scrubber.text(run.unreachable) if run.unreachable is not None else None,
        metadata=scrubber.value(run.metadata),
        results=[_redact_result(scrubber, result) for result in run.results],
    )
