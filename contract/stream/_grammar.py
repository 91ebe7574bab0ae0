"""State machines over the events of one stream: the ordering rules a JSON schema cannot say.

A schema validates each chunk on its own. Whether the role comes first, whether the id stays put,
whether each choice finishes exactly once, whether usage comes last and `[DONE]` closes the stream:
those are properties of the *sequence*, and they are what this module checks.

`StreamGrammar` is the small base every dialect shares (event counting, the violation list, the
summary, the per-event result). `ChatStreamGrammar` is the OpenAI/Edgee chat completions dialect. An
Anthropic `message_start -> content_block_* -> message_stop` grammar would be a sibling subclass
with its own rule names, reporting into the same `StreamSummary`.

The hot path is plain `json.loads` and dictionary lookups (no jsonschema): the load generator runs
every chunk of every stream through it. Payloads are parsed with `loads_bounded`, which refuses
JSON nested deeper than `MAX_JSON_DEPTH` instead of recursing, so a hostile chunk is a
`chunk_is_json` violation and never a `RecursionError`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final, TypeGuard

from gateproof.contract._wire import JSONTooDeep, loads_bounded
from gateproof.contract.stream._rules import StreamViolation
from gateproof.contract.stream._sse import FramingIssue, SSEEvent
from gateproof.contract.stream._summary import StreamedChoice, StreamedToolCall, StreamSummary

__all__ = ["ChatStreamGrammar", "EventKind", "EventResult", "StreamGrammar"]

_ABSENT: Final[Any] = object()
_EMPTY: Final[dict[str, Any]] = {}
_EXCERPT: Final = 80


def _excerpt(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
    if len(text) > _EXCERPT:
        text = text[:_EXCERPT] + "..."
    return repr(text)


def _is_count(value: object) -> TypeGuard[int]:
    return type(value) is int and value >= 0


class EventKind(StrEnum):
    """What one event turned out to be."""

    CHUNK = "chunk"
    """A JSON chunk object."""
    DONE = "done"
    """The `[DONE]` sentinel."""
    ERROR = "error"
    """An error event (a JSON object with a top-level `error`)."""
    INVALID = "invalid"
    """A payload that is not a JSON object."""
    AFTER_END = "after_end"
    """Anything after `[DONE]` or after an error event; reported and otherwise ignored."""


@dataclass(frozen=True, slots=True)
class EventResult:
    """The verdict on one event, returned as soon as it is fed.

    `has_content` is true when the event carried non-empty `delta.content`, `delta.refusal` or
    tool-call `arguments`: the load scenario times TTFT to the first such event. `violations` are
    the ones this event raised (end-of-stream violations come from `finish`).
    """

    index: int
    kind: EventKind
    has_content: bool = False
    violations: tuple[StreamViolation, ...] = ()


class StreamGrammar(ABC):
    """The part every stream dialect shares.

    A grammar is fed the events of one stream in order (`feed_event`), then told the stream ended
    (`finish`). It keeps every violation in `violations` and rebuilds the stream in `summary`.
    Subclasses set `dialect` and `rules` (the rule names they can report, all keys of `RULES`).
    """

    dialect: ClassVar[str]
    rules: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        self.summary = StreamSummary()
        self.violations: list[StreamViolation] = []
        self.finished = False

    @abstractmethod
    def feed_event(self, event: SSEEvent) -> EventResult:
        """Check one event and fold it into the summary."""

    @abstractmethod
    def finish(self) -> list[StreamViolation]:
        """Report what only the end of the stream can show; return those violations only."""

    def add_framing_issue(self, issue: FramingIssue) -> StreamViolation:
        """Record a decoder issue under `sse_framing`, at the index of the next event."""
        violation = StreamViolation("sse_framing", f"{issue.kind}: {issue.message}", self.summary.event_count)
        self.violations.append(violation)
        return violation

    def _violate(self, rule: str, message: str, index: int | None) -> None:
        self.violations.append(StreamViolation(rule, message, index))


class ChatStreamGrammar(StreamGrammar):
    """The OpenAI / Edgee `chat.completion.chunk` stream.

    Built from what the request asked: `include_usage` (`stream_options.include_usage`) and, when
    the request settled it, `expect_tool_call` (True for a forced tool call, False when
    `tool_choice` was "none"; None checks nothing about it).

    After an error event the stream is expected to stop (decision D9: no `[DONE]` follows it), so
    `finish` then adds nothing: the missing `[DONE]`, finish reasons or usage chunk are the
    consequence of the error already reported, not further faults.
    """

    dialect: ClassVar[str] = "openai.chat_completions"
    rules: ClassVar[tuple[str, ...]] = (
        "sse_framing",
        "event_type_is_message",
        "chunk_is_json",
        "chunk_object_type",
        "first_chunk_has_role",
        "constant_id",
        "constant_model",
        "constant_created",
        "single_finish_reason",
        "usage_only_when_requested",
        "usage_chunk_present",
        "usage_chunk_last",
        "usage_chunk_empty_choices",
        "usage_totals_add_up",
        "done_terminates_stream",
        "tool_call_deltas_indexed",
        "tool_call_arguments_json",
        "finish_reason_matches_content",
        "tool_call_matches_request",
        "no_error_event",
    )

    def __init__(self, *, include_usage: bool, expect_tool_call: bool | None = None) -> None:
        super().__init__()
        self.include_usage = include_usage
        self.expect_tool_call = expect_tool_call
        self._first_chunk = True
        self._ref_id: Any = _ABSENT
        self._ref_model: Any = _ABSENT
        self._ref_created: Any = _ABSENT
        self._usage_event: int | None = None
        self._error_seen = False
        self._tool_choices: set[int] = set()

    def feed_event(self, event: SSEEvent) -> EventResult:
        summary = self.summary
        index = summary.event_count
        summary.event_count = index + 1
        mark = len(self.violations)
        has_content = False
        if event.event != "message":
            self._violate("event_type_is_message", f"event type {event.event!r}", index)
        data = event.data
        if self._error_seen:
            if data == "[DONE]":
                summary.done = True
            self._violate("no_error_event", "an event follows the error event; the stream ends there", index)
            kind = EventKind.AFTER_END
        elif summary.done:
            self._violate("done_terminates_stream", f"an event follows data: [DONE]: {_excerpt(data)}", index)
            kind = EventKind.AFTER_END
        elif data == "[DONE]":
            summary.done = True
            kind = EventKind.DONE
        else:
            kind, has_content = self._payload(data, index)
            if has_content:
                summary.content_event_count += 1
                if summary.first_content_event is None:
                    summary.first_content_event = index
        if len(self.violations) == mark:
            return EventResult(index, kind, has_content)
        return EventResult(index, kind, has_content, tuple(self.violations[mark:]))

    def finish(self) -> list[StreamViolation]:
        if self.finished:
            return []
        self.finished = True
        mark = len(self.violations)
        if self._error_seen:
            return []
        summary = self.summary
        if not summary.done:
            self._violate("done_terminates_stream", "the stream ends without data: [DONE]", None)
        if not summary.choices:
            self._violate("single_finish_reason", "no chunk carried a choice, so nothing was finished", None)
        for number, choice in sorted(summary.choices.items()):
            self._finish_choice(number, choice)
        if self.expect_tool_call is True and not self._tool_choices:
            self._violate(
                "tool_call_matches_request", "the request required a tool call; none was streamed", None
            )
        elif self.expect_tool_call is False and self._tool_choices:
            self._violate(
                "tool_call_matches_request",
                "the request ruled tool calls out, yet tool calls were streamed",
                None,
            )
        if self.include_usage and self._usage_event is None:
            self._violate(
                "usage_chunk_present", "include_usage was requested but no chunk carried usage", None
            )
        return self.violations[mark:]

    def _finish_choice(self, number: int, choice: StreamedChoice) -> None:
        reason = choice.finish_reason
        if reason is None:
            self._violate("single_finish_reason", f"choice {number} never gets a finish_reason", None)
        for position, call in sorted(choice.tool_calls.items()):
            arguments = call.arguments
            try:
                parsed = loads_bounded(arguments)
            except ValueError:  # not JSON, or nested too deep
                parsed = _ABSENT
            if not isinstance(parsed, dict):
                self._violate(
                    "tool_call_arguments_json",
                    f"tool call {position} of choice {number}: arguments {_excerpt(arguments)} "
                    "do not form a JSON object",
                    None,
                )
        if reason is None:
            return
        streamed_tools = number in self._tool_choices
        if streamed_tools and reason != "tool_calls":
            self._violate(
                "finish_reason_matches_content",
                f"choice {number} streamed tool calls but finished with {reason!r}",
                None,
            )
        elif reason == "tool_calls" and not streamed_tools:
            self._violate(
                "finish_reason_matches_content",
                f"choice {number} finished with 'tool_calls' but streamed no tool call",
                None,
            )

    def _payload(self, data: str, index: int) -> tuple[EventKind, bool]:
        try:
            chunk = loads_bounded(data)
        except JSONTooDeep as exc:
            self._violate("chunk_is_json", f"data is {exc}, too deep to judge: {_excerpt(data)}", index)
            return EventKind.INVALID, False
        except ValueError:
            self._violate("chunk_is_json", f"data is not JSON: {_excerpt(data)}", index)
            return EventKind.INVALID, False
        if type(chunk) is not dict:
            self._violate("chunk_is_json", f"data is a JSON {type(chunk).__name__}, not an object", index)
            return EventKind.INVALID, False
        if chunk.get("error") is not None or chunk.get("object") == "error":
            error = chunk.get("error")
            self.summary.error = chunk if error is None else error
            self._error_seen = True
            self._violate(
                "no_error_event", f"error event inside the stream: {_excerpt(self.summary.error)}", index
            )
            return EventKind.ERROR, False
        summary = self.summary
        summary.chunk_count += 1
        summary.last_chunk = chunk
        if chunk.get("object") != "chat.completion.chunk":
            self._violate("chunk_object_type", f"object is {_excerpt(chunk.get('object'))}", index)
        self._check_constants(chunk, index)
        if self._usage_event is not None and self.include_usage:
            self._violate(
                "usage_chunk_last", f"a chunk follows the usage chunk (event {self._usage_event})", index
            )
        choices = chunk.get("choices")
        usage = chunk.get("usage")
        if usage is not None:
            self._check_usage(usage, choices, index)
        has_content = False
        if type(choices) is list:
            for position, choice in enumerate(choices):
                if type(choice) is dict and self._choice(choice, position, index):
                    has_content = True
        return EventKind.CHUNK, has_content

    def _check_constants(self, chunk: dict[str, Any], index: int) -> None:
        chunk_id = chunk.get("id", _ABSENT)
        model = chunk.get("model", _ABSENT)
        created = chunk.get("created", _ABSENT)
        if self._first_chunk:
            self._first_chunk = False
            self._ref_id, self._ref_model, self._ref_created = chunk_id, model, created
            summary = self.summary
            summary.id, summary.model, summary.created = (
                chunk.get("id"),
                chunk.get("model"),
                chunk.get("created"),
            )
            return
        if chunk_id != self._ref_id or type(chunk_id) is not type(self._ref_id):
            self._differs("constant_id", "id", chunk_id, self._ref_id, index)
        if model != self._ref_model or type(model) is not type(self._ref_model):
            self._differs("constant_model", "model", model, self._ref_model, index)
        if created != self._ref_created or type(created) is not type(self._ref_created):
            self._differs("constant_created", "created", created, self._ref_created, index)

    def _differs(self, rule: str, key: str, value: Any, first: Any, index: int) -> None:
        seen = "missing" if value is _ABSENT else repr(value)
        expected = "missing" if first is _ABSENT else repr(first)
        self._violate(rule, f"{key} is {seen}; the first chunk had {expected}", index)

    def _check_usage(self, usage: Any, choices: Any, index: int) -> None:
        if not self.include_usage:
            self._violate(
                "usage_only_when_requested",
                "a usage object arrived although include_usage was not requested",
                index,
            )
        else:
            if self._usage_event is None:
                self._usage_event = index
            if type(choices) is list and choices:
                self._violate(
                    "usage_chunk_empty_choices", f"the usage chunk has {len(choices)} choice(s)", index
                )
        if type(usage) is not dict:
            self._violate(
                "usage_totals_add_up", f"usage is a JSON {type(usage).__name__}, not an object", index
            )
            return
        self.summary.usage = usage
        counts: list[int] = []
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = usage.get(name)
            if _is_count(value):
                counts.append(value)
                continue
            self._violate(
                "usage_totals_add_up", f"usage.{name} is {value!r}, not a non-negative integer", index
            )
            return
        prompt, completion, total = counts
        if total != prompt + completion:
            self._violate(
                "usage_totals_add_up",
                f"total_tokens {total} is not prompt_tokens {prompt} + completion_tokens {completion}",
                index,
            )

    def _choice(self, choice: dict[str, Any], position: int, index: int) -> bool:
        number = choice.get("index", position)
        if type(number) is not int:
            number = position
        delta = choice.get("delta")
        if type(delta) is not dict:
            delta = _EMPTY
        state = self.summary.choices.get(number)
        if state is None:
            state = self.summary.choices[number] = StreamedChoice(number)
            if delta.get("role") != "assistant":
                role = delta.get("role", _ABSENT)
                shown = "no delta.role" if role is _ABSENT else f"delta.role {role!r}"
                self._violate(
                    "first_chunk_has_role", f"the first chunk of choice {number} has {shown}", index
                )
        role = delta.get("role")
        if state.role is None and type(role) is str:
            state.role = role
        finished = state.finish_reason is not None
        has_content = False
        content = delta.get("content")
        if content and type(content) is str:
            state.content_parts.append(content)
            has_content = True
        refusal = delta.get("refusal")
        if refusal and type(refusal) is str:
            state.refusal_parts.append(refusal)
            has_content = True
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            self._tool_choices.add(number)
            if type(tool_calls) is list:
                for item in tool_calls:
                    if self._tool_call(state, item, index):
                        has_content = True
            else:
                self._violate("tool_call_deltas_indexed", "delta.tool_calls is not a list", index)
        if finished and (has_content or tool_calls):
            self._violate(
                "single_finish_reason",
                f"choice {number} gets a delta after its finish_reason {state.finish_reason!r}",
                index,
            )
        reason = choice.get("finish_reason")
        if reason is not None:
            if finished:
                self._violate(
                    "single_finish_reason",
                    f"choice {number} gets a second finish_reason {reason!r} "
                    f"(the first was {state.finish_reason!r})",
                    index,
                )
            else:
                state.finish_reason = reason if type(reason) is str else repr(reason)
        return has_content

    def _tool_call(self, state: StreamedChoice, item: Any, index: int) -> bool:
        number = state.index
        if type(item) is not dict:
            self._violate(
                "tool_call_deltas_indexed", f"a tool_calls item of choice {number} is not an object", index
            )
            return False
        position = item.get("index", _ABSENT)
        if type(position) is not int:
            shown = "no index" if position is _ABSENT else f"index {position!r}"
            self._violate(
                "tool_call_deltas_indexed", f"a tool_calls item of choice {number} has {shown}", index
            )
            return False
        function = item.get("function")
        if function is None:
            function = _EMPTY
        elif type(function) is not dict:
            self._violate(
                "tool_call_deltas_indexed", f"tool call {position}: function is not an object", index
            )
            function = _EMPTY
        call_id = item.get("id")
        name = function.get("name")
        call = state.tool_calls.get(position)
        if call is None:
            call = state.tool_calls[position] = StreamedToolCall(position)
            missing = [
                field
                for field, value in (("id", call_id), ("function.name", name))
                if not (value and type(value) is str)
            ]
            if missing:
                self._violate(
                    "tool_call_deltas_indexed",
                    f"the first fragment of tool call {position} (choice {number}) "
                    f"has no {' and no '.join(missing)}",
                    index,
                )
        repeated: list[str] = []
        if call_id and type(call_id) is str:
            if call.id is None:
                call.id = call_id
            else:
                repeated.append("id")
        if name and type(name) is str:
            if call.name is None:
                call.name = name
            else:
                repeated.append("function.name")
        if repeated:
            self._violate(
                "tool_call_deltas_indexed",
                f"a later fragment of tool call {position} (choice {number}) repeats "
                f"{' and '.join(repeated)}; clients concatenate string fields, so the value gets corrupted",
                index,
            )
        arguments = function.get("arguments")
        if arguments is None:
            return False
        if type(arguments) is not str:
            self._violate(
                "tool_call_deltas_indexed",
                f"an arguments fragment of tool call {position} is a JSON "
                f"{type(arguments).__name__}, not a string",
                index,
            )
            return False
        if arguments:
            call.fragments.append(arguments)
            return True
        return False
