"""The request journal: what the mock received, so a test can see what a gateway forwarded.

Every request to a provider route is recorded (control routes under
``/_gateproof/`` are not): method, path, query, headers, body (parsed JSON, or text
when it is not JSON), arrival time, the directive, the correlation id, and, once
known, the status, the true usage and how the answer ended (``outcome``).

Bodies are kept as the bytes received and decoded only when the journal is read:
a full journal of parsed JSON would be hundreds of thousands of objects for the
garbage collector to walk on every full collection, in the middle of a load test.
The same goes for what is derived from them: an entry keeps only a reference to the
dialect that accepted the request and to the planned ``Usage``; the served record's
``intent`` (what the request asked, read by that dialect from the stored body), its
native ``usage`` and its neutral ``true_usage`` (``prompt_tokens`` with the cached ones,
``completion_tokens``, ``total_tokens``, ``cached_tokens``) are computed when the
journal is read. A refused request whose body was JSON still has its ``intent`` (what it
asked for says why it was refused), not its usages; a request answered outside a
generation route has none of the three.

Secrets never enter the journal: the values of credential headers
(``authorization``, ``proxy-authorization``, ``api-key``, ``x-api-key``,
``x-goog-api-key``) and of cookies, and query parameters named ``key``/``api_key``,
are replaced by ``[redacted sha256:<first 12 hex digits>]`` (an ``Authorization``
scheme word such as ``Bearer`` is kept, and the fingerprint is of the credential
after it). Each entry also lists the fingerprints by header in
``secret_fingerprints``. They let a test check *which* key a gateway sent upstream
(``fingerprint(key)``) without the key itself being stored. A gateway sends the same
key on every request, so the journal remembers the redacted form of the last few
credential values it saw (``MockConfig.credential_cache``; in memory only, never in
an entry or a served record) instead of hashing each one again.

The journal is a ring buffer: when full, the oldest entry goes. Tests running at
the same time each use their own correlation id and read only their entries.

Each entry with a cid also has its ``attempt``: the 1-based number of requests the
mock has received with that cid (``_attempts``: the last 10 000 cids are counted;
clearing a cid's entries restarts its count), and ``fault``: the fault served on it
(a registered fault's name, ``status_<NNN>`` for an error answer the directive or the
chaos asked for, None for a clean answer or a refusal by the provider's rules).
``outcome`` says how the answer ended: ``complete``, ``disconnected`` (the client
left first: mid-stream, while a non-streamed answer or slow headers were still due),
``aborted`` (the mock dropped or reset the connection on purpose).
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from gateproof.mock_providers._attempts import AttemptCounter
from gateproof.mock_providers._dialect import Dialect
from gateproof.mock_providers._directives import Directive
from gateproof.mock_providers._lru import LRU
from gateproof.mock_providers._scenarios import Usage
from gateproof.openapi import CORRELATION_HEADER, JournalRecord
from gateproof.openapi._credentials import SECRET_HEADERS, fingerprint

__all__ = [
    "CORRELATION_HEADER",
    "REDACTED_HEADERS",
    "Journal",
    "JournalEntry",
    "Outcome",
    "fingerprint",
    "redact_headers",
    "redact_query",
]

_CORRELATION_HEADER = CORRELATION_HEADER.encode()
_log = logging.getLogger("gateproof.mock")


#: the credential headers the journal masks: the one list every part uses
REDACTED_HEADERS = SECRET_HEADERS
_REDACTED_HEADERS = frozenset(name.encode() for name in REDACTED_HEADERS)
_REDACTED_QUERY = frozenset({"key", "api_key", "api-key", "apikey"})
_SCHEMES = frozenset({"bearer", "basic", "token"})


class Outcome(enum.StrEnum):
    """How an answer ended (the ``outcome`` field)."""

    PENDING = "pending"
    COMPLETE = "complete"
    #: the client went away before the answer was complete
    DISCONNECTED = "disconnected"
    #: the mock dropped or reset the connection on purpose (``fault=truncate``, ``fault=reset``)
    ABORTED = "aborted"


def _redact(name: bytes, value: str) -> tuple[str, str]:
    """(redacted header value, fingerprint of the secret in it)."""
    if name == b"authorization" or name == b"proxy-authorization":
        scheme, space, credential = value.partition(" ")
        if space and scheme.lower() in _SCHEMES:
            digest = fingerprint(credential.strip())
            return f"{scheme} [redacted sha256:{digest}]", digest
    digest = fingerprint(value)
    return f"[redacted sha256:{digest}]", digest


def redact_headers(
    raw: Iterable[tuple[bytes, bytes]], fingerprints: dict[str, str] | None = None
) -> dict[str, str]:
    """ASGI headers as a dict of lower-case names, secrets redacted, repeats joined by ``, ``.

    When ``fingerprints`` is given, it receives header name -> fingerprint for each secret.
    """
    headers: dict[str, str] = {}
    for name, value in raw:
        text = value.decode("latin-1")
        key = name.decode("latin-1")
        if name in _REDACTED_HEADERS:
            text, digest = _redact(name, text)
            if fingerprints is not None:
                fingerprints[key] = digest
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _redacted_value(name: bytes, value: bytes) -> tuple[bytes, str, str]:
    """A credential header's value as the journal keeps it: (redacted form, header name, fingerprint).

    The redacted form is ASCII after the kept scheme word, so it goes back to bytes as latin-1
    and reads as ``redact_headers`` would have written it.
    """
    text, digest = _redact(name, value.decode("latin-1"))
    return text.encode("latin-1"), name.decode("latin-1"), digest


def redact_query(query: str, fingerprints: dict[str, str] | None = None) -> str:
    """The query string with the values of key-like parameters redacted (fingerprints as ``query:<name>``)."""
    if not query or "key" not in query.lower():
        return query
    pairs = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.lower() in _REDACTED_QUERY:
            digest = fingerprint(value)
            if fingerprints is not None:
                fingerprints["query:" + name] = digest
            value = f"[redacted sha256:{digest}]"
        pairs.append((name, value))
    return urlencode(pairs)


@dataclass(slots=True)
class JournalEntry:
    """One received request; the answer fields are filled in as the answer goes out."""

    seq: int
    received_at: float
    method: str
    path: str
    query: str
    #: the ASGI headers as received, each credential's value already replaced by its redacted
    #: form (``headers`` makes the dict when the entry is read)
    raw_headers: list[tuple[bytes, bytes]]
    #: header name (or ``query:<name>``) -> SHA-256 fingerprint of the secret it carried
    secret_fingerprints: dict[str, str]
    #: the body as received (bytes), or a note (str) when it was not kept
    raw_body: bytes | str | None
    dialect: str | None
    cid: str | None = None
    #: the directive the request gave (``directive`` makes the served mapping when the entry is read)
    asked: Directive | None = None
    scenario: str | None = None
    status: int | None = None
    #: the dialect that read the request (also a refused one whose body was JSON); None while unread
    reader: Dialect | None = None
    #: the true usage of the planned answer (None for an error answer)
    truth: Usage | None = None
    outcome: Outcome = Outcome.PENDING
    #: content chunks actually written (less than planned when a stream was cut short)
    chunks_sent: int | None = None
    finished_at: float | None = None
    #: the fault served (``FAULTS`` name or ``status_<NNN>``); None: a clean answer
    fault: str | None = None
    #: the 1-based number of requests received with this cid (None without a cid)
    attempt: int | None = None

    @property
    def directive(self) -> dict[str, Any] | None:
        """The directive's keys that were set (``Directive.given``), None without a directive."""
        return None if self.asked is None else self.asked.given()

    @property
    def headers(self) -> dict[str, str]:
        """The headers by lower-case name (repeats joined by ``, ``), credentials redacted."""
        headers: dict[str, str] = {}
        for name, value in self.raw_headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        return headers

    @property
    def body(self) -> Any:
        """The body as JSON if it parses, else as text (``None`` when empty)."""
        raw = self.raw_body
        if raw is None or isinstance(raw, str):
            return raw
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", errors="replace")

    @property
    def usage(self) -> dict[str, Any] | None:
        """The true usage in the dialect's own names (what its answer reported)."""
        if self.reader is None or self.truth is None:
            return None
        return dict(self.reader.usage_record(self.truth))

    @property
    def true_usage(self) -> dict[str, int] | None:
        """The true usage in neutral names: prompt tokens include the cached ones."""
        truth = self.truth
        if truth is None:
            return None
        return {
            "prompt_tokens": truth.prompt_tokens,
            "completion_tokens": truth.completion_tokens,
            "total_tokens": truth.total_tokens,
            "cached_tokens": truth.cached_tokens,
        }

    def intent(self, body: Any) -> dict[str, Any] | None:
        """What the request asked for, as its dialect reads ``body`` (None when no dialect read it)."""
        if self.reader is None:
            return None
        try:
            return self.reader.intent(body, self.path, self.query).to_json()
        except Exception:  # a reading bug must not take the whole journal down with it
            _log.exception("gateproof mock could not read the intent of journal entry %s", self.seq)
            return None

    def record(self) -> JournalRecord:
        """The entry in the one shape the journal endpoint serves and the suite reads."""
        body = self.body
        return JournalRecord(
            seq=self.seq,
            received_at=self.received_at,
            method=self.method,
            path=self.path,
            query=self.query,
            headers=self.headers,
            secret_fingerprints=self.secret_fingerprints,
            body=body,
            dialect=self.dialect,
            cid=self.cid,
            directive=self.directive,
            scenario=self.scenario,
            status=self.status,
            usage=self.usage,
            true_usage=self.true_usage,
            intent=self.intent(body),
            outcome=self.outcome.value,
            chunks_sent=self.chunks_sent,
            finished_at=self.finished_at,
            fault=self.fault,
            attempt=self.attempt,
        )

    def as_json(self) -> dict[str, Any]:
        return self.record().to_json()


class Journal:
    """A bounded, in-memory record of received requests (one event loop: no locking needed)."""

    def __init__(self, size: int = 10_000, credential_cache: int = 64) -> None:
        if size < 1:
            raise ValueError("journal size must be at least 1")
        self._entries: deque[JournalEntry] = deque(maxlen=size)
        self._seq = itertools.count(1)
        self._attempts = AttemptCounter()
        #: (header name, value as received) -> what ``_redacted_value`` makes of it
        self._redacted: LRU[tuple[bytes, bytes], tuple[bytes, str, str]] = LRU(credential_cache)

    def count_attempt(self, entry: JournalEntry) -> int | None:
        """Number ``entry`` among the requests of its cid (once; None without a cid)."""
        if entry.attempt is None and entry.cid is not None:
            entry.attempt = self._attempts.next(entry.cid, entry.dialect)
        return entry.attempt

    def on_first_route(self, entry: JournalEntry) -> bool | None:
        """Whether ``entry`` came on the route its cid's first request came on (None without a cid)."""
        if entry.cid is None:
            return None
        return self._attempts.first_route(entry.cid) == entry.dialect

    @property
    def size(self) -> int:
        return self._entries.maxlen or 0

    def __len__(self) -> int:
        return len(self._entries)

    def record(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes | str | None,
        received_at: float,
        dialect: str | None,
    ) -> JournalEntry:
        """Add an entry for a request that just arrived; the header correlation id is its first cid.

        Credentials are redacted here, before anything is kept; the rest of the headers is kept
        as received and decoded only when the entry is read (this runs on every request).
        """
        kept = list(headers)
        cid = None
        fingerprints: dict[str, str] = {}
        query = redact_query(query, fingerprints)
        redacted = self._redacted
        for index, (name, value) in enumerate(kept):
            if name in _REDACTED_HEADERS:
                known = redacted.get((name, value))
                if known is None:
                    known = _redacted_value(name, value)
                    redacted.put((name, value), known)
                kept[index] = (name, known[0])
                fingerprints[known[1]] = known[2]
            elif cid is None and name == _CORRELATION_HEADER:
                cid = value.decode("latin-1")
        entry = JournalEntry(
            seq=next(self._seq),
            received_at=received_at,
            method=method,
            path=path,
            query=query,
            raw_headers=kept,
            secret_fingerprints=fingerprints,
            raw_body=body,
            dialect=dialect,
            cid=cid,
        )
        self._entries.append(entry)
        return entry

    def entries(self, cid: str | None = None, limit: int | None = None) -> list[JournalEntry]:
        """Entries oldest first, only those of ``cid`` if given, only the newest ``limit`` if given."""
        found = [e for e in self._entries if cid is None or e.cid == cid]
        if limit is not None:
            found = found[-limit:] if limit > 0 else []
        return found

    def clear(self, cid: str | None = None) -> int:
        """Forget every entry (or only those of ``cid``); return how many were dropped."""
        before = len(self._entries)
        self._attempts.forget(cid)
        if cid is None:
            self._entries.clear()
        else:
            kept = [e for e in self._entries if e.cid != cid]
            self._entries.clear()
            self._entries.extend(kept)
        return before - len(self._entries)
