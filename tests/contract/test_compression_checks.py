"""The compression, debug and tags checks, judged on hand-made answers: each rule passes and fails where it should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateproof.contract._profiles import validators_for
from gateproof.contract._scenarios import Scenario
from gateproof.contract.checks import (
    CHECKS,
    CheckContext,
    CheckFailed,
    NotApplicable,
    Observed,
    Profile,
    Redundant,
    load_all_checks,
)
from gateproof.contract.checks._extras import switch
from gateproof.contract.checks.compression import BASELINE_STEP, COMPRESS_STEP
from gateproof.contract.checks.debug import merged_tags
from gateproof.contract.stream import check_stream
from gateproof.openapi import JournalRecord

KEY = "gp-unit-secret-key-0123456789"
NEEDLES = ("FAILED tests/test_pay.py::test_refund - AssertionError", "ERROR db: connection refused")
MESSAGES = [
    {"role": "tool", "tool_call_id": "c1", "content": "compressed text"},
    {"role": "user", "content": "go"},
]


def _scenario(headers: dict[str, str] | None = None, needles: tuple[str, ...] = NEEDLES) -> Scenario:
    return Scenario(
        name="unit_compression",
        description="A hand-made scenario.",
        body={"messages": []},
        checks=(),
        headers=headers or {},
        needles=needles,
    )


def _answer(
    extras: dict[str, Any] | None = None, prompt: int = 600, end_s: float = 0.05, status: int = 200
) -> Observed:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 3, "total_tokens": prompt + 3},
        **(extras or {}),
    }
    return Observed(
        status=status,
        headers={"content-type": "application/json", "x-edgee-provider": "openai"},
        body=json.dumps(body).encode(),
        end_s=end_s,
    )


def _stream(chunks: list[dict[str, Any]], end_s: float = 0.05) -> Observed:
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    return Observed(
        status=200, headers={"content-type": "text/event-stream"}, body=body, end_s=end_s, chunks=chunks
    )


def _record(body: Any, prompt: int = 600) -> JournalRecord:
    return JournalRecord(
        seq=1,
        received_at=0.0,
        method="POST",
        path="/v1/chat/completions",
        body=body,
        usage={"prompt_tokens": prompt, "completion_tokens": 3, "total_tokens": prompt + 3},
    )


def _ctx(
    observed: Observed,
    *,
    request: Any = None,
    headers: dict[str, str] | None = None,
    journal: list[JournalRecord] | None = None,
    **extra: Any,
) -> CheckContext:
    return CheckContext(
        scenario=_scenario(headers, extra.pop("needles", NEEDLES)),
        profile=Profile.EDGEE,
        validators=validators_for(Profile.EDGEE),
        observed=observed,
        request_body={"model": "openai/gpt-4o", "messages": []} if request is None else request,
        journal=journal,
        client_key=KEY,
        **extra,
    )


def _asked(**extra: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-4o", "messages": [], "enable_compression": True, **extra}


def _judge(name: str, ctx: CheckContext) -> str:
    """ "passed", "failed: <reason>", "n/a" or "redundant" for check ``name`` on ``ctx``."""
    load_all_checks()
    try:
        CHECKS.get(name).function(ctx)
    except CheckFailed as failure:
        return f"failed: {failure.reason}"
    except NotApplicable:
        return "n/a"
    except Redundant:
        return "redundant"
    return "passed"


COMPRESSION = {"saved_tokens": 400, "cost_savings": 1000, "reduction": 40.0, "time_ms": 3}


def _compressed(**changes: Any) -> Observed:
    return _answer({"compression": {**COMPRESSION, **changes}})


# -- switches ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        ({}, {}, None),
        ({"enable_compression": True}, {}, True),
        ({"enable_compression": False}, {}, False),
        ({"enable_compression": "true"}, {}, None),  # only a JSON boolean counts in the body
        ({}, {"x-edgee-enable-compression": "TRUE"}, True),
        ({}, {"X-Edgee-Enable-Compression": "0"}, False),
        ({"enable_compression": False}, {"X-Edgee-Enable-Compression": "1"}, True),  # either is enough
    ],
)
def test_the_compression_switch_reads_body_and_header(
    body: dict[str, Any], headers: dict[str, str], expected: bool | None
) -> None:
    assert switch(body, headers, "compression") is expected


def test_merged_tags_follow_d7() -> None:
    body = {"tags": ["a", "b", 3]}
    assert merged_tags(body, " b, c ,,a, d") == ["a", "b", "c", "d"]
    assert merged_tags({}, None) == []


# -- presence -----------------------------------------------------------------------------------------


def test_compression_absent_unless_asked() -> None:
    off = {"model": "m", "messages": [], "enable_compression": False}
    assert _judge("compression_absent_unless_asked", _ctx(_answer(), request=off)) == "passed"
    assert _judge("compression_absent_unless_asked", _ctx(_compressed(), request=off)).startswith("failed")
    stream = _stream([{"choices": [{"delta": {}}]}, {"choices": [], "compression": COMPRESSION}])
    assert _judge("compression_absent_unless_asked", _ctx(stream, request=off)).startswith("failed")
    # a request that says nothing leaves it to the key's default: not judged
    assert _judge("compression_absent_unless_asked", _ctx(_compressed())) == "n/a"
    assert _judge("compression_absent_unless_asked", _ctx(_compressed(), request=_asked())) == "n/a"


def test_compression_present_when_asked_by_body_or_header() -> None:
    assert _judge("compression_present_when_asked", _ctx(_compressed(), request=_asked())) == "passed"
    header = {"X-Edgee-Enable-Compression": "true"}
    assert _judge("compression_present_when_asked", _ctx(_compressed(), headers=header)) == "passed"
    assert _judge("compression_present_when_asked", _ctx(_answer(), headers=header)).startswith("failed")
    zeros = {"saved_tokens": 0, "cost_savings": 0, "reduction": 0, "time_ms": 0}
    assert _judge(
        "compression_present_when_asked", _ctx(_answer({"compression": zeros}), headers=header)
    ) == ("passed")


def test_compression_in_a_stream_rides_on_the_last_chunk_only() -> None:
    content = {"choices": [{"delta": {"content": "x"}}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 600}}
    last = {**usage, "compression": COMPRESSION}
    good = _stream([content, last])
    on_content = _stream([{**content, "compression": COMPRESSION}, last])
    before_usage = _stream([content, {"choices": [], "compression": COMPRESSION}, usage])
    request = _asked(stream=True)

    def judged(observed: Observed, name: str, failed: frozenset[str] = frozenset()) -> str:
        report = check_stream(observed.body, include_usage=True)
        return _judge(name, _ctx(observed, request=request, stream=report, failed=failed))

    assert judged(good, "compression_on_final_chunk_only") == "passed"
    assert judged(on_content, "compression_on_final_chunk_only").startswith(
        "failed: compression rides on chunk 0 before the last"
    )
    # a content chunk with compression is the chunk schema's failure (D27) when it was reported
    schema = frozenset({"chunk_schema_conformance"})
    assert judged(on_content, "compression_on_final_chunk_only", schema) == "redundant"
    # an extras chunk of its own before the usage chunk: present, but not where D1 puts it
    assert judged(before_usage, "compression_present_when_asked") == "passed"
    assert judged(before_usage, "compression_on_final_chunk_only", schema).startswith(
        "failed: the last chunk carries no compression"
    )
    assert judged(_stream([content, usage]), "compression_present_when_asked").startswith("failed")


# -- types and arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({}, "passed"),
        ({"saved_tokens": -1}, "failed"),
        ({"time_ms": 2.5}, "failed"),
        ({"cost_savings": True}, "failed"),
        ({"reduction": 140.0}, "failed"),
        ({"reduction": "40"}, "failed"),
        ({"reduction": 40.123}, "failed"),  # D2: two decimals
        ({"reduction": 40}, "passed"),
    ],
)
def test_compression_fields_in_range(changes: dict[str, Any], verdict: str) -> None:
    got = _judge("compression_fields_in_range", _ctx(_compressed(**changes), request=_asked()))
    assert got.split(":")[0] == verdict, got


def test_a_type_issue_the_schema_check_reported_is_not_reported_twice() -> None:
    ctx = _ctx(
        _compressed(saved_tokens=-1), request=_asked(), failed=frozenset({"response_schema_conformance"})
    )
    assert _judge("compression_fields_in_range", ctx) == "redundant"
    # the rounding rule is not in the schema: still this check's own failure
    ctx = _ctx(
        _compressed(reduction=40.123), request=_asked(), failed=frozenset({"response_schema_conformance"})
    )
    assert _judge("compression_fields_in_range", ctx).startswith("failed")


def _with_baseline(observed: Observed, baseline_prompt: int = 1000, **extra: Any) -> CheckContext:
    return _ctx(observed, request=_asked(), steps={BASELINE_STEP: _answer(prompt=baseline_prompt)}, **extra)


def test_saved_tokens_match_the_uncompressed_baseline() -> None:
    assert _judge("compression_saved_tokens_match_baseline", _with_baseline(_compressed())) == "passed"
    wrong = _judge("compression_saved_tokens_match_baseline", _with_baseline(_compressed(saved_tokens=300)))
    assert wrong.startswith("failed") and "400 saved" in wrong
    no_step = _ctx(_compressed(), request=_asked())
    assert _judge("compression_saved_tokens_match_baseline", no_step).startswith("failed")
    usage_wrong = _with_baseline(_compressed(), failed=frozenset({"usage_matches_provider"}))
    assert _judge("compression_saved_tokens_match_baseline", usage_wrong) == "redundant"


@pytest.mark.parametrize(
    ("saved", "prompt", "reduction", "verdict"),
    [
        (400, 600, 40.0, "passed"),
        (400, 600, 40.01, "passed"),
        (400, 600, 66.67, "failed"),  # saved / compressed: the wrong denominator
        (0, 600, 0, "passed"),
        (0, 600, 1.5, "failed"),
        (1, 2, 33.33, "passed"),
    ],
)
def test_reduction_is_saved_over_the_original_prompt(
    saved: int, prompt: int, reduction: float, verdict: str
) -> None:
    observed = _answer(
        {"compression": {**COMPRESSION, "saved_tokens": saved, "reduction": reduction}}, prompt=prompt
    )
    got = _judge("compression_reduction_consistent", _ctx(observed, request=_asked()))
    assert got.split(":")[0] == verdict, got


@pytest.mark.parametrize(
    ("saved", "cost", "verdict"),
    [(400, 1000, "passed"), (0, 0, "passed"), (400, 0, "failed"), (0, 7, "failed")],
)
def test_cost_savings_is_zero_exactly_when_nothing_was_saved(saved: int, cost: int, verdict: str) -> None:
    observed = _compressed(saved_tokens=saved, cost_savings=cost, reduction=0 if not saved else 40.0)
    got = _judge("compression_cost_savings_consistent", _ctx(observed, request=_asked()))
    assert got.split(":")[0] == verdict, got


@pytest.mark.parametrize(
    ("saved", "cost", "verdict"),
    [
        (400, 1000, "passed"),
        (401, 1003, "passed"),
        (401, 1002, "passed"),
        (400, 4000, "failed"),
        (400, 0, "failed"),
    ],
)
def test_cost_savings_is_saved_tokens_at_the_declared_input_price(
    saved: int, cost: int, verdict: str
) -> None:
    observed = _compressed(saved_tokens=saved, cost_savings=cost)
    ctx = _ctx(observed, request=_asked(), declared_input_price=2.5)  # 401 x 2.5 = 1002.5: either rounding
    got = _judge("compression_cost_savings_consistent", ctx)
    assert got.split(":")[0] == verdict, got


def test_time_ms_within_the_client_observed_latency() -> None:
    assert (
        _judge("compression_time_within_latency", _ctx(_compressed(time_ms=12), request=_asked())) == "passed"
    )
    slow = _ctx(_answer({"compression": {**COMPRESSION, "time_ms": 3000}}, end_s=0.2), request=_asked())
    assert _judge("compression_time_within_latency", slow).startswith("failed")


# -- what reached the provider --------------------------------------------------------------------------


def test_every_needle_reaches_the_provider() -> None:
    kept = {"messages": [{"role": "tool", "content": "\n".join(NEEDLES)}]}
    dropped = {"messages": [{"role": "tool", "content": NEEDLES[0]}]}
    assert _judge(
        "compression_keeps_needles", _ctx(_compressed(), request=_asked(), journal=[_record(kept)])
    ) == ("passed")
    lost = _judge(
        "compression_keeps_needles", _ctx(_compressed(), request=_asked(), journal=[_record(dropped)])
    )
    assert lost.startswith("failed: 1 of 2") and "connection refused" in lost
    assert _judge("compression_keeps_needles", _ctx(_compressed(), request=_asked(), journal=None)) == "n/a"
    none = _ctx(_compressed(), request=_asked(), journal=[_record(dropped)], needles=())
    assert _judge("compression_keeps_needles", none) == "n/a"


def test_compression_never_makes_the_forwarded_prompt_longer() -> None:
    def ctx(compressed: int, original: int) -> CheckContext:
        return _with_baseline(
            _compressed(),
            journal=[_record({}, prompt=compressed)],
            step_journals={BASELINE_STEP: [_record({}, prompt=original)]},
        )

    assert _judge("compression_never_lengthens_prompt", ctx(600, 1000)) == "passed"
    assert _judge("compression_never_lengthens_prompt", ctx(1000, 1000)) == "passed"
    assert _judge("compression_never_lengthens_prompt", ctx(1100, 1000)).startswith("failed")


def _compress_answer(messages: Any, before: int = 1000, after: int = 600) -> Observed:
    body = {
        "model": "openai/gpt-4o",
        "messages": messages,
        "compression": {"uncompressed_input_tokens": before, "compressed_input_tokens": after},
    }
    return Observed(status=200, headers={"content-type": "application/json"}, body=json.dumps(body).encode())


def test_compress_endpoint_agrees_with_chat_compression() -> None:
    def ctx(answer: Observed) -> CheckContext:
        return _ctx(
            _compressed(),
            request=_asked(),
            journal=[_record({"model": "gpt-4o", "messages": MESSAGES})],
            steps={COMPRESS_STEP: answer},
        )

    assert _judge("compress_endpoint_matches_chat", ctx(_compress_answer(MESSAGES))) == "passed"
    other = [{**MESSAGES[0], "content": "uncompressed text"}, MESSAGES[1]]
    differs = _judge("compress_endpoint_matches_chat", ctx(_compress_answer(other)))
    assert differs.startswith("failed") and "from message 0" in differs
    saving = _judge("compress_endpoint_matches_chat", ctx(_compress_answer(MESSAGES, after=700)))
    assert saving.startswith("failed") and "300" in saving
    # chat's own saved_tokens already failed against the baseline: the same wrong figure again
    redundant = ctx(_compress_answer(MESSAGES, after=700))
    redundant.failed = frozenset({"compression_saved_tokens_match_baseline"})
    assert _judge("compress_endpoint_matches_chat", redundant) == "redundant"


# -- debug ------------------------------------------------------------------------------------------------

DEBUG = {
    "request_id": "req_1",
    "provider": "openai",
    "upstream_model": "gpt-4o",
    "timings_ms": {"total": 4.2},
}


def test_debug_absent_unless_asked() -> None:
    assert _judge("debug_absent_unless_asked", _ctx(_answer())) == "passed"
    assert _judge("debug_absent_unless_asked", _ctx(_answer({"debug": DEBUG}))).startswith("failed")
    off = {"X-Edgee-Debug": "false"}
    assert _judge("debug_absent_unless_asked", _ctx(_answer({"debug": DEBUG}), headers=off)).startswith(
        "failed"
    )
    assert _judge(
        "debug_absent_unless_asked", _ctx(_answer({"debug": DEBUG}), headers={"X-Edgee-Debug": "1"})
    ) == ("n/a")


@pytest.mark.parametrize(
    "how",
    [
        {"request": {"model": "m", "messages": [], "enable_debug": True}},
        {"headers": {"x-edgee-debug": "True"}},
    ],
)
def test_debug_present_with_the_d8_fields_when_asked(how: dict[str, Any]) -> None:
    assert _judge("debug_present_when_asked", _ctx(_answer({"debug": DEBUG}), **how)) == "passed"
    assert _judge("debug_present_when_asked", _ctx(_answer(), **how)).startswith("failed")
    partial = {key: value for key, value in DEBUG.items() if key != "upstream_model"}
    assert _judge("debug_present_when_asked", _ctx(_answer({"debug": partial}), **how)).startswith("failed")
    negative = {**DEBUG, "timings_ms": {"total": -1}}
    assert _judge("debug_present_when_asked", _ctx(_answer({"debug": negative}), **how)).startswith("failed")


def test_debug_names_what_the_provider_received() -> None:
    on = {"X-Edgee-Debug": "true"}
    journal = [_record({"model": "gpt-4o", "messages": []})]
    assert _judge("debug_matches_upstream", _ctx(_answer({"debug": DEBUG}), headers=on, journal=journal)) == (
        "passed"
    )
    public = {**DEBUG, "upstream_model": "openai/gpt-4o"}
    assert _judge(
        "debug_matches_upstream", _ctx(_answer({"debug": public}), headers=on, journal=journal)
    ).startswith("failed")
    other = {**DEBUG, "provider": "anthropic"}
    assert _judge(
        "debug_matches_upstream", _ctx(_answer({"debug": other}), headers=on, journal=journal)
    ).startswith("failed")


# -- the request log --------------------------------------------------------------------------------------

TAGGED = {"model": "m", "messages": [], "tags": ["gateproof-cid:run-1-x", "team"]}
TAG_HEADER = {"X-Edgee-Tags": "team, ci ,"}


def _log(tmp_path: Path, *records: dict[str, Any]) -> str:
    path = tmp_path / "requests.jsonl"
    path.write_text("not json\n" + "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def _logged(tmp_path: Path, *records: dict[str, Any]) -> str:
    ctx = _ctx(_answer(), request=TAGGED, headers=TAG_HEADER, request_log=_log(tmp_path, *records))
    return _judge("tags_recorded_in_request_log", ctx)


def test_the_request_log_records_the_merged_tags_and_the_key_name(tmp_path: Path) -> None:
    good = {"key": "default", "tags": ["gateproof-cid:run-1-x", "team", "ci"], "status": 200}
    assert _logged(tmp_path, {"key": "default", "tags": ["other"]}, good) == "passed"
    assert _logged(tmp_path, {**good, "tags": ["gateproof-cid:run-1-x", "team"]}).startswith("failed")
    assert _logged(tmp_path, {**good, "tags": ["team", "ci", "gateproof-cid:run-1-x"]}).startswith("failed")
    assert _logged(tmp_path, {"key": "default", "tags": ["team"]}).startswith("failed: no line")
    assert _logged(tmp_path, {**good, "key": None}).startswith("failed")
    leaked = _logged(tmp_path, {**good, "key": KEY})
    assert leaked.startswith("failed: the request log holds the client's key") and KEY not in leaked


def test_a_log_line_with_raw_unicode_line_separators_is_one_record(tmp_path: Path) -> None:
    """JSON Lines ends a record at \\n only; another gateway may write U+2028 or U+0085 raw in a tag."""
    tags = ["gateproof-cid:run-1-x", "x\u2028y", "p\x85q"]
    path = tmp_path / "requests.jsonl"
    path.write_text(json.dumps({"key": "default", "tags": tags}, ensure_ascii=False) + "\n", encoding="utf-8")
    ctx = _ctx(_answer(), request={"model": "m", "messages": [], "tags": tags}, request_log=str(path))
    assert _judge("tags_recorded_in_request_log", ctx) == "passed"


def test_the_request_log_check_needs_a_declared_log_and_a_marker_tag(tmp_path: Path) -> None:
    assert _judge("tags_recorded_in_request_log", _ctx(_answer(), request=TAGGED)) == "n/a"
    path = _log(tmp_path, {"key": "default", "tags": []})
    untagged = _ctx(_answer(), request={"model": "m", "messages": []}, request_log=path)
    assert _judge("tags_recorded_in_request_log", untagged) == "n/a"
    missing = _ctx(_answer(), request=TAGGED, request_log=str(tmp_path / "absent.jsonl"))
    assert _judge("tags_recorded_in_request_log", missing).startswith("failed")


def test_every_new_check_is_an_edgee_promise() -> None:
    load_all_checks()
    names = [c.name for c in CHECKS if c.function.__module__.endswith((".compression", ".debug"))]
    assert len(names) == 15
    assert all(CHECKS.get(name).profiles == {Profile.EDGEE} for name in names)
