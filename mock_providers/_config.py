"""Settings of one mock provider process."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateproof.mock_providers._catalogue import DEFAULT_CATALOGUE, Catalogue
from gateproof.mock_providers._chaos import ChaosPolicy
from gateproof.mock_providers._credentials import KeyPolicy

__all__ = ["MockConfig"]


@dataclass(frozen=True, slots=True)
class MockConfig:
    """What the mock does when a request does not say otherwise.

    ``ttft_ms``/``itl_ms`` are the timing of requests whose directive sets none;
    ``tokens`` is the length of an answer nobody asked a length for. ``auth`` is
    the set of API keys it accepts (none by default: every request is 401, as a
    provider answers a key it never issued) and ``catalogue`` the models it serves
    with their limits. ``chaos`` is the seeded fault injection of load runs
    (``--chaos-rate``/``--chaos-faults``/``--chaos-seed``; None: off).

    The ``repeat_*`` and ``credential_cache`` sizes bound what the mock remembers to answer
    a repeated request faster (``_repeats``, the journal's redaction): a load test sends
    the same bytes thousands of times. Remembering changes no byte of any answer or record.
    """

    ttft_ms: int = 0
    itl_ms: int = 0
    tokens: int = 12
    #: request journal capacity (oldest entries are dropped first)
    journal_size: int = 10_000
    #: bodies larger than this are refused with 413 before parsing
    max_body_bytes: int = 16 * 1024 * 1024
    auth: KeyPolicy = field(default_factory=KeyPolicy)
    catalogue: Catalogue = DEFAULT_CATALOGUE
    chaos: ChaosPolicy | None = None
    #: requests remembered per dialect (least recently used first out; 0: none)
    repeat_cache: int = 256
    #: only requests whose body has at most this many bytes are remembered
    repeat_body_bytes: int = 16 * 1024
    #: credential header values whose redacted form the journal remembers (0: none)
    credential_cache: int = 64
