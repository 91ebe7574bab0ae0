"""Named, deliberate deviations from the contract, for the harness's self-test.

A conformance suite is only worth as much as the bugs it catches. Each :class:`Fault`
below makes the reference gateway wrong in exactly one way, so the self-test can
start ``gateproof gateway --fault NAME`` and demand that some check fails. Without a
fault the gateway is correct; the core calls every hook on :data:`NO_FAULT`, whose
hooks change nothing.

A fault acts through one or more hooks, each a plain function over a value the core
hands it:

- ``request``: the parsed client body, before validation;
- ``auth``: the outcome of authentication (a principal or the error);
- ``upstream``: the HTTP request about to be sent to the provider;
- ``response``: a complete (non-stream) response body;
- ``stream``: the whole sequence of stream items (chunks, failure, ``[DONE]``);
- ``headers``: the headers of a chat completion response;
- ``error``: how an error is rendered (status, body, headers).

A new fault is one :class:`Fault` entry in ``_CATALOGUE`` plus the check that catches it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from gateproof.reference_gateway._auth import ANONYMOUS, Principal
from gateproof.reference_gateway._call import ChatCall, UpstreamRequest, is_edgee_field
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._events import DONE, Chunk, Done, StreamFailure, StreamItem

__all__ = ["FAULTS", "NO_FAULT", "Fault", "Hook", "RenderedError", "UnknownFaultError", "get_fault"]


class Hook(StrEnum):
    """The points in the gateway where a fault may act."""

    REQUEST = "request"
    AUTH = "auth"
    UPSTREAM = "upstream"
    RESPONSE = "response"
    STREAM = "stream"
    HEADERS = "headers"
    ERROR = "error"


@dataclass(frozen=True)
class RenderedError:
    """An error as it goes on the wire."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, error: GatewayError) -> RenderedError:
        """The correct rendering: the error's status, the D13 envelope, its own headers."""
        return cls(error.status, error.envelope(), dict(error.headers))


Items = AsyncIterator[StreamItem]
RequestHook = Callable[[dict[str, Any]], dict[str, Any]]
AuthHook = Callable[[Principal | GatewayError], Principal | GatewayError]
UpstreamHook = Callable[[UpstreamRequest, ChatCall], UpstreamRequest]
ResponseHook = Callable[[dict[str, Any]], dict[str, Any]]
StreamHook = Callable[[Items], Items]
HeadersHook = Callable[[dict[str, str], bool], dict[str, str]]
ErrorHook = Callable[[GatewayError, RenderedError], RenderedError]


@dataclass(frozen=True)
class Fault:
    """One named deviation; the hooks it leaves as None behave correctly."""

    name: str
    description: str
    request: RequestHook | None = None
    auth: AuthHook | None = None
    upstream: UpstreamHook | None = None
    response: ResponseHook | None = None
    stream: StreamHook | None = None
    headers: HeadersHook | None = None
    error: ErrorHook | None = None

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The hooks this fault acts on."""
        return tuple(hook for hook in Hook if getattr(self, hook.value) is not None)

    # The core calls these on every request; each is the identity unless the fault hooks in.

    def on_request(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request(body) if self.request else body

    def on_auth(self, outcome: Principal | GatewayError) -> Principal | GatewayError:
        return self.auth(outcome) if self.auth else outcome

    def on_upstream(self, request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
        return self.upstream(request, call) if self.upstream else request

    def on_response(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.response(body) if self.response else body

    def on_stream(self, items: Items) -> Items:
        return self.stream(items) if self.stream else items

    def on_headers(self, headers: dict[str, str], streaming: bool) -> dict[str, str]:
        return self.headers(headers, streaming) if self.headers else headers

    def render_error(self, error: GatewayError) -> RenderedError:
        rendered = RenderedError.of(error)
        return self.error(error, rendered) if self.error else rendered


NO_FAULT = Fault("none", "Behave as the contract says.")


class UnknownFaultError(KeyError):
    """No fault has that name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown fault {self.name!r} (see --list-faults)"


# -- building blocks --------------------------------------------------------------------------------


def _map_chunks(change: Callable[[dict[str, Any], int], dict[str, Any] | None]) -> StreamHook:
    """A stream hook that rewrites each chunk (given its position); None drops the chunk."""

    async def hook(items: Items) -> Items:
        position = 0
        async for item in items:
            if isinstance(item, Chunk):
                data = change(json.loads(json.dumps(item.data)), position)
                position += 1
                if data is not None:
                    yield Chunk(data)
            else:
                yield item

    return hook


def _replace_items(change: Callable[[StreamItem], StreamItem | None]) -> StreamHook:
    async def hook(items: Items) -> Items:
        async for item in items:
            replaced = change(item)
            if replaced is not None:
                yield replaced

    return hook


def _usage_chunk(change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> StreamHook:
    """A stream hook that rewrites only the closing usage chunk."""
    return _map_chunks(lambda data, _: change(data) if Chunk(data).is_usage_only else data)


def _error_with_code(code: str, change: Callable[[RenderedError], RenderedError]) -> ErrorHook:
    return lambda error, rendered: change(rendered) if error.code == code else rendered


# -- the individual deviations ------------------------------------------------------------------------


def _drop_role(data: dict[str, Any], position: int) -> dict[str, Any]:
    if position == 0:
        for choice in data.get("choices") or []:
            delta = choice.get("delta")
            if isinstance(delta, dict):
                delta.pop("role", None)
    return data


async def _double_finish(items: Items) -> Items:
    async for item in items:
        yield item
        if isinstance(item, Chunk) and any(
            choice.get("finish_reason") is not None for choice in item.data.get("choices") or []
        ):
            repeat = json.loads(json.dumps(item.data))
            for choice in repeat["choices"]:
                choice["delta"] = {}
            yield Chunk(repeat)


async def _buffered(items: Items) -> Items:
    collected = [item async for item in items]
    for item in collected:
        yield item


def _wrong_total_in_body(body: dict[str, Any]) -> dict[str, Any]:
    usage = body.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
        body = {**body, "usage": {**usage, "total_tokens": usage["total_tokens"] + 7}}
    return body


def _tool_arguments_as_objects(body: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    for choice in body.get("choices") or []:
        for call in (choice.get("message") or {}).get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    function["arguments"] = json.loads(arguments)
                except ValueError:
                    function["arguments"] = {"text": arguments}
    return body


def _with_prefixed_model(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    request.json["model"] = call.route.model_id
    return request


def _with_edgee_fields(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    request.json.update({name: value for name, value in call.body.items() if is_edgee_field(name)})
    request.headers.update(call.edgee_headers)
    return request


def _without_tools(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    for name in ("tools", "tool_choice", "parallel_tool_calls"):
        request.json.pop(name, None)
    return request


def _drop_max_tokens_zero(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("max_tokens")
    if type(value) is int and value == 0:
        body = {name: v for name, v in body.items() if name != "max_tokens"}
    return body


def _anyone(outcome: Principal | GatewayError) -> Principal | GatewayError:
    return ANONYMOUS if isinstance(outcome, GatewayError) else outcome


def _json_content_type(headers: dict[str, str], streaming: bool) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json"} if streaming else headers


def _without_provider_header(headers: dict[str, str], streaming: bool) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() != "x-edgee-provider"}


_CATALOGUE: tuple[Fault, ...] = (
    Fault(
        "no_done",
        "Streams end without the closing `data: [DONE]` event.",
        stream=_replace_items(lambda item: None if isinstance(item, Done) else item),
    ),
    Fault(
        "usage_chunk_missing",
        "No usage chunk at the end of a stream, even when stream_options.include_usage asks for it.",
        stream=_usage_chunk(lambda data: None),
    ),
    Fault(
        "usage_chunk_with_choices",
        "The closing usage chunk carries a non-empty choices list instead of `choices: []`.",
        stream=_usage_chunk(
            lambda data: {**data, "choices": [{"index": 0, "delta": {}, "finish_reason": None}]}
        ),
    ),
    Fault(
        "usage_total_wrong",
        "usage.total_tokens is not prompt_tokens + completion_tokens (responses and usage chunks).",
        response=_wrong_total_in_body,
        stream=_usage_chunk(_wrong_total_in_body),
    ),
    Fault(
        "object_wrong",
        'Responses say object "chat.completion.chunk" and stream chunks say "chat.completion".',
        response=lambda body: {**body, "object": "chat.completion.chunk"},
        stream=_map_chunks(lambda data, _: {**data, "object": "chat.completion"}),
    ),
    Fault(
        "role_missing",
        "The first chunk of a stream has no delta.role.",
        stream=_map_chunks(_drop_role),
    ),
    Fault(
        "double_finish",
        "After the chunk with a finish_reason, a second chunk repeats a non-null finish_reason.",
        stream=_double_finish,
    ),
    Fault(
        "invalid_json_500",
        "A body that is not JSON is answered 500 instead of 400 invalid_json.",
        error=_error_with_code("invalid_json", lambda r: RenderedError(500, r.body, r.headers)),
    ),
    Fault(
        "accept_max_tokens_zero",
        "max_tokens: 0 is accepted (not 400) and the request is forwarded without max_tokens.",
        request=_drop_max_tokens_zero,
    ),
    Fault(
        "no_auth",
        "Any key, or none at all, is accepted on chat completions.",
        auth=_anyone,
    ),
    Fault(
        "error_not_enveloped",
        'Error bodies are {"message": ...} without the {"error": {...}} envelope.',
        error=lambda error, r: RenderedError(r.status, {"message": error.message}, r.headers),
    ),
    Fault(
        "tool_args_object",
        "Non-stream tool_calls carry function.arguments as a JSON object instead of a string.",
        response=_tool_arguments_as_objects,
    ),
    Fault(
        "sse_wrong_content_type",
        "Streams are sent with Content-Type application/json instead of text/event-stream.",
        headers=_json_content_type,
    ),
    Fault(
        "buffered_stream",
        "The whole stream is collected from the provider and only then sent to the client.",
        stream=_buffered,
    ),
    Fault(
        "model_prefix_forwarded",
        "The provider is asked for the public id (openai/gpt-4o) instead of its own (gpt-4o).",
        upstream=_with_prefixed_model,
    ),
    Fault(
        "edgee_fields_forwarded",
        "edgee_* / tags / enable_debug body fields and X-Edgee-* headers are sent to the provider.",
        upstream=_with_edgee_fields,
    ),
    Fault(
        "chunk_id_changes",
        "Every chunk of a stream gets a different id.",
        stream=_map_chunks(lambda data, position: {**data, "id": f"{data.get('id', 'chunk')}-{position}"}),
    ),
    Fault(
        "tools_dropped",
        "tools and tool_choice are not forwarded to the provider.",
        upstream=_without_tools,
    ),
    Fault(
        "stream_error_as_done",
        "A provider failure in mid-stream ends the stream cleanly with `data: [DONE]` (no error event).",
        stream=_replace_items(lambda item: DONE if isinstance(item, StreamFailure) else item),
    ),
    Fault(
        "provider_header_missing",
        "Responses that reached a provider carry no X-Edgee-Provider header.",
        headers=_without_provider_header,
    ),
    Fault(
        "unknown_model_404",
        "A well-formed model id that is not served is answered 404 instead of 400 model_not_found.",
        error=_error_with_code("model_not_found", lambda r: RenderedError(404, r.body, r.headers)),
    ),
)


def _index(catalogue: tuple[Fault, ...]) -> Mapping[str, Fault]:
    faults: dict[str, Fault] = {}
    for fault in catalogue:
        if fault.name in faults or fault.name == NO_FAULT.name:
            raise ValueError(f"fault name {fault.name!r} is used twice")
        if not fault.hooks:
            raise ValueError(f"fault {fault.name!r} acts on no hook")
        faults[fault.name] = fault
    return MappingProxyType(faults)


#: every fault, by name (read-only)
FAULTS: Mapping[str, Fault] = _index(_CATALOGUE)


def get_fault(name: str | None) -> Fault:
    """The fault called ``name``; None or ``"none"`` is the correct gateway."""
    if name is None or name == NO_FAULT.name:
        return NO_FAULT
    try:
        return FAULTS[name]
    except KeyError:
        raise UnknownFaultError(name) from None
