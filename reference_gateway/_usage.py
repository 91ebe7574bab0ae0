"""Token usage in Edgee's vocabulary (D19), and what it costs.

Providers count tokens under their own names; adapters translate into :class:`Usage`
and the gateway only ever emits :meth:`Usage.to_edgee`. The gateway always knows the
usage of a request, even when a streaming client did not ask for it, because the
accounting log needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateproof.reference_gateway._config import ModelConfig

__all__ = ["Usage"]


def _count(value: Any) -> int:
    """A token count from a provider payload; anything that is not a count is 0 (unknown)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


@dataclass(frozen=True)
class Usage:
    """Tokens of one completion. ``total_tokens`` is derived, never copied."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_edgee(self) -> dict[str, Any]:
        """The ``usage`` object the gateway sends: every field present, 0 when unknown."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    @classmethod
    def from_edgee(cls, usage: Any) -> Usage:
        """Read back a ``usage`` object in Edgee's names (what the stream relay holds)."""
        if not isinstance(usage, Mapping):
            return cls()
        inputs = usage.get("input_tokens_details")
        outputs = usage.get("output_tokens_details")
        return cls(
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
            cached_tokens=_count(inputs.get("cached_tokens")) if isinstance(inputs, Mapping) else 0,
            reasoning_tokens=_count(outputs.get("reasoning_tokens")) if isinstance(outputs, Mapping) else 0,
        )

    def cost_micro_usd(self, model: ModelConfig) -> int:
        """What the request costs at the model's configured prices, in micro-USD."""
        # price per million tokens x tokens / 1e6 USD = price x tokens micro-USD
        cost = (
            self.prompt_tokens * model.input_price_per_mtok
            + self.completion_tokens * model.output_price_per_mtok
        )
        return round(cost)
