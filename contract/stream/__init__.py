"""Sans-IO checker for one chat completions SSE stream.

Three layers, each usable alone: `SSEDecoder` turns bytes into `SSEEvent`s (and reports framing
faults), `ChatStreamGrammar` checks the order and content of the events and rebuilds the answer in
a `StreamSummary`, and `StreamChecker` / `check_stream` wire the two for incremental or whole-body
use. `RULES` maps every rule name a report can show to the sentence that explains it.

This package imports nothing from the rest of gateproof but `gateproof.contract._wire` (the shared
wire rules: bounded JSON parsing), which is itself import-light, so the load generator can use it
in its own process without pulling in the conformance suite.
"""

from gateproof.contract.stream._checker import StreamChecker, StreamReport, check_stream
from gateproof.contract.stream._grammar import ChatStreamGrammar, EventKind, EventResult, StreamGrammar
from gateproof.contract.stream._rules import RULES, StreamViolation
from gateproof.contract.stream._sse import MAX_LINE_CHARS, FramingIssue, SSEDecoder, SSEEvent
from gateproof.contract.stream._summary import StreamedChoice, StreamedToolCall, StreamSummary

__all__ = [
    "MAX_LINE_CHARS",
    "RULES",
    "ChatStreamGrammar",
    "EventKind",
    "EventResult",
    "FramingIssue",
    "SSEDecoder",
    "SSEEvent",
    "StreamChecker",
    "StreamGrammar",
    "StreamReport",
    "StreamSummary",
    "StreamViolation",
    "StreamedChoice",
    "StreamedToolCall",
    "check_stream",
]
