"""The verdict of a run: one definition, read by the exit code of ``gateproof run`` and by every report.

A run is judged from what it produced, a contract run and/or a load run
(``verdict_of(run, load)``), into one of three statuses:

- **FAIL** (exit 1; 3 when the target was unreachable, 130 when interrupted): the contract run
  does not pass (``RunResult.passed``: a required check failed with severity error, or could not
  be evaluated; with ``--strict`` (``RunResult.strict``) a warning too; or the run was
  interrupted, the target unreachable, or no check ran at all), or the load run failed: any request failed, no
  request completed, the target never answered, or the load run broke down (``LoadResult.error``);
  the load run is invalid (``LoadResult.invalid``: the load generator, not the target, was the
  bottleneck, so its figures measure this machine and prove nothing about the target, as an
  interrupted contract run proves nothing); or an objective of its SLO file was breached
  (``LoadResult.slos``: one outcome not ``met``, an unmeasured metric included). Exit 1 in each
  case: ``gateproof run`` has one failing code; ``gateproof load`` keeps its own distinct codes for
  a breached SLO and an invalid run (``gateproof.load._exit_codes``). The rates a capacity search
  stepped through breach SLOs by design (it stops at the first that does), so its steps never
  change the verdict; only the run's own ``slos`` do. A broken load run (no usable measurement)
  is reported as broken alone: its SLOs and validity are moot.
- **NEEDS ATTENTION** (exit 0): nothing fails the run, but something should be read: a warning
  (a failure the official clients tolerate; ``--strict`` makes it fail), a failed or errored
  advisory (non-required) check.
- **PASS** (exit 0): none of the above.

Skipped results (moot because a check they depend on failed on the same answer) and results
outside the profile (not applicable) never change the verdict. The contract part is the
results model's own rule (``RunResult.passed`` / ``exit_code``), so ``gateproof contract``,
which exits with ``run.exit_code()``, and a contract-only verdict can never disagree.

The HTML banner, the Markdown headline, the JUnit document (a failing ``<failure>`` or
``<error>`` exactly when the verdict is FAIL) and the exit code all come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateproof.contract.results import Outcome, RunResult, Severity
from gateproof.load.results import LoadResult, SloOutcome

__all__ = [
    "Verdict",
    "VerdictStatus",
    "load_is_broken",
    "load_problem",
    "load_problems",
    "run_headline",
    "slo_figure",
    "slo_text",
    "verdict_of",
]


class VerdictStatus(StrEnum):
    PASS = "pass"
    #: nothing fails the run, but warnings or advisory failures want reading
    ATTENTION = "attention"
    FAIL = "fail"


_LABELS = {
    VerdictStatus.PASS: "PASS",
    VerdictStatus.ATTENTION: "NEEDS ATTENTION",
    VerdictStatus.FAIL: "FAIL",
}
_ICONS = {VerdictStatus.PASS: "✅", VerdictStatus.ATTENTION: "⚠️", VerdictStatus.FAIL: "❌"}


def _plural(count: int, word: str, plural: str = "") -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


@dataclass(frozen=True)
class Verdict:
    """What a run amounts to, and why (one line per reason)."""

    status: VerdictStatus
    exit_code: int
    #: why the run fails, most important first (empty unless FAIL)
    failures: tuple[str, ...] = ()
    #: what wants reading without failing the run (also listed on a FAIL)
    notes: tuple[str, ...] = ()
    #: warnings fail the run (``--strict``)
    strict: bool = False

    @property
    def label(self) -> str:
        """``PASS``, ``NEEDS ATTENTION`` or ``FAIL``."""
        return _LABELS[self.status]

    @property
    def icon(self) -> str:
        return _ICONS[self.status]

    @property
    def passed(self) -> bool:
        """Not a failure: the exit code is 0 (PASS or NEEDS ATTENTION)."""
        return self.status is not VerdictStatus.FAIL

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.failures + self.notes

    @property
    def detail(self) -> str:
        """Why the verdict is what it is, in one clause."""
        if self.failures:
            return self.failures[0]
        if self.notes:
            return self.notes[0]
        return "every applicable required check passed" + (" (strict)" if self.strict else "")


def load_problem(load: LoadResult) -> str | None:
    """The first reason a load run fails the verdict (see ``load_problems``), or None."""
    problems = load_problems(load)
    return problems[0] if problems else None


def load_problems(load: LoadResult) -> list[str]:
    """Every reason a load run fails the verdict, most fundamental first; empty when it passes.

    A broken run (it broke down, completed nothing, or the target never answered) has that one
    reason; otherwise an invalid run, failed requests, breached SLOs and a failed attached
    compression phase each add theirs.
    """
    if load.error:
        return [f"the load run broke down: {load.error}"]
    if load.requests == 0:
        return ["no request completed during the load run"]
    if load.responses == 0 and load.failures >= load.requests:
        return [f"the target never answered ({load.requests:,} requests, no HTTP response)"]
    problems = []
    if load.invalid:
        problems.append(f"the run is invalid (the load generator was the bottleneck): {load.invalid}")
    if load.failures:
        top = sorted(load.failure_reasons.items(), key=lambda item: (-item[1], item[0]))[:3]
        reasons = ", ".join(f"{count:,} x {reason}" for reason, count in top)
        problems.append(
            f"{load.failures:,} of {load.requests:,} requests failed" + (f" ({reasons})" if reasons else "")
        )
    breached = _slo_problem(load)
    if breached is not None:
        problems.append(breached)
    compression = _attached_compression_problem(load)
    if compression is not None:
        problems.append(compression)
    return problems


def slo_figure(value: float, unit: str) -> str:
    """An SLO's threshold or measured value in its unit: ``7.2 ms``, ``0.1 %`` (a ratio), ``150 req/s``.

    One rule for the verdict's reason and the SLO tables, so both print the same figure.
    """
    if unit == "ratio":
        return f"{value * 100:.3g} %"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} {unit}" if unit else text


def slo_text(outcome: SloOutcome) -> str:
    """``p99 added TTFT: 7.2 ms > 5 ms`` (or ``not measured``), one breached or met objective."""
    name = outcome.name or outcome.metric
    threshold = slo_figure(outcome.threshold, outcome.unit)
    if outcome.value is None:
        return f"{name}: not measured (owed {outcome.op} {threshold})"
    op = outcome.op if outcome.met else _BROKEN_OP.get(outcome.op, f"not {outcome.op}")
    return f"{name}: {slo_figure(outcome.value, outcome.unit)} {op} {threshold}"


#: how a breached objective reads: the measured value on the wrong side of the threshold
_BROKEN_OP = {"<=": ">", ">=": "<", "<": ">=", ">": "<="}


def _slo_problem(load: LoadResult) -> str | None:
    breached = [outcome for outcome in load.slos if not outcome.met]
    if not breached:
        return None
    listed = "; ".join(slo_text(outcome) for outcome in breached[:3])
    more = f"; {len(breached) - 3:,} more" if len(breached) > 3 else ""
    return f"{len(breached):,} of {_plural(len(load.slos), 'SLO')} breached ({listed}{more})"


def _attached_compression_problem(load: LoadResult) -> str | None:
    """Why a compression phase run beside this load run (``gateproof run``) fails the verdict.

    A compression section that belongs to the run itself is judged with the run's own counts
    above; an attached one comes from a separate run whose counts are only here.
    """
    section = load.compression
    if section is None or not section.attached:
        return None
    if section.error:
        return f"the compression load phase broke down: {section.error}"
    if section.requests == 0:
        return "no request completed during the compression load phase"
    if section.failures:
        top = sorted(section.failure_reasons.items(), key=lambda item: (-item[1], item[0]))[:3]
        reasons = ", ".join(f"{count:,} x {reason}" for reason, count in top)
        return f"{section.failures:,} of {section.requests:,} compression requests failed" + (
            f" ({reasons})" if reasons else ""
        )
    return None


def load_is_broken(load: LoadResult) -> bool:
    """The load run produced no usable measurement (an error, not failed requests)."""
    return bool(load.error) or load.requests == 0 or (load.responses == 0 and load.failures >= load.requests)


def run_headline(run: RunResult) -> str:
    """The counts a reader wants first, root causes before raw failures.

    e.g. ``3 root causes (2 errors, 1 warning) in 11 failures, 4 skipped, 1 not evaluated,
    240 passed, 2 not applicable``; a root cause none of whose failures is of a required
    check counts as ``advisory`` instead of by severity.
    """
    counts = run.counts
    causes = run.root_causes()
    failures = counts.get(Outcome.FAILED.value, 0)
    parts = []
    if causes:
        kinds = {"error": 0, "warning": 0, "advisory": 0}
        for cause in causes:
            if not any(r.required for r in cause.results):
                kinds["advisory"] += 1
            elif cause.severity is Severity.WARNING:
                kinds["warning"] += 1
            else:
                kinds["error"] += 1
        inside = ", ".join(_plural(n, kind) for kind, n in kinds.items() if n)
        parts.append(f"{_plural(len(causes), 'root cause')} ({inside}) in {_plural(failures, 'failure')}")
    else:
        parts.append("no failures")
    parts.append(f"{counts.get(Outcome.SKIPPED.value, 0):,} skipped")
    errors = counts.get(Outcome.ERROR.value, 0)
    if errors:
        parts.append(f"{errors:,} not evaluated (error)")
    parts.append(f"{counts.get(Outcome.PASSED.value, 0):,} passed")
    not_applicable = counts.get(Outcome.NOT_APPLICABLE.value, 0)
    if not_applicable:
        parts.append(f"{not_applicable:,} not applicable")
    return ", ".join(parts)


def _run_failures(run: RunResult) -> list[str]:
    if run.interrupted:
        return [
            f"interrupted before it finished ({_plural(len(run.results), 'result')} recorded); not a pass"
        ]
    lines = []
    if run.unreachable is not None:
        lines.append(f"target unreachable: {run.unreachable}")
    if not run.results and run.unreachable is None:
        lines.append("no check ran: an empty run is not a pass")
    gating = run.gating_failures
    if not gating:
        return lines
    failed = [r for r in gating if r.outcome is Outcome.FAILED]
    warnings = [r for r in failed if r.severity is Severity.WARNING]
    errored = [r for r in gating if r.outcome is Outcome.ERROR]
    if failed:
        ids = {id(r) for r in failed}
        causes = [c for c in run.root_causes() if any(id(r) in ids for r in c.results)]
        verb = "fails" if len(causes) == 1 else "fail"
        text = f"{_plural(len(causes), 'root cause')} {verb} the run ({_plural(len(failed), 'failure')} of required checks"
        if warnings:
            text += f", {_plural(len(warnings), 'warning')} counted by --strict"
        lines.append(text + ")")
    if errored:
        lines.append(f"{_plural(len(errored), 'required check result')} could not be evaluated (error)")
    return lines


def _run_notes(run: RunResult) -> list[str]:
    if run.interrupted or run.unreachable is not None:
        return []
    lines = []
    if not run.strict and run.warnings:
        warnings = [r for r in run.warnings if r.required]
        if warnings:
            ids = {id(r) for r in warnings}
            causes = [c for c in run.root_causes() if any(id(r) in ids for r in c.results)]
            lines.append(
                f"{_plural(len(warnings), 'warning')} ({_plural(len(causes), 'root cause')}): tolerated by the "
                "official clients, not gating (--strict fails them)"
            )
    advisory_failed = [r for r in run.results if not r.required and r.outcome is Outcome.FAILED]
    if advisory_failed:
        lines.append(f"{_plural(len(advisory_failed), 'advisory check failure')}: reported, not gating")
    advisory_errors = [r for r in run.results if not r.required and r.outcome is Outcome.ERROR]
    if advisory_errors:
        lines.append(f"{_plural(len(advisory_errors), 'advisory check result')} could not be evaluated")
    return lines


def verdict_of(run: RunResult | None, load: LoadResult | None) -> Verdict:
    """The one verdict of a contract run and/or a load run (see the module docstring)."""
    failures: list[str] = []
    notes: list[str] = []
    code = 0
    if run is not None:
        failures += _run_failures(run)
        notes += _run_notes(run)
        code = run.exit_code()
    if load is not None:
        problems = load_problems(load)
        failures += [f"load: {problem}" for problem in problems]
        if problems:
            code = code or 1
    if run is None and load is None:
        notes.append("nothing ran: no contract run and no load run")
    if failures or code:
        status = VerdictStatus.FAIL
        code = code or 1
    elif notes:
        status = VerdictStatus.ATTENTION
    else:
        status = VerdictStatus.PASS
    return Verdict(
        status=status,
        exit_code=code,
        failures=tuple(failures),
        notes=tuple(notes),
        strict=run.strict if run is not None else False,
    )
