"""The failure matrix: each provider fault (D48) by stream mode, as the gateway handled it.

A gateway is judged on the days its providers fail. The contract suite plays each provider fault
of D48 through the gateway, with and without streaming, and marks every result of those scenarios
with the fault (``CheckResult.fault``, the row) and the mode (``CheckResult.mode``, the column);
this module folds those results into one table, so the HTML page, ``summary.md`` and the
terminal line of ``gateproof run`` / ``gateproof contract`` read the same cells and the same
words. Results without a fault are not part of it; a run without any has no matrix (``None``).

A cell is what one fault did in one mode, on every provider route its scenario ran on (a row the
suite plays once per route shows each route's mark in its cells, and names the routes a deviation
was seen on): ``as owed`` when every judged check passed, a ``deviation`` (with the worst
severity) when one failed, ``not evaluated`` when a check could not run, ``not applicable`` when
the profile or wiring leaves the cell out, and ``—`` when the suite did not play it (D48's
stream-only faults have no non-stream cell). A deviation lists its failing checks with what was
owed and what came, and what the official client made of the answer, in plain words: the
exception class it raised where another was owed, or the exception raised where an answer parses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateproof.contract.results import (
    CheckResult,
    ClientImpact,
    ImpactVerdict,
    Outcome,
    Scrubber,
    Severity,
)
from gateproof.reports._view import OUTCOME_ORDER, RunView, severity_of

__all__ = [
    "MODE_ORDER",
    "FailureMatrix",
    "FindingGroup",
    "MatrixCell",
    "MatrixColumn",
    "MatrixFinding",
    "MatrixRow",
    "RouteStatus",
    "failure_matrix_headline",
    "impact_class",
    "impact_words",
]

#: the columns of a route, in D48's order; a mode the suite adds later follows them, first seen first
MODE_ORDER = ("non-stream", "stream")

#: deviations named in the terminal line; the report lists every one
_HEADLINE_DEVIATIONS = 3

#: ``expected <owed>, the client got <what>``: the detail of a wrong-exception replay
_WRONG_EXCEPTION = re.compile(r"expected (?P<owed>.+?), the client got (?P<got>.+)$", re.DOTALL)
#: an exception class name as the replay writes it (``InternalServerError``, ``APIConnectionError``)
_CLASS_NAME = re.compile(
    r"(?:[A-Za-z_][\w]*\.)*(?P<name>[A-Z][A-Za-z0-9]*(?:Error|Exception|Timeout|Exit))\b"
)


def _client(impact: ClientImpact) -> str:
    """The client of a probe (``openai-python 1.99.0`` of ``openai-python 1.99.0: chat.completions...``)."""
    return impact.probe.split(":", 1)[0].strip() or "the client"


def _owed_and_got(impact: ClientImpact) -> tuple[str, str] | None:
    """What a wrong-exception replay owed and got: its own fields, or (results of an older gateproof) its detail."""
    if impact.owed:
        return impact.owed, impact.got
    match = _WRONG_EXCEPTION.search(" ".join(impact.detail.split()))
    return (match["owed"], match["got"]) if match is not None else None


def impact_words(impact: ClientImpact) -> str:
    """What the official client did with a deviating answer, as a sentence a reader acts on.

    e.g. ``openai-python 1.99.0 raised InternalServerError (502) where RateLimitError (429) was owed``.
    """
    client = _client(impact)
    detail = " ".join(impact.detail.split())
    if impact.verdict is ImpactVerdict.WRONG_EXCEPTION:
        pair = _owed_and_got(impact)
        if pair is None:
            return (
                f"{client} did not raise the error owed: {detail}"
                if detail
                else f"{client} raised the wrong error"
            )
        owed, got = pair
        if _CLASS_NAME.match(got):
            return f"{client} raised {got} where {owed} was owed"
        return f"{client} raised no exception (it returned {got}) where {owed} was owed"
    if impact.verdict is ImpactVerdict.RAISED:
        return f"{client} raised {detail}" if detail else f"{client} raised"
    if impact.verdict is ImpactVerdict.FIELD_LOST:
        return (
            f"{client} parsed the answer, but {detail}" if detail else f"{client} lost a field of the answer"
        )
    if _CLASS_NAME.match(detail):
        # an error answer whose class and fields reached the caller as owed (the deviation is elsewhere)
        return f"{client} raised {detail}"
    # a deviation the client parsed: the caller takes a failed answer for a success
    return f"{client} raised no exception: the caller read the answer as a success" + (
        f" ({detail})" if detail else ""
    )


def impact_class(impact: ClientImpact) -> str:
    """The few words of a deviation's impact for one terminal line: the class raised, or what happened."""
    detail = " ".join(impact.detail.split())
    if impact.verdict is ImpactVerdict.WRONG_EXCEPTION:
        pair = _owed_and_got(impact)
        if pair is not None:
            got = _CLASS_NAME.match(pair[1])
            return got["name"] if got else "no exception"
    if impact.verdict in (ImpactVerdict.WRONG_EXCEPTION, ImpactVerdict.RAISED):
        found = _CLASS_NAME.search(detail)
        return found["name"] if found else "raised"
    if impact.verdict is ImpactVerdict.FIELD_LOST:
        return "field lost"
    raised = _CLASS_NAME.match(detail)
    return raised["name"] if raised else "no exception"


@dataclass(frozen=True)
class MatrixColumn:
    """One column of the matrix: a stream mode (``CheckResult.mode``)."""

    mode: str

    @property
    def label(self) -> str:
        return self.mode or "either mode"


@dataclass(frozen=True)
class MatrixFinding:
    """A failing (or unevaluated) check of a cell: what the gateway owed, what came, what the client did."""

    result: CheckResult
    #: where the result's row is in the HTML page ("" when unknown)
    anchor: str = ""
    #: the cell's other checks that could not be evaluated for the same reason (one cause, one line)
    alike: tuple[str, ...] = ()

    @property
    def check(self) -> str:
        return f"{self.result.layer.value}.{self.result.check}"

    @property
    def outcome(self) -> str:
        return self.result.outcome.value

    @property
    def severity(self) -> str:
        severity = severity_of(self.result)
        return severity.value if severity is not None else ""

    @property
    def route(self) -> str:
        """The provider route the check ran on ("" off the provider axis)."""
        return self.result.provider

    @property
    def impacts(self) -> list[str]:
        """Each probe's impact in plain words, once each."""
        return list(dict.fromkeys(impact_words(item) for item in self.result.impact))

    @property
    def summary(self) -> str:
        """``<check>: owed <expected>; got <actual>``, its reason when it records neither, or why it was not evaluated."""
        return self.summary_on([self.result.provider] if self.result.provider else [])

    def summary_on(self, routes: list[str]) -> str:
        """The summary naming ``routes`` as where it was seen (``<check> on openai, gemini: ...``)."""
        r = self.result
        where = f"{self.check} on {', '.join(routes)}" if routes else self.check
        if r.outcome is Outcome.ERROR:
            also = f" (and {len(self.alike)} more checks: {', '.join(self.alike)})" if self.alike else ""
            return f"{where}{also}: not evaluated: {r.reason or 'no reason recorded'}"
        if r.expected or r.actual:
            return f"{where}: owed {r.expected or '—'}; got {r.actual or r.reason or '—'}"
        return f"{where}: {r.reason or r.outcome.value}"


def _findings(failing: list[CheckResult], anchors: Mapping[int, str]) -> tuple[MatrixFinding, ...]:
    """A cell's findings; checks not evaluated for one reason (the target went silent) are one finding."""
    alike: dict[tuple[str, str], list[CheckResult]] = {}
    for r in failing:
        if r.outcome is Outcome.ERROR:
            alike.setdefault((r.provider, r.reason), []).append(r)
    findings: list[MatrixFinding] = []
    for r in failing:
        if r.outcome is not Outcome.ERROR:
            findings.append(MatrixFinding(r, anchors.get(id(r), "")))
            continue
        same = alike[(r.provider, r.reason)]
        if same[0] is r:
            others = tuple(dict.fromkeys(o.check for o in same[1:] if o.check != r.check))
            findings.append(MatrixFinding(r, anchors.get(id(r), ""), alike=others))
    return tuple(findings)


@dataclass(frozen=True)
class FindingGroup:
    """One check's findings in a cell with the same evidence on several routes: one deviation, its routes."""

    findings: tuple[MatrixFinding, ...]

    @property
    def first(self) -> MatrixFinding:
        return self.findings[0]

    @property
    def routes(self) -> list[str]:
        return [f.route for f in self.findings if f.route]

    @property
    def summary(self) -> str:
        """The first finding's summary, naming every route it was seen on."""
        return self.first.summary_on(self.routes)

    @property
    def impacts(self) -> list[str]:
        """What the client made of the first of them (the routes' answers differ only in their text)."""
        return self.first.impacts


def _counts(results: Iterable[CheckResult]) -> dict[Outcome, int]:
    counts = dict.fromkeys(OUTCOME_ORDER, 0)
    for result in results:
        counts[result.outcome] += 1
    return counts


def _status(counts: Mapping[Outcome, int]) -> str:
    """The worst outcome present (what a cell is coloured by); ``empty`` without results."""
    return next((outcome.value for outcome in OUTCOME_ORDER if counts[outcome]), "empty")


@dataclass(frozen=True)
class RouteStatus:
    """How one provider route fared within a cell whose scenario ran once per route."""

    provider: str
    status: str

    @property
    def mark(self) -> str:
        return {Outcome.PASSED.value: "✓", Outcome.FAILED.value: "✗", Outcome.ERROR.value: "error"}.get(
            self.status, self.status.replace("_", " ")
        )


@dataclass(frozen=True)
class MatrixCell:
    """What one fault did in one mode: the results of its checks (on every route), folded into one verdict."""

    fault: str
    column: MatrixColumn
    results: tuple[CheckResult, ...]
    findings: tuple[MatrixFinding, ...] = ()

    @property
    def mode(self) -> str:
        return self.column.mode

    @property
    def counts(self) -> dict[Outcome, int]:
        return _counts(self.results)

    @property
    def status(self) -> str:
        """The outcome the cell is coloured by, the worst present; ``empty`` when the cell was not played."""
        return _status(self.counts)

    @property
    def routes(self) -> list[RouteStatus]:
        """Each provider route's own status, when the cell's scenario ran on two or more (else empty)."""
        providers = list(dict.fromkeys(r.provider for r in self.results if r.provider))
        if len(providers) < 2:
            return []
        return [
            RouteStatus(provider, _status(_counts(r for r in self.results if r.provider == provider)))
            for provider in providers
        ]

    @property
    def deviating_routes(self) -> list[str]:
        """The routes a failure was seen on, when the cell spans routes."""
        return [route.provider for route in self.routes if route.status == Outcome.FAILED.value]

    @property
    def where(self) -> str:
        """``on anthropic`` / ``on all 3 routes`` for a deviation of a cell that spans routes, else ""."""
        routes, deviating = self.routes, self.deviating_routes
        if not deviating:
            return ""
        return (
            f"on all {len(routes)} routes" if len(deviating) == len(routes) else f"on {', '.join(deviating)}"
        )

    @property
    def groups(self) -> list[FindingGroup]:
        """The findings with one check, one outcome and the same evidence folded across routes."""
        grouped: dict[tuple[str, str, str, str, str], list[MatrixFinding]] = {}
        for finding in self.findings:
            r = finding.result
            key = (
                finding.check,
                r.outcome.value,
                r.expected,
                r.actual,
                "" if r.expected or r.actual else r.reason,
            )
            grouped.setdefault(key, []).append(finding)
        return [FindingGroup(tuple(members)) for members in grouped.values()]

    @property
    def severity(self) -> str:
        """``error`` or ``warning`` for a deviation (error when any failure is one), else ""."""
        severities = {severity_of(r) for r in self.results if r.outcome is Outcome.FAILED}
        if not severities:
            return ""
        return Severity.WARNING.value if severities == {Severity.WARNING} else Severity.ERROR.value

    @property
    def label(self) -> str:
        status = self.status
        if status == Outcome.FAILED.value:
            return f"deviation ({self.severity})"
        return {
            Outcome.ERROR.value: "not evaluated",
            Outcome.PASSED.value: "as owed",
            Outcome.SKIPPED.value: "skipped",
            Outcome.NOT_APPLICABLE.value: "not applicable",
        }.get(status, "—")

    @property
    def text(self) -> str:
        """The label with the cell's tally: ``as owed (5 checks)``, ``deviation (error): 2 of 5 checks on gemini``."""
        c = self.counts
        judged = c[Outcome.PASSED] + c[Outcome.FAILED] + c[Outcome.ERROR]
        routes = self.routes
        status = self.status
        if status == Outcome.FAILED.value:
            where = f" {self.where}" if self.where else ""
            return f"{self.label}: {c[Outcome.FAILED]} of {judged} checks{where}"
        if status == Outcome.ERROR.value:
            return f"{self.label}: {c[Outcome.ERROR]} of {judged} checks"
        if status == Outcome.PASSED.value:
            on = f" on {len(routes)} routes" if routes else ""
            return f"{self.label} ({judged} check{'s' if judged != 1 else ''}{on})"
        return self.label

    @property
    def note(self) -> str:
        """Why a cell is not applicable (the first reason its results give), else ""."""
        if self.status != Outcome.NOT_APPLICABLE.value:
            return ""
        return next((r.reason for r in self.results if r.reason), "")

    @property
    def owed(self) -> list[str]:
        """What the cell's checks expected of the gateway, each once (the matrix's expectation column)."""
        return list(dict.fromkeys(r.expected for r in self.results if r.expected))

    @property
    def impacts(self) -> list[str]:
        """The client impact of the cell's deviations, in plain words, each once."""
        return list(dict.fromkeys(text for finding in self.findings for text in finding.impacts))

    @property
    def anchor(self) -> str:
        """The page anchor of the cell's first finding ("" for a cell without one)."""
        return next((f.anchor for f in self.findings if f.anchor), "")

    @property
    def name(self) -> str:
        """``429 persistent/stream`` (``@anthropic`` when the cell spans routes and deviates on some only)."""
        text = f"{self.fault}/{self.column.label}"
        deviating = self.deviating_routes
        return f"{text}@{'+'.join(deviating)}" if deviating and len(deviating) < len(self.routes) else text

    @property
    def short_impact(self) -> str:
        """What the client did, in a word or two: the first impact's class, else the first failing check."""
        for finding in self.findings:
            for item in finding.result.impact:
                return impact_class(item)
        first = next((f for f in self.findings if f.result.outcome is Outcome.FAILED), None)
        return first.result.check if first is not None else ""


@dataclass(frozen=True)
class MatrixRow:
    """One provider fault across the columns (in the matrix's column order)."""

    fault: str
    cells: list[MatrixCell]


@dataclass(frozen=True)
class FailureMatrix:
    """Provider faults (rows) by stream mode (columns), built from results only."""

    columns: list[MatrixColumn]
    rows: list[MatrixRow]

    @classmethod
    def from_results(
        cls, results: Iterable[CheckResult], anchors: Mapping[int, str] | None = None
    ) -> FailureMatrix | None:
        """The matrix of the results that name a fault (run order), or None when none does.

        ``anchors`` maps ``id(result)`` to its row on the HTML page, so a cell links to its failures.
        """
        played = [r for r in results if r.fault]
        if not played:
            return None
        anchors = anchors or {}
        seen_modes = list(dict.fromkeys(r.mode for r in played))
        # D48's two modes are both columns once either is played: a stream-only fault shows its "—"
        if any(m in MODE_ORDER for m in seen_modes):
            modes = [*MODE_ORDER, *(m for m in seen_modes if m not in MODE_ORDER)]
        else:
            modes = seen_modes
        grouped: dict[tuple[str, str], list[CheckResult]] = {}
        for r in played:
            grouped.setdefault((r.fault, r.mode), []).append(r)
        rows = []
        for fault in dict.fromkeys(r.fault for r in played):
            cells = []
            for mode in modes:
                members = tuple(grouped.get((fault, mode), ()))
                # failures first, then errors; the run's order within each
                failing = sorted(
                    (r for r in members if r.outcome in (Outcome.FAILED, Outcome.ERROR)),
                    key=lambda r: OUTCOME_ORDER.index(r.outcome),
                )
                findings = _findings(failing, anchors)
                cells.append(MatrixCell(fault, MatrixColumn(mode), members, findings))
            rows.append(MatrixRow(fault, cells))
        return cls(columns=[MatrixColumn(mode) for mode in modes], rows=rows)

    @classmethod
    def from_view(cls, view: RunView) -> FailureMatrix | None:
        """The matrix of a run view's results, each cell linked to its rows on the page."""
        anchors = {id(row.result): row.anchor for group in view.groups for row in group.rows}
        return cls.from_results(view.run.results, anchors)

    @property
    def cells(self) -> list[MatrixCell]:
        """Every cell the suite played (a ``—`` cell is no cell of the count)."""
        return [cell for row in self.rows for cell in row.cells if cell.results]

    @property
    def deviations(self) -> list[MatrixCell]:
        return [cell for cell in self.cells if cell.status == Outcome.FAILED.value]

    @property
    def headline(self) -> str:
        """``24 cells · 22 as owed · 2 deviations (429 persistent/stream: InternalServerError, ...)``."""
        cells = self.cells
        by_status = {
            status: sum(1 for c in cells if c.status == status) for status in {c.status for c in cells}
        }
        parts = [
            f"{len(cells)} cell{'s' if len(cells) != 1 else ''}",
            f"{by_status.get(Outcome.PASSED.value, 0)} as owed",
        ]
        deviations = self.deviations
        if deviations:
            named = [f"{c.name}: {c.short_impact}" if c.short_impact else c.name for c in deviations]
            shown = ", ".join(named[:_HEADLINE_DEVIATIONS])
            if len(named) > _HEADLINE_DEVIATIONS:
                shown += f", +{len(named) - _HEADLINE_DEVIATIONS} more"
            warnings = sum(1 for c in deviations if c.severity == Severity.WARNING.value)
            tolerated = f", {warnings} tolerated" if warnings else ""
            parts.append(
                f"{len(deviations)} deviation{'s' if len(deviations) != 1 else ''}{tolerated} ({shown})"
            )
        for status, words in (
            (Outcome.ERROR.value, "not evaluated"),
            (Outcome.SKIPPED.value, "skipped"),
            (Outcome.NOT_APPLICABLE.value, "not applicable"),
        ):
            if by_status.get(status):
                parts.append(f"{by_status[status]} {words}")
        return " · ".join(parts)


def failure_matrix_headline(results: Iterable[CheckResult], secrets: Iterable[str] = ()) -> str | None:
    """One line for a terminal (None without matrix results), scrubbed like every report text.

    e.g. ``failure matrix: 24 cells · 22 as owed · 2 deviations (429 persistent/stream: InternalServerError)``
    """
    matrix = FailureMatrix.from_results(results)
    if matrix is None:
        return None
    return Scrubber(secrets).text(f"failure matrix: {matrix.headline}")
