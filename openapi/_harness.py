"""The names gateproof's own servers and clients agree on: control paths and the correlation header.

The mock serves its journal and health under ``CONTROL_PREFIX``, the reference gateway answers
the same health path, the launcher and the suite probe it, and the suite reads the journal by
correlation id. None of these parts may import the others, so the names live here, once.
Standard library only.
"""

from __future__ import annotations

__all__ = ["CONTROL_PREFIX", "CORRELATION_HEADER", "DIALECT_NAMES", "HEALTH_PATH", "JOURNAL_PATH"]

#: every route of gateproof's own servers that is not the API under test lives under this prefix
CONTROL_PREFIX = "/_gateproof"
#: readiness: 200 once a server can take requests
HEALTH_PATH = CONTROL_PREFIX + "/health"
#: the mock's request journal (``GET ?cid=X&limit=N``, ``DELETE ?cid=X``)
JOURNAL_PATH = CONTROL_PREFIX + "/journal"
#: request header carrying a correlation id when a client talks to the mock directly (lower case)
CORRELATION_HEADER = "x-gateproof-correlation-id"
#: the provider dialects the mock speaks, as its journal names them (``JournalRecord.dialect``) and a
#: target config names its provider routes (``providers:``)
DIALECT_NAMES = ("openai", "anthropic", "gemini")
