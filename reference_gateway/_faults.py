"""Named, deliberate deviations from the contract, for the harness's self-test.

A conformance suite is only worth as much as the bugs it catches. Each :class:`Fault`
below makes the reference gateway wrong in exactly one way, so the self-test can
start ``gateproof gateway --fault NAME`` and demand that some check fails. Without a
fault the gateway is correct; the core calls every hook on :data:`NO_FAULT`, whose
hooks change nothing.

A fault acts through one or more hooks, each a plain function over a value the core
hands it:

- ``request``: the parsed client body, before validation (it may also refuse the request
  by raising a :class:`GatewayError`);
- ``auth``: the outcome of authentication (a principal or the error);
- ``upstream``: the HTTP request about to be sent to the provider;
- ``response``: a complete (non-stream) response body;
- ``stream``: the whole sequence of stream items (chunks, failure, ``[DONE]``);
- ``frames``: the bytes of a stream as they go on the wire, one SSE event per frame;
- ``headers``: the headers of a chat completion response;
- ``error``: how an error is rendered (status, body, headers, media type);
- ``models``: the ``GET /v1/models`` body.

A new fault is one :class:`Fault` entry in ``_CATALOGUE`` plus the check that catches it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from gateproof.openapi import is_gateway_field, load_spec
from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._auth import ANONYMOUS, Principal
from gateproof.reference_gateway._call import ChatCall, UpstreamRequest
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._events import DONE, Chunk, Done, StreamFailure, StreamItem, encode_json

__all__ = ["FAULTS", "NO_FAULT", "Fault", "Hook", "RenderedError", "UnknownFaultError", "get_fault"]


class Hook(StrEnum):
    """The points in the gateway where a fault may act."""

    REQUEST = "request"
    AUTH = "auth"
    UPSTREAM = "upstream"
    RESPONSE = "response"
    STREAM = "stream"
    FRAMES = "frames"
    HEADERS = "headers"
    ERROR = "error"
    MODELS = "models"


_JSON = "application/json"


@dataclass(frozen=True)
class RenderedError:
    """An error as it goes on the wire: a JSON value, or text when the media type is not JSON."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = _JSON

    @classmethod
    def of(cls, error: GatewayError) -> RenderedError:
        """The correct rendering: the error's status, the D13 envelope, its own headers."""
        return cls(error.status, error.envelope(), dict(error.headers))

    def content(self) -> str:
        """The response body text."""
        return encode_json(self.body) if self.media_type == _JSON else str(self.body)


Items = AsyncIterator[StreamItem]
RequestHook = Callable[[dict[str, Any]], dict[str, Any]]
AuthHook = Callable[[Principal | GatewayError], Principal | GatewayError]
UpstreamHook = Callable[[UpstreamRequest, ChatCall], UpstreamRequest]
ResponseHook = Callable[[dict[str, Any]], dict[str, Any]]
StreamHook = Callable[[Items], Items]
Frames = AsyncIterator[bytes]
FramesHook = Callable[[Frames], Frames]
HeadersHook = Callable[[dict[str, str], bool], dict[str, str]]
ErrorHook = Callable[[GatewayError, RenderedError], RenderedError]
ModelsHook = Callable[[dict[str, Any]], dict[str, Any]]


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
    frames: FramesHook | None = None
    headers: HeadersHook | None = None
    error: ErrorHook | None = None
    models: ModelsHook | None = None

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

    def on_frames(self, frames: Frames) -> Frames:
        return self.frames(frames) if self.frames else frames

    def on_headers(self, headers: dict[str, str], streaming: bool) -> dict[str, str]:
        return self.headers(headers, streaming) if self.headers else headers

    def render_error(self, error: GatewayError) -> RenderedError:
        rendered = RenderedError.of(error)
        return self.error(error, rendered) if self.error else rendered

    def on_models(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.models(body) if self.models else body


NO_FAULT = Fault("none", "Behave as the contract says.")


class UnknownFaultError(KeyError):
    """No fault has that name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown fault {self.name!r} (see --list-faults)"


# -- building blocks --------------------------------------------------------------------------------


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON value, so a fault never edits what the core still holds."""
    copied: dict[str, Any] = json.loads(json.dumps(data))
    return copied


def _choices(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [choice for choice in data.get("choices") or [] if isinstance(choice, dict)]


def _deltas(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [choice["delta"] for choice in _choices(data) if isinstance(choice.get("delta"), dict)]


def _tool_call_deltas(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        call for delta in _deltas(data) for call in delta.get("tool_calls") or [] if isinstance(call, dict)
    ]


def _is_finish(item: StreamItem) -> bool:
    return isinstance(item, Chunk) and any(c.get("finish_reason") is not None for c in _choices(item.data))


def _provider_model(model: Any) -> Any:
    """``openai/gpt-4o`` as the provider calls it: ``gpt-4o``."""
    return model.split("/", 1)[1] if isinstance(model, str) and "/" in model else model


def _swap_finish_reason(old: str, new: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        data = _copy(data)
        for choice in _choices(data):
            if choice.get("finish_reason") == old:
                choice["finish_reason"] = new
        return data

    return change


def _map_chunks(change: Callable[[dict[str, Any], int], dict[str, Any] | None]) -> StreamHook:
    """A stream hook that rewrites each chunk (given its position); None drops the chunk."""

    async def hook(items: Items) -> Items:
        position = 0
        async for item in items:
            if isinstance(item, Chunk):
                data = change(_copy(item.data), position)
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
            repeat = _copy(item.data)
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
    body = _copy(body)
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


#: the gateway fields of Edgee's compression (enable_compression, compression_rate, ...) start so
_COMPRESSION = ("enable_compression", "compression_")


def _with_edgee_fields(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    request.json.update({name: value for name, value in call.body.items() if is_gateway_field(name)})
    request.headers.update(call.edgee_headers)
    return request


def _with_compression_fields(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    request.json.update({name: value for name, value in call.body.items() if name.startswith(_COMPRESSION)})
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


def _under_counted(body: dict[str, Any]) -> dict[str, Any]:
    usage = body.get("usage")
    if not isinstance(usage, dict) or not isinstance(usage.get("completion_tokens"), int):
        return body
    if usage["completion_tokens"] < 1 or not isinstance(usage.get("total_tokens"), int):
        return body
    fewer = {
        **usage,
        "completion_tokens": usage["completion_tokens"] - 1,
        "total_tokens": usage["total_tokens"] - 1,
    }
    return {**body, "usage": fewer}


def _without_refusal(body: dict[str, Any]) -> dict[str, Any]:
    body = _copy(body)
    for choice in _choices(body):
        message = choice.get("message")
        if isinstance(message, dict) and "refusal" in message:
            message["refusal"] = None
    return body


def _without_max_tokens(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    request.json.pop("max_tokens", None)
    return request


def _without_tool_call_ids(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    for message in request.json.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "tool":
            message.pop("tool_call_id", None)
    return request


def _with_client_key(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    if call.client_authorization:
        request.headers["Authorization"] = call.client_authorization
    return request


def _usage_forced_for_client(body: dict[str, Any]) -> dict[str, Any]:
    """Writes include_usage into the client's own request, where the relay reads it as the client's wish."""
    options = body.get("stream_options", {})
    if body.get("stream") is not True or not isinstance(options, dict):
        return body
    return {**body, "stream_options": {**options, "include_usage": True}}


def _content_parts_refused(body: dict[str, Any]) -> dict[str, Any]:
    for index, message in enumerate(body.get("messages") or []):
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            raise _errors.invalid_request(f"messages[{index}].content", "content must be a string")
    return body


def _known_request_fields() -> frozenset[str]:
    """The request fields the spec lists: the allow-list of a gateway that forgot D11."""
    schema = load_spec()["components"]["schemas"]["ChatCompletionRequest"]
    return frozenset(schema["properties"])


def _unknown_fields_refused(body: dict[str, Any]) -> dict[str, Any]:
    known = _known_request_fields()
    for name in body:
        if name not in known:
            raise _errors.invalid_request(name, f"Unrecognized request argument supplied: {name}")
    return body


async def _first_content_lost(items: Items) -> Items:
    lost = False
    async for item in items:
        if not lost and isinstance(item, Chunk) and any(delta.get("content") for delta in _deltas(item.data)):
            data = _copy(item.data)
            for delta in _deltas(data):
                delta.pop("content", None)
            lost = True
            item = Chunk(data)
        yield item


async def _usage_before_finish(items: Items) -> Items:
    """Holds the finish chunk back until the usage chunk has gone out (a stream without one is unchanged)."""
    held: StreamItem | None = None
    async for item in items:
        if held is None and _is_finish(item):
            held = item
            continue
        if held is not None and not (isinstance(item, Chunk) and item.is_usage_only):
            yield held
            held = None
        yield item
        if held is not None:
            yield held
            held = None
    if held is not None:
        yield held


def _created_in_ms(data: dict[str, Any]) -> dict[str, Any]:
    created = data.get("created")
    return {**data, "created": created * 1000} if isinstance(created, int) else data


def _later_chunks_name_provider_model(data: dict[str, Any], position: int) -> dict[str, Any]:
    return {**data, "model": _provider_model(data.get("model"))} if position > 0 else data


def _tool_call_without_index(data: dict[str, Any], position: int) -> dict[str, Any]:
    for call in _tool_call_deltas(data):
        call.pop("index", None)
    return data


async def _first_fragment_lost(items: Items) -> Items:
    lost = False
    async for item in items:
        if not lost and isinstance(item, Chunk):
            data = _copy(item.data)
            for call in _tool_call_deltas(data):
                function = call.get("function")
                if not lost and isinstance(function, dict) and function.get("arguments"):
                    function["arguments"] = ""
                    lost = True
            item = Chunk(data)
        yield item


def _tool_calls_removed(data: dict[str, Any], position: int) -> dict[str, Any]:
    for delta in _deltas(data):
        delta.pop("tool_calls", None)
    return _swap_finish_reason("tool_calls", "stop")(data)


async def _error_event_midway(items: Items) -> Items:
    """A side task's failure reported in band, as a D9 error event, while the answer goes on."""
    position = 0
    async for item in items:
        yield item
        if position == 0 and isinstance(item, Chunk):
            warning = _errors.GatewayError(
                500, "server_error", "internal_error", "Usage accounting failed; the answer continues"
            )
            yield Chunk(warning.envelope())
        position += 1


async def _single_newline(frames: Frames) -> Frames:
    async for frame in frames:
        yield frame[:-1] if frame.endswith(b"\n\n") else frame


async def _named_events(frames: Frames) -> Frames:
    async for frame in frames:
        yield b"event: chunk\n" + frame


_DATA = b"data: "


async def _second_event_as_repr(frames: Frames) -> Frames:
    """The classic ``f"data: {chunk}"`` slip: Python's repr of the dict where JSON belongs."""
    position = 0
    async for frame in frames:
        if position == 1 and frame.startswith(_DATA + b"{"):
            payload = json.loads(frame[len(_DATA) :])
            frame = f"data: {payload!r}\n\n".encode()
        position += 1
        yield frame


async def _stale_model_key_first(frames: Frames) -> Frames:
    """A relay that writes the provider's ``model`` and then its own into one object, by hand.

    Python, JavaScript and the OpenAI SDKs keep the last value of a repeated key, so they read the right
    ``openai/gpt-4o`` and nothing looks wrong; a client whose parser keeps the first reads ``gpt-4o``.
    """
    async for frame in frames:
        if frame.startswith(_DATA + b"{"):
            payload = json.loads(frame[len(_DATA) :])
            model = payload.get("model") if isinstance(payload, dict) else None
            if isinstance(model, str):
                stale = encode_json(_provider_model(model)).encode()
                frame = _DATA + b'{"model":' + stale + b"," + frame[len(_DATA) + 1 :]
        yield frame


def _models_without_owner(body: dict[str, Any]) -> dict[str, Any]:
    data = [
        {key: value for key, value in entry.items() if key not in ("object", "owned_by")}
        for entry in body.get("data") or []
        if isinstance(entry, dict)
    ]
    return {**body, "data": data}


def _without_retry_after(rendered: RenderedError) -> RenderedError:
    headers = {name: value for name, value in rendered.headers.items() if name.lower() != "retry-after"}
    return RenderedError(rendered.status, rendered.body, headers, rendered.media_type)


def _code_is_status(error: GatewayError, rendered: RenderedError) -> RenderedError:
    """What a proxy does when it copies the HTTP status into ``code`` (LiteLLM's ``"code": "400"``)."""
    body = _copy(rendered.body)
    body["error"]["code"] = str(rendered.status)
    return RenderedError(rendered.status, body, rendered.headers, rendered.media_type)


def _as_plain_text(error: GatewayError, rendered: RenderedError) -> RenderedError:
    return RenderedError(rendered.status, error.message, rendered.headers, "text/plain")


def _wrong_method_as_not_found(error: GatewayError, rendered: RenderedError) -> RenderedError:
    if error.code != "method_not_allowed":
        return rendered
    missing = _errors.GatewayError(404, "not_found_error", "not_found", "No route for this method and path")
    return RenderedError(404, missing.envelope())


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
        "compression_fields_forwarded",
        "The compression request fields (enable_compression, compression_*) are sent to the provider.",
        upstream=_with_compression_fields,
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
    Fault(
        "models_list_malformed",
        "GET /v1/models lists entries without their `object` and `owned_by` fields.",
        models=_models_without_owner,
    ),
    Fault(
        "error_code_is_status",
        'error.code is the HTTP status as a string ("400") instead of the documented code.',
        error=_code_is_status,
    ),
    Fault(
        "finish_reason_rewritten",
        'A provider\'s finish_reason "length" reaches the client as "stop" (responses and streams).',
        response=_swap_finish_reason("length", "stop"),
        stream=_map_chunks(lambda data, _: _swap_finish_reason("length", "stop")(data)),
    ),
    Fault(
        "upstream_model_echoed",
        "Responses and chunks name the provider's model id (gpt-4o) instead of the requested openai/gpt-4o.",
        response=lambda body: {**body, "model": _provider_model(body.get("model"))},
        stream=_map_chunks(lambda data, _: {**data, "model": _provider_model(data.get("model"))}),
    ),
    Fault(
        "max_tokens_dropped",
        "max_tokens is not forwarded, so the provider writes its whole answer past the client's cap.",
        upstream=_without_max_tokens,
    ),
    Fault(
        "refusal_dropped",
        "message.refusal is lost on the way back, so a refusal arrives as an answer with no text at all.",
        response=_without_refusal,
    ),
    Fault(
        "usage_undercounted",
        "usage.completion_tokens is one short of the provider's count (total_tokens adjusted to match).",
        response=_under_counted,
        stream=_usage_chunk(_under_counted),
    ),
    Fault(
        "retry_after_dropped",
        "A provider's 429 reaches the client without its Retry-After header.",
        error=_error_with_code("provider_rate_limited", _without_retry_after),
    ),
    Fault(
        "tool_call_id_dropped",
        "Tool messages are forwarded to the provider without their tool_call_id.",
        upstream=_without_tool_call_ids,
    ),
    Fault(
        "client_key_forwarded",
        "The client's Authorization header goes to the provider instead of the gateway's own credential.",
        upstream=_with_client_key,
    ),
    Fault(
        "first_delta_dropped",
        "The first content delta of a stream is lost, so the streamed text misses its beginning.",
        stream=_first_content_lost,
    ),
    Fault(
        "sse_single_newline",
        "Stream events end with a single newline instead of a blank line.",
        frames=_single_newline,
    ),
    Fault(
        "sse_named_events",
        "Every stream event carries an `event: chunk` line.",
        frames=_named_events,
    ),
    Fault(
        "chunk_not_json",
        "The second event of a stream is written as a Python dict (single quotes, None), not as JSON.",
        frames=_second_event_as_repr,
    ),
    Fault(
        "duplicate_model_key",
        "Every stream chunk names `model` twice, the provider's gpt-4o before the right openai/gpt-4o.",
        frames=_stale_model_key_first,
    ),
    Fault(
        "chunk_model_changes",
        "Only the first chunk names openai/gpt-4o; later chunks carry the provider's own id (gpt-4o).",
        stream=_map_chunks(_later_chunks_name_provider_model),
    ),
    Fault(
        "chunk_created_changes",
        "The closing usage chunk gives `created` in milliseconds while the other chunks use seconds.",
        stream=_usage_chunk(_created_in_ms),
    ),
    Fault(
        "usage_chunk_unrequested",
        "The include_usage the gateway forces upstream leaks to the client, which gets a usage chunk it did not ask for.",
        request=_usage_forced_for_client,
    ),
    Fault(
        "usage_chunk_early",
        "The usage chunk is sent before the chunk carrying finish_reason instead of after it.",
        stream=_usage_before_finish,
    ),
    Fault(
        "tool_call_index_missing",
        "Streamed tool-call deltas have no `index`.",
        stream=_map_chunks(_tool_call_without_index),
    ),
    Fault(
        "tool_call_fragment_lost",
        "The first non-empty arguments fragment of a streamed tool call is lost, so the arguments are not JSON.",
        stream=_first_fragment_lost,
    ),
    Fault(
        "tool_finish_reason_stop",
        'A stream that carried tool calls finishes with "stop" instead of "tool_calls".',
        stream=_map_chunks(lambda data, _: _swap_finish_reason("tool_calls", "stop")(data)),
    ),
    Fault(
        "tool_calls_dropped_in_stream",
        'Streams lose their tool-call deltas and finish with "stop" (the non-stream answer keeps them).',
        stream=_map_chunks(_tool_calls_removed),
    ),
    Fault(
        "error_event_in_stream",
        "A healthy stream carries an error event after its first chunk, then goes on to [DONE].",
        stream=_error_event_midway,
    ),
    Fault(
        "validation_422",
        "Schema violations are answered 422 (as FastAPI does) instead of 400 invalid_request.",
        error=_error_with_code(
            "invalid_request", lambda r: RenderedError(422, r.body, r.headers, r.media_type)
        ),
    ),
    Fault(
        "error_text_plain",
        "Errors are sent as text/plain holding only the message, not as the JSON envelope.",
        error=_as_plain_text,
    ),
    Fault(
        "wrong_method_404",
        "A known path with the wrong method is answered 404 instead of 405 with an Allow header.",
        error=_wrong_method_as_not_found,
    ),
    Fault(
        "unknown_fields_rejected",
        "Body fields the spec does not list (temperature, seed, ...) are refused with 400 instead of forwarded.",
        request=_unknown_fields_refused,
    ),
    Fault(
        "content_parts_rejected",
        "A message whose content is a list of text parts is refused with 400, as if content had to be a string.",
        request=_content_parts_refused,
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
