"""Keeping secrets out of results: every header that can carry a credential is masked."""

from __future__ import annotations

from collections.abc import Mapping

from gateproof.contract.results import SECRET_HEADERS

__all__ = ["SECRET_HEADERS", "redact_headers"]


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credential values replaced (the auth scheme is kept, it is not secret)."""
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            clean[name] = (
                f"{scheme} [redacted]" if rest and scheme.lower() in ("bearer", "basic") else "[redacted]"
            )
        else:
            clean[name] = value
    return clean
