"""The Google Gemini ``generateContent`` dialect.

Gemini's request is a list of ``contents`` (roles ``user`` and ``model``) made of
``parts``, with the system prompt set apart in ``systemInstruction`` and the limits in
``generationConfig``; its answer is a list of ``candidates`` plus ``usageMetadata``.
This adapter translates both ways (the rules, one row per field, are in
``TRANSLATION.md`` beside this module). The choices that are ours, not Gemini's:

- a ``tool`` message becomes a ``functionResponse`` part of a user turn, named after
  the assistant tool call it answers (found by ``tool_call_id``); its ``response`` is
  the tool's text parsed when it is a JSON object, else ``{"content": <text>}``
  (Gemini wants an object there). Consecutive turns of one role are merged into one
  content, so parallel tool results answer their call turn together, as Gemini asks;
- Gemini gives a function call no id (unless it sends ``functionCall.id``): the gateway
  names each call ``call_`` + 24 hex digits of a SHA-256 over the response id, the
  candidate and the call's position, the same for a streamed and a whole answer;
- ``completion_tokens`` counts Gemini's ``candidatesTokenCount`` plus
  ``thoughtsTokenCount`` (thinking is billed as output, and OpenAI's completion tokens
  include reasoning), the latter also reported as ``reasoning_tokens``;
  ``toolUsePromptTokenCount`` is added to the prompt;
- a candidate stopped by a safety filter finishes ``content_filter``; a complete
  response carries its text as ``message.refusal`` (content null, D40), while a stream
  has relayed it as content by the time the finish says it was refused (nothing is
  buffered), as the Anthropic adapter does;
- a 429's delay is in the body (``RetryInfo.retryDelay``, ``"7s"``), not in a header:
  it becomes ``Retry-After`` in whole seconds, rounded up (D42).

Gemini streams with no terminator: the stream is complete once an event carries a
``finishReason`` (or a ``promptFeedback.blockReason``). ``usageMetadata`` holds running
totals on every event; the last one is the stream's usage.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from httpx_sse import ServerSentEvent

from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._call import ChatCall, UpstreamRequest
from gateproof.reference_gateway._events import Chunk, StreamFailure
from gateproof.reference_gateway._usage import Usage
from gateproof.reference_gateway.providers._adapter import (
    ProviderAdapter,
    StreamDecoder,
    UpstreamFormatError,
    event_object,
)
from gateproof.reference_gateway.providers._translation import TranslationRules
from gateproof.reference_gateway.providers.openai import USER_AGENT

__all__ = ["API_VERSION", "GeminiAdapter", "finish_reason", "usage_from_gemini"]

#: the Gemini API version the gateway calls
API_VERSION = "v1beta"
#: Gemini finish reasons that mean a filter stopped the answer
_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
)
_TOOL_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def _count(metadata: Mapping[str, Any], name: str) -> int:
    value = metadata.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from_gemini(metadata: Any) -> Usage:
    """Gemini's ``usageMetadata`` in Edgee's vocabulary (see the module docstring for the sums)."""
    if not isinstance(metadata, Mapping):
        return Usage()
    thoughts = _count(metadata, "thoughtsTokenCount")
    return Usage(
        prompt_tokens=_count(metadata, "promptTokenCount") + _count(metadata, "toolUsePromptTokenCount"),
        completion_tokens=_count(metadata, "candidatesTokenCount") + thoughts,
        cached_tokens=_count(metadata, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def finish_reason(reason: Any, called: bool) -> str:
    """An OpenAI ``finish_reason`` for a Gemini ``finishReason`` (``called``: the answer holds tool calls)."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called else "stop"


def _text_of(content: Any) -> str:
    """The text of an OpenAI message content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def _user_parts(content: Any) -> list[dict[str, Any]]:
    """A user content as Gemini parts: text parts, and images as ``inlineData`` or ``fileData``."""
    if not isinstance(content, list):
        return [{"text": _text_of(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = str(image.get("url", "")) if isinstance(image, Mapping) else ""
            header, _, data = url.partition(",")
            if url.startswith("data:") and ";base64" in header:
                parts.append({"inlineData": {"mimeType": header[5:].split(";")[0], "data": data}})
            else:
                parts.append({"fileData": {"fileUri": url}})
    return parts or [{"text": ""}]


def _arguments(raw: Any) -> dict[str, Any]:
    """A tool call's ``arguments`` JSON string as the object Gemini's ``args`` wants."""
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _tool_response(content: Any) -> dict[str, Any]:
    text = _text_of(content)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"content": text}


def _contents(messages: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system parts, contents) for the OpenAI ``messages``."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for message in messages:
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.append({"text": _text_of(message.get("content"))})
        elif role == "user":
            add("user", _user_parts(message.get("content")))
        elif role == "assistant":
            parts: list[dict[str, Any]] = []
            text = _text_of(message.get("content")) or _text_of(message.get("refusal"))
            if text:
                parts.append({"text": text})
            calls = message.get("tool_calls")
            for call in calls if isinstance(calls, list) else []:
                function = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(function, Mapping):
                    continue
                name = str(function.get("name", ""))
                call_names[str(call.get("id"))] = name
                parts.append({"functionCall": {"name": name, "args": _arguments(function.get("arguments"))}})
            add("model", parts or [{"text": ""}])
        elif role == "tool":
            call_id = str(message.get("tool_call_id"))
            name = call_names.get(call_id) or str(message.get("name") or call_id)
            add(
                "user",
                [{"functionResponse": {"name": name, "response": _tool_response(message.get("content"))}}],
            )
    return system, contents


def _tools(tools: Any) -> list[dict[str, Any]]:
    declarations: list[dict[str, Any]] = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        declaration: dict[str, Any] = {"name": function.get("name")}
        if function.get("description") is not None:
            declaration["description"] = function["description"]
        if function.get("parameters") is not None:
            declaration["parameters"] = function["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if isinstance(choice, str) and choice in _TOOL_CHOICE_MODES:
        return {"functionCallingConfig": {"mode": _TOOL_CHOICE_MODES[choice]}}
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [function["name"]]}}
    return None


def _generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    budget = body.get("max_completion_tokens", body.get("max_tokens"))
    if budget is not None:
        config["maxOutputTokens"] = budget
    stop = body.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = response_format.get("json_schema")
        if isinstance(schema, Mapping) and schema.get("schema") is not None:
            config["responseJsonSchema"] = schema["schema"]
    return config


def _call_id(response_id: str, position: int) -> str:
    digest = hashlib.sha256(f"{response_id}:0:{position}".encode()).hexdigest()
    return "call_" + digest[:24]


class _Candidate:
    """What one Gemini candidate (or streamed piece of it) says, in OpenAI terms."""

    def __init__(
        self, candidate: Mapping[str, Any], response_id: str, first_call: int, rules: TranslationRules
    ) -> None:
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, Mapping) else None
        texts: list[str] = []
        self.calls: list[dict[str, Any]] = []
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, Mapping) or part.get("thought") is True:
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                position = first_call + len(self.calls)
                given = call.get("id")
                args = call.get("args") or {}
                self.calls.append(
                    {
                        "id": given if isinstance(given, str) and given else _call_id(response_id, position),
                        "type": "function",
                        "function": {
                            "name": str(call.get("name", "")),
                            "arguments": (
                                json.dumps(args, separators=(",", ":")) if rules.stringify_arguments else args
                            ),
                        },
                    }
                )
        self.text = "".join(texts)
        self.finish = candidate.get("finishReason")


def _first_candidate(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    candidates = payload.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], Mapping):
        return candidates[0]
    return None


def _blocked(payload: Mapping[str, Any]) -> bool:
    feedback = payload.get("promptFeedback")
    return isinstance(feedback, Mapping) and feedback.get("blockReason") is not None


class GeminiAdapter(ProviderAdapter):
    """``POST {base_url}/v1beta/models/{model}:generateContent`` (or ``:streamGenerateContent?alt=sse``)."""

    dialect = "gemini"

    def retry_after(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Gemini's delay from ``RetryInfo.retryDelay`` (``"7s"``, ``"1.5s"``) in whole seconds, rounded up."""
        given = headers.get("retry-after")
        if given:
            return given
        try:
            details = json.loads(body)["error"]["details"]
        except (ValueError, KeyError, TypeError):
            return None
        for detail in details if isinstance(details, list) else ():
            delay = detail.get("retryDelay") if isinstance(detail, Mapping) else None
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    seconds = float(delay[:-1])
                except ValueError:
                    continue
                if seconds >= 0 and math.isfinite(seconds):
                    return str(math.ceil(seconds))
        return None

    def build_request(self, call: ChatCall) -> UpstreamRequest:
        body = call.forwardable_body()
        messages = body.get("messages")
        system, contents = _contents(messages if isinstance(messages, list) else [])
        request: dict[str, Any] = {"contents": contents}
        if system and self.rules.system_prompt:
            request["systemInstruction"] = {"parts": system}
        tools = _tools(body.get("tools"))
        if tools:
            request["tools"] = tools
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config is not None and self.rules.tool_choice:
            request["toolConfig"] = tool_config
        generation = _generation_config(body)
        if generation:
            request["generationConfig"] = generation
        method = "streamGenerateContent?alt=sse" if call.stream else "generateContent"
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if call.stream else "application/json",
            "User-Agent": USER_AGENT,
        }
        if self.provider.api_key:
            headers["x-goog-api-key"] = self.provider.api_key
        url = f"{self.provider.base_url}/{API_VERSION}/models/{call.route.upstream_model}:{method}"
        return UpstreamRequest(url=url, headers=headers, json=request, stream=call.stream)

    def translate_response(self, call: ChatCall, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise UpstreamFormatError("the response is not a JSON object")
        response_id = str(payload.get("responseId") or secrets.token_hex(12))
        found = _first_candidate(payload)
        if found is None and not _blocked(payload):
            raise UpstreamFormatError("the response has no candidates")
        candidate = _Candidate(found or {"finishReason": "SAFETY"}, response_id, 0, self.rules)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": candidate.text if candidate.text or not candidate.calls else None,
            "refusal": None,
        }
        if candidate.finish in _FILTERED and candidate.text and not candidate.calls:
            message["content"], message["refusal"] = None, candidate.text
        if candidate.calls:
            message["tool_calls"] = candidate.calls
        return {
            "id": "chatcmpl-" + response_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.route.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(candidate.finish, bool(candidate.calls)),
                }
            ],
            "usage": usage_from_gemini(payload.get("usageMetadata")).to_edgee(),
        }

    def stream_decoder(self, call: ChatCall) -> StreamDecoder:
        return _GeminiStreamDecoder(self.name, call.route.model_id, self.rules)


class _GeminiStreamDecoder(StreamDecoder):
    """``data: <GenerateContentResponse>`` events, each translated as it comes; no terminator."""

    def __init__(self, provider: str, model_id: str, rules: TranslationRules) -> None:
        self._provider = provider
        self._rules = rules
        self._model_id = model_id
        self._response_id: str | None = None
        self._created = int(time.time())
        self._started = False
        self._calls = 0
        self._usage: Any = None

    def _failure(self, message: str) -> list[Chunk | StreamFailure]:
        return [StreamFailure(_errors.provider_error(self._provider, message))]

    def feed(self, event: ServerSentEvent) -> list[Chunk | StreamFailure]:
        try:
            payload = event_object(event)
        except UpstreamFormatError as exc:
            return self._failure(str(exc))
        if payload is None:
            return []
        if "error" in payload:
            error = payload["error"]
            message = error.get("message") if isinstance(error, Mapping) else error
            return self._failure(str(message or "stream error"))
        if self._response_id is None:
            self._response_id = str(payload.get("responseId") or secrets.token_hex(12))
        if payload.get("usageMetadata") is not None:
            self._usage = payload["usageMetadata"]
        found = _first_candidate(payload)
        if found is None:
            if not _blocked(payload):
                return []
            found = {"finishReason": "SAFETY"}
        candidate = _Candidate(found, self._response_id, self._calls, self._rules)
        delta: dict[str, Any] = {}
        if not self._started:
            delta["role"] = "assistant"
        if candidate.text:
            delta["content"] = candidate.text
        if candidate.calls:
            delta["tool_calls"] = [
                {"index": self._calls + offset, **call} for offset, call in enumerate(candidate.calls)
            ]
            self._calls += len(candidate.calls)
        finish = finish_reason(candidate.finish, self._calls > 0) if candidate.finish else None
        if not delta and finish is None:
            return []
        self._started = True
        chunk: dict[str, Any] = {
            "id": "chatcmpl-" + self._response_id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model_id,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if finish is not None:
            self.finished = True
            chunk["usage"] = usage_from_gemini(self._usage).to_edgee()
        return [Chunk(chunk)]
