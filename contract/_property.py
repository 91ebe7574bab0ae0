"""The property layer: schemathesis drives generated requests from the reference spec.

This is the only module that imports schemathesis. It runs schemathesis' engine
(examples, coverage and fuzzing phases, deterministic, bounded) against the
target and folds its per-case check outcomes into one result per (check,
operation), each saying on how many cases it was judged: failed when any case
failed, with the smallest failing request and its response as the evidence.

schemathesis runs with ``continue-on-failure``: without it the first failing check
ends the operation (and the run), so the other checks would report "passed" on the
two or three cases that had run by then. Every check is judged on every case.

What a target of the ``openai-core`` profile is sent and held to comes from the core
view of the spec: no Edgee-only request field (``tags``, ``enable_debug``,
``edgee_*``, anything marked ``x-gateproof-profile: edgee``) nor ``X-Edgee-*``
header is generated, and response schemas are the relaxed ones of
:func:`gateproof.contract._profiles.core_view`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateproof.contract._config import TargetConfig
from gateproof.contract._exchange import WireForwarder
from gateproof.contract._profiles import EDGEE_MARK, core_view
from gateproof.contract._redaction import redact_headers
from gateproof.contract._wire import loads_bounded
from gateproof.contract.checks import Profile
from gateproof.contract.results import CheckResult, Exchange, Layer, Outcome, RawResponse, Severity
from gateproof.openapi import is_edgee_header, is_gateway_field, load_spec, spec_path

__all__ = ["PROPERTY_CHECKS", "PropertyRun", "run_property", "skipped_property_layer"]

#: schemathesis checks we run, with the sentence our registry shows for each
PROPERTY_CHECKS: dict[str, str] = {
    "not_a_server_error": "No generated request, valid or not, gets a 5xx.",
    "status_code_conformance": "Every status the target answers is documented in the spec.",
    "content_type_conformance": "Every Content-Type the target answers is documented for that status.",
    "response_schema_conformance": "Every response body (and every SSE event) validates against the spec.",
    "response_headers_conformance": "Documented response headers are present and valid.",
    "negative_data_rejection": "Requests that violate the spec are rejected with a 4xx.",
    "positive_data_acceptance": "Requests that satisfy the spec are accepted with a 200.",
    "ignored_auth": "The operation's declared authentication is enforced (no key or a bad key gets 401).",
    "unsupported_method": "Undeclared methods on a known path get 405 with an Allow header.",
}

#: what an openai-core target is held to: what OpenAI's API and its SDK need. Response schemas
#: are judged against the core view of the spec (Edgee-only fields optional), so they bind too;
#: documented statuses, content types and headers, 405s and the 4xx of schema violations are
#: Edgee's own promises
_CORE_CHECKS = (
    "not_a_server_error",
    "positive_data_acceptance",
    "ignored_auth",
    "response_schema_conformance",
)

#: a failed check's severity when it is fixed; the others are measured (None: contract._impact
#: replays the answer through the official client and decides)
_SEVERITY: dict[str, Severity] = {"ignored_auth": Severity.ERROR}

#: what schemathesis' negative_data_rejection accepts as a rejection
_REJECTION_STATUSES = (400, 401, 403, 404, 413, 422)

#: the statuses a correct target answers, per check, when the check itself says so
_EXPECTED_STATUSES: dict[str, frozenset[int]] = {
    "positive_data_acceptance": frozenset({200}),
    "negative_data_rejection": frozenset(_REJECTION_STATUSES),
    "ignored_auth": frozenset({401}),
    "unsupported_method": frozenset({405}),
}

_NO_AUTH_REASON = "the target declares no authentication (auth_required: false)"


@dataclass(frozen=True)
class PropertyRun:
    """What one property-layer run found, and what it cost per operation.

    ``operations`` maps each operation (``"POST /v1/chat/completions"``) to
    ``{"cases": n, "seconds": t}``: the generated cases sent to it and the wall time of its
    phases, counted once (the checks of a case share its request). ``seconds`` is the
    whole layer's wall time. Both belong in ``RunResult.metadata``.
    """

    results: list[CheckResult]
    operations: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


def _origin_base(base_url: str) -> str:
    """The spec's paths start with /v1, so schemathesis gets the base URL without it."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


#: seconds schemathesis waits for the forwarder beyond the target's own deadline, so that the
#: forwarder's bound (which names the failure) always fires first
_FORWARDER_MARGIN_S = 5.0


def _enabled_checks(config: TargetConfig, only: frozenset[str] | None) -> tuple[str, ...]:
    enabled = tuple(PROPERTY_CHECKS) if config.profile is Profile.EDGEE else _CORE_CHECKS
    if not config.auth_required:
        enabled = tuple(name for name in enabled if name != "ignored_auth")
    if only is not None:
        enabled = tuple(name for name in enabled if name in only)
    return enabled


def _settings(config: TargetConfig, api_key: str, enabled: tuple[str, ...], proxy: str) -> dict[str, Any]:
    checks: dict[str, Any] = {"enabled": False}
    for name in enabled:
        checks[name] = {"enabled": True}
    if "positive_data_acceptance" in enabled:
        checks["positive_data_acceptance"]["expected-statuses"] = ["200"]
    if "negative_data_rejection" in enabled:
        checks["negative_data_rejection"]["expected-statuses"] = [str(s) for s in _REJECTION_STATUSES]
    headers = dict(config.extra_headers)
    if config.profile is not Profile.EDGEE:
        headers = {name: value for name, value in headers.items() if not _is_edgee_header(name)}
    headers["Authorization"] = f"Bearer {api_key}"
    return {
        "base-url": _origin_base(config.base_url),
        "headers": headers,
        "seed": config.seed,
        "workers": 1,
        # every check runs on every case: a failure of one must not stop the others
        "continue-on-failure": True,
        # every request goes through the WireForwarder, which bounds it (deadline, size, no redirect)
        "proxy": proxy,
        "max-redirects": 0,
        "request-timeout": config.timeout_s + _FORWARDER_MARGIN_S,
        "max-stream-events": 2000,
        "generation": {
            "max-examples": config.property_examples,
            "deterministic": True,
            "mode": "all" if config.profile is Profile.EDGEE else "positive",
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": config.profile is Profile.EDGEE},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": checks,
        "output": {"sanitization": {"enabled": True}},
    }


# ---------------------------------------------------------------- what an openai-core target is sent

#: the Edgee request body fields the spec names (D11: they never leave the gateway)


def _is_edgee_field(name: str, schema: Any = None) -> bool:
    return is_gateway_field(name) or (isinstance(schema, dict) and schema.get(EDGEE_MARK) == "edgee")


def _is_edgee_header(name: str) -> bool:
    return is_edgee_header(name)


def _drop_edgee_request_fields(node: Any) -> None:
    """Remove Edgee-only properties from every object schema (and from ``required``)."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name in [n for n, schema in properties.items() if _is_edgee_field(n, schema)]:
                del properties[name]
            required = node.get("required")
            if isinstance(required, list):
                node["required"] = [name for name in required if name in properties]
        for value in node.values():
            _drop_edgee_request_fields(value)
    elif isinstance(node, list):
        for value in node:
            _drop_edgee_request_fields(value)


def _strip_body(body: Any) -> Any:
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if not _is_edgee_field(key)}
    return body


def _is_edgee_parameter(parameter: Any, removed: set[str]) -> bool:
    if not isinstance(parameter, dict):
        return False
    if "$ref" in parameter:
        return str(parameter["$ref"]).rsplit("/", 1)[-1] in removed
    return parameter.get("in") == "header" and _is_edgee_header(str(parameter.get("name", "")))


@functools.cache
def _core_spec_cached() -> str:
    spec = core_view(load_spec())
    # an operation marked Edgee-only (``POST /v1/compress``, D33) does not exist for openai-core
    paths = spec.get("paths", {})
    for path, item in list(paths.items()):
        for method in [m for m, op in item.items() if isinstance(op, dict) and op.get(EDGEE_MARK) == "edgee"]:
            del item[method]
        if not any(isinstance(op, dict) and "responses" in op for op in item.values()):
            del paths[path]
    components = spec.get("components", {})
    parameters = components.get("parameters", {})
    removed = {name for name, parameter in parameters.items() if _is_edgee_parameter(parameter, set())}
    for name in removed:
        del parameters[name]
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            if "parameters" in operation:
                operation["parameters"] = [
                    p for p in operation["parameters"] if not _is_edgee_parameter(p, removed)
                ]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                for example in media.get("examples", {}).values():
                    if isinstance(example, dict) and "value" in example:
                        example["value"] = _strip_body(example["value"])
                if "example" in media:
                    media["example"] = _strip_body(media["example"])
    _drop_edgee_request_fields(components.get("schemas", {}).get("ChatCompletionRequest"))
    return json.dumps(spec)


def core_spec() -> dict[str, Any]:
    """The spec schemathesis loads for an openai-core target (a fresh copy).

    It is the core view (Edgee-only response fields optional), without the ``X-Edgee-*``
    request headers and without the Edgee request fields, so none is ever generated.
    """
    loaded: dict[str, Any] = json.loads(_core_spec_cached())
    return loaded


# ---------------------------------------------------------------- the hooks that shape each case

#: body fields whose valid values are server state (which models exist, which Edge Tools are
#: activated, which pending operations are stored): a schema-valid random value is still rightly
#: refused, so positive cases use known values for them
_STATEFUL_FIELDS = ("edgee_tool_ids", "edgee_pending_id")


#: the output budget of positive cases is held below every current model's ceiling: a budget
#: above the model's (``max_tokens is too large``) is refused by the provider, not by the spec
_MAX_OUTPUT_TOKENS = 4096


def _tool_answer(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


def _coherent(messages: list[Any]) -> list[Any]:
    """``messages`` as a provider accepts them: every tool call answered, every tool message an answer.

    The spec types each message on its own; a provider also refuses a ``tool`` message that
    answers no preceding call and an assistant ``tool_calls`` turn left unanswered (OpenAI:
    400 before the model is called). Positive cases are repaired, not filtered: unanswered
    calls get an answer, answers to nothing are dropped, empty call ids get one.
    """
    repaired: list[Any] = []
    pending: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            repaired.append(message)
            continue
        if message.get("role") == "tool":
            if message.get("tool_call_id") in pending:
                pending.remove(message["tool_call_id"])
                repaired.append(message)
            continue
        repaired.extend(_tool_answer(call_id) for call_id in pending)
        pending = []
        calls = message.get("tool_calls")
        if message.get("role") == "assistant" and isinstance(calls, list) and calls:
            named: list[Any] = []
            for number, call in enumerate(calls):
                if isinstance(call, dict) and not (isinstance(call.get("id"), str) and call["id"]):
                    call = {**call, "id": f"call_gp_{len(repaired)}_{number}"}
                named.append(call)
            message = {**message, "tool_calls": named}
            pending = [c["id"] for c in named if isinstance(c, dict) and isinstance(c.get("id"), str)]
        repaired.append(message)
    repaired.extend(_tool_answer(call_id) for call_id in pending)
    return repaired or [{"role": "user", "content": "Say hello."}]


def _pin_case(case: Any, model: str, profile: Profile) -> Any:
    """A positive case gets the target's model and no stateful ids; openai-core gets no Edgee field."""
    from schemathesis.core.parameters import ParameterLocation

    meta = getattr(case, "_meta", None)
    negative = meta is not None and meta.is_negative_at(ParameterLocation.BODY)
    if profile is not Profile.EDGEE:
        if isinstance(case.headers, dict):
            case.headers = {k: v for k, v in case.headers.items() if not _is_edgee_header(k)}
        case.body = _strip_body(case.body)
    if negative or not isinstance(case.body, dict):
        return case
    body = dict(case.body)
    if "model" in body:
        body["model"] = model
    for key in _STATEFUL_FIELDS:
        body.pop(key, None)
    if isinstance(body.get("messages"), list):
        body["messages"] = _coherent(body["messages"])
    budget = body.get("max_tokens")
    # an integer in JSON Schema may be written 1e7: hypothesis sends floats for integers too
    if isinstance(budget, int | float) and not isinstance(budget, bool) and budget > _MAX_OUTPUT_TOKENS:
        body["max_tokens"] = _MAX_OUTPUT_TOKENS
    case.body = body
    return case


def _server_state_pinned(model: str, profile: Profile = Profile.EDGEE) -> Callable[[Any, Any], Any]:
    """A schemathesis ``map_case`` hook: positive bodies get the target's model, no stateful ids,
    a coherent conversation and an output budget every model allows.

    Negative bodies are left alone, so an invalid ``model`` or ``edgee_tool_ids`` is still sent
    and must still be rejected. Under openai-core, no case carries an Edgee field or header.
    """

    def pin(_context: Any, case: Any) -> Any:
        return _pin_case(case, model, profile)

    return pin


def _examples_pinned(model: str, profile: Profile) -> Callable[[Any, list[Any]], None]:
    """A ``before_add_examples`` hook: the spec's own examples (positive all) are pinned likewise.

    The examples phase does not pass its cases through ``map_case``, so without this it would
    send the spec's example model (``openai/gpt-4o-mini``) and its ``tags`` whatever the target.
    """

    def pin(_context: Any, examples: list[Any]) -> None:
        for index, case in enumerate(examples):
            examples[index] = _pin_case(case, model, profile)

    return pin


# ---------------------------------------------------------------- timing the checks themselves


@contextlib.contextmanager
def _checks_timed(names: tuple[str, ...], clock: dict[tuple[str, str], float]) -> Iterator[None]:
    """Replace schemathesis' check functions by timed ones while the engine runs.

    ``clock[(check, operation)]`` accumulates the seconds each check spent judging (its own
    extra requests included, as ``ignored_auth`` and ``unsupported_method`` send some). The
    registry is keyed by name, so a wrapper with the same name takes the original's place.
    """
    from schemathesis.checks import CHECKS

    originals: list[Any] = []
    for name in names:
        try:
            original = CHECKS.get_one(name)
        except KeyError:
            continue
        if isinstance(original, type):  # a class-based check: not wrapped
            continue

        @functools.wraps(original)
        def timed(ctx: Any, response: Any, case: Any, _check: Any = original, _name: str = name) -> Any:
            started = time.perf_counter()
            try:
                return _check(ctx, response, case)
            finally:
                key = (_name, case.operation.label)
                clock[key] = clock.get(key, 0.0) + time.perf_counter() - started

        originals.append(original)
        CHECKS.register(timed)
    try:
        yield
    finally:
        for original in originals:
            CHECKS.register(original)


# ---------------------------------------------------------------- folding the cases


@dataclass
class _Evidence:
    """The failing case shown for a (check, operation): its request, response and failure."""

    size: int
    interaction: Any
    failure: Any
    negative: bool


@dataclass
class _Tally:
    """Per (check, operation): the cases judged, those that failed, the evidence kept."""

    passed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    errored: set[str] = field(default_factory=set)
    evidence: _Evidence | None = None

    @property
    def cases(self) -> int:
        return len(self.passed | self.failed | self.errored)


@dataclass
class _Operation:
    cases: set[str] = field(default_factory=set)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _root(recorder: Any, case_id: str) -> str:
    """The generated case a (probe) case descends from: checks count generated cases."""
    seen = 0
    while seen < 16:
        node = recorder.cases.get(case_id)
        if node is None or node.parent_id is None:
            return case_id
        case_id, seen = node.parent_id, seen + 1
    return case_id


def _label_of(recorder: Any, case_id: str) -> str:
    node = recorder.cases.get(case_id)
    operation = getattr(getattr(node, "value", None), "operation", None)
    return str(getattr(operation, "label", None) or recorder.label)


def _is_negative(recorder: Any, case_id: str) -> bool:
    node = recorder.cases.get(_root(recorder, case_id))
    meta = getattr(getattr(node, "value", None), "_meta", None)
    generation = getattr(meta, "generation", None)
    mode = getattr(generation, "mode", None)
    return bool(getattr(mode, "is_negative", False))


def _request_json(interaction: Any) -> Any:
    body = interaction.request.body
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _fold(
    recorder: Any,
    tallies: dict[tuple[str, str], _Tally],
    operations: dict[str, _Operation],
) -> None:
    for case_id, node in recorder.cases.items():
        if node.parent_id is None and case_id in recorder.interactions:
            operations.setdefault(_label_of(recorder, case_id), _Operation()).cases.add(case_id)
    from schemathesis.engine import Status

    for case_id, nodes in recorder.checks.items():
        label = _label_of(recorder, case_id)
        root = _root(recorder, case_id)
        for node in nodes:
            tally = tallies.setdefault((node.name, label), _Tally())
            if node.status == Status.FAILURE and node.failure_info is not None:
                tally.failed.add(root)
                interaction = recorder.interactions.get(case_id)
                if interaction is None:
                    continue
                size = len(interaction.request.body or b"")
                if tally.evidence is None or size < tally.evidence.size:
                    tally.evidence = _Evidence(
                        size, interaction, node.failure_info.failure, _is_negative(recorder, case_id)
                    )
            elif node.status == Status.ERROR:
                tally.errored.add(root)
            else:
                tally.passed.add(root)
    for tally in tallies.values():
        tally.passed -= tally.failed
        tally.errored -= tally.failed | tally.passed


# ---------------------------------------------------------------- evidence and reasons


def _headers_of(response: Any) -> dict[str, str]:
    return {k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in dict(response.headers).items()}


def _exchange_from(interaction: Any) -> Exchange:
    request, response = interaction.request, interaction.response
    body: Any = None
    if request.body:
        body = request.body[:2048].decode("utf-8", "replace")
    headers = {k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in dict(request.headers).items()}
    result_body: Any = None
    status: int | None = None
    response_headers: dict[str, str] = {}
    elapsed_ms: float | None = None
    if response is not None:
        status = response.status_code
        result_body = (response.content or b"")[:2048].decode("utf-8", "replace")
        response_headers = _headers_of(response)
        elapsed_ms = float(response.elapsed) * 1000.0
    return Exchange(
        method=request.method,
        url=request.uri,
        request_headers=redact_headers(headers),
        request_body=body,
        status=status,
        response_headers=redact_headers(response_headers),
        response_body=result_body,
        elapsed_ms=elapsed_ms,
    )


@functools.cache
def _documented_statuses(path: str, method: str) -> frozenset[int]:
    operation = load_spec().get("paths", {}).get(path, {}).get(method.lower(), {})
    return frozenset(int(code) for code in operation.get("responses", {}) if str(code).isdigit())


def _raw_from(name: str, interaction: Any) -> RawResponse | None:
    response = interaction.response
    if response is None:
        return None
    sent = _request_json(interaction)
    expected = _EXPECTED_STATUSES.get(name)
    if expected is None:
        if name == "status_code_conformance":
            path = urlsplit(interaction.request.uri).path
            expected = _documented_statuses(path, interaction.request.method) - {500, 502, 504}
        elif name == "not_a_server_error":
            expected = frozenset()
        else:  # a shape check: the status was right, the body, type or headers were not
            expected = frozenset({response.status_code})
    return RawResponse(
        status=response.status_code,
        headers=tuple(
            (k, item)
            for k, v in dict(response.headers).items()
            for item in (v if isinstance(v, list) else [v])
        ),
        body=bytes(response.content or b""),
        stream=isinstance(sent, dict) and sent.get("stream") is True,
        request=sent if isinstance(sent, dict) else None,
        expected_statuses=expected,
    )


def _what_was_sent(interaction: Any, api_key: str) -> str:
    """e.g. ``model openai/gpt-4o, stream`` or ``no key``: what identifies the request."""
    parts: list[str] = []
    sent = _request_json(interaction)
    if isinstance(sent, dict):
        if "model" in sent:
            parts.append(f"model {str(sent['model'])[:60]}")
        if sent.get("stream") is True:
            parts.append("stream")
    elif interaction.request.body:
        parts.append("a body that is not a JSON object")
    authorization = next(
        (str(v) for k, v in dict(interaction.request.headers).items() if k.lower() == "authorization"), None
    )
    if authorization is None:
        parts.append("no key")
    elif authorization not in (f"Bearer {api_key}", f"['Bearer {api_key}']"):
        parts.append("an invalid key")
    return ", ".join(parts)


def _what_came(response: Any) -> str:
    """The answer in a few words: its error code or message, else its type and first bytes."""
    if response is None:
        return "no answer"
    content = response.content or b""
    try:
        data = loads_bounded(content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            code = error.get("code") or error.get("type")
            message = str(error.get("message") or "")[:100]
            return f"{code}" + (f" ({message})" if message else "") if code else message or "an error object"
        if isinstance(data.get("message"), str):
            return f"message {data['message'][:100]!r} (no error envelope)"
        return f"a JSON object ({', '.join(list(data)[:6])})"
    content_type = _headers_of(response).get("content-type", "no Content-Type")
    text = content[:80].decode("utf-8", "replace").strip()
    return f"{content_type}: {text!r}" if text else f"{content_type}, empty body"


def _failure_reason(name: str, tally: _Tally, api_key: str) -> str:
    evidence = tally.evidence
    count = f"failed in {len(tally.failed)} of {tally.cases} cases"
    if evidence is None:
        return count
    interaction, failure = evidence.interaction, evidence.failure
    response = interaction.response
    status = response.status_code if response is not None else "no answer"
    sent = _what_was_sent(interaction, api_key)
    kind = "a schema-violating" if evidence.negative else "a valid"
    request = f"{kind} request" + (f" ({sent})" if sent else "")
    came = _what_came(response)
    title = " ".join(f"{failure.title}: {failure.message}".split())[:240]
    if name in ("positive_data_acceptance", "not_a_server_error"):
        text = f"{request} got {status}: {came}"
    elif name == "negative_data_rejection":
        expected = "/".join(str(s) for s in _REJECTION_STATUSES)
        text = f"{request} got {status} ({came}), not a rejection ({expected})"
    elif name == "ignored_auth":
        text = f"a request with {sent.split(', ')[-1] if sent else 'no key'} got {status}: {came}; not 401"
    elif name == "unsupported_method":
        path = urlsplit(interaction.request.uri).path
        text = f"{interaction.request.method} {path} got {status}: {title}"
    else:
        answer = f"the {status} answer" + ("" if isinstance(status, int) and status < 300 else f" ({came})")
        text = f"{answer} to {request}: {title}"
    return f"{text}; {count}"


# ---------------------------------------------------------------- the layer


def run_property(
    config: TargetConfig,
    api_key: str,
    *,
    only: frozenset[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PropertyRun:
    """Run schemathesis against the target: one result per (check, operation), and the costs.

    ``only`` restricts the checks schemathesis runs (not just those reported), which saves
    the requests of the checks that send their own (``ignored_auth``, ``unsupported_method``).

    schemathesis reaches the target only through a :class:`WireForwarder`, which holds each
    request to the wire rules. When the target breaks one (a deadline, a body too large, a
    redirect, JSON nested too deep, ...) the forwarder stops relaying, schemathesis ends, and
    every check that had not already found a failure is an error naming the failure.
    """
    enabled = _enabled_checks(config, only)
    if not enabled:  # nothing to judge (e.g. only ignored_auth, on a target without auth): send nothing
        return PropertyRun(_results(config, api_key, only, enabled, {}, {}, {}, None))
    _keep_hypothesis_out_of_the_working_directory()
    started = time.monotonic()
    with WireForwarder(config.timeout_s) as wire, _environment_proxies_hidden():
        run = _run_engine(config, api_key, wire.url, only=only, progress=progress)
    seconds = time.monotonic() - started
    if progress is not None:
        progress(f"property layer done in {seconds:.1f} s")
    if wire.stop_reason is None:
        return PropertyRun(run.results, run.operations, seconds)
    reason = f"{wire.stop_reason}; the property layer stopped there"
    failed = [r for r in run.results if r.outcome is Outcome.FAILED]
    found = {r.check for r in failed}
    errors = [
        _result(config, name, "all operations", Outcome.ERROR, reason, cases=0)
        for name in PROPERTY_CHECKS
        if name not in found and (only is None or name in only)
    ]
    return PropertyRun(failed + errors, run.operations, seconds)


def hypothesis_home() -> Path:
    """Where hypothesis keeps its caches for gateproof: a per-user cache folder.

    hypothesis' default is ``.hypothesis/`` in the current directory, so every ``gateproof
    contract`` would leave a folder in the user's working tree (or CI checkout). The cache is
    worth keeping across runs (schemathesis' generation warms it; a cold run peaks ~150 MiB
    higher), so it goes under ``$XDG_CACHE_HOME`` (or ``~/.cache``), unless the user chose a
    place with ``HYPOTHESIS_STORAGE_DIRECTORY``.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gateproof" / "hypothesis"


def _keep_hypothesis_out_of_the_working_directory() -> None:
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    home = hypothesis_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable home: a throwaway folder still keeps the working tree clean
        home = Path(tempfile.mkdtemp(prefix="gateproof-hypothesis-"))
    set_hypothesis_home_dir(home)


#: the environment variables ``requests`` reads a proxy from (in either case)
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


@contextlib.contextmanager
def _signals_noted(seen: list[int]) -> Iterator[None]:
    """Record every SIGINT/SIGTERM that arrives while schemathesis runs, then let it act as before.

    schemathesis catches the KeyboardInterrupt a signal raises in many places and does not
    always say so in its events: depending on where it lands (a check, hypothesis' generation,
    a phase winding down) the engine may just end that operation and carry on, and the run
    would then read as finished. The signal itself is the fact, so it is noted here, where no
    library can swallow it. Signal handlers belong to the main thread; elsewhere (the fault
    self-test runs layers in threads) nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {
        signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)
    }

    def note(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler != signal.SIG_IGN:
            raise KeyboardInterrupt

    for signum in previous:
        signal.signal(signum, note)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _environment_proxies_hidden() -> Iterator[None]:
    """Hide proxy settings of the environment from ``requests`` while schemathesis runs.

    ``requests`` adds an ``http_proxy`` from the environment under the ``http`` key, which wins
    over the ``all`` key schemathesis gives the forwarder: traffic would bypass the wire rules
    and could leave loopback. The variables are restored afterwards.
    """
    hidden = {name: os.environ.pop(name) for name in list(os.environ) if name.lower() in _PROXY_VARIABLES}
    try:
        yield
    finally:
        os.environ.update(hidden)


def _load_schema(config: TargetConfig, st_config: Any) -> Any:
    import schemathesis

    if config.profile is Profile.EDGEE:
        return schemathesis.openapi.from_path(spec_path(), config=st_config)
    return schemathesis.openapi.from_dict(core_spec(), config=st_config)


def _run_engine(
    config: TargetConfig,
    api_key: str,
    proxy: str,
    *,
    only: frozenset[str] | None,
    progress: Callable[[str], None] | None,
) -> PropertyRun:
    """One schemathesis run, every request sent through ``proxy``; results per (check, operation)."""
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import Status, events, from_schema

    enabled = _enabled_checks(config, only)
    st_config = SchemathesisConfig.from_dict(_settings(config, api_key, enabled, proxy))
    schema = _load_schema(config, st_config)
    schema.hook("map_case")(_server_state_pinned(config.model, config.profile))
    schema.hook("before_add_examples")(_examples_pinned(config.model, config.profile))
    tallies: dict[tuple[str, str], _Tally] = {}
    operations: dict[str, _Operation] = {}
    clock: dict[tuple[str, str], float] = {}
    fatal: str | None = None
    interrupted = False
    signals: list[int] = []
    with _checks_timed(enabled, clock), _signals_noted(signals):
        stream = from_schema(schema).execute()
        for event in stream:
            if isinstance(event, events.Interrupted) or getattr(event, "status", None) is Status.INTERRUPTED:
                # schemathesis swallows Ctrl-C (and the CLI's SIGTERM, a KeyboardInterrupt too) and
                # reports it as an Interrupted event, or only as an interrupted status when it lands
                # while a phase winds down; the cases it never ran would then read as "not
                # applicable" in a green run. Tell the engine to stop, let it wind down (its next
                # events are the last), then pass the interrupt on.
                interrupted = True
                stream.stop()
            if isinstance(event, events.ScenarioFinished):
                recorder = event.recorder
                if progress is not None:
                    progress(f"property: {recorder.label} ({event.phase.value})")
                operations.setdefault(recorder.label, _Operation()).seconds += event.elapsed_time
                _fold(recorder, tallies, operations)
            elif isinstance(event, events.FatalError):
                fatal = f"{type(event.exception).__name__}: {event.exception}"
            elif isinstance(event, events.NonFatalError):
                text = (
                    f"{event.info.title}: {event.info.message}"
                    if hasattr(event, "info")
                    else str(event.value)
                )
                text = text.strip().splitlines()[0][:300] if text.strip() else type(event.value).__name__
                if getattr(event, "related_to_operation", False):
                    operations.setdefault(event.label, _Operation()).errors.append(text)
                else:
                    fatal = fatal or f"{event.label}: {text}"
    if interrupted or signals:
        raise KeyboardInterrupt("the property layer was interrupted")
    results = _results(config, api_key, only, enabled, tallies, operations, clock, fatal)
    costs = {
        label: {"cases": len(op.cases), "seconds": round(op.seconds, 3)}
        for label, op in sorted(operations.items())
        if op.cases or op.seconds
    }
    return PropertyRun(results, costs)


def _results(
    config: TargetConfig,
    api_key: str,
    only: frozenset[str] | None,
    enabled: tuple[str, ...],
    tallies: dict[tuple[str, str], _Tally],
    operations: dict[str, _Operation],
    clock: dict[tuple[str, str], float],
    fatal: str | None,
) -> list[CheckResult]:
    results: list[CheckResult] = []
    for name in PROPERTY_CHECKS:
        if only is not None and name not in only:
            continue
        if name not in enabled:
            reason = (
                _NO_AUTH_REASON
                if name == "ignored_auth" and not config.auth_required
                else "outside the openai-core profile"
            )
            results.append(_result(config, name, "all operations", Outcome.NOT_APPLICABLE, reason, cases=0))
            continue
        if not operations:
            reason = fatal or "schemathesis generated no case for any operation"
            outcome = Outcome.ERROR if fatal else Outcome.NOT_APPLICABLE
            results.append(_result(config, name, "all operations", outcome, reason, cases=0))
            continue
        for label, operation in sorted(operations.items()):
            tally = tallies.get((name, label), _Tally())
            elapsed = clock.get((name, label), 0.0)
            sent = len(operation.cases)
            if tally.failed:
                evidence = tally.evidence
                results.append(
                    _result(
                        config,
                        name,
                        label,
                        Outcome.FAILED,
                        _failure_reason(name, tally, api_key),
                        actual=evidence.failure.message[:2000] if evidence is not None else "",
                        exchange=_exchange_from(evidence.interaction) if evidence is not None else None,
                        raw=_raw_from(name, evidence.interaction) if evidence is not None else None,
                        elapsed=elapsed,
                        cases=tally.cases,
                        failed_cases=len(tally.failed),
                        severity=_SEVERITY.get(name),
                    )
                )
            elif tally.passed:
                reason = f"passed in {len(tally.passed)} of {tally.cases} cases"
                if tally.errored:
                    reason += f" (the check itself raised on {len(tally.errored)})"
                results.append(
                    _result(config, name, label, Outcome.PASSED, reason, elapsed=elapsed, cases=tally.cases)
                )
            elif tally.errored or operation.errors or fatal:
                why = operation.errors[0] if operation.errors else fatal or "the check raised on every case"
                reason = f"judged 0 of {sent} cases sent to {label}: {why}"
                results.append(
                    _result(config, name, label, Outcome.ERROR, reason, elapsed=elapsed, cases=tally.cases)
                )
            else:
                reason = f"judged 0 of {sent} cases sent to {label}: no case exercised this check"
                results.append(
                    _result(config, name, label, Outcome.NOT_APPLICABLE, reason, elapsed=elapsed, cases=0)
                )
    return results


def skipped_property_layer(config: TargetConfig, reason: str) -> list[CheckResult]:
    """One error result per property check, for a run that could not reach the target any more."""
    return [
        _result(config, name, "all operations", Outcome.ERROR, reason, cases=0) for name in PROPERTY_CHECKS
    ]


def _result(
    config: TargetConfig,
    name: str,
    label: str,
    outcome: Outcome,
    reason: str,
    *,
    actual: str = "",
    exchange: Exchange | None = None,
    raw: RawResponse | None = None,
    elapsed: float = 0.0,
    cases: int,
    failed_cases: int = 0,
    severity: Severity | None = None,
) -> CheckResult:
    return CheckResult(
        check=name,
        description=PROPERTY_CHECKS[name],
        layer=Layer.PROPERTY,
        profile=config.profile.value,
        target=config.name,
        route=label,
        scenario="generated",
        outcome=outcome,
        expected=PROPERTY_CHECKS[name],
        actual=actual,
        reason=reason,
        exchange=exchange,
        duration_ms=elapsed * 1000.0,
        severity=severity,
        cases=cases,
        failed_cases=failed_cases,
        raw=raw,
    )
