"""The OpenAI chat completions dialect.

The Edgee request *is* an OpenAI request, so going upstream is mostly removal: the
Edgee fields are already gone (:meth:`ChatCall.forwardable_body`), the model id loses
its author prefix, and a stream always asks for usage (the gateway accounts for every
request, whether or not the client wants the usage chunk). Coming back, the model id
regains the prefix and usage is renamed to Edgee's vocabulary; every other field
passes through untouched.
"""

from __future__ import annotations

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

__all__ = ["OpenAIAdapter", "usage_from_openai"]

USER_AGENT = "gateproof-reference-gateway"


def usage_from_openai(usage: Any) -> Usage:
    """OpenAI's usage (``prompt_tokens_details`` / ``completion_tokens_details``) as :class:`Usage`."""
    if not isinstance(usage, Mapping):
        return Usage()
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    return Usage.from_edgee(
        {
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "input_tokens_details": prompt_details if isinstance(prompt_details, Mapping) else {},
            "output_tokens_details": completion_details if isinstance(completion_details, Mapping) else {},
        }
    )


class OpenAIAdapter(ProviderAdapter):
    """``POST {base_url}/chat/completions`` with a bearer credential."""

    dialect = "openai"

    def build_request(self, call: ChatCall) -> UpstreamRequest:
        body = call.forwardable_body()
        body["model"] = call.route.upstream_model
        if call.stream:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if call.stream else "application/json",
            "User-Agent": USER_AGENT,
        }
        if self.provider.api_key:
            headers["Authorization"] = f"Bearer {self.provider.api_key}"
        return UpstreamRequest(
            url=f"{self.provider.base_url}/chat/completions", headers=headers, json=body, stream=call.stream
        )

    def translate_response(self, call: ChatCall, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
            raise UpstreamFormatError("the response has no choices list")
        response = dict(payload)
        response["model"] = call.route.model_id
        response["usage"] = usage_from_openai(payload.get("usage")).to_edgee()
        return response

    def stream_decoder(self, call: ChatCall) -> StreamDecoder:
        return _OpenAIStreamDecoder(self.name, call.route.model_id)


class _OpenAIStreamDecoder(StreamDecoder):
    """``data: {chunk}`` events, then ``data: [DONE]``; usage arrives on a ``choices: []`` chunk."""

    def __init__(self, provider: str, model_id: str) -> None:
        self._provider = provider
        self._model_id = model_id

    def feed(self, event: ServerSentEvent) -> list[Chunk | StreamFailure]:
        if event.data.strip() == "[DONE]":
            self.finished = True
            return []
        try:
            payload = event_object(event)
        except UpstreamFormatError as exc:
            return [StreamFailure(_errors.provider_error(self._provider, str(exc)))]
        if payload is None:
            return []
        if "error" in payload and "choices" not in payload:
            error = payload["error"]
            message = error.get("message") if isinstance(error, dict) else error
            return [StreamFailure(_errors.provider_error(self._provider, str(message or "stream error")))]
        chunk = payload  # parsed for this event alone: nothing else holds it
        chunk["model"] = self._model_id
        usage = chunk.pop("usage", None)
        if usage is not None:
            # OpenAI sends ``usage: null`` on every chunk when usage is on; only a real one is kept.
            chunk["usage"] = usage_from_openai(usage).to_edgee()
        return [Chunk(chunk)]
