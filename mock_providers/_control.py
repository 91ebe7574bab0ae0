"""The mock's own endpoints under ``/_gateproof/``: readiness and the request journal.

- ``GET /_gateproof/health`` -> ``200 {"status": "ok"}``
- ``GET /_gateproof/journal[?cid=X][&limit=N]`` -> ``{"entries": [...]}``, oldest
  first; ``cid`` keeps one test's requests, ``limit`` keeps the newest N. Each entry is a
  ``JournalRecord``; its ``intent`` and ``true_usage`` are derived here, when read (see
  ``_journal``), so the cost is paid by the reader, not by the requests under load
- ``DELETE /_gateproof/journal[?cid=X]`` -> ``{"deleted": N}``

These requests are not journaled themselves.
"""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateproof.mock_providers._journal import Journal
from gateproof.openapi import CONTROL_PREFIX, HEALTH_PATH, JOURNAL_PATH

__all__ = ["CONTROL_PREFIX", "control_routes"]


#: set by whoever starts the server (gateproof.cli.launch) and echoed by the health endpoint, so
#: a launcher can tell its own server from another one that won the same port
INSTANCE_ENV = "GATEPROOF_INSTANCE_ID"


def control_routes(journal: Journal) -> list[Route]:
    instance = os.environ.get(INSTANCE_ENV, "")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "instance": instance})

    async def read_journal(request: Request) -> JSONResponse:
        raw_limit = request.query_params.get("limit")
        limit: int | None = None
        if raw_limit is not None:
            if not raw_limit.isdigit():
                return JSONResponse(
                    {"error": {"message": "limit must be a non-negative integer", "param": "limit"}},
                    status_code=400,
                )
            limit = int(raw_limit)
        entries = journal.entries(cid=request.query_params.get("cid"), limit=limit)
        return JSONResponse({"entries": [entry.as_json() for entry in entries]})

    async def clear_journal(request: Request) -> JSONResponse:
        return JSONResponse({"deleted": journal.clear(cid=request.query_params.get("cid"))})

    return [
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route(JOURNAL_PATH, read_journal, methods=["GET"]),
        Route(JOURNAL_PATH, clear_journal, methods=["DELETE"]),
    ]
