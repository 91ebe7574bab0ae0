"""The compression engine: each strategy on small inputs, the engine's rules, and the corpus figures."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateproof.openapi import TRANSCRIPT_SIZES, Transcript, count_chat_prompt, count_text, load_transcript
from gateproof.reference_gateway.compression import (
    REPEATED_RESULT,
    STRATEGIES,
    compress_messages,
    compress_text,
    mentions_problem,
    token_deltas,
)
from gateproof.reference_gateway.compression._counting import _CUT, _pieces
from gateproof.reference_gateway.compression._strategies import (
    collapse_repeated_lines,
    collapse_timestamped_repeats,
    drop_pager_prompts,
    group_grep_matches,
    minify_json,
    resolve_carriage_returns,
    strip_ansi,
    summarise_passing_tests,
    trim_whitespace,
)

Strategy = Callable[[str], str]

# -- each strategy on small examples ------------------------------------------------------------

EXAMPLES: list[tuple[Strategy, str, str]] = [
    (strip_ansi, "\x1b[32mPASSED\x1b[0m \x1b[1;31mE  boom\x1b[0m", "PASSED E  boom"),
    (strip_ansi, "\x1b]8;;https://x.dev\x07link\x1b]8;;\x07 and \x1b[2K\x1b[1Gdone", "link and done"),
    (resolve_carriage_returns, "Downloading\n 10%\r 55%\r100%\nok", "Downloading\n100%\nok"),
    (resolve_carriage_returns, "a\r\nb\r\n", "a\nb\n"),  # CRLF is a line break, not a redraw
    (resolve_carriage_returns, "spinner ⠋\r⠙\r\r\n", "⠙\n"),  # empty redraws do not erase the last frame
    (trim_whitespace, "x   \ny\t\n\n  \n\nz\n", "x\ny\n\n\n\nz\n"),  # blank lines stay: line numbers hold
    (trim_whitespace, "\n\nbody  \n\n\n", "\n\nbody\n"),
    (
        drop_pager_prompts,
        "row 1\n-- More -- (12%) press SPACE\nrow 2\n--More--(40%)\n(END)\n",
        "row 1\nrow 2\n",
    ),
    (drop_pager_prompts, "lines 1-40/212 18%\nPage 2 of 9\n", "Page 2 of 9\n"),
    (minify_json, '{\n  "a": [1, 2],\n  "b": {"c": "é ✓"}\n}\n', '{"a":[1,2],"b":{"c":"é ✓"}}'),
    (minify_json, '[\n  {"z": 1, "a": 2}\n]', '[{"z":1,"a":2}]'),  # key order kept
    (
        summarise_passing_tests,
        "t/a.py::test_x PASSED [ 10%]\nt/a.py::test_y PASSED [ 20%]\nt/b.py::test_z PASSED [ 30%]\n"
        "t/b.py::test_w FAILED [ 40%]",
        "[3 tests PASSED: t/a.py 2, t/b.py 1]\nt/b.py::test_w FAILED [ 40%]",
    ),
    (
        summarise_passing_tests,
        "  Suite\n    ✓ one (3 ms)\n    ✓ two (4 ms)\n    ✓ three\n    ✕ four",
        "  Suite\n    [3 tests passed]\n    ✕ four",
    ),
    (
        summarise_passing_tests,
        "--- PASS: TestA (0.00s)\n--- PASS: TestB (0.00s)\n--- PASS: TestC (0.01s)\n--- FAIL: TestD (0.00s)",
        "[3 tests passed]\n--- FAIL: TestD (0.00s)",
    ),
    (
        group_grep_matches,
        "src/app/money.py:12:ROUND = 2\nsrc/app/money.py:40:    return round(x)\nsrc/app/other.py:3:x = 1\n",
        "src/app/money.py\n12:ROUND = 2\n40:    return round(x)\nsrc/app/other.py:3:x = 1\n",
    ),
    (
        collapse_repeated_lines,
        "start\nWARNING: pool full\nWARNING: pool full\nWARNING: pool full\nWARNING: pool full\nend",
        "start\nWARNING: pool full\n[… the line above repeated 3 more times]\nend",
    ),
    (
        collapse_timestamped_repeats,
        "2026-11-30T02:14:01.000Z INFO probe ok\n2026-11-30T02:14:02.000Z INFO probe ok\n"
        "2026-11-30T02:14:03.000Z INFO probe ok\n2026-11-30T02:14:04.000Z INFO other",
        "2026-11-30T02:14:01.000Z INFO probe ok\n[… 2 more of the line above, the last at 2026-11-30T02:14:03.000Z]\n"
        "2026-11-30T02:14:04.000Z INFO other",
    ),
]


@pytest.mark.parametrize(("strategy", "text", "expected"), EXAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_strategy_example(strategy: Strategy, text: str, expected: str) -> None:
    assert strategy(text) == expected
    assert strategy(expected) == expected  # a second pass finds nothing more to do


UNTOUCHED: list[tuple[Strategy, str]] = [
    (minify_json, '{"a": 1, "a": 2}'),  # a duplicated key: a dict would keep one value
    (minify_json, '{"a": 1'),  # not JSON
    (minify_json, 'result: {"a": 1}'),  # JSON inside text is left alone
    (
        summarise_passing_tests,
        "t/a.py::test_x PASSED\nt/a.py::test_y PASSED\nt/b.py::test_z FAILED",
    ),  # run of 2
    (summarise_passing_tests, "t/a.py::test_fails_cleanly PASSED\n" * 3),  # a keyword line stays whole
    (group_grep_matches, "src/a.py:1:x\nsrc/b.py:2:y\n"),  # one hit per path: nothing to group
    (group_grep_matches, "/abs/path.py:1:x\n/abs/path.py:2:y"),  # absolute paths are not grep -rn output
    (collapse_repeated_lines, "a\na\nb\n\n\n"),  # two repeats, and blank lines, are left alone
    (
        collapse_timestamped_repeats,
        "2026-11-30T02:14:01Z ERROR x\n2026-11-30T02:14:02Z ERROR x\n2026-11-30T02:14:03Z ERROR x",
    ),
    (drop_pager_prompts, "Run more tests, then press the button."),
    (drop_pager_prompts, "Press any key to start.\nLearn More -- in the docs\n"),  # prose, not a pager prompt
    (strip_ansi, "plain text"),
    (resolve_carriage_returns, "no redraws\n"),
    (trim_whitespace, "tidy\ntext\n"),
]


@pytest.mark.parametrize(("strategy", "text"), UNTOUCHED, ids=lambda v: getattr(v, "__name__", ""))
def test_strategy_leaves_alone(strategy: Strategy, text: str) -> None:
    assert strategy(text) is text  # the very same string: the engine sees "unchanged"


def test_grep_grouping_keeps_a_hit_that_mentions_an_error_whole() -> None:
    text = 'src/a/b.py:1:x = 1\nsrc/a/b.py:9:    raise ValueError("bad")\n'
    assert group_grep_matches(text) == 'src/a/b.py\n1:x = 1\nsrc/a/b.py:9:    raise ValueError("bad")\n'


def test_the_registry_is_ordered_and_names_each_function() -> None:
    assert list(STRATEGIES)[:2] == ["strip_ansi", "resolve_carriage_returns"]
    for name, strategy in STRATEGIES.items():
        assert strategy.__name__ == name
    assert REPEATED_RESULT not in STRATEGIES


def test_compress_text_reports_the_strategies_that_changed_something() -> None:
    text, used = compress_text("\x1b[1mhello\x1b[0m   \nworld\n")
    assert text == "hello\nworld\n"
    assert used == ("strip_ansi", "trim_whitespace")


# -- the engine's rules ----------------------------------------------------------------------


def _call(call_id: str, name: str = "run_shell") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}],
    }


NOISY = "\x1b[32mok\x1b[0m line   \n" + "same line\n" * 20 + "\x1b[31mERROR: it broke\x1b[0m\n"


def test_only_tool_results_change_and_unchanged_messages_are_the_same_objects() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": NOISY},
        {"role": "user", "content": NOISY},
        {"role": "developer", "content": [{"type": "text", "text": NOISY}]},
        _call("call_1"),
        {"role": "tool", "tool_call_id": "call_1", "content": NOISY},
        {"role": "assistant", "content": NOISY},
    ]
    before = copy.deepcopy(messages)
    result = compress_messages(messages)
    assert messages == before  # the input is never mutated
    for index in (0, 1, 2, 3, 5):
        assert result.messages[index] is messages[index]
    assert result.messages[4] is not messages[4]
    assert (
        result.messages[4]["content"]
        == "ok line\nsame line\n[… the line above repeated 19 more times]\nERROR: it broke\n"
    )
    assert result.changed_messages == 1
    assert result.strategies == ("strip_ansi", "trim_whitespace", "collapse_repeated_lines")
    assert result.saved_tokens == count_chat_prompt(messages) - count_chat_prompt(result.messages) > 0
    assert result.time_ms >= 0


def test_text_parts_of_a_tool_result_are_compressed_and_other_parts_kept() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [
        _call("call_1"),
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": NOISY}, image]},
    ]
    result = compress_messages(messages)
    parts = result.messages[1]["content"]
    assert parts[0]["text"].startswith("ok line\nsame line\n[…")
    assert parts[1] is image
    assert result.saved_tokens == count_chat_prompt(messages) - count_chat_prompt(result.messages)


def test_never_longer_a_rewrite_that_saves_nothing_is_not_forwarded() -> None:
    # three short identical lines: the note would cost more tokens than the lines it replaces
    text = "ok\nok\nok"
    assert count_text(collapse_repeated_lines(text)) > count_text(text)
    messages = [_call("call_1"), {"role": "tool", "tool_call_id": "call_1", "content": text}]
    result = compress_messages(messages)
    assert result.messages[1] is messages[1]
    assert (result.saved_tokens, result.changed_messages, result.strategies) == (0, 0, ())


def test_nothing_to_compress_gives_zero_and_the_same_objects() -> None:
    messages = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}]
    result = compress_messages(messages)
    assert result.saved_tokens == 0 and result.strategies == () and result.changed_messages == 0
    assert all(a is b for a, b in zip(result.messages, messages, strict=True))


def test_a_tool_result_repeated_verbatim_becomes_a_reference_to_the_first() -> None:
    output = "".join(f"line {i}: nothing special here\n" for i in range(40))
    messages = [
        _call("call_a"),
        {"role": "tool", "tool_call_id": "call_a", "content": output},
        _call("call_b"),
        {"role": "tool", "tool_call_id": "call_b", "content": output},
    ]
    result = compress_messages(messages)
    assert result.messages[1] is messages[1]
    assert result.messages[3]["content"] == "[identical to the result of tool call call_a above]"
    assert result.strategies == (REPEATED_RESULT,)
    assert result.saved_tokens == count_chat_prompt(messages) - count_chat_prompt(result.messages)


def test_a_repeat_of_a_compressed_result_saves_exactly_its_whole_text() -> None:
    output = NOISY * 5
    messages = [
        _call("call_a"),
        {"role": "tool", "tool_call_id": "call_a", "content": output},
        _call("call_b"),
        {"role": "tool", "tool_call_id": "call_b", "content": output},
    ]
    result = compress_messages(messages)
    assert result.messages[1]["content"] != output  # the first copy is compressed
    assert result.messages[3]["content"] == "[identical to the result of tool call call_a above]"
    assert result.saved_by_message is not None
    assert result.saved_by_message[3] == count_text(output) - count_text(result.messages[3]["content"])
    assert result.saved_tokens == count_chat_prompt(messages) - count_chat_prompt(result.messages)


def test_repeated_results_can_be_switched_off() -> None:
    output = "".join(f"line {i}: nothing special here\n" for i in range(40))
    messages = [
        _call("a"),
        {"role": "tool", "tool_call_id": "a", "content": output},
        _call("b"),
        {"role": "tool", "tool_call_id": "b", "content": output},
    ]
    result = compress_messages(messages, repeated_results=False)
    assert result.saved_tokens == 0 and result.messages[3] is messages[3]


def test_strategies_can_be_narrowed() -> None:
    messages = [_call("c"), {"role": "tool", "tool_call_id": "c", "content": NOISY}]
    only = {"strip_ansi": STRATEGIES["strip_ansi"]}
    result = compress_messages(messages, strategies=only)
    assert result.strategies == ("strip_ansi",)
    assert "same line\nsame line" in result.messages[1]["content"]


# -- exact token accounting ------------------------------------------------------------------

_NASTY = st.sampled_from(
    [
        "a",
        "Bc",
        "é",
        "1",
        "234",
        " ",
        "  ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        ".",
        ":",
        ")",
        "'s",
        "━",
        "\x1b[32m",
        "²",
        "\u3000",
        "日本",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NASTY, max_size=40).map("".join), st.lists(_NASTY, max_size=40).map("".join))
def test_token_deltas_are_exact_on_arbitrary_text(before: str, after: str) -> None:
    assert token_deltas([(before, after)]) == [count_text(before) - count_text(after)]


@settings(max_examples=300, deadline=None)
@given(st.lists(_NASTY, max_size=40).map("".join))
def test_pieces_join_back_and_both_cutters_agree(text: str) -> None:
    pieces = _pieces(text)
    assert "".join(pieces) == text
    if "\r" not in text:
        assert pieces == _CUT.split(text)  # the fast path cuts where the regex does


def test_token_deltas_count_texts_longer_than_a_chunk_like_the_convention() -> None:
    long = "word " * 20_000
    assert token_deltas([(long, "word")]) == [
        count_chat_prompt([{"content": long}]) - count_chat_prompt([{"content": "word"}])
    ]


# -- the corpus --------------------------------------------------------------------------------


def _forwarded_text(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, ensure_ascii=False)


@pytest.fixture(scope="module", params=list(TRANSCRIPT_SIZES))
def compressed(request: pytest.FixtureRequest) -> tuple[Transcript, Any]:
    transcript = load_transcript(request.param)
    return transcript, compress_messages(transcript.messages)


def test_saved_tokens_is_exact_on_every_transcript(compressed: tuple[Transcript, Any]) -> None:
    transcript, result = compressed
    forwarded = count_chat_prompt(result.messages, list(transcript.tools))
    assert result.saved_tokens == transcript.tokens - forwarded
    assert result.saved_tokens >= 0
    assert sum(result.saved_by_message.values()) == result.saved_tokens


def test_every_needle_survives_on_every_transcript(compressed: tuple[Transcript, Any]) -> None:
    transcript, result = compressed
    texts = "\n".join(m["content"] for m in result.messages if isinstance(m.get("content"), str))
    for needle in transcript.needles:
        assert needle in texts, needle


def _as_shown(text: str) -> list[str]:
    """The lines of a tool result as a terminal shows them."""
    return resolve_carriage_returns(strip_ansi(text)).replace("\r", "").split("\n")


def test_every_problem_line_survives_whole_on_every_transcript(compressed: tuple[Transcript, Any]) -> None:
    transcript, result = compressed
    forwarded: dict[str, str] = {}
    for before, after in zip(transcript.messages, result.messages, strict=True):
        if before["role"] != "tool":
            continue
        forwarded[before["tool_call_id"]] = after["content"]
        if after["content"].startswith("[identical to the result of tool call "):
            after = {"content": forwarded[after["content"].split()[7]]}
        if minify_json(before["content"]) is not before["content"]:
            continue  # JSON keeps keys and values, not lines
        kept = set(after["content"].split("\n"))
        for line in _as_shown(before["content"]):
            if mentions_problem(line):
                assert line.rstrip() in kept, line


def test_every_transcript_compresses_the_same_way_twice(compressed: tuple[Transcript, Any]) -> None:
    transcript, result = compressed
    again = compress_messages(transcript.messages)
    assert _forwarded_text(again.messages) == _forwarded_text(result.messages)
    assert (again.saved_tokens, again.strategies) == (result.saved_tokens, result.strategies)


def test_only_tool_messages_change_on_every_transcript(compressed: tuple[Transcript, Any]) -> None:
    transcript, result = compressed
    for before, after in zip(transcript.messages, result.messages, strict=True):
        if before["role"] != "tool":
            assert after is before
        else:
            assert set(after) == set(before) and after["tool_call_id"] == before["tool_call_id"]


@pytest.mark.parametrize("size", ["32k", "128k"])
def test_large_transcripts_shrink_by_at_least_a_quarter(size: str) -> None:
    transcript = load_transcript(size)
    result = compress_messages(transcript.messages)
    assert result.saved_tokens / transcript.tokens >= 0.25


def test_a_file_read_keeps_its_line_numbers() -> None:
    transcript = load_transcript("32k")
    reads = {
        m["tool_calls"][0]["id"]
        for m in transcript.messages
        if m.get("tool_calls") and m["tool_calls"][0]["function"]["name"] == "read_file"
    }
    assert reads
    result = compress_messages(transcript.messages)
    for before, after in zip(transcript.messages, result.messages, strict=True):
        if before.get("tool_call_id") in reads:
            assert after is not before  # trailing blanks went
            assert after["content"].count("\n") == before["content"].count("\n")
