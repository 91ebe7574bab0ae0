"""The jsonschema validators name the field to blame (the D6 `param`), and the corpus loader."""

from __future__ import annotations

from typing import Any

import pytest

from gateproof.openapi import (
    CORPUS_FILES,
    SchemaKind,
    ValidationIssue,
    Validators,
    load_corpus,
    load_spec,
    validators,
)

BASE: dict[str, Any] = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [BASE["messages"][0], {"role": "tool", "content": "r"}]}, "messages[1].tool_call_id"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": False, "stream_options": {}}, "stream_options"),
        ({"n": 3}, "n"),
        ({"edgee_tool_ids": ["edgee_current_time", ""]}, "edgee_tool_ids[1]"),
        ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "tools[0].function.name"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0].type"),
    ],
)
def test_first_issue_names_the_param(change: dict[str, Any], param: str) -> None:
    issue = validators().first_issue(SchemaKind.REQUEST, BASE | change)
    assert issue is not None
    assert issue.path == param, str(issue)
    assert param in [found.path for found in validators().issues(SchemaKind.REQUEST, BASE | change)]


def test_missing_required_field_is_blamed_on_that_field() -> None:
    issue = validators().first_issue(SchemaKind.REQUEST, {"messages": BASE["messages"]})
    assert issue == ValidationIssue(path="model", message="'model' is a required property")
    assert str(issue) == "model: 'model' is a required property"


def test_bad_role_message_lists_the_roles() -> None:
    issue = validators().first_issue(
        SchemaKind.REQUEST, BASE | {"messages": [{"role": "robot", "content": "x"}]}
    )
    assert issue is not None
    for role in ("system", "developer", "user", "assistant", "tool"):
        assert role in issue.message


def test_chunk_rules_blame_the_field_out_of_place() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
             "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}  # fmt: skip
    issue = validators().first_issue(SchemaKind.CHUNK, chunk)
    assert issue is not None and issue.path == "usage"
    assert validators().is_valid(SchemaKind.CHUNK, chunk | {"choices": []})
    debug = {"request_id": "r", "provider": "openai", "upstream_model": "gpt-4o", "timings_ms": {}}
    issue = validators().first_issue(SchemaKind.CHUNK, chunk | {"usage": None, "debug": debug})
    assert issue is not None and issue.path == "debug"


def test_valid_payload_has_no_issues() -> None:
    assert validators().issues(SchemaKind.REQUEST, BASE) == []
    assert validators().first_issue(SchemaKind.REQUEST, BASE) is None
    assert validators().is_valid(SchemaKind.REQUEST, BASE)


def test_validators_follow_the_document_they_are_built_from() -> None:
    """Validators are derived, not hand-written: tightening a copy of the spec tightens them."""
    spec = load_spec()
    schemas = spec["components"]["schemas"]
    request = schemas["ChatCompletionRequest"] | {
        "properties": schemas["ChatCompletionRequest"]["properties"]
        | {"max_tokens": {"type": "integer", "minimum": 5}}
    }
    custom = Validators(
        spec | {"components": spec["components"] | {"schemas": schemas | {"ChatCompletionRequest": request}}}
    )
    assert validators().is_valid(SchemaKind.REQUEST, BASE | {"max_tokens": 2})
    assert not custom.is_valid(SchemaKind.REQUEST, BASE | {"max_tokens": 2})


def test_validators_refuse_a_spec_without_the_named_schemas() -> None:
    spec = load_spec()
    schemas = {k: v for k, v in spec["components"]["schemas"].items() if k != "ModelList"}
    with pytest.raises(KeyError, match="ModelList"):
        Validators(spec | {"components": spec["components"] | {"schemas": schemas}})


def test_corpus_loader_filters_by_kind_and_ids_are_unique() -> None:
    everything = load_corpus()
    assert {entry.kind for entry in everything} == set(CORPUS_FILES)
    for kind in SchemaKind:
        assert load_corpus(kind) == [entry for entry in everything if entry.kind is kind]
    ids = [entry.id for entry in everything]
    assert len(ids) == len(set(ids))


def test_each_missing_key_is_blamed_on_itself() -> None:
    """jsonschema reports one `required` error per missing key: each names its own key."""
    issues = validators().issues(SchemaKind.ERROR, {"error": {"message": "x", "param": None}})
    assert {str(issue) for issue in issues} == {
        "error.type: 'type' is a required property",
        "error.code: 'code' is a required property",
    }
    assert all(issue.instance_path == "error" and issue.keyword == "required" for issue in issues)


def test_a_conditional_rule_says_which_field_and_value() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
             "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}  # fmt: skip
    (issue,) = validators().issues(SchemaKind.CHUNK, chunk)
    assert str(issue) == "usage: with usage present, choices must be []; it has 1 item"
    assert issue.instance_path == "choices"
    (issue,) = validators().issues(SchemaKind.REQUEST, BASE | {"stream": False, "stream_options": {}})
    assert str(issue) == "stream_options: with stream_options present, stream must be True, not False"
