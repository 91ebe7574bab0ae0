"""Checks on response headers."""

from __future__ import annotations

from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._registry import EDGEE_ONLY, CheckFailed, check
from gateproof.contract.results import Severity
from gateproof.openapi import PROVIDER_HEADER

__all__ = ["provider_header_present", "retry_after_passed_on"]


@check(profiles=EDGEE_ONLY, depends_on=("status_code_expected",))
def provider_header_present(ctx: CheckContext) -> None:
    """Responses that reached a provider carry X-Edgee-Provider naming it (decision D20)."""
    value = ctx.observed.headers.get(PROVIDER_HEADER.lower(), "")
    if not value.strip():
        raise CheckFailed("X-Edgee-Provider is missing", expected="a provider name", actual="missing")


@check(severity=Severity.WARNING, depends_on=("status_code_expected",))
def retry_after_passed_on(ctx: CheckContext) -> None:
    """A provider's 429 reaches the client with a Retry-After header (decision D16)."""
    # Owed in both profiles: the provider sent the header and the official SDKs act on it (the
    # openai SDK waits as long as it says before retrying). A warning, not an error: without it
    # the client still raises RateLimitError and retries, only on its own backoff, too early.
    value = ctx.observed.headers.get("retry-after")
    if value is None or not value.strip():
        raise CheckFailed(
            "Retry-After is missing on a 429 whose provider said when to retry (its Retry-After, or "
            "Gemini's RetryInfo.retryDelay): the openai SDK then retries on "
            "its own backoff (about 0.5-1 s) instead of waiting as the provider asked",
            expected="Retry-After: <seconds>",
            actual="missing",
        )
