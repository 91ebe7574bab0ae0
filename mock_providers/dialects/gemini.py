"""Google Gemini's ``generateContent`` wire format, served under the ``/gemini`` prefix.

One mock process serves every dialect: OpenAI at the root (``/v1/...``), Anthropic
under ``/anthropic``, Gemini under ``GEMINI_PREFIX`` (``/gemini``), so a Gemini client
takes ``http://127.0.0.1:<port>/gemini`` as its base URL and the three route tables
never collide. Routes (the prefix followed by Google's own paths):

- ``POST /gemini/v1beta/models/{model}:generateContent``
- ``POST /gemini/v1beta/models/{model}:streamGenerateContent?alt=sse``
- ``GET /gemini/v1beta/models`` and ``GET /gemini/v1beta/models/{model}``

and the same under ``/gemini/v1/`` (the version the official SDK 3.x calls by default).

Starlette cannot put a parameter and a literal in one path segment, so the POST
route is ``.../models/{call:path}`` and this module splits ``{model}:{method}``.

Shapes follow the Gemini API as the official ``google-genai`` SDK parses it:

- the key comes as ``x-goog-api-key`` (or ``?key=``); without one Google answers 403
  ``PERMISSION_DENIED``, and an unknown key is 400 ``INVALID_ARGUMENT`` with the
  ``ErrorInfo`` reason ``API_KEY_INVALID`` (not a 401: the mock is faithful here);
- errors are ``{"error": {"code", "message", "status"}}`` plus ``details`` (an
  ``ErrorInfo`` when there is a reason, a ``RetryInfo`` for 429/503); Google sends
  no ``Retry-After`` header, the delay is in ``RetryInfo.retryDelay``;
- a non-streamed answer is one ``GenerateContentResponse``: one candidate
  (``content {role: model, parts}``, ``finishReason``, ``index: 0``),
  ``usageMetadata`` (``promptTokenCount``, ``candidatesTokenCount``,
  ``totalTokenCount``, and ``cachedContentTokenCount`` when the directive's ``cached=N``
  says N of the prompt tokens were read from a cache: ``promptTokenCount`` still counts
  them, as Google's does), ``modelVersion`` (the model id) and ``responseId``;
- a streamed answer (only ``alt=sse``; without it Google streams a JSON array, which
  the mock refuses with 400 rather than imitate) is ``data: <GenerateContentResponse>``
  events with no terminator: one per text piece, each carrying ``usageMetadata`` with
  running totals (Google repeats it on every chunk, cumulative), then a last event
  whose part is an empty text, with the ``finishReason`` and the final totals;
- a tool call is a ``functionCall {name, args}`` part, ``args`` a JSON object (never
  a string) and no ``id`` (the Gemini API sends none); a streamed call arrives whole
  in one event (Gemini does not split arguments), due when its last argument token
  would be. Tool calls finish ``STOP``, as Gemini's do;
- ``length`` finishes ``MAX_TOKENS``; a refusal is decided as a candidate that was
  stopped by the safety filter: its text (the shared refusal) is sent, the finish is
  ``SAFETY`` and ``safetyRatings`` rate ``HARM_CATEGORY_DANGEROUS_CONTENT`` ``HIGH``
  and ``blocked``, so the usage truth stays what was sent.

The prompt is counted by the shared convention (``gateproof.openapi.gather_prompt``)
applied to Gemini's request: each content (and ``systemInstruction``, as a ``system``
message first) becomes one chat message holding its role and the strings of its
parts (text; a ``functionCall``'s name and compact JSON ``args``; a
``functionResponse``'s name and compact JSON ``response``), so it costs the
convention's per-message framing plus those tokens; the reply priming is added
once, and the tools cost the compact JSON of the ``functionDeclarations`` list. ``context_window``
is Gemini's input limit: the prompt alone is judged against it.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateproof.mock_providers._catalogue import GEMINI_CATALOGUE, Catalogue, ModelSpec
from gateproof.mock_providers._dialect import Incoming, StaticRoute, truncated_data_frame
from gateproof.mock_providers._directives import directive_cid
from gateproof.mock_providers._errors import ProviderError, RequestRejected
from gateproof.mock_providers._json import canonical
from gateproof.mock_providers._json import compact as _dumps
from gateproof.mock_providers._json import quote as _quote
from gateproof.mock_providers._replies import Frame, FrameRole, LazyFrames, Reply
from gateproof.mock_providers._scenarios import ChatRequest, Finish, Scenario, ToolSpec, Usage
from gateproof.mock_providers._stamps import stamped_string
from gateproof.mock_providers._tokens import count_inline
from gateproof.openapi import Intent, Part, PromptText, ToolIntent, count_prompt, count_text, gather_prompt

__all__ = ["API_VERSIONS", "GEMINI_PREFIX", "GeminiDialect", "generate_content_intent", "usage_metadata"]

#: where the Gemini routes live in the one mock process (a client's base URL ends with it)
GEMINI_PREFIX = "/gemini"
#: the API versions in Google's paths (``google-genai`` 3.x calls ``v1`` by default, older clients ``v1beta``)
API_VERSIONS = ("v1beta", "v1")

_JSON = (b"content-type", b"application/json; charset=UTF-8")
_SSE = (b"content-type", b"text/event-stream")
_ROLES = ("user", "model")
_MODES = ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED")
_MAX_CANDIDATES = 8
_MAX_STOP_SEQUENCES = 5
#: Google's rule for function names
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_SERVICE = "generativelanguage.googleapis.com"

#: HTTP status -> google.rpc status name
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: Gemini's finish reasons for the shared ones
_FINISH = {Finish.STOP: "STOP", Finish.LENGTH: "MAX_TOKENS", Finish.TOOL_CALLS: "STOP"}
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]


def _reject(message: str, status: int = 400, reason: str | None = None) -> RequestRejected:
    return RequestRejected(ProviderError(status=status, message=message, code=reason))


def _field(path: str, message: str) -> RequestRejected:
    """Google's field-violation wording: ``* GenerateContentRequest.<path>: <message>``."""
    return _reject(f"* GenerateContentRequest.{path}: {message}\n")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _get(value: Mapping[str, Any], name: str) -> Any:
    """Field ``name`` (lowerCamelCase), or its snake_case spelling: proto JSON accepts both.

    The official SDK itself sends some fields in snake_case (``parameters_json_schema``).
    """
    found = value.get(name)
    return value.get(_snake(name)) if found is None else found


@dataclass(frozen=True, slots=True)
class _Call:
    """``{model}:{method}`` of a generation path."""

    model: str
    stream: bool


def _models_path(version: str) -> str:
    return f"{GEMINI_PREFIX}/{version}/models"


def _version(incoming: Incoming) -> str:
    """The API version of the request's path (``/gemini/<version>/models/...``)."""
    rest = incoming.path.removeprefix(GEMINI_PREFIX + "/")
    return rest.partition("/")[0]


def _split_call(incoming: Incoming) -> _Call:
    call = incoming.path_params.get("call", "")
    model, _, method = call.rpartition(":")
    if method == "generateContent":
        return _Call(model, False)
    if method == "streamGenerateContent":
        query = urllib.parse.parse_qs(incoming.query)
        if query.get("alt") != ["sse"]:
            raise _reject(
                "The gateproof mock streams only server-sent events: add alt=sse to streamGenerateContent."
            )
        return _Call(model, True)
    raise _reject(f"Method not found: {call!r} (the gateproof mock serves generateContent).", 404)


def _unknown_model(model: str, version: str) -> ProviderError:
    return ProviderError(
        status=404,
        message=(
            f"models/{model} is not found for API version {version}, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their supported methods."
        ),
    )


def _parts(content: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise _field(f"{where}.parts", "contents.parts must not be empty.")
    for index, part in enumerate(parts):
        if not isinstance(part, Mapping) or not part:
            raise _field(
                f"{where}.parts[{index}].data", "required oneof field 'data' must have one initialized field"
            )
        call = _get(part, "functionCall")
        if call is not None and not (isinstance(call, Mapping) and isinstance(call.get("name"), str)):
            raise _field(f"{where}.parts[{index}].function_call.name", "a function call needs a name.")
        answer = _get(part, "functionResponse")
        if answer is not None and not (isinstance(answer, Mapping) and isinstance(answer.get("name"), str)):
            raise _field(
                f"{where}.parts[{index}].function_response.name", "a function response needs a name."
            )
    return parts


def _names(parts: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    found = (_get(part, key) for part in parts)
    return [str(value["name"]) for value in found if isinstance(value, Mapping)]


def _check_contents(raw: Any) -> list[Mapping[str, Any]]:
    """``contents`` as Gemini requires them: a non-empty list, roles user/model, answered calls.

    A content holding ``functionResponse`` parts must come right after a model content
    holding ``functionCall`` parts, answer as many calls as it made, each by a name it
    called; a function-call turn must follow a user turn or a function-response turn.
    """
    if raw is None or raw == []:
        raise _field("contents", "contents is not specified")
    if not isinstance(raw, list):
        raise _reject("Invalid value at 'contents': expected a list of Content.")
    contents: list[Mapping[str, Any]] = []
    previous_calls: list[str] = []
    previous_role: str | None = None
    previous_answered = False
    for index, content in enumerate(raw):
        if not isinstance(content, Mapping):
            raise _reject(f"Invalid value at 'contents[{index}]': expected a Content object.")
        role = content.get("role") or "user"
        if role not in _ROLES:
            raise _reject("Please use a valid role: user, model.")
        parts = _parts(content, f"contents[{index}]")
        calls, answers = _names(parts, "functionCall"), _names(parts, "functionResponse")
        if answers:
            if not previous_calls:
                raise _reject(
                    "Please ensure that function response turn comes immediately after a function call turn."
                )
            if len(answers) != len(previous_calls):
                raise _reject(
                    "Please ensure that the number of function response parts is equal to the number of "
                    "function call parts of the function call turn."
                )
            pending = list(previous_calls)
            for name in answers:
                if name not in pending:
                    raise _reject(
                        f"Please ensure that each function response answers a function call of the previous "
                        f"turn: no call named {name!r}."
                    )
                pending.remove(name)
        if calls and previous_role == "model" and not previous_answered:
            raise _reject(
                "Please ensure that function call turn comes immediately after a user turn or after a "
                "function response turn."
            )
        contents.append(content)
        previous_calls = calls if role == "model" else []
        previous_role, previous_answered = role, bool(answers)
    return contents


def _tools(raw: Any) -> tuple[list[Any], tuple[ToolSpec, ...]]:
    """(the function declarations as sent, their specs)."""
    if raw is None:
        return [], ()
    if not isinstance(raw, list):
        raise _reject("Invalid value at 'tools': expected a list of Tool.")
    declarations: list[Any] = []
    specs: list[ToolSpec] = []
    for t, tool in enumerate(raw):
        found = _get(tool, "functionDeclarations") if isinstance(tool, Mapping) else None
        if found is None:
            continue  # other tools (googleSearch, codeExecution) offer no function to call
        if not isinstance(found, list):
            raise _reject(f"Invalid value at 'tools[{t}].function_declarations': expected a list.")
        for d, declaration in enumerate(found):
            name = declaration.get("name") if isinstance(declaration, Mapping) else None
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                raise _field(
                    f"tools[{t}].function_declarations[{d}].name",
                    "[FIELD_INVALID] Invalid function name. Must start with a letter or an underscore. Must be "
                    "alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a "
                    "maximum length of 64.",
                )
            assert isinstance(declaration, Mapping)
            parameters = declaration.get("parameters") or _get(declaration, "parametersJsonSchema")
            declarations.append(declaration)
            specs.append(
                ToolSpec(name=name, parameters=parameters if isinstance(parameters, Mapping) else {})
            )
    return declarations, tuple(specs)


def _tool_config(raw: Any, tools: tuple[ToolSpec, ...]) -> tuple[str | None, bool]:
    """(forced function name, whether a call is required) from ``toolConfig``."""
    config = _get(raw, "functionCallingConfig") if isinstance(raw, Mapping) else None
    if not isinstance(config, Mapping):
        return None, False
    mode = config.get("mode", "AUTO")
    if mode not in _MODES:
        raise _reject(
            "Invalid value at 'tool_config.function_calling_config.mode' "
            "(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "
            f"{_dumps(mode)}"
        )
    allowed = _get(config, "allowedFunctionNames")
    if allowed:
        if mode != "ANY":
            raise _reject(
                "Function calling config: allowed_function_names should only be set when the mode is ANY."
            )
        if not isinstance(allowed, list) or not all(isinstance(n, str) for n in allowed):
            raise _reject("Invalid value at 'tool_config.function_calling_config.allowed_function_names'.")
        offered = {tool.name for tool in tools}
        unknown = [n for n in allowed if n not in offered]
        if unknown:
            raise _reject(
                f"Function calling config: allowed function {unknown[0]!r} is not declared in tools."
            )
        return (allowed[0] if len(allowed) == 1 else None), True
    return None, mode == "ANY"


def _number(config: Mapping[str, Any], key: str) -> float | None:
    value = _get(config, key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _reject(f"Invalid value at 'generation_config.{key}': expected a number.")
    return value


def _generation(raw: Any, spec: ModelSpec) -> int | None:
    """``maxOutputTokens`` after checking ``generationConfig`` the way Gemini checks it."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _reject("Invalid value at 'generation_config': expected a GenerationConfig object.")
    budget = _number(raw, "maxOutputTokens")
    if budget is not None and (budget != int(budget) or not 1 <= budget <= spec.max_output_tokens):
        raise _reject(
            f"Unable to submit request because it has a maxOutputTokens value of {budget} but the supported "
            f"range is from 1 (inclusive) to {spec.max_output_tokens + 1} (exclusive). Update the value and "
            "try again."
        )
    temperature = _number(raw, "temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise _reject(
            f"Unable to submit request because it has a temperature value of {temperature} but the supported "
            "range is from 0 (inclusive) to 2.0001 (exclusive). Update the value and try again."
        )
    candidates = _number(raw, "candidateCount")
    if candidates is not None and not 1 <= candidates <= _MAX_CANDIDATES:
        raise _reject(
            f"Unable to submit request because candidateCount is {candidates}; it must be between 1 and "
            f"{_MAX_CANDIDATES}."
        )
    stops = _get(raw, "stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > _MAX_STOP_SEQUENCES):
        raise _reject(
            f"Unable to submit request because stopSequences holds more than {_MAX_STOP_SEQUENCES} sequences."
        )
    return int(budget) if budget is not None else None


def _as_message(role: str, parts: Sequence[Any]) -> dict[str, Any]:
    """A content as the chat message the convention counts: its role and the strings of its parts."""
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        for key, payload in (("functionCall", "args"), ("functionResponse", "response")):
            value = _get(part, key)
            if isinstance(value, Mapping):
                texts.append(str(value.get("name", "")))
                texts.append(_dumps(value.get(payload) or {}))
    return {"role": role, "content": [{"text": text} for text in texts]}


def _gather(system: Any, contents: Sequence[Mapping[str, Any]], declarations: list[Any]) -> PromptText:
    """The shared convention applied to the request: each content projected to one chat message."""
    messages: list[dict[str, Any]] = []
    if isinstance(system, Mapping) and isinstance(system.get("parts"), list):
        messages.append(_as_message("system", system["parts"]))
    messages.extend(_as_message(str(content.get("role") or "user"), content["parts"]) for content in contents)
    return gather_prompt(messages, declarations)


def _text_parts(content: Mapping[str, Any]) -> str:
    parts = content.get("parts")
    return "\n".join(
        part["text"]
        for part in (parts if isinstance(parts, list) else [])
        if isinstance(part, Mapping) and isinstance(part.get("text"), str)
    )


def _last_user(contents: Sequence[Any]) -> int | None:
    """Index of the last user content with text (function responses come as user turns too)."""
    for index in range(len(contents) - 1, -1, -1):
        content = contents[index]
        if (
            isinstance(content, Mapping)
            and (content.get("role") or "user") == "user"
            and _text_parts(content)
        ):
            return index
    return None


def usage_metadata(usage: Usage) -> dict[str, int]:
    """Gemini's names for a usage (what the answer and the journal carry; a stream writes the same).

    ``promptTokenCount`` is the whole prompt; ``cachedContentTokenCount``, the part of it read
    from a cache, is left out when 0, as Google leaves out a count it has not got.
    """
    metadata = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens,
        "totalTokenCount": usage.total_tokens,
    }
    if usage.cached_tokens:
        metadata["cachedContentTokenCount"] = usage.cached_tokens
    return metadata


#: Gemini's function calling modes in the intent's vocabulary (``ANY`` with one allowed name forces it)
_CHOICES = {
    "AUTO": "auto",
    "ANY": "required",
    "NONE": "none",
    "VALIDATED": "auto",
    "MODE_UNSPECIFIED": "auto",
}


def _intent_texts(parts: Any) -> list[str]:
    """The non-empty texts of a content's parts (thought summaries are the model's, not the request's)."""
    return [
        part["text"]
        for part in (parts if isinstance(parts, list) else ())
        if isinstance(part, Mapping)
        and isinstance(part.get("text"), str)
        and part["text"]
        and not part.get("thought")
    ]


def _intent_parts(contents: Any) -> list[Part]:
    parts: list[Part] = []
    for content in contents if isinstance(contents, list) else ():
        if not isinstance(content, Mapping):
            continue
        role = "assistant" if content.get("role") == "model" else "user"
        raw_parts = content.get("parts")
        for part in raw_parts if isinstance(raw_parts, list) else ():
            if not isinstance(part, Mapping):
                continue
            call, answer = _get(part, "functionCall"), _get(part, "functionResponse")
            if isinstance(part.get("text"), str) and part["text"] and not part.get("thought"):
                parts.append(Part(role, "text", text=part["text"]))
            elif isinstance(call, Mapping):
                parts.append(
                    Part(
                        "assistant",
                        "tool_call",
                        id=_optional_str(call.get("id")),
                        name=_optional_str(call.get("name")),
                        arguments=call.get("args"),
                    )
                )
            elif isinstance(answer, Mapping):
                parts.append(
                    Part(
                        "user",
                        "tool_result",
                        id=_optional_str(answer.get("id")),
                        name=_optional_str(answer.get("name")),
                        content=answer.get("response"),
                    )
                )
    return parts


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _intent_choice(raw: Any) -> str | None:
    config = _get(raw, "functionCallingConfig") if isinstance(raw, Mapping) else None
    if not isinstance(config, Mapping):
        return None
    mode = config.get("mode", "AUTO")
    allowed = _get(config, "allowedFunctionNames")
    if mode == "ANY" and isinstance(allowed, list) and len(allowed) == 1 and isinstance(allowed[0], str):
        return "function:" + allowed[0]
    return _CHOICES.get(mode) if isinstance(mode, str) else None


def generate_content_intent(body: Any, path: str) -> Intent:
    """What a ``generateContent`` request asks for, in the neutral vocabulary.

    The model and the streaming mode come from the path (``models/{model}:{method}``);
    ``systemInstruction`` is the system prompt; ``user`` contents speak as the user, ``model``
    ones as the assistant; a ``functionCall`` is a tool call (``args`` its arguments) and a
    ``functionResponse`` a tool result whose content is its ``response`` object as sent.
    """
    _, _, call = path.rpartition("/models/")
    model, _, method = call.rpartition(":")
    if not isinstance(body, Mapping):
        return Intent(model=model or None, stream=method == "streamGenerateContent")
    system = _get(body, "systemInstruction")
    tools: list[ToolIntent] = []
    raw_tools = body.get("tools")
    for tool in raw_tools if isinstance(raw_tools, list) else ():
        found = _get(tool, "functionDeclarations") if isinstance(tool, Mapping) else None
        for declaration in found if isinstance(found, list) else ():
            if isinstance(declaration, Mapping) and isinstance(declaration.get("name"), str):
                parameters = declaration.get("parameters") or _get(declaration, "parametersJsonSchema")
                tools.append(
                    ToolIntent(declaration["name"], _optional_str(declaration.get("description")), parameters)
                )
    generation = _get(body, "generationConfig")
    config = generation if isinstance(generation, Mapping) else {}
    budget = _get(config, "maxOutputTokens")
    stops = _get(config, "stopSequences")
    temperature = _get(config, "temperature")
    return Intent(
        model=model or None,
        stream=method == "streamGenerateContent",
        system=tuple(_intent_texts(system.get("parts")) if isinstance(system, Mapping) else ()),
        parts=tuple(_intent_parts(body.get("contents"))),
        tools=tuple(tools),
        tool_choice=_intent_choice(_get(body, "toolConfig")),
        max_tokens=int(budget)
        if isinstance(budget, int | float) and not isinstance(budget, bool) and budget == int(budget)
        else None,
        stop=tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else (),
        temperature=float(temperature)
        if isinstance(temperature, int | float) and not isinstance(temperature, bool)
        else None,
    )


class GeminiDialect:
    """Renders scenarios as Gemini ``GenerateContentResponse`` objects."""

    name: str = "gemini"
    prefix: str = GEMINI_PREFIX
    generation_paths: tuple[str, ...] = tuple(_models_path(v) + "/{call:path}" for v in API_VERSIONS)
    #: Google answers an overloaded model with 503 ``UNAVAILABLE`` (fault ``overload``)
    overload_status: int = 503

    # -- requests -----------------------------------------------------------------

    def credential(self, incoming: Incoming) -> str | None:
        """The key of ``x-goog-api-key``, else of the ``key`` query parameter."""
        for name, value in incoming.headers:
            if name == b"x-goog-api-key":
                key = value.decode("latin-1").strip()
                return key or None
        keys = urllib.parse.parse_qs(incoming.query).get("key")
        return keys[0] if keys and keys[0] else None

    def refuse_credential(self, key: str | None) -> ProviderError:
        if key is None:
            return ProviderError(
                status=403,
                message=(
                    "Method doesn't allow unregistered callers (callers without established identity). "
                    "Please use API Key or other form of API consumer identity to call this API."
                ),
            )
        return ProviderError(
            status=400, message="API key not valid. Please pass a valid API key.", code="API_KEY_INVALID"
        )

    def parse_key(self, incoming: Incoming) -> Hashable:
        """The path (model, method, API version) and the query (``alt=sse``): what ``parse`` reads."""
        return (incoming.path, incoming.query)

    def parse(self, body: Any, incoming: Incoming, catalogue: Catalogue = GEMINI_CATALOGUE) -> ChatRequest:
        call = _split_call(incoming)
        if not isinstance(body, Mapping):
            raise _reject("Invalid JSON payload received. Expected an object (GenerateContentRequest).")
        contents = _check_contents(body.get("contents"))
        system = _get(body, "systemInstruction")
        if system is not None and not isinstance(system, Mapping):
            raise _reject("Invalid value at 'system_instruction': expected a Content object.")
        declarations, tools = _tools(body.get("tools"))
        forced, required = _tool_config(_get(body, "toolConfig"), tools)
        models = GEMINI_CATALOGUE.with_fallback(catalogue.fallback)
        spec = models.get(call.model)
        if spec is None:
            raise RequestRejected(_unknown_model(call.model, _version(incoming)))
        budget = _generation(_get(body, "generationConfig"), spec)
        prompt = _gather(system, contents, declarations)
        tokens = count_inline(prompt)
        last = _last_user(contents)
        rounds = sum(
            1
            for content in contents[(last + 1 if last is not None else 0) :]
            if content.get("role") == "model" and _names(content["parts"], "functionCall")
        )
        return ChatRequest(
            model=call.model,
            stream=call.stream,
            include_usage=True,
            max_tokens=budget,
            tools=tools,
            forced_tool=forced,
            tool_required=required,
            last_user_text=_text_parts(contents[last]) if last is not None else "",
            prompt_tokens=tokens,
            identity=canonical([system, contents, declarations]).encode(),
            prompt=prompt,
            context_window=spec.context_window,
            tool_rounds=rounds,
        )

    def correlation_id(self, body: Any) -> str | None:
        contents = body.get("contents") if isinstance(body, Mapping) else None
        if not isinstance(contents, list):
            return None
        last = _last_user(contents)
        if last is None:
            return None
        return directive_cid(_text_parts(contents[last]))

    def context_exceeded(
        self, request: ChatRequest, prompt_tokens: int, complete: bool
    ) -> ProviderError | None:
        window = request.context_window
        if window is None:
            return None
        if not complete and prompt_tokens <= window and request.prompt is not None:
            # counting stopped at window less the output budget; Gemini judges the input alone
            prompt_tokens, complete = count_prompt(request.prompt, window)
        if prompt_tokens <= window:
            return None
        counted = str(prompt_tokens) if complete else f"more than {prompt_tokens - 1}"
        return ProviderError(
            status=400,
            message=f"The input token count ({counted}) exceeds the maximum number of tokens allowed ({window}).",
        )

    # -- answers ------------------------------------------------------------------

    def render(self, scenario: Scenario, request: ChatRequest, created: int) -> Reply:
        if scenario.error is not None:
            return self.render_error(scenario.error, at=scenario.pacing.ttft)
        if request.stream:
            return Reply(
                status=200,
                headers=(_SSE,),
                frames=self._events(scenario, request),
                streamed=True,
                pieces=len(scenario.pieces),
            )
        body = _dumps(self._response(scenario, request)).encode()
        return Reply(
            status=200,
            headers=(_JSON, (b"content-length", str(len(body)).encode())),
            frames=(Frame(body, scenario.pacing.whole_at(len(scenario.pieces)), FrameRole.BODY),),
            pieces=len(scenario.pieces),
        )

    @staticmethod
    def _candidate(scenario: Scenario, parts: list[Any] | None, finish: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {}
        if parts is not None:
            candidate["content"] = {"parts": parts, "role": "model"}
        if finish:
            if scenario.refusal is not None:
                candidate["finishReason"] = "SAFETY"
                candidate["safetyRatings"] = _SAFETY_RATINGS
            else:
                candidate["finishReason"] = _FINISH[scenario.finish]
        candidate["index"] = 0
        return candidate

    def _response(self, scenario: Scenario, request: ChatRequest) -> dict[str, Any]:
        parts: list[Any]
        if scenario.tool_calls:
            parts = [
                {"functionCall": {"name": c.name, "args": json.loads(c.arguments)}}
                for c in scenario.tool_calls
            ]
        else:
            parts = [{"text": scenario.text if scenario.refusal is None else scenario.refusal}]
        return {
            "candidates": [self._candidate(scenario, parts, finish=True)],
            "usageMetadata": usage_metadata(scenario.usage),
            "modelVersion": request.model,
            "responseId": scenario.ident,
        }

    def _events(self, scenario: Scenario, request: ChatRequest) -> Sequence[Frame]:
        """Every SSE event of the stream, each stamped with its due time.

        A text (or refusal) answer's events are made one by one as the delivery reaches them
        (``_Events``); a tool-call answer has one event per call, made at once.
        """
        events = _Events(scenario, request)
        if not scenario.tool_calls:
            return LazyFrames(events.make_text, events.due_text, len(scenario.pieces) + 1)
        ttft, itl = scenario.pacing.ttft, scenario.pacing.itl
        frames: list[Frame] = []
        sent = 0
        # a call goes out whole, when its last argument piece is due
        last_piece = {call: index for index, (_, _, call) in enumerate(scenario.pieces)}
        for call in scenario.tool_calls:
            sent += count_text(call.name) + count_text(call.arguments)
            part = f'[{{"functionCall":{{"name":{_dumps(call.name)},"args":{call.arguments}}}}}]'.encode()
            frames.append(
                Frame(events.event(part, sent), ttft + last_piece[call.index] * itl, FrameRole.CONTENT)
            )
        frames.append(events.closing())
        return tuple(frames)

    def usage_record(self, usage: Usage) -> dict[str, int]:
        return usage_metadata(usage)

    def intent(self, body: Any, path: str, query: str) -> Intent:
        return generate_content_intent(body, path)

    # -- errors -------------------------------------------------------------------

    def _envelope(self, error: ProviderError) -> dict[str, Any]:
        status = _STATUS_NAMES.get(error.status, "INTERNAL" if error.status >= 500 else "FAILED_PRECONDITION")
        body: dict[str, Any] = {"code": error.status, "message": error.message, "status": status}
        details: list[dict[str, Any]] = []
        if error.code:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": error.code,
                    "domain": "googleapis.com",
                    "metadata": {"service": _SERVICE},
                }
            )
        if error.retry_after is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{error.retry_after}s"}
            )
        if details:
            body["details"] = details
        return {"error": body}

    def render_error(self, error: ProviderError, at: float = 0.0) -> Reply:
        body = _dumps(self._envelope(error)).encode()
        headers = (_JSON, (b"content-length", str(len(body)).encode()))
        return Reply(status=error.status, headers=headers, frames=(Frame(body, at, FrameRole.BODY),))

    def stream_error(self, error: ProviderError) -> bytes:
        return b"data: " + _dumps(self._envelope(error)).encode() + b"\n\n"

    def malformed(self, frame: bytes) -> bytes:
        return truncated_data_frame(frame)

    # -- catalogue ------------------------------------------------------------------

    def static_routes(self, catalogue: Catalogue = GEMINI_CATALOGUE) -> tuple[StaticRoute, ...]:
        def list_models(incoming: Incoming) -> Reply:
            return self._json(200, {"models": [self._model(m) for m in GEMINI_CATALOGUE]})

        def get_model(incoming: Incoming) -> Reply:
            model_id = incoming.path_params.get("model", "")
            spec = GEMINI_CATALOGUE.listed(model_id)
            if spec is None:
                return self.render_error(
                    ProviderError(
                        404, f"models/{model_id} is not found for API version {_version(incoming)}."
                    )
                )
            return self._json(200, self._model(spec))

        return tuple(
            route
            for version in API_VERSIONS
            for route in (
                StaticRoute(_models_path(version), "GET", list_models),
                StaticRoute(_models_path(version) + "/{model:path}", "GET", get_model),
            )
        )

    @staticmethod
    def _model(spec: ModelSpec) -> dict[str, Any]:
        return {
            "name": "models/" + spec.id,
            "version": "001",
            "displayName": spec.id,
            "inputTokenLimit": spec.context_window,
            "outputTokenLimit": spec.max_output_tokens,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }

    @staticmethod
    def _json(status: int, value: Any) -> Reply:
        body = _dumps(value).encode()
        return Reply(
            status, (_JSON, (b"content-length", str(len(body)).encode())), (Frame(body, 0.0, FrameRole.BODY),)
        )


class _Events:
    """The events of one streamed answer: one per text piece (made when due), then the closing one.

    Every event repeats the running ``usageMetadata`` (Google's are cumulative); the fields
    are written by hand because this runs once per streamed piece. With ``stamp=1`` a text
    event is a ``Render`` that writes its stamp when sent.
    """

    __slots__ = ("_cache", "_end", "_itl", "_prompt", "_scenario", "_tail", "_ttft")

    _TEXT_PREFIX = b'data: {"candidates":[{"content":{"parts":[{"text":'

    def __init__(self, scenario: Scenario, request: ChatRequest) -> None:
        self._scenario = scenario
        self._tail = f',"modelVersion":{_dumps(request.model)},"responseId":"{scenario.ident}"}}\n\n'.encode()
        self._ttft, self._itl = scenario.pacing.ttft, scenario.pacing.itl
        self._prompt, cached = scenario.usage.prompt_tokens, scenario.usage.cached_tokens
        self._cache = f',"cachedContentTokenCount":{cached}' if cached else ""
        self._end = self._ttft + max(len(scenario.pieces) - 1, 0) * self._itl

    def usage(self, sent: int) -> bytes:
        return (
            f'"usageMetadata":{{"promptTokenCount":{self._prompt},"candidatesTokenCount":{sent},'
            f'"totalTokenCount":{self._prompt + sent}{self._cache}}}'
        ).encode()

    def _after_parts(self, sent: int) -> bytes:
        return b',"role":"model"},"index":0}],' + self.usage(sent) + self._tail

    def event(self, parts: bytes, sent: int) -> bytes:
        return b'data: {"candidates":[{"content":{"parts":' + parts + self._after_parts(sent)

    def closing(self) -> Frame:
        scenario = self._scenario
        final = GeminiDialect._candidate(scenario, [{"text": ""}], finish=True)
        closing = (
            b'data: {"candidates":['
            + _dumps(final).encode()
            + b"],"
            + self.usage(scenario.usage.completion_tokens)
            + self._tail
        )
        return Frame(closing, self._end, FrameRole.FINISH)

    def due_text(self, index: int) -> float:
        return self._ttft + index * self._itl if index < len(self._scenario.pieces) else self._end

    def make_text(self, index: int) -> Frame:
        scenario = self._scenario
        if index >= len(scenario.pieces):
            return self.closing()
        text = scenario.pieces[index][1]
        at = self._ttft + index * self._itl
        suffix = b"}]" + self._after_parts(index + 1)  # one token per text piece
        if scenario.stamp:
            return Frame(stamped_string(self._TEXT_PREFIX, text, suffix, index), at, FrameRole.CONTENT)
        return Frame(self._TEXT_PREFIX + _quote(text).encode() + suffix, at, FrameRole.CONTENT)
