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
import re
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
    "ClientImpact",
    "Exchange",
    "ImpactVerdict",
    "Layer",
    "Outcome",
    "RawResponse",
    "RootCause",
    "RunResult",
    "Scrubber",
    "Severity",
    "redact_run",
    "secret_forms",
]

RESULTS_SCHEMA_VERSION = "1.1"
#: versions this module still reads (1.1 added severity, impact, skipped, cases; 1.0 files read as before)
READABLE_SCHEMA_VERSIONS = frozenset({"1.0", "1.1"})

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
    #: a check it depends on failed on the same answer, so judging it would count one root cause
    #: twice (``because`` names that check); never counted as a failure
    SKIPPED = "skipped"


class Severity(StrEnum):
    """How much a failure matters to the clients of the target."""

    #: it breaks a real client, or the contract clients rely on (status, auth, what reaches the provider)
    ERROR = "error"
    #: it deviates from the documented shape, but the official clients tolerate it
    WARNING = "warning"


class ImpactVerdict(StrEnum):
    """What an official client made of the bytes a failing check judged."""

    #: the client parsed the answer and every field of the wire reached the caller
    PARSED = "parsed"
    #: the client parsed it, but a field on the wire did not reach the caller (or changed type)
    FIELD_LOST = "field_lost"
    #: the client raised a different exception class than the status it should have seen
    WRONG_EXCEPTION = "wrong_exception"
    #: the client raised where a correct answer is parsed (or hung up, or looped)
    RAISED = "raised"


@dataclass(frozen=True)
class ClientImpact:
    """One replay of recorded bytes through an official client, and what the caller saw."""

    #: the client and how it was used, e.g. ``openai-python 3.57.0: chat.completions.create(stream=True)``
    probe: str
    verdict: ImpactVerdict
    #: one line: the exception, the lost field, or what was parsed
    detail: str = ""
    #: of a wrong-exception replay: the classes owed (``RateLimitError (429)``) and what came instead
    #: (``InternalServerError (502)``, ``a stream of 3 chunks``), so a report words it without parsing
    owed: str = ""
    got: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {"probe": self.probe, "verdict": self.verdict.value, "detail": self.detail}
        if self.owed or self.got:
            data.update(owed=self.owed, got=self.got)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientImpact:
        return cls(
            probe=data["probe"],
            verdict=ImpactVerdict(data["verdict"]),
            detail=data.get("detail", ""),
            owed=data.get("owed", ""),
            got=data.get("got", ""),
        )


@dataclass(frozen=True)
class RawResponse:
    """The bytes a failing check judged, kept in memory only so client impact can be replayed.

    Never serialised, never rendered: a raw body may hold anything the target sent. It is
    dropped from the result once impact has been measured.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: the request asked for a stream
    stream: bool
    #: the request body as sent (JSON), when it was JSON
    request: dict[str, Any] | None = None
    #: the statuses a correct target answers here (empty: any 2xx)
    expected_statuses: frozenset[int] = frozenset()


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
    #: how long the check took to evaluate (the request's latency is ``exchange.elapsed_ms``)
    duration_ms: float = 0.0
    #: set on failures: error (breaks clients) or warning (tolerated; fails a run only with --strict)
    severity: Severity | None = None
    #: what the official clients made of the answer, for failures whose answer could be replayed
    impact: tuple[ClientImpact, ...] = ()
    #: for skipped results: the check whose failure on the same answer made this one moot
    because: str = ""
    #: requests this result judged (the property layer runs many cases per operation)
    cases: int = 1
    #: of ``cases``, how many failed
    failed_cases: int = 0
    #: the provider route (the mock dialect, e.g. ``anthropic``) a per-provider scenario ran on; "" otherwise
    provider: str = ""
    #: the failure-matrix row (a provider fault of D48, e.g. ``429 persistent``) a bad-day scenario played
    fault: str = ""
    #: of a failure-matrix result: ``stream`` or ``non-stream``; "" otherwise
    mode: str = ""
    #: in memory only, until impact is measured (see RawResponse)
    raw: RawResponse | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(dataclasses.replace(self, raw=None, impact=()))
        del data["raw"]
        data["layer"] = self.layer.value
        data["outcome"] = self.outcome.value
        data["severity"] = self.severity.value if self.severity is not None else None
        data["impact"] = [item.to_dict() for item in self.impact]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        exchange = data.get("exchange")
        severity = data.get("severity")
        return cls(
            **{
                **data,
                "layer": Layer(data["layer"]),
                "outcome": Outcome(data["outcome"]),
                "exchange": Exchange(**exchange) if exchange else None,
                "severity": Severity(severity) if severity else None,
                "impact": tuple(ClientImpact.from_dict(item) for item in data.get("impact", ())),
            }
        )

    def skipped_because(self, check: str, reason: str) -> CheckResult:
        """This result as ``skipped (because <check>)``: its finding is another check's root cause."""
        return dataclasses.replace(
            self, outcome=Outcome.SKIPPED, because=check, reason=reason, severity=None, impact=(), raw=None
        )

    @property
    def gating(self) -> bool:
        """Fails the run without --strict: a required check that errored, or failed with severity error."""
        if not self.required:
            return False
        if self.outcome is Outcome.ERROR:
            return True
        return self.outcome is Outcome.FAILED and self.severity is not Severity.WARNING


@dataclass(frozen=True)
class RootCause:
    """Failures of one check that share one reason: one deviation, however many scenarios show it."""

    check: str
    reason: str
    severity: Severity | None
    results: tuple[CheckResult, ...]


def _reason_key(reason: str) -> str:
    """The reason with numbers and quoted values blurred, so per-scenario details group together.

    HTTP statuses stay: "got HTTP 500" and "got HTTP 400" are two deviations, not one.
    """
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "…", reason)
    return re.sub(r"(?<!HTTP )(?<![\d.])\d+(\.\d+)?", "#", text)


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
    #: warnings fail the run too (``--strict``)
    strict: bool = False

    @property
    def counts(self) -> Counter[str]:
        return Counter(result.outcome.value for result in self.results)

    @property
    def gating_failures(self) -> list[CheckResult]:
        """Required checks that could not be evaluated, or failed with severity error (any, if strict)."""
        return [
            r
            for r in self.results
            if r.gating or (self.strict and r.required and r.outcome is Outcome.FAILED)
        ]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failures the official clients tolerate: reported, and gating only with --strict."""
        return [r for r in self.results if r.outcome is Outcome.FAILED and r.severity is Severity.WARNING]

    def root_causes(self) -> list[RootCause]:
        """Failures grouped by (check, reason with details blurred), errors first, most results first."""
        groups: dict[tuple[str, str], list[CheckResult]] = {}
        for result in self.results:
            if result.outcome is Outcome.FAILED:
                groups.setdefault((result.check, _reason_key(result.reason)), []).append(result)
        causes = [
            RootCause(
                check=check,
                reason=members[0].reason,
                severity=Severity.WARNING
                if all(m.severity is Severity.WARNING for m in members)
                else Severity.ERROR,
                results=tuple(members),
            )
            for (check, _key), members in groups.items()
        ]
        causes.sort(key=lambda c: (c.severity is Severity.WARNING, -len(c.results), c.check))
        return causes

    @property
    def passed(self) -> bool:
        """Finished, reached, judged something, and nothing gating failed: an empty run is no pass."""
        return (
            not self.interrupted
            and self.unreachable is None
            and bool(self.results)
            and not self.gating_failures
        )

    def exit_code(self) -> int:
        """0 all applicable required checks passed; 1 some failed or none ran; 3 target unreachable; 130 interrupted."""
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
            "strict": self.strict,
            "counts": dict(self.counts),
            "root_causes": len(self.root_causes()),
            "metadata": self.metadata,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        version = data.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS:
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
            strict=bool(data.get("strict", False)),
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
        provider=scrubber.text(result.provider),
        fault=scrubber.text(result.fault),
        mode=scrubber.text(result.mode),
        scenario=scrubber.text(result.scenario),
        description=scrubber.text(result.description),
        expected=scrubber.text(result.expected),
        actual=scrubber.text(result.actual),
        reason=scrubber.text(result.reason),
        because=scrubber.text(result.because),
        impact=tuple(
            dataclasses.replace(
                item,
                probe=scrubber.text(item.probe),
                detail=scrubber.text(item.detail),
                owed=scrubber.text(item.owed),
                got=scrubber.text(item.got),
            )
            for item in result.impact
        ),
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
