"""JUnit XML for CI test tabs, written with the standard library only.

The document is red (a ``<failure>`` or ``<error>`` somewhere) exactly when the run's verdict
(``gateproof.reports.verdict``) is FAIL, so the test tab, the exit code, the HTML banner and
the Markdown summary agree. Layout, chosen for what common CI parsers (GitHub/GitLab/Jenkins/
Azure) agree on:

- ``<testsuites>`` holds one ``<testsuite>`` per layer that has results, in layer order
  (property, scenario, stream, load); every suite and the root carry ``tests``,
  ``failures``, ``errors``, ``skipped`` and ``time`` (seconds); each suite's properties name
  the run, the target, the ``verdict`` (PASS / NEEDS ATTENTION / FAIL) and ``strict``.
- one ``<testcase>`` per result: ``classname`` is ``<layer>.<check>``, ``name`` is the
  scenario with the route in brackets. A result of a per-provider scenario carries
  ``<property name="provider" value="<dialect>"/>``; when the run has results on two or more
  provider routes, the name also carries the dialect on every route, the primary one included
  (``chat_basic[openai] [POST /v1/chat/completions]`` beside ``chat_basic[anthropic] [...]``),
  so the routes read side by side in a test tab; a one-route run keeps its plain names.
  A result of the failure matrix (a provider fault of D48 played through the gateway) carries
  ``<property name="fault" value="<fault>"/>`` and ``<property name="mode" value="stream|non-stream"/>``.
- ``time`` is what the requests took, never the time a check took to evaluate: a scenario,
  stream or load-layer case carries the latency of the request it judged
  (``exchange.elapsed_ms``; 0 without one), and a suite counts each request once, however many
  checks judged it. A property case carries 0: its operation's time (generated cases and
  seconds, ``RunResult.metadata["property_operations"]``) is counted once, as the property
  suite's time, and listed as suite properties (``operation <route>``); without that record,
  each operation's time is taken once from its results.
- a result that fails the run (a required check failed with severity error, or any
  severity with ``--strict``): ``<failure type="error|warning" message="<reason>">`` whose text
  holds the severity, what the official client made of the answer (``client: probe → verdict:
  detail``), the cases (``failed in N of M cases``), expected, actual and the redacted
  request/response.
- a failure that does not fail the run (a warning without ``--strict``, an advisory check)
  and an advisory check that could not be evaluated stay passing cases: their properties say
  ``severity``, ``gating=false`` (and ``advisory``), and ``<system-out>`` starts with
  ``warning (not gating; --strict fails it): <reason>`` or ``advisory ... (not gating)``,
  followed by the same text as a failure's.
- error (a required check could not be evaluated): ``<error>`` with the same body.
- skipped: ``<skipped message="because <check>">`` (a check it depends on failed on the same
  answer); not applicable: ``<skipped message="not applicable: ...">``.
- an unreachable target: one suite ``target`` with one ``<error>`` case saying so; an
  interrupted run: one suite ``run`` with one ``<error>`` case.
- a load run, when given, adds a case ``load.run`` to the ``load`` suite carrying the
  headline figures as properties: an ``<error>`` when it broke down (``LoadResult.error``), no
  request completed or the target never answered; a ``<failure type="load">`` when any request
  failed, the run is invalid or an SLO was breached (its message lists every reason); passing
  otherwise. Each objective of an SLO file is a case of its own, ``load.slo`` named for the
  objective, with its metric, threshold and measured figure as properties and a
  ``<failure type="slo">`` when breached.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateproof.contract.results import CheckResult, Layer, Outcome, RunResult, Severity
from gateproof.load.results import LoadResult
from gateproof.reports._load_sections import LoadSections
from gateproof.reports._redact import redact_load, redact_run
from gateproof.reports._view import (
    LoadView,
    cases_text,
    impact_text,
    property_operations,
    provider_family,
    provider_routes,
    request_text,
    response_text,
    severity_of,
)
from gateproof.reports.verdict import Verdict, verdict_of

__all__ = ["render_junit"]

#: characters XML 1.0 forbids even escaped; a raw response excerpt may contain them
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _seconds(ms: float) -> str:
    return f"{max(ms, 0.0) / 1000:.3f}"


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC) if epoch else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class _Suite:
    """A testsuite being filled; counts follow the cases added, time is set by the caller."""

    name: str
    timestamp: str
    properties: dict[str, str]
    cases: list[ET.Element] = field(default_factory=list)
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time_ms: float = 0.0
    #: requests already counted in ``time_ms`` (many checks judge one answer)
    _timed: set[tuple[str, str, float]] = field(default_factory=set)

    def add(self, case: ET.Element, kind: str | None) -> None:
        self.cases.append(case)
        if kind == "failure":
            self.failures += 1
        elif kind == "error":
            self.errors += 1
        elif kind == "skipped":
            self.skipped += 1

    def count_request(self, result: CheckResult) -> None:
        """Add the latency of the request ``result`` judged, once per request."""
        latency = _latency_ms(result)
        key = (result.scenario, result.route, latency)
        if latency > 0 and key not in self._timed:
            self._timed.add(key)
            self.time_ms += latency

    def element(self) -> ET.Element:
        suite = ET.Element(
            "testsuite",
            {
                "name": self.name,
                "tests": str(len(self.cases)),
                "failures": str(self.failures),
                "errors": str(self.errors),
                "skipped": str(self.skipped),
                "time": _seconds(self.time_ms),
                "timestamp": self.timestamp,
            },
        )
        if self.properties:
            props = ET.SubElement(suite, "properties")
            for name, value in self.properties.items():
                ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
        suite.extend(self.cases)
        return suite


def _latency_ms(result: CheckResult) -> float:
    """The latency of the request the result judged (0 without one); property cases carry none."""
    if result.layer is Layer.PROPERTY or result.exchange is None or result.exchange.elapsed_ms is None:
        return 0.0
    return max(result.exchange.elapsed_ms, 0.0)


def _case_name(result: CheckResult, *, by_provider: bool = False) -> str:
    """``<scenario> [<route>]``; with ``by_provider``, the scenario as ``<family>[<dialect>]`` on every route."""
    scenario = result.scenario
    if by_provider and result.provider:
        scenario = f"{provider_family(result)}[{result.provider}]"
    return f"{scenario} [{result.route}]" if result.route else scenario or result.check


def _properties(case: ET.Element) -> ET.Element:
    """The case's one ``<properties>`` element (first child, where parsers look for it)."""
    props = case.find("properties")
    if props is None:
        props = ET.Element("properties")
        case.insert(0, props)
    return props


def _details(result: CheckResult) -> str:
    # The message attribute holds the first line only; some CI pages show just the body.
    parts = [f"reason: {result.reason}"] if result.reason else []
    severity = severity_of(result)
    if severity is not None:
        parts.append(f"severity: {severity.value}" + ("" if result.required else " (advisory check)"))
    parts += [f"client: {impact_text(item)}" for item in result.impact]
    cases = cases_text(result)
    if cases:
        parts.append(f"cases: {cases}")
    if result.expected:
        parts.append(f"expected: {result.expected}")
    if result.actual:
        parts.append(f"actual: {result.actual}")
    if result.exchange is not None:
        parts.append(f"request:\n{request_text(result.exchange)}")
        parts.append(f"response:\n{response_text(result.exchange)}")
    return _clean("\n\n".join(parts))


def _note(case: ET.Element, result: CheckResult, heading: str) -> None:
    """A result that is reported but does not fail the run: properties plus a system-out note."""
    props = _properties(case)
    severity = severity_of(result)
    values = {"severity": severity.value} if severity is not None else {}
    values["gating"] = "false"
    if not result.required:
        values["advisory"] = "true"
    for name, value in values.items():
        ET.SubElement(props, "property", {"name": name, "value": value})
    first = result.reason.splitlines()[0] if result.reason else result.outcome.value
    ET.SubElement(case, "system-out").text = _clean(f"{heading}: {first}\n\n") + _details(result)


def _result_case(
    result: CheckResult, gating: bool, *, by_provider: bool = False
) -> tuple[ET.Element, str | None]:
    case = ET.Element(
        "testcase",
        {
            "classname": f"{result.layer.value}.{result.check}",
            "name": _clean(_case_name(result, by_provider=by_provider)),
            "time": _seconds(_latency_ms(result)),
        },
    )
    if result.provider:
        ET.SubElement(_properties(case), "property", {"name": "provider", "value": _clean(result.provider)})
    for name, value in (("fault", result.fault), ("mode", result.mode)):
        if result.fault and value:
            ET.SubElement(_properties(case), "property", {"name": name, "value": _clean(value)})
    reason = _clean(result.reason.splitlines()[0] if result.reason else "")
    if result.outcome is Outcome.FAILED:
        severity = severity_of(result) or Severity.ERROR
        if gating:
            message = reason or "check failed"
            if severity is Severity.WARNING:
                message = f"warning (--strict): {message}"
            failure = ET.SubElement(case, "failure", {"message": message, "type": severity.value})
            failure.text = _details(result)
            return case, "failure"
        if not result.required:
            _note(case, result, f"advisory {severity.value} (not gating)")
        else:
            _note(case, result, "warning (not gating; --strict fails it)")
        return case, None
    if result.outcome is Outcome.ERROR:
        if not gating:
            _note(case, result, "advisory check could not be evaluated (not gating)")
            return case, None
        element = ET.SubElement(case, "error", {"message": reason or "check could not run", "type": "error"})
        element.text = _details(result)
        return case, "error"
    if result.outcome is Outcome.SKIPPED:
        message = _clean(f"because {result.because}" if result.because else "skipped")
        ET.SubElement(case, "skipped", {"message": message}).text = _clean(result.reason) or None
        return case, "skipped"
    if result.outcome is Outcome.NOT_APPLICABLE:
        message = f"not applicable: {reason}" if reason else "not applicable"
        ET.SubElement(case, "skipped", {"message": message})
        return case, "skipped"
    return case, None


def _load_case(view: LoadView) -> tuple[ET.Element, str | None, float]:
    load = view.load
    case = ET.Element(
        "testcase",
        {
            "classname": "load.run",
            "name": _clean(f"{load.scenario} [{load.base_url}]"),
            "time": f"{load.duration_s:.3f}",
        },
    )
    props = ET.SubElement(case, "properties")
    for label, value in [("users", str(load.users)), ("requests", str(load.requests)), *view.figures]:
        ET.SubElement(props, "property", {"name": label, "value": _clean(value)})
    summary = "\n".join(f"{label}: {value}" for label, value in view.figures)
    if view.failure_reasons:
        summary += "\nfailure reasons:\n" + "\n".join(
            f"  {count} x {reason}" for reason, count in view.failure_reasons
        )
    problem = "; ".join(view.problems) or None
    kind: str | None = None
    if problem is None:
        ET.SubElement(case, "system-out").text = _clean(summary)
    elif view.broken:
        kind = "error"
        ET.SubElement(case, "error", {"message": _clean(problem), "type": "error"}).text = _clean(summary)
    else:
        kind = "failure"
        ET.SubElement(case, "failure", {"message": _clean(problem), "type": "load"}).text = _clean(summary)
    return case, kind, load.duration_s * 1000


def _slo_cases(load: LoadResult) -> Iterable[tuple[ET.Element, str | None]]:
    """One case per objective of the SLO file, so a CI dashboard lists each gate by name."""
    for row in LoadSections.from_load(load).slos:
        case = ET.Element("testcase", {"classname": "load.slo", "name": _clean(row.name), "time": "0.000"})
        props = ET.SubElement(case, "properties")
        for label, value in (
            ("metric", row.outcome.metric),
            ("threshold", row.threshold),
            ("measured", row.measured),
        ):
            ET.SubElement(props, "property", {"name": label, "value": _clean(value)})
        text = _clean(f"{row.outcome.metric}: measured {row.measured}, threshold {row.threshold}")
        if row.met:
            ET.SubElement(case, "system-out").text = text
            yield case, None
        else:
            ET.SubElement(case, "failure", {"message": text, "type": "slo"}).text = text
            yield case, "failure"


def _property_time_ms(run: RunResult, suite: _Suite) -> float:
    """Each property operation's time once: the run's record of them, else taken from its results."""
    operations = property_operations(run)
    if operations:
        for op in operations:
            suite.properties[f"operation {op.route}"] = f"{op.cases} cases, {op.seconds:.3f} s"
        return sum(op.seconds for op in operations) * 1000
    per_route: dict[str, float] = {}
    for result in run.results:
        if result.layer is Layer.PROPERTY:
            per_route[result.route] = max(per_route.get(result.route, 0.0), result.duration_ms)
    return sum(per_route.values())


def _suites(run: RunResult | None, load: LoadResult | None, verdict: Verdict) -> Iterable[_Suite]:
    properties: dict[str, str] = {"verdict": verdict.label}
    timestamp = _iso(load.started_at if load is not None else 0.0)
    if run is not None:
        properties = {
            "run_id": run.run_id,
            "target": run.target,
            "base_url": run.base_url,
            "profile": run.profile,
            "verdict": verdict.label,
            "strict": "true" if run.strict else "false",
        }
        timestamp = _iso(run.started_at)
        if run.interrupted:
            # An interrupted run is never green in CI: one error case says so.
            suite = _Suite("run", timestamp, dict(properties))
            case = ET.Element("testcase", {"classname": "run", "name": "finished", "time": "0.000"})
            message = "the run was interrupted before it finished"
            ET.SubElement(case, "error", {"message": message, "type": "interrupted"}).text = message
            suite.add(case, "error")
            yield suite
        if run.unreachable is not None:
            suite = _Suite("target", timestamp, dict(properties))
            case = ET.Element(
                "testcase", {"classname": "target.reachable", "name": _clean(run.base_url), "time": "0.000"}
            )
            message = _clean(f"target unreachable: {run.unreachable}")
            ET.SubElement(case, "error", {"message": message, "type": "unreachable"}).text = message
            suite.add(case, "error")
            yield suite
    suites: dict[Layer, _Suite] = {}
    for layer in Layer:
        suites[layer] = _Suite(layer.value, timestamp, dict(properties))
    if run is not None:
        gating = {id(r) for r in run.gating_failures}
        by_provider = len(provider_routes(run.results)) > 1
        for result in run.results:
            case, kind = _result_case(result, id(result) in gating, by_provider=by_provider)
            suites[result.layer].add(case, kind)
            suites[result.layer].count_request(result)
        suites[Layer.PROPERTY].time_ms += _property_time_ms(run, suites[Layer.PROPERTY])
    if load is not None:
        case, kind, duration_ms = _load_case(LoadView.from_load(load))
        load_suite = suites[Layer.LOAD]
        if not load_suite.cases:
            load_suite.timestamp = _iso(load.started_at)
        load_suite.add(case, kind)
        load_suite.time_ms += duration_ms
        for slo_case, slo_kind in _slo_cases(load):
            load_suite.add(slo_case, slo_kind)
    yield from (suite for suite in suites.values() if suite.cases)


def render_junit(
    run: RunResult | None, load: LoadResult | None = None, *, secrets: Iterable[str] = ()
) -> str:
    """The JUnit XML document (UTF-8 text with an XML declaration) for a run and/or a load run.

    ``secrets``: key values to scrub in every encoding (see ``write_report``).
    """
    secrets = tuple(secrets)
    run = redact_run(run, secrets) if run is not None else None
    load = redact_load(load, secrets) if load is not None else None
    verdict = verdict_of(run, load)
    root = ET.Element("testsuites", {"name": "gateproof"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time_ms = 0.0
    for suite in _suites(run, load, verdict):
        root.append(suite.element())
        totals["tests"] += len(suite.cases)
        totals["failures"] += suite.failures
        totals["errors"] += suite.errors
        totals["skipped"] += suite.skipped
        time_ms += suite.time_ms
    for name, value in totals.items():
        root.set(name, str(value))
    root.set("time", _seconds(time_ms))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
