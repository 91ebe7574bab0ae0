"""The pure parts of the load package: durations, histograms, dumps, recorder, stream analysis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateproof.load import check_loopback_url, parse_duration
from gateproof.load._analysis import analyze_completion, analyze_stream
from gateproof.load._dump import LoadDump, merge_dumps, read_dump
from gateproof.load._duration import format_duration
from gateproof.load._histograms import (
    buckets_ms,
    decode,
    encode,
    merge,
    new_histogram,
    percentile_ms,
    record_seconds,
    summarize,
)
from gateproof.load._measurement import Measurement
from gateproof.load._options import LoadOptions, mock_directive
from gateproof.load._recorder import Recorder
from gateproof.load._runner import build_result
from gateproof.load._settings import LocustSettings
from gateproof.load.cli import exit_code
from gateproof.load.results import LoadResult

# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("45", 45.0),
        ("1.5s", 1.5),
        (" 3S ", 3.0),
    ],
)
def test_parse_duration_accepts_common_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "0", "0s", "-3s", "3x", "s", "30s2m", "1m1m", "1 m", "inf", "nan", "3s junk"]
)
def test_parse_duration_rejects_bad_input(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_rounds_up_to_whole_seconds() -> None:
    assert format_duration(3.0) == "3s"
    assert format_duration(2.2) == "3s"
    assert format_duration(0.1) == "1s"


# --- histograms ----------------------------------------------------------------------------------


def test_histogram_keeps_sub_millisecond_detail_that_locust_rounds_away() -> None:
    histogram = new_histogram()
    for _ in range(10):
        record_seconds(histogram, 0.147_321)
    for _ in range(10):
        record_seconds(histogram, 0.152_604)
    # locust would file both under 150 ms; the HDR histogram keeps them 5 ms apart to within 0.1 %
    assert percentile_ms(histogram, 25) == pytest.approx(147.321, rel=1e-3)
    assert percentile_ms(histogram, 75) == pytest.approx(152.604, rel=1e-3)


def test_histogram_is_exact_to_the_microsecond_at_small_values() -> None:
    histogram = new_histogram()
    record_seconds(histogram, 0.000_837)
    assert percentile_ms(histogram, 50) == 0.837


def test_encode_decode_round_trip() -> None:
    histogram = new_histogram()
    for value in (0.001, 0.010, 0.100, 1.0, 10.0):
        record_seconds(histogram, value)
    text = encode(histogram)
    assert isinstance(text, str) and text.isascii()
    again = decode(text)
    assert again.get_total_count() == 5
    assert summarize("x", again) == summarize("x", histogram)


def test_out_of_range_values_are_pinned_not_lost() -> None:
    histogram = new_histogram()
    record_seconds(histogram, 120.0)
    record_seconds(histogram, -1.0)
    assert histogram.get_total_count() == 2
    assert percentile_ms(histogram, 100) == pytest.approx(60_000, rel=1e-3)
    assert histogram.get_min_value() == 0


@pytest.mark.parametrize("significant_figures", [2, 3, 5])
def test_recording_matches_hdrh_counter_for_counter(significant_figures: int) -> None:
    import random

    from gateproof.load._histograms import HIGHEST_US, record_all_seconds

    rng = random.Random(11)
    values = [rng.random() * 10 ** rng.randint(-7, 2) for _ in range(20_000)]
    values += [0.0, -1.0, 1e-7, 0.000_000_5, 59.999_999_5, 60.0, 61.0, 120.0]
    by_hdrh, one_by_one, all_at_once = (new_histogram(significant_figures) for _ in range(3))
    for seconds in values:
        by_hdrh.record_value(min(max(round(seconds * 1_000_000), 0), HIGHEST_US))
        record_seconds(one_by_one, seconds)
    record_all_seconds(all_at_once, values)
    assert encode(one_by_one) == encode(by_hdrh) == encode(all_at_once)
    for histogram in (one_by_one, all_at_once):
        assert (histogram.total_count, histogram.min_value, histogram.max_value) == (
            by_hdrh.total_count,
            by_hdrh.min_value,
            by_hdrh.max_value,
        )


def test_merge_adds_counts_and_skips_empty_histograms() -> None:
    first, second, empty = new_histogram(), new_histogram(), new_histogram()
    for _ in range(90):
        record_seconds(first, 0.010)
    for _ in range(10):
        record_seconds(second, 0.500)
    merged = merge([encode(empty), encode(first), encode(empty), encode(second)])
    assert merged is not None
    summary = summarize("e2e", merged)
    assert summary.count == 100
    # an empty histogram added naively would drag the minimum to 0 (an hdrh quirk)
    assert summary.min == pytest.approx(10.0, rel=1e-3)
    assert summary.p50 == pytest.approx(10.0, rel=1e-3)
    assert summary.p95 == pytest.approx(500.0, rel=1e-3)
    assert summary.max == pytest.approx(500.0, rel=1e-3)
    assert merge([encode(empty)]) is None
    assert merge([]) is None


def test_summary_percentiles_of_a_uniform_sample() -> None:
    histogram = new_histogram()
    for ms in range(1, 1001):
        record_seconds(histogram, ms / 1000)
    summary = summarize("ttft", histogram)
    assert summary.count == 1000
    assert summary.min == 1.0
    assert summary.p50 == pytest.approx(500, rel=2e-3)
    assert summary.p90 == pytest.approx(900, rel=2e-3)
    assert summary.p95 == pytest.approx(950, rel=2e-3)
    assert summary.p99 == pytest.approx(990, rel=2e-3)
    assert summary.max == pytest.approx(1000, rel=2e-3)
    assert summary.mean == pytest.approx(500.5, rel=2e-3)


def test_buckets_cover_every_value_from_min_to_max() -> None:
    histogram = new_histogram()
    for ms in (50, 51, 52, 60, 80, 100):
        record_seconds(histogram, ms / 1000)
    buckets = buckets_ms(histogram, count=10)
    assert len(buckets) == 11
    assert sum(count for _, count in buckets) == 6
    assert buckets[0][0] == pytest.approx(50.0, rel=1e-3) and buckets[0][1] == 0  # where the first bar starts
    assert buckets[1][1] == 3  # 50, 51, 52 fall in the first 5 ms
    assert buckets[-1][0] == pytest.approx(100, rel=1e-3)
    assert [edge for edge, _ in buckets] == sorted(edge for edge, _ in buckets)
    assert buckets_ms(new_histogram()) == []
    single = new_histogram()
    record_seconds(single, 0.042)
    one_value = buckets_ms(single)
    assert sum(count for _, count in one_value) == 1
    assert all(edge == pytest.approx(42.0, rel=1e-3) for edge, _ in one_value)


# --- recorder and dumps --------------------------------------------------------------------------


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _ok(started: float, e2e: float, ttft: float, tokens: int = 4) -> Measurement:
    return Measurement(
        started_wall=started,
        got_response=True,
        status=200,
        output_tokens=tokens,
        ttfb=0.001,
        ttft=ttft,
        e2e=e2e,
        inter_chunk=[0.01, 0.01, 0.012],
    )


def test_recorder_counts_failures_apart_from_latencies(tmp_path: Path) -> None:
    clock = _Clock(1000.2)
    recorder = Recorder(scenario="StreamingChatUser", clock=clock)
    recorder.start()
    recorder.add(_ok(1000.2, e2e=0.3, ttft=0.1))
    clock.now = 1001.5
    failed = Measurement(started_wall=1001.4, got_response=True, status=200)
    failed.fail("done_terminates_stream")
    failed.ttft, failed.e2e = 0.001, 0.002  # a failure's timings must not reach the histograms
    recorder.add(failed)
    refused = Measurement(started_wall=1001.5)
    refused.fail("connection_refused")
    recorder.add(refused)
    dump = recorder.dump()
    assert (dump.requests, dump.failures, dump.responses, dump.output_tokens) == (3, 2, 2, 4)
    assert dump.failure_reasons == {"connection_refused": 1, "done_terminates_stream": 1}
    ttft = decode(dump.histograms["ttft"])
    assert ttft.get_total_count() == 1
    assert decode(dump.histograms["inter_chunk"]).get_total_count() == 3
    assert set(dump.timeline) == {"1000", "1001"}
    assert dump.timeline["1001"].failures == 2
    assert dump.timeline["1001"].e2e is None
    path = tmp_path / "dump.json"
    dump.write(path)
    assert read_dump(path) == dump
    recorder.write_progress(tmp_path / "progress.json")
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["requests"] == 3 and progress["failures"] == 2


def test_recorder_freezes_old_seconds_and_keeps_them() -> None:
    clock = _Clock(2000.0)
    recorder = Recorder(scenario="s", clock=clock)
    for second in range(10):
        clock.now = 2000.0 + second
        recorder.add(_ok(clock.now - 0.2, e2e=0.2, ttft=0.05))
    dump = recorder.dump()
    assert [int(k) for k in dump.timeline] == list(range(2000, 2010))
    assert all(s.requests == 1 and s.e2e for s in dump.timeline.values())


def test_merge_dumps_sums_processes() -> None:
    dumps = []
    for index, base in enumerate((3000.0, 3000.5)):
        clock = _Clock(base)
        recorder = Recorder(scenario="StreamingChatUser", clock=clock)
        recorder.start()
        for n in range(5):
            clock.now = base + n * 0.3
            recorder.add(_ok(clock.now - 0.1, e2e=0.1 * (index + 1), ttft=0.05))
        failed = Measurement(started_wall=clock.now)
        failed.fail("http_503")
        recorder.add(failed)
        dumps.append(recorder.dump())
    merged = merge_dumps(dumps)
    assert merged.requests == 12 and merged.failures == 2 and merged.processes == 2
    assert merged.failure_reasons == {"http_503": 2}
    assert merged.started_at == 3000.0
    e2e = decode(merged.histograms["e2e"])
    assert e2e.get_total_count() == 10
    assert summarize("e2e", e2e).max == pytest.approx(200, rel=1e-3)
    assert sum(s.requests for s in merged.timeline.values()) == 12
    assert LoadDump.from_dict(merged.to_dict()) == merged
    with pytest.raises(ValueError):
        merge_dumps([])


def test_build_result_rates_timeline_and_percentiles() -> None:
    clock = _Clock(5000.4)
    recorder = Recorder(scenario="StreamingChatUser", clock=clock)
    recorder.start()
    for n in range(20):
        clock.now = 5000.5 + n * 0.2  # requests end over 4 s: seconds 5000 .. 5004
        recorder.add(_ok(clock.now - 0.5, e2e=0.5, ttft=0.1 + n / 1000, tokens=10))
    options = LoadOptions(base_url="http://127.0.0.1:1/v1", out_dir=Path("x"), users=4, duration_s=4)
    result = build_result(options, recorder.dump(), {"locust_stats": "locust_stats.csv"})
    assert result.requests == 20 and result.failures == 0
    assert result.window_s == pytest.approx(4.3)  # first start 5000.0, last end 5004.3
    assert result.requests_per_s == pytest.approx(20 / 4.3, rel=1e-3)
    assert result.output_tokens_per_s == pytest.approx(200 / 4.3, rel=1e-3)
    assert [point.t for point in result.timeline] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert sum(point.requests for point in result.timeline) == 20
    assert result.timeline[0].e2e_p50_ms == pytest.approx(500, rel=1e-2)
    assert set(result.latencies) == {"ttfb", "ttft", "inter_chunk", "e2e"}
    assert result.latencies["ttft"].min == pytest.approx(100, rel=1e-3)
    assert result.latencies["ttft"].max == pytest.approx(119, rel=1e-3)
    assert sum(count for _, count in result.ttft_histogram) == 20
    assert result.artifacts == {"locust_stats": "locust_stats.csv"}
    assert LoadResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# --- stream analysis -----------------------------------------------------------------------------


def _event(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    return _event(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


_USAGE = _event(
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
)
_DONE = b"data: [DONE]\n\n"


def test_analyze_stream_times_content_not_the_role_chunk() -> None:
    reads = [
        (10.010, _chunk({"role": "assistant", "content": ""})),
        (10.100, _chunk({"content": "Hel"})),
        (10.110, _chunk({"content": "lo"})),
        # two events in one read: the client saw them at the same moment
        (10.130, _chunk({"content": "!"}) + _chunk({}, finish="stop")),
        (10.131, _USAGE),
        (10.132, _DONE),
    ]
    measurement = Measurement(started_wall=0.0, got_response=True, status=200)
    analyze_stream(measurement, reads, sent_at=10.0, headers_at=10.005, ended_at=10.133)
    assert measurement.ok, measurement.reason
    assert measurement.ttfb == pytest.approx(0.005)
    assert measurement.ttft == pytest.approx(0.100)
    assert measurement.inter_chunk == pytest.approx([0.010, 0.020])
    assert measurement.e2e == pytest.approx(0.133)
    assert measurement.output_tokens == 3
    assert measurement.tpot == pytest.approx(0.015)


def test_analyze_stream_split_reads_are_timed_when_the_event_completes() -> None:
    body = _chunk({"role": "assistant", "content": "Hi"}) + _chunk({}, finish="stop") + _USAGE + _DONE
    reads = [(1.0, body[:10]), (1.5, body[10:])]
    measurement = Measurement(started_wall=0.0)
    analyze_stream(measurement, reads, sent_at=0.5, headers_at=0.6, ended_at=1.6)
    assert measurement.ok
    assert measurement.ttft == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (
            _chunk({"role": "assistant", "content": "Hi"}) + _chunk({}, finish="stop") + _USAGE,
            "done_terminates_stream",
        ),
        (
            _chunk({"role": "assistant", "content": "Hi"})
            + _event({"error": {"message": "boom", "type": "provider_error", "code": None, "param": None}}),
            "no_error_event",
        ),
        (_chunk({"role": "assistant", "content": "Hi"}) + b"data: {oops\n\n", "chunk_is_json"),
        (
            _chunk({"role": "assistant", "content": "Hi"}) + _chunk({}, finish="stop") + _DONE,
            "usage_chunk_present",
        ),
    ],
)
def test_analyze_stream_names_the_broken_rule(body: bytes, rule: str) -> None:
    measurement = Measurement(started_wall=0.0, got_response=True, status=200)
    analyze_stream(measurement, [(1.0, body)], sent_at=0.0, headers_at=0.1, ended_at=1.0)
    assert not measurement.ok
    assert measurement.reason == rule


def test_analyze_stream_keeps_a_transport_failure_as_the_reason() -> None:
    measurement = Measurement(started_wall=0.0, got_response=True, status=200)
    measurement.fail("connection_closed")
    analyze_stream(
        measurement,
        [(1.0, _chunk({"role": "assistant", "content": "Hi"}))],
        sent_at=0,
        headers_at=0.1,
        ended_at=1,
    )
    assert measurement.reason == "connection_closed"


def test_analyze_stream_counts_content_chunks_without_usage() -> None:
    body = (
        _chunk({"role": "assistant", "content": "a"}) + _chunk({"content": "b"}) + _chunk({}, "stop") + _DONE
    )
    measurement = Measurement(started_wall=0.0)
    analyze_stream(measurement, [(1.0, body)], sent_at=0, headers_at=0.1, ended_at=1, include_usage=False)
    assert measurement.ok, measurement.reason
    assert measurement.output_tokens == 2


def test_analyze_completion() -> None:
    good = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10},
    }
    measurement = Measurement(started_wall=0.0)
    analyze_completion(measurement, json.dumps(good).encode(), sent_at=1.0, headers_at=1.2, ended_at=1.3)
    assert measurement.ok and measurement.output_tokens == 7
    assert measurement.ttfb == pytest.approx(0.2) and measurement.e2e == pytest.approx(0.3)
    for body, reason in [
        (b"{not json", "invalid_json"),
        (b"[]", "invalid_json"),
        (json.dumps({**good, "object": "list"}).encode(), "not_chat_completion"),
        (json.dumps({**good, "usage": None}).encode(), "no_usage"),
        (json.dumps({"error": {"message": "x"}}).encode(), "error_body"),
    ]:
        bad = Measurement(started_wall=0.0)
        analyze_completion(bad, body, sent_at=0, headers_at=0, ended_at=0)
        assert bad.reason == reason


# --- options, settings, exit codes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin", "path"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080", "/v1"),
        ("http://127.1.2.3:9/v1/", "http://127.1.2.3:9", "/v1"),
        ("http://localhost:8080/api/v1", "http://localhost:8080", "/api/v1"),
        ("http://[::1]:8080/v1", "http://[::1]:8080", "/v1"),
    ],
)
def test_loopback_urls_are_accepted(url: str, origin: str, path: str) -> None:
    assert check_loopback_url(url) == (origin, path)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8080/v1",
        "https://api.edgee.ai/v1",
        "http://localhost.example.com/v1",
        "http://0.0.0.0:8080/v1",
        "ftp://127.0.0.1/v1",
        "http://user:pw@127.0.0.1/v1",
        "127.0.0.1:8080/v1",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_loopback_url(url)


def test_settings_round_trip_through_the_environment() -> None:
    settings = LocustSettings(
        path="/v1/chat/completions",
        model="openai/gpt-4o",
        dump="/tmp/d.json",
        api_key_env="MY_KEY",
        max_tokens=32,
        directive="[[gateproof tokens=5]]",
        timeout=12.5,
        progress="/tmp/p.json",
    )
    env = settings.to_env()
    assert LocustSettings.from_env(env) == settings
    assert all("secret" not in value for value in env.values())
    body = settings.body(stream=True)
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 32
    assert "[[gateproof tokens=5]]" in json.dumps(body)
    assert "stream" not in settings.body(stream=False)
    with pytest.raises(RuntimeError):
        LocustSettings.from_env({})


def test_mock_directive_includes_extra_keys() -> None:
    options = LoadOptions(
        base_url="http://127.0.0.1:1/v1",
        out_dir=Path("x"),
        tokens=8,
        ttft_ms=5,
        itl_ms=2,
        directive_extra={"fault": "no_done"},
    )
    assert (
        mock_directive(options)
        == "[[gateproof scenario=text tokens=8 ttft_ms=5 itl_ms=2 cid=load fault=no_done]]"
    )
    assert (
        LoadOptions(base_url="http://127.0.0.1:1/v1", out_dir=Path("x"), use_directive=False).directive == ""
    )


def test_exit_codes() -> None:
    result = LoadResult(scenario="stream", base_url="u", users=1, spawn_rate=1, duration_s=1)
    result.requests, result.responses, result.failures = 10, 10, 0
    assert exit_code(result, 0.0) == 0
    result.failures = 1
    assert exit_code(result, 0.0) == 1
    assert exit_code(result, 0.1) == 0
    result.responses = 0
    assert exit_code(result, 1.0) == 3


def test_importing_the_package_does_not_import_locust() -> None:
    # in a fresh interpreter: locust would monkey-patch the socket layer of whoever imported it
    code = "import sys, gateproof.load, gateproof.load.cli; print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_histogram_resolution_is_better_than_1_ms_up_to_60_s() -> None:
    from gateproof.load._histograms import HIGHEST_US, new_histogram

    histogram = new_histogram()
    for value_us in (1_000, 999_999, 30_000_000, HIGHEST_US - 1):
        width = histogram.get_highest_equivalent_value(value_us) - histogram.get_lowest_equivalent_value(
            value_us
        )
        assert width < 1_000, f"{value_us} us is only known to {width} us"
    assert (
        histogram.get_highest_equivalent_value(150_123) - histogram.get_lowest_equivalent_value(150_123) == 0
    )


# --- failure names, in-flight requests, request timeout, summaries -------------------------------


def test_every_failure_name_is_documented_in_one_place() -> None:
    from gateproof.contract import TransportFailure
    from gateproof.contract.stream import RULES
    from gateproof.load._failures import FAILURES, describe, is_known, media_type_failure, status_failure

    names = {failure.value for failure in TransportFailure} | set(RULES) | {"content_type_matches_mode"}
    assert names <= set(FAILURES)
    assert all(FAILURES[name] for name in FAILURES)
    for name in ("http_503", "http_101", "invalid_json", "too_deep", "no_content", "deadline"):
        assert is_known(name) and describe(name)
    assert not is_known("connection_closed_weirdly") and not is_known("http_5")
    assert [status_failure(code) for code in (200, 204, 301, 302, 304, 308, 101, 404, 503)] == [
        None, None, "redirect", "redirect", "redirect", "redirect", "http_101", "http_404", "http_503"
    ]  # fmt: skip
    assert media_type_failure("text/event-stream; charset=utf-8", stream=True) is None
    assert media_type_failure("Application/JSON", stream=False) is None
    assert media_type_failure("application/json", stream=True) == "content_type_matches_mode"
    assert media_type_failure("", stream=False) == "content_type_matches_mode"


def test_requests_still_open_when_the_test_stops_are_counted() -> None:
    clock = _Clock(100.0)
    recorder = Recorder(scenario="s", clock=clock)
    recorder.start()
    finished, stuck, answered = (Measurement(started_wall=100.0) for _ in range(3))
    for measurement in (finished, stuck, answered):
        recorder.begin(measurement)
    answered.got_response, answered.status = True, 200
    finished.got_response, finished.status, finished.e2e = True, 200, 0.1
    recorder.add(finished)
    assert recorder.in_flight == 2 and recorder.progress()["in_flight"] == 2
    clock.now = 101.0
    assert recorder.settle_in_flight("deadline") == 2
    dump = recorder.dump()
    assert (dump.requests, dump.failures, dump.responses) == (3, 2, 2)
    assert dump.failure_reasons == {"deadline": 2}
    assert recorder.in_flight == 0 and recorder.settle_in_flight("deadline") == 0


def test_the_default_request_timeout_fits_the_run() -> None:
    def options(**kwargs: float) -> LoadOptions:
        return LoadOptions(base_url="http://127.0.0.1:1/v1", out_dir=Path("x"), **kwargs)  # type: ignore[arg-type]

    assert options(duration_s=2, stop_timeout_s=1).request_timeout == 3
    assert options(duration_s=300, stop_timeout_s=10).request_timeout == 60
    assert options(duration_s=2, stop_timeout_s=1, request_timeout_s=30).request_timeout == 30


def test_pieces_without_a_line_end_are_joined_without_changing_timings() -> None:
    body = _chunk({"role": "assistant", "content": "Hi"}) + _chunk({}, finish="stop") + _USAGE + _DONE
    # one byte per read: every event completes on the read that brings its blank line
    reads = [(1.0 + index / 1000, body[index : index + 1]) for index in range(len(body))]
    measurement = Measurement(started_wall=0.0)
    analyze_stream(measurement, reads, sent_at=1.0, headers_at=1.0, ended_at=3.0)
    assert measurement.ok, measurement.reason
    first_event_end = body.index(b"\n\n") + 1
    assert measurement.ttft == pytest.approx(first_event_end / 1000)
    from gateproof.load._replay import _line_pieces

    long_line = [(float(n), b"x" * 10) for n in range(5)] + [(9.0, b"x\n\n")]
    assert list(_line_pieces(long_line)) == [(9.0, b"x" * 50 + b"x\n\n")]
    assert list(_line_pieces([(1.0, b"ab"), (2.0, b"cd")])) == [(2.0, b"abcd")]


def test_a_completion_nested_too_deep_is_named() -> None:
    measurement = Measurement(started_wall=0.0)
    analyze_completion(measurement, b"[" * 100_000 + b"]" * 100_000, sent_at=0, headers_at=0, ended_at=0)
    assert measurement.reason == "too_deep"


def test_a_transport_failure_skips_the_grammar_replay() -> None:
    measurement = Measurement(started_wall=0.0)
    measurement.fail("body_too_large")
    analyze_stream(measurement, [(1.0, b"x" * 1000)], sent_at=0.0, headers_at=0.5, ended_at=1.0)
    assert measurement.reason == "body_too_large" and measurement.ttft is None
    assert measurement.ttfb == 0.5 and measurement.e2e == 1.0


def test_the_summary_says_what_was_seen() -> None:
    import io

    from gateproof.load.cli import print_summary

    def summary(**fields: object) -> str:
        result = LoadResult(scenario="stream", base_url="u", users=1, spawn_rate=1, duration_s=1)
        for name, value in fields.items():
            setattr(result, name, value)
        text = io.StringIO()
        print_summary(result, Path("out"), text)
        return text.getvalue()

    answered_then_stuck = summary(requests=3, failures=3, responses=3, failure_reasons={"deadline": 3})
    assert "never answered" not in answered_then_stuck
    assert "answered 3 of 3 requests" in answered_then_stuck
    assert "deadline x3: the request outlived its overall deadline" in answered_then_stuck
    refused = summary(requests=4, failures=4, failure_reasons={"connection_refused": 4})
    assert "no request got an HTTP status line back (connection_refused)" in refused
    assert "no request was made" in summary()
    assert "incomplete: locust overran" in summary(error="locust overran")


def test_exit_code_of_an_incomplete_or_empty_run() -> None:
    result = LoadResult(scenario="stream", base_url="u", users=1, spawn_rate=1, duration_s=1)
    assert exit_code(result, 1.0) == 1  # nothing was measured: not a pass
    result.requests = result.responses = 5
    assert exit_code(result, 0.0) == 0
    result.error = "locust did not finish"
    assert exit_code(result, 1.0) == 1


# --- the replay's shortcut agrees with the full grammar -----------------------------------------


def _mock_chunk(delta: dict[str, object], finish: str | None = None, **changes: object) -> dict[str, object]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
        **changes,
    }


def _mock_stream(words: int = 12) -> list[bytes]:
    """The events of a stream as the mock writes them (compact JSON, one ``data:`` line each)."""
    usage = {"prompt_tokens": 4, "completion_tokens": words, "total_tokens": 4 + words}
    chunks = [_mock_chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [_mock_chunk({"content": f" w{k}"}) for k in range(words)]
    chunks += [_mock_chunk({}, "stop"), {**_mock_chunk({}), "choices": [], "usage": usage}]
    events = [b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in chunks]
    return [*events, b"data: [DONE]\n\n"]


def _replace(events: list[bytes], index: int, chunk: object) -> list[bytes]:
    raw = chunk if isinstance(chunk, bytes) else b"data: " + json.dumps(chunk, separators=(",", ":")).encode()
    return [*events[:index], raw + b"\n\n", *events[index + 1 :]]


_BASE = _mock_stream()
_CONTENT_AT = 6  # a content event in the middle of the run (" w5")


def _swap(old: bytes, new: bytes) -> list[bytes]:
    """The base stream with ``old`` replaced by ``new`` in its middle content event."""
    assert old in _BASE[_CONTENT_AT]
    return _replace(_BASE, _CONTENT_AT, _BASE[_CONTENT_AT][:-2].replace(old, new))


_MUTATIONS: dict[str, list[bytes]] = {
    "clean": _BASE,
    "spaced json": [e.replace(b'":', b'": ').replace(b',"', b', "') for e in _BASE],
    "no space after data:": [e.replace(b"data: ", b"data:", 1) for e in _BASE],
    "other id": _replace(_BASE, _CONTENT_AT, _mock_chunk({"content": " x"}, id="chatcmpl-other")),
    "other model at the end": _replace(_BASE, 12, _mock_chunk({"content": " x"}, model="gpt-5")),
    "finish in the middle": _replace(_BASE, _CONTENT_AT, _mock_chunk({"content": " x"}, "stop")),
    "usage in the middle": _replace(
        _BASE,
        _CONTENT_AT,
        _mock_chunk({"content": " x"}, usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
    ),
    "not json": _replace(_BASE, _CONTENT_AT, b"data: {oops"),
    "escaped quote": _replace(_BASE, _CONTENT_AT, _mock_chunk({"content": ' "quoted" '})),
    "escaped control": _replace(_BASE, _CONTENT_AT, _mock_chunk({"content": "a\u0001b"})),
    "raw DEL": _replace(_BASE, _CONTENT_AT, _mock_chunk({"content": "a\x7fb"})),
    "non-ascii": _replace(
        _BASE, _CONTENT_AT, b"data: " + json.dumps(_mock_chunk({"content": "é"}), ensure_ascii=False).encode()
    ),
    "second choice": _replace(
        _BASE,
        _CONTENT_AT,
        {**_mock_chunk({}), "choices": [{"index": 1, "delta": {"content": "z"}, "finish_reason": None}]},
    ),
    "role again": _replace(_BASE, _CONTENT_AT, _mock_chunk({"role": "assistant", "content": " x"})),
    "tool call": _replace(
        _BASE,
        _CONTENT_AT,
        _mock_chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]
            }
        ),
    ),
    "duplicate key": _swap(b'"content":" w5"', b'"content":" a","content":" b"'),
    "probe text": _replace(_BASE, _CONTENT_AT, _mock_chunk({"content": "~"})),
    "empty content": _replace(_BASE, _CONTENT_AT, _mock_chunk({"content": ""})),
    "comment": [*_BASE[:_CONTENT_AT], b": keep-alive\n\n", *_BASE[_CONTENT_AT:]],
    "named event": _replace(
        _BASE, _CONTENT_AT, b"event: delta\ndata: " + json.dumps(_mock_chunk({"content": " x"})).encode()
    ),
    "two data lines": _replace(_BASE, _CONTENT_AT, b'data: {"a":\ndata: 1}'),
    "error event": _replace(
        _BASE, _CONTENT_AT, {"error": {"message": "boom", "type": "x", "code": None, "param": None}}
    ),
    "content after usage": [*_BASE[:-1], _BASE[_CONTENT_AT], _BASE[-1]],
    "no done": _BASE[:-1],
    "unterminated": [*_BASE[:-1], b"data: [DONE]\n"],
    "invalid utf-8": _swap(b'"content":" w5"', b'"content":" \xff"'),
    "crlf": [e.replace(b"\n", b"\r\n") for e in _BASE],
    "extra blank line": [*_BASE[:_CONTENT_AT], b"\n", *_BASE[_CONTENT_AT:]],
}


def _verdict(reads: list[tuple[float, bytes]], full: bool) -> tuple[object, ...]:
    from gateproof.load._replay import _full, replay_stream

    replay = _full(reads, True) if full else replay_stream(reads, include_usage=True)
    rules = [violation.rule for violation in replay.report.violations]
    reason = "no_error_event" if replay.error_event else (rules[0] if rules else None)
    return reason, replay.arrivals, replay.texts, replay.report.summary.usage


#: what the full grammar names each broken stream (the others pass)
_BROKEN = {
    "other id": "constant_id",
    "other model at the end": "constant_model",
    "finish in the middle": "single_finish_reason",
    "usage in the middle": "usage_chunk_empty_choices",
    "not json": "chunk_is_json",
    "second choice": "first_chunk_has_role",
    "tool call": "finish_reason_matches_content",
    "named event": "event_type_is_message",
    "two data lines": "chunk_object_type",
    "error event": "no_error_event",
    "content after usage": "usage_chunk_last",
    "no done": "done_terminates_stream",
    "unterminated": "sse_framing",
    "invalid utf-8": "sse_framing",
}


@pytest.mark.parametrize("name", list(_MUTATIONS))
@pytest.mark.parametrize("split", ["one read", "read per event", "odd reads"])
def test_the_shortcut_judges_and_times_like_the_full_grammar(name: str, split: str) -> None:
    from gateproof.load._replay import replay_stream

    events = _MUTATIONS[name]
    body = b"".join(events)
    if split == "one read":
        reads = [(3.0, body)]
    elif split == "read per event":
        reads = [(3.0 + index / 100, event) for index, event in enumerate(events)]
    else:  # pieces of 97 bytes: events complete in the middle of reads
        reads = [(3.0 + start / 10_000, body[start : start + 97]) for start in range(0, len(body), 97)]
    verdict = _verdict(reads, full=False)
    assert verdict == _verdict(reads, full=True)
    assert verdict[0] == _BROKEN.get(name)
    if name in ("clean", "spaced json", "no space after data:", "escaped quote", "role again", "probe text"):
        assert replay_stream(reads, include_usage=True).shortcut, "an ordinary stream takes the shortcut"


def test_the_shortcut_skips_the_parse_of_repeated_content_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateproof.contract.stream._grammar as grammar
    from gateproof.load._replay import replay_stream

    parsed = 0
    real = grammar.loads_bounded

    def counting(data: str | bytes) -> object:
        nonlocal parsed
        parsed += 1
        return real(data)

    monkeypatch.setattr(grammar, "loads_bounded", counting)
    replay = replay_stream([(1.0, b"".join(_mock_stream(words=50)))], include_usage=True)
    assert replay.shortcut and len(replay.arrivals) == 50 and replay.texts[49] == " w49"
    assert parsed <= 5, f"{parsed} chunks parsed of 54"
