"""Checks on JSON bodies: schema conformance and the semantics the schema cannot express."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateproof.contract._wire import MAX_JSON_DEPTH, JSONTooDeep, loads_bounded
from gateproof.contract.checks._context import CheckContext
from gateproof.contract.checks._registry import (
    EDGEE_ONLY,
    CheckFailed,
    NotApplicable,
    Redundant,
    Requirement,
    check,
)
from gateproof.contract.checks.status import SERVER_ERROR_OWNERS
from gateproof.contract.results import Severity
from gateproof.contract.stream import SSEDecoder
from gateproof.openapi import SchemaKind, ValidationIssue

__all__ = [
    "chunk_schema_conformance",
    "completion_within_max_tokens",
    "error_body_conforms",
    "error_code_expected",
    "finish_reason_expected",
    "models_schema_conformance",
    "no_duplicate_json_keys",
    "refusal_carried",
    "response_model_echoes_request",
    "response_schema_conformance",
    "response_usage_totals_add_up",
    "sent_limit",
    "tool_call_arguments_json_string",
    "usage_matches_provider",
]


#: the request fields that cap the completion: the same limit under its old and its new name
LIMIT_FIELDS = ("max_tokens", "max_completion_tokens")

#: a status check that failed makes every judgement of the body moot: it is not the answer expected
_STATUS = ("status_code_expected",)

Attribution = Callable[[ValidationIssue], "str | None"]


def _chunk_issue_owner(issue: ValidationIssue) -> str | None:
    """The stream rule that already reports this chunk-schema issue, if one does."""
    at = issue.instance_path or issue.path
    if at == "object":
        return "chunk_object_type"
    if issue.path == "usage" and at == "choices":
        return "usage_chunk_empty_choices"
    if at == "" and issue.keyword == "type":
        return "chunk_is_json"
    if re.match(r"choices\[\d+\]\.delta\.tool_calls\[\d+\]", issue.path):
        return "tool_call_deltas_indexed"
    if re.fullmatch(r"usage\.(prompt|completion|total)_tokens", issue.path):
        return "usage_totals_add_up"
    return None


def _response_issue_owner(issue: ValidationIssue) -> str | None:
    """The semantic check that already reports this response-schema issue, if one does."""
    if re.fullmatch(r"choices\[\d+\]\.message\.tool_calls\[\d+\]\.function\.arguments", issue.path):
        return "tool_call_arguments_json_string"
    if re.fullmatch(r"usage\.(prompt|completion|total)_tokens", issue.path):
        return "response_usage_totals_add_up"
    return None


_CONTENT_TYPE = "content_type_matches_mode"


def _json_body(ctx: CheckContext) -> Any:
    """The body as JSON; when it is not JSON and its Content-Type already failed, that is the cause."""
    try:
        return ctx.observed.json()
    except CheckFailed:
        if _CONTENT_TYPE in ctx.failed:
            raise Redundant(
                _CONTENT_TYPE, f"skipped because {_CONTENT_TYPE} failed: the body is not JSON either"
            ) from None
        raise


def _validate(
    ctx: CheckContext,
    kind: SchemaKind,
    payloads: list[tuple[str, Any]],
    owner: Attribution | None = None,
) -> None:
    """Fail with the schema issues of ``payloads`` (each with where it sits), leaving out the issues
    that a check already failed on this answer reports (``owner`` names it): one root cause, one
    failure. When those were all there was, the check is redundant."""
    found: list[str] = []
    left_out: list[str] = []
    for where, payload in payloads:
        for issue in ctx.validators.issues(kind, payload):
            owned = owner(issue) if owner is not None else None
            if owned is not None and owned in ctx.failed:
                left_out.append(owned)
            else:
                found.append(f"{where}{issue}")
    if found:
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        raise CheckFailed(
            f"{found[0]}{more}",
            expected=f"a valid {kind.value} per the reference spec",
            actual="; ".join(found[:5]),
        )
    if left_out:
        because = left_out[0]
        others = sorted(set(left_out) - {because})
        also = f" (and {', '.join(others)})" if others else ""
        raise Redundant(
            because, f"skipped because {because}{also} failed: every schema issue here is that failure"
        )


def _choice(ctx: CheckContext) -> dict[str, Any]:
    body = ctx.observed.json()
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise CheckFailed("the response has no choices[0]", expected="one choice", actual=repr(choices)[:200])
    return choices[0]


@check(
    depends_on=_STATUS,
    defers_to=(_CONTENT_TYPE, "tool_call_arguments_json_string", "response_usage_totals_add_up"),
)
def response_schema_conformance(ctx: CheckContext) -> None:
    """A non-streaming 200 body validates against ChatCompletionResponse."""
    _validate(ctx, SchemaKind.RESPONSE, [("", _json_body(ctx))], _response_issue_owner)


@check(
    depends_on=(*_STATUS, "sse_framing"),
    defers_to=(
        "chunk_is_json",
        "chunk_object_type",
        "usage_chunk_empty_choices",
        "tool_call_deltas_indexed",
        "usage_totals_add_up",
    ),
)
def chunk_schema_conformance(ctx: CheckContext) -> None:
    """Every streamed chunk validates against ChatCompletionChunk."""
    ctx.require_stream()
    chunks = [(f"chunk #{index}: ", chunk) for index, chunk in enumerate(ctx.observed.chunks)]
    _validate(ctx, SchemaKind.CHUNK, chunks, _chunk_issue_owner)


@check(depends_on=_STATUS, defers_to=(_CONTENT_TYPE,))
def models_schema_conformance(ctx: CheckContext) -> None:
    """GET /v1/models answers a ModelList."""
    _validate(ctx, SchemaKind.MODELS, [("", _json_body(ctx))])


@check(defers_to=(_CONTENT_TYPE, *SERVER_ERROR_OWNERS))
def error_body_conforms(ctx: CheckContext) -> None:
    """Error responses carry the error envelope (message, type, code, param)."""
    # Only an answer that is an error is held to the envelope. A success where an error was due is
    # the status check's failure alone; a wrong error status (500 for 400) that comes with a JSON
    # body of its own design still owes the envelope, so that body is judged, not hidden behind the
    # status. A crash page (a 5xx whose body is not JSON) is the status failure alone.
    status = ctx.observed.status
    if status < 400:
        if _STATUS[0] in ctx.failed:
            raise Redundant(_STATUS[0], f"skipped because {_STATUS[0]} failed: HTTP {status} is no error")
        raise NotApplicable(f"HTTP {status} is not an error answer")
    owner = next((name for name in SERVER_ERROR_OWNERS if name in ctx.failed), None)
    if status >= 500 and owner is not None:
        try:
            ctx.observed.json()
        except CheckFailed:
            raise Redundant(
                owner, f"skipped because {owner} failed: the HTTP {status} answer is a crash page, not JSON"
            ) from None
    _validate(ctx, SchemaKind.ERROR, [("", _json_body(ctx))])


@check(profiles=EDGEE_ONLY, severity=Severity.ERROR, depends_on=(*_STATUS, "error_body_conforms"))
def error_code_expected(ctx: CheckContext) -> None:
    """Error responses name the documented error code (and param) for the scenario."""
    expect = ctx.scenario.expect
    body = ctx.observed.json()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise CheckFailed("no error object in the body", expected="error.code", actual=repr(body)[:200])
    if expect.error_code is not None and error.get("code") != expect.error_code:
        raise CheckFailed(
            f"error.code is {error.get('code')!r}",
            expected=repr(expect.error_code),
            actual=repr(error.get("code")),
        )
    if expect.error_param is not None and error.get("param") != expect.error_param:
        raise CheckFailed(
            f"error.param is {error.get('param')!r}",
            expected=repr(expect.error_param),
            actual=repr(error.get("param")),
        )


@check(severity=Severity.ERROR, depends_on=_STATUS)
def response_usage_totals_add_up(ctx: CheckContext) -> None:
    """usage.total_tokens equals prompt_tokens + completion_tokens."""
    usage = ctx.observed.json().get("usage")
    if not isinstance(usage, dict):
        raise CheckFailed("no usage object", expected="usage", actual=repr(usage))
    prompt, completion, total = (usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    if not all(isinstance(v, int) for v in (prompt, completion, total)):
        raise CheckFailed("usage counts are not integers", expected="integers", actual=repr(usage))
    assert isinstance(prompt, int) and isinstance(completion, int)
    if total != prompt + completion:
        raise CheckFailed(
            f"total_tokens {total} != {prompt} + {completion}",
            expected=str(prompt + completion),
            actual=str(total),
        )


@check(severity=Severity.ERROR, depends_on=(*_STATUS, "completion_within_max_tokens"))
def finish_reason_expected(ctx: CheckContext) -> None:
    """finish_reason is the one the scenario produces (stop, length, tool_calls)."""
    expected = ctx.scenario.expect.finish_reason
    if expected is None:
        raise NotApplicable("the scenario does not fix a finish_reason")
    actual = _choice(ctx).get("finish_reason")
    allowed = {expected, *ctx.scenario.expect.finish_also}
    if actual not in allowed:
        raise CheckFailed(
            f"finish_reason is {actual!r}",
            expected=" or ".join(map(repr, sorted(allowed))),
            actual=repr(actual),
        )


@check(profiles=EDGEE_ONLY, depends_on=_STATUS)
def response_model_echoes_request(ctx: CheckContext) -> None:
    """The response names the model as the client asked for it ({author}/{model})."""
    sent = (ctx.request_body or {}).get("model")
    actual = ctx.observed.json().get("model")
    if actual != sent:
        raise CheckFailed(f"model is {actual!r}", expected=repr(sent), actual=repr(actual))


@check(depends_on=_STATUS)
def tool_call_arguments_json_string(ctx: CheckContext) -> None:
    """Tool-call arguments are a string holding a JSON object, as OpenAI clients expect."""
    calls = (_choice(ctx).get("message") or {}).get("tool_calls")
    if not isinstance(calls, list) or not calls:
        raise CheckFailed(
            "no tool_calls in the message", expected="at least one tool call", actual=repr(calls)
        )
    for call in calls:
        arguments = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
        if not isinstance(arguments, str):
            raise CheckFailed(
                f"arguments is a {type(arguments).__name__}, not a string",
                expected="a JSON string",
                actual=repr(arguments)[:200],
            )
        try:
            parsed = loads_bounded(arguments)  # a too-deep string is a ValueError (JSONTooDeep) too
        except ValueError:
            raise CheckFailed(
                "arguments do not parse as JSON", expected="JSON", actual=arguments[:200]
            ) from None
        if not isinstance(parsed, dict):
            raise CheckFailed("arguments are not a JSON object", expected="object", actual=arguments[:200])


def sent_limit(request: Any) -> tuple[str, Any] | None:
    """The completion cap the client sent, as (field name, value): max_completion_tokens (OpenAI's
    current name) or max_tokens (the older one); both mean the same limit."""
    if not isinstance(request, dict):
        return None
    for name in reversed(LIMIT_FIELDS):
        if name in request:
            return name, request[name]
    return None


@check(severity=Severity.ERROR, depends_on=_STATUS)
def completion_within_max_tokens(ctx: CheckContext) -> None:
    """A length stop never bills more completion tokens than the cap sent (max_tokens or max_completion_tokens)."""
    limit = sent_limit(ctx.request_body)
    if limit is None or not isinstance(limit[1], int):
        raise NotApplicable("the request sent no max_tokens or max_completion_tokens")
    name, cap = limit
    usage = ctx.observed.json().get("usage") or {}
    completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not isinstance(completion, int):
        raise CheckFailed(
            f"{name}: {cap} was sent, but the answer has no usage.completion_tokens to compare",
            expected=f"usage.completion_tokens <= {cap}",
            actual=repr(usage)[:200],
        )
    if completion > cap:
        raise CheckFailed(
            f"{name}: {cap} was sent, but usage.completion_tokens is {completion}",
            expected=f"<= {cap}",
            actual=str(completion),
        )


@check(requires=frozenset({Requirement.MOCK_JOURNAL}), severity=Severity.ERROR, depends_on=_STATUS)
def refusal_carried(ctx: CheckContext) -> None:
    """A provider refusal reaches the client in message.refusal with null content."""
    message = _choice(ctx).get("message") or {}
    refusal = message.get("refusal")
    if not isinstance(refusal, str) or not refusal:
        raise CheckFailed("message.refusal is empty", expected="a refusal text", actual=repr(refusal))
    if message.get("content") not in (None, ""):
        raise CheckFailed(
            "content is set beside a refusal", expected="null", actual=repr(message["content"])[:80]
        )


def _stream_usage(ctx: CheckContext) -> dict[str, Any] | None:
    if ctx.stream is not None:
        return ctx.stream.summary.usage
    usage = ctx.observed.json().get("usage")
    return usage if isinstance(usage, dict) else None


_ADD_UP = ("response_usage_totals_add_up", "usage_totals_add_up")


@check(
    requires=frozenset({Requirement.MOCK_JOURNAL}),
    severity=Severity.ERROR,
    depends_on=(*_STATUS, "usage_chunk_present"),
    defers_to=_ADD_UP,
)
def usage_matches_provider(ctx: CheckContext) -> None:
    """The usage billed to the client equals what the provider counted, cached tokens included (the mock is the oracle).

    The mock records the true usage in neutral names (``true_usage``) whatever dialect it spoke:
    ``prompt_tokens`` counts every prompt token, those read from a cache included, so a gateway
    that bills Anthropic's ``input_tokens`` alone (leaving out cache reads) is caught here.
    """
    truth = ctx.upstream_request().true_usage
    if truth is None:
        raise NotApplicable("the provider did not record its usage")
    usage = _stream_usage(ctx)
    if usage is None:
        raise CheckFailed("no usage reached the client", expected=json.dumps(dict(truth)), actual="none")
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        if key == "total_tokens" and usage.get(key) != truth.get(key):
            # prompt and completion match: a total that does not is the add-up failure, if judged
            owner = next((name for name in _ADD_UP if name in ctx.failed), None)
            if owner is not None:
                raise Redundant(owner, f"skipped because {owner} failed: only total_tokens differs")
        if usage.get(key) != truth.get(key):
            raise CheckFailed(
                f"{key} is {usage.get(key)!r} but the provider counted {truth.get(key)!r}",
                expected=str(truth.get(key)),
                actual=str(usage.get(key)),
            )
    cached = truth.get("cached_tokens")
    if not isinstance(cached, int):
        return
    # Edgee names the cached share input_tokens_details (required by the spec); an OpenAI-compatible
    # target owes the OpenAI name only when it reports the details at all
    where = "input_tokens_details" if ctx.profile.value == "edgee" else "prompt_tokens_details"
    details = usage.get(where)
    if where == "prompt_tokens_details" and details is None:
        return
    got = details.get("cached_tokens") if isinstance(details, dict) else None
    if got is None and cached == 0 and where == "prompt_tokens_details":
        return  # nothing was cached: an OpenAI-compatible target that leaves the count out says no less
    if got != cached:
        raise CheckFailed(
            f"{where}.cached_tokens is {got!r}, but the provider read {cached} prompt tokens from its cache",
            expected=str(cached),
            actual=repr(got),
        )


# -- repeated keys ------------------------------------------------------------------------------------
#
# RFC 8259 only says object names SHOULD be unique, and parsers disagree on a repeat: Python, JavaScript
# and most SDKs keep the last value, others keep the first or refuse the document. A body that names a
# key twice therefore gives different clients different answers, and a plain ``json.loads`` hides it.

_SHOWN = 60


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers, for each key its text named more than once, every value."""

    __slots__ = ("repeats",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeats: dict[str, list[Any]] = {}


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    """The ``object_pairs_hook``: a dict as ``json.loads`` builds it, plus the repeats it dropped."""
    built = _Object(pairs)
    if len(built) != len(pairs):  # the common case (no repeat) costs one comparison
        values: dict[str, list[Any]] = {}
        for key, value in pairs:
            values.setdefault(key, []).append(value)
        built.repeats = {key: seen for key, seen in values.items() if len(seen) > 1}
    return built


@dataclass(frozen=True)
class _Repeat:
    """One key named more than once in one object: where it is and what each occurrence said."""

    path: str
    values: tuple[Any, ...]

    def __str__(self) -> str:
        first, last = _show(self.values[0]), _show(self.values[-1])
        times = "twice" if len(self.values) == 2 else f"{len(self.values)} times"
        if first == last:
            return f"{self.path} appears {times}, each with {first}"
        return f"{self.path} appears {times}: first-wins clients read {first}, last-wins ones {last}"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError):
        text = f"<a {type(value).__name__} too deep to show>"
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _member(path: str, key: str) -> str:
    """``choices[0].message`` + ``content``; a key that is not a plain name is quoted in brackets."""
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _repeats(document: Any) -> list[_Repeat]:
    """Every repeated key in a document parsed with ``_object``, in document order, walked without recursion.

    The values a repeat dropped are walked too (under the same path), so a repeat inside a value that
    last-wins parsing threw away is still named.
    """
    found: list[_Repeat] = []
    pending: list[tuple[Any, str]] = [(document, "")]
    while pending:
        node, path = pending.pop()
        children: list[tuple[Any, str]] = []
        if isinstance(node, _Object):
            for key, value in node.items():
                where = _member(path, key)
                seen = node.repeats.get(key)
                if seen is not None:
                    found.append(_Repeat(where, tuple(seen)))
                    children.extend((dropped, where) for dropped in seen[:-1])
                children.append((value, where))
        elif isinstance(node, list):
            children = [(item, f"{path}[{index}]") for index, item in enumerate(node)]
        pending.extend(child for child in reversed(children) if isinstance(child[0], dict | list))
    return found


def _json_documents(ctx: CheckContext) -> list[tuple[str, bytes | str]]:
    """The JSON texts of the answer, each with where it sits: the body, or every event of a stream."""
    observed = ctx.observed
    if ctx.stream is None and observed.content_type != "text/event-stream":
        return [("", observed.body)] if observed.body.strip() else []
    decoder = SSEDecoder()
    events = decoder.feed(observed.body)
    decoder.close()
    return [(f"event #{index}: ", event.data) for index, event in enumerate(events) if event.data != "[DONE]"]


@check()
def no_duplicate_json_keys(ctx: CheckContext) -> None:
    """No JSON object in a body or a stream event names a key twice (clients that keep the first value read another answer)."""
    documents = _json_documents(ctx)
    if not documents:
        raise NotApplicable("the response has no body to read")
    found: list[str] = []
    parsed = 0
    for where, text in documents:
        try:
            document = loads_bounded(text, object_pairs_hook=_object)
        except JSONTooDeep:
            raise CheckFailed(
                f"{where}the JSON nests deeper than {MAX_JSON_DEPTH} levels, so its keys cannot be read",
                expected=f"at most {MAX_JSON_DEPTH} levels",
                actual="deeper",
            ) from None
        except ValueError:  # not JSON: the schema checks and chunk_is_json judge that
            continue
        parsed += 1
        found.extend(f"{where}{repeat}" for repeat in _repeats(document))
    if not parsed:
        raise NotApplicable("nothing in the response parses as JSON")
    if found:
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        raise CheckFailed(
            f"{found[0]}{more}", expected="every key once per JSON object", actual="; ".join(found[:5])
        )
