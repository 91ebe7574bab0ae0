"""The gateway fault catalogue: every deliberate deviation the self-test proves a check against.

Each entry of ``_CATALOGUE`` is one :class:`Fault` record: its name, what it breaks, the hooks
or middleware it acts through, and the (check, scenario) pairs that catch it. Adding a fault is
adding one record here (and, when no check catches it yet, the check).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from gateproof.openapi import (
    FALLBACK_HEADER,
    FALLBACK_USED_VALUES,
    PROVIDER_HEADER,
    count_chat_prompt,
    is_gateway_field,
    load_spec,
)
from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._auth import ANONYMOUS, Principal
from gateproof.reference_gateway._call import ChatCall, UpstreamRequest
from gateproof.reference_gateway._compression_report import chat_compression
from gateproof.reference_gateway._config import GatewayConfig
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._events import DONE, Chunk, Done, StreamFailure, StreamItem, encode_json
from gateproof.reference_gateway._hooks import Items, ResilienceHook, StreamHook, TranslationHook
from gateproof.reference_gateway._resilience import ResilienceRules
from gateproof.reference_gateway.providers import TranslationRules
from gateproof.selftest._fault import CONVERSATIONS, GENERATED, Fault, UnknownFaultError
from gateproof.selftest._load_faults import LOAD_FAULTS
from gateproof.selftest._wire import ErrorRewrite, WireError

__all__ = ["FAULTS", "NO_FAULT", "get_fault"]

#: the correct gateway (``--fault none``, or no ``--fault``): no hook, no middleware
NO_FAULT = Fault("none", "Behave as the contract says.")

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


def _error_with_code(code: str, change: ErrorRewrite) -> ErrorRewrite:
    return lambda error: change(error) if error.code == code else error


def _status(status: int) -> ErrorRewrite:
    return lambda error: dataclasses.replace(error, status=status)


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


def _without_edge_tools(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    tools = request.json.get("tools")
    if isinstance(tools, list):
        kept = [tool for tool in tools if _tool_name(tool) not in call.edge_tools]
        if kept:
            request.json["tools"] = kept
        else:
            request.json.pop("tools", None)
    return request


def _tool_name(tool: Any) -> Any:
    function = tool.get("function") if isinstance(tool, dict) else None
    return function.get("name") if isinstance(function, dict) else None


def _drop_max_tokens_zero(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("max_tokens")
    if type(value) is int and value == 0:
        body = {name: v for name, v in body.items() if name != "max_tokens"}
    return body


def _every_model_to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """A routing table that ignores the author: every model is served as ``openai/gpt-4o``."""
    model = body.get("model")
    if isinstance(model, str) and "/" in model and not model.startswith("openai/"):
        body = {**body, "model": "openai/gpt-4o"}
    return body


def _history_dropped(body: dict[str, Any]) -> dict[str, Any]:
    """A gateway that trims the conversation to its instructions and the last message."""
    messages = body.get("messages")
    if not isinstance(messages, list) or len(messages) < 3:
        return body
    kept = [m for m in messages[:-1] if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    return {**body, "messages": [*kept, messages[-1]]}


def _anyone(outcome: Principal | GatewayError) -> Principal | GatewayError:
    return ANONYMOUS if isinstance(outcome, GatewayError) else outcome


def _json_content_type(headers: dict[str, str], streaming: bool) -> dict[str, str]:
    return {**headers, "content-type": "application/json"} if streaming else headers


def _without_provider_header(headers: dict[str, str], streaming: bool) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name != PROVIDER_HEADER.lower()}


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


def _single_newline(frame: bytes, position: int) -> bytes:
    return frame[:-1] if frame.endswith(b"\n\n") else frame


def _named_events(frame: bytes, position: int) -> bytes:
    return b"event: chunk\n" + frame


_DATA = b"data: "


def _second_event_as_repr(frame: bytes, position: int) -> bytes:
    """The classic ``f"data: {chunk}"`` slip: Python's repr of the dict where JSON belongs."""
    if position == 1 and frame.startswith(_DATA + b"{"):
        payload = json.loads(frame[len(_DATA) :])
        frame = f"data: {payload!r}\n\n".encode()
    return frame


def _stale_model_key_first(frame: bytes, position: int) -> bytes:
    """A relay that writes the provider's ``model`` and then its own into one object, by hand.

    Python, JavaScript and the OpenAI SDKs keep the last value of a repeated key, so they read the right
    ``openai/gpt-4o`` and nothing looks wrong; a client whose parser keeps the first reads ``gpt-4o``.
    """
    if frame.startswith(_DATA + b"{"):
        payload = json.loads(frame[len(_DATA) :])
        model = payload.get("model") if isinstance(payload, dict) else None
        if isinstance(model, str):
            stale = encode_json(_provider_model(model)).encode()
            frame = _DATA + b'{"model":' + stale + b"," + frame[len(_DATA) + 1 :]
    return frame


def _models_without_owner(body: dict[str, Any]) -> dict[str, Any]:
    data = [
        {key: value for key, value in entry.items() if key not in ("object", "owned_by")}
        for entry in body.get("data") or []
        if isinstance(entry, dict)
    ]
    return {**body, "data": data}


def _without_retry_after(error: WireError) -> WireError:
    headers = {name: value for name, value in error.headers.items() if name != "retry-after"}
    return dataclasses.replace(error, headers=headers)


def _code_is_status(error: WireError) -> WireError:
    """What a proxy does when it copies the HTTP status into ``code`` (LiteLLM's ``"code": "400"``)."""
    if not error.error:
        return error
    body = _copy(error.body)
    body["error"]["code"] = str(error.status)
    return dataclasses.replace(error, body=body)


def _as_plain_text(error: WireError) -> WireError:
    return dataclasses.replace(error, body=error.message, media_type="text/plain")


def _wrong_method_as_not_found(error: WireError) -> WireError:
    if error.code != "method_not_allowed":
        return error
    missing = _errors.GatewayError(404, "not_found_error", "not_found", "No route for this method and path")
    return WireError(404, missing.envelope())


# -- compression, tags and debug (the Edgee per-request fields, D1-D3, D7, D8) ---------------------------

#: the per-request fields as a fault finds them: on the body, or on the stream's last chunk (D1)
_COMPRESSION_FIELD = "compression"
_DEBUG_FIELD = "debug"


def _with_field(
    name: str, change: Callable[[dict[str, Any]], None]
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A body/chunk rewrite that calls ``change`` (in place, on a copy) when the payload carries ``name``."""

    def rewrite(data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data.get(name), dict):
            return data
        data = _copy(data)
        change(data)
        return data

    return rewrite


def _prompt_of(data: dict[str, Any]) -> int:
    usage = data.get("usage")
    value = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return value if isinstance(value, int) else 0


def _reduction_over_compressed(data: dict[str, Any]) -> None:
    """saved / the compressed prompt (the wrong denominator) instead of saved / the original."""
    info, prompt = data[_COMPRESSION_FIELD], _prompt_of(data)
    if prompt:
        info["reduction"] = min(100.0, round(info["saved_tokens"] * 100 / prompt, 2))


def _reduction_unrounded(data: dict[str, Any]) -> None:
    info, prompt = data[_COMPRESSION_FIELD], _prompt_of(data)
    saved = info["saved_tokens"]
    if saved:
        info["reduction"] = saved * 100 / (prompt + saved) + 1e-7


def _prompt_tokens_uncompressed(data: dict[str, Any]) -> None:
    saved, usage = data[_COMPRESSION_FIELD]["saved_tokens"], data.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        usage["prompt_tokens"] += saved
        usage["total_tokens"] = usage.get("total_tokens", 0) + saved


def _saved_in_characters(data: dict[str, Any]) -> None:
    """saved_tokens as characters removed (about four a token); reduction and cost follow from it."""
    info, prompt = data[_COMPRESSION_FIELD], _prompt_of(data)
    saved = info["saved_tokens"] * 4
    info["saved_tokens"], info["cost_savings"] = saved, info["cost_savings"] * 4
    if saved:
        info["reduction"] = min(100.0, round(saved * 100 / (prompt + saved), 2))


def _set_compression(name: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[_COMPRESSION_FIELD][name] = value(data[_COMPRESSION_FIELD][name])

    return change


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data.pop(name, None)

    return change


_ZERO_COMPRESSION = {"saved_tokens": 0, "cost_savings": 0, "reduction": 0, "time_ms": 0}


def _compression_unasked(body: dict[str, Any]) -> dict[str, Any]:
    return body if _COMPRESSION_FIELD in body else {**body, _COMPRESSION_FIELD: dict(_ZERO_COMPRESSION)}


def _compression_on_first_chunk(data: dict[str, Any], position: int) -> dict[str, Any]:
    return {**data, _COMPRESSION_FIELD: dict(_ZERO_COMPRESSION)} if position == 0 else data


async def _compression_before_usage(items: Items) -> Items:
    """The D1 fields on a chunk of their own, sent before the usage chunk instead of on it."""
    async for item in items:
        data = item.data if isinstance(item, Chunk) else None
        if data is not None and _COMPRESSION_FIELD in data and data.get("usage") is not None:
            yield Chunk({name: value for name, value in data.items() if name != "usage"})
            yield Chunk({name: value for name, value in data.items() if name != _COMPRESSION_FIELD})
        else:
            yield item


def _saving_at_output_price(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    """cost_savings priced with the model's output price (the wrong column of the price list)."""
    result = call.trace.compression
    if result is not None and _COMPRESSION_FIELD in call.extras:
        model = call.route.model
        wrong = dataclasses.replace(model, input_price_per_mtok=model.output_price_per_mtok)
        messages, tools = request.json.get("messages") or [], request.json.get("tools") or []
        call.extras.defer(
            _COMPRESSION_FIELD, chat_compression(result, wrong, lambda: count_chat_prompt(messages, tools))
        )
    return request


def _compressed(call: ChatCall) -> bool:
    return call.trace.compression is not None


def _tool_contents(request: UpstreamRequest) -> list[dict[str, Any]]:
    return [
        message
        for message in request.json.get("messages") or []
        if isinstance(message, dict)
        and message.get("role") == "tool"
        and isinstance(message.get("content"), str)
    ]


def _error_lines_dropped(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    """A compressor that files error lines under noise: every tool-result line naming an error goes."""
    if _compressed(call):
        for message in _tool_contents(request):
            kept = [line for line in message["content"].splitlines() if "error" not in line.lower()]
            message["content"] = "\n".join(kept)
    return request


def _prompt_padded(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    """A compressor whose markup costs more than it saves: a banner longer than the saving."""
    compression = call.trace.compression
    messages = [m for m in request.json.get("messages") or [] if isinstance(m, dict)]
    first = next((m for m in messages if isinstance(m.get("content"), str)), None)
    if compression is not None and first is not None:
        banner = "[compressed by the gateway] " + "pad " * (2 * compression.saved_tokens + 64)
        first["content"] = banner + "\n" + first["content"]
    return request


def _compress_counts_unframed(body: dict[str, Any]) -> dict[str, Any]:
    """/v1/compress counting its compressed prompt without the 3 framing tokens of each message."""
    body = _copy(body)
    info = body.get(_COMPRESSION_FIELD)
    if isinstance(info, dict) and isinstance(info.get("compressed_input_tokens"), int):
        framing = 3 * len(body.get("messages") or [])
        info["compressed_input_tokens"] = max(0, info["compressed_input_tokens"] - framing)
    return body


def _with_tags(request: UpstreamRequest, call: ChatCall) -> UpstreamRequest:
    if call.tags:
        request.json["tags"] = list(call.tags)
        request.headers["X-Edgee-Tags"] = ",".join(call.tags)
    return request


def _debug_unasked(body: dict[str, Any]) -> dict[str, Any]:
    if _DEBUG_FIELD in body:
        return body
    model = body.get("model")
    debug = {
        "request_id": "req_" + uuid.uuid4().hex[:24],
        "provider": model.split("/", 1)[0] if isinstance(model, str) else "unknown",
        "upstream_model": _provider_model(model),
        "timings_ms": {},
    }
    return {**body, _DEBUG_FIELD: debug}


def _debug_names_public_model(data: dict[str, Any]) -> None:
    data[_DEBUG_FIELD]["upstream_model"] = data.get("model")


def _in_chunks(change: Callable[[dict[str, Any]], dict[str, Any]]) -> StreamHook:
    return _map_chunks(lambda data, _: change(data))


# -- translation bugs inside the dialect adapters (one TranslationRules switch each) ---------------------


def _rule_off(name: str) -> TranslationHook:
    """A translation hook that breaks the one rule ``name`` (a TranslationRules field)."""
    if name not in {f.name for f in dataclasses.fields(TranslationRules)}:
        raise ValueError(f"no translation rule {name!r}")
    return lambda rules: dataclasses.replace(rules, **{name: False})


# -- bad days: retries, fallbacks, timeouts and cancellation (D44-D48) ----------------------------------


def _policy(**changes: Any) -> ResilienceHook:
    """A resilience hook that changes some of the retry and fallback switches (ResilienceRules fields)."""
    unknown = set(changes) - {f.name for f in dataclasses.fields(ResilienceRules)}
    if unknown:
        raise ValueError(f"no resilience rule {sorted(unknown)}")
    return lambda rules: dataclasses.replace(rules, **changes)


#: a stall the self-test's mock never reaches: a gateway with this idle timeout waits any pause out
_NEVER_S = 3600.0


def _idle_timeout_off(config: GatewayConfig) -> GatewayConfig:
    limits = dataclasses.replace(config.limits, stream_idle_timeout_s=_NEVER_S)
    return dataclasses.replace(config, limits=limits)


#: how long a stream may last in all under ``stream_timed_whole`` (the self-test's drip lasts longer)
_WHOLE_STREAM_S = 2.0


async def _whole_stream_deadline(items: Items) -> Items:
    """The idle timeout applied to the whole stream: a steady but long answer is cut off."""
    began = time.monotonic()
    async for item in items:
        if time.monotonic() - began > _WHOLE_STREAM_S:
            yield StreamFailure(_errors.provider_timeout("the provider", _WHOLE_STREAM_S))
            return
        yield item


def _empty_200_for_provider_error(error: WireError) -> WireError:
    """A relay that reads the provider's failure as "no content" and answers 200 with nothing."""
    if error.status != 502 or error.code != "provider_error":
        return error
    return WireError(200, None, error.headers)


def _rate_limit_as_provider_error(error: WireError) -> WireError:
    """Every provider failure becomes a 502: the client no longer knows to back off, nor for how long."""
    if error.code != "provider_rate_limited":
        return error
    failed = _errors.provider_error("the provider", error.message)
    headers = {name: value for name, value in error.headers.items() if name != "retry-after"}
    return WireError(502, failed.envelope(), headers)


_FALLBACK = FALLBACK_HEADER.lower()


def _without_fallback_header(headers: dict[str, str], streaming: bool) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name != _FALLBACK}


def _fallback_header_always(headers: dict[str, str], streaming: bool) -> dict[str, str]:
    """Every answer a provider gave says a fallback answered it (a header set once, for all routes)."""
    if PROVIDER_HEADER.lower() not in headers or _FALLBACK in headers:
        return headers
    return {**headers, _FALLBACK: FALLBACK_USED_VALUES[0]}


_CATALOGUE: tuple[Fault, ...] = (
    Fault(
        "no_done",
        "Streams end without the closing `data: [DONE]` event.",
        stream=_replace_items(lambda item: None if isinstance(item, Done) else item),
        caught_by=(("done_terminates_stream", "stream_basic"),),
    ),
    Fault(
        "usage_chunk_missing",
        "No usage chunk at the end of a stream, even when stream_options.include_usage asks for it.",
        stream=_usage_chunk(lambda data: None),
        caught_by=(("usage_chunk_present", "stream_include_usage"),),
    ),
    Fault(
        "usage_chunk_with_choices",
        "The closing usage chunk carries a non-empty choices list instead of `choices: []`.",
        stream=_usage_chunk(
            lambda data: {**data, "choices": [{"index": 0, "delta": {}, "finish_reason": None}]}
        ),
        caught_by=(("usage_chunk_empty_choices", "stream_include_usage"),),
    ),
    Fault(
        "usage_total_wrong",
        "usage.total_tokens is not prompt_tokens + completion_tokens (responses and usage chunks).",
        response=_wrong_total_in_body,
        stream=_usage_chunk(_wrong_total_in_body),
        caught_by=(
            ("response_usage_totals_add_up", "chat_basic"),
            ("usage_totals_add_up", "stream_include_usage"),
        ),
    ),
    Fault(
        "object_wrong",
        'Responses say object "chat.completion.chunk" and stream chunks say "chat.completion".',
        response=lambda body: {**body, "object": "chat.completion.chunk"},
        stream=_map_chunks(lambda data, _: {**data, "object": "chat.completion"}),
        # the chunks' schema issue is chunk_object_type's failure: chunk_schema_conformance skips it
        caught_by=(
            ("response_schema_conformance", "chat_basic"),
            ("chunk_object_type", "stream_basic"),
        ),
    ),
    Fault(
        "role_missing",
        "The first chunk of a stream has no delta.role.",
        stream=_map_chunks(_drop_role),
        caught_by=(("first_chunk_has_role", "stream_basic"),),
    ),
    Fault(
        "double_finish",
        "After the chunk with a finish_reason, a second chunk repeats a non-null finish_reason.",
        stream=_double_finish,
        caught_by=(("single_finish_reason", "stream_basic"),),
    ),
    Fault(
        "invalid_json_500",
        "A body that is not JSON is answered 500 instead of 400 invalid_json.",
        error=_error_with_code("invalid_json", _status(500)),
        caught_by=(
            ("not_a_server_error", "invalid_json"),
            ("not_a_server_error", GENERATED),
        ),
    ),
    Fault(
        "accept_max_tokens_zero",
        "max_tokens: 0 is accepted (not 400) and the request is forwarded without max_tokens.",
        request=_drop_max_tokens_zero,
        caught_by=(
            ("status_code_expected", "max_tokens_zero"),
            ("negative_data_rejection", GENERATED),
        ),
    ),
    Fault(
        "no_auth",
        "Any key, or none at all, is accepted on chat completions.",
        auth=_anyone,
        caught_by=(
            ("status_code_expected", "auth_missing"),
            ("ignored_auth", GENERATED),
        ),
    ),
    Fault(
        "error_not_enveloped",
        'Error bodies are {"message": ...} without the {"error": {...}} envelope.',
        error=lambda error: (
            dataclasses.replace(error, body={"message": error.message}) if error.error else error
        ),
        caught_by=(
            ("error_body_conforms", "unknown_model"),
            ("response_schema_conformance", GENERATED),
        ),
    ),
    Fault(
        "tool_args_object",
        "Non-stream tool_calls carry function.arguments as a JSON object instead of a string.",
        response=_tool_arguments_as_objects,
        caught_by=(("tool_call_arguments_json_string", "tools_auto"),),
    ),
    Fault(
        "sse_wrong_content_type",
        "Streams are sent with Content-Type application/json instead of text/event-stream.",
        headers=_json_content_type,
        caught_by=(("content_type_matches_mode", "stream_basic"),),
    ),
    Fault(
        "buffered_stream",
        "The whole stream is collected from the provider and only then sent to the client.",
        stream=_buffered,
        caught_by=(("stream_not_buffered", "stream_paced"),),
    ),
    Fault(
        "model_prefix_forwarded",
        "The provider is asked for the public id (openai/gpt-4o) instead of its own (gpt-4o).",
        upstream=_with_prefixed_model,
        caught_by=(("upstream_model_unprefixed", "chat_basic"),),
    ),
    Fault(
        "edgee_fields_forwarded",
        "edgee_* / tags / enable_debug body fields and X-Edgee-* headers are sent to the provider.",
        upstream=_with_edgee_fields,
        caught_by=(("edgee_fields_not_forwarded", "chat_basic"),),
    ),
    Fault(
        "compression_fields_forwarded",
        "The compression request fields (enable_compression, compression_*) are sent to the provider.",
        upstream=_with_compression_fields,
        caught_by=(("edgee_fields_not_forwarded", "chat_basic"),),
    ),
    Fault(
        "chunk_id_changes",
        "Every chunk of a stream gets a different id.",
        stream=_map_chunks(lambda data, position: {**data, "id": f"{data.get('id', 'chunk')}-{position}"}),
        caught_by=(("constant_id", "stream_basic"),),
    ),
    Fault(
        "tools_dropped",
        "tools and tool_choice are not forwarded to the provider.",
        upstream=_without_tools,
        caught_by=(("upstream_params_intact", "tools_auto"),),
    ),
    Fault(
        "stream_error_as_done",
        "A provider failure in mid-stream ends the stream cleanly with `data: [DONE]` (no error event).",
        stream=_replace_items(lambda item: DONE if isinstance(item, StreamFailure) else item),
        caught_by=(("stream_error_propagated", "upstream_mid_stream_error"),),
    ),
    Fault(
        "provider_header_missing",
        "Responses that reached a provider carry no X-Edgee-Provider header.",
        headers=_without_provider_header,
        caught_by=(
            ("provider_header_present", "chat_basic"),
            ("response_headers_conformance", GENERATED),
        ),
    ),
    Fault(
        "unknown_model_404",
        "A well-formed model id that is not served is answered 404 instead of 400 model_not_found.",
        error=_error_with_code("model_not_found", _status(404)),
        caught_by=(("status_code_expected", "unknown_model"),),
    ),
    Fault(
        "models_list_malformed",
        "GET /v1/models lists entries without their `object` and `owned_by` fields.",
        models=_models_without_owner,
        caught_by=(("models_schema_conformance", "models_list"),),
    ),
    Fault(
        "error_code_is_status",
        'error.code is the HTTP status as a string ("400") instead of the documented code.',
        error=_code_is_status,
        caught_by=(("error_code_expected", "unknown_model"),),
    ),
    Fault(
        "finish_reason_rewritten",
        'A provider\'s finish_reason "length" reaches the client as "stop" (responses and streams).',
        response=_swap_finish_reason("length", "stop"),
        stream=_map_chunks(lambda data, _: _swap_finish_reason("length", "stop")(data)),
        caught_by=(("finish_reason_expected", "max_tokens_length"),),
    ),
    Fault(
        "upstream_model_echoed",
        "Responses and chunks name the provider's model id (gpt-4o) instead of the requested openai/gpt-4o.",
        response=lambda body: {**body, "model": _provider_model(body.get("model"))},
        stream=_map_chunks(lambda data, _: {**data, "model": _provider_model(data.get("model"))}),
        caught_by=(("response_model_echoes_request", "chat_basic"),),
    ),
    Fault(
        "max_tokens_dropped",
        "max_tokens is not forwarded, so the provider writes its whole answer past the client's cap.",
        upstream=_without_max_tokens,
        caught_by=(
            ("completion_within_max_tokens", "max_tokens_length"),
            ("upstream_params_intact", "chat_basic"),
        ),
    ),
    Fault(
        "refusal_dropped",
        "message.refusal is lost on the way back, so a refusal arrives as an answer with no text at all.",
        response=_without_refusal,
        caught_by=(("refusal_carried", "refusal"),),
    ),
    Fault(
        "usage_undercounted",
        "usage.completion_tokens is one short of the provider's count (total_tokens adjusted to match).",
        response=_under_counted,
        stream=_usage_chunk(_under_counted),
        caught_by=(
            ("usage_matches_provider", "chat_basic"),
            ("usage_matches_provider", "stream_include_usage"),
        ),
    ),
    Fault(
        "retry_after_dropped",
        "A provider's 429 reaches the client without its Retry-After header.",
        error=_error_with_code("provider_rate_limited", _without_retry_after),
        caught_by=(("retry_after_passed_on", "upstream_rate_limited"),),
    ),
    Fault(
        "tool_call_id_dropped",
        "Tool messages are forwarded to the provider without their tool_call_id.",
        upstream=_without_tool_call_ids,
        caught_by=(("upstream_tool_results_matched", "multi_turn_tool_result"),),
    ),
    Fault(
        "client_key_forwarded",
        "The client's Authorization header goes to the provider instead of the gateway's own credential.",
        upstream=_with_client_key,
        caught_by=(("client_key_not_forwarded", "chat_basic"),),
    ),
    Fault(
        "first_delta_dropped",
        "The first content delta of a stream is lost, so the streamed text misses its beginning.",
        stream=_first_content_lost,
        caught_by=(("stream_matches_non_stream", "stream_basic"),),
    ),
    Fault(
        "sse_single_newline",
        "Stream events end with a single newline instead of a blank line.",
        frames=_single_newline,
        caught_by=(("sse_framing", "stream_basic"),),
    ),
    Fault(
        "sse_named_events",
        "Every stream event carries an `event: chunk` line.",
        frames=_named_events,
        caught_by=(("event_type_is_message", "stream_basic"),),
    ),
    Fault(
        "chunk_not_json",
        "The second event of a stream is written as a Python dict (single quotes, None), not as JSON.",
        frames=_second_event_as_repr,
        caught_by=(("chunk_is_json", "stream_basic"),),
    ),
    Fault(
        "duplicate_model_key",
        "Every stream chunk names `model` twice, the provider's gpt-4o before the right openai/gpt-4o.",
        frames=_stale_model_key_first,
        caught_by=(("no_duplicate_json_keys", "stream_basic"),),
    ),
    Fault(
        "chunk_model_changes",
        "Only the first chunk names openai/gpt-4o; later chunks carry the provider's own id (gpt-4o).",
        stream=_map_chunks(_later_chunks_name_provider_model),
        caught_by=(("constant_model", "stream_basic"),),
    ),
    Fault(
        "chunk_created_changes",
        "The closing usage chunk gives `created` in milliseconds while the other chunks use seconds.",
        stream=_usage_chunk(_created_in_ms),
        caught_by=(("constant_created", "stream_include_usage"),),
    ),
    Fault(
        "usage_chunk_unrequested",
        "The include_usage the gateway forces upstream leaks to the client, which gets a usage chunk it did not ask for.",
        request=_usage_forced_for_client,
        caught_by=(("usage_only_when_requested", "stream_basic"),),
    ),
    Fault(
        "usage_chunk_early",
        "The usage chunk is sent before the chunk carrying finish_reason instead of after it.",
        stream=_usage_before_finish,
        caught_by=(("usage_chunk_last", "stream_include_usage"),),
    ),
    Fault(
        "tool_call_index_missing",
        "Streamed tool-call deltas have no `index`.",
        stream=_map_chunks(_tool_call_without_index),
        caught_by=(("tool_call_deltas_indexed", "tools_named_stream"),),
    ),
    Fault(
        "tool_call_fragment_lost",
        "The first non-empty arguments fragment of a streamed tool call is lost, so the arguments are not JSON.",
        stream=_first_fragment_lost,
        caught_by=(("tool_call_arguments_json", "tools_named_stream"),),
    ),
    Fault(
        "tool_finish_reason_stop",
        'A stream that carried tool calls finishes with "stop" instead of "tool_calls".',
        stream=_map_chunks(lambda data, _: _swap_finish_reason("tool_calls", "stop")(data)),
        caught_by=(("finish_reason_matches_content", "tools_named_stream"),),
    ),
    Fault(
        "tool_calls_dropped_in_stream",
        'Streams lose their tool-call deltas and finish with "stop" (the non-stream answer keeps them).',
        stream=_map_chunks(_tool_calls_removed),
        caught_by=(("tool_call_matches_request", "tools_named_stream"),),
    ),
    Fault(
        "error_event_in_stream",
        "A healthy stream carries an error event after its first chunk, then goes on to [DONE].",
        stream=_error_event_midway,
        caught_by=(("no_error_event", "stream_basic"),),
    ),
    Fault(
        "validation_422",
        "Schema violations are answered 422 (as FastAPI does) instead of 400 invalid_request.",
        error=_error_with_code("invalid_request", _status(422)),
        caught_by=(
            ("status_code_expected", "max_tokens_zero"),
            ("status_code_conformance", GENERATED),
        ),
    ),
    Fault(
        "error_text_plain",
        "Errors are sent as text/plain holding only the message, not as the JSON envelope.",
        error=_as_plain_text,
        caught_by=(
            ("content_type_matches_mode", "unknown_model"),
            ("content_type_conformance", GENERATED),
        ),
    ),
    Fault(
        "wrong_method_404",
        "A known path with the wrong method is answered 404 instead of 405 with an Allow header.",
        error=_wrong_method_as_not_found,
        caught_by=(("unsupported_method", GENERATED),),
    ),
    Fault(
        "unknown_fields_rejected",
        "Body fields the spec does not list (temperature, seed, ...) are refused with 400 instead of forwarded.",
        request=_unknown_fields_refused,
        caught_by=(("positive_data_acceptance", GENERATED),),
    ),
    Fault(
        "content_parts_rejected",
        "A message whose content is a list of text parts is refused with 400, as if content had to be a string.",
        request=_content_parts_refused,
        caught_by=(("positive_data_acceptance", GENERATED),),
    ),
    Fault(
        "edge_tool_ids_unchecked",
        "edgee_tool_ids naming unknown or not activated Edge Tools are ignored instead of refused with 400.",
        edge=lambda rules: dataclasses.replace(rules, validate_ids=False),
        caught_by=(
            ("status_code_expected", "edgee_tool_ids_not_activated"),
            ("edge_tool_ids_error_message", "edgee_tool_ids_listed"),
        ),
    ),
    Fault(
        "edge_tools_not_injected",
        "The Edge Tools a request asks for are run when called but never offered to the provider in `tools`.",
        upstream=_without_edge_tools,
        caught_by=(
            ("edge_tools_injected", "edge_tools_loop"),
            ("edge_tools_injected", "edge_tools_loop_stream"),
        ),
    ),
    Fault(
        "edge_uuid_not_v4",
        "edgee_generate_uuid answers a time-based UUID (version 1) instead of a random version 4 one.",
        edge=lambda rules: dataclasses.replace(rules, new_uuid=lambda: str(uuid.uuid1())),
        caught_by=(
            ("edge_tool_results_well_formed", "edge_tools_loop"),
            ("edge_tool_results_well_formed", "edge_tools_loop_stream"),
        ),
    ),
    Fault(
        "edge_tools_executed_missing",
        "Answers after Edge Tools ran carry no edgee_tools_executed.",
        response=lambda body: {name: value for name, value in body.items() if name != "edgee_tools_executed"},
        caught_by=(("edge_tools_executed_reported", "edge_tools_loop"),),
    ),
    Fault(
        "edge_tool_call_leaked",
        "When the model calls client tools and Edge Tools together, the client is shown the Edge Tool calls too.",
        edge=lambda rules: dataclasses.replace(rules, hide_edge_calls=False),
        caught_by=(
            ("edge_tool_calls_hidden", "edge_tools_pending"),
            ("edge_tool_calls_hidden", "edge_tools_pending_stream"),
        ),
    ),
    Fault(
        "pending_id_ignored",
        "edgee_pending_id is not looked up: any id is accepted and the held Edge Tool results never reach the model.",
        edge=lambda rules: dataclasses.replace(rules, honour_pending=False),
        caught_by=(
            ("edge_pending_continued", "edge_tools_pending"),
            ("edge_pending_continued", "edge_tools_pending_stream"),
            ("status_code_expected", "edgee_pending_id_unknown"),
        ),
    ),
    Fault(
        "edge_usage_last_round_only",
        "After Edge Tool rounds, usage reports only the last provider call instead of the sum of all of them.",
        edge=lambda rules: dataclasses.replace(rules, sum_usage=False),
        caught_by=(
            ("edge_usage_summed", "edge_tools_loop"),
            ("edge_usage_summed", "edge_tools_loop_stream"),
        ),
    ),
    Fault(
        "pending_id_reusable",
        "An edgee_pending_id can be used again and again instead of once.",
        edge=lambda rules: dataclasses.replace(rules, single_use=False),
        caught_by=(
            ("edge_pending_single_use", "edge_tools_pending"),
            ("edge_pending_single_use", "edge_tools_pending_stream"),
        ),
    ),
    Fault(
        "compression_reduction_inconsistent",
        "compression.reduction divides saved_tokens by the compressed prompt instead of the original one.",
        response=_with_field(_COMPRESSION_FIELD, _reduction_over_compressed),
        stream=_in_chunks(_with_field(_COMPRESSION_FIELD, _reduction_over_compressed)),
        caught_by=(
            ("compression_reduction_consistent", "chat_compressed"),
            ("compression_reduction_consistent", "stream_compressed"),
        ),
    ),
    Fault(
        "compression_reduction_unrounded",
        "compression.reduction is sent unrounded instead of with two decimals.",
        response=_with_field(_COMPRESSION_FIELD, _reduction_unrounded),
        stream=_in_chunks(_with_field(_COMPRESSION_FIELD, _reduction_unrounded)),
        caught_by=(("compression_fields_in_range", "chat_compressed"),),
    ),
    Fault(
        "compression_prompt_tokens_uncompressed",
        "usage.prompt_tokens of a compressed request reports the uncompressed prompt, not what the provider billed.",
        response=_with_field(_COMPRESSION_FIELD, _prompt_tokens_uncompressed),
        stream=_in_chunks(_with_field(_COMPRESSION_FIELD, _prompt_tokens_uncompressed)),
        # the saving and the reduction derived from it are that failure again (defers_to)
        caught_by=(
            ("usage_matches_provider", "chat_compressed"),
            ("usage_matches_provider", "stream_compressed"),
        ),
    ),
    Fault(
        "compression_saved_in_characters",
        "compression.saved_tokens counts characters removed (about 4 a token); reduction and cost follow from it.",
        response=_with_field(_COMPRESSION_FIELD, _saved_in_characters),
        stream=_in_chunks(_with_field(_COMPRESSION_FIELD, _saved_in_characters)),
        caught_by=(
            ("compression_saved_tokens_match_baseline", "chat_compressed"),
            ("compression_saved_tokens_match_baseline", "stream_compressed"),
        ),
    ),
    Fault(
        "compression_cost_savings_zero",
        "compression.cost_savings is always 0, whatever was saved (the model's price is not read).",
        response=_with_field(_COMPRESSION_FIELD, _set_compression("cost_savings", lambda _: 0)),
        caught_by=(("compression_cost_savings_consistent", "chat_compressed"),),
    ),
    Fault(
        "compression_time_in_microseconds",
        "compression.time_ms carries microseconds (at least 1 s), longer than the whole request took.",
        response=_with_field(
            _COMPRESSION_FIELD, _set_compression("time_ms", lambda ms: max(1000, ms * 1000))
        ),
        stream=_in_chunks(
            _with_field(_COMPRESSION_FIELD, _set_compression("time_ms", lambda ms: max(1000, ms * 1000)))
        ),
        caught_by=(
            ("compression_time_within_latency", "chat_compressed"),
            ("compression_time_within_latency", "stream_compressed"),
        ),
    ),
    Fault(
        "compression_cost_at_output_price",
        "compression.cost_savings prices the saved tokens at the model's output price, not its input price.",
        upstream=_saving_at_output_price,
        caught_by=(("compression_cost_savings_consistent", "chat_compressed"),),
    ),
    Fault(
        "compression_unasked",
        "Every answer carries a zeroed compression object (streams: on the usage chunk), asked for or not.",
        response=_compression_unasked,
        stream=_usage_chunk(_compression_unasked),
        caught_by=(
            ("compression_absent_unless_asked", "chat_basic"),
            ("compression_absent_unless_asked", "stream_debug"),
        ),
    ),
    Fault(
        "compression_missing",
        "Compression runs when asked, but the answer carries no compression object.",
        response=_with_field(_COMPRESSION_FIELD, _drop(_COMPRESSION_FIELD)),
        stream=_in_chunks(_with_field(_COMPRESSION_FIELD, _drop(_COMPRESSION_FIELD))),
        caught_by=(
            ("compression_present_when_asked", "chat_compressed"),
            ("compression_present_when_asked", "stream_compressed"),
            ("compression_present_when_asked", "chat_compressed_nothing_saved"),
        ),
    ),
    Fault(
        "compression_on_first_chunk",
        "Streams carry a zeroed compression object on their first chunk too, not only on the last (D1).",
        stream=_map_chunks(_compression_on_first_chunk),
        # compression on a content chunk breaks the chunk schema (D27), which reports it
        caught_by=(("chunk_schema_conformance", "stream_compressed"),),
    ),
    Fault(
        "compression_before_usage_chunk",
        "Streams send compression on a chunk of its own before the usage chunk, not on the last chunk (D1).",
        stream=_compression_before_usage,
        caught_by=(("compression_on_final_chunk_only", "stream_compressed"),),
    ),
    Fault(
        "compression_drops_error_lines",
        "Compression deletes every tool-result line that mentions an error, so the model never sees it.",
        upstream=_error_lines_dropped,
        caught_by=(
            ("compression_keeps_needles", "chat_compressed"),
            ("compression_keeps_needles", "chat_compressed_32k"),
        ),
    ),
    Fault(
        "compression_lengthens_prompt",
        "Compression adds a banner longer than what it saved, so the provider gets a longer prompt.",
        upstream=_prompt_padded,
        caught_by=(
            ("compression_never_lengthens_prompt", "chat_compressed"),
            ("compression_never_lengthens_prompt", "chat_compressed_32k"),
        ),
    ),
    Fault(
        "compress_endpoint_disagrees",
        "POST /v1/compress counts its compressed prompt without the per-message framing, unlike chat.",
        compress=_compress_counts_unframed,
        caught_by=(("compress_endpoint_matches_chat", "chat_compressed"),),
    ),
    Fault(
        "tags_forwarded",
        "The request's tags are sent to the provider, as a body field and as an X-Edgee-Tags header.",
        upstream=_with_tags,
        caught_by=(
            ("edgee_fields_not_forwarded", "chat_basic"),
            ("edgee_fields_not_forwarded", "chat_tags_logged"),
        ),
    ),
    Fault(
        "tags_not_logged",
        "The structured request log records no tags.",
        log=lambda record: dataclasses.replace(record, tags=[]),
        caught_by=(("tags_recorded_in_request_log", "chat_tags_logged"),),
    ),
    Fault(
        "debug_unasked",
        "Every answer carries a debug object (streams: on the usage chunk), asked for or not.",
        response=_debug_unasked,
        stream=_usage_chunk(_debug_unasked),
        caught_by=(
            ("debug_absent_unless_asked", "chat_basic"),
            ("debug_absent_unless_asked", "chat_compressed"),
            ("debug_absent_unless_asked", "stream_compressed"),
        ),
    ),
    Fault(
        "debug_missing",
        "enable_debug and X-Edgee-Debug are ignored: no debug object is ever sent.",
        response=_with_field(_DEBUG_FIELD, _drop(_DEBUG_FIELD)),
        stream=_in_chunks(_with_field(_DEBUG_FIELD, _drop(_DEBUG_FIELD))),
        caught_by=(
            ("debug_present_when_asked", "chat_debug"),
            ("debug_present_when_asked", "stream_debug"),
        ),
    ),
    Fault(
        "debug_public_model",
        "debug.upstream_model names the public id (openai/gpt-4o), not the model the provider was asked for.",
        response=_with_field(_DEBUG_FIELD, _debug_names_public_model),
        stream=_in_chunks(_with_field(_DEBUG_FIELD, _debug_names_public_model)),
        caught_by=(
            ("debug_matches_upstream", "chat_debug"),
            ("debug_matches_upstream", "stream_debug"),
        ),
    ),
    Fault(
        "anthropic_max_tokens_as_stop",
        'Anthropic\'s stop_reason max_tokens reaches the client as finish_reason "stop" (responses and streams).',
        translation=_rule_off("max_tokens_is_length"),
        caught_by=(("finish_reason_expected", "max_tokens_length[anthropic]"),),
    ),
    Fault(
        "anthropic_refusal_as_stop",
        'Anthropic\'s stop_reason refusal is unknown to the gateway: finish_reason "stop", the refusal text as content.',
        translation=_rule_off("refusal_is_known"),
        caught_by=(("refusal_carried", "refusal[anthropic]"),),
    ),
    Fault(
        "anthropic_usage_from_message_start",
        "Anthropic streams report the usage of message_start only: message_delta's output_tokens are lost.",
        translation=_rule_off("stream_usage_from_delta"),
        caught_by=(("usage_matches_provider", "stream_include_usage[anthropic]"),),
    ),
    Fault(
        "anthropic_stream_tool_args_dropped",
        "Anthropic streams relay no input_json_delta, so streamed tool calls arrive with empty arguments.",
        translation=_rule_off("stream_tool_arguments"),
        caught_by=(("tool_call_arguments_json", "tools_named_stream[anthropic]"),),
    ),
    Fault(
        "anthropic_tool_result_wrong_id",
        "Tool results go to Anthropic with a toolu_ prefix on their tool_use_id, so it refuses the tool round.",
        translation=_rule_off("tool_result_ids"),
        caught_by=(
            ("upstream_tool_results_matched", "multi_turn_tool_result[anthropic]"),
            ("conversation_response_valid", CONVERSATIONS),
        ),
    ),
    Fault(
        "anthropic_cache_tokens_dropped",
        "Anthropic's cache reads and writes are left out of prompt_tokens, and cached_tokens is always 0.",
        translation=_rule_off("cache_tokens"),
        caught_by=(
            ("usage_matches_provider", "cached_prompt[anthropic]"),
            ("usage_matches_provider", "stream_cached_prompt[anthropic]"),
            ("conversation_usage_matches_provider", CONVERSATIONS),
        ),
    ),
    Fault(
        "anthropic_overloaded_as_400",
        "Anthropic's 529 overloaded_error reaches the client as a 400 rejection instead of a 502.",
        translation=_rule_off("overload_is_server_error"),
        caught_by=(("status_code_expected", "upstream_overloaded[anthropic]"),),
    ),
    Fault(
        "system_prompt_dropped",
        "System and developer messages are not sent to Anthropic (system) nor to Gemini (systemInstruction).",
        translation=_rule_off("system_prompt"),
        caught_by=(
            ("upstream_system_intact", "chat_basic[anthropic]"),
            ("upstream_system_intact", "chat_basic[gemini]"),
            ("conversation_translated_faithfully", CONVERSATIONS),
        ),
    ),
    Fault(
        "gemini_args_not_stringified",
        "Gemini tool calls carry function.arguments as a JSON object instead of a string (responses and streams).",
        translation=_rule_off("stringify_arguments"),
        caught_by=(
            ("tool_call_arguments_json_string", "tools_auto[gemini]"),
            ("conversation_response_valid", CONVERSATIONS),
        ),
    ),
    Fault(
        "gemini_tool_choice_dropped",
        "tool_choice is not sent to Gemini as toolConfig, so a forced tool call is left to the model.",
        translation=_rule_off("tool_choice"),
        caught_by=(("upstream_params_intact", "tools_named_stream[gemini]"),),
    ),
    Fault(
        "history_dropped",
        "Only the system and developer messages and the last message reach the provider: the history is cut.",
        request=_history_dropped,
        caught_by=(
            ("upstream_messages_intact", "multi_turn_tool_result"),
            ("upstream_messages_intact", "multi_turn_parallel_tools[anthropic]"),
            ("upstream_messages_intact", "multi_turn_parallel_tools[gemini]"),
        ),
    ),
    Fault(
        "provider_ignored_in_routing",
        "Every model is served by the OpenAI provider (as openai/gpt-4o): the routing ignores the {author}.",
        request=_every_model_to_openai,
        caught_by=(
            ("routed_to_declared_provider", "chat_basic[anthropic]"),
            ("routed_to_declared_provider", "chat_basic[gemini]"),
        ),
    ),  # -- bad days (D44-D48): each caught by a cell of the failure matrix (contract/_bad_days.py)
    Fault(
        "retry_after_first_chunk",
        "A stream that fails after it started is opened again and relayed on: the client reads the answer twice.",
        caught_by=(("no_retry_after_first_chunk", "upstream_mid_stream_error"),),
        probe="a stream whose provider fails mid-answer (fault=mid_stream_error): 2 upstream requests",
        resilience=_policy(retry_after_first_chunk=True),
    ),
    Fault(
        "empty_200_on_provider_500",
        "A provider failure that should be a 502 provider_error is answered 200 with an empty body.",
        caught_by=(("status_code_expected", "upstream_server_error"),),
        probe="a provider answering 500 (scenario=error status=500): 200 and no body",
        error=_empty_200_for_provider_error,
    ),
    Fault(
        "rate_limit_as_502",
        "A provider's 429 reaches the client as 502 provider_error, without Retry-After.",
        caught_by=(("status_code_expected", "upstream_rate_limited"),),
        probe="a provider answering 429 (scenario=error status=429 retry_after=1): 502",
        error=_rate_limit_as_provider_error,
    ),
    Fault(
        "upstream_never_cancelled",
        "A client that hangs up mid-stream leaves the provider's request running to its end.",
        caught_by=(("upstream_cancelled_on_disconnect", "client_leaves_mid_stream"),),
        probe="read the first chunk of a slow stream and hang up: the journal says complete",
        resilience=_policy(cancel_on_disconnect=False),
    ),
    Fault(
        "no_retry",
        "A transient provider failure (429, 5xx, a reset) is never retried on the same route.",
        caught_by=(("retries_as_decided", "upstream_server_error"),),
        probe="a provider answering 500 (scenario=error status=500): 1 upstream request",
        resilience=_policy(primary_attempts=1),
    ),
    Fault(
        "retries_forever",
        "A failing provider is asked again and again (12 times per client request), with no bound.",
        caught_by=(("upstream_attempts_bounded", "upstream_server_error"),),
        probe="a provider answering 500 (scenario=error status=500): 12 upstream requests",
        resilience=_policy(primary_attempts=12, max_attempts=12),
    ),
    Fault(
        "fallback_never_tried",
        "A model's configured fallbacks are never tried: its primary's failure reaches the client.",
        caught_by=(("fallback_served", "upstream_fallback"), ("fallback_served", "upstream_fallback_stream")),
        probe="openai/gpt-4.1 (fallback anthropic/claude-haiku-4-5) with scenario=error status=500: 502",
        resilience=_policy(fallback=False),
    ),
    Fault(
        "fallback_header_missing",
        "An answer a fallback route served carries no X-Edgee-Fallback-Used.",
        caught_by=(
            ("fallback_header_truthful", "upstream_fallback"),
            ("fallback_header_truthful", "upstream_fallback_stream"),
        ),
        probe="openai/gpt-4.1 with scenario=error status=500 fail_first=2: 200 without the header",
        headers=_without_fallback_header,
    ),
    Fault(
        "fallback_header_on_primary",
        "Every answer a provider gave says X-Edgee-Fallback-Used: true, the primary's own included.",
        caught_by=(("fallback_header_truthful", "upstream_unavailable_transient"),),
        probe="any chat completion: X-Edgee-Fallback-Used: true",
        headers=_fallback_header_always,
    ),
    Fault(
        "idle_timeout_ignored",
        "The stream idle timeout is not applied: a provider that stops talking mid-stream is waited for.",
        caught_by=(("idle_stall_cut_off", "upstream_stream_stall"),),
        probe="a stream whose provider stalls past the idle timeout (fault=stall): it ends with [DONE]",
        config=_idle_timeout_off,
    ),
    Fault(
        "stream_timed_whole",
        "Streams are cut off with a provider_timeout error event 2 s after they began, however steadily they flow.",
        caught_by=(("drip_delivered_whole", "upstream_stream_drip"),),
        probe="a slow but steady stream (fault=drip) longer than 2 s: an error event, no [DONE]",
        stream=_whole_stream_deadline,
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
    """The fault called ``name``; None or ``"none"`` is the correct gateway (:data:`NO_FAULT`)."""
    if name is None or name == NO_FAULT.name:
        return NO_FAULT
    fault = FAULTS.get(name) or LOAD_FAULTS.get(name)
    if fault is None:
        raise UnknownFaultError(name)
    return fault
