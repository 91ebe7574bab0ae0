"""The compression step: run the strategies over a prompt's tool results, keep what saved tokens."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateproof.reference_gateway.compression._counting import token_deltas
from gateproof.reference_gateway.compression._strategies import STRATEGIES, Strategy

__all__ = ["REPEATED_RESULT", "Compression", "compress_messages", "compress_text"]

#: the strategy that replaces a tool result identical to an earlier one by a reference to it
REPEATED_RESULT = "repeated_tool_result"
#: the shortest tool result worth replacing by a reference (the note itself costs about 15 tokens)
_MIN_REPEAT_CHARS = 200


@dataclass(frozen=True)
class Compression:
    """The outcome of compressing one prompt."""

    #: the prompt to forward: unchanged messages are the very same objects, changed ones are copies
    messages: list[dict[str, Any]]
    #: tokens of the original prompt - tokens of the forwarded one, under openapi's convention (≥ 0)
    saved_tokens: int
    #: wall time of the whole step (transform and token counting), in milliseconds
    time_ms: float
    #: names of the strategies that changed something, in registry order (``REPEATED_RESULT`` last)
    strategies: tuple[str, ...]
    changed_messages: int
    #: tokens saved by each message that changed, by its index in ``messages``
    saved_by_message: Mapping[int, int] | None = None


def compress_text(text: str, strategies: Mapping[str, Strategy] = STRATEGIES) -> tuple[str, tuple[str, ...]]:
    """``text`` through every strategy in order, and the names of those that changed it."""
    used: list[str] = []
    for name, strategy in strategies.items():
        result = strategy(text)
        if result is not text and result != text:
            used.append(name)
            text = result
    return text, tuple(used)


def _repeat_note(call_id: str) -> str:
    return f"[identical to the result of tool call {call_id} above]"


@dataclass
class _Candidate:
    """A tool message the strategies changed, before the token count decides whether it is sent."""

    index: int
    #: (part index, or None for string content; original text; compressed text)
    edits: list[tuple[int | None, str, str]]
    used: set[str]
    #: the texts whose token difference is what this message saves (``edits``, unless a repeat)
    counted: list[tuple[str, str]] = field(default_factory=list)
    #: a repeat's earlier result: its own saving is part of this one's (see ``_repeat``)
    earlier: _Candidate | None = None
    #: original tokens - compressed tokens, once counted
    saved: int = 0

    def __post_init__(self) -> None:
        if not self.counted:
            self.counted = [(before, after) for _, before, after in self.edits]


#: a tool result already seen: its call id and its candidate (None when no strategy changed it)
_Seen = dict[str, tuple[str, _Candidate | None]]


def _repeat(index: int, content: str, earlier: tuple[str, _Candidate | None]) -> _Candidate:
    """A tool result identical to an earlier one, as a note naming the earlier call.

    What it saves is tokens(content) - tokens(note). When the earlier copy was
    compressed, that is the earlier copy's saving plus tokens(its compressed text) -
    tokens(note), which needs only the (short) compressed text counted, not the
    original a second time.
    """
    call_id, candidate = earlier
    note = _repeat_note(call_id)
    edits: list[tuple[int | None, str, str]] = [(None, content, note)]
    if candidate is None:
        return _Candidate(index, edits, {REPEATED_RESULT})
    return _Candidate(
        index, edits, {REPEATED_RESULT}, counted=[(candidate.edits[0][2], note)], earlier=candidate
    )


def _candidate(
    index: int, message: Mapping[str, Any], seen: _Seen | None, strategies: Mapping[str, Strategy]
) -> _Candidate | None:
    content = message.get("content")
    if isinstance(content, str):
        if seen is not None and len(content) >= _MIN_REPEAT_CHARS and content in seen:
            return _repeat(index, content, seen[content])
        compressed, used = compress_text(content, strategies)
        candidate = _Candidate(index, [(None, content, compressed)], set(used)) if used else None
        call_id = message.get("tool_call_id")
        if seen is not None and isinstance(call_id, str) and call_id:
            seen.setdefault(content, (call_id, candidate))
        return candidate
    if isinstance(content, list):
        edits: list[tuple[int | None, str, str]] = []
        names: set[str] = set()
        for part_index, part in enumerate(content):
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                compressed, used = compress_text(part["text"], strategies)
                if used:
                    edits.append((part_index, part["text"], compressed))
                    names.update(used)
        return _Candidate(index, edits, names) if edits else None
    return None


def _rewritten(message: Mapping[str, Any], edits: list[tuple[int | None, str, str]]) -> dict[str, Any]:
    copy = dict(message)
    for part_index, _, compressed in edits:
        if part_index is None:
            copy["content"] = compressed
        else:
            parts = list(copy["content"])
            parts[part_index] = {**parts[part_index], "text": compressed}
            copy["content"] = parts
    return copy


def compress_messages(
    messages: Sequence[Mapping[str, Any]],
    *,
    strategies: Mapping[str, Strategy] = STRATEGIES,
    repeated_results: bool = True,
) -> Compression:
    """Compress the tool results of a chat prompt (see the package docstring for the rules).

    ``strategies`` narrows the registry and ``repeated_results`` switches the
    ``REPEATED_RESULT`` step (the benchmark measures what each one adds); the gateway
    always uses them all.
    """
    started = time.perf_counter()
    seen: _Seen | None = {} if repeated_results else None
    candidates: list[_Candidate] = []
    for index, message in enumerate(messages):
        if isinstance(message, Mapping) and message.get("role") == "tool":
            candidate = _candidate(index, message, seen, strategies)
            if candidate is not None:
                candidates.append(candidate)
    deltas = iter(token_deltas([pair for candidate in candidates for pair in candidate.counted]))
    forwarded: list[dict[str, Any]] = list(messages)  # type: ignore[arg-type]  # the same objects, as sent
    saved_by_message: dict[int, int] = {}
    used: set[str] = set()
    for candidate in candidates:  # in message order: an earlier copy is counted before its repeat
        candidate.saved = sum(next(deltas) for _ in candidate.counted)
        if candidate.earlier is not None:
            candidate.saved += candidate.earlier.saved
        saved = candidate.saved
        if saved <= 0:
            continue  # never longer: a message that saves nothing is forwarded as it came
        forwarded[candidate.index] = _rewritten(messages[candidate.index], candidate.edits)
        saved_by_message[candidate.index] = saved
        used |= candidate.used
    order = [*strategies, REPEATED_RESULT]
    return Compression(
        messages=forwarded,
        saved_tokens=sum(saved_by_message.values()),
        time_ms=(time.perf_counter() - started) * 1000,
        strategies=tuple(name for name in order if name in used),
        changed_messages=len(saved_by_message),
        saved_by_message=saved_by_message,
    )
