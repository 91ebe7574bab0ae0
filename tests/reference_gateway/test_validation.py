"""The compiled request validator says exactly what the spec's Python validators say, only faster.

The gateway decides with ``jsonschema_rs`` and names the culprit with the Python validators run
over the failing items only; these tests hold that to the plain Python validators' answer
(verdict, ``param`` and message) on the golden corpus and on long bodies.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from gateproof.openapi import SchemaKind, load_corpus, validators
from gateproof.reference_gateway import GatewayError
from gateproof.reference_gateway._validation import RequestValidator, shipped_request_schema

FAST = RequestValidator(validators(), shipped_request_schema(), max_messages=100_000)
SLOW = RequestValidator(validators(), None, max_messages=100_000)

REQUESTS = [entry for entry in load_corpus() if entry.kind is SchemaKind.REQUEST]


def _verdict(checker: RequestValidator, body: Any) -> tuple[str | None, str] | None:
    try:
        checker.check_body(body)
    except GatewayError as error:
        assert (error.status, error.code) == (400, "invalid_request")
        return error.param, error.message
    return None


@pytest.mark.parametrize("entry", REQUESTS, ids=[entry.id for entry in REQUESTS])
def test_corpus_verdicts_match(entry: Any) -> None:
    assert _verdict(FAST, entry.payload) == _verdict(SLOW, entry.payload)
    assert (_verdict(FAST, entry.payload) is None) is entry.valid


def _long(count: int) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o",
        "messages": [{"role": ("user", "assistant")[i % 2], "content": f"turn {i}"} for i in range(count)],
    }


def _broken(count: int, **changes: dict[str, Any]) -> dict[str, Any]:
    """A long body with ``messages[i]`` replaced for each ``m<i>=...`` and other fields set."""
    body = _long(count)
    for name, value in changes.items():
        if name.startswith("m") and name[1:].isdigit():
            body["messages"][int(name[1:])] = value
        else:
            body[name] = value
    return body


CASES = {
    "bad role deep in": _broken(300, m217={"role": "robot", "content": "x"}),
    "missing content": _broken(300, m120={"role": "user"}),
    "tool without call id": _broken(300, m5={"role": "tool", "content": "r"}),
    "bad part": _broken(300, m299={"role": "user", "content": [{"type": "image", "url": "u"}]}),
    "two bad items": _broken(300, m40={"role": "user"}, m250={"role": "nobody"}),
    "top-level beats an item": _broken(300, m77={"role": "user"}, max_tokens=0),
    "D18 on a long body": _broken(300, stream_options={"include_usage": True}),
    "item not an object": _broken(300, m3="hello"),
    "long tools": {
        **_long(2),
        "tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(40)],
    },
}
CASES["long tools"]["tools"][33] = {"type": "function", "function": {}}


@pytest.mark.parametrize("name", list(CASES))
def test_long_bodies_blame_what_the_python_validators_blame(name: str) -> None:
    body = CASES[name]
    original = copy.deepcopy(body)
    fast, slow = _verdict(FAST, body), _verdict(SLOW, body)
    assert fast is not None and fast == slow
    assert body == original, "validation must not change the body"


def test_the_blamed_index_is_the_clients() -> None:
    param, message = _verdict(FAST, CASES["bad role deep in"]) or (None, "")
    assert param == "messages[217].role" and message.startswith("Invalid request: messages[217].role: ")


@pytest.mark.timing
def test_a_valid_10k_body_costs_milliseconds() -> None:
    body = _long(10_000)
    started = time.perf_counter()
    FAST.check_body(body)
    fast = time.perf_counter() - started
    assert fast < 0.1, f"{fast * 1000:.0f} ms for 10k valid messages"


@pytest.mark.timing
def test_an_invalid_10k_body_costs_milliseconds_too() -> None:
    body = _long(10_000)
    body["messages"][9_999] = {"role": "user"}
    started = time.perf_counter()
    verdict = _verdict(FAST, body)
    elapsed = time.perf_counter() - started
    assert verdict is not None and verdict[0] == "messages[9999].content"
    assert elapsed < 0.3, f"{elapsed * 1000:.0f} ms to name the one bad message of 10k"


def test_the_message_limit_comes_before_the_schema() -> None:
    checker = RequestValidator(validators(), shipped_request_schema(), max_messages=3)
    body = _long(4)
    body["messages"][0] = {"role": "robot"}  # would be blamed if the schema ran first
    assert _verdict(checker, body) == ("messages", "messages has 4 entries; this gateway accepts at most 3")
    assert _verdict(checker, _long(3)) is None
