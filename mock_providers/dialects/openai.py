"""OpenAI's chat completions wire format: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Shapes follow the OpenAI API as the official SDK parses it:

- a non-streamed answer is a ``chat.completion`` with one choice and ``usage``
  (``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
  ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``);
- a streamed answer is SSE ``data: <chunk>`` events: a role chunk (``delta:
  {"role": "assistant", "content": ""}``; ``content: null, refusal: ""`` for a
  refusal) sent together with the first content chunk, one chunk per piece of the
  answer, a chunk with an empty delta and the ``finish_reason``, the usage chunk
  (``choices: []``) only when ``stream_options.include_usage`` is true, then
  ``data: [DONE]``. With ``include_usage`` every other chunk carries
  ``"usage": null``, as OpenAI's do; without it chunks have no ``usage`` key.
- a streamed tool call starts with a chunk holding the role and the call's
  ``index``, ``id``, ``type`` and ``function.name`` with empty ``arguments`` (as
  OpenAI sends it; there is no separate role chunk), then chunks holding only the
  ``index`` and a fragment of the arguments, one token each;
- errors are ``{"error": {"message", "type", "param", "code"}}`` with the HTTP
  status (429 and 503 add ``retry-after``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateproof.mock_providers._dialect import Incoming, StaticRoute
from gateproof.mock_providers._errors import ProviderError, RequestRejected
from gateproof.mock_providers._replies import Frame, FrameRole, Reply
from gateproof.mock_providers._scenarios import ChatRequest, PieceKind, Scenario, ToolSpec
from gateproof.mock_providers._tokens import count_chat_prompt

__all__ = ["MODELS", "OpenAIDialect"]

#: the model catalogue of ``GET /v1/models`` (id, created); chat requests accept any model id
MODELS: tuple[tuple[str, int], ...] = (
    ("gpt-4o", 1715367049),
    ("gpt-4o-mini", 1721172741),
    ("gpt-4.1", 1744316542),
    ("gpt-4.1-mini", 1744318173),
    ("gpt-4.1-nano", 1744321707),
    ("o3-mini", 1737146383),
    ("o4-mini", 1744225351),
    ("gpt-3.5-turbo", 1677610602),
)

SYSTEM_FINGERPRINT = "fp_6a7e1d2c90"
_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
_NO_CACHE = (b"cache-control", b"no-cache")
_DONE = b"data: [DONE]\n\n"

#: status -> (type, default code), OpenAI's spelling
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}


#: key order and spacing do not change a conversation's identity
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)
# Output is pure ASCII (non-ASCII escaped), so it is valid UTF-8 whatever strings a
# request brought in, lone surrogates included.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)
#: JSON text of any value (one encoder for the process: building one per call costs more than encoding)
_dumps = _ENCODER.encode
#: JSON string literal of a str (the C fast path; used once per streamed piece)
_quote: Any = json.encoder.encode_basestring_ascii


def _reject(message: str, param: str | None = None) -> RequestRejected:
    return RequestRejected(ProviderError(status=400, message=message, param=param))


def _text_of(content: Any) -> str:
    """The text of a message ``content``: a string, or the ``text`` of its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _optional_int(body: Mapping[str, Any], key: str) -> int | None:
    """A non-negative integer field; ``16.0`` counts as an integer, as JSON Schema has it."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _reject(f"Invalid '{key}': expected a non-negative integer.", key)
    return value


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _reject("Invalid 'tools': expected an array.", "tools")
    tools = []
    for index, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name:
            raise _reject(f"Invalid 'tools[{index}]': expected a function with a name.", f"tools[{index}]")
        parameters = function.get("parameters") if isinstance(function, Mapping) else None
        tools.append(ToolSpec(name=name, parameters=parameters if isinstance(parameters, Mapping) else {}))
    return tuple(tools)


def _tool_choice(raw: Any) -> tuple[str | None, bool]:
    """(forced function name, whether a tool call is required) from ``tool_choice``."""
    if raw == "required":
        return None, True
    if isinstance(raw, Mapping):
        function = raw.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return function["name"], True
    return None, False


class OpenAIDialect:
    """Renders scenarios as OpenAI chat completions."""

    name: str = "openai"
    generation_paths: tuple[str, ...] = ("/v1/chat/completions",)

    # -- requests -----------------------------------------------------------------

    def parse(self, body: Any, incoming: Incoming) -> ChatRequest:
        if not isinstance(body, Mapping):
            raise _reject("Invalid body: expected a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _reject("You must provide a model parameter.", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _reject("Invalid 'messages': expected a non-empty array of messages.", "messages")
        stream = body.get("stream", False)
        if stream is None:
            stream = False
        if not isinstance(stream, bool):
            raise _reject("Invalid 'stream': expected a boolean.", "stream")
        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        limit = _optional_int(body, "max_completion_tokens")
        if limit is None:
            limit = _optional_int(body, "max_tokens")
        raw_tools = body.get("tools")
        tools = _tools(raw_tools)
        forced, required = _tool_choice(body.get("tool_choice"))
        last_user = next(
            (m for m in reversed(messages) if isinstance(m, Mapping) and m.get("role") == "user"), None
        )
        return ChatRequest(
            model=model,
            stream=stream,
            include_usage=include_usage,
            max_tokens=limit,
            tools=tools,
            forced_tool=forced,
            tool_required=required,
            last_user_text=_text_of(last_user.get("content")) if last_user is not None else "",
            prompt_tokens=count_chat_prompt(messages, raw_tools or ()),
            identity=_CANONICAL.encode([messages, raw_tools]).encode(),
        )

    # -- answers ------------------------------------------------------------------

    def render(self, scenario: Scenario, request: ChatRequest, created: int) -> Reply:
        if scenario.error is not None:
            return self.render_error(scenario.error, at=scenario.pacing.ttft)
        request_id = (b"x-request-id", b"req_" + scenario.ident.encode())
        if request.stream:
            return Reply(
                status=200,
                headers=(_SSE, _NO_CACHE, request_id),
                frames=self._chunks(scenario, request, created),
                streamed=True,
                pieces=len(scenario.pieces),
            )
        body = _dumps(self._completion(scenario, request, created)).encode()
        return Reply(
            status=200,
            headers=(_JSON, (b"content-length", str(len(body)).encode()), request_id),
            frames=(Frame(body, scenario.pacing.whole_at(len(scenario.pieces)), FrameRole.BODY),),
            pieces=len(scenario.pieces),
        )

    def _usage(self, scenario: Scenario) -> dict[str, Any]:
        usage = scenario.usage
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _completion(self, scenario: Scenario, request: ChatRequest, created: int) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": scenario.text,
            "refusal": scenario.refusal,
            "annotations": [],
        }
        if scenario.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in scenario.tool_calls
            ]
        return {
            "id": "chatcmpl-" + scenario.ident,
            "object": "chat.completion",
            "created": created,
            "model": request.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": scenario.finish.value}
            ],
            "usage": self._usage(scenario),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def _chunks(self, scenario: Scenario, request: ChatRequest, created: int) -> tuple[Frame, ...]:
        """Every SSE frame of the stream, each stamped with its due time.

        Built from byte templates: the chunk envelope is the same for every piece,
        only the delta differs (this runs once per streamed request, for every token).
        """
        head = (
            'data: {"id":"chatcmpl-' + scenario.ident + '","object":"chat.completion.chunk","created":'
            f'{created},"model":{_dumps(request.model)},'
            f'"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}",'
        ).encode()
        usage_null = b',"usage":null' if request.include_usage else b""
        open_choice = head + b'"choices":[{"index":0,"delta":'
        close_choice = b',"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"
        ttft, itl = scenario.pacing.ttft, scenario.pacing.itl
        content = FrameRole.CONTENT
        frames: list[Frame] = []
        if scenario.tool_calls:
            for index, (kind, text, call_index) in enumerate(scenario.pieces):
                delta = self._tool_delta(scenario, kind, text, call_index, first=index == 0)
                frames.append(Frame(open_choice + delta + close_choice, ttft + index * itl, content))
        else:
            if scenario.refusal is not None:
                opener, key = b'{"role":"assistant","content":null,"refusal":""}', b'{"refusal":'
            else:
                opener, key = b'{"role":"assistant","content":"","refusal":null}', b'{"content":'
            frames.append(Frame(open_choice + opener + close_choice, ttft, FrameRole.OPEN))
            prefix, suffix = open_choice + key, b"}" + close_choice
            frames.extend(
                Frame(prefix + _quote(text).encode() + suffix, ttft + index * itl, content)
                for index, (_, text, _) in enumerate(scenario.pieces)
            )
        end = ttft + max(len(scenario.pieces) - 1, 0) * itl
        finish = b'{},"logprobs":null,"finish_reason":"' + scenario.finish.value.encode() + b'"}]'
        frames.append(Frame(open_choice + finish + usage_null + b"}\n\n", end, FrameRole.FINISH))
        if request.include_usage:
            usage = head + b'"choices":[],"usage":' + _dumps(self._usage(scenario)).encode() + b"}\n\n"
            frames.append(Frame(usage, end, FrameRole.USAGE))
        frames.append(Frame(_DONE, end, FrameRole.TERMINAL))
        return tuple(frames)

    @staticmethod
    def _tool_delta(scenario: Scenario, kind: PieceKind, text: str, call_index: int, first: bool) -> bytes:
        if kind is PieceKind.TOOL_ARGS:
            return f'{{"tool_calls":[{{"index":{call_index},"function":{{"arguments":{_quote(text)}}}}}]}}'.encode()
        call = scenario.tool_calls[call_index]
        start = (
            f'{{"index":{call.index},"id":"{call.id}","type":"function",'
            f'"function":{{"name":{_dumps(call.name)},"arguments":""}}}}'
        )
        if first:  # OpenAI sends the role with the first tool call, not in a chunk of its own
            return (
                '{"role":"assistant","content":null,"tool_calls":[' + start + '],"refusal":null}'
            ).encode()
        return ('{"tool_calls":[' + start + "]}").encode()

    # -- errors -------------------------------------------------------------------

    def _envelope(self, error: ProviderError) -> dict[str, Any]:
        kind, code = _ERROR_KINDS.get(
            error.status, ("server_error" if error.status >= 500 else "invalid_request_error", None)
        )
        return {
            "error": {
                "message": error.message,
                "type": kind,
                "param": error.param,
                "code": error.code if error.code is not None else code,
            }
        }

    def render_error(self, error: ProviderError, at: float = 0.0) -> Reply:
        body = _dumps(self._envelope(error)).encode()
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        if error.retry_after is not None:
            headers.append((b"retry-after", str(error.retry_after).encode()))
        return Reply(status=error.status, headers=tuple(headers), frames=(Frame(body, at, FrameRole.BODY),))

    def stream_error(self, error: ProviderError) -> bytes:
        return b"data: " + _dumps(self._envelope(error)).encode() + b"\n\n"

    def malformed(self, frame: bytes) -> bytes:
        payload = frame.removeprefix(b"data: ").rstrip(b"\n")
        return b"data: " + payload[: max(len(payload) // 2, 1)] + b"\n\n"

    # -- catalogue ------------------------------------------------------------------

    def static_routes(self) -> tuple[StaticRoute, ...]:
        return (
            StaticRoute("/v1/models", "GET", self._list_models),
            StaticRoute("/v1/models/{model:path}", "GET", self._get_model),
        )

    @staticmethod
    def _model(model_id: str, created: int) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": created, "owned_by": "openai"}

    def _list_models(self, incoming: Incoming) -> Reply:
        body = _dumps({"object": "list", "data": [self._model(m, c) for m, c in MODELS]}).encode()
        return Reply(
            200, (_JSON, (b"content-length", str(len(body)).encode())), (Frame(body, 0.0, FrameRole.BODY),)
        )

    def _get_model(self, incoming: Incoming) -> Reply:
        model_id = incoming.path_params.get("model", "")
        created = dict(MODELS).get(model_id)
        if created is None:
            error = ProviderError(
                status=404,
                message=f"The model '{model_id}' does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
            return self.render_error(error)
        body = _dumps(self._model(model_id, created)).encode()
        return Reply(
            200, (_JSON, (b"content-length", str(len(body)).encode())), (Frame(body, 0.0, FrameRole.BODY),)
        )
