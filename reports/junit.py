"""JUnit XML for CI test tabs, written with the standard library only.

Layout, chosen for what common CI parsers (GitHub/GitLab/Jenkins/Azure) agree on:

- ``<testsuites>`` holds one ``<testsuite>`` per layer that has results, in layer order
  (property, scenario, stream, load); every suite and the root carry ``tests``,
  ``failures``, ``errors``, ``skipped`` and ``time`` (seconds).
- one ``<testcase>`` per result: ``classname`` is ``<layer>.<check>``, ``name`` is the
  scenario with the route in brackets, ``time`` in seconds.
- failed: ``<failure message="<reason>">`` whose text holds expected, actual and the
  redacted request/response. An advisory (non-required) check that failed is still a
  ``<failure>``, its message prefixed ``advisory:``, so it stays visible; the run's
  verdict and exit code are what gate.
- error: ``<error>`` with the same body; not applicable: ``<skipped message="not applicable: ...">``.
- an unreachable target: one suite ``target`` with one ``<error>`` case saying so.
- a load run, when given, adds a case ``load.run`` to the ``load`` suite carrying the
  headline figures as properties; it is an error only if no request completed or the
  target never answered (its thresholds, if any, arrive as ``load`` layer results).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateproof.contract.results import CheckResult, Layer, Outcome, RunResult
from gateproof.load.results import LoadResult
from gateproof.reports._redact import redact_load, redact_run
from gateproof.reports._view import LoadView, request_text, response_text

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
    """A testsuite being filled; counts follow the cases added."""

    name: str
    timestamp: str
    properties: dict[str, str]
    cases: list[ET.Element] = field(default_factory=list)
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time_ms: float = 0.0

    def add(self, case: ET.Element, kind: str | None, duration_ms: float) -> None:
        self.cases.append(case)
        self.time_ms += max(duration_ms, 0.0)
        if kind == "failure":
            self.failures += 1
        elif kind == "error":
            self.errors += 1
        elif kind == "skipped":
            self.skipped += 1

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


def _case_name(result: CheckResult) -> str:
    return f"{result.scenario} [{result.route}]" if result.route else result.scenario or result.check


def _details(result: CheckResult) -> str:
    # The message attribute holds the first line only; some CI pages show just the body.
    parts = [f"reason: {result.reason}"] if result.reason else []
    if result.expected:
        parts.append(f"expected: {result.expected}")
    if result.actual:
        parts.append(f"actual: {result.actual}")
    if result.exchange is not None:
        parts.append(f"request:\n{request_text(result.exchange)}")
        parts.append(f"response:\n{response_text(result.exchange)}")
    return _clean("\n\n".join(parts))


def _result_case(result: CheckResult) -> tuple[ET.Element, str | None]:
    case = ET.Element(
        "testcase",
        {
            "classname": f"{result.layer.value}.{result.check}",
            "name": _clean(_case_name(result)),
            "time": _seconds(result.duration_ms),
        },
    )
    reason = _clean(result.reason.splitlines()[0] if result.reason else "")
    if result.outcome is Outcome.FAILED:
        message = reason or "check failed"
        if not result.required:
            message = f"advisory: {message}"
        ET.SubElement(case, "failure", {"message": message, "type": "failed"}).text = _details(result)
        return case, "failure"
    if result.outcome is Outcome.ERROR:
        element = ET.SubElement(case, "error", {"message": reason or "check could not run", "type": "error"})
        element.text = _details(result)
        return case, "error"
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
    kind: str | None = None
    if load.requests == 0:
        message = "no request completed during the load run"
    elif load.responses == 0 and load.failures >= load.requests:
        message = f"the target never answered ({load.requests:,} requests, no HTTP response)"
    else:
        message = ""
    if message:
        kind = "error"
        ET.SubElement(case, "error", {"message": message, "type": "error"}).text = _clean(summary)
    else:
        ET.SubElement(case, "system-out").text = _clean(summary)
    return case, kind, load.duration_s * 1000


def _suites(run: RunResult | None, load: LoadResult | None) -> Iterable[_Suite]:
    properties: dict[str, str] = {}
    timestamp = _iso(load.started_at if load is not None else 0.0)
    if run is not None:
        properties = {
            "run_id": run.run_id,
            "target": run.target,
            "base_url": run.base_url,
            "profile": run.profile,
        }
        timestamp = _iso(run.started_at)
        if run.interrupted:
            # An interrupted run is never green in CI: one error case says so.
            suite = _Suite("run", timestamp, properties)
            case = ET.Element("testcase", {"classname": "run", "name": "finished", "time": "0.000"})
            message = "the run was interrupted before it finished"
            ET.SubElement(case, "error", {"message": message, "type": "interrupted"}).text = message
            suite.add(case, "error", 0.0)
            yield suite
        if run.unreachable is not None:
            suite = _Suite("target", timestamp, properties)
            case = ET.Element(
                "testcase", {"classname": "target.reachable", "name": _clean(run.base_url), "time": "0.000"}
            )
            message = _clean(f"target unreachable: {run.unreachable}")
            ET.SubElement(case, "error", {"message": message, "type": "unreachable"}).text = message
            suite.add(case, "error", 0.0)
            yield suite
    suites: dict[Layer, _Suite] = {}
    for layer in Layer:
        suites[layer] = _Suite(layer.value, timestamp, properties)
    if run is not None:
        for result in run.results:
            case, kind = _result_case(result)
            suites[result.layer].add(case, kind, result.duration_ms)
    if load is not None:
        case, kind, duration_ms = _load_case(LoadView.from_load(load))
        load_suite = suites[Layer.LOAD]
        if not load_suite.cases:
            load_suite.timestamp = _iso(load.started_at)
        load_suite.add(case, kind, duration_ms)
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
    root = ET.Element("testsuites", {"name": "gateproof"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time_ms = 0.0
    for suite in _suites(run, load):
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
