"""The request and response headers whose values are credentials.

One list for every part that writes anything down: the mock's journal masks them before it
keeps a request, the suite's results and every report mask them again. The servers may not
import the suite, and the suite may import this package, so the list lives here, beside the
spec whose security scheme names the first of them. Standard library only.
"""

from __future__ import annotations

__all__ = ["SECRET_HEADERS"]

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
