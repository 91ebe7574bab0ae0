"""Errors the mock answers with, before any dialect has given them a wire shape.

A ``ProviderError`` says *what* went wrong (status, message, the field at fault,
a specific code when there is one); each dialect decides how its provider would
spell it (OpenAI's ``{"error": {message, type, param, code}}``, and so on).

``RequestRejected`` carries one through the request pipeline: parsing the body,
reading the directive and planning the answer all raise it, and the pipeline
turns it into an immediate error reply. It is never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NO_CODE", "DirectiveError", "ProviderError", "RequestRejected"]

#: ``ProviderError.code`` for "no code at all", whatever the dialect's default for the status
NO_CODE = ""


@dataclass(frozen=True, slots=True)
class ProviderError:
    """A dialect-neutral error answer."""

    status: int
    message: str
    #: a specific machine-readable code; ``None`` lets the dialect pick its default for the status,
    #: ``NO_CODE`` says the provider sends none (OpenAI's 401 for a missing key has ``code: null``)
    code: str | None = None
    #: the request field at fault, when one is
    param: str | None = None
    #: seconds for a ``Retry-After`` header, when the provider would send one
    retry_after: int | None = None


class RequestRejected(Exception):
    """The request cannot be answered as asked; ``error`` is what to answer instead."""

    def __init__(self, error: ProviderError, *, cid: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        #: the correlation id, when it could still be read from the rejected request
        self.cid = cid


class DirectiveError(RequestRejected):
    """The ``[[gateproof ...]]`` directive is malformed or asks for something unknown."""

    def __init__(self, message: str, *, cid: str | None = None) -> None:
        super().__init__(
            ProviderError(
                status=400,
                message=f"gateproof directive: {message}",
                code="invalid_directive",
                param="messages",
            ),
            cid=cid,
        )
