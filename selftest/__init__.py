"""The self-test's faults: every deliberate way a gateway can break the contract, one record each.

The suite is only worth the bugs it catches, so each check is proven by a gateway that is wrong
in exactly one way and must fail it. A :class:`Fault` record says what it breaks, where it acts
(hooks in the reference gateway's core seam, or ASGI middleware that can stand in front of any
gateway), what shows it and which (check, scenario) pairs catch it; ``FAULTS`` holds them all.

    fault = get_fault("sse_single_newline")
    app = fault.wrap(create_app(config, hooks=fault.core_hooks()))   # the gateway, wrong in one way
    app = HeadersFault(any_asgi_gateway, rewrite)                    # a wire fault before another gateway

Adding a fault is adding one record to ``_catalogue.py``.
"""

from gateproof.selftest._catalogue import FAULTS, NO_FAULT, get_fault
from gateproof.selftest._fault import (
    CONVERSATIONS,
    GENERATED,
    PROPERTY_SCENARIOS,
    Fault,
    Hook,
    Pair,
    UnknownFaultError,
)
from gateproof.selftest._load_faults import LOAD_FAULTS
from gateproof.selftest._wire import (
    DelayFault,
    ErrorFault,
    ErrorRewrite,
    FrameRewrite,
    FramesFault,
    HeadersFault,
    HeadersRewrite,
    WireError,
)

__all__ = [
    "CONVERSATIONS",
    "FAULTS",
    "GENERATED",
    "LOAD_FAULTS",
    "NO_FAULT",
    "PROPERTY_SCENARIOS",
    "DelayFault",
    "ErrorFault",
    "ErrorRewrite",
    "Fault",
    "FrameRewrite",
    "FramesFault",
    "HeadersFault",
    "HeadersRewrite",
    "Hook",
    "Pair",
    "UnknownFaultError",
    "WireError",
    "get_fault",
]
