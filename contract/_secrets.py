"""The one redaction engine: what counts as a credential, and how to scrub one out of text.

Two parts need it. The contract runner scrubs what it records, because it alone knows every key of
the run (the target's key, the inactive and restricted keys, the wrong keys it made up for the
auth scenarios, the mock's upstream key). The reports scrub again before rendering, because a
report is the artefact most likely to be uploaded or mailed around, and the results it renders
may come from a saved file. Two copies of these rules would drift apart, so they live here, in a
leaf module that imports nothing from gateproof but the credential header names (their one home,
``gateproof.openapi._credentials``, which the mock's journal uses too): ``gateproof.contract.results``
re-exports it, and ``gateproof.reports`` (which may import only the results models) reads it from there.

A target that echoes a key rarely echoes it verbatim only: 401 bodies quote the header, debug
headers carry it base64-encoded, redirect targets URL-encode it, JSON serialisers escape its
slashes. So a known secret is scrubbed in every spelling ``secret_forms`` lists, and the
``Bearer <token>``, ``sk-...`` and ``AIza...`` shapes are scrubbed even when nobody said they were
secrets.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from gateproof.openapi._credentials import SECRET_HEADERS

__all__ = ["REDACTED", "SECRET_HEADERS", "Scrubber", "secret_forms"]

REDACTED = "[redacted]"

#: JSON body fields and URL query parameters (lower case) that hold credentials
_SECRET_FIELDS = frozenset({"api_key", "apikey", "api-key", "x-api-key", "authorization", "access_token"})
_SECRET_QUERY = _SECRET_FIELDS | {"key", "token"}

#: credentials recognisable without context; each keeps its scheme word when it has one
_TOKEN_SHAPES = (
    # Long enough that prose ("a Bearer token") is left alone; real tokens are far longer.
    (re.compile(r"(?i)\b(bearer)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{12,}"), r"\1 " + REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{10,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), REDACTED),
)

#: shorter values would replace ordinary words
_MIN_SECRET_LENGTH = 6
#: a base64 run shorter than this could match unrelated base64 by chance
_MIN_BASE64_CORE = 6

_URLSAFE = str.maketrans("+/", "-_")


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that depend on ``raw`` alone, at each of the three byte alignments.

    A key inside a larger encoded value (``base64("Bearer " + key)``, ``base64("user:" + key)``)
    does not encode to ``base64(key)``: what its characters look like depends on where it starts
    modulo 3. For each alignment, the characters whose six bits all come from the key are the
    same whatever surrounds it; scrubbing those leaves at most a few bits of the key at each end.
    """
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = -(-8 * offset // 6)  # first character made of key bits only
        end = 8 * (offset + len(raw)) // 6  # one past the last such character
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64_CORE:
            cores |= {core, core.translate(_URLSAFE)}
    return cores


def secret_forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` a response may carry: plain, JSON- and HTML-escaped,
    URL- and percent-encoded, and base64 (standard and URL-safe alphabets, at any alignment)."""
    raw = secret.encode("utf-8")
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        html.escape(secret),
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        "".join(f"%{byte:02X}" for byte in raw),
    }
    forms |= _base64_cores(raw)
    return {form for form in forms if form}


def _pattern_for(form: str) -> str:
    """A regex matching ``form``; the hex digits of percent escapes in either case (%2f and %2F)."""
    parts = re.split(r"(%[0-9A-Fa-f]{2})", form)
    return "".join(f"(?i:{re.escape(part)})" if part.startswith("%") else re.escape(part) for part in parts)


class Scrubber:
    """Replaces known secret values (in every form) and credential-looking tokens in JSON-like values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if isinstance(secret, str) and len(secret) >= _MIN_SECRET_LENGTH and REDACTED not in secret:
                forms |= secret_forms(secret)
        # Longest first: the alternation takes the first alternative that matches, and a form
        # that contains another must be replaced whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._known = re.compile("|".join(_pattern_for(form) for form in ordered)) if ordered else None

    @classmethod
    def for_headers(cls, header_sets: Iterable[Mapping[str, str]], secrets: Iterable[str] = ()) -> Scrubber:
        """Scrub ``secrets`` plus every credential value found in ``header_sets``, everywhere."""
        found: set[str] = set(secrets)
        for headers in header_sets:
            for name, value in headers.items():
                if name.lower() in SECRET_HEADERS and value:
                    found.add(value)
                    # "Bearer abc" also leaks as plain "abc" in echoed bodies.
                    _, _, token = value.partition(" ")
                    if token:
                        found.add(token.strip())
        return cls(found)

    def text(self, value: str) -> str:
        if self._known is not None:
            value = self._known.sub(REDACTED, value)
        for pattern, replacement in _TOKEN_SHAPES:
            value = pattern.sub(replacement, value)
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Credential headers masked whole; any other header scrubbed like text (it may echo a key)."""
        return {
            self.text(name): REDACTED if name.lower() in SECRET_HEADERS else self.text(str(value))
            for name, value in headers.items()
        }

    def url(self, url: str) -> str:
        try:
            parts = urlsplit(url)
        except ValueError:
            return self.text(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(k.lower() in _SECRET_QUERY for k, _ in pairs):
                query = urlencode(
                    [(k, REDACTED if k.lower() in _SECRET_QUERY else v) for k, v in pairs], safe="[]"
                )
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))

    def value(self, value: Any) -> Any:
        """Scrub a JSON-like value (dicts, lists, strings; keys too), leaving its shape intact."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                (self.text(key) if isinstance(key, str) else key): REDACTED
                if isinstance(key, str) and key.lower() in _SECRET_FIELDS and item
                else self.value(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value
