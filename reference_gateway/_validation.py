"""What a chat completion request must satisfy before it goes anywhere.

The body is checked against the reference spec itself (``gateproof.openapi``), so the
gateway and the conformance suite cannot disagree about the schema. This module adds
only what a schema cannot say: boolean ``X-Edgee-*`` headers (D7) and the Edge Tool
fields, which this gateway rejects because it has no Edge Tools activated (D4, D5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateproof.openapi import SchemaKind, Validators
from gateproof.reference_gateway import _errors

__all__ = ["BOOLEAN_HEADERS", "RequestOptions", "RequestValidator", "parse_boolean_header"]

#: headers that carry a boolean (D7); any other spelling than true/false/1/0 is a 400
BOOLEAN_HEADERS = ("X-Edgee-Debug", "X-Edgee-Enable-Compression")

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
    """The gateway-side switches of one request, merged from body and headers (D7)."""

    tags: tuple[str, ...] = ()
    debug: bool = False
    compression: bool = False


class RequestValidator:
    """Checks request bodies and Edgee headers; every failure is a :class:`GatewayError`."""

    def __init__(self, validators: Validators) -> None:
        self._validators = validators

    def check_body(self, body: Any) -> None:
        """Schema violations (D6), including ``stream_options`` without streaming (D18) and ``n`` (D12).

        The validators name the field to blame (``messages[0].role``, the missing field of a
        ``required`` rule, ``stream_options`` for D18), and that becomes ``param``.
        """
        issue = self._validators.first_issue(SchemaKind.REQUEST, body)
        if issue is not None:
            raise _errors.invalid_request(issue.path or None, f"Invalid request: {issue}")
        # The spec says as much; checked again because the pipeline relies on it.
        if not isinstance(body, dict):
            raise _errors.invalid_request(None, "The request body must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise _errors.invalid_request("model", "model must be a non-empty string")

    def check_edge_tools(self, body: Mapping[str, Any]) -> None:
        """This gateway activates no Edge Tools and stores no pending runs (D4, D5)."""
        tool_ids = body.get("edgee_tool_ids")
        if isinstance(tool_ids, list) and tool_ids:
            raise _errors.invalid_edgee_tool_ids(str(tool_id) for tool_id in tool_ids)
        if body.get("edgee_pending_id") is not None:
            raise _errors.invalid_edgee_pending_id()

    def options(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> RequestOptions:
        """Tags (body first, then the header, no duplicates) and the debug/compression switches."""
        switches = {
            name: parse_boolean_header(name, headers[name]) for name in BOOLEAN_HEADERS if name in headers
        }
        tags: list[str] = [tag for tag in body.get("tags") or [] if isinstance(tag, str)]
        header_tags = headers.get("X-Edgee-Tags")
        if header_tags is not None:
            tags.extend(tag.strip() for tag in header_tags.split(","))
        unique = tuple(dict.fromkeys(tag for tag in tags if tag))
        return RequestOptions(
            tags=unique,
            debug=body.get("enable_debug") is True or switches.get("X-Edgee-Debug", False),
            compression=switches.get("X-Edgee-Enable-Compression", False),
        )
