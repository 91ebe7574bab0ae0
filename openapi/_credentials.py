"""The request and response headers whose values are credentials, and the fingerprint kept of one.

One list for every part that writes anything down: the mock's journal masks them before it
keeps a request, the suite's results and every report mask them again. The servers may not
import the suite, and the suite may import this package, so the list lives here, beside the
spec whose security scheme names the first of them. Standard library only.
"""

from __future__ import annotations

import hashlib

__all__ = ["SECRET_HEADERS", "fingerprint"]

#: header names (lower case) whose values are credentials, of any provider dialect or gateway
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "x-edgee-api-key",
        "cookie",
        "set-cookie",
    }
)


def fingerprint(secret: str) -> str:
    """The first 12 hex digits of the secret's SHA-256: enough to recognise a known key, not to recover one.

    The mock's journal keeps this in place of each credential it masks; the suite computes it for
    the keys it knows to tell which one a gateway sent upstream.
    """
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:12]
