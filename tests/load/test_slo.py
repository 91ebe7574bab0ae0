"""The SLO file: its format, its error messages, and every metric name read from a real LoadResult."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from gateproof.load._slo import (
    FAMILIES,
    LATENCY_STATS,
    METRIC_NAMES,
    OVERHEAD_STATS,
    Slo,
    evaluate,
    load_slos,
    metric_values,
    slo_metrics_help,
)
from gateproof.load.results import (
    ArrivalResult,
    CompressionCell,
    CompressionResult,
    Estimate,
    LatencySummary,
    LoadResult,
    OverheadMetric,
    PairedResult,
    StreamTransparency,
)

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("ttfb", "ttft", "inter_chunk", "tpot", "e2e")


def _summary(metric: str, base: float, count: int = 100) -> LatencySummary:
    """A summary whose figures are distinct and readable: min=base, mean=base+1, ..., max=base+6."""
    return LatencySummary(metric, count, base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6)


def _overhead(metric: str, base: float) -> OverheadMetric:
    def est(offset: float) -> Estimate:
        value = base + offset
        return Estimate(value, value - 0.5, value + 0.5)

    return OverheadMetric(metric, 50, est(0.0), est(1.0), est(2.0), est(3.0), est(4.0))


def _cell(size: str, time_base: float) -> CompressionCell:
    return CompressionCell(
        endpoint="chat",
        size=size,
        count=10,
        original_tokens=1000,
        mean_saved_tokens=100.0,
        mean_reduction=10.0,
        time_ms=_summary("time_ms", time_base),
        latency=_summary("latency", time_base + 100),
        gap=_summary("gap", time_base + 200),
    )


def _full_result() -> LoadResult:
    """A result that measured everything: every metric name has a value."""
    return LoadResult(
        scenario="stream",
        base_url="http://127.0.0.1:1/v1",
        users=4,
        spawn_rate=4.0,
        duration_s=10.0,
        requests=1000,
        failures=5,
        requests_per_s=100.0,
        output_tokens_per_s=1200.0,
        latencies={m: _summary(m, 10.0 * (i + 1)) for i, m in enumerate(METRICS)},
        arrivals=ArrivalResult(
            "poisson", 100.0, 7, scheduled=1000, sent=1000, achieved_rate=98.5, late_sends=20
        ),
        paired=PairedResult(
            "http://127.0.0.1:2/v1",
            "gpt-4o",
            pairs=990,
            metrics={m: _overhead(m, float(i + 1)) for i, m in enumerate(METRICS)},
            baseline={m: _summary(m, 100.0 * (i + 1)) for i, m in enumerate(METRICS)},
        ),
        transparency=StreamTransparency(
            streams=100,
            chunks=2000,
            coalesced=50,
            buffered_streams=3,
            chunk_delay=_summary("chunk_delay", 0.5),
        ),
        compression=CompressionResult(cells=[_cell("1k", 2.0), _cell("8k", 9.0), _cell("32k", 5.0)]),
    )


def _empty_result() -> LoadResult:
    return LoadResult(
        scenario="chat", base_url="http://127.0.0.1:1/v1", users=1, spawn_rate=1.0, duration_s=1.0
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the file format ----------------------------------------------------------------------------


def test_the_example_slo_file_loads() -> None:
    slos = load_slos(ROOT / "docs" / "examples" / "slo.yaml")
    assert [s.metric for s in slos][:3] == ["overhead.ttft.p99.high", "overhead.e2e.p50", "error_rate"]
    assert slos[0] == Slo("overhead.ttft.p99.high", "<=", 5.0, name="p99 added TTFT")
    assert slos[-1] == Slo("requests_per_s", ">=", 150.0)
    assert slos[0].unit == "ms" and slos[2].unit == "ratio" and slos[-1].unit == "req/s"


def test_max_is_at_most_and_min_is_at_least(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "slos:\n  - {metric: e2e.p99, max: 5}\n  - {metric: requests_per_s, min: 150.5, name: rate}\n",
    )
    assert load_slos(path) == [Slo("e2e.p99", "<=", 5.0), Slo("requests_per_s", ">=", 150.5, name="rate")]
    assert str(load_slos(path)[0]) == "e2e.p99 <= 5 ms"


def test_a_negative_threshold_is_allowed(tmp_path: Path) -> None:
    """A target may be faster than the baseline: a gate on a negative overhead is meaningful."""
    path = _write(tmp_path, "slos:\n  - {metric: overhead.e2e.p50, max: -0.5}\n")
    assert load_slos(path)[0].threshold == -0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"is empty; it needs a `slos:` list"),
        ("# only a comment\n", r"is empty"),
        ("slos: []\n", r"has no SLOs"),
        ("slos:\n", r"has no SLOs"),
        ("- metric: e2e.p99\n  max: 5\n", r"must be a mapping with a `slos:` list, got list"),
        ("slos: {metric: e2e.p99}\n", r"`slos:` must be a list of entries, got dict"),
        ("slos:\n  - {metric: e2e.p99, max: 5}\nthresholds: 1\n", r"unknown top-level key thresholds"),
        ("slos:\n  - e2e.p99 <= 5\n", r"entry 1 must be a mapping with metric and max or min"),
        ("slos:\n  - {max: 5}\n", r"entry 1: missing metric"),
        ("slos:\n  - {metric: 7, max: 5}\n", r"entry 1: missing metric"),
        (
            "slos:\n  - {metric: e2e.p99, max: 5}\n  - {metric: e2e.p98, max: 5}\n",
            r"entry 2 \(e2e\.p98\): unknown metric 'e2e\.p98'; did you mean e2e\.p99, e2e\.p95, e2e\.p90\? \(metrics: .*see docs/load\.md\)",
        ),
        (
            "slos:\n  - {metric: latency, max: 5}\n",
            r"entry 1 \(latency\): unknown metric 'latency' \(metrics: ",
        ),
        (
            "slos:\n  - {metric: e2e.p99}\n",
            r"entry 1 \(e2e\.p99\): has neither max nor min; give exactly one",
        ),
        ("slos:\n  - {metric: e2e.p99, max: 5, min: 1}\n", r"entry 1 \(e2e\.p99\): has both max and min"),
        (
            "slos:\n  - {metric: e2e.p99, max: 5ms}\n",
            r"entry 1 \(e2e\.p99\): max must be a finite number \(in ms\), got '5ms'",
        ),
        (
            "slos:\n  - {metric: error_rate, max: true}\n",
            r"max must be a finite number \(in ratio\), got True",
        ),
        ("slos:\n  - {metric: e2e.p99, min: .nan}\n", r"min must be a finite number \(in ms\), got nan"),
        ("slos:\n  - {metric: e2e.p99, max: .inf}\n", r"max must be a finite number"),
        ("slos:\n  - {metric: e2e.p99, max: [5]}\n", r"max must be a finite number \(in ms\), got \[5\]"),
        (
            "slos:\n  - {metric: e2e.p99, max: 5, unit: ms, window: 1}\n",
            r"entry 1 \(e2e\.p99\): unknown key unit, window \(known: metric, max, min, name\)",
        ),
        (
            "slos:\n  - {metric: e2e.p99, max: 5, name: 3}\n",
            r"entry 1 \(e2e\.p99\): name must be text, got 3",
        ),
        ("slos: [\n", r"is not valid YAML"),
    ],
)
def test_every_mistake_is_named_with_the_file_and_the_entry(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as raised:
        load_slos(path)
    assert str(raised.value).startswith(f"SLO file {path}: ")


def test_a_missing_or_unreadable_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"SLO file .*nope\.yaml: cannot be read"):
        load_slos(tmp_path / "nope.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00slos")
    with pytest.raises(ValueError, match=r"cannot be read"):
        load_slos(binary)


def test_an_slo_made_in_code_is_checked_too() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'e2e\.p100'"):
        Slo("e2e.p100", "<=", 1.0)
    with pytest.raises(ValueError, match=r"op is '<=' \(max\) or '>=' \(min\), got '<'"):
        Slo("e2e.p99", "<", 1.0)


# -- the metric table ---------------------------------------------------------------------------


def test_the_table_expands_every_family() -> None:
    assert len(METRIC_NAMES) == len(set(METRIC_NAMES))
    for metric in METRICS:
        for stat in LATENCY_STATS:
            assert f"{metric}.{stat}" in METRIC_NAMES
            assert f"baseline.{metric}.{stat}" in METRIC_NAMES
        for stat in OVERHEAD_STATS:
            assert f"overhead.{metric}.{stat}" in METRIC_NAMES
            assert f"overhead.{metric}.{stat}.high" in METRIC_NAMES
    for name in ("error_rate", "requests_per_s", "achieved_rate", "late_send_ratio"):
        assert name in METRIC_NAMES
    for name in (
        "transparency.coalesced_ratio",
        "transparency.buffered_streams",
        "transparency.chunk_delay.p99",
    ):
        assert name in METRIC_NAMES
    for stat in LATENCY_STATS:
        assert f"compression.time_ms.{stat}" in METRIC_NAMES and f"compression.gap.{stat}" in METRIC_NAMES
    # nothing beyond what the families generate: a placeholder left unexpanded would show here
    assert not [name for name in METRIC_NAMES if "<" in name]


def test_every_metric_reads_a_value_from_a_result_that_measured_everything() -> None:
    result = _full_result()
    for name in METRIC_NAMES:
        values = metric_values(name, result)
        assert values and all(math.isfinite(v) for v in values), name


def test_every_metric_is_unmeasured_on_a_result_that_measured_nothing() -> None:
    result = _empty_result()
    assert {name: metric_values(name, result) for name in METRIC_NAMES} == {name: [] for name in METRIC_NAMES}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("ttfb.min", 10.0),
        ("ttft.p50", 22.0),
        ("e2e.max", 56.0),
        ("tpot.p95", 44.0),
        ("inter_chunk.p99", 35.0),
        ("overhead.ttfb.p50", 2.0),
        ("overhead.ttft.p99", 5.0),
        ("overhead.ttft.p99.high", 5.5),
        ("overhead.e2e.mean", 5.0),
        ("overhead.e2e.p999", 9.0),
        ("overhead.e2e.p999.high", 9.5),
        ("baseline.ttft.p90", 203.0),
        ("error_rate", 0.005),
        ("requests_per_s", 100.0),
        ("output_tokens_per_s", 1200.0),
        ("achieved_rate", 98.5),
        ("late_send_ratio", 0.02),
        ("transparency.coalesced_ratio", 0.025),
        ("transparency.buffered_streams", 3.0),
        ("transparency.chunk_delay.p99", 5.5),
    ],
)
def test_each_metric_is_read_from_its_own_field(metric: str, expected: float) -> None:
    assert metric_values(metric, _full_result()) == [pytest.approx(expected)]


def test_a_compression_metric_has_one_value_per_cell_and_the_worst_is_judged() -> None:
    result = _full_result()
    assert metric_values("compression.time_ms.p95", result) == [6.0, 13.0, 9.0]
    assert metric_values("compression.gap.p50", result) == [204.0, 211.0, 207.0]
    over, under = evaluate(
        [Slo("compression.time_ms.p95", "<=", 10.0), Slo("compression.time_ms.p95", ">=", 7.0)], result
    )
    # the largest cell (13 ms, the 8k one) breaks the max, the smallest (6 ms) the min
    assert (over.value, over.met) == (13.0, False)
    assert (under.value, under.met) == (6.0, False)
    assert evaluate([Slo("compression.time_ms.p95", "<=", 13.0)], result)[0].met


def test_evaluate_judges_each_slo_with_value_unit_and_name() -> None:
    result = _full_result()
    outcomes = evaluate(
        [
            Slo("overhead.ttft.p99.high", "<=", 6.0, name="p99 added TTFT"),
            Slo("overhead.ttft.p99.high", "<=", 5.0),
            Slo("error_rate", "<=", 0.005),
            Slo("requests_per_s", ">=", 100.0),
            Slo("requests_per_s", ">=", 100.5),
        ],
        result,
    )
    assert [(o.metric, o.op, o.threshold, o.value, o.met) for o in outcomes] == [
        ("overhead.ttft.p99.high", "<=", 6.0, 5.5, True),
        ("overhead.ttft.p99.high", "<=", 5.0, 5.5, False),
        ("error_rate", "<=", 0.005, 0.005, True),  # the threshold itself meets it
        ("requests_per_s", ">=", 100.0, 100.0, True),
        ("requests_per_s", ">=", 100.5, 100.0, False),
    ]
    assert outcomes[0].name == "p99 added TTFT" and outcomes[0].unit == "ms"
    assert outcomes[2].unit == "ratio" and outcomes[3].unit == "req/s"


def test_a_metric_the_run_did_not_measure_breaches_its_slo_either_way() -> None:
    result = _empty_result()
    outcomes = evaluate([Slo("overhead.ttft.p99", "<=", 1e9), Slo("achieved_rate", ">=", 0.0)], result)
    assert [(o.value, o.met) for o in outcomes] == [(None, False), (None, False)]


def test_a_summary_with_no_values_and_a_non_finite_estimate_are_unmeasured() -> None:
    result = _full_result()
    result.latencies["ttft"] = _summary("ttft", 0.0, count=0)
    assert result.paired is not None
    nan = Estimate(math.nan, math.nan, math.nan)
    result.paired.metrics["e2e"] = OverheadMetric("e2e", 3, nan, nan, nan, nan, nan)
    assert metric_values("ttft.p99", result) == []
    assert metric_values("overhead.e2e.p50", result) == []
    assert metric_values("overhead.e2e.p50.high", result) == []


def test_outcomes_survive_the_results_file(tmp_path: Path) -> None:
    result = _full_result()
    result.slos = evaluate([Slo("e2e.p99", "<=", 1.0, name="tight"), Slo("achieved_rate", ">=", 1.0)], result)
    path = tmp_path / "load.json"
    result.write_json(path)
    again = LoadResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    assert again.slos == result.slos
    assert [o.met for o in again.slos] == [False, True]


# -- the docs -----------------------------------------------------------------------------------


def test_docs_load_md_lists_every_metric_family_with_its_unit() -> None:
    text = (ROOT / "docs" / "load.md").read_text(encoding="utf-8")
    section = text.split("## The SLO file", 1)[1].split("\n## ", 1)[0]
    table = section.split("### Metrics", 1)[1].split("The placeholders", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", table, flags=re.MULTILINE)
    documented = {pattern: unit.strip() for pattern, unit in rows}
    assert documented == {family.pattern: family.unit for family in FAMILIES}


def test_the_help_text_names_every_family_and_placeholder() -> None:
    text = slo_metrics_help()
    for family in FAMILIES:
        assert family.pattern in text
    assert "p999" in text and "inter_chunk" in text and "time_ms" in text
