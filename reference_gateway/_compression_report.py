"""The gateway's side of token compression: whether it runs, and how its outcome is reported.

The engine (``gateproof.reference_gateway.compression``) rewrites a conversation and says
what it saved; this module turns that into what a client reads, in the two shapes the
Edgee API has for it:

- chat's ``compression`` object (D2, D3, D32): ``saved_tokens``, ``reduction`` (a percent),
  ``cost_savings`` (micro-USD at the model's input price) and ``time_ms``; ``reduction``
  needs the prompt tokens the provider billed, so it is built at the end of the request;
- ``POST /v1/compress``'s ``compression`` object (D33): token counts before and after,
  ``compression_rate`` (a fraction), the strategies applied.

Both read the same engine result for the same messages, so what ``/v1/compress`` returns is
exactly what chat compression forwards, and its uncompressed - compressed count equals
chat's ``saved_tokens``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateproof.openapi import count_chat_prompt
from gateproof.reference_gateway._config import ModelConfig
from gateproof.reference_gateway._usage import Usage
from gateproof.reference_gateway.compression import Compression

__all__ = [
    "COMPRESS_TECHNIQUE",
    "chat_compression",
    "compress_body",
    "compression_wanted",
    "reported_ms",
]

#: ``/v1/compress``'s ``technique``: this gateway only trims tool results (Edgee's "tool")
COMPRESS_TECHNIQUE = "tool"


def compression_wanted(requested: bool | None, key_default: bool) -> bool:
    """D30: what the request says (header or body, any true wins) decides; else the key's default."""
    return key_default if requested is None else requested


def reported_ms(engine_ms: float) -> int:
    """D32: the engine's wall time as whole milliseconds, rounded up (a report never under-states it)."""
    return max(0, math.ceil(engine_ms)) if math.isfinite(engine_ms) else 0


def _half_up(value: float) -> int:
    return math.floor(value + 0.5)


def chat_compression(
    result: Compression, model: ModelConfig, forwarded: Callable[[], int]
) -> Callable[[Usage], dict[str, Any]]:
    """The builder of chat's ``compression`` object, called with the usage the provider reported.

    ``reduction`` = saved / (billed prompt tokens + saved) x 100, two decimals, 0 when nothing
    was saved. A provider that reported no prompt tokens (0, e.g. a stream without usage) is
    not believed: ``forwarded()`` counts the forwarded prompt with the same convention instead.
    """
    saved = max(0, result.saved_tokens)

    def build(usage: Usage) -> dict[str, Any]:
        reduction = 0.0
        if saved:
            billed = usage.prompt_tokens or forwarded()
            reduction = min(100.0, round(saved * 100 / (billed + saved), 2))
        return {
            "saved_tokens": saved,
            "cost_savings": _half_up(saved * model.input_price_per_mtok),
            "reduction": reduction,
            "time_ms": reported_ms(result.time_ms),
        }

    return build


def compress_body(body: Mapping[str, Any], result: Compression, tools: Sequence[Any]) -> dict[str, Any]:
    """``POST /v1/compress``'s answer: ``body`` with ``messages`` replaced, plus ``compression``.

    Both counts are made here with the spec's token convention over messages and tools, so a
    client can check them against any other count it makes.
    """
    uncompressed = count_chat_prompt(body["messages"], tools)
    compressed = count_chat_prompt(result.messages, tools)
    rate = round((uncompressed - compressed) / uncompressed, 4) if uncompressed else 0.0
    answer = {name: value for name, value in body.items() if name != "compression"}
    answer["messages"] = result.messages
    answer["compression"] = {
        "technique": COMPRESS_TECHNIQUE,
        "applied_strategies": list(result.strategies),
        "compression_rate": max(0.0, rate),
        "uncompressed_input_tokens": uncompressed,
        "compressed_input_tokens": compressed,
        "compression_time_ms": reported_ms(result.time_ms),
    }
    return answer
