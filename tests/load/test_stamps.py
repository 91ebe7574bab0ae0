"""Chunk stamps read on the client side, from hand-built byte streams (no network, no locust).

Each stream is what the mock sends with ``stamp=1`` (``gateproof.openapi.format_stamp`` at the
start of every content chunk), then altered the way a gateway might alter it: chunks merged into
one event, a chunk cut in two, a chunk lost, content held back and flushed. The times are
``perf_counter`` values relative to the request's ``sent_at``; the request's wall clock at
``sent_at`` is ``WALL``.
"""

from __future__ import annotations

import json

import pytest

from gateproof.load._analysis import analyze_completion, analyze_stream
from gateproof.load._measurement import Measurement
from gateproof.load._replay import replay_stream
from gateproof.load._stamps import is_buffered
from gateproof.openapi import format_stamp

WALL = 1_800_000_000.0
SENT_AT = 50.0
#: the mock sends chunk k at SEND0_US + k * GAP_US (wall clock, microseconds)
SEND0_US = 1_800_000_000_010_000
GAP_US = 20_000


def _event(payload: object) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    return _event(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    )


def _tail(tokens: int, **extras: object) -> bytes:
    usage = {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": 5 + tokens}
    last = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []}
    return _chunk({}, finish="stop") + _event({**last, "usage": usage, **extras}) + b"data: [DONE]\n\n"


def _stamp(seq: int) -> str:
    return format_stamp(seq, SEND0_US + seq * GAP_US)


def _sent(seq: int) -> float:
    """The relative perf_counter at which chunk ``seq`` was sent (the wall send time, re-based)."""
    return SENT_AT + (SEND0_US + seq * GAP_US) / 1e6 - WALL


def _analyze(reads: list[tuple[float, bytes]], *, lag: float | None = None) -> Measurement:
    measurement = Measurement(started_wall=WALL + (lag or 0.0), got_response=True, status=200, lag=lag)
    analyze_stream(measurement, reads, sent_at=SENT_AT, headers_at=SENT_AT + 0.001, ended_at=reads[-1][0])
    assert measurement.ok, measurement.reason
    return measurement


def _relayed(chunks: int, delay: float = 0.003) -> list[tuple[float, bytes]]:
    """A faithful relay: chunk k arrives ``delay`` after it was sent, one read per event."""
    reads = [(_sent(0) - 0.001, _chunk({"role": "assistant", "content": ""}))]
    reads += [(_sent(k) + delay, _chunk({"content": f"{_stamp(k)} w{k}"})) for k in range(chunks)]
    reads.append((_sent(chunks - 1) + delay + 0.001, _tail(chunks)))
    return reads


def test_a_clean_relay_has_a_delay_per_chunk_and_nothing_else() -> None:
    measurement = _analyze(_relayed(6, delay=0.003))
    assert measurement.stamps == 6
    assert measurement.chunk_delays == pytest.approx([0.003] * 6, abs=2e-6)
    assert (measurement.coalesced, measurement.split, measurement.missing) == (0, 0, 0)
    assert measurement.buffered is False
    assert measurement.inter_chunk == pytest.approx([GAP_US / 1e6] * 5)


def test_an_open_loop_request_counts_delays_from_the_actual_send() -> None:
    # the timings count from the intended send (sent_at), which was 0.25 s before the actual
    # send whose wall clock started_wall is: the wall time at sent_at is started_wall - lag
    measurement = _analyze(_relayed(3, delay=0.002), lag=0.25)
    assert measurement.chunk_delays == pytest.approx([0.002] * 3, abs=2e-6)


def test_unstamped_streams_leave_the_stamp_fields_at_their_defaults() -> None:
    reads = [(51.0, _chunk({"role": "assistant", "content": "Hello"})), (51.1, _chunk({"content": " you"}))]
    reads.append((51.2, _tail(2)))
    measurement = _analyze(reads)
    assert (measurement.stamps, measurement.chunk_delays, measurement.buffered) == (0, [], False)
    assert (measurement.coalesced, measurement.split, measurement.missing) == (0, 0, 0)


def test_merged_chunks_count_as_coalesced() -> None:
    reads = _relayed(5)
    # chunks 1, 2 and 3 reach the client as one event, when chunk 3 would have
    merged = _chunk({"content": f"{_stamp(1)} w1{_stamp(2)} w2{_stamp(3)} w3"})
    reads[2:5] = [(reads[4][0], merged)]
    measurement = _analyze(reads)
    assert measurement.stamps == 5 and measurement.coalesced == 1 and measurement.split == 0
    assert measurement.missing == 0
    assert measurement.chunk_delays[1] == pytest.approx(0.003 + 2 * GAP_US / 1e6, abs=2e-6)


def test_a_chunk_cut_in_two_counts_as_split_and_arrives_with_its_second_half() -> None:
    reads = _relayed(4)
    stamp = _stamp(2)
    arrived = reads[3][0]
    first, second = stamp[:7], stamp[7:] + " w2"
    reads[3:4] = [(arrived, _chunk({"content": first})), (arrived + 0.010, _chunk({"content": second}))]
    measurement = _analyze(reads)
    assert measurement.stamps == 4 and measurement.split == 1 and measurement.coalesced == 0
    assert measurement.chunk_delays[2] == pytest.approx(0.013, abs=2e-6)


def test_a_lost_chunk_is_missing() -> None:
    reads = _relayed(6)
    del reads[3]  # chunk 2
    del reads[4]  # chunk 4 (indexes shift by one)
    measurement = _analyze(reads)
    assert measurement.stamps == 4 and measurement.missing == 2


def test_content_held_back_and_flushed_is_buffered() -> None:
    reads = _relayed(6)
    flushed = reads[-2][0]
    # chunks 2..5 were sent 20 ms apart but arrive within half a millisecond of each other
    for k, index in enumerate(range(3, 7)):
        reads[index] = (flushed + k * 0.000_1, reads[index][1])
    measurement = _analyze(reads)
    assert measurement.buffered is True
    assert measurement.coalesced == 0  # held back, not merged: each chunk still has its own event


def test_a_provider_that_sends_back_to_back_is_not_buffering() -> None:
    # itl_ms=0: every chunk is sent within the same millisecond and arrives together
    body = _chunk({"role": "assistant", "content": ""})
    body += b"".join(_chunk({"content": f"{format_stamp(k, SEND0_US + k * 30)}w"}) for k in range(20))
    measurement = _analyze([(_sent(0) + 0.002, body + _tail(20))])
    assert measurement.stamps == 20 and measurement.buffered is False


def test_the_buffering_rule_at_its_edges() -> None:
    gap = 0.020
    sends = [k * gap for k in range(10)]
    relayed = [s + 0.001 for s in sends]
    assert not is_buffered(relayed, sends)
    two_together = [*relayed[:4], relayed[4], relayed[4] + 0.0005, *relayed[6:]]
    assert not is_buffered(two_together, sends)  # two chunks are a pair, not a burst
    three_together = relayed[:4] + [relayed[6]] * 3 + relayed[7:]
    assert is_buffered(three_together, sends)  # sent over 2 gaps, arrived at once
    spread = [*relayed[:4], relayed[6], relayed[6] + 0.0006, relayed[6] + 0.0012, *relayed[7:]]
    assert not is_buffered(spread, sends)  # not within 1 ms of the first of them
    assert not is_buffered([1.0, 1.0], [0.0, 0.1])  # too few chunks for a burst


def test_the_server_reported_timings_are_kept() -> None:
    reads = _relayed(2)
    debug = {
        "request_id": "r",
        "provider": "p",
        "upstream_model": "m",
        "timings_ms": {"total": 7.5, "upstream": 4},
    }
    compression = {"saved_tokens": 1, "cost_savings": 0, "reduction": 1.0, "time_ms": 2}
    reads[-1] = (reads[-1][0], _tail(2, debug=debug, compression=compression))
    measurement = _analyze(reads)
    assert measurement.server_ms == {"compression": 2.0, "debug.total": 7.5, "debug.upstream": 4.0}
    completion = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "debug": {**debug, "timings_ms": {"total": 3, "upstream": -1, "bogus": "x"}},
    }
    plain = Measurement(started_wall=WALL)
    analyze_completion(plain, json.dumps(completion).encode(), sent_at=0, headers_at=0, ended_at=0)
    assert plain.ok and plain.server_ms == {"debug.total": 3.0}  # not-a-duration values are left out


def test_stamps_are_read_the_same_whichever_path_judges_the_stream() -> None:
    # CRLF line ends send the stream down the full replay; the stamps must come out the same
    reads = _relayed(5)
    crlf = [(arrived, data.replace(b"\n", b"\r\n")) for arrived, data in reads]
    assert replay_stream(reads, include_usage=True).shortcut
    assert not replay_stream(crlf, include_usage=True).shortcut
    fast, full = _analyze(reads), _analyze(crlf)
    assert fast.chunk_delays == pytest.approx(full.chunk_delays)
    assert (fast.stamps, fast.missing, fast.buffered) == (full.stamps, full.missing, full.buffered)


def test_text_that_looks_like_stamp_syntax_is_read_the_same() -> None:
    # ':' and '~' in the words defeat the quick split of the stamps; the pattern reads them
    plain, tricky = _relayed(4), _relayed(4)
    for k in range(4):
        tricky[k + 1] = (tricky[k + 1][0], _chunk({"content": f"{_stamp(k)} a:b~c{k}"}))
    ours, theirs = _analyze(plain), _analyze(tricky)
    assert theirs.stamps == 4 and (theirs.coalesced, theirs.split, theirs.missing) == (0, 0, 0)
    assert theirs.chunk_delays == pytest.approx(ours.chunk_delays)
