"""Which API keys the mock accepts, and how a refused key may be shown.

A real provider refuses a request without a key, or with a key it did not issue,
with 401. The mock does the same, so a gateway that forgets (or garbles) its
upstream credential fails against the mock the way it would fail in production.
The accepted keys come from the mock's configuration (``--api-key-env NAME``, one
variable per key, so no key ever appears on a command line); with none configured
every request is refused. Accepting anything is possible only when asked for
(``--no-auth``), for tests that talk to the mock directly without a key.

Keys are compared in constant time and are never stored in a ``repr``, a log or a
reply: a refused key is shown masked, as OpenAI does (its first characters and
last four, the middle replaced by ``*``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

__all__ = ["KeyPolicy", "mask_key"]


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """The keys the mock accepts; ``open`` accepts any key, or none."""

    keys: frozenset[str] = field(default=frozenset(), repr=False)
    open: bool = False

    def accepts(self, key: str | None) -> bool:
        if self.open:
            return True
        if not key:
            return False
        given = key.encode("utf-8", "surrogateescape")
        # every key is compared, so the time taken says nothing about which one nearly matched
        found = False
        for accepted in self.keys:
            found |= hmac.compare_digest(given, accepted.encode("utf-8", "surrogateescape"))
        return found

    def __repr__(self) -> str:
        return "KeyPolicy(open)" if self.open else f"KeyPolicy({len(self.keys)} key(s))"


def mask_key(key: str) -> str:
    """A key as a refusal may show it: ``sk-ab***...***wxyz`` (never the whole key).

    Short keys show less: at most a third of a key's characters are ever shown.
    """
    shown = min(len(key) // 3, 9)
    head = max(shown - 4, 0)
    tail = min(4, shown - head)
    return key[:head] + "*" * max(len(key) - head - tail, 3) + (key[-tail:] if tail else "")
