"""The Edge Tools' names and limits (D4, D35, D39): facts the gateway, the mock's users and the checks share.

Standard library only, like the rest of what ``openapi`` holds for every part.
"""

from __future__ import annotations

__all__ = ["EDGE_CURRENT_TIME", "EDGE_GENERATE_UUID", "EDGE_TOOL_NAMES", "MAX_EDGE_ROUNDS", "PENDING_PREFIX"]

#: ``{"timezone", "iso8601", "unix"}`` for an optional IANA ``timezone`` argument (D39)
EDGE_CURRENT_TIME = "edgee_current_time"
#: ``{"uuid"}``, a random version 4 UUID (D39)
EDGE_GENERATE_UUID = "edgee_generate_uuid"
#: every Edge Tool, in the order the reference gateway defines them
EDGE_TOOL_NAMES = (EDGE_CURRENT_TIME, EDGE_GENERATE_UUID)
#: Edge Tool rounds one request may run; one more is 502 ``edge_tool_loop_limit`` (D4)
MAX_EDGE_ROUNDS = 5
#: how every pending id starts (D4)
PENDING_PREFIX = "pend_"
