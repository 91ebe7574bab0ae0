"""schemathesis' request generator and the jsonschema validators agree on the spec: every body
schemathesis generates as valid passes `validators()`. This is why cross-field rules (D18) are
written as `if`/`then`, which both sides understand."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from gateproof.openapi import SchemaKind, validators


def test_generated_requests_are_valid(chat_operation: Any) -> None:
    seen: list[Any] = []

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=chat_operation.as_strategy())
    def check(case: Any) -> None:
        seen.append(case.body)
        for name in ("X-Edgee-Debug", "X-Edgee-Enable-Compression"):
            value = (case.headers or {}).get(name)
            assert value is None or value.lower() in {"true", "false", "1", "0"}, (name, value)  # D7
        issue = validators().first_issue(SchemaKind.REQUEST, case.body)
        assert issue is None, f"schemathesis generated {case.body!r}, the validators say {issue}"

    check()
    assert len(seen) >= 20


def test_generator_honours_the_stream_options_rule(chat_operation: Any) -> None:
    """D18 as the generator reads it: a generated body with stream_options always streams."""
    seen: list[Any] = []
    with_options = chat_operation.as_strategy().filter(
        lambda case: isinstance(case.body, dict) and "stream_options" in case.body
    )

    @settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=with_options)
    def check(case: Any) -> None:
        seen.append(case.body)
        assert case.body.get("stream") is True
        assert validators().is_valid(SchemaKind.REQUEST, case.body)

    check()
    assert seen


def test_generated_model_queries_use_the_provider_filter_only(models_operation: Any) -> None:
    """GET /v1/models documents one optional query parameter (D10) and nothing else."""
    queries: list[Any] = []

    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=models_operation.as_strategy())
    def check(case: Any) -> None:
        queries.append(case.query)
        assert not case.query or set(case.query) == {"provider"}
        assert not case.query or isinstance(case.query["provider"], str)

    check()
    assert queries
