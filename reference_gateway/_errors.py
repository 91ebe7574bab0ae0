"""Every error the gateway can answer with, as one exception type and named constructors.

The envelope is fixed by D13: ``{"error": {"message", "type", "code", "param"}}`` with all
four keys present. Handlers raise a :class:`GatewayError`; one place (the app) renders it,
so a fault can change how errors look without touching the code that detects them.

Messages never contain an API key or an upstream credential: constructors take only
the facts they need (a model id, a header name, a limit), never a raw header value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "GatewayError",
    "bad_model_id",
    "body_too_large",
    "concurrency_limit_exceeded",
    "forbidden",
    "internal_error",
    "invalid_edgee_pending_id",
    "invalid_edgee_tool_ids",
    "invalid_json",
    "invalid_request",
    "method_not_allowed",
    "model_not_found",
    "not_found",
    "provider_error",
    "provider_rate_limited",
    "provider_rejected",
    "provider_timeout",
    "unauthorized",
]

#: longest provider message quoted back to the client (providers can answer with whole pages)
MAX_QUOTED = 500


class GatewayError(Exception):
    """A request the gateway answers with an error status and the D13 envelope.

    ``headers`` are extra response headers that belong to the error itself
    (``Retry-After`` on a rate limit, ``Allow`` on a wrong method).
    """

    def __init__(
        self,
        status: int,
        type: str,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})

    def envelope(self) -> dict[str, Any]:
        """The D13 body: all four keys, ``code`` and ``param`` possibly null."""
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.type!r}, {self.code!r}, {self.message!r})"


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_QUOTED:
        text = text[: MAX_QUOTED - 1] + "…"
    return text


# -- 4xx raised by the gateway itself -------------------------------------------------------------


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, "authentication_error", "unauthorized", message)


def forbidden(message: str) -> GatewayError:
    return GatewayError(403, "permission_error", "forbidden", message)


def invalid_json(detail: str) -> GatewayError:
    return GatewayError(
        400, "invalid_request_error", "invalid_json", f"Request body is not valid JSON: {detail}"
    )


def invalid_request(param: str | None, message: str) -> GatewayError:
    return GatewayError(400, "invalid_request_error", "invalid_request", _quote(message), param=param or None)


def bad_model_id(model: str) -> GatewayError:
    return GatewayError(
        400,
        "invalid_request_error",
        "bad_model_id",
        f"Invalid model ID: {_quote(model)!r}; expected {{author}}/{{model}}, e.g. 'openai/gpt-4o'",
        param="model",
    )


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        400, "invalid_request_error", "model_not_found", f"Model {_quote(model)!r} not found", param="model"
    )


def invalid_edgee_tool_ids(ids: Iterable[str]) -> GatewayError:
    unique = list(dict.fromkeys(ids))
    return GatewayError(
        400,
        "invalid_request_error",
        "invalid_edgee_tool_ids",
        "Invalid or non-activated Edge Tool IDs: " + ", ".join(unique),
        param="edgee_tool_ids",
    )


def invalid_edgee_pending_id() -> GatewayError:
    return GatewayError(
        400,
        "invalid_request_error",
        "invalid_edgee_pending_id",
        "Unknown, expired or already used edgee_pending_id",
        param="edgee_pending_id",
    )


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(
        413, "invalid_request_error", "body_too_large", f"Request body exceeds the limit of {limit} bytes"
    )


def concurrency_limit_exceeded(limit: int) -> GatewayError:
    """D47: the key already has ``limit`` requests in flight; refused before any provider is called."""
    return GatewayError(
        429,
        "rate_limit_error",
        "concurrency_limit_exceeded",
        f"This API key already has {limit} requests in progress; retry when one has finished",
        headers={"Retry-After": "1"},
    )


def not_found(path: str) -> GatewayError:
    return GatewayError(404, "not_found_error", "not_found", f"No route for {_quote(path)}")


def method_not_allowed(method: str, allowed: Iterable[str]) -> GatewayError:
    allow = ", ".join(allowed)
    return GatewayError(
        405,
        "invalid_request_error",
        "method_not_allowed",
        f"Method {method} is not allowed here; use {allow}",
        headers={"Allow": allow},
    )


# -- what happened on the provider side (D16) ------------------------------------------------------


def provider_rate_limited(provider: str, retry_after: str | None) -> GatewayError:
    return GatewayError(
        429,
        "rate_limit_error",
        "provider_rate_limited",
        f"Provider {provider} is rate limiting requests; retry later",
        headers={"Retry-After": retry_after} if retry_after else None,
    )


def provider_rejected(provider: str, provider_message: str) -> GatewayError:
    """A 4xx from the provider about the request itself: the client can fix it, so it is a 400."""
    return GatewayError(
        400,
        "invalid_request_error",
        "provider_error",
        f"Provider {provider} rejected the request: {_quote(provider_message)!r}",
    )


def provider_error(provider: str, detail: str) -> GatewayError:
    return GatewayError(
        502, "provider_error", "provider_error", f"Provider {provider} failed: {_quote(detail)}"
    )


def edge_tool_loop_limit(rounds: int) -> GatewayError:
    """The model kept asking for Edge Tools after the last round the gateway runs (D4)."""
    return GatewayError(
        502,
        "provider_error",
        "edge_tool_loop_limit",
        f"The model requested Edge Tools for more than {rounds} rounds",
    )


def provider_timeout(provider: str, seconds: float) -> GatewayError:
    return GatewayError(
        504, "provider_error", "provider_timeout", f"Provider {provider} did not answer within {seconds:g} s"
    )


def internal_error() -> GatewayError:
    return GatewayError(
        500, "server_error", "internal_error", "An internal error occurred. Please try again later."
    )
