"""OpenAI's chat completions wire format: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Shapes follow the OpenAI API as the official SDK parses it:

- a non-streamed answer is a ``chat.completion`` with one choice and ``usage``
  (``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
  ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``;
  ``prompt_tokens`` counts the whole prompt and ``cached_tokens`` the part of it the
  directive's ``cached`` says was read from the cache, as OpenAI reports prompt caching);
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
- errors are ``{"error": {"message", "type", "param", "code"}}`` (keys in that
  order, ``Content-Type: application/json``) with the HTTP status (429 and 503
  add ``retry-after``);
- the key comes as ``Authorization: Bearer <key>``; requests are refused as OpenAI
  refuses them (``_provider_rules``), against the models of the mock's catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateproof.mock_providers._catalogue import DEFAULT_CATALOGUE, Catalogue, ModelSpec
from gateproof.mock_providers._credentials import mask_key
from gateproof.mock_providers._dialect import Incoming, StaticRoute, truncated_data_frame
from gateproof.mock_providers._directives import directive_cid
from gateproof.mock_providers._errors import NO_CODE, ProviderError, RequestRejected
from gateproof.mock_providers._provider_rules import (
    check_messages,
    check_output_ceiling,
    context_exceeded,
    lookup_model,
    output_budget,
    require_model,
    unknown_model,
)
from gateproof.mock_providers._replies import Frame, FrameRole, Reply
from gateproof.mock_providers._scenarios import ChatRequest, PieceKind, Scenario, ToolSpec, Usage
from gateproof.mock_providers._tokens import INLINE_CHARS
from gateproof.openapi import Intent, count_prompt, gather_prompt, intent_from_openai

__all__ = ["OpenAIDialect"]

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


def _tool_rounds(messages: Any) -> int:
    """Assistant messages with tool calls after the last user message (the ``script`` round due)."""
    rounds = 0
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "user":
            break
        if message.get("role") == "assistant" and message.get("tool_calls"):
            rounds += 1
    return rounds


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
    prefix: str = ""
    generation_paths: tuple[str, ...] = ("/v1/chat/completions",)
    #: OpenAI answers an overload with 503 (fault ``overload``)
    overload_status: int = 503

    # -- requests -----------------------------------------------------------------

    def credential(self, incoming: Incoming) -> str | None:
        """The key of ``Authorization: Bearer <key>`` (``None`` when there is none)."""
        for name, value in incoming.headers:
            if name == b"authorization":
                scheme, _, key = value.decode("latin-1").strip().partition(" ")
                if scheme.lower() == "bearer" and key.strip():
                    return key.strip()
                return None
        return None

    def refuse_credential(self, key: str | None) -> ProviderError:
        if key is None:
            return ProviderError(
                status=401,
                message=(
                    "You didn't provide an API key. Send it in an Authorization header as a bearer "
                    "token (Authorization: Bearer YOUR_KEY)."
                ),
                code=NO_CODE,
            )
        return ProviderError(
            status=401,
            message=f"Incorrect API key provided: {mask_key(key)}. This key is not one the gateproof mock accepts.",
            code="invalid_api_key",
        )

    def parse(self, body: Any, incoming: Incoming, catalogue: Catalogue = DEFAULT_CATALOGUE) -> ChatRequest:
        if not isinstance(body, Mapping):
            raise _reject("Invalid body: expected a JSON object.")
        model = require_model(body)
        messages = check_messages(body.get("messages"))
        stream = body.get("stream", False)
        if stream is None:
            stream = False
        if not isinstance(stream, bool):
            raise _reject("Invalid 'stream': expected a boolean.", "stream")
        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        budget = output_budget(body)
        raw_tools = body.get("tools")
        tools = _tools(raw_tools)
        forced, required = _tool_choice(body.get("tool_choice"))
        spec = lookup_model(catalogue, model)
        check_output_ceiling(budget, spec)
        last_user = next(
            (m for m in reversed(messages) if isinstance(m, Mapping) and m.get("role") == "user"), None
        )
        prompt = gather_prompt(messages, raw_tools or ())
        # a short prompt is counted here; a long one by the exchange, off the event loop
        tokens = count_prompt(prompt)[0] if prompt.chars <= INLINE_CHARS else None
        return ChatRequest(
            model=model,
            stream=stream,
            include_usage=include_usage,
            max_tokens=budget[1] if budget is not None else None,
            tools=tools,
            forced_tool=forced,
            tool_required=required,
            last_user_text=_text_of(last_user.get("content")) if last_user is not None else "",
            prompt_tokens=tokens,
            identity=_CANONICAL.encode([messages, raw_tools]).encode(),
            prompt=prompt,
            context_window=spec.context_window,
            tool_rounds=_tool_rounds(messages),
        )

    def correlation_id(self, body: Any) -> str | None:
        messages = body.get("messages") if isinstance(body, Mapping) else None
        if not isinstance(messages, list):
            return None
        last_user = next(
            (m for m in reversed(messages) if isinstance(m, Mapping) and m.get("role") == "user"), None
        )
        if last_user is None:
            return None
        return directive_cid(_text_of(last_user.get("content")))

    def context_exceeded(
        self, request: ChatRequest, prompt_tokens: int, complete: bool
    ) -> ProviderError | None:
        window = request.context_window
        if window is None:
            return None
        if prompt_tokens + (request.max_tokens or 0) <= window and complete:
            return None
        return context_exceeded(window, prompt_tokens, request.max_tokens, complete)

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

    def usage_record(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        }

    def intent(self, body: Any, path: str, query: str) -> Intent:
        """The request as the suite reads a client's: the one OpenAI reading, ``intent_from_openai``."""
        return intent_from_openai(body)

    def _usage(self, scenario: Scenario) -> dict[str, Any]:
        usage = scenario.usage
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
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
                "code": (error.code or None) if error.code is not None else code,
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
        return truncated_data_frame(frame)

    # -- catalogue ------------------------------------------------------------------

    def static_routes(self, catalogue: Catalogue = DEFAULT_CATALOGUE) -> tuple[StaticRoute, ...]:
        def list_models(incoming: Incoming) -> Reply:
            return self._json(200, {"object": "list", "data": [self._model(m) for m in catalogue]})

        def get_model(incoming: Incoming) -> Reply:
            model_id = incoming.path_params.get("model", "")
            spec = catalogue.listed(model_id)
            if spec is None:
                return self.render_error(unknown_model(model_id))
            return self._json(200, self._model(spec))

        return (
            StaticRoute("/v1/models", "GET", list_models),
            StaticRoute("/v1/models/{model:path}", "GET", get_model),
        )

    @staticmethod
    def _model(spec: ModelSpec) -> dict[str, Any]:
        return {"id": spec.id, "object": "model", "created": spec.created, "owned_by": "openai"}

    @staticmethod
    def _json(status: int, value: Any) -> Reply:
        body = _dumps(value).encode()
        return Reply(
            status, (_JSON, (b"content-length", str(len(body)).encode())), (Frame(body, 0.0, FrameRole.BODY),)
        )
