"""Draft 2020-12 validators derived from the spec's ``components/schemas``.

OpenAPI 3.1 schemas *are* JSON Schema 2020-12, so each validator is just a
``$ref`` into the spec document, resolved through a ``referencing`` registry.
That way a fix to the spec is a fix to every validator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateproof.openapi._spec import load_spec

__all__ = ["SCHEMA_NAMES", "SchemaKind", "ValidationIssue", "Validators", "validators"]

SPEC_URI = "urn:gateproof:openapi"


class SchemaKind(StrEnum):
    """The payload kinds gateproof validates."""

    REQUEST = "request"
    RESPONSE = "response"
    CHUNK = "chunk"
    ERROR = "error"
    MODELS = "models"


#: which component schema validates which kind of payload
SCHEMA_NAMES: dict[SchemaKind, str] = {
    SchemaKind.REQUEST: "ChatCompletionRequest",
    SchemaKind.RESPONSE: "ChatCompletionResponse",
    SchemaKind.CHUNK: "ChatCompletionChunk",
    SchemaKind.ERROR: "ErrorResponse",
    SchemaKind.MODELS: "ModelList",
}


@dataclass(frozen=True)
class ValidationIssue:
    """One schema violation: where (a JSON pointer-ish dotted path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


def _dotted(path: Any) -> str:
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


class Validators:
    """Validators for every :class:`SchemaKind`, built from one spec document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        resource = Resource(contents=spec, specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[SchemaKind, jsonschema.Draft202012Validator] = {}
        schemas = spec.get("components", {}).get("schemas", {})
        for kind, name in SCHEMA_NAMES.items():
            if name not in schemas:
                raise KeyError(f"the spec has no components.schemas.{name} (needed for {kind.value})")
            schema = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
            self._validators[kind] = jsonschema.Draft202012Validator(schema, registry=self._registry)

    def issues(self, kind: SchemaKind, payload: Any) -> list[ValidationIssue]:
        """Every violation of ``payload`` against the schema for ``kind`` (empty when valid)."""
        validator = self._validators[kind]
        errors = validator.iter_errors(payload)
        found = sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message))
        return [ValidationIssue(path=_dotted(err.absolute_path), message=err.message) for err in found]

    def is_valid(self, kind: SchemaKind, payload: Any) -> bool:
        return self._validators[kind].is_valid(payload)

    def first_issue(self, kind: SchemaKind, payload: Any) -> ValidationIssue | None:
        """The most relevant violation (jsonschema's ``best_match``), or None."""
        error = jsonschema.exceptions.best_match(self._validators[kind].iter_errors(payload))
        if error is None:
            return None
        return ValidationIssue(path=_dotted(error.absolute_path), message=error.message)


@functools.cache
def validators() -> Validators:
    """Validators for the shipped reference spec (built once per process)."""
    return Validators(load_spec())
