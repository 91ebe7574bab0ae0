"""Mock LLM providers: the oracle on the far side of a gateway.

The mock refuses what the provider refuses (keys it did not issue, unknown
models, output limits and prompts beyond a model's limits, malformed
conversations: see ``PROVIDER_RULES.md``) and answers the rest (OpenAI's chat
completions, Anthropic's Messages, Gemini's generateContent: ``dialects/``) from a
*scenario* chosen per request by a directive in the last user message (see
``gateproof.mock_providers._directives`` or ``gateproof mock --help``), with true
token counts (``cached=N`` marks prompt tokens as read from a cache), absolute-deadline
timing and optional provider faults (per request with ``fault=``/``status=``, limited to
a cid's first attempts with ``fail_first=N``, or drawn by the seeded chaos of
``ChaosPolicy`` for load runs: ``_faults``, ``_chaos``), chunk stamps on request (``stamp=1``:
each streamed text chunk starts with its sequence number and send time, ``_stamps``), and it
journals every request it
receives so a test can see what a gateway forwarded: the body, what it asked for in
neutral terms (``intent``), the answer's true usage (``usage`` in the dialect's names,
``true_usage`` in neutral ones), the fault served (``fault``), which attempt of its cid
it was (``attempt``) and whether the client left early (``outcome: disconnected``).
"""

from gateproof.mock_providers._app import MockApp, create_app
from gateproof.mock_providers._attempts import AttemptCounter
from gateproof.mock_providers._catalogue import DEFAULT_CATALOGUE, Catalogue, ModelSpec, load_catalogue
from gateproof.mock_providers._chaos import Chaos, ChaosPolicy, planned_directive
from gateproof.mock_providers._config import MockConfig
from gateproof.mock_providers._credentials import KeyPolicy
from gateproof.mock_providers._delivery import ConnectionDropped
from gateproof.mock_providers._dialect import Dialect, Incoming, StaticRoute
from gateproof.mock_providers._directives import SCENARIOS, Directive, parse_directive
from gateproof.mock_providers._errors import NO_CODE, DirectiveError, ProviderError, RequestRejected
from gateproof.mock_providers._faults import (
    DRIP_MAX_GAP,
    FAULTS,
    OVERLOAD,
    Fault,
    FaultContext,
    error_fault_status,
    is_fault_name,
    register,
    status_fault_name,
)
from gateproof.mock_providers._journal import CORRELATION_HEADER, Journal, JournalEntry, Outcome
from gateproof.mock_providers._replies import Frame, FrameRole, Reply
from gateproof.mock_providers._samples import (
    SAMPLE_DIALECTS,
    SAMPLE_TOOL_SCHEMA,
    SampleRequest,
    sample_request,
)
from gateproof.mock_providers._scenarios import ChatRequest, Finish, Scenario, ToolSpec, Usage, plan_scenario
from gateproof.mock_providers._timing import Pacing
from gateproof.openapi import count_chat_prompt, count_text

__all__ = [
    "CORRELATION_HEADER",
    "DEFAULT_CATALOGUE",
    "DRIP_MAX_GAP",
    "FAULTS",
    "NO_CODE",
    "OVERLOAD",
    "SAMPLE_DIALECTS",
    "SAMPLE_TOOL_SCHEMA",
    "SCENARIOS",
    "AttemptCounter",
    "Catalogue",
    "Chaos",
    "ChaosPolicy",
    "ChatRequest",
    "ConnectionDropped",
    "Dialect",
    "Directive",
    "DirectiveError",
    "Fault",
    "FaultContext",
    "Finish",
    "Frame",
    "FrameRole",
    "Incoming",
    "Journal",
    "JournalEntry",
    "KeyPolicy",
    "MockApp",
    "MockConfig",
    "ModelSpec",
    "Outcome",
    "Pacing",
    "ProviderError",
    "Reply",
    "RequestRejected",
    "SampleRequest",
    "Scenario",
    "StaticRoute",
    "ToolSpec",
    "Usage",
    "count_chat_prompt",
    "count_text",
    "create_app",
    "error_fault_status",
    "is_fault_name",
    "load_catalogue",
    "parse_directive",
    "plan_scenario",
    "planned_directive",
    "register",
    "sample_request",
    "status_fault_name",
]
