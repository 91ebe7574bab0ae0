"""no_duplicate_json_keys on hand-made answers: every repeat is named by path with both values, and
nothing else is.

``json.loads`` keeps the last of two equal keys without a word, so each body here is raw text: the
repeats exist only in the bytes, which is where a first-wins client would read them.
"""

from __future__ import annotations

import pytest

from gateproof.contract import SCENARIOS
from gateproof.contract._wire import MAX_JSON_DEPTH
from gateproof.contract.checks import CHECKS, CheckContext, CheckFailed, NotApplicable, Observed, Profile
from gateproof.contract.checks.bodies import no_duplicate_json_keys
from gateproof.contract.stream import check_stream
from gateproof.openapi import validators

_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream"}


def _context(body: str | bytes, *, stream: bool = False, scenario: str = "chat_basic") -> CheckContext:
    raw = body.encode() if isinstance(body, str) else body
    report = check_stream(raw, include_usage=False) if stream else None
    return CheckContext(
        scenario=_BY_NAME[scenario],
        profile=Profile.OPENAI_CORE,
        validators=validators(),
        observed=Observed(status=200, headers=_SSE if stream else _JSON, body=raw),
        stream=report,
    )


def _failure(body: str | bytes, *, stream: bool = False, scenario: str = "chat_basic") -> CheckFailed:
    with pytest.raises(CheckFailed) as caught:
        no_duplicate_json_keys(_context(body, stream=stream, scenario=scenario))
    return caught.value


def _sse(*payloads: str) -> str:
    return "".join(f"data: {payload}\n\n" for payload in payloads)


def test_it_is_registered_for_every_profile_and_judges_every_kind_of_scenario() -> None:
    registered = CHECKS.get("no_duplicate_json_keys")
    assert registered.profiles == frozenset(Profile)
    judged = {scenario.name for scenario in SCENARIOS if "no_duplicate_json_keys" in scenario.checks}
    assert {
        "chat_basic",
        "stream_basic",
        "models_list",
        "unknown_model",
        "upstream_mid_stream_error",
    } <= judged
    assert judged == {scenario.name for scenario in SCENARIOS}


def test_a_top_level_repeat_is_named_with_both_values() -> None:
    failure = _failure(
        '{"id": "a", "model": "gpt-4o", "object": "chat.completion", "model": "openai/gpt-4o"}'
    )
    assert failure.reason == (
        'model appears twice: first-wins clients read "gpt-4o", last-wins ones "openai/gpt-4o"'
    )
    assert "model" in failure.actual


def test_a_nested_repeat_is_named_by_its_path() -> None:
    body = (
        '{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hel", "content": "Hello"}}]}'
    )
    failure = _failure(body)
    assert failure.reason.startswith("choices[0].message.content appears twice")
    assert '"Hel"' in failure.reason and '"Hello"' in failure.reason


def test_repeats_inside_array_items_name_the_item_and_all_are_counted() -> None:
    body = '{"data": [{"id": "a", "object": "model"}, {"id": "b", "id": "c"}, {"id": "d", "id": "d", "id": "e"}]}'
    failure = _failure(body, scenario="models_list")
    assert failure.reason.startswith(
        'data[1].id appears twice: first-wins clients read "b", last-wins ones "c"'
    )
    assert failure.reason.endswith("(+1 more)")
    assert 'data[2].id appears 3 times: first-wins clients read "d", last-wins ones "e"' in failure.actual


def test_a_repeat_with_the_same_value_still_fails() -> None:
    failure = _failure('{"error": {"code": "not_found", "code": "not_found", "message": "no"}}')
    assert failure.reason == 'error.code appears twice, each with "not_found"'


def test_a_repeat_inside_the_value_last_wins_parsing_dropped_is_still_named() -> None:
    failure = _failure('{"usage": {"total_tokens": 1, "total_tokens": 2}, "usage": {"total_tokens": 3}}')
    assert failure.reason.startswith("usage appears twice")
    assert "usage.total_tokens appears twice: first-wins clients read 1, last-wins ones 2" in failure.actual


def test_keys_that_are_not_plain_names_are_quoted() -> None:
    failure = _failure('{"meta": {"x-trace.id": 1, "x-trace.id": 2}}')
    assert failure.reason.startswith('meta["x-trace.id"] appears twice')


def test_equal_keys_in_sibling_and_nested_objects_are_not_repeats() -> None:
    body = (
        '{"id": "x", "choices": [{"index": 0, "message": {"content": "a"}},'
        ' {"index": 1, "message": {"content": "b"}}],'
        ' "usage": {"id": "x", "usage": {"id": "y"}}, "content": "c"}'
    )
    no_duplicate_json_keys(_context(body))


def test_a_repeat_in_a_stream_chunk_names_the_event() -> None:
    body = _sse(
        '{"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}',
        '{"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi", "content": "Hello"}}]}',
        "[DONE]",
    )
    failure = _failure(body, stream=True, scenario="stream_basic")
    assert failure.reason.startswith("event #1: choices[0].delta.content appears twice")


def test_every_event_is_read_even_without_a_stream_report() -> None:
    body = _sse(
        '{"model": "gpt-4o", "model": "openai/gpt-4o"}', '{"model": "gpt-4o", "model": "openai/gpt-4o"}'
    )
    with pytest.raises(CheckFailed) as caught:
        no_duplicate_json_keys(
            CheckContext(
                scenario=_BY_NAME["stream_basic"],
                profile=Profile.EDGEE,
                validators=validators(),
                observed=Observed(status=200, headers=_SSE, body=body.encode()),
            )
        )
    assert caught.value.reason.startswith("event #0: model appears twice")
    assert caught.value.reason.endswith("(+1 more)")


def test_an_error_event_in_a_stream_is_read_too() -> None:
    body = _sse('{"error": {"message": "a", "message": "b", "code": "provider_error"}}')
    failure = _failure(body, stream=True, scenario="upstream_mid_stream_error")
    assert failure.reason.startswith("event #0: error.message appears twice")


def test_a_clean_stream_passes_and_events_that_are_not_json_are_left_to_chunk_is_json() -> None:
    body = _sse(
        '{"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}', "{'not': json}", "[DONE]"
    )
    no_duplicate_json_keys(_context(body, stream=True, scenario="stream_basic"))


def test_nothing_to_read_is_not_applicable() -> None:
    for body, stream in ((b"", False), (b"Not Found", False), (_sse("[DONE]"), True)):
        with pytest.raises(NotApplicable):
            no_duplicate_json_keys(_context(body, stream=stream))


def test_a_body_nested_past_the_depth_limit_fails_without_recursing() -> None:
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert "deeper than" in _failure(deep).reason
    very_deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    assert "deeper than" in _failure(very_deep).reason
    assert "deeper than" in _failure(_sse(deep), stream=True, scenario="stream_basic").reason
