"""Checks that read the mock provider's journal: what the gateway really forwarded."""

from __future__ import annotations

import json
from typing import Any

from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._registry import (
    EDGEE_ONLY,
    CheckFailed,
    NotApplicable,
    Profile,
    Requirement,
    check,
)
from gateproof.contract.results import Severity
from gateproof.openapi import JournalRecord, is_edgee_header, is_gateway_field
from gateproof.openapi._credentials import fingerprint

__all__ = [
    "client_key_forwarded_unchanged",
    "client_key_not_forwarded",
    "edgee_fields_not_forwarded",
    "upstream_model_unprefixed",
]

_MOCK = frozenset({Requirement.MOCK_JOURNAL})
#: what reaches the provider is never a matter of client tolerance: every failure here is an error
_ERROR = Severity.ERROR


def _upstream_body(ctx: CheckContext) -> dict[str, Any]:
    body = ctx.upstream_request().body
    if not isinstance(body, dict):
        raise CheckFailed(
            "the provider received no JSON body", expected="a JSON body", actual=repr(body)[:200]
        )
    return body


@check(requires=_MOCK, severity=_ERROR, depends_on=("routed_to_declared_provider",))
def upstream_model_unprefixed(ctx: CheckContext) -> None:
    """The provider receives the model the target declares for it (edgee: the id without its {author}/ prefix)."""
    sent = str((ctx.request_body or {}).get("model", ""))
    if ctx.declared_upstream_model is not None:
        expected = ctx.declared_upstream_model
        rule = f"the target declares (upstream_models: {sent} -> {expected})"
    elif ctx.profile is Profile.EDGEE:
        expected = sent.split("/", 1)[1] if "/" in sent else sent
        rule = "{author}/{model} -> {model}"
    else:
        raise NotApplicable(
            f"openai-core lets a target map {sent!r} to any provider model; declare it in "
            "upstream_models to have it checked"
        )
    entry = ctx.upstream_request()
    intent = entry.request_intent() if entry.intent is not None else None
    # the dialect's own place for the model: the body for most, the path for Gemini
    got = intent.model if intent is not None else _upstream_body(ctx).get("model")
    if got != expected:
        raise CheckFailed(
            f"the provider received model {got!r}, not {expected!r} as {rule}",
            expected=repr(expected),
            actual=repr(got),
        )


@check(requires=_MOCK, severity=_ERROR, profiles=EDGEE_ONLY)
def edgee_fields_not_forwarded(ctx: CheckContext) -> None:
    """No gateway body field (edgee_*, tags, enable_debug, compression_*) and no X-Edgee-* header reaches the provider (D11)."""
    entry = ctx.upstream_request()
    leaked = [k for k in _upstream_body(ctx) if is_gateway_field(k)]
    headers = entry.headers
    leaked += [h for h in headers if is_edgee_header(str(h))]
    if leaked:
        raise CheckFailed(
            f"Edgee-only fields reached the provider: {', '.join(sorted(leaked))}",
            expected="none",
            actual=", ".join(sorted(leaked)),
        )


@check(requires=_MOCK, severity=_ERROR)
def client_key_not_forwarded(ctx: CheckContext) -> None:
    """The client's gateway key never reaches the provider."""
    if not ctx.client_key:
        raise CheckFailed("no client key to look for")
    places = _key_places(ctx.upstream_request(), ctx.client_key)
    if places:
        raise CheckFailed(
            f"the client's key reached the provider in {', '.join(places)}",
            expected="the gateway's own provider key",
            actual=", ".join(places),
        )


@check(requires=_MOCK, severity=_ERROR)
def client_key_forwarded_unchanged(ctx: CheckContext) -> None:
    """A pass-through target (key_passthrough: true) hands the client's key to the provider unchanged."""
    if not ctx.client_key:
        raise CheckFailed("no client key to look for")
    entry = ctx.upstream_request()
    fingerprints = entry.secret_fingerprints
    wanted = fingerprint(ctx.client_key)
    carried = sorted(str(name) for name, digest in fingerprints.items() if digest == wanted)
    if carried:
        return
    places = _key_places(entry, ctx.client_key)
    sent = ", ".join(sorted(str(name) for name in fingerprints)) or "no credential"
    raise CheckFailed(
        "the provider did not receive the client's key as a credential"
        + (f" (it appeared in {', '.join(places)})" if places else f"; it received {sent}"),
        expected="the client's key in the provider's credential header",
        actual=sent,
    )


def _key_places(entry: JournalRecord, key: str) -> list[str]:
    """Where in a journaled request the key appears: header names, body paths, the query."""
    places: list[str] = []
    wanted = fingerprint(key)
    # The journal redacts secrets but keeps a fingerprint of each (see gateproof.mock_providers).
    for name, digest in entry.secret_fingerprints.items():
        if digest == wanted:
            places.append(
                f"query parameter {name[6:]}" if str(name).startswith("query:") else f"header {name}"
            )
    for name, value in entry.headers.items():
        if isinstance(value, str) and key in value and f"header {name}" not in places:
            places.append(f"header {name}")
    if key in entry.query:
        places.append("the query string")
    places += [f"body {path}" for path in _paths_holding(entry.body, key, "")]
    if not places and key in json.dumps(entry.to_json()):
        places.append("the journaled request")
    return places


def _paths_holding(node: Any, key: str, path: str) -> list[str]:
    """Dotted paths of the strings in a JSON value that contain ``key`` (walked without recursion)."""
    found: list[str] = []
    pending: list[tuple[Any, str]] = [(node, path)]
    while pending and len(found) < 5:
        value, where = pending.pop()
        if isinstance(value, str):
            if key in value:
                found.append(where or "<root>")
        elif isinstance(value, dict):
            pending.extend((v, f"{where}.{k}" if where else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
    return sorted(found)
