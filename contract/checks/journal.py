"""Checks that read the mock provider's journal: what the gateway really forwarded."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._registry import CheckFailed, Requirement, check

__all__ = [
    "client_key_not_forwarded",
    "edgee_fields_not_forwarded",
    "upstream_messages_intact",
    "upstream_model_unprefixed",
    "upstream_params_intact",
]

_MOCK = frozenset({Requirement.MOCK_JOURNAL})


def _upstream_body(ctx: CheckContext) -> dict[str, Any]:
    body = ctx.upstream_request().get("body")
    if not isinstance(body, dict):
        raise CheckFailed(
            "the provider received no JSON body", expected="a JSON body", actual=repr(body)[:200]
        )
    return body


@check(requires=_MOCK)
def upstream_model_unprefixed(ctx: CheckContext) -> None:
    """The provider receives its own model id, without the {author}/ prefix."""
    sent = str((ctx.request_body or {}).get("model", ""))
    expected = sent.split("/", 1)[1] if "/" in sent else sent
    got = _upstream_body(ctx).get("model")
    if got != expected:
        raise CheckFailed(f"the provider received model {got!r}", expected=repr(expected), actual=repr(got))


@check(requires=_MOCK)
def upstream_params_intact(ctx: CheckContext) -> None:
    """max_tokens, tools and tool_choice reach the provider exactly as the client sent them."""
    upstream = _upstream_body(ctx)
    for key in ("max_tokens", "tools", "tool_choice"):
        if key not in (ctx.request_body or {}):
            continue
        sent = ctx.request_body[key] if ctx.request_body else None
        if upstream.get(key) != sent:
            raise CheckFailed(
                f"{key} changed on the way to the provider",
                expected=json.dumps(sent)[:300],
                actual=json.dumps(upstream.get(key))[:300],
            )


@check(requires=_MOCK)
def upstream_messages_intact(ctx: CheckContext) -> None:
    """Roles, tool_calls and tool_call_id of every message reach the provider unchanged."""
    sent = (ctx.request_body or {}).get("messages") or []
    got = _upstream_body(ctx).get("messages") or []
    if len(got) != len(sent):
        raise CheckFailed("message count changed", expected=str(len(sent)), actual=str(len(got)))
    for index, (a, b) in enumerate(zip(sent, got, strict=True)):
        for key in ("role", "tool_calls", "tool_call_id"):
            if a.get(key) != b.get(key):
                raise CheckFailed(
                    f"messages[{index}].{key} changed",
                    expected=json.dumps(a.get(key))[:200],
                    actual=json.dumps(b.get(key))[:200],
                )


@check(requires=_MOCK)
def edgee_fields_not_forwarded(ctx: CheckContext) -> None:
    """No edgee_* / tags body field and no X-Edgee-* header reaches the provider (decision D11)."""
    entry = ctx.upstream_request()
    leaked = [k for k in _upstream_body(ctx) if k.startswith("edgee_") or k in ("tags", "enable_debug")]
    headers = entry.get("headers") or {}
    leaked += [h for h in headers if str(h).lower().startswith("x-edgee-")]
    if leaked:
        raise CheckFailed(
            f"Edgee-only fields reached the provider: {', '.join(sorted(leaked))}",
            expected="none",
            actual=", ".join(sorted(leaked)),
        )


@check(requires=_MOCK)
def client_key_not_forwarded(ctx: CheckContext) -> None:
    """The client's gateway key never reaches the provider."""
    if not ctx.client_key:
        raise CheckFailed("no client key to look for")
    entry = ctx.upstream_request()
    # The journal redacts secrets but keeps a fingerprint of each (see gateproof.mock_providers).
    fingerprints = json.dumps(entry.get("secret_fingerprints") or {})
    raw = json.dumps(entry)
    if ctx.client_key in raw or _fingerprint(ctx.client_key) in fingerprints:
        raise CheckFailed("the client's key reached the provider", expected="the gateway's own provider key")


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]
