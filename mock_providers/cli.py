"""``gateproof mock``: run the mock provider on loopback with uvicorn."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys

import uvicorn

from gateproof.mock_providers._app import create_app
from gateproof.mock_providers._catalogue import DEFAULT_CATALOGUE, Catalogue, CatalogueError, load_catalogue
from gateproof.mock_providers._chaos import ChaosPolicy, parse_chaos_faults
from gateproof.mock_providers._config import MockConfig
from gateproof.mock_providers._credentials import KeyPolicy
from gateproof.mock_providers._delivery import ConnectionDropped
from gateproof.mock_providers._directives import directive_help
from gateproof.mock_providers._faults import FAULTS
from gateproof.openapi import HEALTH_PATH, JOURNAL_PATH
from gateproof.reference_gateway import ListenError, listen_socket, serve_on

__all__ = ["DESCRIPTION", "HELP", "configure", "main"]

HELP = "run the mock LLM provider (OpenAI dialect) that scenarios, times and journals its answers"

DESCRIPTION = (
    "Run the mock provider: POST /v1/chat/completions and GET /v1/models in OpenAI's format,\n"
    "answers chosen per request by a directive in the last user message, true token counts,\n"
    "absolute-deadline timing, provider faults, and a request journal:\n"
    f"  GET {JOURNAL_PATH}?cid=X[&limit=N]   DELETE {JOURNAL_PATH}[?cid=X]\n"
    f"  GET {HEALTH_PATH}\n\n"
    + directive_help()
    + "\n\nfaults:\n"
    + "\n".join(
        f"  {name:<17} {'(stream) ' if fault.streams_only else ''}{fault.summary}"
        for name, fault in FAULTS.items()
    )
    + f"\n  {'overload':<17} the provider's overload error (Anthropic 529, 503 elsewhere)"
    + f"\n  {'status_NNN':<17} an error answer with HTTP status NNN (400..599) in the dialect's envelope"
    + "\n\nchaos for load runs: --chaos-rate R --chaos-faults a,b[,c] [--chaos-seed S] gives each\n"
    "request without a fault or error of its own, with probability R, one of the listed faults\n"
    "(any name above), the same ones for the same seed and order of requests; a stream-only\n"
    "fault drawn for a request that does not stream is skipped. The journal's 'fault' names\n"
    "what was served, 'attempt' counts the requests of each cid.\n"
    + "\n\nAPI keys: requests must carry 'Authorization: Bearer KEY' with a key named by\n"
    "--api-key-env (one environment variable per key; give it several times for several\n"
    "keys). Without one, every request is 401, as a provider answers a key it never issued;\n"
    "--no-auth accepts any key or none (for tests that talk to the mock directly).\n"
    "Models: those of the catalogue (GET /v1/models), each with its context window and\n"
    "output ceiling; --models FILE adds or replaces entries ({models: [{id, context_window,\n"
    "max_output_tokens, created}], replace: false}); --any-model serves unlisted ids too.\n"
    "What the mock refuses, and why: mock_providers/PROVIDER_RULES.md.\n"
    "\nLoopback only: --host must be 127.0.0.1 (any 127.x.y.z), ::1 or localhost.\n"
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
        "--api-key-env",
        action="append",
        default=[],
        metavar="NAME",
        help="accept the API key held by environment variable NAME (repeatable)",
    )
    parser.add_argument("--no-auth", action="store_true", help="accept any API key, or none (off by default)")
    parser.add_argument(
        "--models", metavar="FILE", help="YAML/JSON file adding to (or replacing) the model catalogue"
    )
    parser.add_argument(
        "--any-model",
        action="store_true",
        help="serve model ids the catalogue does not list, with gpt-4o's limits (off by default)",
    )
    parser.add_argument(
        "--chaos-rate",
        type=float,
        default=0.0,
        metavar="R",
        help="probability (0..1) that a request without a fault of its own gets a chaos fault (default: 0)",
    )
    parser.add_argument(
        "--chaos-faults",
        default="",
        metavar="A,B",
        help="comma-separated faults the chaos draws from (e.g. status_429,status_503,mid_stream_error,reset)",
    )
    parser.add_argument(
        "--chaos-seed", type=int, default=0, metavar="S", help="seed of the chaos draws (default: 0)"
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default: %(default)s)",
    )


def _key_policy(variables: list[str], no_auth: bool) -> KeyPolicy:
    """The accepted keys, read from the named variables (an unset one is a mistake: exit 2)."""
    if no_auth:
        if variables:
            raise ValueError("--no-auth and --api-key-env exclude each other")
        return KeyPolicy(open=True)
    keys = set()
    for name in variables:
        value = os.environ.get(name, "")
        if not value.strip():
            raise ValueError(f"--api-key-env {name}: the variable is unset or empty")
        keys.add(value.strip())
    return KeyPolicy(keys=frozenset(keys))


def _chaos(rate: float, faults: str, seed: int) -> ChaosPolicy | None:
    """The chaos policy of the options (None when off); ``ValueError`` naming a bad option."""
    names = parse_chaos_faults(faults)
    if rate != rate or not 0.0 <= rate <= 1.0:  # NaN included
        raise ValueError(f"--chaos-rate must be from 0 to 1, got {rate}")
    if rate > 0 and not names:
        raise ValueError("--chaos-rate needs --chaos-faults (which faults to draw)")
    if not names:
        return None
    try:
        policy = ChaosPolicy(rate=rate, faults=names, seed=seed)
    except ValueError as exc:
        raise ValueError(f"--chaos-faults/--chaos-seed: {exc}") from None
    return policy if rate > 0 else None  # rate 0 turns a configured chaos off


def _catalogue(path: str | None, any_model: bool) -> Catalogue:
    catalogue = DEFAULT_CATALOGUE
    if path is not None:
        try:
            catalogue = load_catalogue(path, catalogue)
        except CatalogueError as exc:
            raise ValueError(f"--models: {exc}") from None
    if any_model:
        fallback = catalogue.listed("gpt-4o") or DEFAULT_CATALOGUE.models[0]
        catalogue = catalogue.with_fallback(fallback)
    return catalogue


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
        auth = _key_policy(args.api_key_env, args.no_auth)
        catalogue = _catalogue(args.models, args.any_model)
        chaos = _chaos(args.chaos_rate, args.chaos_faults, args.chaos_seed)
    except ValueError as exc:
        print(f"gateproof mock: {exc}", file=sys.stderr)
        return 2
    try:
        # Bound here, before anything starts, so a wrong host or a busy port is exit 2 with
        # one line saying so, and the port cannot be lost between a check and uvicorn's bind.
        listener = listen_socket(args.host, args.port)
    except ListenError as exc:
        print(f"gateproof mock: {exc}", file=sys.stderr)
        return 2
    if not auth.open and not auth.keys:
        print(
            "gateproof mock: no API key configured (--api-key-env NAME): every request will be 401",
            file=sys.stderr,
        )
    config = MockConfig(
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        tokens=args.tokens,
        journal_size=max(args.journal_size, 1),
        auth=auth,
        catalogue=catalogue,
        chaos=chaos,
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
