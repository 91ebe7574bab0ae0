"""One gateway fault as one record: what it breaks, where it acts, what shows it, what catches it.

A conformance suite is worth the bugs it catches. Each :class:`Fault` makes a gateway wrong in
exactly one way, and says which (check, scenario) pairs of the suite must fail against a gateway
running it (``gateproof gateway --fault NAME``); the self-test (tests/contract/test_fault_selftest.py)
starts one gateway per fault and demands exactly that.

A fault acts in one or both of two places:

- inside the reference gateway, through the core's seam (``reference_gateway/_hooks.py``:
  ``request``, ``auth``, ``upstream``, ``response``, ``stream``, ``models``, ``edge``, ``compress``,
  ``log``, ``translation``, ``resilience``, ``config``); :meth:`Fault.core_hooks` hands them to
  ``create_app``;
- on the wire, as ASGI middleware around any gateway (``_wire.py``: ``headers``, ``error``,
  ``frames``); :meth:`Fault.wrap` puts them in front of an app.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from starlette.types import ASGIApp

from gateproof.reference_gateway._hooks import (
    AuthHook,
    CompressHook,
    ConfigHook,
    EdgeHook,
    Hooks,
    LogHook,
    ModelsHook,
    RequestHook,
    ResilienceHook,
    ResponseHook,
    StreamHook,
    TranslationHook,
    UpstreamHook,
)
from gateproof.reference_gateway.providers import TranslationRules
from gateproof.selftest._wire import (
    DelayFault,
    ErrorFault,
    ErrorRewrite,
    FrameRewrite,
    FramesFault,
    HeadersFault,
    HeadersRewrite,
)

__all__ = ["CONVERSATIONS", "GENERATED", "PROPERTY_SCENARIOS", "Fault", "Hook", "Pair", "UnknownFaultError"]

#: the scenario name of a property-layer pair (what the property layer reports as its scenario)
GENERATED = "generated"
#: the scenario name of a conversation-layer pair (generated multi-turn conversations, every route)
CONVERSATIONS = "conversations"
#: both run in the property layer
PROPERTY_SCENARIOS = frozenset({GENERATED, CONVERSATIONS})

#: (check name, scenario name) that must fail against a gateway running the fault; a scenario
#: ``name[route]`` runs on that provider route
Pair = tuple[str, str]


class Hook(StrEnum):
    """Where a fault may act: a point of the gateway's core, or (``wire``) middleware around any gateway."""

    REQUEST = "request"
    AUTH = "auth"
    UPSTREAM = "upstream"
    RESPONSE = "response"
    STREAM = "stream"
    MODELS = "models"
    EDGE = "edge"
    COMPRESS = "compress"
    LOG = "log"
    TRANSLATION = "translation"
    RESILIENCE = "resilience"
    CONFIG = "config"
    HEADERS = "headers"
    ERROR = "error"
    FRAMES = "frames"
    DELAY = "delay"

    @property
    def wire(self) -> bool:
        """Acts on what the gateway sends (ASGI middleware), not inside it."""
        return self in _WIRE


_WIRE = frozenset({Hook.HEADERS, Hook.ERROR, Hook.FRAMES, Hook.DELAY})
#: the core seam's hook fields (every Hook that is not on the wire)
_CORE = tuple(hook for hook in Hook if hook not in _WIRE)


@dataclass(frozen=True)
class Fault:
    """One named deviation. The hooks it leaves as None behave correctly."""

    name: str
    description: str
    #: the pairs of the suite that must fail against it (at least one: the self-test fails a record without)
    caught_by: tuple[Pair, ...] = ()
    #: the request that shows it, when no scenario of ``caught_by`` says it plainly (a mock directive, ...)
    probe: str | None = None
    request: RequestHook | None = None
    auth: AuthHook | None = None
    upstream: UpstreamHook | None = None
    response: ResponseHook | None = None
    stream: StreamHook | None = None
    models: ModelsHook | None = None
    edge: EdgeHook | None = None
    compress: CompressHook | None = None
    log: LogHook | None = None
    translation: TranslationHook | None = None
    resilience: ResilienceHook | None = None
    config: ConfigHook | None = None
    headers: HeadersRewrite | None = None
    error: ErrorRewrite | None = None
    frames: FrameRewrite | None = None
    #: seconds added before every request (wire): a correct but slower gateway
    delay: float | None = None
    #: a fault no contract check can see (it changes how fast, not what): the load measurement that
    #: must detect it instead (``tests/load/test_paired.py`` proves it), e.g. "paired_overhead"
    measured_by: str = ""

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """Where this fault acts."""
        return tuple(hook for hook in Hook if getattr(self, hook.value) is not None)

    @property
    def shown_by(self) -> str:
        """What to send to see the deviation: the probe, else the first scenario that catches it."""
        if self.probe is not None:
            return self.probe
        return self.caught_by[0][1] if self.caught_by else ""

    def core_hooks(self) -> Hooks:
        """The part of the fault the gateway's core runs (its name included: the health check echoes it)."""
        return Hooks(self.name, **{hook.value: getattr(self, hook.value) for hook in _CORE})

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """``app`` (any ASGI gateway) behind this fault's wire-level part; ``app`` itself when it has none."""
        if self.frames is not None:
            app = FramesFault(app, self.frames)
        if self.error is not None:
            app = ErrorFault(app, self.error)
        if self.headers is not None:
            app = HeadersFault(app, self.headers)
        if self.delay is not None:
            app = DelayFault(app, self.delay)
        return app

    def on_translation(self, rules: TranslationRules) -> TranslationRules:
        """The adapters' rules under this fault (the correct ones when it has no translation hook)."""
        return self.core_hooks().on_translation(rules)


class UnknownFaultError(KeyError):
    """No fault has that name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown fault {self.name!r} (see --list-faults)"
