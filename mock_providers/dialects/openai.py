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

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from gateproof.mock_providers._catalogue import DEFAULT_CATALOGUE, Catalogue, ModelSpec
from gateproof.mock_providers._credentials import mask_key
from gateproof.mock_providers._dialect import Incoming, StaticRoute, truncated_data_frame
from gateproof.mock_providers._directives import directive_cid
from gateproof.mock_providers._errors import NO_CODE, ProviderError, RequestRejected
from gateproof.mock_providers._json import canonical
from gateproof.mock_providers._json import compact as _dumps
from gateproof.mock_providers._json import quote as _quote
from gateproof.mock_providers._provider_rules import (
    check_messages,
    check_output_ceiling,
    context_exceeded,
    lookup_model,
    output_budget,
    require_model,
    unknown_model,
)
from gateproof.mock_providers._replies import Frame, FrameRole, LazyFrames, Reply
from gateproof.mock_providers._scenarios import ChatRequest, PieceKind, Scenario, ToolSpec, Usage
from gateproof.mock_providers._stamps import stamped_string
from gateproof.mock_providers._tokens import count_inline
from gateproof.openapi import Intent, gather_prompt, intent_from_openai

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


def _last_turn(messages: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any] | None, int]:
    """The last user message, and the assistant messages with tool calls after it (the ``script`` round due).

    ``messages`` as ``check_messages`` let them through: every one a mapping.
    """
    rounds = 0
    for message in reversed(messages):
        role = message.get("role")
        if role == "user":
            return message, rounds
        if role == "assistant" and message.get("tool_calls"):
            rounds += 1
    return None, rounds


def _tool_choice(raw: Any) -> tuple[str | None, bool]:
    """(forced function name, whether a tool call is required) from ``tool_choice``."""
    if raw is None:
        return None, False
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

    def parse_key(self, incoming: Incoming) -> Hashable:
        """Nothing: ``parse`` reads the body alone."""
        return None

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
        last_user, tool_rounds = _last_turn(messages)
        prompt = gather_prompt(messages, raw_tools or ())
        return ChatRequest(
            model=model,
            stream=stream,
            include_usage=include_usage,
            max_tokens=budget[1] if budget is not None else None,
            tools=tools,
            forced_tool=forced,
            tool_required=required,
            last_user_text=_text_of(last_user.get("content")) if last_user is not None else "",
            # a short prompt is counted here; a long one by the exchange, off the event loop
            prompt_tokens=count_inline(prompt),
            identity=canonical([messages, raw_tools]).encode(),
            prompt=prompt,
            context_window=spec.context_window,
            tool_rounds=tool_rounds,
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
        body = self._completion_bytes(scenario, request, created)
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

    @staticmethod
    def _usage_bytes(scenario: Scenario) -> bytes:
        """``_usage`` as JSON, written by hand (the same bytes ``_dumps`` makes of it)."""
        usage = scenario.usage
        return (
            f'{{"prompt_tokens":{usage.prompt_tokens},"completion_tokens":{usage.completion_tokens},'
            f'"total_tokens":{usage.total_tokens},'
            f'"prompt_tokens_details":{{"cached_tokens":{usage.cached_tokens},"audio_tokens":0}},'
            '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
            '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
        ).encode()

    def _completion_bytes(self, scenario: Scenario, request: ChatRequest, created: int) -> bytes:
        """``_completion`` as JSON, written by hand: the same bytes ``_dumps`` makes of the dict.

        Every non-streamed answer goes through here, and encoding the dict was the largest
        single cost of one. Tool calls, which are rarer, are encoded by ``_dumps``.
        """
        text = "null" if scenario.text is None else _quote(scenario.text)
        refusal = "null" if scenario.refusal is None else _quote(scenario.refusal)
        calls = ""
        if scenario.tool_calls:
            calls = ',"tool_calls":' + _dumps(
                [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in scenario.tool_calls
                ]
            )
        return (
            (
                f'{{"id":"chatcmpl-{scenario.ident}","object":"chat.completion","created":{created},'
                f'"model":{_quote(request.model)},"choices":[{{"index":0,"message":{{"role":"assistant",'
                f'"content":{text},"refusal":{refusal},"annotations":[]{calls}}},"logprobs":null,'
                f'"finish_reason":"{scenario.finish.value}"}}],"usage":'
            ).encode()
            + self._usage_bytes(scenario)
            + (f',"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}"}}').encode()
        )

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

    def _chunks(self, scenario: Scenario, request: ChatRequest, created: int) -> LazyFrames:
        """Every SSE frame of the stream, each made when it is due (see ``_Stream``)."""
        return _Stream(self, scenario, request, created).frames()

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


class _Stream:
    """One streamed answer's frames, made one by one as the delivery reaches them.

    Built from byte templates: the chunk envelope is the same for every piece, only
    the delta differs. The layout: the role chunk (text and refusal answers only; a
    tool call carries the role in its first chunk), one chunk per piece, the finish
    chunk, the usage chunk (with ``include_usage``), ``[DONE]``. With ``stamp=1`` a
    text or refusal chunk is a ``Render`` that writes its stamp when it is sent.
    """

    __slots__ = (
        "_close",
        "_dialect",
        "_end",
        "_head",
        "_itl",
        "_key",
        "_lead",
        "_open",
        "_pieces",
        "_request",
        "_scenario",
        "_ttft",
        "_usage_null",
    )

    def __init__(
        self, dialect: OpenAIDialect, scenario: Scenario, request: ChatRequest, created: int
    ) -> None:
        self._dialect = dialect
        self._scenario = scenario
        self._request = request
        self._head = (
            'data: {"id":"chatcmpl-' + scenario.ident + '","object":"chat.completion.chunk","created":'
            f'{created},"model":{_dumps(request.model)},'
            f'"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}",'
        ).encode()
        self._usage_null = b',"usage":null' if request.include_usage else b""
        self._open = self._head + b'"choices":[{"index":0,"delta":'
        self._close = b',"logprobs":null,"finish_reason":null}]' + self._usage_null + b"}\n\n"
        self._ttft, self._itl = scenario.pacing.ttft, scenario.pacing.itl
        self._pieces = len(scenario.pieces)
        self._end = self._ttft + max(self._pieces - 1, 0) * self._itl
        self._key = b'{"refusal":' if scenario.refusal is not None else b'{"content":'
        #: frames before the first piece: the role chunk, unless the answer is tool calls
        self._lead = 0 if scenario.tool_calls else 1

    def frames(self) -> LazyFrames:
        after = 3 if self._request.include_usage else 2  # finish, [usage], [DONE]
        return LazyFrames(self.make, self.due, self._lead + self._pieces + after)

    def due(self, index: int) -> float:
        position = index - self._lead
        if position < 0:
            return self._ttft
        if position < self._pieces:
            return self._ttft + position * self._itl
        return self._end

    def make(self, index: int) -> Frame:
        scenario = self._scenario
        position = index - self._lead
        if position < 0:
            if scenario.refusal is not None:
                opener = b'{"role":"assistant","content":null,"refusal":""}'
            else:
                opener = b'{"role":"assistant","content":"","refusal":null}'
            return Frame(self._open + opener + self._close, self._ttft, FrameRole.OPEN)
        if position < self._pieces:
            kind, text, call_index = scenario.pieces[position]
            at = self._ttft + position * self._itl
            if scenario.tool_calls:
                delta = OpenAIDialect._tool_delta(scenario, kind, text, call_index, first=position == 0)
                return Frame(self._open + delta + self._close, at, FrameRole.CONTENT)
            prefix, suffix = self._open + self._key, b"}" + self._close
            if scenario.stamp:
                return Frame(stamped_string(prefix, text, suffix, position), at, FrameRole.CONTENT)
            return Frame(prefix + _quote(text).encode() + suffix, at, FrameRole.CONTENT)
        after = position - self._pieces
        if after == 0:
            finish = b'{},"logprobs":null,"finish_reason":"' + scenario.finish.value.encode() + b'"}]'
            return Frame(self._open + finish + self._usage_null + b"}\n\n", self._end, FrameRole.FINISH)
        if after == 1 and self._request.include_usage:
            usage = OpenAIDialect._usage_bytes(scenario)
            data = self._head + b'"choices":[],"usage":' + usage + b"}\n\n"
            return Frame(data, self._end, FrameRole.USAGE)
        return Frame(_DONE, self._end, FrameRole.TERMINAL)
