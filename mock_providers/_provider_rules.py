"""What OpenAI's chat completions endpoint refuses, with the status, param and code it uses.

The mock is the far side of a gateway under test. If it accepted requests the real
provider refuses (an unknown model, ``max_tokens: 0``, a prompt longer than the
context window, a ``tool`` message answering nothing), a gateway that relays its
provider faithfully would look wrong to checks that expect the provider's refusal.
So each rule here raises ``RequestRejected`` with the provider's own status,
``param`` and ``code`` (``type`` follows from the status in the dialect). Messages
are in the mock's words, but keep the lead phrase each OpenAI message starts with
("maximum context length is", "max_tokens is too large", ...), because client
libraries recognise errors by it. ``PROVIDER_RULES.md`` lists every rule with the
public source of the fact.

Order (where OpenAI's own order is not documented, it is the mock's decision):
the body's shape (model given, messages given and non-empty, each message's role,
tool messages answering a preceding call), then the output budget's type and range,
then the model (404), then the budget against the model's ceiling; the context
window is judged last, once the prompt is counted (``context_exceeded``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateproof.mock_providers._catalogue import Catalogue, ModelSpec
from gateproof.mock_providers._errors import ProviderError, RequestRejected

__all__ = [
    "ROLES",
    "check_messages",
    "check_output_ceiling",
    "context_exceeded",
    "lookup_model",
    "output_budget",
    "require_model",
    "unknown_model",
]

#: the message roles OpenAI's chat endpoint accepts
ROLES = ("system", "developer", "user", "assistant", "tool", "function")

_JSON_KIND = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array"}


def _bad(message: str, param: str | None, code: str | None, status: int = 400) -> RequestRejected:
    return RequestRejected(ProviderError(status=status, message=message, param=param, code=code))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    return _JSON_KIND.get(type(value), "an unexpected value")


def require_model(body: Mapping[str, Any]) -> str:
    """The ``model`` field; OpenAI answers a request without one with no param and no code."""
    model = body.get("model")
    if model is None or model == "":
        raise _bad("you must provide a model parameter (the id of the model to use).", None, None)
    if not isinstance(model, str):
        raise _bad(
            f"Invalid type for 'model': expected a string, but got {_kind(model)} instead.",
            "model",
            "invalid_type",
        )
    return model


def unknown_model(model: str) -> ProviderError:
    """OpenAI's 404 for a model id it does not serve (``param`` null, code ``model_not_found``)."""
    return ProviderError(
        status=404,
        message=(
            f"The model `{model}` does not exist or you do not have access to it "
            "(the gateproof mock serves the models of its catalogue)."
        ),
        code="model_not_found",
    )


def lookup_model(catalogue: Catalogue, model: str) -> ModelSpec:
    """The model's spec, or the provider's 404."""
    spec = catalogue.get(model)
    if spec is None:
        raise RequestRejected(unknown_model(model))
    return spec


def _tool_call_ids(message: Mapping[str, Any]) -> list[str] | None:
    """The ids of an assistant message's tool calls, or ``None`` when it makes none."""
    calls = message.get("tool_calls")
    if message.get("role") != "assistant" or not isinstance(calls, list) or not calls:
        return None
    return [c["id"] for c in calls if isinstance(c, Mapping) and isinstance(c.get("id"), str)]


def check_messages(messages: Any) -> Sequence[Any]:
    """``messages`` as OpenAI requires them: a non-empty array, known roles, answered tool calls.

    A ``tool`` message must follow an assistant message with ``tool_calls`` (other
    tool messages may sit between them) and name one of its call ids; an assistant
    message with ``tool_calls`` must be followed by a tool message for each call.
    """
    if messages is None:
        raise _bad("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _bad(
            f"Invalid type for 'messages': expected an array, but got {_kind(messages)} instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise _bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "messages",
            "empty_array",
        )
    pending: list[str] | None = None  # call ids of the open assistant turn, not yet answered
    opened_at = -1
    for index, message in enumerate(messages):
        if message.__class__ is not dict and not isinstance(message, Mapping):  # dict: the fast answer
            raise _bad(
                f"Invalid type for 'messages[{index}]': expected an object, but got {_kind(message)} instead.",
                f"messages[{index}]",
                "invalid_type",
            )
        role = message.get("role")
        if role is None:
            raise _bad(
                f"Missing required parameter: 'messages[{index}].role'.",
                f"messages[{index}].role",
                "missing_required_parameter",
            )
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES)
            raise _bad(
                f"Invalid value: {_quoted(role)}. Supported values are: {supported}.",
                f"messages[{index}].role",
                "invalid_value",
            )
        if role == "tool":
            if pending is None:
                raise _bad(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls' (this one answers no tool call).",
                    f"messages.[{index}].role",
                    None,
                )
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise _bad(
                    f"Invalid parameter: 'tool_call_id' of {_quoted(call_id)} not found in 'tool_calls' "
                    "of previous message.",
                    f"messages.[{index}].tool_call_id",
                    None,
                )
            pending.remove(call_id)
            continue
        if pending:
            raise _unanswered(opened_at, pending)
        pending = _tool_call_ids(message)
        opened_at = index
    if pending:
        raise _unanswered(opened_at, pending)
    return messages


def _unanswered(index: int, ids: list[str]) -> RequestRejected:
    return _bad(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. These tool_call_ids have no response: {', '.join(ids)}.",
        f"messages.[{index}].role",
        None,
    )


def _quoted(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _budget_field(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():  # 16.0 is an integer, as JSON Schema has it
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(
            f"Invalid type for '{key}': expected an integer, but got {_kind(value)} instead.",
            key,
            "invalid_type",
        )
    if value < 1:
        raise _bad(
            f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
            key,
            "integer_below_min_value",
        )
    return value


def output_budget(body: Mapping[str, Any]) -> tuple[str, int] | None:
    """``(field, value)`` of the requested output limit, checked for type, range and exclusivity.

    ``max_completion_tokens`` is the newer name of ``max_tokens``; OpenAI refuses a
    request that sets both (code ``invalid_parameter_combination``, param ``max_tokens``).
    """
    legacy, newer = body.get("max_tokens") is not None, body.get("max_completion_tokens") is not None
    if legacy and newer:
        raise _bad(
            "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported: "
            "send only one of them.",
            "max_tokens",
            "invalid_parameter_combination",
        )
    if not (legacy or newer):
        return None
    key = "max_tokens" if legacy else "max_completion_tokens"
    value = _budget_field(body, key)
    assert value is not None
    return key, value


def check_output_ceiling(budget: tuple[str, int] | None, spec: ModelSpec) -> None:
    """Refuse an output limit above what the model can produce in one answer."""
    if budget is None:
        return
    key, value = budget
    if value > spec.max_output_tokens:
        raise _bad(
            f"{key} is too large: {value}. This model supports at most {spec.max_output_tokens} "
            f"completion tokens, whereas you provided {value}.",
            key,
            "invalid_value",
        )


def context_exceeded(window: int, prompt: int, completion: int | None, complete: bool) -> ProviderError:
    """OpenAI's 400 for a prompt (plus requested output) that does not fit the context window.

    ``complete`` false means counting stopped once the limit was passed: the figure
    is then a lower bound, and the message says so.
    """
    counted = f"{prompt}" if complete else f"more than {prompt - 1}"
    if completion is None:
        detail = (
            f"However, your messages resulted in {counted} tokens. Please reduce the length of the messages."
        )
    else:
        requested = f"{prompt + completion}" if complete else f"more than {prompt + completion - 1}"
        detail = (
            f"However, you requested {requested} tokens ({counted} in the messages, {completion} in the "
            "completion). Please reduce the length of the messages or completion."
        )
    return ProviderError(
        status=400,
        message=f"This model's maximum context length is {window} tokens. {detail}",
        param="messages",
        code="context_length_exceeded",
    )
