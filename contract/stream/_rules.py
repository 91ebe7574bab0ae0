"""The names of the stream rules, what each one means, and the violation value that cites them.

A rule name is snake_case and reads as the line of a report ("constant_id", "usage_chunk_last"); it
is stable, because results and reports are grouped and compared by it. The description is the
sentence a report prints next to a failure, so it states the expected behaviour, not the fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["RULES", "StreamViolation"]

RULES: Mapping[str, str] = MappingProxyType(
    {
        "sse_framing": (
            "The body is well-formed UTF-8 event-stream text and every event ends with a blank line."
        ),
        "event_type_is_message": (
            "Every event is an unnamed (`message`) event; chat completions streams use no `event:` types."
        ),
        "chunk_is_json": "Every `data` payload other than `[DONE]` is a JSON object.",
        "chunk_object_type": 'Every chunk has `object: "chat.completion.chunk"`.',
        "first_chunk_has_role": ('The first chunk of each choice index carries `delta.role: "assistant"`.'),
        "constant_id": "Every chunk, the usage chunk included, has the same `id`.",
        "constant_model": "Every chunk, the usage chunk included, has the same `model`.",
        "constant_created": "Every chunk, the usage chunk included, has the same `created`.",
        "single_finish_reason": (
            "Each choice gets exactly one non-null `finish_reason`, and no content or tool-call delta "
            "after it."
        ),
        "usage_only_when_requested": (
            "A non-null `usage` object appears only when `stream_options.include_usage` was requested."
        ),
        "usage_chunk_present": "When `include_usage` was requested, a chunk with `usage` arrives.",
        "usage_chunk_last": "The usage chunk is the last chunk before `data: [DONE]`.",
        "usage_chunk_empty_choices": "The usage chunk has `choices: []`.",
        "usage_totals_add_up": (
            "The `usage` counts are non-negative integers and `total_tokens = prompt_tokens + completion_tokens`."
        ),
        "done_terminates_stream": "The stream ends with `data: [DONE]` and nothing follows it.",
        "tool_call_deltas_indexed": (
            "Every `delta.tool_calls` item has an integer `index`; the first fragment of an index carries "
            "`id` and `function.name` (later ones do not repeat them) and `arguments` fragments are strings."
        ),
        "tool_call_arguments_json": (
            "For each choice and tool-call index, the concatenated `arguments` fragments form a JSON object."
        ),
        "finish_reason_matches_content": (
            'A choice finishes with `"tool_calls"` exactly when it streamed tool calls.'
        ),
        "tool_call_matches_request": (
            "A tool call is streamed when the request required one, and none when it ruled them out."
        ),
        "no_error_event": (
            "No event carries a top-level `error` (a failure inside a 200 stream), and nothing follows one."
        ),
    }
)


@dataclass(frozen=True, slots=True)
class StreamViolation:
    """One breach of a rule: which rule, what was seen, and at which event.

    `event_index` counts dispatched events from 0 (comments are not events); it is None when the
    breach is only visible once the stream has ended (a missing `[DONE]`, a choice never finished).
    """

    rule: str
    message: str
    event_index: int | None = None

    def __str__(self) -> str:
        where = "end of stream" if self.event_index is None else f"event {self.event_index}"
        return f"{self.rule} ({where}): {self.message}"
