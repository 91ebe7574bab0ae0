"""The shared wire rules: bounded JSON depth, and failure names that read the same everywhere."""

from __future__ import annotations

import json

import pytest

from gateproof.contract import MAX_JSON_DEPTH, JSONTooDeep, TransportFailure, json_depth, loads_bounded


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_deepest_allowed_document_parses() -> None:
    assert json_depth(loads_bounded(_nested(MAX_JSON_DEPTH))) == MAX_JSON_DEPTH


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 2_000, 100_000])
def test_a_deeper_document_is_refused_not_recursed(depth: int) -> None:
    """Past ~1000 levels the C parser itself recurses too far; both cases are one ValueError."""
    with pytest.raises(JSONTooDeep) as caught:
        loads_bounded(_nested(depth))
    assert isinstance(caught.value, ValueError)
    assert f"deeper than {MAX_JSON_DEPTH} levels" in str(caught.value)


def test_deep_objects_count_like_arrays() -> None:
    deep = '{"a": ' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(JSONTooDeep):
        loads_bounded(deep.encode())


def test_json_depth_does_not_recurse() -> None:
    value: list[object] = []
    for _ in range(50_000):
        value = [value]
    assert json_depth(value) == MAX_JSON_DEPTH + 1
    assert json_depth(value, limit=100_000) == 50_001
    assert json_depth({"a": 1}) == 1 and json_depth(3) == 0


def test_not_json_is_still_a_plain_value_error() -> None:
    with pytest.raises(ValueError) as caught:
        loads_bounded(b"{nope")
    assert not isinstance(caught.value, JSONTooDeep)
    assert isinstance(caught.value, json.JSONDecodeError)


def test_every_failure_has_a_sentence() -> None:
    for failure in TransportFailure:
        assert failure.sentence and failure.value == failure.value.lower()


# -- every place that parses the target's JSON uses the bound ------------------------------------

DEEP = _nested(100_000)


def test_a_deep_body_fails_the_json_checks_with_a_reason() -> None:
    from gateproof.contract.checks import CheckFailed, Observed

    with pytest.raises(CheckFailed) as caught:
        Observed(status=200, headers={}, body=DEEP.encode()).json()
    assert "too deep" in caught.value.reason


def test_deep_tool_call_arguments_fail_their_check() -> None:
    from types import SimpleNamespace

    from gateproof.contract.checks import CheckFailed, Observed
    from gateproof.contract.checks.bodies import tool_call_arguments_json_string

    body = {"choices": [{"message": {"tool_calls": [{"function": {"arguments": DEEP}}]}}]}
    ctx = SimpleNamespace(observed=Observed(status=200, headers={}, body=json.dumps(body).encode()))
    with pytest.raises(CheckFailed):
        tool_call_arguments_json_string(ctx)  # type: ignore[arg-type]


def test_deep_chunks_are_left_out_and_deep_excerpts_stay_text() -> None:
    from gateproof.contract._exchange import parse_chunks
    from gateproof.contract._runner import _excerpt

    assert parse_chunks(b"data: " + DEEP.encode() + b'\n\ndata: {"a": 1}\n\n') == [{"a": 1}]
    shallow_enough = _nested(100)
    assert isinstance(_excerpt(shallow_enough.encode()), str)  # deeper than a report walks
    assert _excerpt(_nested(3).encode()) == [[[]]]
    json.dumps(_excerpt(DEEP.encode()), indent=2)  # results.json can always be written
