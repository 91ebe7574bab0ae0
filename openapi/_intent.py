"""What a chat request asks for, whatever dialect carries it: the provider-neutral intent.

A gateway translates an OpenAI-shaped request into a provider's own API; what must survive the
translation is the *intent*: the system prompt, the conversation in order (texts, the assistant's
tool calls, the tool results answering them), the tools offered, the tool choice and the answer
budget. The mock derives an ``Intent`` from every request it journals, in each dialect it speaks
(``mock_providers/dialects``); the suite derives one from the body the client sent
(``intent_from_openai``) and compares the two, so a check reads intent, not OpenAI field names.

The conversation is flat: a list of ``Part``s in order, so turn boundaries (Anthropic merges
consecutive tool results into one user turn, Gemini puts function responses in user turns) do
not matter, only what was said, by whom, and in which order. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Intent", "Part", "PartKind", "ToolIntent", "intent_from_openai", "json_value"]

PartKind = Literal["text", "tool_call", "tool_result"]


@dataclass(frozen=True)
class Part:
    """One thing said in the conversation."""

    #: who said it: ``user`` or ``assistant`` (a tool result is the user's side of the exchange)
    role: str
    kind: PartKind
    #: the text of a ``text`` part (an assistant's refusal in the history is text too)
    text: str = ""
    #: the tool call id a ``tool_call`` carries or a ``tool_result`` answers (None: the dialect has none)
    id: str | None = None
    #: the function a ``tool_call`` calls or a ``tool_result`` answers (None: not named)
    name: str | None = None
    #: a ``tool_call``'s arguments as a JSON value (a string when they were not valid JSON)
    arguments: Any = None
    #: a ``tool_result``'s content: text, or the JSON value a dialect carries it as
    content: Any = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "kind": self.kind}
        if self.kind == "text":
            data["text"] = self.text
        else:
            data["id"] = self.id
            data["name"] = self.name
            data["arguments" if self.kind == "tool_call" else "content"] = (
                self.arguments if self.kind == "tool_call" else self.content
            )
        return data

    @classmethod
    def from_json(cls, data: Any) -> Part:
        if not isinstance(data, Mapping) or data.get("kind") not in ("text", "tool_call", "tool_result"):
            raise ValueError(f"an intent part is not a known part: {str(data)[:80]}")
        return cls(
            role=str(data.get("role", "")),
            kind=data["kind"],
            text=str(data.get("text") or ""),
            id=_optional_str(data.get("id")),
            name=_optional_str(data.get("name")),
            arguments=data.get("arguments"),
            content=data.get("content"),
        )


@dataclass(frozen=True)
class ToolIntent:
    """A function offered to the model."""

    name: str
    description: str | None = None
    #: the JSON Schema of its arguments (None: the tool takes none / declared none)
    parameters: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class Intent:
    """What one chat request asks the model for."""

    #: the model id as the provider received it
    model: str | None = None
    stream: bool = False
    #: system (and developer) instructions, in order
    system: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()
    tools: tuple[ToolIntent, ...] = ()
    #: ``auto``, ``none``, ``required``, ``function:<name>``, or None when the request set none
    tool_choice: str | None = None
    #: the answer budget in tokens, None when not set
    max_tokens: int | None = None
    #: stop sequences, in order
    stop: tuple[str, ...] = ()
    temperature: float | None = None
    #: anything else the dialect says was asked (kept for a report, never compared)
    notes: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "stream": self.stream,
            "system": list(self.system),
            "parts": [part.to_json() for part in self.parts],
            "tools": [tool.to_json() for tool in self.tools],
            "tool_choice": self.tool_choice,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "temperature": self.temperature,
            "notes": dict(self.notes),
        }

    @classmethod
    def from_json(cls, data: Any) -> Intent:
        """Read a served intent; ``ValueError`` when it has the wrong shape."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an intent is not an object: {type(data).__name__}")
        tools = []
        for tool in data.get("tools") or ():
            if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
                raise ValueError(f"an intent tool has no name: {str(tool)[:80]}")
            tools.append(
                ToolIntent(tool["name"], _optional_str(tool.get("description")), tool.get("parameters"))
            )
        budget = data.get("max_tokens")
        temperature = data.get("temperature")
        return cls(
            model=_optional_str(data.get("model")),
            stream=data.get("stream") is True,
            system=tuple(str(text) for text in data.get("system") or ()),
            parts=tuple(Part.from_json(part) for part in data.get("parts") or ()),
            tools=tuple(tools),
            tool_choice=_optional_str(data.get("tool_choice")),
            max_tokens=budget if isinstance(budget, int) and not isinstance(budget, bool) else None,
            stop=tuple(str(text) for text in data.get("stop") or ()),
            temperature=float(temperature)
            if isinstance(temperature, int | float) and not isinstance(temperature, bool)
            else None,
            notes=dict(data.get("notes") or {}),
        )


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def json_value(text: Any) -> Any:
    """Tool-call arguments as a JSON value: parsed when they are JSON text, else as given."""
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _texts(content: Any) -> list[str]:
    """The texts of an OpenAI message ``content``: a string, or the ``text`` of each text part."""
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, Sequence):
        return [
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str) and part["text"]
        ]
    return []


def _openai_tool_choice(raw: Any) -> str | None:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping):
        function = raw.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str):
            return "function:" + name
    return None


def intent_from_openai(body: Any) -> Intent:
    """The intent of an OpenAI chat completions request body (what a client sends a gateway).

    System and developer messages become ``system``; a tool message becomes a ``tool_result``
    part named after the call it answers (found by ``tool_call_id``); an assistant's
    ``refusal`` in the history is assistant text. Shapes that are not OpenAI's are skipped,
    not refused: the provider's validation is the mock's job, not this function's.
    """
    if not isinstance(body, Mapping):
        return Intent()
    system: list[str] = []
    parts: list[Part] = []
    names: dict[str, str] = {}
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_texts(message.get("content")))
        elif role == "user":
            parts.extend(Part("user", "text", text=text) for text in _texts(message.get("content")))
        elif role == "assistant":
            texts = _texts(message.get("content"))
            refusal = message.get("refusal")
            if isinstance(refusal, str) and refusal:
                texts.append(refusal)
            parts.extend(Part("assistant", "text", text=text) for text in texts)
            calls = message.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                function = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(function, Mapping):
                    continue
                call_id = _optional_str(call.get("id"))
                name = _optional_str(function.get("name"))
                if call_id is not None and name is not None:
                    names[call_id] = name
                parts.append(
                    Part(
                        "assistant",
                        "tool_call",
                        id=call_id,
                        name=name,
                        arguments=json_value(function.get("arguments")),
                    )
                )
        elif role == "tool":
            call_id = _optional_str(message.get("tool_call_id"))
            content = message.get("content")
            text = "\n".join(_texts(content)) if not isinstance(content, str) else content
            parts.append(Part("user", "tool_result", id=call_id, name=names.get(call_id or ""), content=text))
    tools: list[ToolIntent] = []
    raw_tools = body.get("tools")
    for tool in raw_tools if isinstance(raw_tools, list) else ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            tools.append(
                ToolIntent(
                    function["name"], _optional_str(function.get("description")), function.get("parameters")
                )
            )
    budget = next(
        (body[key] for key in ("max_completion_tokens", "max_tokens") if isinstance(body.get(key), int)),
        None,
    )
    stop = body.get("stop")
    temperature = body.get("temperature")
    return Intent(
        model=_optional_str(body.get("model")),
        stream=body.get("stream") is True,
        system=tuple(system),
        parts=tuple(parts),
        tools=tuple(tools),
        tool_choice=_openai_tool_choice(body.get("tool_choice")),
        max_tokens=budget if not isinstance(budget, bool) else None,
        stop=(stop,)
        if isinstance(stop, str)
        else tuple(s for s in stop or () if isinstance(s, str))
        if isinstance(stop, str | list)
        else (),
        temperature=float(temperature)
        if isinstance(temperature, int | float) and not isinstance(temperature, bool)
        else None,
    )
