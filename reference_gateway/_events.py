"""What a stream is made of on its way to the client, and how each piece is put on the wire.

A provider adapter decodes its upstream events into :class:`Chunk` and
:class:`StreamFailure` items; the relay adds the final usage chunk and :data:`DONE`;
a fault may rewrite the sequence; :func:`encode` turns each item into one SSE event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from gateproof.reference_gateway._errors import GatewayError

__all__ = ["DONE", "Chunk", "Done", "StreamFailure", "StreamItem", "encode", "encode_json"]


@dataclass(frozen=True)
class Chunk:
    """One ``chat.completion.chunk`` object in Edgee's shape."""

    data: dict[str, Any]

    @property
    def is_usage_only(self) -> bool:
        """The closing usage chunk: ``usage`` and no choices."""
        return self.data.get("choices") == [] and self.data.get("usage") is not None


@dataclass(frozen=True)
class StreamFailure:
    """A failure after the stream started (D9): one error event, then the stream ends."""

    error: GatewayError


class Done:
    """The ``data: [DONE]`` terminator: the stream completed."""

    def __repr__(self) -> str:
        return "DONE"


DONE: Final = Done()

StreamItem = Chunk | StreamFailure | Done


#: one encoder for every call: ``json.dumps`` with options builds a new ``JSONEncoder`` each time,
#: a quarter of the cost of encoding a stream chunk (the output is the same)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DONE_EVENT = b"data: [DONE]\n\n"


def encode_json(payload: Any) -> str:
    """Compact JSON, UTF-8 kept as is (what providers send)."""
    return _COMPACT.encode(payload)


def encode(item: StreamItem) -> bytes:
    """One SSE event: ``data: <json>`` (or ``[DONE]``) and a blank line."""
    if isinstance(item, Chunk):
        text = _COMPACT.encode(item.data)
    elif isinstance(item, StreamFailure):
        text = _COMPACT.encode(item.error.envelope())
    else:
        return _DONE_EVENT
    return b"data: " + text.encode() + b"\n\n"
