"""One request as the mock's journal records it: the shape the mock writes and the suite reads.

The mock serves its journal as JSON (``GET /_gateproof/journal``); the journal checks read what
a gateway forwarded from it. Both sides use this record, so a field is named once and a check
reads ``entry.body`` rather than guessing at the keys of a dict. ``from_json`` is strict about
types (a journal from another mock version is reported, not half read). Standard library only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateproof.openapi._intent import Intent

__all__ = ["JournalRecord"]


@dataclass(frozen=True)
class JournalRecord:
    """One request the mock received, and how it answered (the answer fields are ``None`` while pending)."""

    seq: int
    received_at: float
    method: str
    path: str
    query: str = ""
    #: header names lower case; credential values are replaced by ``[redacted sha256:<digest>]``
    headers: Mapping[str, str] = field(default_factory=dict)
    #: header name (or ``query:<name>``) -> fingerprint of the credential it carried
    secret_fingerprints: Mapping[str, str] = field(default_factory=dict)
    #: the body as JSON when it parsed, else its text; ``None`` when empty
    body: Any = None
    dialect: str | None = None
    cid: str | None = None
    #: the directive keys that were given
    directive: Mapping[str, Any] | None = None
    scenario: str | None = None
    status: int | None = None
    #: the true usage of the answer (the dialect's own key names)
    usage: Mapping[str, Any] | None = None
    #: the same true usage in neutral names: ``prompt_tokens`` (cached ones included),
    #: ``completion_tokens``, ``total_tokens``, ``cached_tokens`` (the prompt tokens read from a cache)
    true_usage: Mapping[str, int] | None = None
    #: what the request asked for, as the dialect read it (``Intent.to_json``); None when unread
    intent: Mapping[str, Any] | None = None
    outcome: str = "pending"
    chunks_sent: int | None = None
    finished_at: float | None = None
    #: the provider fault the mock served on this request (``fault=`` or the seeded chaos); None: none
    fault: str | None = None
    #: which request with this ``cid`` this was (1 for the first): a gateway's retries and fallbacks
    attempt: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as the journal endpoint serves it."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> JournalRecord:
        """Read one served record; ``ValueError`` naming the field when it has the wrong shape."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a journal entry is not an object: {type(data).__name__}")
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.name not in data:
                continue
            value = data[item.name]
            _expect(item.name, value)
            values[item.name] = value
        for required in ("seq", "received_at", "method", "path"):
            if required not in values:
                raise ValueError(f"a journal entry has no {required!r}")
        return cls(**values)

    def request_intent(self) -> Intent | None:
        """The intent the mock read from this request (``ValueError`` when it has the wrong shape)."""
        return None if self.intent is None else Intent.from_json(self.intent)

    def body_text(self) -> str:
        """Every string in the body joined by newlines: where a check looks for text that must arrive."""
        found: list[str] = []
        pending: list[Any] = [self.body]
        while pending:
            value = pending.pop()
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, Mapping):
                pending.extend(reversed(list(value.values())))
            elif isinstance(value, list):
                pending.extend(reversed(value))
        return "\n".join(found)


_TYPES: dict[str, tuple[type, ...]] = {
    "seq": (int,),
    "received_at": (int, float),
    "method": (str,),
    "path": (str,),
    "query": (str,),
    "headers": (dict,),
    "secret_fingerprints": (dict,),
    "dialect": (str, type(None)),
    "cid": (str, type(None)),
    "directive": (dict, type(None)),
    "scenario": (str, type(None)),
    "status": (int, type(None)),
    "usage": (dict, type(None)),
    "true_usage": (dict, type(None)),
    "intent": (dict, type(None)),
    "outcome": (str,),
    "chunks_sent": (int, type(None)),
    "finished_at": (int, float, type(None)),
    "fault": (str, type(None)),
    "attempt": (int, type(None)),
}


def _expect(name: str, value: Any) -> None:
    allowed = _TYPES.get(name)
    if allowed is None:  # body: any JSON value
        return
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise ValueError(f"journal entry field {name!r} has the wrong type: {type(value).__name__}")
