"""The reference gateway: an Edgee-compatible chat completions gateway over configured providers.

It is the harness's default target and the proof that the conformance suite passes a
correct gateway. It follows ``openapi/DECISIONS.md``, validates requests with the
spec's own schemas, speaks to providers through adapters (``providers/``) and relays
streams without buffering. Its core has one seam for the self-test (:class:`Hooks`): the
faults that use it, and the wire-level ones that wrap the app, live in ``gateproof.selftest``,
which the gateway never imports (``gateproof gateway --fault NAME`` wires them in).

    config = load_config().with_base_urls({"openai": "http://127.0.0.1:8081/v1"})
    app = create_app(config)                       # any ASGI server
"""

from gateproof.reference_gateway._app import HEALTH_PATH, create_app
from gateproof.reference_gateway._auth import Keyring, Principal
from gateproof.reference_gateway._call import ChatCall, UpstreamRequest
from gateproof.reference_gateway._config import (
    ConfigError,
    GatewayConfig,
    KeyConfig,
    Limits,
    ModelConfig,
    ProviderConfig,
    default_config_path,
    load_config,
    parse_config,
)
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._hooks import NO_HOOKS, Hooks
from gateproof.reference_gateway._loopback import (
    OWNER_ENV,
    ListenError,
    is_loopback_host,
    is_loopback_url,
    listen_socket,
    serve_on,
)
from gateproof.reference_gateway._resilience import CORRECT_RESILIENCE, FailureClass, ResilienceRules
from gateproof.reference_gateway._usage import Usage

__all__ = [
    "CORRECT_RESILIENCE",
    "HEALTH_PATH",
    "NO_HOOKS",
    "OWNER_ENV",
    "ChatCall",
    "ConfigError",
    "FailureClass",
    "GatewayConfig",
    "GatewayError",
    "Hooks",
    "KeyConfig",
    "Keyring",
    "Limits",
    "ListenError",
    "ModelConfig",
    "Principal",
    "ProviderConfig",
    "ResilienceRules",
    "UpstreamRequest",
    "Usage",
    "create_app",
    "default_config_path",
    "is_loopback_host",
    "is_loopback_url",
    "listen_socket",
    "load_config",
    "parse_config",
    "serve_on",
]
