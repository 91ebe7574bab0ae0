"""Anthropic's Messages wire format, under ``/anthropic``: ``POST /anthropic/v1/messages`` and the model list.

One mock process serves every dialect. OpenAI's routes stay at the root
(``/v1/chat/completions``, ``/v1/models``), because that is where OpenAI clients
look; Anthropic's live under ``PREFIX`` (``/anthropic``), so a client's base URL
is ``http://127.0.0.1:<port>/anthropic`` and the two ``/v1/models`` never
collide (Gemini's go under ``/gemini`` the same way).

Shapes follow the Messages API as the official ``anthropic`` SDK parses it:

- requests carry the key in ``x-api-key`` (or, as the official SDK 2.x sends its
  ``api_key``, ``Authorization: Bearer``) and the API version in
  ``anthropic-version`` (required: the real API answers 400 without it);
  ``max_tokens`` is required; ``messages`` alternate ``user`` / ``assistant``
  (consecutive same-role messages are merged into one turn, as the API does);
  ``system`` is a string or text blocks; content is a string or blocks (``text``,
  ``image``, ``document``, ``tool_use`` in assistant turns, ``tool_result`` in
  user turns, each answering a ``tool_use`` id of the assistant turn just before);
- a non-streamed answer is a ``message`` with ``content`` blocks, ``stop_reason``
  (``end_turn``, ``max_tokens``, ``tool_use``, ``refusal``), ``stop_sequence``
  and ``usage`` (``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``,
  ``cache_read_input_tokens``);
- a streamed answer is SSE with ``event:`` names: ``message_start`` (the message
  with empty content, the true ``input_tokens`` and ``output_tokens: 1``, as the
  real stream reports before generating), ``content_block_start``, ``ping``,
  ``content_block_delta`` (``text_delta``, or ``input_json_delta`` with
  ``partial_json`` for a ``tool_use`` block), ``content_block_stop``,
  ``message_delta`` (``stop_reason``, ``stop_sequence``, the cumulative
  ``usage.output_tokens``), ``message_stop``; an error inside a stream is an
  ``event: error``;
- errors are ``{"type": "error", "error": {"type", "message"}, "request_id"}``
  with the HTTP status (and the ``request-id`` header); the error type follows the status (400 ``invalid_request_error``, 401
  ``authentication_error``, 403 ``permission_error``, 404 ``not_found_error``,
  413 ``request_too_large``, 429 ``rate_limit_error``, 500 ``api_error``, 504
  ``timeout_error``, 529 ``overloaded_error``).

The plan is the shared ``Scenario``: only the rendering differs. ``text`` ends
``end_turn``, ``length`` (or a cut at ``max_tokens``) ends ``max_tokens``,
``tool_call`` gives ``tool_use`` blocks (ids ``toolu_...``), ``refusal`` is a text
block holding the refusal with ``stop_reason: refusal`` (a real value of the
current API) and ``stop_details: {"type": "refusal"}``. The plan has no stop
sequences, so the mock never ends on ``stop_sequence`` (``stop_sequence`` is
always null); ``stop_sequences`` is only validated.

The directive is read from the last user message that has text (a user turn
holding only ``tool_result`` blocks answers tools, it is not a new question);
the ``script`` round due is the number of assistant turns with ``tool_use``
after it.

Input tokens follow the shared convention (``gateproof.openapi.gather_prompt``)
applied to the Anthropic request turned into the neutral shape: the system
prompt as one message, then each message with the strings that cost tokens
(text, a ``tool_use`` block's id, name and compact JSON input, a
``tool_result``'s id and text), plus the tools as compact JSON. The mock has no
prompt cache: the directive's ``cached=N`` says N of those tokens were read from one,
so ``input_tokens`` is the prompt less N and ``cache_read_input_tokens`` is N (in the
complete message and in ``message_start``), as Anthropic splits them;
``cache_creation_input_tokens`` is always 0.

``messages_intent`` reads what a request asks for (``gateproof.openapi.Intent``), for
the journal: the suite compares it with what the client asked the gateway.

Requests are refused as the Messages API refuses them; the rules, with their
sources, are in ``mock_providers/PROVIDER_RULES.md`` (Anthropic section).
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from gateproof.mock_providers._catalogue import ANTHROPIC_CATALOGUE, Catalogue, ModelSpec
from gateproof.mock_providers._credentials import mask_key
from gateproof.mock_providers._dialect import Incoming, StaticRoute, truncated_data_frame
from gateproof.mock_providers._directives import directive_cid
from gateproof.mock_providers._errors import ProviderError, RequestRejected
from gateproof.mock_providers._json import canonical
from gateproof.mock_providers._json import compact as _dumps
from gateproof.mock_providers._json import quote as _quote
from gateproof.mock_providers._replies import Frame, FrameRole, LazyFrames, Reply
from gateproof.mock_providers._scenarios import ChatRequest, Finish, PieceKind, Scenario, ToolSpec, Usage
from gateproof.mock_providers._stamps import stamped_string
from gateproof.mock_providers._tokens import count_inline
from gateproof.openapi import Intent, Part, ToolIntent, gather_prompt

__all__ = ["ANTHROPIC_VERSION_HEADER", "PREFIX", "AnthropicDialect", "messages_intent"]

#: where the Anthropic routes live in the one mock process (a client's base URL ends with it)
PREFIX = "/anthropic"
#: the header naming the API version; the Messages API refuses a request without it
ANTHROPIC_VERSION_HEADER = "anthropic-version"

_VERSION = ANTHROPIC_VERSION_HEADER.encode()
_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
_NO_CACHE = (b"cache-control", b"no-cache")

#: status -> Anthropic's error type
_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_STOP_REASONS = {Finish.STOP: "end_turn", Finish.LENGTH: "max_tokens", Finish.TOOL_CALLS: "tool_use"}
_ROLES = ("user", "assistant")
#: content block types a request may carry (the ones the mock reads, plus media it only passes over)
_BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result"}
)
#: the models' display names (``GET /v1/models``)
_DISPLAY_NAMES = {
    "claude-sonnet-4-5": "Claude Sonnet 4.5",
    "claude-haiku-4-5": "Claude Haiku 4.5",
    "claude-opus-4-1": "Claude Opus 4.1",
}


def _reject(message: str, status: int = 400) -> RequestRejected:
    return RequestRejected(ProviderError(status=status, message=message))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a valid boolean"
    if isinstance(value, int):
        return "a valid integer"
    if isinstance(value, str):
        return "a valid string"
    if isinstance(value, list):
        return "a valid list"
    return "a valid dictionary"


def _header(incoming: Incoming, name: bytes) -> str | None:
    for key, value in incoming.headers:
        if key == name:
            return value.decode("latin-1").strip()
    return None


def _blocks(content: Any, where: str) -> list[Mapping[str, Any]]:
    """A message's content as blocks (a string is one text block), each checked for its type."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _reject(f"{where}: Input should be a valid string or a valid list")
    for index, block in enumerate(content):
        if not isinstance(block, Mapping):
            raise _reject(f"{where}.{index}: Input should be a valid dictionary")
        kind = block.get("type")
        if kind not in _BLOCK_TYPES:
            raise _reject(
                f"{where}.{index}.type: Input tag {_quoted(kind)} does not match any of the expected tags"
            )
        if kind == "text" and not isinstance(block.get("text"), str):
            raise _reject(f"{where}.{index}.text: Field required")
        if kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise _reject(f"{where}.{index}: a tool_use block needs a string 'id' and 'name'")
            if not isinstance(block.get("input"), Mapping):
                raise _reject(f"{where}.{index}.input: Input should be a valid dictionary")
        if kind == "tool_result" and not isinstance(block.get("tool_use_id"), str):
            raise _reject(f"{where}.{index}.tool_use_id: Field required")
    return list(content)


def _quoted(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _is_empty(blocks: Sequence[Mapping[str, Any]]) -> bool:
    return not blocks or all(b.get("type") == "text" and not b.get("text") for b in blocks)


#: a turn after merging: (role, index of its first message, its blocks)
_Turn = tuple[str, int, list[Mapping[str, Any]]]


def _check_messages(raw: Any) -> list[_Turn]:
    """The conversation as merged turns, refused where the Messages API refuses it.

    Consecutive messages of one role form one turn (the API merges them). Every
    ``tool_use`` of an assistant turn must be answered by a ``tool_result`` in the
    next turn, and every ``tool_result`` must answer a ``tool_use`` of the turn
    just before; a ``tool_use`` in a user turn or a ``tool_result`` in an assistant
    turn is refused. Only the final assistant message may be empty (a prefill).
    """
    if raw is None:
        raise _reject("messages: Field required")
    if not isinstance(raw, list):
        raise _reject("messages: Input should be a valid list")
    if not raw:
        raise _reject("messages: List should have at least 1 item after validation, not 0")
    turns: list[_Turn] = []
    #: where each tool_result block sits (``messages.i.content.j``), keyed by the block's identity
    places: dict[int, str] = {}
    seen_ids: set[str] = set()
    for index, message in enumerate(raw):
        where = f"messages.{index}"
        if not isinstance(message, Mapping):
            raise _reject(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role is None:
            raise _reject(f"{where}.role: Field required")
        if role not in _ROLES:
            raise _reject(f"{where}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _reject(f"{where}.content: Field required")
        blocks = _blocks(message.get("content"), f"{where}.content")
        last = index == len(raw) - 1
        if _is_empty(blocks) and not (last and role == "assistant"):
            raise _reject(
                f"{where}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        for position, block in enumerate(blocks):
            if role == "user" and block.get("type") == "tool_use":
                raise _reject(
                    f"{where}.content.{position}: tool_use blocks may only appear in assistant turns"
                )
            if role == "assistant" and block.get("type") == "tool_result":
                raise _reject(f"{where}.content.{position}: tool_result blocks may only appear in user turns")
            if block.get("type") == "tool_result":
                places[id(block)] = f"{where}.content.{position}"
            if block.get("type") == "tool_use":
                if block["id"] in seen_ids:
                    raise _reject(f"{where}.content.{position}: `tool_use` ids must be unique")
                seen_ids.add(block["id"])
        if turns and turns[-1][0] == role:
            turns[-1][2].extend(blocks)
        else:
            turns.append((role, index, list(blocks)))
    for turn_index, (role, index, blocks) in enumerate(turns):
        if role != "assistant":
            continue
        asked = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if not asked:
            continue
        following = turns[turn_index + 1] if turn_index + 1 < len(turns) else None
        answered = (
            {b["tool_use_id"] for b in following[2] if b.get("type") == "tool_result"} if following else set()
        )
        missing = [call_id for call_id in asked if call_id not in answered]
        if missing:
            raise _reject(
                f"messages.{index}: `tool_use` ids were found without "
                f"`tool_result` blocks immediately after: {', '.join(missing)}. Each `tool_use` block must "
                "have a corresponding `tool_result` block in the next message."
            )
    for turn_index, (role, _, blocks) in enumerate(turns):
        if role != "user":
            continue
        previous = turns[turn_index - 1] if turn_index > 0 else None
        asked_before = {b["id"] for b in previous[2] if b.get("type") == "tool_use"} if previous else set()
        for block in blocks:
            if block.get("type") == "tool_result" and block["tool_use_id"] not in asked_before:
                raise _reject(
                    f"{places[id(block)]}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in the previous message."
                )
    return turns


def _system(raw: Any) -> list[str]:
    """The system prompt's texts (a string, or text blocks)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list):
        raise _reject("system: Input should be a valid string or a valid list")
    texts = []
    for index, block in enumerate(raw):
        if (
            not isinstance(block, Mapping)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise _reject(f"system.{index}: Input should be a text block ({{'type': 'text', 'text': ...}})")
        texts.append(block["text"])
    return texts


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _reject("tools: Input should be a valid list")
    tools: list[ToolSpec] = []
    for index, tool in enumerate(raw):
        if not isinstance(tool, Mapping):
            raise _reject(f"tools.{index}: Input should be a valid dictionary")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _reject(f"tools.{index}.name: Field required")
        if tool.get("type") not in (None, "custom"):
            continue  # a server tool (web search, ...): no schema of ours to fill
        schema = tool.get("input_schema")
        if not isinstance(schema, Mapping):
            raise _reject(f"tools.{index}.input_schema: Field required")
        if schema.get("type") != "object":
            raise _reject(f"tools.{index}.input_schema.type: Input should be 'object'")
        description = tool.get("description")
        if description is not None and not isinstance(description, str):
            raise _reject(f"tools.{index}.description: Input should be a valid string")
        tools.append(ToolSpec(name=name, parameters=schema))
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        raise _reject("tools: Tool names must be unique.")
    return tuple(tools)


def _tool_choice(raw: Any, tools: tuple[ToolSpec, ...]) -> tuple[str | None, bool, bool]:
    """(forced tool name, a tool call required, tools forbidden) from ``tool_choice``."""
    if raw is None:
        return None, False, False
    if not isinstance(raw, Mapping):
        raise _reject("tool_choice: Input should be a valid dictionary")
    kind = raw.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise _reject(
            f"tool_choice.type: Input tag {_quoted(kind)} does not match any of the expected tags: "
            "'auto', 'any', 'tool', 'none'"
        )
    if not tools and kind in ("any", "tool"):
        raise _reject("tool_choice may only be specified while providing tools.")
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise _reject("tool_choice.tool.name: Field required")
        if name not in {tool.name for tool in tools}:
            raise _reject(f"tool_choice.name: Tool '{name}' not found in provided tools")
        return name, True, False
    return None, kind == "any", kind == "none"


def _max_tokens(body: Mapping[str, Any]) -> int:
    value = body.get("max_tokens")
    if value is None:
        raise _reject("max_tokens: Field required")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _reject("max_tokens: Input should be a valid integer")
    if value < 1:
        raise _reject("max_tokens: Input should be greater than or equal to 1")
    return value


def _options(body: Mapping[str, Any]) -> bool:
    """Check the optional fields the mock does not act on; return ``stream``."""
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _reject("stream: Input should be a valid boolean")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise _reject("stop_sequences: Input should be a valid list of strings")
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise _reject("temperature: Input should be a valid number")
        if not 0 <= temperature <= 1:
            raise _reject(
                "temperature: Input should be less than or equal to 1 and greater than or equal to 0"
            )
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise _reject("metadata: Input should be a valid dictionary")
        user = metadata.get("user_id")
        if user is not None and not isinstance(user, str):
            raise _reject("metadata.user_id: Input should be a valid string")
    return stream


def _text_of(blocks: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))


def _asking_turn(turns: Sequence[_Turn]) -> int | None:
    """Index of the last user turn that says something (has text), where the directive lives."""
    for position in range(len(turns) - 1, -1, -1):
        role, _, blocks = turns[position]
        if role == "user" and any(b.get("type") == "text" and b.get("text") for b in blocks):
            return position
    return None


def _neutral_messages(system: Sequence[str], turns: Sequence[_Turn]) -> list[dict[str, Any]]:
    """The conversation in the shape ``gather_prompt`` counts: role plus the strings that cost tokens."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": [{"text": text} for text in system]})
    for role, _, blocks in turns:
        texts: list[str] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "text":
                texts.append(block["text"])
            elif kind == "tool_use":
                texts.extend((block["id"], block["name"], _dumps(block["input"])))
            elif kind == "tool_result":
                texts.append(block["tool_use_id"])
                inner = block.get("content")
                if isinstance(inner, str):
                    texts.append(inner)
                elif isinstance(inner, list):
                    texts.append(_text_of([b for b in inner if isinstance(b, Mapping)]))
        messages.append({"role": role, "content": [{"text": text} for text in texts]})
    return messages


def _event(name: bytes, payload: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + payload + b"\n\n"


_PING = _event(b"ping", b'{"type":"ping"}')
_STOP = _event(b"message_stop", b'{"type":"message_stop"}')
_TEXT_OPEN = _event(
    b"content_block_start",
    b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
)
#: a text delta event around its JSON string
_DELTA_PREFIX = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
_DELTA_SUFFIX = b"}}\n\n"


def _tool_use_id(call_id: str) -> str:
    return "toolu_" + call_id.removeprefix("call_")


#: Anthropic's ``tool_choice`` types in the intent's vocabulary (``tool`` names its function)
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def _intent_texts(content: Any) -> list[str]:
    """The non-empty texts of a string or of its text blocks (empty texts say nothing)."""
    if isinstance(content, str):
        return [content] if content else []
    if not isinstance(content, list):
        return []
    return [
        b["text"]
        for b in content
        if isinstance(b, Mapping) and b.get("type") == "text" and isinstance(b.get("text"), str) and b["text"]
    ]


def _intent_parts(messages: Any) -> list[Part]:
    """The conversation as flat parts, in order; a tool result is named after its ``tool_use``."""
    parts: list[Part] = []
    names: dict[str, str] = {}
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            continue
        role = str(message["role"])
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks if isinstance(blocks, list) else ():
            if not isinstance(block, Mapping):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
                parts.append(Part(role, "text", text=block["text"]))
            elif kind == "tool_use" and isinstance(block.get("id"), str):
                name = block.get("name") if isinstance(block.get("name"), str) else None
                if name is not None:
                    names[block["id"]] = name
                parts.append(
                    Part("assistant", "tool_call", id=block["id"], name=name, arguments=block.get("input"))
                )
            elif kind == "tool_result" and isinstance(block.get("tool_use_id"), str):
                call_id = block["tool_use_id"]
                inner = block.get("content")
                text = inner if isinstance(inner, str) else "\n".join(_intent_texts(inner))
                parts.append(Part("user", "tool_result", id=call_id, name=names.get(call_id), content=text))
    return parts


def _intent_choice(raw: Any) -> str | None:
    if not isinstance(raw, Mapping):
        return None
    kind = raw.get("type")
    if kind == "tool":
        return "function:" + raw["name"] if isinstance(raw.get("name"), str) else None
    return _CHOICES.get(kind) if isinstance(kind, str) else None


def messages_intent(body: Any) -> Intent:
    """What a Messages API request asks for, in the neutral vocabulary.

    ``system`` (a string or text blocks) is the system prompt; user and assistant text
    blocks are text parts, ``tool_use`` a tool call (its ``input`` the arguments),
    ``tool_result`` a tool result (its string content, or the joined texts of its text
    blocks). Server tools (a ``type`` other than ``custom``) have no schema and are left
    out, as are media and thinking blocks. Shapes that are not Anthropic's are skipped.
    """
    if not isinstance(body, Mapping):
        return Intent()
    tools: list[ToolIntent] = []
    raw_tools = body.get("tools")
    for tool in raw_tools if isinstance(raw_tools, list) else ():
        if (
            isinstance(tool, Mapping)
            and isinstance(tool.get("name"), str)
            and tool.get("type") in (None, "custom")
        ):
            description = tool.get("description")
            tools.append(
                ToolIntent(
                    tool["name"],
                    description if isinstance(description, str) else None,
                    tool.get("input_schema"),
                )
            )
    choice = body.get("tool_choice")
    notes: dict[str, Any] = {}
    if isinstance(choice, Mapping) and isinstance(choice.get("disable_parallel_tool_use"), bool):
        notes["disable_parallel_tool_use"] = choice["disable_parallel_tool_use"]
    budget = body.get("max_tokens")
    if isinstance(budget, float) and budget.is_integer():
        budget = int(budget)  # the API takes 100.0 for 100
    stops = body.get("stop_sequences")
    temperature = body.get("temperature")
    model = body.get("model")
    return Intent(
        model=model if isinstance(model, str) else None,
        stream=body.get("stream") is True,
        system=tuple(_intent_texts(body.get("system"))),
        parts=tuple(_intent_parts(body.get("messages"))),
        tools=tuple(tools),
        tool_choice=_intent_choice(choice),
        max_tokens=budget if isinstance(budget, int) and not isinstance(budget, bool) else None,
        stop=tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else (),
        temperature=float(temperature)
        if isinstance(temperature, int | float) and not isinstance(temperature, bool)
        else None,
        notes=notes,
    )


class AnthropicDialect:
    """Renders scenarios as Anthropic Messages, under ``PREFIX``."""

    name: str = "anthropic"
    prefix: str = PREFIX
    generation_paths: tuple[str, ...] = (PREFIX + "/v1/messages",)
    #: Anthropic answers an overload with its own 529 ``overloaded_error`` (fault ``overload``)
    overload_status: int = 529

    def __init__(self, catalogue: Catalogue = ANTHROPIC_CATALOGUE) -> None:
        #: the Anthropic models (the mock's ``--models`` file extends the OpenAI catalogue only)
        self.catalogue = catalogue

    def _models(self, configured: Catalogue) -> Catalogue:
        """This dialect's models, serving unlisted ids when the mock runs with ``--any-model``."""
        return self.catalogue.with_fallback(configured.fallback)

    # -- requests -----------------------------------------------------------------

    def credential(self, incoming: Incoming) -> str | None:
        """The key of ``x-api-key``, else of ``Authorization: Bearer`` (``None`` when there is none).

        The API documents ``x-api-key``; the official SDK (2.x) sends its ``api_key``
        as a bearer token, so both carry a key.
        """
        key = _header(incoming, b"x-api-key")
        if key:
            return key
        scheme, _, bearer = (_header(incoming, b"authorization") or "").partition(" ")
        return bearer.strip() or None if scheme.lower() == "bearer" else None

    def refuse_credential(self, key: str | None) -> ProviderError:
        if key is None:
            return ProviderError(status=401, message="x-api-key header is required")
        return ProviderError(
            status=401, message=f"invalid x-api-key ({mask_key(key)} is not a key the gateproof mock accepts)"
        )

    def parse_key(self, incoming: Incoming) -> Hashable:
        """Whether the version header is set: ``parse`` reads nothing else of ``incoming``."""
        return bool(_header(incoming, _VERSION))

    def parse(self, body: Any, incoming: Incoming, catalogue: Catalogue = ANTHROPIC_CATALOGUE) -> ChatRequest:
        if not _header(incoming, _VERSION):
            raise _reject(f"{ANTHROPIC_VERSION_HEADER}: header is required")
        if not isinstance(body, Mapping):
            raise _reject("Input should be a valid dictionary")
        model = body.get("model")
        if model is None or model == "":
            raise _reject("model: Field required")
        if not isinstance(model, str):
            raise _reject("model: Input should be a valid string")
        budget = _max_tokens(body)
        turns = _check_messages(body.get("messages"))
        system = _system(body.get("system"))
        raw_tools = body.get("tools")
        tools = _tools(raw_tools)
        forced, required, forbidden = _tool_choice(body.get("tool_choice"), tools)
        stream = _options(body)
        spec = self._models(catalogue).get(model)
        if spec is None:
            raise RequestRejected(ProviderError(status=404, message=f"model: {model}"))
        if budget > spec.max_output_tokens:
            raise _reject(
                f"max_tokens: {budget} > {spec.max_output_tokens}, which is the maximum allowed number of "
                f"output tokens for {model}"
            )
        asking = _asking_turn(turns)
        prompt = gather_prompt(_neutral_messages(system, turns), raw_tools or ())
        tokens = count_inline(prompt)
        rounds = 0
        if asking is not None:
            rounds = sum(
                1
                for role, _, blocks in turns[asking + 1 :]
                if role == "assistant" and any(b.get("type") == "tool_use" for b in blocks)
            )
        return ChatRequest(
            model=model,
            stream=stream,
            include_usage=True,
            max_tokens=budget,
            tools=() if forbidden else tools,
            forced_tool=forced,
            tool_required=required,
            last_user_text=_text_of(turns[asking][2]) if asking is not None else "",
            prompt_tokens=tokens,
            identity=canonical([body.get("system"), body.get("messages"), raw_tools]).encode(),
            prompt=prompt,
            context_window=spec.context_window,
            tool_rounds=rounds,
        )

    def correlation_id(self, body: Any) -> str | None:
        messages = body.get("messages") if isinstance(body, Mapping) else None
        if not isinstance(messages, list):
            return None
        for message in reversed(messages):
            if not isinstance(message, Mapping) or message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                text = content
            elif isinstance(content, list):
                text = _text_of([b for b in content if isinstance(b, Mapping)])
            else:
                continue
            if not text:
                continue
            return directive_cid(text)
        return None

    def context_exceeded(
        self, request: ChatRequest, prompt_tokens: int, complete: bool
    ) -> ProviderError | None:
        window = request.context_window
        if window is None:
            return None
        counted = f"{prompt_tokens}" if complete else f"more than {prompt_tokens - 1}"
        if prompt_tokens > window or (not complete and request.max_tokens is None):
            return ProviderError(400, f"prompt is too long: {counted} tokens > {window} maximum")
        budget = request.max_tokens or 0
        if prompt_tokens + budget > window or not complete:
            return ProviderError(
                400,
                f"input length and `max_tokens` exceed context limit: {counted} + {budget} > {window}, "
                "decrease input length or `max_tokens` and try again",
            )
        return None

    # -- answers ------------------------------------------------------------------

    def usage_record(self, usage: Usage) -> dict[str, int]:
        """Anthropic's split: ``input_tokens`` are the prompt tokens *not* read from the cache."""
        return {
            "input_tokens": usage.prompt_tokens - usage.cached_tokens,
            "output_tokens": usage.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached_tokens,
        }

    def intent(self, body: Any, path: str, query: str) -> Intent:
        return messages_intent(body)

    def render(self, scenario: Scenario, request: ChatRequest, created: int) -> Reply:
        if scenario.error is not None:
            return self.render_error(scenario.error, at=scenario.pacing.ttft)
        request_id = (b"request-id", b"req_" + scenario.ident.encode())
        if request.stream:
            return Reply(
                status=200,
                headers=(_SSE, _NO_CACHE, request_id),
                frames=self._events(scenario, request),
                streamed=True,
                pieces=len(scenario.pieces),
            )
        body = _dumps(self._message(scenario, request)).encode()
        return Reply(
            status=200,
            headers=(_JSON, (b"content-length", str(len(body)).encode()), request_id),
            frames=(Frame(body, scenario.pacing.whole_at(len(scenario.pieces)), FrameRole.BODY),),
            pieces=len(scenario.pieces),
        )

    @staticmethod
    def _stop_reason(scenario: Scenario) -> str:
        return "refusal" if scenario.refusal is not None else _STOP_REASONS[scenario.finish]

    def _message(self, scenario: Scenario, request: ChatRequest) -> dict[str, Any]:
        content: list[dict[str, Any]]
        if scenario.tool_calls:
            content = [
                {
                    "type": "tool_use",
                    "id": _tool_use_id(c.id),
                    "name": c.name,
                    "input": json.loads(c.arguments),
                }
                for c in scenario.tool_calls
            ]
        else:
            content = [{"type": "text", "text": scenario.refusal or scenario.text or ""}]
        message: dict[str, Any] = {
            "id": "msg_" + scenario.ident,
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": self._stop_reason(scenario),
            "stop_sequence": None,
        }
        if scenario.refusal is not None:
            message["stop_details"] = {"type": "refusal", "category": None, "explanation": None}
        message["usage"] = self.usage_record(scenario.usage)
        return message

    def _events(self, scenario: Scenario, request: ChatRequest) -> Sequence[Frame]:
        """Every SSE event of the stream, each stamped with its due time.

        A text (or refusal) answer's events are made one by one as the delivery reaches them
        (``_TextStream``); a tool-call answer's, whose block boundaries fall between pieces,
        are made at once.
        """
        if not scenario.tool_calls:
            return _TextStream(self, scenario, request).frames()
        ttft, itl = scenario.pacing.ttft, scenario.pacing.itl
        frames: list[Frame] = [
            Frame(_event(b"message_start", self._start(scenario, request)), ttft, FrameRole.OPEN),
        ]
        content = FrameRole.CONTENT
        frames.append(Frame(_PING, ttft, FrameRole.OPEN))
        open_block = -1
        for position, (kind, text, call_index) in enumerate(scenario.pieces):
            at = ttft + position * itl
            if kind is PieceKind.TOOL_START:
                if open_block >= 0:
                    frames.append(self._block_stop(open_block, at))
                call = scenario.tool_calls[call_index]
                block = {
                    "type": "content_block_start",
                    "index": call_index,
                    "content_block": {
                        "type": "tool_use",
                        "id": _tool_use_id(call.id),
                        "name": call.name,
                        "input": {},
                    },
                }
                frames.append(Frame(_event(b"content_block_start", _dumps(block).encode()), at, content))
                open_block = call_index
            else:
                fragment = (
                    f'{{"type":"content_block_delta","index":{call_index},'
                    f'"delta":{{"type":"input_json_delta","partial_json":{_quote(text)}}}}}'
                )
                frames.append(Frame(_event(b"content_block_delta", fragment.encode()), at, content))
        end = ttft + max(len(scenario.pieces) - 1, 0) * itl
        if open_block >= 0:
            frames.append(self._block_stop(open_block, end))
        frames.append(Frame(_event(b"message_delta", self._finish(scenario)), end, FrameRole.FINISH))
        frames.append(Frame(_STOP, end, FrameRole.TERMINAL))
        return tuple(frames)

    def _start(self, scenario: Scenario, request: ChatRequest) -> bytes:
        """The ``message_start`` payload: the message with no content, the true input tokens."""
        usage = scenario.usage
        start_usage = self.usage_record(
            Usage(usage.prompt_tokens, min(1, usage.completion_tokens), usage.cached_tokens)
        )
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_" + scenario.ident,
                "type": "message",
                "role": "assistant",
                "model": request.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        }
        return _dumps(start).encode()

    def _finish(self, scenario: Scenario) -> bytes:
        """The ``message_delta`` payload: why the answer stopped, the output tokens."""
        delta: dict[str, Any] = {"stop_reason": self._stop_reason(scenario), "stop_sequence": None}
        if scenario.refusal is not None:
            delta["stop_details"] = {"type": "refusal", "category": None, "explanation": None}
        finish = {
            "type": "message_delta",
            "delta": delta,
            "usage": {"output_tokens": scenario.usage.completion_tokens},
        }
        return _dumps(finish).encode()

    @staticmethod
    def _block_stop(index: int, at: float) -> Frame:
        payload = f'{{"type":"content_block_stop","index":{index}}}'.encode()
        return Frame(_event(b"content_block_stop", payload), at, FrameRole.FINISH)

    # -- errors -------------------------------------------------------------------

    def _envelope(self, error: ProviderError, request_id: str) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": error.message}, "request_id": request_id}

    def render_error(self, error: ProviderError, at: float = 0.0) -> Reply:
        request_id = "req_" + uuid.uuid4().hex[:24]
        body = _dumps(self._envelope(error, request_id)).encode()
        headers = [_JSON, (b"content-length", str(len(body)).encode()), (b"request-id", request_id.encode())]
        if error.retry_after is not None:
            headers.append((b"retry-after", str(error.retry_after).encode()))
        return Reply(status=error.status, headers=tuple(headers), frames=(Frame(body, at, FrameRole.BODY),))

    def stream_error(self, error: ProviderError) -> bytes:
        return _event(b"error", _dumps(self._envelope(error, "req_" + uuid.uuid4().hex[:24])).encode())

    def malformed(self, frame: bytes) -> bytes:
        return truncated_data_frame(frame)

    # -- catalogue ------------------------------------------------------------------

    def static_routes(self, catalogue: Catalogue = ANTHROPIC_CATALOGUE) -> tuple[StaticRoute, ...]:
        models = self._models(catalogue)

        def list_models(incoming: Incoming) -> Reply:
            data = [self._model(m) for m in models]
            page = {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
            return self._json(200, page)

        def get_model(incoming: Incoming) -> Reply:
            model_id = incoming.path_params.get("model", "")
            spec = models.listed(model_id)
            if spec is None:
                return self.render_error(ProviderError(status=404, message=f"model: {model_id}"))
            return self._json(200, self._model(spec))

        return (
            StaticRoute(PREFIX + "/v1/models", "GET", list_models),
            StaticRoute(PREFIX + "/v1/models/{model:path}", "GET", get_model),
        )

    @staticmethod
    def _model(spec: ModelSpec) -> dict[str, Any]:
        created = datetime.datetime.fromtimestamp(spec.created, datetime.UTC)
        return {
            "type": "model",
            "id": spec.id,
            "display_name": _DISPLAY_NAMES.get(spec.id, spec.id),
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "max_input_tokens": spec.context_window,
            "max_tokens": spec.max_output_tokens,
        }

    @staticmethod
    def _json(status: int, value: Any) -> Reply:
        body = _dumps(value).encode()
        return Reply(
            status, (_JSON, (b"content-length", str(len(body)).encode())), (Frame(body, 0.0, FrameRole.BODY),)
        )


class _TextStream:
    """A text (or refusal) answer's events, made one by one as the delivery reaches them.

    The layout: ``message_start``, the text block's ``content_block_start``, a ``ping``,
    one ``text_delta`` per piece, ``content_block_stop``, ``message_delta``,
    ``message_stop``. With ``stamp=1`` a delta is a ``Render`` that writes its stamp when sent.
    """

    __slots__ = ("_dialect", "_end", "_itl", "_pieces", "_request", "_scenario", "_ttft")

    _LEAD = 3  # message_start, content_block_start, ping

    def __init__(self, dialect: AnthropicDialect, scenario: Scenario, request: ChatRequest) -> None:
        self._dialect = dialect
        self._scenario = scenario
        self._request = request
        self._ttft, self._itl = scenario.pacing.ttft, scenario.pacing.itl
        self._pieces = len(scenario.pieces)
        self._end = self._ttft + max(self._pieces - 1, 0) * self._itl

    def frames(self) -> LazyFrames:
        return LazyFrames(self.make, self.due, self._LEAD + self._pieces + 3)

    def due(self, index: int) -> float:
        position = index - self._LEAD
        if position < 0:
            return self._ttft
        if position < self._pieces:
            return self._ttft + position * self._itl
        return self._end

    def make(self, index: int) -> Frame:
        scenario = self._scenario
        if index == 0:
            start = self._dialect._start(scenario, self._request)
            return Frame(_event(b"message_start", start), self._ttft, FrameRole.OPEN)
        if index == 1:
            return Frame(_TEXT_OPEN, self._ttft, FrameRole.OPEN)
        if index == 2:
            return Frame(_PING, self._ttft, FrameRole.OPEN)
        position = index - self._LEAD
        if position < self._pieces:
            text = scenario.pieces[position][1]
            at = self._ttft + position * self._itl
            if scenario.stamp:
                return Frame(
                    stamped_string(_DELTA_PREFIX, text, _DELTA_SUFFIX, position), at, FrameRole.CONTENT
                )
            return Frame(_DELTA_PREFIX + _quote(text).encode() + _DELTA_SUFFIX, at, FrameRole.CONTENT)
        after = position - self._pieces
        if after == 0:
            return AnthropicDialect._block_stop(0, self._end)
        if after == 1:
            return Frame(
                _event(b"message_delta", self._dialect._finish(scenario)), self._end, FrameRole.FINISH
            )
        return Frame(_STOP, self._end, FrameRole.TERMINAL)
