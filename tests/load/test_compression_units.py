"""The compression scenario's pieces without locust or a network: judging answers, recording, merging."""

from __future__ import annotations

import json

import pytest

from gateproof.load._compression import (
    COMPRESSION_METRICS,
    ENDPOINTS,
    CompressionRecorder,
    analyze_compress,
    compression_result,
    judge_chat_compression,
    merge_compression,
    parse_transcript_sizes,
)
from gateproof.load._dump import LoadDump, merge_dumps
from gateproof.load._failures import (
    COMPRESSION_MISSING,
    COMPRESSION_TIME_EXCEEDS_LATENCY,
    NOT_COMPRESSED_BODY,
    is_known,
)
from gateproof.load._measurement import Measurement
from gateproof.load._recorder import Recorder
from gateproof.load.results import LOAD_SCHEMA_VERSION, CompressionResult, LoadResult

#: a chat completion as the reference gateway answers it with compression on (D2: reduction in percent)
CHAT_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "openai/gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 6000, "completion_tokens": 4, "total_tokens": 6004},
    "compression": {"saved_tokens": 2000, "cost_savings": 5000, "reduction": 25.0, "time_ms": 3},
}

#: what POST /v1/compress answers: the body echoed, messages compressed, plus its own report
COMPRESS_BODY = {
    "model": "openai/gpt-4o",
    "messages": [{"role": "user", "content": "short"}],
    "compression": {
        "technique": "tool",
        "applied_strategies": ["tool_result_trimming"],
        "compression_rate": 0.4,
        "uncompressed_input_tokens": 8000,
        "compressed_input_tokens": 4800,
        "compression_time_ms": 7,
    },
}


def _encoded(body: object) -> bytes:
    return json.dumps(body).encode()


def _chat(body: object, *, e2e: float = 0.050) -> Measurement:
    measurement = Measurement(started_wall=0.0, got_response=True, status=200, e2e=e2e)
    judge_chat_compression(measurement, _encoded(body), size="8k", original_tokens=8000)
    return measurement


def _compress(body: object, *, took: float = 0.050) -> Measurement:
    measurement = Measurement(started_wall=0.0, got_response=True, status=200)
    analyze_compress(
        measurement,
        _encoded(body),
        sent_at=1.0,
        headers_at=1.01,
        ended_at=1.0 + took,
        size="8k",
        original_tokens=8000,
    )
    return measurement


def test_a_chat_answer_with_compression_gives_a_sample() -> None:
    measurement = _chat(CHAT_BODY)

    assert measurement.ok
    sample = measurement.compression
    assert sample is not None
    assert (sample.endpoint, sample.size, sample.original_tokens) == ("chat", "8k", 8000)
    assert (sample.saved_tokens, sample.reduction, sample.time_ms) == (2000, 25.0, 3.0)


@pytest.mark.parametrize(
    "compression",
    [None, "3 ms", {"saved_tokens": 1, "reduction": 1.0}, {"saved_tokens": 1, "reduction": 1.0, "time_ms": True},
     {"saved_tokens": 1, "reduction": 1.0, "time_ms": -1}, {"saved_tokens": 1, "reduction": "1", "time_ms": 1}],
)  # fmt: skip
def test_a_chat_answer_without_a_usable_compression_object_fails(compression: object) -> None:
    body = {**CHAT_BODY, "compression": compression}
    if compression is None:
        del body["compression"]

    measurement = _chat(body)

    assert not measurement.ok and measurement.reason == COMPRESSION_MISSING
    assert measurement.compression is None


def test_server_time_longer_than_the_client_saw_fails() -> None:
    body = {**CHAT_BODY, "compression": {**CHAT_BODY["compression"], "time_ms": 80}}  # type: ignore[dict-item]

    measurement = _chat(body, e2e=0.050)

    assert not measurement.ok and measurement.reason == COMPRESSION_TIME_EXCEEDS_LATENCY
    # exactly the client's latency is possible (a server clock and a client clock agreeing)
    assert _chat({**CHAT_BODY, "compression": {**CHAT_BODY["compression"], "time_ms": 50}}, e2e=0.050).ok  # type: ignore[dict-item]


def test_whole_milliseconds_rounded_up_are_compared_with_the_latency_rounded_up() -> None:
    def reported(time_ms: int) -> dict[str, object]:
        return {**CHAT_BODY, "compression": {**CHAT_BODY["compression"], "time_ms": time_ms}}  # type: ignore[dict-item]

    # D32: 0.3 ms of work is reported as 1 ms; the client saw 0.8 ms in all
    assert _chat(reported(1), e2e=0.0008).ok
    assert _chat(reported(2), e2e=0.0008).reason == COMPRESSION_TIME_EXCEEDS_LATENCY


def test_an_earlier_failure_is_kept() -> None:
    measurement = Measurement(started_wall=0.0, e2e=0.05)
    measurement.fail("no_usage")
    judge_chat_compression(measurement, _encoded(CHAT_BODY), size="8k", original_tokens=8000)

    assert measurement.reason == "no_usage" and measurement.compression is None


def test_a_compress_answer_gives_a_sample_with_the_reduction_in_percent() -> None:
    measurement = _compress(COMPRESS_BODY, took=0.040)

    assert measurement.ok
    assert measurement.e2e == pytest.approx(0.040) and measurement.ttfb == pytest.approx(0.01)
    sample = measurement.compression
    assert sample is not None and sample.endpoint == "compress"
    assert (sample.saved_tokens, sample.reduction, sample.time_ms) == (3200, 40.0, 7.0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({k: v for k, v in COMPRESS_BODY.items() if k != "compression"}, COMPRESSION_MISSING),
        ({k: v for k, v in COMPRESS_BODY.items() if k != "messages"}, NOT_COMPRESSED_BODY),
        ({**COMPRESS_BODY, "compression": {"compression_time_ms": 1}}, COMPRESSION_MISSING),
        ({"error": {"message": "no"}}, "error_body"),
        ([1, 2], "invalid_json"),
    ],
)
def test_a_compress_answer_that_is_not_one_fails_by_name(body: object, reason: str) -> None:
    measurement = _compress(body)

    assert not measurement.ok and measurement.reason == reason


def test_compress_time_beyond_the_latency_fails() -> None:
    slow = {**COMPRESS_BODY, "compression": {**COMPRESS_BODY["compression"], "compression_time_ms": 45}}  # type: ignore[dict-item]

    assert _compress(slow, took=0.040).reason == COMPRESSION_TIME_EXCEEDS_LATENCY


def test_every_compression_failure_name_is_listed() -> None:
    for name in (COMPRESSION_MISSING, COMPRESSION_TIME_EXCEEDS_LATENCY, NOT_COMPRESSED_BODY):
        assert is_known(name)


def _ms(*values: float) -> object:
    """HDR figures at 3 significant digits: each within 0.1 % of the value recorded."""
    return pytest.approx(values, rel=1e-3)


def _recorded(samples: list[tuple[str, float, float]]) -> CompressionRecorder:
    """A recorder fed real judged answers: (endpoint, server ms, client seconds)."""
    recorder = CompressionRecorder()
    for endpoint, server_ms, client_s in samples:
        if endpoint == "chat":
            body = {**CHAT_BODY, "compression": {**CHAT_BODY["compression"], "time_ms": server_ms}}  # type: ignore[dict-item]
            measurement = _chat(body, e2e=client_s)
        else:
            body = {
                **COMPRESS_BODY,
                "compression": {**COMPRESS_BODY["compression"], "compression_time_ms": server_ms},
            }  # type: ignore[dict-item]
            measurement = _compress(body, took=client_s)
        assert measurement.ok
        recorder.add(measurement)
    return recorder


def test_cells_hold_server_time_client_latency_and_their_gap() -> None:
    recorder = _recorded([("chat", 2, 0.010), ("chat", 4, 0.020), ("compress", 6, 0.008)])

    result = compression_result(
        recorder.dump(), sizes=["8k"], users=1, duration_s=1.0, requests=3, failures=0, failure_reasons={}
    )

    assert [(c.endpoint, c.size, c.count) for c in result.cells] == [("chat", "8k", 2), ("compress", "8k", 1)]
    chat, compress = result.cells
    assert (chat.time_ms.min, chat.time_ms.max) == _ms(2.0, 4.0)
    assert (chat.latency.min, chat.latency.max) == _ms(10.0, 20.0)
    # gaps are per request: 10 - 2 and 20 - 4
    assert (chat.gap.min, chat.gap.max) == _ms(8.0, 16.0)
    assert chat.mean_reduction == 25.0 and chat.mean_saved_tokens == 2000
    assert compress.gap.p50 == pytest.approx(2.0, abs=0.01) and compress.mean_reduction == 40.0
    assert result.endpoints == list(ENDPOINTS) and result.requests == 3 and not result.attached


def test_failed_requests_leave_the_cells_alone() -> None:
    recorder = CompressionRecorder()
    measurement = _chat({k: v for k, v in CHAT_BODY.items() if k != "compression"})
    recorder.add(measurement)

    assert recorder.dump() == {}


def test_processes_merge_exactly() -> None:
    one = _recorded([("chat", 2, 0.010), ("compress", 5, 0.030)])
    two = _recorded([("chat", 8, 0.040)])

    merged = merge_compression([one.dump(), two.dump()])
    cells = compression_result(
        merged, sizes=["8k"], users=1, duration_s=1.0, requests=3, failures=0, failure_reasons={}
    ).cells

    chat = next(c for c in cells if c.endpoint == "chat")
    assert chat.count == 2 and (chat.time_ms.min, chat.time_ms.max) == _ms(2.0, 8.0)
    assert (chat.gap.min, chat.gap.max) == _ms(8.0, 32.0)
    assert set(merged["chat/8k"]) >= set(COMPRESSION_METRICS)


def test_the_recorder_dumps_and_the_runner_merges_compression_cells() -> None:
    """Recorder -> LoadDump JSON -> merge_dumps, as the locust processes and the runner do it."""
    dumps = []
    for server_ms in (3, 9):
        recorder = Recorder(scenario="CompressionUser", clock=lambda: 100.0)
        recorder.start()
        measurement = _chat(
            {**CHAT_BODY, "compression": {**CHAT_BODY["compression"], "time_ms": server_ms}}, e2e=0.02
        )  # type: ignore[dict-item]
        recorder.begin(measurement)
        recorder.add(measurement)
        dumps.append(LoadDump.from_dict(json.loads(json.dumps(recorder.dump().to_dict()))))

    merged = merge_dumps(dumps)
    cell = compression_result(
        merged.compression, sizes=["8k"], users=2, duration_s=1.0, requests=2, failures=0, failure_reasons={}
    ).cells[0]

    assert merged.requests == 2 and cell.count == 2
    assert (cell.time_ms.min, cell.time_ms.max) == _ms(3.0, 9.0)


def test_load_json_round_trips_the_compression_section() -> None:
    recorder = _recorded([("chat", 2, 0.010), ("compress", 6, 0.008)])
    section = compression_result(
        recorder.dump(), sizes=["8k"], users=1, duration_s=1.0, requests=2, failures=0, failure_reasons={}
    )
    load = LoadResult(
        scenario="compression", base_url="http://127.0.0.1:1/v1", users=1, spawn_rate=1, duration_s=1
    )
    load.compression = section

    data = json.loads(json.dumps(load.to_dict()))
    assert data["schema_version"] == LOAD_SCHEMA_VERSION
    again = LoadResult.from_dict(data)

    assert again.compression == section
    assert isinstance(again.compression, CompressionResult)


def test_a_load_json_of_the_previous_version_still_reads() -> None:
    data = LoadResult(
        scenario="stream", base_url="http://127.0.0.1:1", users=1, spawn_rate=1, duration_s=1
    ).to_dict()
    data["schema_version"] = "1.0"
    del data["compression"]

    assert LoadResult.from_dict(data).compression is None
    with pytest.raises(ValueError):
        LoadResult.from_dict({**data, "schema_version": "0.9"})


def test_transcript_sizes_are_checked_against_the_corpus() -> None:
    assert parse_transcript_sizes("1k, 32k") == ("1k", "32k")
    for bad in ("", "1k,2k", "8k,8k"):
        with pytest.raises(ValueError):
            parse_transcript_sizes(bad)
