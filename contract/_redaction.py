"""Masking credential headers as the runner records an exchange (the auth scheme word is kept).

This is the first, cheap pass; ``redact_run`` (``gateproof.contract.results``) then scrubs every
known key, in every encoding, out of the whole run before it leaves the runner.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateproof.contract._secrets import REDACTED, SECRET_HEADERS

__all__ = ["SECRET_HEADERS", "redact_headers"]


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credential values replaced (the auth scheme is kept, it is not secret)."""
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            clean[name] = (
                f"{scheme} {REDACTED}" if rest and scheme.lower() in ("bearer", "basic") else REDACTED
            )
        else:
            clean[name] = value
    return clean
