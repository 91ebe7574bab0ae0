"""The reference gateway: an Edgee-compatible chat completions gateway over configured providers.

It is the harness's default target and the proof that the conformance suite passes a
correct gateway. It follows ``openapi/DECISIONS.md``, validates requests with the
spec's own schemas, speaks to providers through adapters (``providers/``), relays
streams without buffering, and can be told to break the contract in one named way
(``--fault``) so the suite's checks can be shown to catch it.

    config = load_config().with_base_urls({"openai": "http://127.0.0.1:8081/v1"})
    app = create_app(config)                       # any ASGI server
    app = create_app(config, fault="no_done")      # the same gateway, wrong in one way
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
from gateproof.reference_gateway._faults import FAULTS, NO_FAULT, Fault, Hook, UnknownFaultError, get_fault
from gateproof.reference_gateway._loopback import (
    ListenError,
    is_loopback_host,
    is_loopback_url,
    listen_socket,
    serve_on,
)
from gateproof.reference_gateway._usage import Usage

__all__ = [
    "FAULTS",
    "HEALTH_PATH",
    "NO_FAULT",
    "ChatCall",
    "ConfigError",
    "Fault",
    "GatewayConfig",
    "GatewayError",
    "Hook",
    "KeyConfig",
    "Keyring",
    "Limits",
    "ListenError",
    "ModelConfig",
    "Principal",
    "ProviderConfig",
    "UnknownFaultError",
    "UpstreamRequest",
    "Usage",
    "create_app",
    "default_config_path",
    "get_fault",
    "is_loopback_host",
    "is_loopback_url",
    "listen_socket",
    "load_config",
    "parse_config",
    "serve_on",
]
