"""The rules gateproof obeys on the wire with any target, and the names of the ways a target breaks them.

One home for what the contract runner, the property layer and the load generator all enforce
when they talk to a gateway that may be hostile or broken:

- traffic goes to loopback only (``is_loopback_url``) and a redirect is never followed: it is
  the named failure ``redirect``, whatever the ``Location`` says;
- no response is read without bound: bodies stop at ``MAX_RESPONSE_BYTES`` (``body_too_large``),
  header blocks at ``MAX_HEADER_BYTES`` (``headers_too_large``);
- every request has an overall deadline from send to last byte, not just a per-read timeout,
  so a target that drips one byte a second or streams forever still ends (``deadline``);
- JSON from the target is parsed with a bounded nesting depth (``MAX_JSON_DEPTH``), so a
  100k-deep document is ``too_deep`` and never a ``RecursionError``.

The failure names are shared so that ``gateproof contract`` and ``gateproof load`` say the same
thing about the same misbehaviour. This module imports nothing heavy: the load generator's
gevent process imports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_RESPONSE_BYTES",
    "JSONTooDeep",
    "TransportFailure",
    "json_depth",
    "loads_bounded",
]

#: the most of one response body gateproof reads; a legitimate chat completion or stream is far
#: smaller (a 4k-token stream is ~1 MiB of SSE), and anything longer is a failure, not a wait
MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024
#: the most of one response's status line and header block gateproof accepts
MAX_HEADER_BYTES: Final = 64 * 1024
#: the deepest nesting of JSON arrays and objects gateproof parses from a target
MAX_JSON_DEPTH: Final = 256


class TransportFailure(StrEnum):
    """Why an exchange with the target did not produce a complete HTTP answer to judge.

    The value is the name reports, load failure counts and JUnit use.
    """

    #: the target answered 3xx; gateproof never follows a redirect
    REDIRECT = "redirect"
    #: nothing arrived within the read (or connect) timeout
    TIMEOUT = "timeout"
    #: data kept coming, but the whole exchange outlived its overall deadline
    DEADLINE = "deadline"
    #: the body went past MAX_RESPONSE_BYTES
    BODY_TOO_LARGE = "body_too_large"
    #: the status line and headers went past MAX_HEADER_BYTES
    HEADERS_TOO_LARGE = "headers_too_large"
    #: the connection was refused
    CONNECTION_REFUSED = "connection_refused"
    #: the connection was reset by the peer
    CONNECTION_RESET = "connection_reset"
    #: the connection closed before a complete answer (no status line, or a body cut short)
    CONNECTION_CLOSED = "connection_closed"
    #: the bytes are not valid HTTP/1.1 (bad status line, broken chunked encoding, ...)
    PROTOCOL_ERROR = "protocol_error"
    #: any other transport error
    CONNECTION_ERROR = "connection_error"

    @property
    def sentence(self) -> str:
        return _SENTENCES[self]


_SENTENCES: Final = {
    TransportFailure.REDIRECT: "the target answered a redirect (gateproof never follows one)",
    TransportFailure.TIMEOUT: "nothing arrived within the timeout",
    TransportFailure.DEADLINE: "the exchange outlived its overall deadline while data kept coming",
    TransportFailure.BODY_TOO_LARGE: f"the body went past {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB",
    TransportFailure.HEADERS_TOO_LARGE: f"the header block went past {MAX_HEADER_BYTES // 1024} KiB",
    TransportFailure.CONNECTION_REFUSED: "the connection was refused",
    TransportFailure.CONNECTION_RESET: "the connection was reset by the target",
    TransportFailure.CONNECTION_CLOSED: "the connection closed before the answer was complete",
    TransportFailure.PROTOCOL_ERROR: "the answer is not valid HTTP/1.1",
    TransportFailure.CONNECTION_ERROR: "the connection failed",
}


class JSONTooDeep(ValueError):
    """A JSON document nests arrays and objects deeper than MAX_JSON_DEPTH."""


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of a parsed JSON value (a scalar is 0), counted without recursion.

    Stops counting once ``limit`` is passed and returns ``limit + 1``: the caller only needs
    to know the value is too deep, not how deep.
    """
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > limit:
            return limit + 1
        deepest = max(deepest, depth)
        pending.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def loads_bounded(
    data: str | bytes | bytearray,
    limit: int = MAX_JSON_DEPTH,
    *,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """``json.loads`` that raises :class:`JSONTooDeep` (a ``ValueError``) instead of recursing.

    Anything gateproof does with a parsed body (schema validation, copying, rendering) recurses
    per level, so a document deeper than ``limit`` is refused here, before any of that. The C
    parser itself raises ``RecursionError`` past about a thousand levels; that is reported the
    same way. ``object_pairs_hook`` is handed to ``json.loads`` (to see every key of an object,
    repeats included); the depth limit holds for what it returns as long as objects stay dicts.

    The stream grammar parses every chunk of every load-test stream with this, so the common case
    is kept cheap: a document with no more opening brackets than ``limit`` cannot nest deeper,
    and is not walked.
    """
    try:
        value = json.loads(data, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise JSONTooDeep(f"JSON nested deeper than {limit} levels") from None
    if not isinstance(value, dict | list) or _openings(data) <= limit:
        return value
    if json_depth(value, limit) > limit:
        raise JSONTooDeep(f"JSON nested deeper than {limit} levels")
    return value


def _openings(data: str | bytes | bytearray) -> int:
    """How many ``[`` and ``{`` the text holds (in strings too): a bound on its nesting depth."""
    if isinstance(data, str):
        return data.count("[") + data.count("{")
    return data.count(b"[") + data.count(b"{")
