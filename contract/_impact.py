"""Client impact: replay a failing answer through the official openai SDK and record what the caller saw.

A failed check says the target deviated from the contract; it does not say whether that matters.
Severity is measured, not guessed: the bytes the check judged (:class:`RawResponse`) are served
to a real ``openai.OpenAI`` client through an in-memory transport (no socket, no network), the
way a user's code would call it, and the outcome becomes a :class:`ClientImpact` per probe:

- ``raised``: the SDK (or a caller reading what it returned) raised where a correct answer parses;
- ``field_lost``: it parsed, but a value on the wire did not reach the caller, or reached it with
  a type other than the one the SDK declares (the SDK builds its models without validating, so a
  wrong type is handed on as is and breaks the caller's code later, e.g. ``json.loads(arguments)``);
- ``wrong_exception``: the answer should have raised one error class and raised another, or none;
- ``parsed``: every field reached the caller as declared.

A failure whose every probe parsed is a ``warning`` (clients tolerate it); anything else is an
``error``. The SDK's own checks are what decides, so an SDK upgrade can move a deviation between
the two; that is the point.

Replays are bounded: the body is finite and served from memory, the transport refuses a client
that keeps asking (pagination, retries), and nothing is printed (warnings and the SDK's loggers
are silenced while a replay runs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx2
import openai
import pydantic
from openai._streaming import SSEDecoder

from gateproof.contract._wire import loads_bounded
from gateproof.contract.checks.status import status_runs
from gateproof.contract.results import (
    CheckResult,
    ClientImpact,
    ImpactVerdict,
    Outcome,
    RawResponse,
    Severity,
)

__all__ = ["REPLAY_SECONDS", "SDK", "assess", "replay", "severity_of"]

SDK = f"openai-python {openai.__version__}"
_BASE_URL = "http://127.0.0.1:9/v1"

#: the recorded body is the entity as received (already de-chunked and decoded), so the headers
#: that describe the framing of the original bytes would make the client mis-read it
_FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive"}
)

#: one call per probe is all a replay needs; more means the client is paginating or retrying
_MAX_CALLS = 4

#: validation errors that are not a type change: an absent field reads None, an unknown enum
#: value reaches the caller unchanged (the checks report both; the client tolerates them)
_TOLERATED_ERRORS = frozenset(
    {"missing", "literal_error", "enum", "union_tag_invalid", "union_tag_not_found"}
)

_DETAIL_CHARS = 200

#: the loggers (with their children: a disabled logger does not silence them) the SDK writes to
_SDK_LOGGERS = frozenset({"openai", "httpx2"})

#: how long one probe may spend reading a body: the SDK's stream helper is quadratic in the
#: streamed text, so a body of tens of thousands of tiny chunks is cut off here, as a timeout
REPLAY_SECONDS = 5.0

#: the body is handed to the client in pieces of this size, the deadline checked between them
_PIECE_BYTES = 64 * 1024


def severity_of(impacts: Sequence[ClientImpact]) -> Severity:
    """WARNING when the official client was tried and parsed everything; ERROR otherwise.

    No impact at all (a route gateproof cannot replay) is an error: tolerance is never assumed.
    """
    if impacts and all(impact.verdict is ImpactVerdict.PARSED for impact in impacts):
        return Severity.WARNING
    return Severity.ERROR


def assess(results: Sequence[CheckResult]) -> list[CheckResult]:
    """Measure the client impact of every failure, fill in missing severities, and drop the raw bytes.

    Several results often judged one answer; each answer is replayed once. A severity a check
    declared is kept (it knows better, e.g. "what reaches the provider"); a failure with nothing
    to replay is an error. Every result comes back without ``raw``: the bytes are not kept.
    """
    replays: dict[tuple[int, str], tuple[ClientImpact, ...]] = {}
    assessed = []
    for result in results:
        if result.outcome is not Outcome.FAILED:
            assessed.append(result if result.raw is None else dataclasses.replace(result, raw=None))
            continue
        impact = result.impact
        if result.raw is not None:
            key = (id(result.raw), result.route)
            if key not in replays:
                replays[key] = replay(result.raw, result.route)
            impact = replays[key]
        severity = result.severity
        if severity is None:
            severity = severity_of(impact) if result.raw is not None else Severity.ERROR
        assessed.append(dataclasses.replace(result, impact=impact, severity=severity, raw=None))
    return assessed


def replay(raw: RawResponse, route: str, *, budget: float = REPLAY_SECONDS) -> tuple[ClientImpact, ...]:
    """What the openai SDK makes of ``raw``, one impact per probe; empty if ``route`` has no probe.

    Never raises: the SDK's exceptions are the measurement, and a fault in gateproof's own
    judging yields no impact (so the failure stays an error) rather than a verdict on the target.
    Each probe's read of the body stops after ``budget`` seconds (the client sees a read timeout).
    """
    probes = _probes(raw, route)
    if not probes:
        return ()
    try:
        with _quiet(), _replay_client(raw, budget) as client:
            return tuple(probe(client) for probe in probes)
    except Exception:
        return ()


# --- which probes -------------------------------------------------------------------------------

_Probe = Callable[[openai.OpenAI], ClientImpact]


def _probes(raw: RawResponse, route: str) -> list[_Probe]:
    """The calls a user would make for this route and request, or the error-class check."""
    method, _, path = route.strip().partition(" ")
    path = path.split("?", 1)[0].rstrip("/")
    errors = _expected_errors(raw)
    if method.upper() == "POST" and path.endswith("/chat/completions"):
        kwargs = _chat_kwargs(raw.request)
        if errors:
            name = "chat.completions.create(stream=True)" if raw.stream else "chat.completions.create"
            return [lambda c: _probe_error(c, name, raw, errors, kwargs)]
        if raw.stream:
            return [lambda c: _probe_stream(c, raw, kwargs), lambda c: _probe_stream_helper(c, raw, kwargs)]
        return [lambda c: _probe_create(c, raw, kwargs)]
    if method.upper() == "GET" and path.endswith("/models"):
        if errors:
            return [lambda c: _probe_error(c, "models.list", raw, errors, {})]
        return [lambda c: _probe_models(c, raw)]
    return []


def _expected_errors(raw: RawResponse) -> frozenset[int]:
    """The error statuses the client should have seen, or empty when the answer should parse."""
    expected = raw.expected_statuses
    if expected and all(status >= 400 for status in expected):
        return expected
    if raw.status >= 400 and raw.status in expected:
        return frozenset({raw.status})
    return frozenset()


def _chat_kwargs(request: dict[str, Any] | None) -> dict[str, Any]:
    """``create`` arguments from the recorded request: what the SDK reads as itself, the rest as extra_body.

    ``tools`` are passed as such because the stream helper accumulates tool calls by them; the
    transport ignores what is sent, so an odd request only has to survive the SDK's own handling.
    """
    body = dict(request or {})
    body.pop("stream", None)
    model = body.pop("model", None)
    messages = body.pop("messages", None)
    tools = body.pop("tools", None)
    kwargs: dict[str, Any] = {
        "model": model if isinstance(model, str) else "gp-replay",
        "messages": messages if isinstance(messages, list) else [{"role": "user", "content": "replay"}],
    }
    if isinstance(tools, list):
        usable = [tool for tool in tools if _is_function_tool(tool)]
        if usable:
            kwargs["tools"] = usable
    if body:
        kwargs["extra_body"] = body
    return kwargs


def _is_function_tool(tool: object) -> bool:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return False
    function = tool.get("function")
    return isinstance(function, dict) and isinstance(function.get("name"), str)


# --- the in-memory client -----------------------------------------------------------------------


@contextlib.contextmanager
def _replay_client(raw: RawResponse, budget: float) -> Iterator[openai.OpenAI]:
    """An ``openai.OpenAI`` whose every request is answered with ``raw``, from memory, within ``budget`` s."""
    headers = [(name, value) for name, value in raw.headers if name.lower() not in _FRAMING_HEADERS]
    calls = 0

    def answer(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        if calls > _MAX_CALLS:
            raise httpx2.ConnectError("replay: the client kept asking", request=request)
        pieces = _pieces(raw.body, request, time.monotonic() + budget)
        return httpx2.Response(raw.status, headers=headers, content=pieces, request=request)

    http_client = httpx2.Client(transport=httpx2.MockTransport(answer))
    try:
        yield openai.OpenAI(
            base_url=_BASE_URL, api_key="gp-replay", max_retries=0, timeout=5, http_client=http_client
        )
    finally:
        http_client.close()


def _pieces(body: bytes, request: httpx2.Request, deadline: float) -> Iterator[bytes]:
    """The body as the network would deliver it, and a read timeout once the client is past its deadline."""
    for start in range(0, len(body), _PIECE_BYTES):
        if time.monotonic() > deadline:
            raise httpx2.ReadTimeout("replay: over the time budget", request=request)
        yield body[start : start + _PIECE_BYTES]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warnings (pydantic's serializer warnings on wrong types) and no SDK log lines while replaying."""
    names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] in _SDK_LOGGERS]
    loggers = [logging.getLogger(name) for name in {*_SDK_LOGGERS, *names}]
    disabled = [logger.disabled for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.disabled = True
        try:
            yield
        finally:
            for logger, was in zip(loggers, disabled, strict=True):
                logger.disabled = was


# --- probes that should parse -------------------------------------------------------------------


class _JudgingFault(Exception):
    """gateproof's own comparison failed mid-stream: not something the client did (no impact)."""


def _probe_create(client: openai.OpenAI, raw: RawResponse, kwargs: dict[str, Any]) -> ClientImpact:
    probe = f"{SDK}: chat.completions.create"
    try:
        completion: Any = client.chat.completions.create(**kwargs)
    except Exception as exc:
        return ClientImpact(probe, ImpactVerdict.RAISED, _exception_line(exc))
    return _judge(probe, completion, _wire_json(raw.body), _read_completion, "ChatCompletion")


def _probe_models(client: openai.OpenAI, raw: RawResponse) -> ClientImpact:
    probe = f"{SDK}: models.list"
    try:
        page: Any = client.models.list()
        models = list(page)
    except Exception as exc:
        return ClientImpact(probe, ImpactVerdict.RAISED, _exception_line(exc))

    def read(_page: Any) -> str:
        ids = [model.id for model in models]
        return f"{len(ids)} models"

    return _judge(probe, page, _wire_json(raw.body), read, "SyncPage[Model]")


def _probe_stream(client: openai.OpenAI, raw: RawResponse, kwargs: dict[str, Any]) -> ClientImpact:
    """``create(stream=True)`` iterated to the end, each chunk compared with its ``data:`` on the wire."""
    probe = f"{SDK}: chat.completions.create(stream=True)"
    tally = _StreamTally()
    wire = _wire_events(raw.body)
    lost = ""
    try:
        stream: Any = client.chat.completions.create(stream=True, **kwargs)
        for chunk in stream:
            event = next(wire, None)
            if lost:
                continue
            try:
                tally.add(chunk)
            except Exception as exc:
                return ClientImpact(
                    probe,
                    ImpactVerdict.RAISED,
                    f"chunk {tally.chunks}: a caller reading it gets {_exception_line(exc)}",
                )
            try:
                loss = _loss(chunk, event)
            except Exception as exc:
                raise _JudgingFault from exc
            if loss:
                lost = f"chunk {tally.chunks - 1}: {loss}"
    except _JudgingFault:
        raise
    except Exception as exc:
        return ClientImpact(
            probe, ImpactVerdict.RAISED, f"{_exception_line(exc)} (after {tally.chunks} chunks)"
        )
    if lost:
        return ClientImpact(probe, ImpactVerdict.FIELD_LOST, _clip(lost))
    if not tally.chunks and raw.body.strip():
        return ClientImpact(
            probe, ImpactVerdict.FIELD_LOST, f"no chunk reached the caller from a {len(raw.body)}-byte body"
        )
    return ClientImpact(probe, ImpactVerdict.PARSED, tally.summary())


def _probe_stream_helper(client: openai.OpenAI, raw: RawResponse, kwargs: dict[str, Any]) -> ClientImpact:
    """``chat.completions.stream()``: what its accumulated completion keeps of the streamed deltas."""
    probe = f"{SDK}: chat.completions.stream().get_final_completion()"
    try:
        with client.chat.completions.stream(**kwargs) as stream:
            for _event in stream:
                pass
            final: Any = stream.get_final_completion()
    except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as exc:
        # raised by design for strict tools on these finish reasons, whatever the target
        return ClientImpact(probe, ImpactVerdict.PARSED, f"{type(exc).__name__} by design of the helper")
    except Exception as exc:
        return ClientImpact(probe, ImpactVerdict.RAISED, _exception_line(exc))
    try:
        summary = _read_completion(final)
    except Exception as exc:
        return ClientImpact(
            probe, ImpactVerdict.RAISED, f"a caller reading the completion gets {_exception_line(exc)}"
        )
    loss = _accumulation_loss(_accumulate_wire(raw.body), final) or _type_change(final, _dump(final))
    if loss:
        return ClientImpact(probe, ImpactVerdict.FIELD_LOST, _clip(loss))
    return ClientImpact(probe, ImpactVerdict.PARSED, summary)


def _judge(probe: str, parsed: Any, wire: Any, read: Callable[[Any], str], kind: str) -> ClientImpact:
    """Raised if a caller cannot read ``parsed``, field_lost if it lost or retyped wire values, else parsed."""
    if not isinstance(parsed, pydantic.BaseModel):
        return ClientImpact(
            probe, ImpactVerdict.RAISED, f"the client returned a {type(parsed).__name__}, not a {kind}"
        )
    try:
        summary = read(parsed)
    except Exception as exc:
        return ClientImpact(
            probe, ImpactVerdict.RAISED, f"a caller reading the {kind} gets {_exception_line(exc)}"
        )
    loss = _loss(parsed, wire)
    if loss:
        return ClientImpact(probe, ImpactVerdict.FIELD_LOST, _clip(loss))
    return ClientImpact(probe, ImpactVerdict.PARSED, summary)


# --- the error class ----------------------------------------------------------------------------


@functools.cache
def _error_class(status: int) -> type[openai.APIStatusError]:
    """The class the SDK raises for ``status``, asked of the SDK itself (``_make_status_error``).

    Not a table of our own: the mapping is the SDK's, and a release that changes it changes
    what its callers catch.
    """
    client = openai.OpenAI(base_url=_BASE_URL, api_key="gp-replay", max_retries=0)
    response = httpx2.Response(status, request=httpx2.Request("POST", _BASE_URL))
    return type(client._make_status_error("replay", body=None, response=response))


def _probe_error(
    client: openai.OpenAI, call: str, raw: RawResponse, expected: frozenset[int], kwargs: dict[str, Any]
) -> ClientImpact:
    """The answer should raise the class of an expected status, with the envelope's fields readable."""
    probe = f"{SDK}: {call} (error class)"
    classes = {_error_class(status) for status in expected}
    by_class: dict[str, set[int]] = {}
    for status in sorted(expected):
        by_class.setdefault(_error_class(status).__name__, set()).add(status)
    want = " or ".join(f"{name} ({status_runs(frozenset(codes))})" for name, codes in by_class.items())
    try:
        if call.startswith("models"):
            got: Any = list(client.models.list())
        elif raw.stream:
            got = list(client.chat.completions.create(stream=True, **kwargs))
        else:
            got = client.chat.completions.create(**kwargs)
    except openai.APIStatusError as exc:
        if type(exc) in classes:
            return _judge_error(probe, exc, raw)
        got_class = f"{type(exc).__name__} ({exc.status_code})"
        return ClientImpact(
            probe,
            ImpactVerdict.WRONG_EXCEPTION,
            f"expected {want}, the client got {got_class}",
            owed=want,
            got=got_class,
        )
    except Exception as exc:
        line = _exception_line(exc)
        return ClientImpact(
            probe,
            ImpactVerdict.WRONG_EXCEPTION,
            _clip(f"expected {want}, the client got {line}"),
            owed=want,
            got=_clip(line),
        )
    if isinstance(got, list):
        what = (
            f"a stream of {len(got)} chunks"
            if raw.stream and not call.startswith("models")
            else f"a list of {len(got)} models"
        )
    else:
        what = f"a {type(got).__name__}"
    return ClientImpact(
        probe, ImpactVerdict.WRONG_EXCEPTION, f"expected {want}, the client got {what}", owed=want, got=what
    )


def _judge_error(probe: str, exc: openai.APIStatusError, raw: RawResponse) -> ClientImpact:
    """Right class: did ``.code``, ``.type``, ``.param`` and the message reach the caller?"""
    name = f"{type(exc).__name__} ({exc.status_code}) as expected"
    body = _wire_json(raw.body)
    envelope = isinstance(body, dict) and isinstance(body.get("error"), dict)
    fields = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(fields, dict):
        for attr in ("code", "type", "param"):
            sent = fields.get(attr)
            if sent is None:
                continue
            seen = getattr(exc, attr)
            if seen != (str(sent) if attr == "code" else sent) or not isinstance(seen, str):
                return ClientImpact(
                    probe,
                    ImpactVerdict.FIELD_LOST,
                    _clip(
                        f"{name}, but error.{attr} {_short(sent)} on the wire reads {_short(seen)} as exc.{attr}"
                    ),
                )
        message = fields.get("message")
        if message is not None and not (isinstance(message, str) and message in exc.message):
            return ClientImpact(
                probe,
                ImpactVerdict.FIELD_LOST,
                _clip(f"{name}, but error.message ({_kind(message)}) is not in exc.message {exc.message!r}"),
            )
    detail = f"{name}; .code {_short(exc.code)}, .type {_short(exc.type)}"
    if not envelope:
        detail += " (the body is not an OpenAI error envelope)"
    return ClientImpact(probe, ImpactVerdict.PARSED, _clip(detail))


# --- what a caller reads ------------------------------------------------------------------------


def _read_completion(completion: Any) -> str:
    """Read a (final) completion the way calling code does; raises where that code would."""
    text = calls = 0
    finishes = []
    for choice in completion.choices:
        message = choice.message
        text += len(message.content or "")
        for call in message.tool_calls or []:
            if call.type == "function":
                _ = (call.id, call.function.name, call.function.arguments)
            calls += 1
        finishes.append(str(choice.finish_reason))
    return (
        f"{len(completion.choices)} choices, text {text} chars, {calls} tool calls, "
        f"usage {_usage(completion.usage)}, finish {','.join(finishes) or '-'}"
    )


class _StreamTally:
    """A caller's loop over ``create(stream=True)``: text, tool calls, usage and finish reasons."""

    def __init__(self) -> None:
        self.chunks = 0
        self.text = 0
        self.calls: set[tuple[int, int]] = set()
        self.usage: Any = None
        self.finishes: list[str] = []

    def add(self, chunk: Any) -> None:
        for choice in chunk.choices:
            delta = choice.delta
            self.text += len(delta.content or "")
            for call in delta.tool_calls or []:
                self.calls.add((choice.index, call.index))
            if choice.finish_reason is not None:
                self.finishes.append(str(choice.finish_reason))
        if chunk.usage is not None:
            self.usage = chunk.usage
        self.chunks += 1

    def summary(self) -> str:
        return (
            f"{self.chunks} chunks, text {self.text} chars, {len(self.calls)} tool calls, "
            f"usage {_usage(self.usage)}, finish {','.join(self.finishes) or '-'}"
        )


def _usage(usage: Any) -> str:
    if usage is None:
        return "none"
    return f"{usage.prompt_tokens}/{usage.completion_tokens}/{usage.total_tokens}"


# --- what was lost ------------------------------------------------------------------------------


def _loss(parsed: Any, wire: Any) -> str:
    """The first wire value that is gone or changed in ``parsed``, or that has a type the SDK does not declare."""
    data = _dump(parsed)
    difference = _first_difference(wire, data) if wire is not None else ""
    return difference or _type_change(parsed, data)


def _dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, warnings=False)


def _first_difference(wire: Any, parsed: Any) -> str:
    """Walk the wire JSON (without recursing) and name the first value ``parsed`` does not carry as sent."""
    pending: list[tuple[Any, Any, str]] = [(wire, parsed, "")]
    while pending:
        sent, got, path = pending.pop()
        where = path or "the body"
        if isinstance(sent, dict):
            if not isinstance(got, dict):
                return f"{where}: an object on the wire, {_kind(got)} in the parsed object"
            for key in reversed(list(sent)):
                sub = f"{path}.{key}" if path else str(key)
                if key not in got:
                    return f"{sub} is on the wire but not in the parsed object"
                pending.append((sent[key], got[key], sub))
        elif isinstance(sent, list):
            if not isinstance(got, list) or len(got) != len(sent):
                return f"{where}: {len(sent)} items on the wire, {_kind(got)} in the parsed object"
            pending.extend((sent[i], got[i], f"{path}[{i}]") for i in reversed(range(len(sent))))
        elif not _same_scalar(sent, got):
            return f"{where}: {_short(sent)} on the wire, {_short(got)} in the parsed object"
    return ""


def _same_scalar(sent: Any, got: Any) -> bool:
    if isinstance(sent, bool) or isinstance(got, bool):
        return type(sent) is type(got) and sent == got
    if isinstance(sent, int | float) and isinstance(got, int | float):
        return bool(sent == got)
    return type(sent) is type(got) and bool(sent == got)


def _type_change(model: Any, data: Any) -> str:
    """A value the SDK holds with a type other than the one it declares (it builds models unvalidated)."""
    try:
        type(model).model_validate(data, strict=True)
    except pydantic.ValidationError as exc:
        for error in exc.errors(include_url=False, include_context=False):
            if error["type"] in _TOLERATED_ERRORS or error["input"] is None:
                continue
            return (
                f"{_path(data, error['loc'])}: {_kind(error['input'])} on the wire, "
                f"not the SDK's declared type ({error['msg']})"
            )
    return ""


def _path(data: Any, loc: tuple[int | str, ...]) -> str:
    """A validation location as a wire path, without the union member names pydantic inserts."""
    node, path = data, ""
    for item in loc:
        if isinstance(node, dict) and item in node:
            node, path = node[item], f"{path}.{item}" if path else str(item)
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            node, path = node[item], f"{path}[{item}]"
    return path or "the body"


def _accumulate_wire(body: bytes) -> dict[str, Any]:
    """What a correct accumulation of the wire's chunks holds: text, tool calls, finish reason, usage."""
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for event in _wire_events(body):
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("usage"), dict):
            usage = event["usage"]
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict) or not isinstance(choice.get("index"), int):
                continue
            state = choices.setdefault(
                choice["index"], {"content": "", "finish_reason": None, "tool_calls": {}}
            )
            if choice.get("finish_reason") is not None:
                state["finish_reason"] = choice["finish_reason"]
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            if isinstance(delta.get("content"), str):
                state["content"] += delta["content"]
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("index"), int):
                    _accumulate_call(state["tool_calls"].setdefault(call["index"], {}), call)
    return {"choices": choices, "usage": usage}


def _accumulate_call(state: dict[str, Any], call: dict[str, Any]) -> None:
    """OpenAI sends a call's id and name once and its arguments in pieces."""
    function = call.get("function")
    if not isinstance(function, dict):
        function = {}
    for key, value in (("id", call.get("id")), ("name", function.get("name"))):
        if value is not None:
            state.setdefault(key, value)
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        state["arguments"] = state.get("arguments", "") + arguments


def _accumulation_loss(expected: dict[str, Any], final: Any) -> str:
    """The first streamed value the helper's final completion does not hold as accumulated."""
    for index, state in sorted(expected["choices"].items()):
        if index >= len(final.choices):
            return f"choices[{index}] was streamed but is not in the final completion"
        choice = final.choices[index]
        where = f"choices[{index}]"
        if state["content"] and choice.message.content != state["content"]:
            return f"{where}.message.content: {len(state['content'])} chars streamed, {_short(choice.message.content)} kept"
        if state["finish_reason"] is not None and choice.finish_reason != state["finish_reason"]:
            return f"{where}.finish_reason: {_short(state['finish_reason'])} streamed, {_short(choice.finish_reason)} kept"
        calls = choice.message.tool_calls or []
        for call_index, call in sorted(state["tool_calls"].items()):
            if call_index >= len(calls):
                return f"{where}.message.tool_calls[{call_index}] was streamed but is not in the final completion"
            kept = _dump(calls[call_index])
            kept_function = kept.get("function") or {}
            for key, value in call.items():
                seen = kept.get(key) if key == "id" else kept_function.get(key)
                if seen != value:
                    field = key if key == "id" else f"function.{key}"
                    return f"{where}.message.tool_calls[{call_index}].{field}: {_short(value)} streamed, {_short(seen)} kept"
    if expected["usage"] is not None:
        if final.usage is None:
            return "usage was streamed but the final completion has none"
        difference = _first_difference(expected["usage"], _dump(final.usage))
        if difference:
            return f"usage: {difference}"
    return ""


# --- reading the wire ---------------------------------------------------------------------------


def _wire_json(body: bytes) -> Any:
    """The body as JSON, or None when it is not JSON (or too deep to compare)."""
    try:
        return loads_bounded(body)
    except ValueError:
        return None


def _wire_events(body: bytes) -> Iterator[Any]:
    """The ``data:`` of each SSE event before ``[DONE]``, as JSON (None if not), split as the SDK splits them."""
    for event in SSEDecoder().iter_bytes(iter([body])):
        if event.data.startswith("[DONE]"):
            return
        try:
            yield loads_bounded(event.data)
        except ValueError:
            yield None


# --- wording ------------------------------------------------------------------------------------


def _exception_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    if isinstance(exc, openai.APITimeoutError):
        # nothing but the replay budget can time out a body served from memory
        line += " (still reading when the replay budget ran out)"
    return _clip(line)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else f"{text[: _DETAIL_CHARS - 3]}..."
