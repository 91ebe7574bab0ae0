"""The reference spec itself: valid OpenAPI 3.1, no OAS 3.0 leftovers, every reference resolvable,
every example true to its schema, and every decision in DECISIONS.md cited by the spec text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from gateproof.openapi import SCHEMA_NAMES, load_spec, spec_path

SPEC_URI = "urn:test:spec"


def walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, node) pair of a parsed YAML/JSON document."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def resolve_pointer(document: Any, ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are expected, got {ref}"
    node = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def test_openapi_spec_validator_passes() -> None:
    spec = load_spec()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_openapi_spec_validator_catches_a_broken_copy() -> None:
    """The validator is not vacuous: a dangling operation response fails it."""
    broken = load_spec() | {"paths": {"/v1/x": {"get": {"responses": {"200": {"content": 5}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_no_nullable_keyword_anywhere() -> None:
    offenders = [path for path, node in walk(load_spec()) if isinstance(node, dict) and "nullable" in node]
    assert offenders == []
    # also as text, in case a key hides somewhere the walk above does not reach (e.g. a quoted key)
    assert not re.search(r"""["']?nullable["']?\s*:""", spec_path().read_text(encoding="utf-8"))


def test_every_ref_resolves() -> None:
    spec = load_spec()
    refs = [(path, node["$ref"]) for path, node in walk(spec) if isinstance(node, dict) and "$ref" in node]
    assert len(refs) > 40
    for path, ref in refs:
        try:
            resolve_pointer(spec, ref)
        except (KeyError, IndexError, ValueError) as exc:
            pytest.fail(f"{'/'.join(map(str, path))}: $ref {ref} does not resolve ({exc!r})")


def test_no_schema_refers_to_itself_directly() -> None:
    """The public spec's ErrorResponse contained a $ref to itself; none of ours may."""
    for name, schema in load_spec()["components"]["schemas"].items():
        own = f"#/components/schemas/{name}"
        assert all(node.get("$ref") != own for _, node in walk(schema) if isinstance(node, dict)), name


def test_named_schemas_exist() -> None:
    schemas = load_spec()["components"]["schemas"]
    for name in SCHEMA_NAMES.values():
        assert name in schemas
    # the public spec pointed at AssistantMessage without defining it
    assert schemas["AssistantMessage"]["properties"]["role"] == {"const": "assistant"}


def test_security_is_opaque_bearer_and_models_are_public() -> None:
    spec = load_spec()
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert "bearerFormat" not in scheme
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/v1/models"]["get"]["security"] == []


def test_operations_and_documented_statuses() -> None:
    paths = load_spec()["paths"]
    chat = paths["/v1/chat/completions"]["post"]
    assert chat["operationId"] == "createChatCompletion"
    assert set(chat["responses"]) == {"200", "400", "401", "403", "404", "413", "429", "500", "502", "504"}
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    models = paths["/v1/models"]["get"]
    assert models["operationId"] == "listModels"
    assert [p["name"] for p in models["parameters"]] == ["provider"]


def _examples() -> Iterator[tuple[str, str, Any]]:
    """(where, schema $ref, example value) for every media type example in the spec."""
    spec = load_spec()
    for path, node in walk(spec):
        if not (isinstance(node, dict) and isinstance(node.get("schema"), dict) and "$ref" in node["schema"]):
            continue
        where = "/".join(map(str, path))
        if "example" in node:
            yield where, node["schema"]["$ref"], node["example"]
        for name, example in node.get("examples", {}).items():
            yield f"{where}#{name}", node["schema"]["$ref"], example["value"]


def test_every_example_matches_its_schema() -> None:
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(load_spec()))
    checked = 0
    for where, ref, value in _examples():
        validator = jsonschema.Draft202012Validator({"$ref": SPEC_URI + ref}, registry=registry)
        errors = [error.message for error in validator.iter_errors(value)]
        assert errors == [], f"example {where} is invalid: {errors}"
        checked += 1
    assert checked >= 20


def _decision_ids() -> list[str]:
    text = (Path(spec_path()).parent / "DECISIONS.md").read_text(encoding="utf-8")
    return re.findall(r"^## (D\d+)\. ", text, flags=re.MULTILINE)


def test_decisions_are_numbered_in_order_and_explained() -> None:
    ids = _decision_ids()
    assert ids == [f"D{n}" for n in range(1, len(ids) + 1)]
    assert len(ids) >= 20
    text = (Path(spec_path()).parent / "DECISIONS.md").read_text(encoding="utf-8")
    sections = re.split(r"^## D\d+\. ", text, flags=re.MULTILINE)[1:]
    for decision, section in zip(ids, sections, strict=True):
        assert "*Why:*" in section, f"{decision} does not say why"


@pytest.mark.parametrize("decision", _decision_ids())
def test_every_decision_is_cited_by_the_spec(decision: str) -> None:
    text = spec_path().read_text(encoding="utf-8")
    assert re.search(rf"\b{decision}\b", text), f"{decision} is not referenced anywhere in the spec"
