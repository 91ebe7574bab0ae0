"""What a report says, computed once and shared by the Markdown and HTML renderers.

The renderers only lay things out; ordering (failures first), grouping (by layer,
then check), counting and number formatting live here so that the Markdown summary
and the HTML page can never disagree. Views are built per run (``RunView``) and per
load run (``LoadView``), so a page showing several of them side by side needs new
layout, not new arithmetic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateproof.contract.results import (
    CheckResult,
    ClientImpact,
    Exchange,
    Layer,
    Outcome,
    RootCause,
    RunResult,
    Severity,
)
from gateproof.load.results import CompressionCell, LatencySummary, LoadResult
from gateproof.reports.verdict import load_is_broken, load_problem, load_problems, run_headline

__all__ = [
    "COMPRESSION_COLUMNS",
    "OUTCOME_ORDER",
    "CheckDoc",
    "CompressionRow",
    "LatencyRow",
    "LayerGroup",
    "LoadView",
    "PropertyOperation",
    "ProviderCell",
    "ProviderMatrix",
    "ProviderRow",
    "ProviderTotal",
    "ResultRow",
    "RootCauseView",
    "RunView",
    "cases_text",
    "format_duration",
    "format_ms",
    "format_timestamp",
    "impact_text",
    "outcome_label",
    "property_operations",
    "provider_family",
    "provider_routes",
    "request_text",
    "response_text",
]

#: the order results are listed in: what needs attention first
OUTCOME_ORDER: tuple[Outcome, ...] = (
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.PASSED,
    Outcome.SKIPPED,
    Outcome.NOT_APPLICABLE,
)
_RANK = {outcome: rank for rank, outcome in enumerate(OUTCOME_ORDER)}
_LAYER_RANK = {layer: rank for rank, layer in enumerate(Layer)}

#: bodies are cut to this many characters in a report (the producer bounds them too)
EXCERPT_LIMIT = 6000

#: load metrics named by the load runner, in the order a reader wants them
METRIC_LABELS = {
    "ttft": "time to first token",
    "ttfb": "time to first byte",
    "inter_chunk": "inter-chunk gap",
    "e2e": "end to end",
}


def outcome_label(outcome: Outcome) -> str:
    return outcome.value.replace("_", " ")


def severity_of(result: CheckResult) -> Severity | None:
    """A failure's severity (a failure that names none counts as an error, as the verdict counts it)."""
    if result.outcome is not Outcome.FAILED:
        return None
    return result.severity or Severity.ERROR


def impact_text(impact: ClientImpact) -> str:
    """``probe → verdict: detail``, one line."""
    text = f"{impact.probe} → {impact.verdict.value}"
    return f"{text}: {impact.detail}" if impact.detail else text


def cases_text(result: CheckResult) -> str:
    """``failed in N of M cases`` for a result that judged many requests; empty for one request."""
    if result.cases <= 1:
        return ""
    if result.outcome is Outcome.FAILED:
        return f"failed in {result.failed_cases:,} of {result.cases:,} cases"
    return f"{result.cases:,} cases"


@dataclass(frozen=True)
class PropertyOperation:
    """One operation of the property layer: how many generated cases it ran, in how long (once)."""

    route: str
    cases: int
    seconds: float

    @property
    def time(self) -> str:
        return format_duration(self.seconds)


def property_operations(run: RunResult) -> list[PropertyOperation]:
    """``run.metadata["property_operations"]`` (route -> cases, seconds), if the run recorded it."""
    raw = run.metadata.get("property_operations")
    if not isinstance(raw, dict):
        return []
    operations = []
    for route, figures in raw.items():
        if not isinstance(figures, dict):
            continue
        try:
            cases = int(figures.get("cases", 0))
            seconds = float(figures.get("seconds", 0.0))
        except (TypeError, ValueError):
            continue
        operations.append(PropertyOperation(str(route), cases, max(seconds, 0.0)))
    return sorted(operations, key=lambda op: op.route)


def format_ms(value: float | None) -> str:
    """Milliseconds with a precision that suits their size (sub-ms gaps and multi-second runs alike)."""
    if value is None:
        return "—"
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def format_timestamp(epoch: float) -> str:
    if not epoch:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float) -> str:
    if seconds < 0:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s"


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        text = body
    else:
        try:
            text = json.dumps(body, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(body)
    if len(text) > EXCERPT_LIMIT:
        text = f"{text[:EXCERPT_LIMIT]}\n… ({len(text) - EXCERPT_LIMIT} more characters)"
    return text


def _headers_text(headers: dict[str, str]) -> list[str]:
    return [f"{name}: {value}" for name, value in sorted(headers.items(), key=lambda item: item[0].lower())]


def request_text(exchange: Exchange) -> str:
    """The request as a reader would type it: request line, headers, blank line, body."""
    lines = [f"{exchange.method} {exchange.url}", *_headers_text(exchange.request_headers)]
    body = _body_text(exchange.request_body)
    return "\n".join(lines) + (f"\n\n{body}" if body else "")


def response_text(exchange: Exchange) -> str:
    if exchange.status is None:
        status = "no response"
    else:
        status = f"HTTP {exchange.status}"
    if exchange.elapsed_ms is not None:
        status += f" after {format_ms(exchange.elapsed_ms)}"
    lines = [status, *_headers_text(exchange.response_headers)]
    body = _body_text(exchange.response_body)
    return "\n".join(lines) + (f"\n\n{body}" if body else "")


@dataclass(frozen=True)
class ResultRow:
    """One result as a table row: the result plus its anchor and exchange text."""

    anchor: str
    result: CheckResult
    #: where the check's registry entry is on the page
    check_anchor: str = ""
    request: str = ""
    response: str = ""

    @property
    def outcome(self) -> str:
        return self.result.outcome.value

    @property
    def outcome_label(self) -> str:
        return outcome_label(self.result.outcome)

    @property
    def qualified_check(self) -> str:
        return f"{self.result.layer.value}.{self.result.check}"

    #: this result fails the run (see ``gateproof.reports.verdict``)
    gating: bool = False

    @property
    def latency(self) -> str:
        """The latency of the request the result judged (not the time the check took to evaluate)."""
        exchange = self.result.exchange
        return format_ms(exchange.elapsed_ms) if exchange is not None else "—"

    @property
    def severity(self) -> str:
        """``error`` or ``warning`` for a failure, empty otherwise."""
        severity = severity_of(self.result)
        return severity.value if severity is not None else ""

    @property
    def cases(self) -> str:
        return cases_text(self.result)

    @property
    def skipped_text(self) -> str:
        """``skipped (because <check>)`` for a skipped result."""
        if self.result.outcome is not Outcome.SKIPPED:
            return ""
        return f"skipped (because {self.result.because})" if self.result.because else "skipped"

    @property
    def impacts(self) -> list[str]:
        return [impact_text(item) for item in self.result.impact]

    @property
    def has_details(self) -> bool:
        r = self.result
        return bool(r.expected or r.actual or self.request or self.response)


@dataclass(frozen=True)
class LayerGroup:
    """The rows of one layer, checks with failures first."""

    layer: Layer
    rows: list[ResultRow]
    counts: dict[Outcome, int]

    @property
    def total(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class RootCauseView:
    """One root cause: the failures of one check that share a reason, with what clients made of them."""

    cause: RootCause
    rows: list[ResultRow]
    #: ``error``, ``warning``, or ``advisory`` (no failure of a required check)
    kind: str
    #: one of its failures fails the run
    gating: bool

    @property
    def check(self) -> str:
        return self.cause.check

    @property
    def qualified_check(self) -> str:
        return self.rows[0].qualified_check if self.rows else self.cause.check

    @property
    def reason(self) -> str:
        return self.cause.reason

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def impacts(self) -> list[str]:
        """What each client probe made of its failures, once per (probe, verdict): the first detail seen."""
        seen: dict[tuple[str, str], str] = {}
        for row in self.rows:
            for item in row.result.impact:
                seen.setdefault((item.probe, item.verdict.value), impact_text(item))
        return list(seen.values())

    @property
    def summary(self) -> str:
        """``N failures``, plus the cases for property results (``in 7 of 300 cases``)."""
        text = f"{self.count} failure{'s' if self.count != 1 else ''}"
        cases = sum(row.result.cases for row in self.rows)
        if cases > self.count:
            text += f", in {sum(row.result.failed_cases for row in self.rows):,} of {cases:,} cases"
        return text


@dataclass(frozen=True)
class CheckDoc:
    """One entry of the check registry as seen in this run: what it asserts and how it fared."""

    name: str
    layer: Layer
    description: str
    required: bool
    counts: dict[Outcome, int]
    anchor: str


def _counts(results: Iterable[CheckResult]) -> dict[Outcome, int]:
    counts = dict.fromkeys(OUTCOME_ORDER, 0)
    for result in results:
        counts[result.outcome] += 1
    return counts


@dataclass(frozen=True)
class RunView:
    """Everything a report shows about one contract run."""

    key: str
    run: RunResult
    groups: list[LayerGroup]
    #: failed and errored results (gating or advisory), in the order to read them
    attention: list[ResultRow]
    checks: list[CheckDoc]
    counts: dict[Outcome, int]
    advisory_failures: int
    #: failures grouped by root cause, the ones that fail the run first
    root_causes: list[RootCauseView] = field(default_factory=list)
    #: results that could not be evaluated (outcome error)
    errors: list[ResultRow] = field(default_factory=list)
    skipped: list[ResultRow] = field(default_factory=list)
    operations: list[PropertyOperation] = field(default_factory=list)
    #: the per-provider scenarios, route by route; None unless results ran on 2+ provider routes
    providers: ProviderMatrix | None = None

    @classmethod
    def from_run(cls, run: RunResult, key: str = "r") -> RunView:
        gating = {id(r) for r in run.gating_failures}
        rows = [
            ResultRow(
                anchor=f"{key}-{index}",
                result=result,
                check_anchor=_check_anchor(key, result.layer, result.check),
                request=request_text(result.exchange) if result.exchange is not None else "",
                response=response_text(result.exchange) if result.exchange is not None else "",
                gating=id(result) in gating,
            )
            for index, result in enumerate(run.results, start=1)
        ]
        by_id = {id(row.result): row for row in rows}
        groups = []
        for layer in Layer:
            in_layer = [row for row in rows if row.result.layer is layer]
            if not in_layer:
                continue
            worst: dict[str, int] = {}
            for row in in_layer:
                rank = _RANK[row.result.outcome]
                worst[row.result.check] = min(worst.get(row.result.check, rank), rank)
            in_layer.sort(
                key=lambda row: (
                    worst[row.result.check],
                    row.result.check,
                    _RANK[row.result.outcome],
                    row.result.scenario,
                    row.result.route,
                )
            )
            groups.append(LayerGroup(layer, in_layer, _counts(row.result for row in in_layer)))
        attention = sorted(
            (row for row in rows if row.result.outcome in (Outcome.FAILED, Outcome.ERROR)),
            key=lambda row: (
                _RANK[row.result.outcome],
                not row.result.required,
                _LAYER_RANK[row.result.layer],
                row.result.check,
                row.result.scenario,
            ),
        )
        causes = []
        for cause in run.root_causes():
            members = [by_id[id(r)] for r in cause.results if id(r) in by_id]
            if not any(r.required for r in cause.results):
                kind = "advisory"
            elif cause.severity is Severity.WARNING:
                kind = "warning"
            else:
                kind = "error"
            causes.append(RootCauseView(cause, members, kind, any(row.gating for row in members)))
        causes.sort(key=lambda c: (not c.gating, c.kind == "advisory"))  # stable: keeps the model's order
        return cls(
            key=key,
            run=run,
            groups=groups,
            attention=attention,
            checks=_registry(run.results, key),
            counts=_counts(run.results),
            advisory_failures=sum(1 for r in run.results if r.outcome is Outcome.FAILED and not r.required),
            root_causes=causes,
            errors=[row for row in attention if row.result.outcome is Outcome.ERROR],
            skipped=[row for row in rows if row.result.outcome is Outcome.SKIPPED],
            operations=property_operations(run),
            providers=ProviderMatrix.from_rows(rows),
        )

    @property
    def headline(self) -> str:
        """``3 root causes (2 errors, 1 warning) in 11 failures, 4 skipped, ...``"""
        return run_headline(self.run)

    @property
    def metadata_items(self) -> list[tuple[str, str]]:
        """Run metadata (versions, options, ...) as text, nested values as compact JSON."""
        return [
            (
                str(key),
                value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False),
            )
            for key, value in sorted(self.run.metadata.items(), key=lambda item: str(item[0]))
            if key != "property_operations" or not self.operations
        ]

    @property
    def started(self) -> str:
        return format_timestamp(self.run.started_at)

    @property
    def finished(self) -> str:
        return format_timestamp(self.run.finished_at)

    @property
    def duration(self) -> str:
        if not self.run.finished_at or not self.run.started_at:
            return "—"
        return format_duration(self.run.finished_at - self.run.started_at)


def provider_family(result: CheckResult) -> str:
    """The scenario name without its route suffix (``chat_basic`` for ``chat_basic[anthropic]``).

    The runner names a per-provider copy ``<scenario>[<dialect>]`` except on the primary route,
    which keeps the plain name; reports see results only, so the suffix is recognised here by the
    result's own ``provider``, not by the scenario table.
    """
    suffix = f"[{result.provider}]"
    if result.provider and result.scenario.endswith(suffix):
        return result.scenario[: -len(suffix)]
    return result.scenario


def provider_routes(results: Iterable[CheckResult]) -> list[str]:
    """The provider routes the results ran on, first seen first; reports split by route only when 2+."""
    return list(dict.fromkeys(r.provider for r in results if r.provider))


def provider_headline(results: Iterable[CheckResult]) -> str | None:
    """One line for a terminal: each provider route's passed and failed checks (None with one route).

    e.g. ``provider routes: openai 412 passed · anthropic 389 passed, 2 failed · gemini 389 passed``
    """
    kept = list(results)
    routes = provider_routes(kept)
    if len(routes) < 2:
        return None
    parts = []
    for route in routes:
        counts = _counts(r for r in kept if r.provider == route)
        text = f"{route} {counts[Outcome.PASSED]} passed"
        for outcome, word in ((Outcome.FAILED, "failed"), (Outcome.ERROR, "not evaluated")):
            if counts[outcome]:
                text += f", {counts[outcome]} {word}"
        parts.append(text)
    return "provider routes: " + " · ".join(parts)


@dataclass(frozen=True)
class ProviderCell:
    """What one scenario did on one provider route: its results' counts and where to read the first failure."""

    provider: str
    counts: dict[Outcome, int]
    #: the anchor of the cell's first failed result (else its first error); empty when none
    anchor: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def judged(self) -> int:
        """Results that were evaluated or skipped: everything but not applicable."""
        return self.total - self.counts[Outcome.NOT_APPLICABLE]

    @property
    def status(self) -> str:
        """The outcome the cell is coloured by: the worst one present (``empty`` without results)."""
        for outcome in OUTCOME_ORDER:
            if self.counts[outcome]:
                return outcome.value
        return "empty"

    @property
    def text(self) -> str:
        """``14 ✓``, ``2 ✗ / 14``, ``1 error / 14``, with skipped and n/a counts in brackets."""
        c = self.counts
        if not self.total:
            return "—"
        bad = [f"{c[Outcome.FAILED]} ✗"] if c[Outcome.FAILED] else []
        if c[Outcome.ERROR]:
            bad.append(f"{c[Outcome.ERROR]} error")
        if bad:
            text = f"{', '.join(bad)} / {self.judged}"
        elif c[Outcome.PASSED]:
            text = f"{c[Outcome.PASSED]} ✓"
        else:
            text = ""
        extra = [
            f"{c[o]} {outcome_label(o) if o is Outcome.SKIPPED else 'n/a'}"
            for o in (Outcome.SKIPPED, Outcome.NOT_APPLICABLE)
            if c[o]
        ]
        if not text:
            return ", ".join(extra)
        return f"{text} ({', '.join(extra)})" if extra else text


@dataclass(frozen=True)
class ProviderRow:
    """One scenario family across the provider routes, one cell per route (in the matrix's column order)."""

    scenario: str
    cells: list[ProviderCell]


@dataclass(frozen=True)
class ProviderTotal:
    """Every per-provider result of one route, summed over the matrix's rows."""

    provider: str
    counts: dict[Outcome, int]

    @property
    def status(self) -> str:
        return ProviderCell(self.provider, self.counts).status

    @property
    def text(self) -> str:
        """``40 passed · 3 failed`` (plus errors when there are some)."""
        c = self.counts
        text = f"{c[Outcome.PASSED]} passed · {c[Outcome.FAILED]} failed"
        return text + (f" · {c[Outcome.ERROR]} error" if c[Outcome.ERROR] else "")


@dataclass(frozen=True)
class ProviderMatrix:
    """The scenarios that ran once per provider route, as scenario rows by provider columns.

    A gateway's translation layer breaks per route (usage lost on one dialect, a stop reason
    mis-mapped on another), so a reader wants to see at a glance which route a failure is on.
    """

    #: the provider routes, in the order the run first reached them
    providers: list[str]
    rows: list[ProviderRow]
    totals: list[ProviderTotal]

    @classmethod
    def from_rows(cls, rows: Iterable[ResultRow]) -> ProviderMatrix | None:
        """The matrix of these result rows (run order), or None when fewer than two routes ran."""
        rows = list(rows)
        providers = provider_routes(row.result for row in rows)
        if len(providers) < 2:
            return None
        cells: dict[str, dict[str, list[ResultRow]]] = {}
        for row in rows:
            if row.result.provider:
                family = cells.setdefault(provider_family(row.result), {})
                family.setdefault(row.result.provider, []).append(row)
        matrix = [
            ProviderRow(
                family, [_provider_cell(provider, by_provider.get(provider, [])) for provider in providers]
            )
            for family, by_provider in cells.items()
        ]
        totals = [
            ProviderTotal(
                provider,
                _counts(
                    row.result for by_provider in cells.values() for row in by_provider.get(provider, [])
                ),
            )
            for provider in providers
        ]
        return cls(providers=providers, rows=matrix, totals=totals)


def _provider_cell(provider: str, rows: list[ResultRow]) -> ProviderCell:
    first = next((row for row in rows if row.result.outcome is Outcome.FAILED), None) or next(
        (row for row in rows if row.result.outcome is Outcome.ERROR), None
    )
    return ProviderCell(provider, _counts(row.result for row in rows), first.anchor if first else "")


def _check_anchor(key: str, layer: Layer, check: str) -> str:
    return f"{key}-check-{layer.value}-{check}"


def _registry(results: Iterable[CheckResult], key: str) -> list[CheckDoc]:
    """The checks that produced results in this run, each once (reports see results, not the registry)."""
    by_name: dict[tuple[Layer, str], list[CheckResult]] = {}
    for result in results:
        by_name.setdefault((result.layer, result.check), []).append(result)
    docs = []
    for (layer, name), of_check in by_name.items():
        description = next((r.description for r in of_check if r.description), "")
        docs.append(
            CheckDoc(
                name=name,
                layer=layer,
                description=description,
                required=any(r.required for r in of_check),
                counts=_counts(of_check),
                anchor=_check_anchor(key, layer, name),
            )
        )
    docs.sort(key=lambda doc: (_LAYER_RANK[doc.layer], doc.name))
    return docs


@dataclass(frozen=True)
class LatencyRow:
    metric: str
    label: str
    summary: LatencySummary

    @property
    def cells(self) -> list[str]:
        s = self.summary
        return [format_ms(v) for v in (s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.max)]


#: the columns of the compression table, shared by summary.md and the HTML page
COMPRESSION_COLUMNS = (
    "endpoint",
    "size",
    "tokens",
    "requests",
    "time_ms p50",
    "time_ms p90",
    "time_ms p99",
    "time_ms max",
    "client p50",
    "client p99",
    "gap p50",
    "gap p99",
    "saved tokens",
    "reduction",
)


@dataclass(frozen=True)
class CompressionRow:
    """One compression cell as a table row: server time_ms percentiles beside the client's latency."""

    cell: CompressionCell

    @property
    def cells(self) -> list[str]:
        c = self.cell
        return [
            c.endpoint,
            c.size,
            f"{c.original_tokens:,}",
            f"{c.count:,}",
            *(format_ms(v) for v in (c.time_ms.p50, c.time_ms.p90, c.time_ms.p99, c.time_ms.max)),
            format_ms(c.latency.p50),
            format_ms(c.latency.p99),
            format_ms(c.gap.p50),
            format_ms(c.gap.p99),
            f"{c.mean_saved_tokens:,.0f}",
            f"{c.mean_reduction:.1f} %",
        ]


@dataclass(frozen=True)
class LoadView:
    """Everything a report shows about one load run."""

    key: str
    load: LoadResult
    latencies: list[LatencyRow] = field(default_factory=list)

    @classmethod
    def from_load(cls, load: LoadResult, key: str = "l") -> LoadView:
        known = [m for m in METRIC_LABELS if m in load.latencies]
        others = sorted(m for m in load.latencies if m not in METRIC_LABELS)
        rows = [
            LatencyRow(m, METRIC_LABELS.get(m, m.replace("_", " ")), load.latencies[m])
            for m in known + others
        ]
        return cls(key=key, load=load, latencies=rows)

    @property
    def problem(self) -> str | None:
        """Why this load run fails the verdict (failed requests, or it broke down), if it does."""
        return load_problem(self.load)

    @property
    def problems(self) -> list[str]:
        """Every reason this load run fails the verdict (an invalid run, failures, breached SLOs, ...)."""
        return load_problems(self.load)

    @property
    def broken(self) -> bool:
        """No usable measurement: it broke down, completed nothing, or the target never answered."""
        return load_is_broken(self.load)

    def _pct(self, metric: str, attr: str) -> str:
        summary = self.load.latencies.get(metric)
        return format_ms(getattr(summary, attr)) if summary is not None else "—"

    @property
    def failures_text(self) -> str:
        load = self.load
        if not load.requests:
            return f"{load.failures:,}"
        return f"{load.failures:,} of {load.requests:,} ({load.failures / load.requests:.2%})"

    @property
    def figures(self) -> list[tuple[str, str]]:
        """The headline figures, in the order of the Markdown summary's load table."""
        return [
            ("req/s", f"{self.load.requests_per_s:,.1f}"),
            ("TTFT p50", self._pct("ttft", "p50")),
            ("TTFT p99", self._pct("ttft", "p99")),
            ("inter-chunk p50", self._pct("inter_chunk", "p50")),
            ("inter-chunk p99", self._pct("inter_chunk", "p99")),
            ("e2e p50", self._pct("e2e", "p50")),
            ("e2e p99", self._pct("e2e", "p99")),
            ("output tok/s", f"{self.load.output_tokens_per_s:,.1f}"),
            ("failures", self.failures_text),
        ]

    @property
    def settings(self) -> list[tuple[str, str]]:
        """How the run was set up and timed, then what it sent (the producer's own settings)."""
        load = self.load
        rows = [
            ("scenario", load.scenario),
            ("base URL", load.base_url),
            ("users", str(load.users)),
            ("spawn rate", f"{load.spawn_rate:g} users/s"),
            *([("locust workers", str(load.workers))] if load.workers > 1 else []),
            ("duration", format_duration(load.duration_s)),
            ("requests", f"{load.requests:,}"),
        ]
        if load.responses or load.requests:
            rows.append(("answered", f"{load.responses:,}"))
        if load.output_tokens:
            rows.append(("output tokens", f"{load.output_tokens:,}"))
        if load.window_s:
            rows.append(("rates measured over", format_duration(load.window_s)))
        rows += [
            ("started", format_timestamp(load.started_at)),
            ("finished", format_timestamp(load.finished_at)),
            ("percentiles from", load.histogram or "—"),
        ]
        rows += sorted(load.settings.items())
        return rows

    @property
    def failure_reasons(self) -> list[tuple[str, int]]:
        return sorted(self.load.failure_reasons.items(), key=lambda item: (-item[1], item[0]))

    @property
    def compression_rows(self) -> list[CompressionRow]:
        """The compression cells (endpoint, then size), empty when the run measured none."""
        section = self.load.compression
        return [CompressionRow(cell) for cell in section.cells] if section is not None else []

    @property
    def compression_note(self) -> str:
        """Where the compression figures come from: this run, or a phase run beside it."""
        section = self.load.compression
        if section is None:
            return ""
        sizes = ", ".join(section.sizes) or "—"
        endpoints = " and ".join(section.endpoints) or "—"
        where = "a separate compression load run" if section.attached else "this run"
        if section.users:
            where += f" ({section.users} users for {format_duration(section.duration_s)})"
        failures = f"{section.failures:,} of {section.requests:,} requests failed"
        return (
            f"From {where}: transcripts of {sizes} tokens sent to {endpoints} with compression on "
            f"({failures}). time_ms is what the gateway reported; client is the latency the load "
            f"user observed for the same requests, send to last byte; gap is their per-request "
            f"difference."
        )
