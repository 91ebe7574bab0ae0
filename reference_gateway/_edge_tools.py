"""Edge Tools: functions the gateway offers the model and runs itself (D4, D5, D35).

Two tools exist, ``edgee_current_time`` and ``edgee_generate_uuid``. A key activates some
of them (``keys[].edge_tools``, every tool when absent) and may have some injected on every
request without asking (``keys[].hydrated_edge_tools``). A request names the ones it wants
in ``edgee_tool_ids``; :func:`select_edge_tools` turns that into the :class:`EdgeSelection`
of the request, or the D5 400.

The results are JSON strings (D4): ``{"timezone", "iso8601", "unix"}`` and ``{"uuid"}``. A
tool that cannot do what the model asked (an unknown time zone, arguments that are not a
JSON object) still answers, with ``{"error": ...}`` and ``success: false``, so the model
can read what went wrong and the client sees it in ``edgee_tools_executed`` (D36).

:class:`EdgeRules` holds the knobs the self-test's faults turn; the correct gateway uses
:data:`CORRECT_RULES`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateproof.openapi import EDGE_CURRENT_TIME, EDGE_GENERATE_UUID, EDGE_TOOL_NAMES, MAX_EDGE_ROUNDS
from gateproof.reference_gateway import _errors

__all__ = [
    "CORRECT_RULES",
    "CURRENT_TIME",
    "EDGE_TOOLS",
    "EDGE_TOOL_NAMES",
    "GENERATE_UUID",
    "MAX_EDGE_ROUNDS",
    "EdgeRules",
    "EdgeSelection",
    "EdgeTool",
    "ToolResult",
    "run_edge_tool",
    "select_edge_tools",
]

CURRENT_TIME = EDGE_CURRENT_TIME
GENERATE_UUID = EDGE_GENERATE_UUID


@dataclass(frozen=True)
class ToolResult:
    """What one Edge Tool call produced: the JSON text the model reads, and whether it worked."""

    content: str
    success: bool


@dataclass(frozen=True)
class EdgeTool:
    """One Edge Tool: its function definition (as sent upstream in ``tools``) and its code."""

    name: str
    description: str
    parameters: Mapping[str, Any]

    def definition(self) -> dict[str, Any]:
        """The ``tools[]`` entry the provider sees (a fresh copy each time)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": json.loads(json.dumps(self.parameters)),
            },
        }


EDGE_TOOLS: Mapping[str, EdgeTool] = {
    CURRENT_TIME: EdgeTool(
        name=CURRENT_TIME,
        description="The current date and time, in a given IANA time zone (UTC when none is given).",
        parameters={
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "description": "An IANA time zone name such as Europe/Paris; UTC when absent.",
                    "examples": ["Europe/Paris"],
                }
            },
            "additionalProperties": False,
        },
    ),
    GENERATE_UUID: EdgeTool(
        name=GENERATE_UUID,
        description="A new random UUID (version 4).",
        parameters={"type": "object", "properties": {}, "additionalProperties": False},
    ),
}
if tuple(EDGE_TOOLS) != EDGE_TOOL_NAMES:  # pragma: no cover - a programming error, caught at import
    raise RuntimeError("the Edge Tools defined here are not openapi.EDGE_TOOL_NAMES")


@dataclass(frozen=True)
class EdgeRules:
    """How the Edge Tool machinery behaves; every field but the correct value is a self-test fault.

    ``validate_ids``: refuse unknown or not activated ``edgee_tool_ids`` (D5).
    ``single_use``: a pending id works once (D4).
    ``honour_pending``: a pending id is looked up and its results spliced in (D4).
    ``hide_edge_calls``: the client never sees an Edge Tool call (D4).
    ``sum_usage``: ``usage`` adds up every provider call of the request (D36).
    ``new_uuid``: where ``edgee_generate_uuid`` gets its value.
    """

    validate_ids: bool = True
    single_use: bool = True
    honour_pending: bool = True
    hide_edge_calls: bool = True
    sum_usage: bool = True
    new_uuid: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))


CORRECT_RULES = EdgeRules()


@dataclass(frozen=True)
class EdgeSelection:
    """The Edge Tools in play for one request: injected upstream, run when the model calls them."""

    names: tuple[str, ...]

    def definitions(self) -> list[dict[str, Any]]:
        return [EDGE_TOOLS[name].definition() for name in self.names]

    def __contains__(self, name: object) -> bool:
        return name in self.names


def select_edge_tools(
    requested: Any,
    *,
    activated: frozenset[str] | None,
    hydrated: Iterable[str],
    rules: EdgeRules = CORRECT_RULES,
) -> EdgeSelection | None:
    """The request's Edge Tools: ``edgee_tool_ids`` when given, else the key's hydrated tools.

    ``activated`` None means every Edge Tool. Unknown or not activated ids are the D5 400,
    each named once in request order; duplicates count once. None when no tool is in play.
    """
    if isinstance(requested, list):
        names = [str(name) for name in requested]
        usable = activated if activated is not None else frozenset(EDGE_TOOL_NAMES)
        bad = [name for name in names if name not in EDGE_TOOLS or name not in usable]
        if bad and rules.validate_ids:
            raise _errors.invalid_edgee_tool_ids(bad)
        chosen = tuple(dict.fromkeys(name for name in names if name in EDGE_TOOLS))
    else:
        chosen = tuple(dict.fromkeys(hydrated))
    return EdgeSelection(chosen) if chosen else None


def run_edge_tool(
    name: str, arguments: Any, *, rules: EdgeRules = CORRECT_RULES, now: Callable[[], float] = time.time
) -> ToolResult:
    """Run one Edge Tool call; ``arguments`` is the call's JSON text (an object, or empty)."""
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return _failure("the arguments are not a JSON object")
    if name == GENERATE_UUID:
        return ToolResult(_json({"uuid": rules.new_uuid()}), True)
    if name == CURRENT_TIME:
        zone_name = parsed.get("timezone")
        if zone_name is None or zone_name == "":
            zone_name = "UTC"
        if not isinstance(zone_name, str):
            return _failure("timezone must be a string")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            return _failure(f"unknown time zone {zone_name!r}; use an IANA name such as Europe/Paris")
        instant = now()
        local = datetime.fromtimestamp(instant, tz=UTC).astimezone(zone)
        return ToolResult(
            _json(
                {"timezone": zone_name, "iso8601": local.isoformat(timespec="seconds"), "unix": int(instant)}
            ),
            True,
        )
    return _failure(f"no Edge Tool is called {name!r}")


def _failure(message: str) -> ToolResult:
    return ToolResult(_json({"error": message}), False)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
