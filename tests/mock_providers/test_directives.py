"""The directive grammar, as pure functions."""

from __future__ import annotations

import pytest

from gateproof.mock_providers import FAULTS, Directive, DirectiveError, parse_directive


def test_no_directive_means_none() -> None:
    assert parse_directive("What is the capital of France?") is None


def test_bare_directive_sets_nothing() -> None:
    assert parse_directive("hello [[gateproof]] there") == Directive()


def test_all_keys_parse_to_typed_values() -> None:
    text = (
        "Please [[gateproof scenario=tool_call tokens=40 tool=get_weather calls=2 status=503 retry_after=7"
        " ttft_ms=200 itl_ms=20 cid=t-1.a:b fault=truncate fault_after=3 fault_ms=50 seed=9]] now"
    )
    directive = parse_directive(text)
    assert directive == Directive(
        scenario="tool_call",
        tokens=40,
        tool="get_weather",
        calls=2,
        status=503,
        retry_after=7,
        ttft_ms=200,
        itl_ms=20,
        cid="t-1.a:b",
        fault="truncate",
        fault_after=3,
        fault_ms=50,
        seed=9,
    )
    assert directive is not None
    assert directive.given()["tokens"] == 40
    assert "scenario" in directive.given() and len(directive.given()) == 13


def test_directive_may_span_whitespace_and_newlines() -> None:
    assert parse_directive("[[gateproof\n  tokens=3\tcid=x ]]") == Directive(tokens=3, cid="x")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[gateproof colour=blue]]", "unknown key 'colour'"),
        ("[[gateproof tokens=ten]]", "tokens must be an integer"),
        ("[[gateproof tokens=-1]]", "tokens must be an integer"),
        ("[[gateproof tokens=100001]]", "from 0 to 100000"),
        ("[[gateproof scenario=poem]]", "scenario must be one of text, tool_call"),
        ("[[gateproof status=200]]", "status must be an integer from 400 to 599"),
        ("[[gateproof fault=gremlins]]", "unknown fault 'gremlins'"),
        ("[[gateproof tokens]]", "expected key=value"),
        ("[[gateproof tokens=1 tokens=2]]", "given twice"),
        ("[[gateproof cid=a/b]]", "cid must be made of"),
        ("[[gateproof tokens=1", "not followed by"),
        ("[[gateproof]] then [[gateproof", "not followed by"),
        ("[[gateproof tokens=1]] [[gateproof tokens=2]]", "more than one directive"),
    ],
)
def test_bad_directives_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(DirectiveError) as caught:
        parse_directive(text)
    assert needle in str(caught.value)
    assert caught.value.error.status == 400
    assert caught.value.error.code == "invalid_directive"


def test_unknown_fault_lists_the_known_ones() -> None:
    with pytest.raises(DirectiveError) as caught:
        parse_directive("[[gateproof fault=nope]]")
    for name in FAULTS:
        assert name in str(caught.value)


def test_rejected_directive_still_yields_its_cid() -> None:
    with pytest.raises(DirectiveError) as caught:
        parse_directive("[[gateproof cid=keep-me tokens=lots]]")
    assert caught.value.cid == "keep-me"


def test_marker_must_be_a_whole_word() -> None:
    with pytest.raises(DirectiveError):
        parse_directive("[[gateproofs tokens=1]]")
