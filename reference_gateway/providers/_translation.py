"""The translation rules the dialect adapters follow, as switches the self-test can turn off.

A translation bug lives inside an adapter (a stop reason mapped wrong, a usage field left
out, a stream event not relayed), where no hook over the finished Edgee body can reproduce
it faithfully. So each such rule the adapters apply is one field here, true when the rule is
kept. The gateway builds its adapters with :data:`CORRECT_TRANSLATION` passed through the
active fault's ``translation`` hook (``reference_gateway/_hooks.py``, faults in ``selftest``); a fault that breaks
a rule returns a copy with that field false. Without a fault every field is true.

Each field names the dialect that reads it; the others ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CORRECT_TRANSLATION", "TranslationRules"]


@dataclass(frozen=True)
class TranslationRules:
    """Which translation rules the adapters keep (all of them, unless a fault says otherwise)."""

    #: Anthropic: ``stop_reason: max_tokens`` is ``finish_reason: length`` (off: ``stop``)
    max_tokens_is_length: bool = True
    #: Anthropic: ``stop_reason: refusal`` is known (off: an unknown reason, so ``stop`` with the text as content)
    refusal_is_known: bool = True
    #: Anthropic streams: the output tokens come from ``message_delta`` (off: ``message_start``'s only)
    stream_usage_from_delta: bool = True
    #: Anthropic streams: ``input_json_delta`` fragments are relayed as tool-call arguments (off: dropped)
    stream_tool_arguments: bool = True
    #: Anthropic: ``tool_result.tool_use_id`` is the tool message's ``tool_call_id`` (off: altered)
    tool_result_ids: bool = True
    #: Anthropic: prompt tokens include the cache reads and writes, and the reads are ``cached_tokens``
    cache_tokens: bool = True
    #: Anthropic: an upstream 529 (overloaded) is a server error (off: classified as a 400 rejection)
    overload_is_server_error: bool = True
    #: Anthropic and Gemini: system/developer messages go upstream (``system`` / ``systemInstruction``)
    system_prompt: bool = True
    #: Gemini: ``functionCall.args`` becomes ``arguments`` as a JSON string (off: the object itself)
    stringify_arguments: bool = True
    #: Gemini: ``tool_choice`` becomes ``toolConfig`` (off: not sent)
    tool_choice: bool = True


#: the rules a correct gateway keeps
CORRECT_TRANSLATION = TranslationRules()
