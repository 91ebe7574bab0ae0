"""What the gateway does when a provider fails before the client has seen a byte (D44).

One job: decide, for each failed upstream attempt, whether the same route is tried again,
the next route (a fallback, ``models[].fallbacks``) is tried at once, or the client is
answered with the failure; and run the attempts in that order. The gateway core supplies
one attempt (a callable that answers or raises :class:`FailedAttempt`) and the routes.

The classes (D44):

- *retry, then fall back*: 429; 500, 502, 503, 529; a connection refused or reset before the
  answer was complete;
- *fall back at once*: no answer in time (connect, first byte, whole answer: D46); 504, 408;
  401 or 403 (the gateway's own credential); an unusable answer; any other 5xx (not listed as
  transient by D44, and not the client's fault either);
- *terminal*: every other 4xx (the client's request is at fault).

:class:`ResilienceRules` holds the numbers and the switches. The correct values are
``CORRECT_RESILIENCE``; the self-test builds its faulty gateways by changing one field with
``dataclasses.replace`` (a gateway that never retries, retries forever, ignores
``Retry-After``, never falls back, retries after the first chunk or never cancels the
upstream request when the client leaves), so every switch here changes real behaviour.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

import anyio

from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._upstream import TransportError, UpstreamTimeout

__all__ = [
    "CORRECT_RESILIENCE",
    "Attempted",
    "FailedAttempt",
    "FailureClass",
    "ResilienceRules",
    "classify_exception",
    "classify_status",
    "retry_wait",
    "run_attempts",
]

logger = logging.getLogger("gateproof.gateway")

#: provider statuses that are transient: the same route is worth one more try (D44)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 529})
#: provider statuses that say this route cannot answer now: the next route is tried at once
FALLBACK_STATUSES = frozenset({401, 403, 408, 504})


class FailureClass(StrEnum):
    """What one failed upstream attempt allows (D44)."""

    RETRY = "retry"
    FALLBACK = "fallback"
    TERMINAL = "terminal"


@dataclass(frozen=True)
class ResilienceRules:
    """The retry and fallback policy; every field is one behaviour a fault may change.

    ``primary_attempts``/``fallback_attempts`` are the attempts per route (the requested model's
    route, then each fallback); ``max_attempts`` bounds the upstream attempts of one client
    request whatever the routes (D44 judges at most 5). A ``Retry-After`` up to
    ``retry_after_max_s`` is waited before the retry; a longer one ends the route's attempts.
    """

    primary_attempts: int = 2
    fallback_attempts: int = 1
    retry_after_max_s: float = 2.0
    max_attempts: int = 5
    #: wait what the provider asked before retrying (off: retry at once, however long it asked)
    honour_retry_after: bool = True
    #: try ``models[].fallbacks`` when the requested model's route failed
    fallback: bool = True
    #: after the first chunk reached the client, open the stream again on a failure (wrong: D45)
    retry_after_first_chunk: bool = False
    #: close the provider's request when the client disconnects (D46)
    cancel_on_disconnect: bool = True


CORRECT_RESILIENCE = ResilienceRules()


class FailedAttempt(Exception):
    """One upstream attempt that failed: what the client would be told, and what may follow.

    ``retry_after`` is the provider's own delay (a ``Retry-After`` value) when it gave one.
    """

    def __init__(self, error: GatewayError, kind: FailureClass, retry_after: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.kind = kind
        self.retry_after = retry_after


def classify_status(status: int) -> FailureClass:
    """The class of an upstream error status (as the adapter reads it: Anthropic's 529 stays 529)."""
    if status in RETRY_STATUSES:
        return FailureClass.RETRY
    if status in FALLBACK_STATUSES or status >= 500:
        return FailureClass.FALLBACK
    return FailureClass.TERMINAL


def classify_exception(exc: BaseException) -> FailureClass:
    """The class of a failure to get an answer at all.

    A timeout is "no answer in time" (fall back at once); a refused or broken connection is
    transient (retry); anything else the upstream client raises (a request it could not send)
    is an unusable answer.
    """
    if isinstance(exc, TimeoutError | UpstreamTimeout):
        return FailureClass.FALLBACK
    if isinstance(exc, TransportError):
        return FailureClass.RETRY
    return FailureClass.FALLBACK


def _seconds(retry_after: str) -> float | None:
    """A ``Retry-After`` value in seconds: delta-seconds or an HTTP date; None when unreadable."""
    text = retry_after.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return value if math.isfinite(value) and value >= 0 else None


def retry_wait(rules: ResilienceRules, retry_after: str | None) -> float | None:
    """How long to wait before retrying the same route; None: do not retry it (the wait is too long)."""
    if not rules.honour_retry_after or retry_after is None:
        return 0.0
    seconds = _seconds(retry_after)
    if seconds is None:
        return 0.0
    if seconds > rules.retry_after_max_s:
        return None
    return seconds


_R = TypeVar("_R")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Attempted(Generic[_R, _T]):
    """The answer of the attempt that succeeded, the route that gave it, and how many attempts it took."""

    result: _T
    route: _R
    route_index: int
    attempts: int


async def run_attempts(
    rules: ResilienceRules,
    routes: Sequence[_R],
    attempt: Callable[[_R], Awaitable[_T]],
    *,
    describe: Callable[[_R], str] = str,
) -> Attempted[_R, _T]:
    """Try ``routes`` (the primary first) as D44 orders; the last failure's error when all failed.

    A terminal failure ends everything at once: another route would refuse the same request.
    """
    tried = 0
    last: FailedAttempt | None = None
    usable = routes if rules.fallback else routes[:1]
    for index, route in enumerate(usable):
        allowed = rules.primary_attempts if index == 0 else rules.fallback_attempts
        on_route = 0
        while on_route < allowed and tried < rules.max_attempts:
            on_route += 1
            tried += 1
            try:
                result = await attempt(route)
            except FailedAttempt as failed:
                last = failed
                wait = retry_wait(rules, failed.retry_after)
                more = failed.kind is FailureClass.RETRY and on_route < allowed and wait is not None
                next_step = (
                    "giving up"
                    if failed.kind is FailureClass.TERMINAL
                    else f"retrying in {wait:g} s"
                    if more and wait is not None
                    else "next route"
                )
                logger.info(
                    "upstream attempt %d (%s) failed [%s, %s]: %s; %s",
                    tried,
                    describe(route),
                    failed.kind.value,
                    failed.error.code,
                    failed.error.message,
                    next_step,
                )
                if failed.kind is FailureClass.TERMINAL:
                    raise failed.error from None
                if not more:
                    break
                if wait:
                    await anyio.sleep(wait)
                continue
            return Attempted(result=result, route=route, route_index=index, attempts=tried)
        if tried >= rules.max_attempts:
            break
    if last is None:
        raise RuntimeError("no upstream attempt was allowed (ResilienceRules with no attempts?)")
    raise last.error from None
