"""Draft 2020-12 validators derived from the spec's ``components/schemas``.

OpenAPI 3.1 schemas *are* JSON Schema 2020-12, so each validator is just a
``$ref`` into the spec document, resolved through a ``referencing`` registry.
That way a fix to the spec is a fix to every validator.

Issues carry the dotted path of the field to blame, which is what a gateway puts
in the error ``param`` (D6): a missing required key is blamed on that key, a
failed ``if``/``then`` or ``dependentSchemas`` rule on the field whose presence
triggered it (``stream_options`` for D18, ``usage`` on a content chunk), and a message that matches no role branch on its ``role``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry
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
    """One schema violation: the dotted path of the field to blame, and what is wrong."""

    path: str
    message: str
    #: where the failing value sits (the blamed ``path`` may be another field: the one whose
    #: presence made a conditional rule apply, or the missing key of an object)
    instance_path: str = field(default="", compare=False)
    #: the JSON Schema keyword that failed (``required``, ``maxItems``, ``const``, ...)
    keyword: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


def _dotted(path: Iterable[Any]) -> str:
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def _branch_key_miss(errors: Sequence[ValidationError]) -> str | None:
    """The property whose ``const`` this oneOf/anyOf branch failed on, if any (e.g. ``role``)."""
    for err in errors:
        if err.validator == "const" and len(err.relative_path) == 1:
            return str(err.relative_path[0])
    return None


class Validators:
    """Validators for every :class:`SchemaKind`, built from one spec document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        resource = DRAFT202012.create_resource(spec)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._resolver = self._registry.resolver(base_uri=SPEC_URI)
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
        found = [self._issue(kind, err) for err in validator.iter_errors(payload)]
        return sorted(set(found), key=lambda issue: (issue.path, issue.message))

    def is_valid(self, kind: SchemaKind, payload: Any) -> bool:
        return bool(self._validators[kind].is_valid(payload))

    def first_issue(self, kind: SchemaKind, payload: Any) -> ValidationIssue | None:
        """The most relevant violation (jsonschema's ``best_match``, refined), or None."""
        error = jsonschema.exceptions.best_match(self._validators[kind].iter_errors(payload))
        if error is None:
            return None
        return self._issue(kind, error)

    # -- locating the field to blame -------------------------------------------------

    def _issue(self, kind: SchemaKind, error: ValidationError) -> ValidationIssue:
        while error.validator in ("oneOf", "anyOf") and error.context:
            branches: dict[Any, list[ValidationError]] = {}
            for sub in error.context:
                branches.setdefault(sub.relative_schema_path[0], []).append(sub)
            misses = {branch: _branch_key_miss(errs) for branch, errs in branches.items()}
            keyed = [branch for branch, miss in misses.items() if miss is None]
            if len(keyed) == 1 and len(branches) > 1:
                # exactly one branch accepts the key (the role): its complaint is the real one
                chosen = jsonschema.exceptions.best_match(branches[keyed[0]])
                if chosen is None:
                    break
                error = chosen
                continue
            key_names = set(misses.values())
            if not keyed and len(key_names) == 1 and isinstance(error.instance, dict):
                # no branch accepts the key: blame the key itself, listing the accepted values
                (key,) = key_names
                assert key is not None
                accepted = [
                    sub.validator_value
                    for errs in branches.values()
                    for sub in errs
                    if sub.validator == "const" and list(sub.relative_path) == [key]
                ]
                message = f"{error.instance.get(key)!r} is not one of {accepted!r}"
                return ValidationIssue(
                    path=_dotted([*error.absolute_path, key]),
                    message=message,
                    instance_path=_dotted([*error.absolute_path, key]),
                    keyword="const",
                )
            break
        path, message = self._blamed(kind, error)
        return ValidationIssue(
            path=path,
            message=message,
            instance_path=_dotted(error.absolute_path),
            keyword=str(error.validator),
        )

    def _blamed(self, kind: SchemaKind, error: ValidationError) -> tuple[str, str]:
        """The dotted path to blame and the message that says what is wrong there."""
        path: list[Any] = list(error.absolute_path)
        conditional = self._conditional_field(kind, error)
        if conditional is not None:
            depth, trigger = conditional
            return _dotted([*path[:depth], trigger]), _conditional_message(trigger, path[depth:], error)
        missing = _missing_property(error)
        if missing is not None:
            # one `required` error per missing key: blame the key this error is about
            return _dotted([*path, missing]), error.message
        return _dotted(path), error.message

    def _conditional_field(self, kind: SchemaKind, error: ValidationError) -> tuple[int, str] | None:
        """For a failed ``then`` or ``dependentSchemas`` rule: how deep in the instance the rule
        sits, and the field whose presence triggered it (the field out of place)."""
        schema_path = list(error.absolute_schema_path)
        if "then" not in schema_path and "dependentSchemas" not in schema_path:
            return None
        node: Any = self._validators[kind].schema
        depth = 0  # instance path elements consumed so far
        names_a_child = False  # the previous step was `properties` & co: this step is a name or index
        for position, step in enumerate(schema_path):
            # jsonschema leaves `$ref` hops out of schema paths: follow them when the step is not here
            while isinstance(node, dict) and "$ref" in node and step not in node:
                node = self._resolver.lookup(node["$ref"]).contents
            if names_a_child:
                depth += 1
                names_a_child = False
            elif step in ("properties", "patternProperties", "prefixItems"):
                names_a_child = True
            elif step in ("items", "additionalProperties"):
                depth += 1
            elif step == "dependentSchemas" and position + 1 < len(schema_path):
                # the rule applies because a field is present: that field is the one out of place
                return depth, str(schema_path[position + 1])
            elif step == "then" and isinstance(node, dict):
                condition = node.get("if", {})
                required = condition.get("required", []) if isinstance(condition, dict) else []
                return (depth, str(required[0])) if required else None
            if isinstance(node, dict):
                node = node.get(step)
            elif isinstance(node, list) and isinstance(step, int) and step < len(node):
                node = node[step]
            else:
                return None
        return None


def _missing_property(error: ValidationError) -> str | None:
    """The key a ``required`` error is about (jsonschema reports each missing key separately)."""
    required = error.validator_value
    if (
        error.validator != "required"
        or not isinstance(error.instance, dict)
        or not isinstance(required, list)
    ):
        return None
    missing = [name for name in required if isinstance(name, str) and name not in error.instance]
    for name in missing:
        if error.message == f"{name!r} is a required property":
            return name
    return missing[0] if missing else None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _conditional_message(trigger: str, at: Sequence[Any], error: ValidationError) -> str:
    """What a failed ``then``/``dependentSchemas`` rule asks, naming the field and value it is about
    (jsonschema's own message quotes the failing value only: ``[{...}] is expected to be empty``)."""
    where = _dotted(at) or "the object"
    instance = error.instance
    if error.validator == "maxItems" and isinstance(instance, list):
        limit = error.validator_value
        wanted = "[]" if limit == 0 else f"at most {limit} items"
        count = len(instance)
        return f"with {trigger} present, {where} must be {wanted}; it has {count} item{'' if count == 1 else 's'}"
    if error.validator == "required":
        return f"with {trigger} present, {error.message}"
    if error.validator == "const":
        return f"with {trigger} present, {where} must be {error.validator_value!r}, not {_short(instance)}"
    return (
        f"with {trigger} present, {where} is {_short(instance)}: {error.validator} {error.validator_value!r}"
    )


@functools.cache
def validators() -> Validators:
    """Validators for the shipped reference spec (built once per process)."""
    return Validators(load_spec())
