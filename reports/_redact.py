"""Defence in depth: scrub credentials from results before anything is rendered.

The producers (contract runner, load runner) already redact what they record. A
report, though, is the artefact most likely to be uploaded, attached to a pull
request or mailed around, so the renderers do not rely on that alone: every
result passes through here first, and a credential that slipped through is
replaced by ``[redacted]``.

What is scrubbed:

- the values of credential headers (``Authorization``, ``api-key``, ``x-api-key``, ...);
- any other occurrence of such a value elsewhere in the same run (an echoed body, an
  error message quoting the header);
- credential fields in JSON bodies and credential parameters in URL query strings;
- user:password in URLs;
- token shapes that are recognisable on sight (``Bearer <token>``, ``sk-...``, ``AIza...``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateproof.contract.results import SECRET_HEADERS, CheckResult, Exchange, RunResult
from gateproof.load.results import LoadResult

__all__ = ["REDACTED", "SECRET_HEADERS", "Scrubber", "redact_load", "redact_run"]

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

#: shorter collected values would replace ordinary words
_MIN_SECRET_LENGTH = 6


class Scrubber:
    """Replaces known secret values and credential-looking tokens in any JSON-like value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a value containing another is replaced whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= _MIN_SECRET_LENGTH and REDACTED not in s}, key=len, reverse=True
        )

    @classmethod
    def for_headers(cls, header_sets: Iterable[Mapping[str, str]]) -> Scrubber:
        """Collect the credential values found in ``header_sets`` (they are scrubbed everywhere)."""
        found: set[str] = set()
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
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern, replacement in _TOKEN_SHAPES:
            value = pattern.sub(replacement, value)
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            name: REDACTED if name.lower() in SECRET_HEADERS else self.text(str(value))
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
        """Scrub a JSON-like value (dicts, lists, strings), leaving its shape intact."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                key: REDACTED
                if isinstance(key, str) and key.lower() in _SECRET_FIELDS and item
                else self.value(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def exchange(self, exchange: Exchange) -> Exchange:
        return dataclasses.replace(
            exchange,
            url=self.url(exchange.url),
            request_headers=self.headers(exchange.request_headers),
            request_body=self.value(exchange.request_body),
            response_headers=self.headers(exchange.response_headers),
            response_body=self.value(exchange.response_body),
        )

    def result(self, result: CheckResult) -> CheckResult:
        return dataclasses.replace(
            result,
            target=self.text(result.target),
            route=self.text(result.route),
            scenario=self.text(result.scenario),
            description=self.text(result.description),
            expected=self.text(result.expected),
            actual=self.text(result.actual),
            reason=self.text(result.reason),
            exchange=self.exchange(result.exchange) if result.exchange is not None else None,
        )


def redact_run(run: RunResult) -> RunResult:
    """A copy of ``run`` with every credential replaced by ``[redacted]``."""
    scrubber = Scrubber.for_headers(
        headers
        for result in run.results
        if result.exchange is not None
        for headers in (result.exchange.request_headers, result.exchange.response_headers)
    )
    return dataclasses.replace(
        run,
        target=scrubber.text(run.target),
        base_url=scrubber.url(run.base_url),
        unreachable=scrubber.text(run.unreachable) if run.unreachable is not None else None,
        metadata=scrubber.value(run.metadata),
        results=[scrubber.result(result) for result in run.results],
    )


def redact_load(load: LoadResult) -> LoadResult:
    """A copy of ``load`` whose URL and failure messages carry no credential."""
    scrubber = Scrubber()
    reasons: dict[str, int] = {}
    for reason, count in load.failure_reasons.items():
        # Two messages differing only by a credential become one line with their counts summed.
        clean = scrubber.text(reason)
        reasons[clean] = reasons.get(clean, 0) + count
    return dataclasses.replace(
        load,
        base_url=scrubber.url(load.base_url),
        failure_reasons=reasons,
        settings={name: scrubber.text(str(value)) for name, value in load.settings.items()},
    )
