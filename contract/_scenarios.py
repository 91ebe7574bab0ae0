"""Hand-written scenarios: one request each, what it must produce, and which checks judge it.

A scenario is data. The runner sends it, records what came back, and runs its
checks; the stream grammar checks run on every scenario that expects a clean
stream. Requests carry a gateproof mock directive in the last user message, so
a target wired to the mock produces exactly the behaviour a scenario needs (a
tool call, a length stop, an upstream 429); for any other target the directive
is plain text and the scenario still forces what it can through the API itself
(`tool_choice`, `max_tokens`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from gateproof.contract._bad_days import BadDay, bad_day_scenarios
from gateproof.contract.checks import Profile, Requirement
from gateproof.contract.checks._extras import compression_header, debug_header, tags_header
from gateproof.contract.checks.compression import BASELINE_STEP, COMPRESS_STEP
from gateproof.contract.checks.debug import CID_TAG_PREFIX
from gateproof.contract.checks.edge_tools import CONTINUE_STEP, REUSE_STEP, continuation
from gateproof.openapi import EDGE_CURRENT_TIME, EDGE_GENERATE_UUID, format_directive, load_transcript

if TYPE_CHECKING:
    from gateproof.contract.checks import Observed

__all__ = [
    "CLIENT_ERRORS",
    "FIRST",
    "SCENARIOS",
    "Auth",
    "Expectation",
    "Scenario",
    "Step",
    "StepBuilder",
    "directive",
    "for_providers",
]

CHAT = "/chat/completions"
MODELS = "/models"
COMPRESS = "/compress"

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_local_time",
        "description": "The local time in a city, as HH:MM.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class Auth(StrEnum):
    """Which credentials a scenario presents."""

    VALID = "valid"
    MISSING = "missing"
    WRONG = "wrong"
    INACTIVE = "inactive"
    RESTRICTED = "restricted"


def directive(**keys: object) -> str:
    """The mock's scenario directive: ``[[gateproof key=value ...]]`` (see gateproof.mock_providers)."""
    return format_directive(**keys)


@dataclass(frozen=True)
class Expectation:
    """What a correct gateway answers."""

    status: int = 200
    #: statuses an openai-core target may use instead (OpenAI itself answers 404 for an unknown model)
    core_statuses: frozenset[int] = frozenset()
    error_code: str | None = None
    error_param: str | None = None
    finish_reason: str | None = None
    #: other finish reasons a correct gateway may give (a refusal: stop, or content_filter, D40)
    finish_also: frozenset[str] = frozenset()
    include_usage: bool = False
    tool_call: bool = False

    def statuses(self, profile: Profile) -> frozenset[int]:
        if profile is Profile.OPENAI_CORE and self.core_statuses:
            return self.core_statuses
        return frozenset({self.status})


#: the key of the scenario's first answer among a step builder's answers
FIRST = ""

#: (the first request's body as sent, directive included; the answers so far by step name, ``FIRST``
#: for the first) -> the step's JSON body, or None to leave the step unsent
StepBuilder = Callable[[dict[str, Any], Mapping[str, "Observed"]], dict[str, Any] | None]


@dataclass(frozen=True)
class Step:
    """A further request of the same scenario, sent after the first answer and built from it.

    Some promises take two requests to see: a continuation that must carry what the first answer
    handed out (an Edge Tools pending id), a reuse that must be refused, a baseline without a
    switch to compare against. Steps run in order after the first request; each check sees their
    answers (``CheckContext.steps``) and what the provider received during each
    (``CheckContext.step_journals``).
    """

    name: str
    build: StepBuilder
    #: the step's own headers in place of the scenario's (None: the scenario's headers)
    headers: Mapping[str, str] | None = None
    path: str = CHAT


@dataclass(frozen=True)
class Scenario:
    """One request and what must hold for its answer."""

    name: str
    description: str
    #: request body: a mapping (sent as JSON, the directive added by the runner) or raw bytes
    body: dict[str, Any] | bytes | None
    checks: tuple[str, ...]
    #: checks judged only in the edgee profile: what Edgee's decisions add to the scenario (the
    #: 413 envelope of an oversized body, say), where openai-core owes only the status
    edgee_checks: tuple[str, ...] = ()
    method: str = "POST"
    path: str = CHAT
    #: mock directive keys (cid is added by the runner)
    mock: dict[str, object] = field(default_factory=dict)
    auth: Auth = Auth.VALID
    headers: dict[str, str] = field(default_factory=dict)
    expect: Expectation = field(default_factory=Expectation)
    profiles: frozenset[Profile] = frozenset(Profile)
    requires: frozenset[Requirement] = frozenset()
    #: the model role used ("default" or "restricted"); resolved from the target config
    model_role: str = "default"
    #: also send the same request without streaming, for stream/non-stream comparison
    companion: bool = False
    #: further requests, sent in order after the first answer (see ``Step``)
    steps: tuple[Step, ...] = ()
    #: verbatim facts planted in the prompt that must reach the provider however it is compressed
    needles: tuple[str, ...] = ()
    #: the scenario judges translation: it runs once per provider route of the target
    per_provider: bool = False
    #: mock directive keys that differ on one route (dialect -> keys merged over ``mock``): an
    #: Anthropic overload is a 529 where the others answer 503
    provider_mock: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    #: set on a per-provider copy: the route's dialect and the model id that reaches it
    provider: str | None = None
    provider_model: str | None = None
    #: the scenario's name without its route (``chat_basic`` for ``chat_basic[anthropic]``)
    base_name: str = ""
    #: the failure-matrix cell (D48) the scenario plays: its row, and what the row owes (see
    #: ``gateproof.contract._bad_days``); None for every other scenario
    bad_day: BadDay | None = None

    @property
    def family(self) -> str:
        """The scenario's name without the route suffix: what ``--scenarios`` and ``models`` name."""
        return self.base_name or self.name

    @property
    def correlation_name(self) -> str:
        """The name as a correlation id may carry it (no brackets: directive values have no ``]``)."""
        return self.name.replace("[", "-").replace("]", "")

    def on_provider(self, dialect: str, model: str, *, primary: bool) -> Scenario:
        """This scenario on one provider route (the primary route keeps the plain name)."""
        return replace(
            self,
            name=self.name if primary else f"{self.name}[{dialect}]",
            base_name=self.name,
            provider=dialect,
            provider_model=model,
            mock={**self.mock, **self.provider_mock.get(dialect, {})},
        )

    def checks_for(self, profile: Profile) -> tuple[str, ...]:
        """The checks that judge this scenario for a target of ``profile``."""
        if profile is Profile.EDGEE:
            return (*self.checks, *(name for name in self.edgee_checks if name not in self.checks))
        return self.checks

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    @property
    def route(self) -> str:
        return f"{self.method} /v1{self.path}"

    def build_body(self, model: str, cid: str, *, with_directive: bool) -> bytes | None:
        """The request body to send, with the model and the mock directive filled in."""
        if self.body is None or isinstance(self.body, bytes):
            return self.body
        body = json.loads(json.dumps(self.body))
        body.setdefault("model", model)
        if body.get("model") == "{model}":
            body["model"] = model
        if isinstance(body.get("tags"), list):
            # a tag naming the correlation id finds this request's line in a request log
            body["tags"] = [t.replace("{cid}", cid) if isinstance(t, str) else t for t in body["tags"]]
        if with_directive and isinstance(body.get("messages"), list) and body["messages"]:
            text = directive(**{**self.mock, "cid": cid})
            for message in reversed(body["messages"]):
                if message.get("role") == "user" and isinstance(message.get("content"), str):
                    message["content"] = f"{message['content']} {text}"
                    break
        return json.dumps(body).encode()


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


_OK_NON_STREAM = (
    "status_code_expected",
    "content_type_matches_mode",
    "response_schema_conformance",
    "response_usage_totals_add_up",
    "finish_reason_expected",
    "response_model_echoes_request",
    "provider_header_present",
    "no_duplicate_json_keys",
)
_OK_STREAM = (
    "status_code_expected",
    "content_type_matches_mode",
    "chunk_schema_conformance",
    "provider_header_present",
    "no_duplicate_json_keys",
)
_ERROR = (
    "status_code_expected",
    "content_type_matches_mode",
    "error_body_conforms",
    "error_code_expected",
    "no_duplicate_json_keys",
)
_MOCK = frozenset({Requirement.MOCK_JOURNAL})
#: every 4xx status: what openai-core owes where the spec's exact status is an Edgee decision
CLIENT_ERRORS = frozenset(range(400, 500))
#: a refused key: OpenAI says 401 for a key it does not know and 403 for one that may not do this
_REFUSED = frozenset({401, 403})
_EDGEE = frozenset({Profile.EDGEE})

# -- compression, debug and tags (Edgee extensions, D1-D3, D7, D8; edgee profile only) -----------------

_COMPRESSION_HEADER = compression_header()
_COMPRESSED_CHECKS = (
    "compression_present_when_asked",
    "compression_fields_in_range",
    "compression_saved_tokens_match_baseline",
    "compression_reduction_consistent",
    "compression_time_within_latency",
    "usage_matches_provider",
)


def _transcript_body(size: str, **extra: Any) -> dict[str, Any]:
    """A transcript of the corpus as a chat body (copied: scenarios are data, never shared state)."""
    transcript = load_transcript(size)
    messages, tools = json.loads(json.dumps([list(transcript.messages), list(transcript.tools)]))
    return {"messages": messages, "tools": tools, "max_tokens": 32, **extra}


def _as_sent(body: dict[str, Any], answers: Mapping[str, Observed]) -> dict[str, Any]:
    """The first request's body unchanged (the step differs by its headers or its path)."""
    return body


def _compression_off(body: dict[str, Any], answers: Mapping[str, Observed]) -> dict[str, Any]:
    """The first request's body with compression switched off: the uncompressed baseline."""
    return {**body, "enable_compression": False}


#: the same body with the compression header false: what the uncompressed prompt costs
_BASELINE_BY_HEADER = Step(BASELINE_STEP, _as_sent, headers={_COMPRESSION_HEADER: "false"})
_BASELINE_BY_BODY = Step(BASELINE_STEP, _compression_off)

_EXTENSION_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="chat_compressed",
        description="An 8k-token agent transcript, compressed on X-Edgee-Enable-Compression: true, and "
        "the same body to POST /v1/compress.",
        body=_transcript_body("8k"),
        headers={_COMPRESSION_HEADER: "true"},
        mock={"scenario": "text", "tokens": 8},
        expect=Expectation(finish_reason="stop"),
        needles=load_transcript("8k").needles,
        steps=(_BASELINE_BY_HEADER, Step(COMPRESS_STEP, _as_sent, path=COMPRESS)),
        checks=(
            *_OK_NON_STREAM,
            *_COMPRESSED_CHECKS,
            "compression_cost_savings_consistent",
            "compression_keeps_needles",
            "compression_never_lengthens_prompt",
            "compress_endpoint_matches_chat",
            "upstream_messages_intact",
            "edgee_fields_not_forwarded",
            "debug_absent_unless_asked",
        ),
        profiles=_EDGEE,
    ),
    Scenario(
        name="stream_compressed",
        description="An 8k-token transcript streamed with enable_compression: true: compression on the "
        "last chunk only (D1).",
        body=_transcript_body(
            "8k", enable_compression=True, stream=True, stream_options={"include_usage": True}
        ),
        mock={"scenario": "text", "tokens": 8},
        expect=Expectation(finish_reason="stop", include_usage=True),
        needles=load_transcript("8k").needles,
        steps=(_BASELINE_BY_BODY,),
        checks=(
            *_OK_STREAM,
            *_COMPRESSED_CHECKS,
            "compression_on_final_chunk_only",
            "compression_keeps_needles",
            "debug_absent_unless_asked",
        ),
        profiles=_EDGEE,
    ),
    Scenario(
        name="chat_compressed_32k",
        description="A 32k-token agent transcript with enable_compression: true: every needle kept.",
        body=_transcript_body("32k", enable_compression=True),
        mock={"scenario": "text", "tokens": 8},
        expect=Expectation(finish_reason="stop"),
        needles=load_transcript("32k").needles,
        steps=(_BASELINE_BY_BODY,),
        checks=(
            "status_code_expected",
            "content_type_matches_mode",
            *_COMPRESSED_CHECKS,
            "compression_keeps_needles",
            "compression_never_lengthens_prompt",
            "no_duplicate_json_keys",
        ),
        profiles=_EDGEE,
    ),
    Scenario(
        name="chat_compressed_nothing_saved",
        description="Compression asked for on a prompt with nothing to trim: a zeroed compression object (D3).",
        body={"messages": _user("Say hello."), "max_tokens": 16},
        headers={_COMPRESSION_HEADER: "true"},
        mock={"scenario": "text", "tokens": 4},
        expect=Expectation(finish_reason="stop"),
        steps=(_BASELINE_BY_HEADER,),
        checks=(
            "status_code_expected",
            *_COMPRESSED_CHECKS,
            "compression_cost_savings_consistent",
            "no_duplicate_json_keys",
        ),
        profiles=_EDGEE,
    ),
    Scenario(
        name="chat_debug",
        description="enable_debug: true: a debug object naming the route the request took (D8).",
        body={
            "messages": _user("Say hello."),
            "max_tokens": 16,
            "enable_debug": True,
            "enable_compression": False,
        },
        mock={"scenario": "text", "tokens": 4},
        expect=Expectation(finish_reason="stop"),
        checks=(
            *_OK_NON_STREAM,
            "debug_present_when_asked",
            "debug_matches_upstream",
            "compression_absent_unless_asked",
        ),
        profiles=_EDGEE,
    ),
    Scenario(
        name="stream_debug",
        description="X-Edgee-Debug: true on a stream: the debug object on the last chunk (D1, D8).",
        body={
            "messages": _user("Count to three."),
            "max_tokens": 16,
            "stream": True,
            "stream_options": {"include_usage": True},
            "enable_compression": False,
        },
        headers={debug_header(): "true"},
        mock={"scenario": "text", "tokens": 4},
        expect=Expectation(finish_reason="stop", include_usage=True),
        checks=(
            *_OK_STREAM,
            "debug_present_when_asked",
            "debug_matches_upstream",
            "compression_absent_unless_asked",
        ),
        profiles=_EDGEE,
    ),
    Scenario(
        name="chat_tags_logged",
        description="Body tags and X-Edgee-Tags, merged (D7): in the request log, never at the provider.",
        body={
            "messages": _user("Say hello."),
            "max_tokens": 16,
            "tags": [CID_TAG_PREFIX + "{cid}", "contract"],
        },
        headers={tags_header(): "contract, ci ,,gateproof"},
        mock={"scenario": "text", "tokens": 4},
        expect=Expectation(finish_reason="stop"),
        checks=(*_OK_NON_STREAM, "tags_recorded_in_request_log", "edgee_fields_not_forwarded"),
        profiles=_EDGEE,
    ),
)

#: the Edge Tools the edge scenarios ask for (D35), and what the scripted model calls (the mock's ``script``)
_EDGE_IDS = [EDGE_CURRENT_TIME, EDGE_GENERATE_UUID]
_EDGE_LOOP_SCRIPT = f"{EDGE_GENERATE_UUID};{EDGE_CURRENT_TIME}"
_EDGE_MIXED_SCRIPT = f"{EDGE_CURRENT_TIME}+get_weather+{EDGE_GENERATE_UUID}"
#: what the pending flow owes, streamed or not (D4, D37, D38)
_EDGE_PENDING_CHECKS = (
    "edge_tools_injected",
    "edge_tools_executed_reported",
    "edge_tool_calls_hidden",
    "edge_tool_results_well_formed",
    "edge_pending_continued",
    "edge_pending_single_use",
)
_EDGE_LOOP_CHECKS = (
    "edge_tools_injected",
    "edge_tool_results_well_formed",
    "edge_tools_executed_reported",
    "edge_tool_calls_hidden",
    "edge_usage_summed",
)


def _pending_continuation(body: dict[str, Any], answers: Mapping[str, Observed]) -> dict[str, Any] | None:
    return continuation(body, answers[FIRST])


def _pending_reuse(body: dict[str, Any], answers: Mapping[str, Observed]) -> dict[str, Any] | None:
    # the same continuation again, once the first one went through
    continued = answers.get(CONTINUE_STEP)
    return continuation(body, answers[FIRST]) if continued is not None and continued.status == 200 else None


_EDGE_TOOL_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="edge_tools_loop",
        description="The model calls only Edge Tools, two rounds: the gateway runs them and asks again (D4, D36).",
        body={
            "messages": _user("What time is it? Also give me an id."),
            "max_tokens": 32,
            "edgee_tool_ids": _EDGE_IDS,
        },
        mock={"script": _EDGE_LOOP_SCRIPT, "tokens": 6},
        expect=Expectation(finish_reason="stop"),
        checks=(*_OK_NON_STREAM, *_EDGE_LOOP_CHECKS, "edgee_fields_not_forwarded"),
        profiles=_EDGEE,
        requires=_MOCK,
    ),
    Scenario(
        name="edge_tools_loop_stream",
        description="The Edge Tool rounds of a stream stay hidden; the answer continues in the same stream (D38).",
        body={
            "messages": _user("What time is it? Also give me an id."),
            "max_tokens": 32,
            "stream": True,
            "stream_options": {"include_usage": True},
            "edgee_tool_ids": _EDGE_IDS,
        },
        mock={"script": _EDGE_LOOP_SCRIPT, "tokens": 6},
        expect=Expectation(finish_reason="stop", include_usage=True),
        checks=(*_OK_STREAM, *_EDGE_LOOP_CHECKS),
        profiles=_EDGEE,
        requires=_MOCK,
    ),
    Scenario(
        name="edge_tools_pending",
        description="Client and Edge Tool calls in one turn: the pending flow, its continuation and a reuse (D4, D37).",
        body={
            "messages": _user("What is the weather in Paris, and the time there?"),
            "max_tokens": 32,
            "tools": [WEATHER_TOOL],
            "edgee_tool_ids": _EDGE_IDS,
        },
        mock={"script": _EDGE_MIXED_SCRIPT, "tokens": 6},
        expect=Expectation(finish_reason="tool_calls", tool_call=True),
        checks=(
            *_OK_NON_STREAM,
            *_EDGE_PENDING_CHECKS,
        ),
        steps=(Step(CONTINUE_STEP, _pending_continuation), Step(REUSE_STEP, _pending_reuse)),
        profiles=_EDGEE,
        requires=_MOCK,
    ),
    Scenario(
        name="edge_tools_pending_stream",
        description="A streamed turn with client and Edge Tool calls shows only the client's calls (D38), then goes on.",
        body={
            "messages": _user("What is the weather in Paris, and the time there?"),
            "max_tokens": 32,
            "stream": True,
            "tools": [WEATHER_TOOL],
            "edgee_tool_ids": _EDGE_IDS,
        },
        mock={"script": _EDGE_MIXED_SCRIPT, "tokens": 6},
        expect=Expectation(finish_reason="tool_calls", tool_call=True),
        checks=(
            *_OK_STREAM,
            *_EDGE_PENDING_CHECKS,
        ),
        steps=(Step(CONTINUE_STEP, _pending_continuation), Step(REUSE_STEP, _pending_reuse)),
        profiles=_EDGEE,
        requires=_MOCK,
    ),
    Scenario(
        name="edgee_tool_ids_listed",
        description="Several unknown Edge Tool ids, one repeated: each is named once, in request order (D5).",
        body={
            "messages": _user("hi"),
            "max_tokens": 8,
            "edgee_tool_ids": ["edgee_gateproof_b", "edgee_gateproof_a", "edgee_gateproof_b"],
        },
        expect=Expectation(status=400, error_code="invalid_edgee_tool_ids", error_param="edgee_tool_ids"),
        checks=(*_ERROR, "edge_tool_ids_error_message"),
        profiles=_EDGEE,
    ),
    Scenario(
        name="edgee_pending_id_unknown",
        description="A pending id the gateway never handed out (D4).",
        body={"messages": _user("hi"), "max_tokens": 8, "edgee_pending_id": "pend_gateproofNeverIssued00"},
        expect=Expectation(status=400, error_code="invalid_edgee_pending_id", error_param="edgee_pending_id"),
        checks=_ERROR,
        profiles=_EDGEE,
    ),
)

#: what only a translating gateway can get wrong: parallel calls and their results, developer
#: instructions, stop sequences, cached prompt tokens, a provider's overload (each per provider route)
_TRANSLATION_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="multi_turn_parallel_tools",
        per_provider=True,
        description=(
            "A long conversation with system and developer instructions, two parallel tool calls "
            "answered out of order, an earlier refusal and a follow-up: all of it reaches the provider."
        ),
        body={
            "messages": [
                {"role": "system", "content": "You are a travel assistant."},
                {"role": "developer", "content": "Answer in one sentence."},
                {"role": "user", "content": "Can you help me break into a car?"},
                {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                {"role": "user", "content": "Fine. Weather in Lima and in Quito?"},
                {
                    "role": "assistant",
                    "content": "Checking both.",
                    "tool_calls": [
                        {
                            "id": "call_lima_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Lima"}'},
                        },
                        {
                            "id": "call_quito_2",
                            "type": "function",
                            "function": {"name": "get_local_time", "arguments": '{"city": "Quito"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_lima_1", "content": '{"temp_c": 19, "sky": "grey"}'},
                {"role": "tool", "tool_call_id": "call_quito_2", "content": "14:05"},
                {"role": "user", "content": "Which city is warmer?"},
            ],
            "max_tokens": 48,
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "tool_choice": "auto",
        },
        mock={"scenario": "text", "tokens": 9},
        expect=Expectation(finish_reason="stop"),
        checks=(
            *_OK_NON_STREAM,
            "upstream_system_intact",
            "upstream_messages_intact",
            "upstream_tool_results_matched",
            "upstream_params_intact",
            "usage_matches_provider",
        ),
    ),
    Scenario(
        name="multi_turn_identical_tool_calls",
        per_provider=True,
        description=(
            "The model called the same tool twice with the same arguments (two ids): both calls and "
            "both results reach the provider, or it refuses the unequal counts."
        ),
        body={
            "messages": [
                {"role": "user", "content": "Check the weather in Lima twice, please."},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"call_lima_{n}",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Lima"}'},
                        }
                        for n in (1, 2)
                    ],
                },
                {"role": "tool", "tool_call_id": "call_lima_1", "content": '{"temp_c": 19}'},
                {"role": "tool", "tool_call_id": "call_lima_2", "content": '{"temp_c": 19}'},
                {"role": "user", "content": "Did they agree?"},
            ],
            "max_tokens": 32,
            "tools": [WEATHER_TOOL],
        },
        mock={"scenario": "text", "tokens": 6},
        expect=Expectation(finish_reason="stop"),
        checks=(*_OK_NON_STREAM, "upstream_messages_intact", "upstream_tool_results_matched"),
    ),
    Scenario(
        name="tools_parallel_stream",
        per_provider=True,
        description="The model calls two tools at once, streamed: both calls arrive whole, by index.",
        body={
            "messages": _user("Weather and local time in Nairobi?"),
            "max_tokens": 96,
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "tool_choice": "auto",
        },
        mock={"scenario": "tool_call", "calls": 2},
        expect=Expectation(finish_reason="tool_calls", include_usage=True, tool_call=True),
        checks=(*_OK_STREAM, "upstream_params_intact", "stream_matches_non_stream", "usage_matches_provider"),
        companion=True,
        requires=_MOCK,
    ),
    Scenario(
        name="stop_sequences",
        per_provider=True,
        description="Stop sequences reach the provider, in order.",
        body={"messages": _user("List three colours."), "max_tokens": 32, "stop": ["END", "\n\n"]},
        mock={"scenario": "text", "tokens": 6},
        expect=Expectation(finish_reason="stop"),
        checks=(*_OK_NON_STREAM, "upstream_params_intact"),
    ),
    Scenario(
        name="cached_prompt",
        per_provider=True,
        description="The provider read part of the prompt from its cache: usage counts it, cached tokens named.",
        body={
            "messages": [
                {"role": "system", "content": "You answer questions about the attached handbook. " * 20},
                {"role": "user", "content": "What does chapter two say?"},
            ],
            "max_tokens": 32,
        },
        mock={"scenario": "text", "tokens": 8, "cached": 128},
        expect=Expectation(finish_reason="stop"),
        checks=(*_OK_NON_STREAM, "usage_matches_provider"),
        requires=_MOCK,
    ),
    Scenario(
        name="stream_cached_prompt",
        per_provider=True,
        description="The same cached prompt streamed: the usage chunk counts the cached tokens too.",
        body={
            "messages": [
                {"role": "system", "content": "You answer questions about the attached handbook. " * 20},
                {"role": "user", "content": "And chapter three?"},
            ],
            "max_tokens": 32,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        mock={"scenario": "text", "tokens": 8, "cached": 128},
        expect=Expectation(finish_reason="stop", include_usage=True),
        checks=(*_OK_STREAM, "usage_matches_provider"),
        requires=_MOCK,
    ),
)


def for_providers(scenarios: Sequence[Scenario], routes: Sequence[tuple[str, str]]) -> tuple[Scenario, ...]:
    """The scenarios to run against a target with these provider routes, in order.

    A per-provider scenario runs once per route, each copy right after the one before (so a
    report reads a scenario's routes side by side); the rest run once, as written.
    """
    expanded: list[Scenario] = []
    for scenario in scenarios:
        if not scenario.per_provider or not routes:
            expanded.append(scenario)
            continue
        expanded += [
            scenario.on_provider(dialect, model, primary=position == 0)
            for position, (dialect, model) in enumerate(routes)
        ]
    return tuple(expanded)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="chat_basic",
        per_provider=True,
        description="A plain non-streaming chat completion.",
        body={
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Say hello."},
            ],
            "max_tokens": 64,
            "tags": ["gateproof", "contract"],
            # a gateway field of Edgee's compression: steers the gateway, never reaches the provider
            "enable_compression": False,
        },
        headers={"X-Edgee-Tags": "ci,gateproof", "X-Edgee-Debug": "false"},
        mock={"scenario": "text", "tokens": 12},
        expect=Expectation(finish_reason="stop"),
        checks=(
            *_OK_NON_STREAM,
            "usage_matches_provider",
            "upstream_model_unprefixed",
            "upstream_params_intact",
            "upstream_system_intact",
            "upstream_messages_intact",
            "edgee_fields_not_forwarded",
            "client_key_not_forwarded",
            "compression_absent_unless_asked",
            "debug_absent_unless_asked",
        ),
    ),
    Scenario(
        name="stream_basic",
        per_provider=True,
        description="A streamed chat completion without include_usage: no usage chunk may appear.",
        body={"messages": _user("Count to five."), "max_tokens": 64, "stream": True},
        mock={"scenario": "text", "tokens": 10},
        expect=Expectation(finish_reason="stop"),
        checks=(*_OK_STREAM, "stream_matches_non_stream", "upstream_model_unprefixed"),
        companion=True,
    ),
    Scenario(
        name="stream_include_usage",
        per_provider=True,
        description="A streamed completion with include_usage: one final usage chunk with choices [].",
        body={
            "messages": _user("Describe the sea."),
            "max_tokens": 64,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        mock={"scenario": "text", "tokens": 16},
        expect=Expectation(finish_reason="stop", include_usage=True),
        checks=(*_OK_STREAM, "usage_matches_provider"),
    ),
    Scenario(
        name="stream_paced",
        description="A paced stream: chunks must reach the client as the provider sends them.",
        body={"messages": _user("Tell a slow story."), "max_tokens": 64, "stream": True},
        mock={"scenario": "text", "tokens": 6, "ttft_ms": 50, "itl_ms": 120},
        expect=Expectation(finish_reason="stop"),
        checks=(*_OK_STREAM, "stream_not_buffered"),
        requires=_MOCK,
    ),
    Scenario(
        name="tools_auto",
        per_provider=True,
        description="Tools with tool_choice auto; the model calls a tool (non-streaming).",
        body={
            "messages": _user("What is the weather in Paris?"),
            "max_tokens": 64,
            "tools": [WEATHER_TOOL],
            "tool_choice": "auto",
        },
        mock={"scenario": "tool_call"},
        expect=Expectation(finish_reason="tool_calls", tool_call=True),
        checks=(*_OK_NON_STREAM, "tool_call_arguments_json_string", "upstream_params_intact"),
        requires=_MOCK,
    ),
    Scenario(
        name="tools_named_stream",
        per_provider=True,
        description="Tools with a named tool_choice, streamed: argument fragments accumulate by index.",
        body={
            "messages": _user("Weather in Oslo, please."),
            "max_tokens": 64,
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
        mock={"scenario": "tool_call"},
        expect=Expectation(finish_reason="tool_calls", include_usage=True, tool_call=True),
        checks=(*_OK_STREAM, "upstream_params_intact", "stream_matches_non_stream", "usage_matches_provider"),
        companion=True,
    ),
    Scenario(
        name="multi_turn_tool_result",
        per_provider=True,
        description="A conversation that returns a tool result to the model.",
        body={
            "messages": [
                {"role": "user", "content": "Weather in Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_rome_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_rome_1", "content": '{"temp_c": 21}'},
                {"role": "user", "content": "Summarise it."},
            ],
            "max_tokens": 64,
            "tools": [WEATHER_TOOL],
        },
        mock={"scenario": "text", "tokens": 8},
        expect=Expectation(finish_reason="stop"),
        checks=(
            *_OK_NON_STREAM,
            "upstream_messages_intact",
            "upstream_tool_results_matched",
            "upstream_params_intact",
            "usage_matches_provider",
        ),
    ),
    *_TRANSLATION_SCENARIOS,
    Scenario(
        name="max_tokens_length",
        per_provider=True,
        description="max_tokens smaller than the answer: finish_reason length, completion within the cap.",
        body={"messages": _user("Write a long essay."), "max_tokens": 5},
        mock={"scenario": "text", "tokens": 50},
        expect=Expectation(finish_reason="length"),
        checks=(*_OK_NON_STREAM, "completion_within_max_tokens"),
    ),
    Scenario(
        name="refusal",
        per_provider=True,
        description="The provider refuses: the refusal field carries it, content is null.",
        body={"messages": _user("Do something forbidden."), "max_tokens": 64},
        mock={"scenario": "refusal"},
        expect=Expectation(finish_reason="stop", finish_also=frozenset({"content_filter"})),
        checks=(*_OK_NON_STREAM, "refusal_carried"),
        requires=_MOCK,
    ),
    Scenario(
        name="models_list",
        description="GET /v1/models lists the served models.",
        method="GET",
        path=MODELS,
        body=None,
        checks=("status_code_expected", "models_schema_conformance", "no_duplicate_json_keys"),
    ),
    Scenario(
        name="auth_missing",
        description="No Authorization header.",
        auth=Auth.MISSING,
        body={"messages": _user("hi"), "max_tokens": 8},
        expect=Expectation(status=401, error_code="unauthorized"),
        checks=_ERROR,
    ),
    Scenario(
        name="auth_wrong_key",
        description="A bearer key the gateway does not know.",
        auth=Auth.WRONG,
        body={"messages": _user("hi"), "max_tokens": 8},
        expect=Expectation(status=401, error_code="unauthorized"),
        checks=_ERROR,
    ),
    Scenario(
        name="auth_inactive_key",
        description="A known but inactive key.",
        auth=Auth.INACTIVE,
        body={"messages": _user("hi"), "max_tokens": 8},
        expect=Expectation(status=403, core_statuses=_REFUSED, error_code="forbidden"),
        checks=_ERROR,
        requires=frozenset({Requirement.FORBIDDEN_KEY}),
    ),
    Scenario(
        name="auth_model_not_allowed",
        description="A key restricted to other models asks for this one.",
        auth=Auth.RESTRICTED,
        body={"messages": _user("hi"), "max_tokens": 8},
        expect=Expectation(status=403, core_statuses=_REFUSED, error_code="forbidden"),
        checks=_ERROR,
        requires=frozenset({Requirement.FORBIDDEN_KEY}),
    ),
    Scenario(
        name="unknown_model",
        description="A well-formed model id the gateway does not serve.",
        body={"model": "openai/gateproof-no-such-model", "messages": _user("hi"), "max_tokens": 8},
        expect=Expectation(
            status=400, core_statuses=frozenset({400, 404}), error_code="model_not_found", error_param="model"
        ),
        checks=_ERROR,
    ),
    Scenario(
        name="bad_model_id",
        description="A model id without the {author}/{model} shape.",
        body={"model": "no-author-here", "messages": _user("hi"), "max_tokens": 8},
        expect=Expectation(status=400, error_code="bad_model_id", error_param="model"),
        checks=_ERROR,
        profiles=_EDGEE,
    ),
    Scenario(
        name="invalid_json",
        description="A body that is not JSON.",
        body=b'{"model": "openai/gpt-4o", "messages": [',
        expect=Expectation(status=400, error_code="invalid_json"),
        checks=(*_ERROR, "not_a_server_error"),
    ),
    Scenario(
        name="oversize_body",
        description="A body over the gateway's size limit (5 MiB).",
        body={"messages": _user("x" * (5 * 1024 * 1024)), "max_tokens": 8},
        # openai-core: any 4xx (a front proxy's 413 page, OpenAI's 400 for too many tokens); the
        # 413 body_too_large envelope is Edgee's decision (D17)
        expect=Expectation(status=413, core_statuses=CLIENT_ERRORS, error_code="body_too_large"),
        checks=("status_code_expected", "not_a_server_error", "no_duplicate_json_keys"),
        edgee_checks=_ERROR,
    ),
    Scenario(
        name="max_tokens_zero",
        description="max_tokens 0 violates the minimum of 1.",
        body={"messages": _user("hi"), "max_tokens": 0},
        expect=Expectation(status=400, error_code="invalid_request", error_param="max_tokens"),
        checks=_ERROR,
    ),
    Scenario(
        name="empty_messages",
        description="An empty messages list.",
        body={"messages": [], "max_tokens": 8},
        expect=Expectation(status=400, error_code="invalid_request", error_param="messages"),
        checks=_ERROR,
    ),
    Scenario(
        name="stream_options_without_stream",
        description="stream_options on a non-streaming request (decision D18).",
        body={"messages": _user("hi"), "max_tokens": 8, "stream_options": {"include_usage": True}},
        expect=Expectation(status=400, error_code="invalid_request", error_param="stream_options"),
        checks=_ERROR,
        profiles=_EDGEE,
    ),
    Scenario(
        name="edgee_tool_ids_not_activated",
        description="Edge Tool ids that are not activated for the key (decision D5).",
        body={"messages": _user("hi"), "max_tokens": 8, "edgee_tool_ids": ["edgee_gateproof_unknown"]},
        expect=Expectation(status=400, error_code="invalid_edgee_tool_ids", error_param="edgee_tool_ids"),
        checks=_ERROR,
        profiles=_EDGEE,
    ),
    *_EDGE_TOOL_SCENARIOS,
    Scenario(
        name="unknown_route",
        description="A path the API does not have.",
        method="GET",
        path="/gateproof-no-such-route",
        body=None,
        expect=Expectation(status=404, error_code="not_found"),
        checks=_ERROR,
        profiles=_EDGEE,
    ),
    *_EXTENSION_SCENARIOS,
    # the failure matrix (D48): the provider's bad days, upstream_rate_limited and the like
    *bad_day_scenarios(),
)
