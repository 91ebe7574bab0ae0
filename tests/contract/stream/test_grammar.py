"""The chat stream grammar: correct streams pass, and each rule is caught, alone, under its own name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from gateproof.contract.stream import (
    RULES,
    ChatStreamGrammar,
    EventKind,
    SSEEvent,
    StreamChecker,
    StreamReport,
    check_stream,
)

BASE: dict[str, Any] = {
    "id": "chatcmpl-7f3a",
    "object": "chat.completion.chunk",
    "created": 1767225600,
    "model": "openai/gpt-4o",
}
DONE = "[DONE]"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta if delta is not None else {}, "finish_reason": finish}
    return {**BASE, "choices": [choice], **fields}


def role(content: str | None = "") -> dict[str, Any]:
    return chunk({"role": "assistant", "content": content})


def text(piece: str) -> dict[str, Any]:
    return chunk({"content": piece})


def stop(reason: str = "stop") -> dict[str, Any]:
    return chunk({}, reason)


def usage(prompt: int = 12, completion: int = 3, total: int | None = None, **fields: Any) -> dict[str, Any]:
    counts = {"prompt_tokens": prompt, "completion_tokens": completion}
    counts["total_tokens"] = prompt + completion if total is None else total
    return {**BASE, "choices": [], "usage": counts, **fields}


def tool(
    index: int, arguments: str | None = None, *, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"index": index}
    function: dict[str, Any] = {}
    if call_id is not None:
        item["id"] = call_id
        item["type"] = "function"
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    if function:
        item["function"] = function
    return item


def tools(*items: dict[str, Any]) -> dict[str, Any]:
    return chunk({"tool_calls": list(items)})


def sse(*items: object, newline: str = "\n") -> bytes:
    """Render events: a dict is a JSON data event, a str a raw data payload, `Comment` a comment line,
    bytes are copied as they are."""
    out = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, Comment):
            out.append(f":{item.text}{newline}".encode())
        else:
            data = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            out.append(f"data: {data}{newline}{newline}".encode())
    return b"".join(out)


@dataclass(frozen=True)
class Comment:
    text: str = " keep-alive"


@dataclass(frozen=True)
class Stream:
    name: str
    body: bytes
    include_usage: bool = False
    expect_tool_call: bool | None = None

    def check(self) -> StreamReport:
        return check_stream(
            self.body, include_usage=self.include_usage, expect_tool_call=self.expect_tool_call
        )


HELLO = [role(), text("Hel"), text("lo"), text(" there"), stop()]
WEATHER = [
    role(None),
    tools(tool(0, "", call_id="call_1", name="get_weather")),
    tools(tool(0, '{"city": ')),
    tools(tool(0, '"Paris"}')),
    tools(tool(1, '{"tz":', call_id="call_2", name="get_time")),
    tools(tool(1, ' "CET"}')),
    stop("tool_calls"),
]

CORRECT = [
    Stream("text", sse(*HELLO, DONE)),
    Stream("text with usage", sse(*HELLO, usage(), DONE), include_usage=True),
    Stream(
        "tool calls in fragments", sse(*WEATHER, usage(), DONE), include_usage=True, expect_tool_call=True
    ),
    Stream(
        "parallel tool calls sharing chunks",
        sse(
            role(None),
            tools(tool(0, '{"a"', call_id="call_a", name="f"), tool(1, '{"b"', call_id="call_b", name="g")),
            tools(tool(0, ": 1}"), tool(1, ": 2}")),
            stop("tool_calls"),
            DONE,
        ),
    ),
    Stream(
        "refusal",
        sse(role(None), chunk({"refusal": "I can't "}), chunk({"refusal": "help with that."}), stop(), DONE),
    ),
    Stream(
        "keep-alive comments and CRLF",
        sse(
            Comment(" OPENROUTER PROCESSING"),
            role(),
            Comment(),
            text("Hi"),
            Comment(),
            stop(),
            DONE,
            newline="\r\n",
        ),
    ),
    Stream("content on the finishing chunk", sse(role(), chunk({"content": "Done."}, "stop"), DONE)),
    Stream(
        "Edgee extensions on a final empty-choices chunk (D1)",
        sse(*HELLO, {**BASE, "choices": [], "compression": {"saved_tokens": 0}}, DONE),
    ),
    Stream("length finish", sse(role(), text("Once upon"), stop("length"), DONE), expect_tool_call=False),
    Stream("explicit message event type", b"event: message\n" + sse(*HELLO, DONE)),
]


@pytest.mark.parametrize("stream", CORRECT, ids=[stream.name for stream in CORRECT])
def test_correct_stream_has_no_violation(stream: Stream) -> None:
    report = stream.check()
    assert report.violations == (), str(report)
    assert report.ok
    assert report.summary.done


def _with_event_type(body: bytes) -> bytes:
    return body.replace(b"data: ", b"event: completion\ndata: ", 1)


def _invalid_utf8_stream() -> bytes:
    """A content chunk whose "é" is sent as Latin-1 (one 0xE9 byte), not UTF-8."""
    bad = sse(text("caf\u00e9")).replace("\u00e9".encode(), b"\xe9")
    assert bad.count(b"\xe9") == 1
    return sse(role()) + bad + sse(stop(), DONE)


BAD_JSON_IN_STREAM = sse(role(), "{not json", text("x"), stop(), DONE)

# (rule, stream): each stream breaks that rule and no other.
VIOLATIONS = [
    ("sse_framing", Stream("unterminated trailing comment", sse(*HELLO, DONE) + b": bye")),
    ("sse_framing", Stream("invalid utf-8 in content", _invalid_utf8_stream())),
    ("event_type_is_message", Stream("named event", _with_event_type(sse(*HELLO, DONE)))),
    ("chunk_is_json", Stream("payload not json", BAD_JSON_IN_STREAM)),
    ("chunk_is_json", Stream("payload is an array", sse(role(), "[1, 2]", stop(), DONE))),
    ("chunk_is_json", Stream("DONE with trailing space", sse(*HELLO, "[DONE] ") + sse(DONE))),
    (
        "chunk_object_type",
        Stream("wrong object", sse(role(), {**text("x"), "object": "chat.completion"}, stop(), DONE)),
    ),
    ("first_chunk_has_role", Stream("no role", sse(text("Hel"), text("lo"), stop(), DONE))),
    ("first_chunk_has_role", Stream("wrong role", sse(chunk({"role": "user"}), stop(), DONE))),
    ("constant_id", Stream("id changes", sse(role(), {**text("x"), "id": "chatcmpl-other"}, stop(), DONE))),
    (
        "constant_id",
        Stream("id dropped", sse(role(), {k: v for k, v in text("x").items() if k != "id"}, stop(), DONE)),
    ),
    (
        "constant_model",
        Stream("model changes", sse(role(), {**text("x"), "model": "gpt-4o-2024"}, stop(), DONE)),
    ),
    (
        "constant_created",
        Stream("created changes", sse(role(), {**text("x"), "created": 1767225601}, stop(), DONE)),
    ),
    (
        "constant_created",
        Stream("created as text", sse(role(), {**text("x"), "created": "1767225600"}, stop(), DONE)),
    ),
    (
        "constant_id",
        Stream("usage chunk has another id", sse(*HELLO, usage(id="x"), DONE), include_usage=True),
    ),
    ("single_finish_reason", Stream("never finished", sse(role(), text("x"), DONE))),
    ("single_finish_reason", Stream("finished twice", sse(role(), text("x"), stop(), stop(), DONE))),
    ("single_finish_reason", Stream("content after finish", sse(role(), stop(), text("late"), DONE))),
    ("single_finish_reason", Stream("no choice at all", sse(DONE))),
    ("usage_only_when_requested", Stream("usage not asked for", sse(*HELLO, usage(), DONE))),
    ("usage_chunk_present", Stream("usage missing", sse(*HELLO, DONE), include_usage=True)),
    (
        "usage_chunk_last",
        Stream(
            "chunk after the usage chunk",
            sse(*HELLO, usage(), {**BASE, "choices": [], "debug": {"request_id": "r"}}, DONE),
            include_usage=True,
        ),
    ),
    ("usage_chunk_last", Stream("usage sent twice", sse(*HELLO, usage(), usage(), DONE), include_usage=True)),
    (
        "usage_chunk_empty_choices",
        Stream(
            "usage inline on the finishing chunk",
            sse(role(), text("x"), chunk({}, "stop", usage=usage()["usage"]), DONE),
            include_usage=True,
        ),
    ),
    ("usage_totals_add_up", Stream("wrong total", sse(*HELLO, usage(10, 3, 14), DONE), include_usage=True)),
    ("usage_totals_add_up", Stream("negative count", sse(*HELLO, usage(-1, 3, 2), DONE), include_usage=True)),
    (
        "usage_totals_add_up",
        Stream(
            "missing count", sse(*HELLO, {**BASE, "choices": [], "usage": {"total_tokens": 3}}, DONE), True
        ),
    ),
    ("done_terminates_stream", Stream("no DONE", sse(*HELLO))),
    ("done_terminates_stream", Stream("chunk after DONE", sse(*HELLO, DONE, text("more")))),
    ("done_terminates_stream", Stream("DONE twice", sse(*HELLO, DONE, DONE))),
    (
        "tool_call_deltas_indexed",
        Stream(
            "fragment without index",
            sse(
                role(None),
                tools(tool(0, "{}", call_id="call_1", name="f")),
                chunk({"tool_calls": [{"function": {"arguments": ""}}]}),
                stop("tool_calls"),
                DONE,
            ),
        ),
    ),
    (
        "tool_call_deltas_indexed",
        Stream(
            "first fragment without id",
            sse(role(None), tools(tool(0, "{}", name="f")), stop("tool_calls"), DONE),
        ),
    ),
    (
        "tool_call_deltas_indexed",
        Stream(
            "first fragment without name",
            sse(role(None), tools(tool(0, "{}", call_id="call_1")), stop("tool_calls"), DONE),
        ),
    ),
    (
        "tool_call_deltas_indexed",
        Stream(
            "id and name repeated on every fragment",
            sse(
                role(None),
                tools(tool(0, '{"a":', call_id="call_1", name="f")),
                tools(tool(0, " 1}", call_id="call_1", name="f")),
                stop("tool_calls"),
                DONE,
            ),
        ),
    ),
    (
        "tool_call_deltas_indexed",
        Stream(
            "arguments sent as an object",
            sse(
                role(None),
                tools(tool(0, "{}", call_id="call_1", name="f")),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": {"a": 1}}}]}),
                stop("tool_calls"),
                DONE,
            ),
        ),
    ),
    (
        "tool_call_arguments_json",
        Stream(
            "arguments cut short",
            sse(role(None), tools(tool(0, '{"city": "Par', call_id="c", name="f")), stop("tool_calls"), DONE),
        ),
    ),
    (
        "tool_call_arguments_json",
        Stream(
            "arguments not an object",
            sse(role(None), tools(tool(0, "[1]", call_id="c", name="f")), stop("tool_calls"), DONE),
        ),
    ),
    (
        "finish_reason_matches_content",
        Stream("tool calls finished with stop", sse(*WEATHER[:-1], stop(), DONE)),
    ),
    (
        "finish_reason_matches_content",
        Stream("tool_calls without tool calls", sse(role(), text("x"), stop("tool_calls"), DONE)),
    ),
    (
        "tool_call_matches_request",
        Stream("required tool call missing", sse(*HELLO, DONE), expect_tool_call=True),
    ),
    (
        "tool_call_matches_request",
        Stream("tool call though ruled out", sse(*WEATHER, DONE), expect_tool_call=False),
    ),
    (
        "no_error_event",
        Stream(
            "error mid-stream (shaped as D9 asks)",
            sse(
                role(),
                text("x"),
                {"error": {"message": "upstream died", "type": "provider_error", "code": None}},
            ),
            include_usage=True,
        ),
    ),
    ("no_error_event", Stream("error then DONE", sse(role(), {"error": {"message": "boom"}}, DONE))),
    (
        "no_error_event",
        Stream("vLLM-style error object", sse(role(), {"object": "error", "message": "boom"})),
    ),
]


@pytest.mark.parametrize(
    ("rule", "stream"), VIOLATIONS, ids=[f"{rule}: {stream.name}" for rule, stream in VIOLATIONS]
)
def test_each_rule_is_reported_alone_under_its_name(rule: str, stream: Stream) -> None:
    report = stream.check()
    assert report.rules_violated == (rule,), str(report)
    assert all(violation.message for violation in report.violations)


def test_every_rule_has_a_violating_stream() -> None:
    assert {rule for rule, _ in VIOLATIONS} == set(RULES) == set(ChatStreamGrammar.rules)


def test_rule_descriptions_are_single_sentences() -> None:
    for name, description in RULES.items():
        assert name.replace("_", "").isalnum() and name == name.lower()
        assert description.endswith(".") and description[0].isupper()


def test_violation_points_at_the_offending_event() -> None:
    body = sse(role(), text("a"), Comment(), {**text("b"), "model": "other"}, stop(), stop(), DONE)
    report = check_stream(body, include_usage=False)
    assert [(v.rule, v.event_index) for v in report.violations] == [
        ("constant_model", 2),
        ("single_finish_reason", 4),
    ]
    assert "'other'" in report.violations[0].message
    assert str(report.violations[0]).startswith("constant_model (event 2): ")


def test_end_of_stream_violations_have_no_event_index() -> None:
    report = check_stream(sse(role(), text("x")), include_usage=True)
    assert sorted((v.rule, v.event_index) for v in report.violations) == [
        ("done_terminates_stream", None),
        ("single_finish_reason", None),
        ("usage_chunk_present", None),
    ]
    assert "end of stream" in str(report)


def test_every_changed_chunk_is_reported() -> None:
    body = sse(role(), *[{**text("x"), "id": f"other-{i}"} for i in range(3)], stop(), DONE)
    report = check_stream(body, include_usage=False)
    assert [v.event_index for v in report.by_rule()["constant_id"]] == [1, 2, 3]


def test_unterminated_last_event_is_framing_and_missing_done() -> None:
    body = sse(*HELLO) + b"data: [DONE]\n"
    report = check_stream(body, include_usage=False)
    assert report.rules_violated == ("sse_framing", "done_terminates_stream")
    assert "unterminated_event" in report.violations[0].message
    assert not report.summary.done


def test_error_event_summary_and_what_follows() -> None:
    body = sse(role(), text("partial"), {"error": {"message": "boom", "code": "provider_error"}}, DONE)
    report = check_stream(body, include_usage=True)
    assert [(v.rule, v.event_index) for v in report.violations] == [
        ("no_error_event", 2),
        ("no_error_event", 3),
    ]
    assert report.summary.error == {"message": "boom", "code": "provider_error"}
    assert report.summary.done  # the [DONE] after the error was seen (and reported)
    assert report.summary.content == "partial"


def test_error_without_done_is_the_only_violation() -> None:
    report = check_stream(sse({"error": {"message": "boom"}}), include_usage=True, expect_tool_call=True)
    assert report.rules_violated == ("no_error_event",)
    assert not report.summary.done


def test_summary_of_a_text_stream() -> None:
    report = check_stream(sse(Comment(), *HELLO, Comment(), usage(12, 3), DONE), include_usage=True)
    summary = report.summary
    assert summary.content == "Hello there"
    assert summary.refusal == ""
    assert summary.tool_calls == []
    assert summary.finish_reason == "stop"
    assert summary.finish_reasons == {0: "stop"}
    assert summary.usage == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert summary.done
    assert summary.error is None
    assert summary.comment_count == 2
    assert (summary.event_count, summary.chunk_count) == (7, 6)
    assert (summary.id, summary.model, summary.created) == ("chatcmpl-7f3a", "openai/gpt-4o", 1767225600)
    assert summary.first_content_event == 1
    assert summary.content_event_count == 3
    assert summary.choices[0].role == "assistant"
    assert summary.last_chunk is not None and summary.last_chunk["usage"]["total_tokens"] == 15


def test_summary_of_a_tool_call_stream() -> None:
    summary = check_stream(sse(*WEATHER, DONE), include_usage=False).summary
    calls = [(call.index, call.id, call.name, call.arguments) for call in summary.tool_calls]
    assert calls == [
        (0, "call_1", "get_weather", '{"city": "Paris"}'),
        (1, "call_2", "get_time", '{"tz": "CET"}'),
    ]
    assert summary.tool_calls[0].fragments == ['{"city": ', '"Paris"}']
    assert summary.finish_reason == "tool_calls"
    assert summary.content == ""
    # The first fragment carried only id and name (empty arguments): content starts with the next one.
    assert summary.first_content_event == 2


def test_summary_of_a_refusal() -> None:
    summary = check_stream(CORRECT[4].body, include_usage=False).summary
    assert summary.refusal == "I can't help with that."
    assert summary.content == ""


def test_summary_keeps_choices_apart() -> None:
    second = {
        **BASE,
        "choices": [{"index": 1, "delta": {"role": "assistant", "content": "B"}, "finish_reason": None}],
    }
    first = {
        **BASE,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "A"}, "finish_reason": None}],
    }
    both_stop = {
        **BASE,
        "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"},
            {"index": 1, "delta": {}, "finish_reason": "length"},
        ],
    }
    report = check_stream(sse(second, first, both_stop, DONE), include_usage=False)
    assert report.ok, str(report)
    assert report.summary.content == "A"
    assert report.summary.finish_reasons == {0: "stop", 1: "length"}
    assert report.summary.choices[1].content == "B"


def test_choice_without_finish_is_named() -> None:
    two = {
        **BASE,
        "choices": [
            {"index": 0, "delta": {"role": "assistant"}, "finish_reason": "stop"},
            {"index": 1, "delta": {"role": "assistant"}, "finish_reason": None},
        ],
    }
    report = check_stream(sse(two, DONE), include_usage=False)
    assert [v.message for v in report.violations] == ["choice 1 never gets a finish_reason"]


def test_incremental_results_per_event() -> None:
    checker = StreamChecker(ChatStreamGrammar(include_usage=True))
    body = sse(role(), Comment(), text("Hi"), stop(), usage(), DONE)
    results = [result for i in range(0, len(body), 5) for result in checker.feed(body[i : i + 5])]
    assert [(r.index, r.kind, r.has_content) for r in results] == [
        (0, EventKind.CHUNK, False),
        (1, EventKind.CHUNK, True),
        (2, EventKind.CHUNK, False),
        (3, EventKind.CHUNK, False),
        (4, EventKind.DONE, False),
    ]
    assert all(r.violations == () for r in results)
    assert checker.summary.comment_count == 1
    report = checker.close()
    assert report.ok
    assert checker.close() is report


def test_event_result_carries_its_own_violations() -> None:
    checker = StreamChecker(ChatStreamGrammar(include_usage=False))
    results = checker.feed(sse(role(), {**text("x"), "id": "other"}, "oops"))
    assert [r.kind for r in results] == [EventKind.CHUNK, EventKind.CHUNK, EventKind.INVALID]
    assert results[0].violations == ()
    assert [v.rule for v in results[1].violations] == ["constant_id"]
    assert results[1].has_content
    assert [v.rule for v in results[2].violations] == ["chunk_is_json"]


def test_grammar_can_be_fed_events_directly() -> None:
    grammar = ChatStreamGrammar(include_usage=False, expect_tool_call=False)
    for payload in (role(), text("ok"), stop()):
        grammar.feed_event(SSEEvent(json.dumps(payload)))
    result = grammar.feed_event(SSEEvent("[DONE]"))
    assert result.kind is EventKind.DONE
    assert grammar.finish() == []
    assert grammar.finish() == []
    assert grammar.summary.content == "ok"
    assert grammar.violations == []
