"""Every golden corpus entry gets its expected verdict from three validators: the project's
jsonschema validators, jsonschema_rs built independently from the same spec, and (for everything
the gateway sends back) schemathesis' own response validation."""

from __future__ import annotations

from collections import Counter
from typing import Any

import jsonschema_rs
import pytest

from gateproof.openapi import CorpusEntry, SchemaKind, load_corpus, validators

from .conftest import CHAT, MODELS, ResponseFactory

ENTRIES = load_corpus()


def by_kind(*kinds: SchemaKind) -> list[Any]:
    return [pytest.param(entry, id=entry.id) for entry in ENTRIES if entry.kind in kinds]


def test_corpus_size_and_balance() -> None:
    counts = Counter((entry.kind, entry.valid) for entry in ENTRIES)
    assert len(ENTRIES) >= 60
    for kind in SchemaKind:
        assert counts[(kind, True)] >= 2, f"too few valid {kind.value} entries"
        assert counts[(kind, False)] >= 2, f"too few invalid {kind.value} entries"


def test_entries_explain_themselves() -> None:
    for entry in ENTRIES:
        assert entry.why.strip(), entry.id
        assert entry.kind is not SchemaKind.ERROR or entry.status is not None, entry.id


@pytest.mark.parametrize("entry", by_kind(*SchemaKind))
def test_jsonschema_verdict(entry: CorpusEntry) -> None:
    issues = validators().issues(entry.kind, entry.payload)
    assert (not issues) is entry.valid, f"{entry.why} -- issues: {issues}"
    assert validators().is_valid(entry.kind, entry.payload) is entry.valid
    first = validators().first_issue(entry.kind, entry.payload)
    assert (first is None) is entry.valid


@pytest.mark.parametrize("entry", by_kind(*SchemaKind))
def test_jsonschema_rs_verdict(
    entry: CorpusEntry, rs_validators: dict[SchemaKind, jsonschema_rs.Validator]
) -> None:
    assert rs_validators[entry.kind].is_valid(entry.payload) is entry.valid, entry.why


@pytest.mark.parametrize("entry", by_kind(SchemaKind.RESPONSE))
def test_schemathesis_verdict_response(
    entry: CorpusEntry, chat_operation: Any, build: ResponseFactory
) -> None:
    response = build.json(CHAT, 200, entry.payload)
    assert chat_operation.is_valid_response(response) is entry.valid, entry.why


@pytest.mark.parametrize("entry", by_kind(SchemaKind.ERROR))
def test_schemathesis_verdict_error(entry: CorpusEntry, chat_operation: Any, build: ResponseFactory) -> None:
    assert entry.status is not None
    response = build.json(CHAT, entry.status, entry.payload)
    assert chat_operation.is_valid_response(response) is entry.valid, entry.why


@pytest.mark.parametrize("entry", by_kind(SchemaKind.MODELS))
def test_schemathesis_verdict_models(
    entry: CorpusEntry, models_operation: Any, build: ResponseFactory
) -> None:
    response = build.json(MODELS, 200, entry.payload)
    assert models_operation.is_valid_response(response) is entry.valid, entry.why


@pytest.mark.parametrize("entry", by_kind(SchemaKind.CHUNK))
def test_schemathesis_verdict_chunk_alone(
    entry: CorpusEntry, chat_operation: Any, build: ResponseFactory
) -> None:
    """A one-event stream holding just this chunk."""
    assert chat_operation.is_valid_response(build.sse([entry.payload])) is entry.valid, entry.why


@pytest.mark.parametrize("entry", by_kind(SchemaKind.CHUNK))
def test_schemathesis_verdict_chunk_then_done(
    entry: CorpusEntry, chat_operation: Any, build: ResponseFactory
) -> None:
    """The chunk followed by the closing `data: [DONE]`: the sentinel never changes the verdict."""
    assert chat_operation.is_valid_response(build.sse([entry.payload, "[DONE]"])) is entry.valid, entry.why


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 413, 429, 500, 502, 504])
def test_schemathesis_really_checks_each_status(
    status: int, chat_operation: Any, build: ResponseFactory
) -> None:
    """Guards the verdict tests above: an undocumented status or media type would be 'valid' by
    default, so each status the corpus uses must reject a body of the wrong shape."""
    assert chat_operation.is_valid_response(build.json(CHAT, status, {"unexpected": True})) is False


def test_schemathesis_really_checks_models(models_operation: Any, build: ResponseFactory) -> None:
    assert models_operation.is_valid_response(build.json(MODELS, 200, {"unexpected": True})) is False
