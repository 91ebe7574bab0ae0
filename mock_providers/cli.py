"""``gateproof mock``: run the mock provider on loopback with uvicorn."""

from __future__ import annotations

import argparse
import gc
import logging
import sys

import uvicorn

from gateproof.mock_providers._app import create_app
from gateproof.mock_providers._config import MockConfig
from gateproof.mock_providers._delivery import ConnectionDropped
from gateproof.mock_providers._directives import directive_help
from gateproof.mock_providers._faults import FAULTS
from gateproof.reference_gateway import ListenError, listen_socket, serve_on

__all__ = ["DESCRIPTION", "HELP", "configure", "main"]

HELP = "run the mock LLM provider (OpenAI dialect) that scenarios, times and journals its answers"

DESCRIPTION = (
    "Run the mock provider: POST /v1/chat/completions and GET /v1/models in OpenAI's format,\n"
    "answers chosen per request by a directive in the last user message, true token counts,\n"
    "absolute-deadline timing, provider faults, and a request journal:\n"
    "  GET /_gateproof/journal?cid=X[&limit=N]   DELETE /_gateproof/journal[?cid=X]\n"
    "  GET /_gateproof/health\n\n"
    + directive_help()
    + "\n\nfaults:\n"
    + "\n".join(f"  {name:<17} {fault.summary}" for name, fault in FAULTS.items())
    + "\n\nLoopback only: --host must be 127.0.0.1 (any 127.x.y.z), ::1 or localhost.\n"
    "exit codes: 0 stopped cleanly, 1 the server failed, 2 bad options\n"
    "(including a host off loopback or a port already in use)."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8081, help="port to bind (default: %(default)s)")
    parser.add_argument(
        "--ttft-ms", type=int, default=0, help="time to first content when a request sets none (default: 0)"
    )
    parser.add_argument(
        "--itl-ms",
        type=int,
        default=0,
        help="gap between content chunks when a request sets none (default: 0)",
    )
    parser.add_argument(
        "--tokens", type=int, default=12, help="answer length when a request sets none (default: %(default)s)"
    )
    parser.add_argument(
        "--journal-size", type=int, default=10_000, help="requests kept in the journal (default: %(default)s)"
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default: %(default)s)",
    )


class _QuietDeliberateDrops(logging.Filter):
    """Hide the server's traceback for connections the mock drops on purpose (``fault=truncate``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def main(args: argparse.Namespace) -> int:
    for name in ("ttft_ms", "itl_ms", "tokens", "journal_size"):
        if getattr(args, name) < 0:
            print(f"gateproof mock: --{name.replace('_', '-')} must not be negative", file=sys.stderr)
            return 2
    try:
        # Bound here, before anything starts, so a wrong host or a busy port is exit 2 with
        # one line saying so, and the port cannot be lost between a check and uvicorn's bind.
        listener = listen_socket(args.host, args.port)
    except ListenError as exc:
        print(f"gateproof mock: {exc}", file=sys.stderr)
        return 2
    config = MockConfig(
        ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, tokens=args.tokens, journal_size=max(args.journal_size, 1)
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=args.host,
            port=args.port,
            loop="uvloop",
            http="httptools",
            ws="none",
            lifespan="off",
            access_log=False,
            proxy_headers=False,
            log_level=args.log_level,
            timeout_graceful_shutdown=1,
        )
    )
    logging.getLogger("uvicorn.error").addFilter(_QuietDeliberateDrops())
    # Everything loaded so far (modules, the tokenizer) lives as long as the process:
    # keep it out of the collector's passes, and run those less often. Requests free
    # their objects by reference counting; frequent passes over hundreds of live
    # streams would only stall them.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    return serve_on(server, listener)
