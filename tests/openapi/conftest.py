"""Shared objects for the spec tests: the spec as schemathesis loads it, responses built in memory
for its response validation, and a second, independent JSON Schema implementation (jsonschema_rs)
built from the same document.

schemathesis 4.32.5 validates responses through ``APIOperation.validate_response`` /
``is_valid_response``, which take ``schemathesis.Response`` (its own transport type) as well as
httpx/requests responses. An ``httpx.Response`` built in memory does not work: the conversion reads
``.elapsed``, which httpx sets only after a real transfer. So :class:`ResponseFactory` builds
``schemathesis.Response`` objects directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import jsonschema_rs
import pytest
import requests
import schemathesis

from gateproof.openapi import SCHEMA_NAMES, SchemaKind, load_spec, spec_path

CHAT = ("POST", "/v1/chat/completions")
MODELS = ("GET", "/v1/models")


class ResponseFactory:
    """Finished HTTP responses, shaped as schemathesis' transport hands them to its checks."""

    def make(
        self,
        route: tuple[str, str],
        status: int,
        content_type: str,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> schemathesis.Response:
        method, path = route
        request = requests.Request(method, f"http://127.0.0.1:9{path}").prepare()
        all_headers = {"content-type": [content_type]}
        for name, value in (headers or {}).items():
            all_headers[name.lower()] = [value]
        return schemathesis.Response(
            status_code=status, headers=all_headers, content=body, request=request, elapsed=0.0, verify=True
        )

    def json(self, route: tuple[str, str], status: int, payload: Any) -> schemathesis.Response:
        body = json.dumps(payload).encode()
        return self.make(route, status, "application/json", body, {"X-Edgee-Provider": "openai"})

    @staticmethod
    def sse_body(events: Iterable[Any]) -> bytes:
        """One `data:` event per item (JSON-encoded unless already a string), blank-line separated."""
        return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events).encode()

    def sse(self, events: Iterable[Any]) -> schemathesis.Response:
        body = self.sse_body(events)
        return self.make(CHAT, 200, "text/event-stream", body, {"X-Edgee-Provider": "openai"})


@pytest.fixture(scope="session")
def build() -> ResponseFactory:
    return ResponseFactory()


@pytest.fixture(scope="session")
def st_schema() -> Any:
    return schemathesis.openapi.from_path(str(spec_path()))


@pytest.fixture(scope="session")
def chat_operation(st_schema: Any) -> Any:
    return st_schema[CHAT[1]][CHAT[0]]


@pytest.fixture(scope="session")
def models_operation(st_schema: Any) -> Any:
    return st_schema[MODELS[1]][MODELS[0]]


@pytest.fixture(scope="session")
def rs_validators() -> dict[SchemaKind, jsonschema_rs.Validator]:
    """jsonschema_rs validators, one per kind: the spec's components under a `$ref` root."""
    components = load_spec()["components"]
    built: dict[SchemaKind, jsonschema_rs.Validator] = {}
    for kind, name in SCHEMA_NAMES.items():
        root = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": f"#/components/schemas/{name}",
            "components": components,
        }
        built[kind] = jsonschema_rs.Draft202012Validator(root)
    return built
