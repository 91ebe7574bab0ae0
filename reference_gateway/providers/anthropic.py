"""The Anthropic Messages dialect: ``POST {base_url}/v1/messages``.

Unlike OpenAI's, this dialect needs real translation both ways, and the rules are
written down in ``TRANSLATION.md`` beside this module (one table per dialect). The
points where Anthropic has no exact counterpart, and what the gateway does there:

- ``max_tokens`` is required upstream; a client that sent neither ``max_tokens`` nor
  ``max_completion_tokens`` gets ``DEFAULT_MAX_TOKENS`` (the config holds no per-model
  output ceiling, and 4096 is within every current Claude model's);
- Anthropic's ``input_tokens`` excludes the tokens read from or written to its prompt
  cache, while Edgee's ``prompt_tokens`` counts the whole prompt: prompt tokens are the
  sum of all three, and ``cached_tokens`` is the cache reads;
- a ``refusal`` stop becomes ``finish_reason: content_filter``; a complete response
  moves the text into ``message.refusal`` (content null), while a stream has already
  relayed that text as content by the time ``stop_reason`` says it was a refusal (it
  comes last, and nothing is buffered), so only the finish reason marks it there.

The stream is stateful (usage arrives split between ``message_start`` and
``message_delta``; tool-call indexes are content-block indexes), so each stream gets
its own decoder.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
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
from gateproof.reference_gateway.providers._translation import CORRECT_TRANSLATION, TranslationRules

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASONS",
    "AnthropicAdapter",
    "usage_from_anthropic",
]

#: the ``anthropic-version`` the gateway speaks (the Messages API refuses a request without one)
ANTHROPIC_VERSION = "2023-06-01"
#: ``max_tokens`` sent when the client set no limit (Anthropic requires one)
DEFAULT_MAX_TOKENS = 4096
#: Anthropic ``stop_reason`` -> Edgee ``finish_reason``
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
USER_AGENT = "gateproof-reference-gateway"
#: request fields copied under the same name
_SAME_NAME = ("temperature", "top_p")
#: Anthropic's "overloaded" status, which HTTP does not define (a server error all the same)
OVERLOADED = 529
#: what a gateway that does not know 529 reads it as (the ``overload_is_server_error`` rule off)
_OVERLOAD_MISREAD = 400
#: what the ``tool_result_ids`` rule off puts before a tool result's id (a gateway "converting" ids)
_WRONG_ID_PREFIX = "toolu_"


def usage_from_anthropic(usage: Any, output_tokens: Any = None, *, cache: bool = True) -> Usage:
    """Anthropic's usage as :class:`Usage` (``output_tokens`` overrides the one in ``usage``).

    ``cache=False`` is the ``cache_tokens`` rule broken: the cache counts are left out.
    """
    if not isinstance(usage, Mapping):
        usage = {}

    def count(name: str, value: Any = None) -> int:
        value = usage.get(name) if value is None else value
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    cache_read = count("cache_read_input_tokens") if cache else 0
    cache_write = count("cache_creation_input_tokens") if cache else 0
    prompt = count("input_tokens") + cache_read + cache_write
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=count("output_tokens", output_tokens),
        cached_tokens=cache_read,
    )


def _finish_reason(stop_reason: Any, rules: TranslationRules) -> str | None:
    """The Edgee finish reason of a ``stop_reason``; one this table does not know is ``stop``."""
    if stop_reason is None:
        return None
    if stop_reason == "max_tokens" and not rules.max_tokens_is_length:
        return "stop"
    if stop_reason == "refusal" and not rules.refusal_is_known:
        return "stop"
    return FINISH_REASONS.get(str(stop_reason), "stop")


# -- request ----------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """The text of an OpenAI content value (a string, or parts of which the text ones count)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def _image_block(part: Mapping[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = str(image.get("url", "")) if isinstance(image, Mapping) else str(image or "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[len("data:") :].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI user/assistant content as Anthropic blocks (empty text is dropped: Anthropic refuses it)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text" and part.get("text"):
                blocks.append({"type": "text", "text": str(part["text"])})
            elif part.get("type") == "image_url":
                blocks.append(_image_block(part))
    return blocks


def _tool_use(index: int, call: Any) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping):
        raise _errors.invalid_request(f"tool_calls[{index}]", "a tool call needs a function")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise _errors.invalid_request(
            f"tool_calls[{index}].function.arguments", "tool call arguments must be a JSON object"
        )
    return {
        "type": "tool_use",
        "id": str(call.get("id", "")),
        "name": str(function.get("name", "")),
        "input": parsed,
    }


def _turns(messages: Any, rules: TranslationRules) -> tuple[list[dict[str, Any]], list[str]]:
    """The Anthropic ``messages`` and the system texts of an OpenAI conversation.

    Consecutive turns of one role are merged into one (tool results and the user text
    after them are one user turn), as Anthropic wants roles to alternate.
    """
    turns: list[dict[str, Any]] = []
    system: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = _text_of(content)
            if text:
                system.append(text)
            continue
        if role == "tool":
            result_text = _text_of(content)
            answered = str(message.get("tool_call_id", ""))
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": answered if rules.tool_result_ids else _WRONG_ID_PREFIX + answered,
            }
            if result_text:
                result["content"] = result_text
            blocks, role = [result], "user"
        elif role == "assistant":
            blocks = _content_blocks(content)
            refusal = message.get("refusal")
            if not blocks and isinstance(refusal, str) and refusal:
                blocks = [{"type": "text", "text": refusal}]
            calls = message.get("tool_calls")
            blocks += [_tool_use(i, call) for i, call in enumerate(calls if isinstance(calls, list) else [])]
        else:
            blocks, role = _content_blocks(content), "user"
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # a lone text block is sent as a plain string, the shape most clients send
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return turns, system


def _tools(tools: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        entry: dict[str, Any] = {"name": str(function.get("name", ""))}
        if function.get("description"):
            entry["description"] = str(function["description"])
        parameters = function.get("parameters")
        entry["input_schema"] = (
            parameters if isinstance(parameters, Mapping) else {"type": "object", "properties": {}}
        )
        out.append(entry)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        picked: dict[str, Any] = {"type": "any"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        picked = {"type": "tool", "name": str(choice["function"].get("name", ""))}
    elif choice == "auto" or parallel is False:
        picked = {"type": "auto"}
    else:
        return None
    if parallel is False:
        picked["disable_parallel_tool_use"] = True
    return picked


def messages_request(
    body: Mapping[str, Any], upstream_model: str, rules: TranslationRules = CORRECT_TRANSLATION
) -> dict[str, Any]:
    """An Edgee chat request body (Edgee fields already removed) as a Messages API body."""
    turns, system = _turns(body.get("messages"), rules)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    request: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": limit if isinstance(limit, int) and not isinstance(limit, bool) else DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    if system and rules.system_prompt:
        request["system"] = system[0] if len(system) == 1 else [{"type": "text", "text": s} for s in system]
    for name in _SAME_NAME:
        if body.get(name) is not None:
            request[name] = body[name]
    stop = body.get("stop")
    if isinstance(stop, str):
        request["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        request["stop_sequences"] = [str(s) for s in stop]
    tools = _tools(body.get("tools"))
    if tools:
        request["tools"] = tools
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None and tools:
        request["tool_choice"] = choice
    if isinstance(body.get("user"), str):
        request["metadata"] = {"user_id": body["user"]}
    if body.get("stream") is True:
        request["stream"] = True
    return request


# -- response ---------------------------------------------------------------------------------


def _completion_id(message_id: Any) -> str:
    return "chatcmpl-" + (str(message_id) if message_id else secrets.token_hex(12))


class AnthropicAdapter(ProviderAdapter):
    """``POST {base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version``."""

    dialect = "anthropic"

    def build_request(self, call: ChatCall) -> UpstreamRequest:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if call.stream else "application/json",
            "User-Agent": USER_AGENT,
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if self.provider.api_key:
            headers["x-api-key"] = self.provider.api_key
        return UpstreamRequest(
            url=f"{self.provider.base_url}/v1/messages",
            headers=headers,
            json=messages_request(call.forwardable_body(), call.route.upstream_model, self.rules),
            stream=call.stream,
        )

    def translate_response(self, call: ChatCall, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("content"), list):
            raise UpstreamFormatError("the response has no content list")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in payload["content"]:
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                calls.append(
                    {
                        "id": str(block.get("id", "")),
                        "type": "function",
                        "function": {
                            "name": str(block.get("name", "")),
                            "arguments": json.dumps(block.get("input", {}), separators=(",", ":")),
                        },
                    }
                )
        text = "".join(texts)
        finish = _finish_reason(payload.get("stop_reason"), self.rules) or "stop"
        message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
        if finish == "content_filter":
            message["content"], message["refusal"] = None, text
        if calls:
            message["tool_calls"] = calls
        return {
            "id": _completion_id(payload.get("id")),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.route.model_id,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage_from_anthropic(payload.get("usage"), cache=self.rules.cache_tokens).to_edgee(),
        }

    def stream_decoder(self, call: ChatCall) -> StreamDecoder:
        return _AnthropicStreamDecoder(self.name, call.route.model_id, self.rules)

    def upstream_status(self, status: int) -> int:
        if status == OVERLOADED and not self.rules.overload_is_server_error:
            return _OVERLOAD_MISREAD
        return status


class _AnthropicStreamDecoder(StreamDecoder):
    """Named SSE events (``message_start`` ... ``message_stop``) into chunks, one event at a time."""

    def __init__(self, provider: str, model_id: str, rules: TranslationRules) -> None:
        self._provider = provider
        self._rules = rules
        self._identity: dict[str, Any] = {
            "id": _completion_id(None),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model_id,
        }
        self._input_usage: Mapping[str, Any] = {}
        #: content-block index -> tool-call index (OpenAI numbers tool calls from 0)
        self._tool_index: dict[int, int] = {}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Chunk:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return Chunk({**self._identity, "choices": [choice]})

    def _failure(self, detail: str) -> list[Chunk | StreamFailure]:
        return [StreamFailure(_errors.provider_error(self._provider, detail))]

    def feed(self, event: ServerSentEvent) -> list[Chunk | StreamFailure]:
        try:
            payload = event_object(event)
        except UpstreamFormatError as exc:
            return self._failure(str(exc))
        if payload is None:
            return []
        kind = payload.get("type") or event.event
        if kind == "error" or event.event == "error":
            error = payload.get("error")
            message = error.get("message") if isinstance(error, Mapping) else error
            return self._failure(str(message or "stream error"))
        if kind == "message_start":
            message = payload.get("message")
            message = message if isinstance(message, Mapping) else {}
            self._identity["id"] = _completion_id(message.get("id"))
            usage = message.get("usage")
            self._input_usage = usage if isinstance(usage, Mapping) else {}
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, Mapping) and block.get("type") == "tool_use":
                position = self._tool_index.setdefault(int(payload.get("index", 0)), len(self._tool_index))
                call = {
                    "index": position,
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {"name": str(block.get("name", "")), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = payload.get("delta")
            delta = delta if isinstance(delta, Mapping) else {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self._chunk({"content": str(delta["text"])})]
            if (
                delta.get("type") == "input_json_delta"
                and delta.get("partial_json")
                and self._rules.stream_tool_arguments
            ):
                tool = self._tool_index.get(int(payload.get("index", 0)))
                if tool is None:
                    return self._failure("sent tool input for a block that is not a tool call")
                fragment = {"index": tool, "function": {"arguments": str(delta["partial_json"])}}
                return [self._chunk({"tool_calls": [fragment]})]
            return []
        if kind == "message_delta":
            delta = payload.get("delta")
            stop_reason = delta.get("stop_reason") if isinstance(delta, Mapping) else None
            usage = payload.get("usage")
            if not isinstance(usage, Mapping) or not self._rules.stream_usage_from_delta:
                usage = {}
            merged = {**self._input_usage, **usage}
            chunk = self._chunk({}, _finish_reason(stop_reason, self._rules) or "stop")
            chunk.data["usage"] = usage_from_anthropic(merged, cache=self._rules.cache_tokens).to_edgee()
            return [chunk]
        if kind == "message_stop":
            self.finished = True
        # ping, content_block_stop, and event types added later carry nothing for the client
        return []
