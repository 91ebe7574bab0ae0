"""The mock's fast paths give exactly what the slow ways they replace gave.

The non-streamed hot path was made cheaper (issue 11) without changing a byte: JSON bodies are
decoded without the encoding detection when they are plainly UTF-8, JSON is written by a C
encoder built once, the answer body and usage are written by hand, short prompt texts have
their token counts remembered. Each is checked here against the standard way; a repeated
request answered from memory is checked in ``test_repeats.py``.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import pytest

from gateproof.mock_providers import Incoming, MockConfig, plan_scenario
from gateproof.mock_providers._directives import parse_directive
from gateproof.mock_providers._exchange import _NOT_JSON, _parse
from gateproof.mock_providers._json import canonical, compact
from gateproof.mock_providers._tokens import INLINE_CHARS, count_inline
from gateproof.mock_providers.dialects import OpenAIDialect
from gateproof.openapi import PromptText, count_prompt, gather_prompt

_COMPACT = json.JSONEncoder(separators=(",", ":"), check_circular=False)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)

VALUES: list[Any] = [
    "plain",
    "é ünï \ud800 \x00",
    0,
    -(10**30),
    1.5,
    -0.0,
    1e300,
    float("nan"),
    float("inf"),
    None,
    True,
    [],
    {},
    {"b": 1, "a": [1, {"z": "é", "y": None, "x": 2.25}]},
    [{"role": "user", "content": "What is the capital of France?"}, None],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_the_json_writers_write_what_the_encoders_write(value: Any) -> None:
    assert compact(value) == _COMPACT.encode(value)
    assert canonical(value) == _CANONICAL.encode(value)


def test_the_json_writers_refuse_what_the_encoders_refuse() -> None:
    for bad in ({(1, 2): 3}, {"a": object()}):
        for fast, slow in ((compact, _COMPACT.encode), (canonical, _CANONICAL.encode)):
            with pytest.raises(TypeError) as fast_error:
                fast(bad)
            with pytest.raises(TypeError) as slow_error:
                slow(bad)
            assert str(fast_error.value) == str(slow_error.value)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1}',
        b'{"a": "\xc3\xa9"}',
        b'{"a": "\xff"}',  # not UTF-8
        b'{"a": "\\ud800"}',
        b"{",
        b"{}",
        b"{}x",
        b'{"a": NaN}',
        b"[1, 2]",
        b" {}",
        codecs.BOM_UTF8 + b'{"a": 1}',
        '{"a": "é"}'.encode("utf-16"),
        '{"a": 1}'.encode("utf-16-le"),
        '{"a": 1}'.encode("utf-32-be"),
        b'"text"',
        b"",
    ],
)
def test_a_body_decodes_as_json_loads_decodes_it(raw: bytes) -> None:
    try:
        expected: Any = json.loads(raw)
    except ValueError:
        expected = _NOT_JSON
    if raw == b"":
        expected = _NOT_JSON
    got = _parse(raw)
    assert (got is _NOT_JSON) == (expected is _NOT_JSON)
    if got is not _NOT_JSON:
        assert json.dumps(got) == json.dumps(expected)


def test_remembered_counts_are_the_conventions_counts() -> None:
    texts = ("user", "system", "What is the capital of France?", "naïve café " * 50, "x" * 5000, "")
    prompt = PromptText(fixed=9, texts=texts)
    for _ in range(2):  # counted, then remembered
        assert count_inline(prompt) == count_prompt(prompt)[0]
    assert count_inline(PromptText(fixed=3, texts=("a" * (INLINE_CHARS + 1),))) is None


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "[[gateproof scenario=refusal]]",
        "[[gateproof scenario=tool_call calls=3]]",
        "[[gateproof tokens=0]]",
        "[[gateproof cached=5 tokens=40 scenario=length]]",
        "é \ud800 [[gateproof tokens=3]]",
    ],
)
def test_the_written_answer_is_the_encoded_answer(text: str) -> None:
    dialect = OpenAIDialect()
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "tools": tools}
    request = dialect.parse(body, Incoming("/v1/chat/completions", {}, "", []))
    scenario = plan_scenario(request, parse_directive(request.last_user_text), MockConfig())
    for created in (0, 1_796_180_251):
        written = dialect._completion_bytes(scenario, request, created)
        assert written == compact(dialect._completion(scenario, request, created)).encode()
        assert written == _COMPACT.encode(dialect._completion(scenario, request, created)).encode()
    assert dialect._usage_bytes(scenario) == _COMPACT.encode(dialect._usage(scenario)).encode()


def test_a_fresh_directive_counts_as_the_convention_counts_it() -> None:
    for index in range(200):
        prompt = gather_prompt([{"role": "user", "content": f"Hi there [[gateproof cid=load-{index:06d}]]"}])
        assert count_inline(prompt) == count_prompt(prompt)[0]
