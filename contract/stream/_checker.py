"""The decoder and a grammar wired together: bytes in, per-event verdicts out, a report at the end.

Two callers, one object. The conformance suite has the whole recorded body and calls `check_stream`.
The load scenario receives the body piece by piece and keeps a `StreamChecker`: each `feed` returns
the verdicts of the events that piece completed (enough to time the first content), and `close`
returns the same report `check_stream` would have produced for the whole body.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateproof.contract.stream._grammar import ChatStreamGrammar, EventResult, StreamGrammar
from gateproof.contract.stream._rules import StreamViolation
from gateproof.contract.stream._sse import SSEDecoder
from gateproof.contract.stream._summary import StreamSummary

__all__ = ["StreamChecker", "StreamReport", "check_stream"]


@dataclass(frozen=True, slots=True)
class StreamReport:
    """Everything found in one stream: the violations, in the order found, and the summary."""

    violations: tuple[StreamViolation, ...]
    summary: StreamSummary

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def rules_violated(self) -> tuple[str, ...]:
        """The names of the broken rules, each once, in the order they were first broken."""
        return tuple(dict.fromkeys(violation.rule for violation in self.violations))

    def by_rule(self) -> dict[str, list[StreamViolation]]:
        grouped: dict[str, list[StreamViolation]] = {}
        for violation in self.violations:
            grouped.setdefault(violation.rule, []).append(violation)
        return grouped

    def __str__(self) -> str:
        if self.ok:
            return f"stream ok ({self.summary.event_count} events)"
        return "\n".join(str(violation) for violation in self.violations)


class StreamChecker:
    """Check one stream fed incrementally.

    Framing issues the decoder finds are reported under `sse_framing`, at the index of the event
    that follows them; they are not part of any `EventResult`, but they are in `violations` and in
    the final report.
    """

    def __init__(self, grammar: StreamGrammar) -> None:
        self.grammar = grammar
        self.decoder = SSEDecoder()
        self._issues_taken = 0
        self._report: StreamReport | None = None

    @property
    def summary(self) -> StreamSummary:
        return self.grammar.summary

    @property
    def violations(self) -> list[StreamViolation]:
        return self.grammar.violations

    def feed(self, data: bytes) -> list[EventResult]:
        """Feed the next piece of the body; return a verdict for every event it completed."""
        decoder = self.decoder
        events = decoder.feed(data)
        if len(decoder.issues) != self._issues_taken:
            self._take_issues()
        self.grammar.summary.comment_count = decoder.comment_count
        if not events:
            return []
        feed_event = self.grammar.feed_event
        return [feed_event(event) for event in events]

    def close(self) -> StreamReport:
        """End the stream and return the report (calling it again returns the same report)."""
        if self._report is None:
            self.decoder.close()
            self._take_issues()
            self.grammar.finish()
            self.grammar.summary.comment_count = self.decoder.comment_count
            self._report = StreamReport(tuple(self.grammar.violations), self.grammar.summary)
        return self._report

    def _take_issues(self) -> None:
        issues = self.decoder.issues
        for issue in issues[self._issues_taken :]:
            self.grammar.add_framing_issue(issue)
        self._issues_taken = len(issues)


def check_stream(body: bytes, *, include_usage: bool, expect_tool_call: bool | None = None) -> StreamReport:
    """Check a whole chat completions SSE body against the chat stream grammar.

    `include_usage` is what the request sent in `stream_options.include_usage`; `expect_tool_call`
    is True when the request forced a tool call, False when it ruled tool calls out, None otherwise.
    """
    checker = StreamChecker(ChatStreamGrammar(include_usage=include_usage, expect_tool_call=expect_tool_call))
    checker.feed(body)
    return checker.close()
