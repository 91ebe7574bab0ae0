"""``gateproof gateway``: serve the reference gateway with uvicorn.

A composition root: it resolves ``--fault NAME`` through ``gateproof.selftest`` and hands the
gateway's core only the fault's hooks; the fault's wire-level middleware wraps the app here.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from gateproof.reference_gateway._app import create_app
from gateproof.reference_gateway._config import ConfigError, default_config_path, load_config
from gateproof.reference_gateway._loopback import ListenError, listen_socket, serve_on
from gateproof.reference_gateway._request_log import RequestLog
from gateproof.selftest import FAULTS, LOAD_FAULTS, UnknownFaultError, get_fault

__all__ = ["DESCRIPTION", "HELP", "configure", "main"]

HELP = "serve the reference Edgee-compatible gateway (the default target)"

DESCRIPTION = """\
Serve the reference gateway: POST /v1/chat/completions and GET /v1/models in the
Edgee API shape, routed by model id ({author}/{model}) to the configured providers,
and POST /v1/compress (token compression without a model call).

Client keys and provider credentials come from environment variables named in the
config (by default GATEPROOF_API_KEY, GATEPROOF_INACTIVE_API_KEY,
GATEPROOF_RESTRICTED_API_KEY, GATEPROOF_COMPRESSING_API_KEY, GATEPROOF_LIMITED_API_KEY
and GATEPROOF_UPSTREAM_OPENAI_KEY); a key whose variable is unset does not exist.

--request-log PATH (or request_log: in the config) appends one JSON line per
finished request: request_id, key name, model, provider, status, tokens,
compression, latency and tags.

--fault NAME makes the gateway break the contract in exactly one way, so the
harness can prove its checks catch it (see --list-faults).

--limit NAME=VALUE replaces one of the config's limits (repeatable), e.g.
--limit first_byte_timeout_s=2 --limit stream_idle_timeout_s=2 for a stack whose
provider stalls should be cut off in seconds (the local stack runs that way).

Loopback only: --host must be 127.0.0.1 (any 127.x.y.z), ::1 or localhost, and every
provider URL (config base_url or --upstream) must point at one of them.

exit codes: 0 stopped cleanly, 1 the server failed, 2 bad options or config
(including a host or provider URL off loopback, or a port already in use)."""

LOG_LEVELS = ("debug", "info", "warning", "error")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML config with limits, providers, models and keys (default: the packaged {default_config_path().name})",
    )
    parser.add_argument(
        "--upstream",
        metavar="NAME=URL",
        action="append",
        default=[],
        help="send provider NAME's traffic to URL instead of its configured base_url, "
        "e.g. openai=http://127.0.0.1:8081/v1 (repeatable)",
    )
    parser.add_argument(
        "--fault", metavar="NAME", help="deviate from the contract in one named way (self-test)"
    )
    parser.add_argument(
        "--list-faults", action="store_true", help="list the faults --fault accepts, then exit"
    )
    parser.add_argument(
        "--limit",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="replace one of the config's limits, checked as the config's own are, "
        "e.g. first_byte_timeout_s=2 (repeatable)",
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="log verbosity (default: %(default)s)"
    )
    parser.add_argument(
        "--request-log",
        metavar="PATH",
        help="append one JSON line per finished request to PATH (key names, never keys; "
        "overrides the config's request_log; default: none)",
    )


def _limits(values: list[str]) -> dict[str, str]:
    """``--limit NAME=VALUE`` options as overrides (a later one for the same limit wins)."""
    overrides: dict[str, str] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not name.strip() or not number.strip():
            raise ConfigError(f"--limit {value!r}: expected NAME=VALUE, e.g. stream_idle_timeout_s=2")
        overrides[name.strip()] = number.strip()
    return overrides


def _upstreams(values: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ConfigError(
                f"--upstream {value!r}: expected NAME=URL, e.g. openai=http://127.0.0.1:8081/v1"
            )
        overrides[name.strip()] = url.strip()
    return overrides


def _print_faults() -> None:
    faults = {**FAULTS, **LOAD_FAULTS}
    width = max(len(name) for name in faults)
    for fault in faults.values():
        # a wire hook is middleware in front of the app; the others act inside the gateway's core
        hooks = ", ".join(f"{hook.value} (wire)" if hook.wire else hook.value for hook in fault.hooks)
        print(f"{fault.name:<{width}}  {fault.description} [{hooks}]")


def main(args: argparse.Namespace) -> int:
    if args.list_faults:
        _print_faults()
        return 0
    try:
        fault = get_fault(args.fault)
        config = load_config(args.config).with_base_urls(_upstreams(args.upstream))
        config = config.with_limits(_limits(args.limit))
        config = config.with_request_log(args.request_log)
        if config.request_log is not None:
            try:
                RequestLog.check(config.request_log)
            except OSError as exc:
                raise ConfigError(
                    f"cannot write the request log {config.request_log!r}: {exc.strerror or exc}"
                ) from None
        app = fault.wrap(create_app(config, hooks=fault.core_hooks()))
        listener = listen_socket(args.host, args.port)
    except (ConfigError, UnknownFaultError, ListenError) as exc:
        print(f"gateproof gateway: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        # The reference spec ships in the package; reaching this means a broken install.
        print(f"gateproof gateway: cannot load the reference spec: {exc}", file=sys.stderr)
        return 1

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("gateproof.gateway")
    for provider in config.providers.values():
        credential = "with a credential" if provider.api_key else "without a credential"
        log.info("provider %s (%s) at %s, %s", provider.name, provider.dialect, provider.base_url, credential)
    log.info("serving %d models; %d client keys configured", len(config.models), len(config.keys))
    if not config.keys:
        log.warning("no client key is set (e.g. GATEPROOF_API_KEY): every chat completion will be 401")
    if fault.name != "none":
        log.warning("FAULT ACTIVE: %s (%s)", fault.name, fault.description)

    host, port = listener.getsockname()[:2]
    log.info("listening on http://%s:%d", f"[{host}]" if ":" in host else host, port)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_config=None,
            log_level=args.log_level,
            server_header=False,
            timeout_graceful_shutdown=3,
        )
    )
    return serve_on(server, listener)
