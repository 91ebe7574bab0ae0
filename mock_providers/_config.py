"""Settings of one mock provider process."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MockConfig"]


@dataclass(frozen=True, slots=True)
class MockConfig:
    """What the mock does when a request does not say otherwise.

    ``ttft_ms``/``itl_ms`` are the timing of requests whose directive sets none;
    ``tokens`` is the length of an answer nobody asked a length for.
    """

    ttft_ms: int = 0
    itl_ms: int = 0
    tokens: int = 12
    #: request journal capacity (oldest entries are dropped first)
    journal_size: int = 10_000
    #: bodies larger than this are refused with 413 before parsing
    max_body_bytes: int = 16 * 1024 * 1024
