"""The load section's depth: what a load run measured beyond its headline figures.

A gateway's load report is read for what the gateway *added*, so the paired overhead (the same
seeded schedule sent to a baseline and to the target, matched request by request) comes with its
confidence intervals and next to the timing the mock provider was asked for: an added TTFT of
+250 ms means nothing until one reads that the provider was configured for 100 ms. Around it:
the SLO table (the gate), stream transparency (coalesced, split, missing chunks; buffering), how
the load was offered (an open loop's arrivals, the calibration that says whether this machine
could drive it) and the capacity search.

This module turns those fields of ``LoadResult`` into rows of text, once, for the HTML page and
``summary.md`` alike (``LoadSections.from_load``); each part is absent (``None`` or empty) when the
run did not measure it, and the renderers then leave its section out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateproof.load.results import (
    ArrivalResult,
    Calibration,
    CapacityResult,
    CapacityStep,
    Estimate,
    LatencySummary,
    LoadResult,
    OverheadMetric,
    PairedResult,
    SloOutcome,
    StreamTransparency,
)
from gateproof.reports._view import METRIC_LABELS, format_duration, format_ms
from gateproof.reports.verdict import slo_figure

__all__ = [
    "CAPACITY_COLUMNS",
    "LEG_COLUMNS",
    "OVERHEAD_COLUMNS",
    "SLO_COLUMNS",
    "CapacityRow",
    "CapacityView",
    "EstimateText",
    "Fact",
    "LegRow",
    "LoadSections",
    "OverheadRow",
    "PairedView",
    "SloRow",
    "format_added_ms",
    "format_number",
]

#: the columns of the paired overhead table, shared by summary.md and the HTML page
OVERHEAD_COLUMNS = ("metric", "pairs", "p50", "p90", "p99", "p99.9", "mean")
#: each leg's own figures: the baseline beside the target
LEG_COLUMNS = ("metric", "baseline p50", "target p50", "baseline p99", "target p99")
SLO_COLUMNS = ("objective", "metric", "threshold", "measured", "result")
CAPACITY_COLUMNS = ("offered", "achieved", "requests", "failures", "goodput", "result", "breached")

#: the order overhead metrics are listed in (others follow, by name)
_METRIC_ORDER = ("e2e", "ttft", "ttfb", "inter_chunk")
#: the provider timing keys the mock takes, as a reader names them
_TIMING_LABELS = {
    "ttft_ms": "time to first token",
    "itl_ms": "between tokens",
    "tokens": "output tokens",
}
_OPS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}


def format_number(value: float) -> str:
    """A measured figure without a unit of time: grouped thousands, three significant digits below."""
    if value != value:  # NaN
        return "—"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_added_ms(value: float) -> str:
    """A difference in ms with its sign (``+2.61 ms``, ``-0.40 ms``): negative means the target was faster."""
    sign = "-" if value < 0 else "+"
    if abs(value) < 1:
        # what a fast gateway adds is a fraction of a millisecond: keep three decimals of it
        return f"{sign}{abs(value):.3f} ms"
    return sign + format_ms(abs(value))


def _metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def _ordered(metrics: list[str]) -> list[str]:
    known = [m for m in _METRIC_ORDER if m in metrics]
    return known + sorted(m for m in metrics if m not in _METRIC_ORDER)


@dataclass(frozen=True)
class EstimateText:
    """One figure with its confidence interval, as text (``+2.61 ms``, ``+2.40 ms to +2.85 ms``)."""

    value: str
    interval: str
    #: the interval excludes 0: the target really added (or saved) this
    real: bool

    @classmethod
    def of(cls, estimate: Estimate) -> EstimateText:
        return cls(
            value=format_added_ms(estimate.value),
            interval=f"{format_added_ms(estimate.low)} to {format_added_ms(estimate.high)}",
            real=estimate.excludes_zero,
        )

    @property
    def text(self) -> str:
        """``+2.61 ms (+2.40 ms to +2.85 ms)``, one cell of a Markdown table."""
        return f"{self.value} ({self.interval})"


@dataclass(frozen=True)
class OverheadRow:
    """What the target added to one metric: percentiles of the paired differences, each with its interval."""

    metric: str
    label: str
    pairs: int
    p50: EstimateText
    p90: EstimateText
    p99: EstimateText
    p999: EstimateText
    mean: EstimateText

    @classmethod
    def of(cls, overhead: OverheadMetric) -> OverheadRow:
        return cls(
            metric=overhead.metric,
            label=_metric_label(overhead.metric),
            pairs=overhead.count,
            p50=EstimateText.of(overhead.p50),
            p90=EstimateText.of(overhead.p90),
            p99=EstimateText.of(overhead.p99),
            p999=EstimateText.of(overhead.p999),
            mean=EstimateText.of(overhead.mean),
        )

    @property
    def estimates(self) -> list[EstimateText]:
        """The estimates in the order of ``OVERHEAD_COLUMNS[2:]``."""
        return [self.p50, self.p90, self.p99, self.p999, self.mean]


@dataclass(frozen=True)
class LegRow:
    """One metric on each leg alone: the baseline's percentiles beside the target's."""

    metric: str
    label: str
    baseline: LatencySummary
    #: None when the target's own figures lack the metric
    target: LatencySummary | None

    @property
    def cells(self) -> list[str]:
        """The figures in the order of ``LEG_COLUMNS[1:]``."""
        b, t = self.baseline, self.target
        return [
            format_ms(b.p50),
            format_ms(t.p50 if t else None),
            format_ms(b.p99),
            format_ms(t.p99 if t else None),
        ]


@dataclass(frozen=True)
class Fact:
    """A labelled figure; ``flag`` marks one a reader should look at (a chunk coalesced, a late send)."""

    label: str
    value: str
    flag: bool = False
    #: a stable name for tooling (tests, the DOM)
    key: str = ""


@dataclass(frozen=True)
class PairedView:
    """The paired overhead: the rows, each leg on its own, and what the provider was asked for."""

    paired: PairedResult
    rows: list[OverheadRow]
    legs: list[LegRow]
    #: the provider's configured timing, as labelled figures (``time to first token: 100 ms``)
    timing: list[Fact]

    @classmethod
    def of(cls, paired: PairedResult, target: dict[str, LatencySummary]) -> PairedView:
        rows = [OverheadRow.of(paired.metrics[m]) for m in _ordered(list(paired.metrics))]
        legs = [
            LegRow(m, _metric_label(m), paired.baseline[m], target.get(m))
            for m in _ordered(list(paired.baseline))
        ]
        timing = [
            Fact(
                _TIMING_LABELS.get(name, name.replace("_", " ")),
                format_ms(value) if name.endswith("_ms") else format_number(value),
                key=name,
            )
            for name, value in paired.provider_timing.items()
        ]
        return cls(paired=paired, rows=rows, legs=legs, timing=timing)

    @property
    def timing_text(self) -> str:
        """``time to first token 100 ms, between tokens 20.0 ms, output tokens 64`` (empty if unknown)."""
        return ", ".join(f"{fact.label} {fact.value}" for fact in self.timing)

    @property
    def note(self) -> str:
        """Where the figures come from, in one paragraph."""
        p = self.paired
        model = f" (model {p.baseline_model})" if p.baseline_model else ""
        text = (
            f"The same seeded schedule was sent to the baseline {p.baseline_url}{model} and to the "
            f"target, interleaved in one run and matched request by request: {p.pairs:,} pairs where "
            f"both legs succeeded"
        )
        if p.unmatched:
            text += f", {p.unmatched:,} left out because a leg failed"
        text += (
            f". Each figure is a percentile of the per-pair difference (target minus baseline; "
            f"negative: the target was faster) with its {p.confidence:.0%} bootstrap interval"
        )
        if p.resamples:
            text += f" ({p.resamples:,} resamples)"
        return text + "."

    @property
    def baseline_failures_text(self) -> str:
        p = self.paired
        if not p.baseline_failures:
            return ""
        top = sorted(p.baseline_failure_reasons.items(), key=lambda item: (-item[1], item[0]))[:3]
        reasons = ", ".join(f"{count:,} x {reason}" for reason, count in top)
        text = f"{p.baseline_failures:,} of {p.baseline_requests:,} baseline requests failed"
        return text + (f" ({reasons})" if reasons else "")


@dataclass(frozen=True)
class SloRow:
    """One objective of the SLO file: its threshold, what was measured, PASS or FAIL."""

    outcome: SloOutcome

    @property
    def name(self) -> str:
        return self.outcome.name or self.outcome.metric

    @property
    def threshold(self) -> str:
        o = self.outcome
        return f"{_OPS.get(o.op, o.op)} {slo_figure(o.threshold, o.unit)}"

    @property
    def measured(self) -> str:
        o = self.outcome
        return "not measured" if o.value is None else slo_figure(o.value, o.unit)

    @property
    def met(self) -> bool:
        return self.outcome.met

    @property
    def result(self) -> str:
        return "PASS" if self.outcome.met else "FAIL"

    @property
    def cells(self) -> list[str]:
        """The cells in the order of ``SLO_COLUMNS``."""
        return [self.name, self.outcome.metric, self.threshold, self.measured, self.result]


@dataclass(frozen=True)
class CapacityRow:
    """One offered rate of the capacity search."""

    step: CapacityStep

    @property
    def status(self) -> str:
        """``met``, ``breached`` or ``invalid`` (the generator could not keep the schedule)."""
        if self.step.invalid:
            return "invalid"
        return "met" if self.step.met else "breached"

    @property
    def cells(self) -> list[str]:
        """The cells in the order of ``CAPACITY_COLUMNS``."""
        s = self.step
        result = {"met": "PASS", "breached": "FAIL", "invalid": f"invalid: {s.invalid}"}[self.status]
        return [
            f"{format_number(s.rate)} req/s",
            f"{format_number(s.achieved_rate)} req/s",
            f"{s.requests:,}",
            f"{s.failures:,}",
            f"{format_number(s.goodput)} req/s",
            result,
            ", ".join(s.breaches) or "—",
        ]


@dataclass(frozen=True)
class CapacityView:
    """The capacity search: each step, and the highest rate that met every SLO."""

    capacity: CapacityResult
    rows: list[CapacityRow]

    @property
    def figure(self) -> str:
        """``180 req/s (goodput 179 req/s)``, or why there is none."""
        c = self.capacity
        if c.capacity_rate is None:
            return "none: no offered rate met every SLO, not even the first step"
        return f"{format_number(c.capacity_rate)} req/s (goodput {format_number(c.goodput)} req/s)"

    @property
    def note(self) -> str:
        c = self.capacity
        steps = f"{len(c.steps):,} step{'s' if len(c.steps) != 1 else ''}"
        duration = f" of {format_duration(c.step_duration_s)} each" if c.step_duration_s else ""
        return (
            f"The arrival rate was stepped up ({steps}{duration}) until an SLO broke; the capacity is "
            f"the highest offered rate that met every SLO, goodput the successful requests per second there."
        )


def _transparency(section: StreamTransparency) -> list[Fact]:
    facts = [
        Fact("streams", f"{section.streams:,}", key="streams"),
        Fact("chunks", f"{section.chunks:,}", key="chunks"),
        Fact("coalesced", f"{section.coalesced:,}", flag=section.coalesced > 0, key="coalesced"),
        Fact("split", f"{section.split:,}", flag=section.split > 0, key="split"),
        Fact("missing", f"{section.missing:,}", flag=section.missing > 0, key="missing"),
        Fact(
            "buffered streams",
            f"{section.buffered_streams:,}",
            flag=section.buffered_streams > 0,
            key="buffered_streams",
        ),
    ]
    for key, label, summary in (
        ("chunk_delay", "chunk delay (target)", section.chunk_delay),
        ("baseline_chunk_delay", "chunk delay (baseline)", section.baseline_chunk_delay),
    ):
        if summary is not None:
            facts.append(Fact(label, f"p50 {format_ms(summary.p50)} · p99 {format_ms(summary.p99)}", key=key))
    added = section.added_chunk_delay
    if added is not None:
        p50, p99 = EstimateText.of(added.p50), EstimateText.of(added.p99)
        facts.append(
            Fact(
                "added chunk delay",
                f"p50 {p50.text} · p99 {p99.text}",
                flag=p50.real and added.p50.value > 0,
                key="added_chunk_delay",
            )
        )
    return facts


def _arrivals(arrivals: ArrivalResult) -> list[Fact]:
    facts = [
        Fact("mode", f"open loop, {arrivals.mode} arrivals (seed {arrivals.seed})", key="mode"),
        Fact("offered rate", f"{format_number(arrivals.offered_rate)} req/s", key="offered_rate"),
        Fact("achieved rate", f"{format_number(arrivals.achieved_rate)} req/s", key="achieved_rate"),
        Fact("sent", f"{arrivals.sent:,} of {arrivals.scheduled:,} scheduled", key="sent"),
        Fact(
            "late sends",
            f"{arrivals.late_sends:,} (over {format_ms(arrivals.late_threshold_ms)} after their time)",
            flag=arrivals.late_sends > 0,
            key="late_sends",
        ),
    ]
    lag = arrivals.lag
    if lag is not None:
        facts.append(
            Fact(
                "send lag",
                f"p50 {format_ms(lag.p50)} · p99 {format_ms(lag.p99)} · max {format_ms(lag.max)}",
                key="lag",
            )
        )
    return facts


def _calibration(calibration: Calibration) -> list[Fact]:
    safe = calibration.max_rate * calibration.safe_fraction
    facts = [
        Fact("measured against", calibration.url, key="url"),
        Fact("generator maximum", f"{format_number(calibration.max_rate)} req/s", key="max_rate"),
        Fact(
            "safe rate",
            f"{format_number(safe)} req/s ({calibration.safe_fraction:.0%} of the maximum)",
            key="safe_rate",
        ),
        Fact("offered rate", f"{format_number(calibration.offered_rate)} req/s", key="offered_rate"),
        Fact(
            "valid",
            "yes" if calibration.valid else "no: the offered rate is beyond what this machine drives safely",
            flag=not calibration.valid,
            key="valid",
        ),
    ]
    if calibration.detail:
        facts.append(Fact("detail", calibration.detail, key="detail"))
    return facts


@dataclass(frozen=True)
class LoadSections:
    """Every depth section of one load run; each absent (None / empty) when not measured."""

    #: why the run is not a valid measurement (empty: valid)
    invalid: str = ""
    slos: list[SloRow] = field(default_factory=list)
    slo_file: str = ""
    paired: PairedView | None = None
    transparency: list[Fact] = field(default_factory=list)
    arrivals: list[Fact] = field(default_factory=list)
    calibration: list[Fact] = field(default_factory=list)
    capacity: CapacityView | None = None

    @classmethod
    def from_load(cls, load: LoadResult) -> LoadSections:
        capacity = load.capacity
        return cls(
            invalid=load.invalid,
            slos=[SloRow(outcome) for outcome in load.slos],
            slo_file=load.slo_file,
            paired=PairedView.of(load.paired, load.latencies) if load.paired is not None else None,
            transparency=_transparency(load.transparency) if load.transparency is not None else [],
            arrivals=_arrivals(load.arrivals) if load.arrivals is not None else [],
            calibration=_calibration(load.calibration) if load.calibration is not None else [],
            capacity=CapacityView(capacity, [CapacityRow(s) for s in capacity.steps])
            if capacity is not None
            else None,
        )

    @property
    def slo_breaches(self) -> int:
        return sum(1 for row in self.slos if not row.met)

    @property
    def slo_headline(self) -> str:
        """``2 of 5 breached``, ``all 5 met`` or ``met`` (a single objective)."""
        total = len(self.slos)
        if self.slo_breaches:
            return f"{self.slo_breaches:,} of {total:,} breached"
        return f"all {total:,} met" if total > 1 else "met"
