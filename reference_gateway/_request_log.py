"""The structured request log: one JSON line per finished request (D34).

The human log (``gateproof.gateway`` logger) is for people reading a console; this file
is for programs: billing, analytics by tag, a test that wants to know what the gateway
recorded. Each finished ``POST /v1/chat/completions`` or ``POST /v1/compress`` (answered,
refused, failed mid-stream or abandoned by the client) appends exactly one line.

What a line may hold is fixed by :class:`RequestRecord`: the key's configured *name*,
never the key; no prompt, no completion, no header. Tags are the client's words, so they
are bounded (:data:`MAX_TAGS` of at most :data:`MAX_TAG_CHARS` characters each) and every
line is bounded with them.

Lines are written straight to the file, unbuffered beyond the line: nothing accumulates
in memory, and a line is on disk before the client holds its answer (the tests and any
tail reader rely on that). The gateway writes from its event-loop thread only.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

__all__ = ["MAX_TAGS", "MAX_TAG_CHARS", "RequestLog", "RequestRecord", "bounded_tags"]

#: at most this many tags are recorded per request, each cut to this many characters
MAX_TAGS = 32
MAX_TAG_CHARS = 128


def bounded_tags(tags: tuple[str, ...]) -> list[str]:
    """The tags as the log records them: the first :data:`MAX_TAGS`, each cut to :data:`MAX_TAG_CHARS`."""
    return [tag[:MAX_TAG_CHARS] for tag in tags[:MAX_TAGS]]


def _now() -> str:
    """UTC wall time with milliseconds, ISO 8601 (``2026-12-01T16:17:59.123Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RequestRecord:
    """One line of the request log; every key is always present (null when not known).

    ``endpoint`` is the path served; ``key`` the configured key name (null when
    authentication failed); ``model`` the model id the client asked for (as a string, or
    null); ``provider`` the provider it was routed to (null when it was not); ``status``
    the HTTP status the client got, or for a stream that failed after it started the
    status of the error event it got (D9), 499 when the client went away first;
    ``error`` the error code of a refused or failed request (null on success); tokens as
    the provider reported them (null when no usage arrived); ``compression`` is
    ``{saved_tokens, time_ms}`` when compression ran, else null; ``latency_ms`` the time
    from arrival to the last byte produced.
    """

    request_id: str
    endpoint: str
    key: str | None
    model: str | None
    provider: str | None
    stream: bool
    status: int
    latency_ms: float
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_micro_usd: int | None = None
    compression: dict[str, int] | None = None
    tags: list[str] = field(default_factory=list)
    #: upstream requests sent for it, each retry and fallback included (D44); 0: none was sent
    attempts: int = 0
    time: str = field(default_factory=_now)

    def to_json(self) -> str:
        """One line of ASCII: non-ASCII is escaped, so no character a reader may take for a line
        break (U+2028, U+0085, ...) ever appears raw inside a record, whatever a client put in its tags."""
        record: dict[str, Any] = {"time": self.time, **asdict(self)}
        return json.dumps(record, separators=(",", ":"), ensure_ascii=True)


class RequestLog:
    """Appends :class:`RequestRecord` lines to a file; a log with no path writes nothing."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def check(path: str | Path) -> None:
        """Raise ``OSError`` now if ``path`` cannot be appended to (before the server starts)."""
        with open(path, "a", encoding="utf-8"):
            pass

    def open(self) -> None:
        if self.path is not None and self._file is None:
            # Line buffered: each record reaches the file as one write when it is complete.
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (held open)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    @property
    def enabled(self) -> bool:
        """Whether records are written at all (with no path, nobody needs one built)."""
        return self._file is not None

    def write(self, record: RequestRecord) -> None:
        """Append one line; a write that fails is dropped (serving matters more than the log)."""
        if self._file is None:
            return
        line = record.to_json() + "\n"
        with self._lock:
            try:
                if self._file is not None:
                    self._file.write(line)
            except OSError:
                pass
