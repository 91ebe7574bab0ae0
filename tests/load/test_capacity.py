"""Capacity search: where it stops, what it reports, and how a rate list is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateproof.load._capacity import (
    FAILURE_BUDGET,
    MAX_STEPS,
    describe_capacity,
    parse_rates,
    search_capacity,
)
from gateproof.load._slo import Slo
from gateproof.load.results import ArrivalResult, CapacityResult, LatencySummary, LoadResult


def _step_result(
    rate: float,
    *,
    p99: float,
    failures: int = 0,
    invalid: str = "",
    error: str = "",
    requests: int | None = None,
) -> LoadResult:
    """What an open-loop step at ``rate`` for 10 s would report, with a chosen e2e p99."""
    count = int(rate * 10) if requests is None else requests
    return LoadResult(
        scenario="chat",
        base_url="http://127.0.0.1:1/v1",
        users=0,
        spawn_rate=0.0,
        duration_s=10.0,
        requests=count,
        failures=failures,
        requests_per_s=count / 10.0,
        latencies={"e2e": LatencySummary("e2e", count, 1.0, 2.0, 2.0, 3.0, 4.0, p99, p99)} if count else {},
        arrivals=ArrivalResult("constant", rate, 1, scheduled=count, sent=count, achieved_rate=rate * 0.99),
        invalid=invalid,
        error=error,
    )


class Target:
    """A fake target whose e2e p99 grows with the rate, past a knee; records the rates it was run at."""

    def __init__(self, knee: float, at: dict[str, dict[str, Any]] | None = None) -> None:
        self.knee = knee
        self.at = at or {}
        self.rates: list[float] = []

    def __call__(self, rate: float) -> LoadResult:
        self.rates.append(rate)
        p99 = 10.0 if rate <= self.knee else 10.0 + (rate - self.knee)
        overrides = self.at.get(f"{rate:g}", {})
        return _step_result(rate, p99=p99, **overrides)


P99_UNDER_20 = [Slo("e2e.p99", "<=", 20.0)]


def test_the_search_stops_at_the_first_breach_and_keeps_the_last_rate_that_held() -> None:
    target = Target(knee=100.0)
    capacity = search_capacity([50, 100, 150, 200], target, P99_UNDER_20, max_failure_ratio=0.01)
    # 150 req/s: p99 60 ms breaks the SLO; 200 is never run
    assert target.rates == [50, 100, 150]
    assert [(s.rate, s.met, s.breaches) for s in capacity.steps] == [
        (50, True, []),
        (100, True, []),
        (150, False, ["e2e.p99"]),
    ]
    assert capacity.capacity_rate == 100
    assert capacity.goodput == pytest.approx(100.0)
    assert capacity.step_duration_s == 10.0
    assert capacity.steps[1].achieved_rate == pytest.approx(99.0)
    assert describe_capacity(capacity) == (
        "capacity 100 req/s (goodput 100.0 successful req/s); 150 req/s breached e2e.p99"
    )


def test_rates_are_run_lowest_first_whatever_order_they_come_in() -> None:
    target = Target(knee=1000.0)
    capacity = search_capacity([200, 50, 100], target, P99_UNDER_20, max_failure_ratio=0.0)
    assert target.rates == [50, 100, 200]
    assert capacity.capacity_rate == 200


def test_failures_over_the_budget_stop_the_search_and_goodput_counts_successes_only() -> None:
    # 100 req/s for 10 s = 1000 requests; 5 failures is 0.5 %, 30 failures 3 %
    target = Target(knee=1000.0, at={"100": {"failures": 5}, "150": {"failures": 30}})
    capacity = search_capacity([100, 150, 200], target, P99_UNDER_20, max_failure_ratio=0.01)
    assert target.rates == [100, 150]
    assert capacity.steps[0].met and capacity.steps[0].goodput == pytest.approx(99.5)
    assert capacity.steps[1].breaches == [FAILURE_BUDGET]
    assert capacity.steps[1].goodput == pytest.approx(150.0 * 1470 / 1500)
    assert capacity.capacity_rate == 100 and capacity.goodput == pytest.approx(99.5)


def test_the_failure_budget_is_inclusive() -> None:
    target = Target(knee=1000.0, at={"100": {"failures": 10}})
    capacity = search_capacity([100], target, P99_UNDER_20, max_failure_ratio=0.01)
    assert capacity.steps[0].met and capacity.capacity_rate == 100


def test_an_slo_breach_and_the_failure_budget_are_both_listed() -> None:
    target = Target(knee=50.0, at={"100": {"failures": 500}})
    capacity = search_capacity([100], target, P99_UNDER_20, max_failure_ratio=0.1)
    assert capacity.steps[0].breaches == ["e2e.p99", FAILURE_BUDGET]


def test_an_invalid_step_is_recorded_stops_the_search_and_leaves_capacity_at_least_the_last_good_rate() -> (
    None
):
    why = "late sends: 40 % of sends over 10 ms late"
    target = Target(knee=1000.0, at={"150": {"invalid": why}})
    capacity = search_capacity([50, 100, 150, 200], target, P99_UNDER_20, max_failure_ratio=0.01)
    assert target.rates == [50, 100, 150]
    last = capacity.steps[-1]
    # the step met the SLO by its figures, but they measured the generator: not a pass
    assert (last.rate, last.met, last.breaches, last.invalid) == (150, False, [], why)
    assert capacity.capacity_rate == 100
    assert describe_capacity(capacity) == (
        f"capacity is at least 100 req/s (goodput 100.0 successful req/s); at 150 req/s the step is invalid ({why})"
    )


def test_a_step_that_broke_down_counts_as_invalid() -> None:
    target = Target(knee=1000.0, at={"100": {"error": "locust exited with code 1"}})
    capacity = search_capacity([50, 100, 150], target, P99_UNDER_20, max_failure_ratio=0.01)
    assert capacity.steps[-1].invalid == "the run broke down: locust exited with code 1"
    assert capacity.capacity_rate == 50


def test_a_first_step_that_breaches_finds_no_capacity() -> None:
    target = Target(knee=10.0)
    capacity = search_capacity([50, 100], target, P99_UNDER_20, max_failure_ratio=0.01)
    assert target.rates == [50]
    assert capacity.capacity_rate is None and capacity.goodput == 0.0
    assert describe_capacity(capacity) == "no capacity found: the first step, 50 req/s breached e2e.p99"


def test_a_first_step_that_is_invalid_finds_no_capacity() -> None:
    target = Target(knee=1000.0, at={"50": {"invalid": "calibration: 50 req/s is over 80 % of 40 req/s"}})
    capacity = search_capacity([50, 100], target, P99_UNDER_20, max_failure_ratio=0.01)
    assert capacity.capacity_rate is None
    assert describe_capacity(capacity).startswith("no capacity found: at 50 req/s the step is invalid")


def test_when_every_step_holds_the_capacity_is_at_least_the_highest_rate() -> None:
    capacity = search_capacity([50, 100], Target(knee=1000.0), P99_UNDER_20, max_failure_ratio=0.0)
    assert capacity.capacity_rate == 100 and all(step.met for step in capacity.steps)
    assert describe_capacity(capacity) == (
        "every step held: capacity is at least 100 req/s (goodput 100.0 successful req/s), the highest rate tried"
    )


def test_an_slo_the_step_cannot_measure_breaches_it() -> None:
    """A closed-loop-only figure, or a paired one without a baseline, is not a pass."""
    capacity = search_capacity(
        [50], Target(knee=1000.0), [Slo("overhead.e2e.p99", "<=", 1e9)], max_failure_ratio=1.0
    )
    assert capacity.steps[0].breaches == ["overhead.e2e.p99"]
    assert capacity.capacity_rate is None


def test_a_step_with_no_requests_is_over_any_budget_below_one() -> None:
    target = Target(knee=1000.0, at={"50": {"requests": 0}})
    capacity = search_capacity([50], target, [], max_failure_ratio=0.5)
    assert capacity.steps[0].breaches == [FAILURE_BUDGET] and capacity.steps[0].goodput == 0.0


def test_without_arrivals_the_achieved_rate_is_the_request_rate() -> None:
    def closed(rate: float) -> LoadResult:
        result = _step_result(rate, p99=1.0)
        result.arrivals = None
        return result

    capacity = search_capacity([50], closed, P99_UNDER_20, max_failure_ratio=0.0)
    assert capacity.steps[0].achieved_rate == 50.0


def test_the_capacity_survives_the_results_file() -> None:
    capacity = search_capacity([50, 100, 150], Target(knee=100.0), P99_UNDER_20, max_failure_ratio=0.01)
    result = _step_result(100, p99=10.0)
    result.capacity = capacity
    again = LoadResult.from_dict(result.to_dict())
    assert again.capacity == capacity


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ([], r"needs at least one rate"),
        ([50, 0], r"rates must be positive numbers, got 0"),
        ([50, -5, float("nan")], r"rates must be positive numbers, got -5, nan"),
        ([50, 100, 50], r"rate 50 is given twice"),
    ],
)
def test_bad_rates_are_refused_before_any_step_runs(rates: list[float], message: str) -> None:
    target = Target(knee=1000.0)
    with pytest.raises(ValueError, match=message):
        search_capacity(rates, target, P99_UNDER_20, max_failure_ratio=0.0)
    assert target.rates == []


def test_a_failure_budget_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match=r"max_failure_ratio must be between 0 and 1, got 1\.5"):
        search_capacity([50], Target(knee=1000.0), [], max_failure_ratio=1.5)


def test_describe_an_empty_search() -> None:
    assert describe_capacity(CapacityResult()) == "no capacity step was run"


# -- parse_rates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rates"),
    [
        ("50:400:50", (50, 100, 150, 200, 250, 300, 350, 400)),
        (" 50 : 200 : 75 ", (50, 125, 200)),
        ("50:220:75", (50, 125, 200)),  # the stop is included only when a step lands on it
        ("10:10:5", (10,)),
        ("0.1:0.3:0.1", (0.1, 0.2, 0.3)),  # floating-point steps keep their stop
        ("0.5:2.5:0.5", (0.5, 1.0, 1.5, 2.0, 2.5)),
        ("50,100,200", (50, 100, 200)),
        ("50, 100 ,200.5", (50, 100, 200.5)),
        ("75", (75,)),
    ],
)
def test_parse_rates_reads_ranges_and_lists(text: str, rates: tuple[float, ...]) -> None:
    assert parse_rates(text) == pytest.approx(rates)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"rates: none given \(write start:stop:step"),
        ("   ", r"rates: none given"),
        ("50:400", r"rates '50:400': a range is start:stop:step, e\.g\. 50:400:50"),
        ("50:400:50:1", r"a range is start:stop:step"),
        ("fifty:400:50", r"rates 'fifty:400:50': start 'fifty' is not a number"),
        ("50:400:0", r"rates '50:400:0': step must be a positive number, got '0'"),
        ("50:400:-50", r"step must be a positive number, got '-50'"),
        ("0:400:50", r"start must be a positive number, got '0'"),
        ("50:inf:50", r"stop must be a positive number, got 'inf'"),
        ("400:50:50", r"rates '400:50:50': stop 50 is below start 400"),
        ("1:1000:1", rf"rates '1:1000:1': 1000 steps; at most {MAX_STEPS}"),
        ("50,,100", r"rates '50,,100': rate '' is not a number"),
        ("50,100x", r"rate '100x' is not a number"),
        ("50,-1", r"rate must be a positive number, got '-1'"),
        ("50,nan", r"rate must be a positive number, got 'nan'"),
        ("100,50", r"rates '100,50': must ascend, but 50 follows 100"),
        ("50,50", r"must ascend, but 50 follows 50"),
        (",".join(str(i) for i in range(1, 102)), rf"101 steps; at most {MAX_STEPS}"),
    ],
)
def test_parse_rates_explains_every_mistake(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rates(text)


def test_parse_rates_output_feeds_the_search() -> None:
    run: Callable[[float], LoadResult] = Target(knee=175.0)
    capacity = search_capacity(parse_rates("50:400:50"), run, P99_UNDER_20, max_failure_ratio=0.0)
    # knee 175: 200 req/s gives p99 35 ms > 20
    assert capacity.capacity_rate == 150 and [s.rate for s in capacity.steps][-1] == 200
