"""The pending store: Edge Tool results held for the client's next request (D4, D37).

When the model asks for client tools and Edge Tools in one turn, the gateway runs the Edge
Tools at once and keeps what it needs to finish the turn later: the model's whole list of
tool calls (in the model's order) and the result of each Edge Tool call. The client gets
only its own calls plus a ``pend_...`` id; when it sends its results back with that id,
:func:`splice_pending` puts the stored calls and results into the history where they belong.

The store is in memory, bounded (the oldest entries go first when it is full), and each id
lives ten minutes and works once. Ids are bound to the key that created them: another key
presenting one gets the same 400 as for an unknown id. The clock is injectable, so tests
can expire an entry without waiting.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateproof.openapi import PENDING_PREFIX
from gateproof.reference_gateway import _errors

__all__ = ["PENDING_TTL_S", "PendingStore", "PendingTurn", "splice_pending"]

#: how long a pending id stays valid (D4)
PENDING_TTL_S = 600.0
#: the most turns held at once; past it, the oldest is dropped (its id becomes unknown)
MAX_PENDING = 10_000


@dataclass(frozen=True)
class PendingTurn:
    """One held turn: every tool call of the model's answer and the Edge Tool results."""

    #: the key that started the turn (its name, never its value)
    owner: str
    #: the model's tool calls in its own order, Edge Tool calls and client calls alike
    calls: tuple[Mapping[str, Any], ...]
    #: tool_call_id -> result content, for the Edge Tool calls only
    results: Mapping[str, str]

    @property
    def client_call_ids(self) -> tuple[str, ...]:
        return tuple(str(call.get("id")) for call in self.calls if call.get("id") not in self.results)


class PendingStore:
    """Pending turns by id: bounded, expiring, single use (unless a fault says otherwise)."""

    def __init__(
        self,
        *,
        ttl_s: float = PENDING_TTL_S,
        max_entries: int = MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._turns: OrderedDict[str, tuple[float, PendingTurn]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._turns)

    def put(self, turn: PendingTurn) -> str:
        """Hold ``turn``; its new id (``pend_`` + 22 URL-safe characters)."""
        self._expire()
        while len(self._turns) >= self._max:
            self._turns.popitem(last=False)
        pending_id = PENDING_PREFIX + secrets.token_urlsafe(16)
        self._turns[pending_id] = (self._clock() + self._ttl_s, turn)
        return pending_id

    def peek(self, pending_id: Any, owner: str) -> PendingTurn:
        """The turn behind ``pending_id`` for ``owner``, or 400 ``invalid_edgee_pending_id``."""
        self._expire()
        held = self._turns.get(pending_id) if isinstance(pending_id, str) else None
        if held is None or held[1].owner != owner:
            raise _errors.invalid_edgee_pending_id()
        return held[1]

    def discard(self, pending_id: str) -> None:
        """Use the id up: a second request with it is refused."""
        self._turns.pop(pending_id, None)

    def _expire(self) -> None:
        now = self._clock()
        while self._turns:
            first = next(iter(self._turns))
            if self._turns[first][0] > now:
                return
            del self._turns[first]


def splice_pending(messages: list[Any], turn: PendingTurn) -> list[Any]:
    """The history with the held turn restored, for the provider.

    The client sends back its assistant message (carrying only its own tool calls) followed by
    its tool messages. That assistant message becomes the model's original one, every call in
    the model's order, and the tool messages after it become one per call in that same order:
    the stored result for an Edge Tool call, the client's own message for a client call (D37).
    Tool messages of the client that answer none of the calls keep their place after those.
    When no assistant message carries the turn's client calls, the id does not belong to this
    conversation: 400 ``invalid_edgee_pending_id``.
    """
    wanted = set(turn.client_call_ids)
    at = None
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "assistant":
            ids = {call.get("id") for call in message.get("tool_calls") or [] if isinstance(call, dict)}
            if wanted and wanted <= ids:
                at = index
                break
    if at is None:
        raise _errors.invalid_edgee_pending_id()
    end = at + 1
    while end < len(messages) and isinstance(messages[end], dict) and messages[end].get("role") == "tool":
        end += 1
    answered = {str(m.get("tool_call_id")): m for m in messages[at + 1 : end]}
    assistant = {**messages[at], "tool_calls": [dict(call) for call in turn.calls]}
    tools: list[Any] = []
    for call in turn.calls:
        call_id = str(call.get("id"))
        if call_id in turn.results:
            tools.append({"role": "tool", "tool_call_id": call_id, "content": turn.results[call_id]})
        elif call_id in answered:
            tools.append(answered.pop(call_id))
    tools.extend(answered.values())
    return [*messages[:at], assistant, *tools, *messages[end:]]
