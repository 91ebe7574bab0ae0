"""What a stream said, rebuilt while it is checked.

The grammar fills a `StreamSummary` as events go by, so the conformance suite can compare a stream
with the non-stream answer to the same request (same text, same tool calls, same usage) and the load
scenario can read when the first content arrived, without parsing the stream a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["StreamSummary", "StreamedChoice", "StreamedToolCall"]


@dataclass(slots=True)
class StreamedToolCall:
    """One tool call of one choice, put together from its fragments (keyed by the delta `index`).

    `id` and `name` come from the first fragment that carried them; `fragments` keeps the
    `arguments` pieces as they arrived (a gateway that buffers them shows up as a single fragment).
    """

    index: int
    id: str | None = None
    name: str | None = None
    fragments: list[str] = field(default_factory=list, repr=False)

    @property
    def arguments(self) -> str:
        return "".join(self.fragments)


@dataclass(slots=True)
class StreamedChoice:
    """The deltas of one choice index, joined."""

    index: int
    role: str | None = None
    finish_reason: str | None = None
    content_parts: list[str] = field(default_factory=list, repr=False)
    refusal_parts: list[str] = field(default_factory=list, repr=False)
    tool_calls: dict[int, StreamedToolCall] = field(default_factory=dict)

    @property
    def content(self) -> str:
        """The joined `delta.content` text ("" when the choice streamed none)."""
        return "".join(self.content_parts)

    @property
    def refusal(self) -> str:
        """The joined `delta.refusal` text ("" when the choice streamed none)."""
        return "".join(self.refusal_parts)


@dataclass(slots=True)
class StreamSummary:
    """Counts and content of one stream.

    `event_count` counts dispatched events, `chunk_count` the JSON chunks among them (not `[DONE]`,
    not an error event, not an unparsable payload). `id`, `model` and `created` are those of the first
    chunk. `usage` is the last non-null `usage` object seen. `last_chunk` is the last JSON chunk, where
    the Edgee extensions (`compression`, `debug`, `edgee_pending_id`, ...) ride. `error` is the value
    of the `error` member of an error event. `first_content_event` is the index of the first event
    that carried non-empty content, refusal text or tool-call arguments (what TTFT is timed against),
    and `content_event_count` how many events did.
    """

    event_count: int = 0
    chunk_count: int = 0
    comment_count: int = 0
    id: Any = None
    model: Any = None
    created: Any = None
    choices: dict[int, StreamedChoice] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    done: bool = False
    error: Any = None
    first_content_event: int | None = None
    content_event_count: int = 0
    last_chunk: dict[str, Any] | None = field(default=None, repr=False)

    def _first_choice(self) -> StreamedChoice | None:
        if not self.choices:
            return None
        return self.choices.get(0) or self.choices[min(self.choices)]

    @property
    def content(self) -> str:
        """The content text of the first choice (index 0)."""
        choice = self._first_choice()
        return choice.content if choice else ""

    @property
    def refusal(self) -> str:
        """The refusal text of the first choice."""
        choice = self._first_choice()
        return choice.refusal if choice else ""

    @property
    def tool_calls(self) -> list[StreamedToolCall]:
        """The tool calls of the first choice, ordered by their delta index."""
        choice = self._first_choice()
        if choice is None:
            return []
        return [choice.tool_calls[index] for index in sorted(choice.tool_calls)]

    @property
    def finish_reason(self) -> str | None:
        """The finish reason of the first choice (None if it never got one)."""
        choice = self._first_choice()
        return choice.finish_reason if choice else None

    @property
    def finish_reasons(self) -> dict[int, str | None]:
        """The finish reason of every choice, by choice index."""
        return {index: choice.finish_reason for index, choice in sorted(self.choices.items())}
