"""What a chat completion request must satisfy before it goes anywhere.

The body is checked against the reference spec itself (``gateproof.openapi``), so the
gateway and the conformance suite cannot disagree about the schema. This module adds
only what a schema cannot say: boolean ``X-Edgee-*`` headers (D7) and the message count
limit (D6). The Edge Tool fields are checked against the key and the pending store by
``_edge_loop.EdgeTools.admit`` (D4, D5, D35, D37).

Speed matters here because validation runs on every request, on the event loop's
thread: the spec's pure-Python validators (``jsonschema``) cost about 0.14 ms per
message (each one tries five ``oneOf`` branches through ``$ref``), so a 10k-message
body took over a second and stalled every other connection meanwhile. So the verdict
comes from the same spec compiled by ``jsonschema_rs`` (~1000x faster), and the
Python validators, which know how to name the field to blame (D6 ``param``), run only
on bodies already known to be invalid, and only over the array items that failed.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from gateproof.openapi import (
    BOOLEAN_HEADERS,
    COMPRESSION_HEADER,
    DEBUG_HEADER,
    SCHEMA_NAMES,
    TAGS_HEADER,
    SchemaKind,
    ValidationIssue,
    Validators,
    load_spec,
)
from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._config import Limits

__all__ = [
    "BOOLEAN_HEADERS",
    "RequestOptions",
    "RequestValidator",
    "compile_request_schema",
    "parse_boolean_header",
    "shipped_request_schema",
]

#: at most this many failing items of one array are shown to the Python validators to name
#: the culprit (the first failing item is the one blamed, so more would only cost time)
_BLAME_ITEMS = 16
#: and at most this many compiled-validator errors are read to find them
_BLAME_ERRORS = 256


_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def parse_boolean_header(name: str, value: str) -> bool:
    """A D7 boolean header value, or 400 ``invalid_request`` naming the header."""
    spelled = value.strip().lower()
    if spelled in _TRUE:
        return True
    if spelled in _FALSE:
        return False
    raise _errors.invalid_request(name, f"Header {name} must be true, false, 1 or 0")


@dataclass(frozen=True)
class RequestOptions:
    """The gateway-side switches of one request, merged from body and headers (D7).

    ``compression`` is what the request itself says (D30): True when the header or the
    body ``enable_compression`` says true, False when one says false and none true, None
    when neither says anything (the key's default then decides).
    """

    tags: tuple[str, ...] = ()
    debug: bool = False
    compression: bool | None = None


def compile_request_schema(spec: Mapping[str, Any] | None = None) -> jsonschema_rs.Validator:
    """The spec's request schema compiled by ``jsonschema_rs`` (the shipped spec by default).

    The root is a ``$ref`` into the spec's own components, like the Python validators', so
    both read exactly the same schema; nothing is fetched (the spec has no remote refs).
    """
    components = (spec if spec is not None else load_spec())["components"]
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/components/schemas/{SCHEMA_NAMES[SchemaKind.REQUEST]}",
        "components": components,
    }
    return jsonschema_rs.Draft202012Validator(root)


@functools.cache
def shipped_request_schema() -> jsonschema_rs.Validator:
    """The shipped spec's request schema, compiled once per process (every app shares it)."""
    return compile_request_schema()


class RequestValidator:
    """Checks request bodies and Edgee headers; every failure is a :class:`GatewayError`.

    ``compiled`` is the same request schema as ``validators`` compiled by ``jsonschema_rs``;
    without it (validators built from some other spec) every body goes through the Python
    validators, correct but ~1000x slower.
    """

    def __init__(
        self,
        validators: Validators,
        compiled: jsonschema_rs.Validator | None = None,
        *,
        max_messages: int = Limits.max_messages,
    ) -> None:
        self._validators = validators
        self._compiled = compiled
        self._max_messages = max_messages

    def check_body(self, body: Any) -> None:
        """Schema violations (D6), including ``stream_options`` without streaming (D18) and ``n`` (D12).

        The validators name the field to blame (``messages[0].role``, the missing field of a
        ``required`` rule, ``stream_options`` for D18), and that becomes ``param``. More
        messages than ``limits.max_messages`` is refused first, before any schema work (D6).
        """
        messages = body.get("messages") if isinstance(body, dict) else None
        if isinstance(messages, list) and len(messages) > self._max_messages:
            raise _errors.invalid_request(
                "messages",
                f"messages has {len(messages)} entries; this gateway accepts at most {self._max_messages}",
            )
        if self._compiled is None or not self._compiled.is_valid(body):
            self._raise_first_issue(body)
        # The spec says as much; checked again because the pipeline relies on it.
        if not isinstance(body, dict):
            raise _errors.invalid_request(None, "The request body must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise _errors.invalid_request("model", "model must be a non-empty string")

    def _raise_first_issue(self, body: Any) -> None:
        """Raise the D6 error for an invalid body, blaming the field the Python validators pick.

        Array items are checked independently by this schema, so only the failing items of
        each long top-level array (as ``jsonschema_rs`` reports them) are shown to the slow
        validators, keeping their cost per invalid body bounded instead of per message.
        The blamed path is then renumbered back to the item's index in the client's array.
        """
        probe: Any = body
        renumber: dict[str, list[int]] = {}
        if self._compiled is not None and isinstance(body, dict):
            probe, renumber = self._narrowed(body)
        issue = self._validators.first_issue(SchemaKind.REQUEST, probe)
        if issue is None:
            if self._compiled is not None:
                # The two implementations disagree (the corpus tests say they should not):
                # the compiled one's own words are still better than letting the body through.
                error = next(iter(self._compiled.iter_errors(body)), None)
                if error is not None:
                    path = _dotted_rs(error.instance_path)
                    raise _errors.invalid_request(
                        path or None, f"Invalid request: {path or '<root>'}: {error.message}"
                    )
            return
        path = _renumbered(issue.path, renumber)
        raise _errors.invalid_request(
            path or None, f"Invalid request: {ValidationIssue(path, issue.message)}"
        )

    def _narrowed(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[int]]]:
        """``body`` with each long top-level array cut down to its failing items (or its first)."""
        assert self._compiled is not None
        failing: dict[str, list[int]] = {}
        whole: set[str] = set()  # arrays that fail as a whole (an array-level rule): left intact
        for error in itertools.islice(self._compiled.iter_errors(body), _BLAME_ERRORS):
            where = error.instance_path
            if len(where) == 1 and isinstance(where[0], str):
                whole.add(where[0])
            elif len(where) >= 2 and isinstance(where[0], str) and isinstance(where[1], int):
                indices = failing.setdefault(where[0], [])
                if where[1] not in indices and len(indices) < _BLAME_ITEMS:
                    indices.append(where[1])
        narrowed = dict(body)
        renumber: dict[str, list[int]] = {}
        for field, value in body.items():
            if not isinstance(value, list) or len(value) <= _BLAME_ITEMS or field in whole:
                continue
            # With no failing item, the first one stands in for all: it passes, like the rest,
            # and keeps array-level rules (minItems) satisfied as they were.
            kept = sorted(failing.get(field, [0]))
            narrowed[field] = [value[index] for index in kept]
            renumber[field] = kept
        return narrowed, renumber

    def options(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> RequestOptions:
        """Tags (body first, then the header, no duplicates) and the debug/compression switches."""
        switches = {
            name: parse_boolean_header(name, headers[name]) for name in BOOLEAN_HEADERS if name in headers
        }
        tags: list[str] = [tag for tag in body.get("tags") or [] if isinstance(tag, str)]
        header_tags = headers.get(TAGS_HEADER)
        if header_tags is not None:
            tags.extend(tag.strip() for tag in header_tags.split(","))
        unique = tuple(dict.fromkeys(tag for tag in tags if tag))
        # Only a JSON boolean counts in the body (the spec leaves the field untyped, D11).
        said = [switches.get(COMPRESSION_HEADER), body.get("enable_compression")]
        said_bools = [value for value in said if isinstance(value, bool)]
        return RequestOptions(
            tags=unique,
            debug=body.get("enable_debug") is True or switches.get(DEBUG_HEADER, False),
            compression=any(said_bools) if said_bools else None,
        )


def _renumbered(path: str, renumber: Mapping[str, list[int]]) -> str:
    """``messages[1].role`` of a narrowed body back to ``messages[<index in the client's array>].role``."""
    for field, kept in renumber.items():
        head = field + "["
        if path.startswith(head):
            position, closed, rest = path[len(head) :].partition("]")
            if closed and position.isdigit() and int(position) < len(kept):
                return f"{field}[{kept[int(position)]}]{rest}"
    return path


def _dotted_rs(path: list[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text
