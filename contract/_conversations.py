"""The conversation layer: generated multi-turn conversations, sent through every provider route.

The scenarios judge a handful of hand-written requests; a translation bug often hides in a
combination none of them writes (parallel tool results answered out of order after a refusal,
a developer message beside a system one, a stop list on a stream). This layer asks hypothesis
for OpenAI chat conversations that are valid by construction (every assistant tool call is
answered by a tool message with its id, the conversation ends with the user), sends each one
through the target on each provider route, and holds three properties per example:

- the answer is a valid chat completion (or a valid stream of chunks obeying the grammar);
- the provider received the same intent the client sent (``intent_differences``, the one
  comparison the translation checks use too);
- the usage billed to the client is what the provider counted, cached tokens included
  (``usage_matches_provider``, the scenario check itself, run on each example).

A property that fails is searched again with shrinking on, so the report shows the smallest
conversation that still fails it, as the exact request body sent. Needs the gateproof mock:
its journal is the oracle of what the provider received and counted.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import string
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

from gateproof.contract._config import TargetConfig
from gateproof.contract._exchange import Sent, bounded_client, parse_chunks, send
from gateproof.contract._profiles import validators_for
from gateproof.contract._redaction import redact_headers
from gateproof.contract._scenarios import CHAT, Scenario
from gateproof.contract._wire import loads_bounded
from gateproof.contract.checks import CheckContext, CheckFailed, NotApplicable, Observed, Profile
from gateproof.contract.checks._registry import Redundant
from gateproof.contract.checks.bodies import usage_matches_provider
from gateproof.contract.checks.translation import intent_differences
from gateproof.contract.results import CheckResult, Exchange, Layer, Outcome, RawResponse, Severity
from gateproof.contract.stream import StreamReport
from gateproof.openapi import (
    CORRELATION_HEADER,
    JOURNAL_PATH,
    JournalRecord,
    SchemaKind,
    format_directive,
    intent_from_openai,
    is_edgee_header,
)

__all__ = [
    "CONVERSATION_CHECKS",
    "CONVERSATION_EXAMPLES",
    "conversations",
    "run_conversations",
    "skipped_conversations",
]

RESPONSE_VALID = "conversation_response_valid"
TRANSLATED = "conversation_translated_faithfully"
USAGE = "conversation_usage_matches_provider"

#: the layer's checks, with the sentence the registry (``--list-checks``) shows for each
CONVERSATION_CHECKS: dict[str, str] = {
    RESPONSE_VALID: "Every generated multi-turn conversation gets a valid chat completion (or a valid stream).",
    TRANSLATED: "The provider receives every generated conversation as sent: system, turns, tool calls and results, params.",
    USAGE: "The usage billed for every generated conversation equals what the provider counted, cached tokens included.",
}

#: examples per provider route in a full run (the config's ``property_examples`` caps it lower)
CONVERSATION_EXAMPLES = 15
#: the scenario name the results carry
SCENARIO_NAME = "conversations"
#: what one shrinking search may send at most, and how long it may take: a faulty target whose
#: every answer fails would otherwise be asked hundreds of times per property
_SHRINK_CALLS = 150
_SHRINK_SECONDS = 20.0
#: how long the layer waits for the mock to finish its journal record of an answer
_JOURNAL_SETTLE_S = 1.0
_JOURNAL_TIMEOUT_S = 5.0
#: broken exchanges after which a route sends no more examples: a target that stopped answering
#: would otherwise cost its deadline on every example and every shrinking step
_MAX_BROKEN = 2

# ---------------------------------------------------------------- the generated conversations

#: the tools a generated conversation offers, and the arguments each takes
TOOLS: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Sum of two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search notes for a query.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query"],
            },
        },
    },
)

#: at most this many messages per conversation: each example stays one cheap request
MAX_MESSAGES = 12

# no brackets at all: the mock's directive is written ``[[gateproof ...]]``
_WORD = st.text(alphabet=string.ascii_letters + string.digits + ".,?!'-", min_size=1, max_size=8)
_TEXT = st.lists(_WORD, min_size=1, max_size=6).map(" ".join)
_SMALL_INT = st.integers(min_value=-1000, max_value=1000)

_ARGUMENTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "get_weather": st.fixed_dictionaries({"city": _WORD}, optional={"unit": st.sampled_from(["c", "f"])}),
    "add": st.fixed_dictionaries({"a": _SMALL_INT, "b": _SMALL_INT}),
    "search": st.fixed_dictionaries({"query": _TEXT}, optional={"limit": st.integers(1, 20)}),
}
_TOOL_NAMES = tuple(tool["function"]["name"] for tool in TOOLS)
#: what a tool message answers: plain text, or a JSON object as text
_TOOL_CONTENT = st.one_of(_TEXT, st.dictionaries(_WORD, _SMALL_INT, min_size=1, max_size=2).map(json.dumps))


@st.composite
def _tool_round(draw: st.DrawFn, next_id: Callable[[], str]) -> list[dict[str, Any]]:
    """An assistant turn of 1-3 parallel tool calls, then a tool message answering each (any order)."""
    count = draw(st.integers(min_value=1, max_value=3))
    calls = []
    for _ in range(count):
        name = draw(st.sampled_from(_TOOL_NAMES))
        arguments = draw(_ARGUMENTS[name])
        calls.append(
            {
                "id": next_id(),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        )
    assistant: dict[str, Any] = {"role": "assistant", "content": draw(st.none() | _TEXT), "tool_calls": calls}
    answers = [
        {"role": "tool", "tool_call_id": call["id"], "content": draw(_TOOL_CONTENT)}
        for call in draw(st.permutations(calls))
    ]
    round_ = [assistant, *answers]
    if draw(st.booleans()):
        round_.append({"role": "assistant", "content": draw(_TEXT)})
    return round_


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    """An OpenAI chat request body, valid by construction (without ``model``; the route sets it).

    Optional system and developer messages, then turns of a user text and the assistant's
    answer to it (a text, a refusal, or a round of parallel tool calls answered by id), then the
    final user message; ``tools`` whenever a call needs them; optional ``stream`` (with usage),
    ``max_tokens`` and ``stop``. Everything shrinks toward one user message and no option.
    """
    numbers = iter(range(1, 1000))

    def next_id() -> str:
        return f"call_{next(numbers)}"

    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(_TEXT)})
    if draw(st.booleans()):
        messages.append({"role": "developer", "content": draw(_TEXT)})
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        turn: list[dict[str, Any]] = [{"role": "user", "content": draw(_TEXT)}]
        kind = draw(st.sampled_from(("text", "tools", "refusal")))
        if kind == "text":
            turn.append({"role": "assistant", "content": draw(_TEXT)})
        elif kind == "refusal":
            turn.append({"role": "assistant", "content": None, "refusal": draw(_TEXT)})
        else:
            turn.extend(draw(_tool_round(next_id)))
        if len(messages) + len(turn) + 1 > MAX_MESSAGES:
            break
        messages.extend(turn)
    messages.append({"role": "user", "content": draw(_TEXT)})
    body: dict[str, Any] = {"messages": messages}
    calls = any(message.get("tool_calls") for message in messages)
    if calls or draw(st.booleans()):
        body["tools"] = [dict(tool) for tool in TOOLS]
        # none, auto or one named function (D25); absent leaves it to the provider's default
        choice = draw(st.sampled_from((None, "auto", "none", *_TOOL_NAMES)))
        if choice in ("auto", "none"):
            body["tool_choice"] = choice
        elif choice is not None:
            body["tool_choice"] = {"type": "function", "function": {"name": choice}}
    if draw(st.booleans()):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.integers(min_value=1, max_value=64))
    if draw(st.booleans()):
        body["stop"] = draw(st.lists(_WORD, min_size=1, max_size=2, unique=True))
    return body


#: what the mock is asked to answer (a short text, or tool calls when the request allows them) and
#: to report as read from its cache
_MOCK_ASK = st.fixed_dictionaries(
    {
        "tokens": st.integers(min_value=1, max_value=8),
        "cached": st.sampled_from((0, 0, 4)),
        "calls": st.sampled_from((0, 0, 1, 2)),
    }
)


def _directive(body: Mapping[str, Any], ask: Mapping[str, int], cid: str) -> str:
    """The mock's directive for one example: tool calls when asked for and the request allows them."""
    if ask.get("calls") and body.get("tools") and body.get("tool_choice") != "none":
        return format_directive(scenario="tool_call", calls=ask["calls"], cached=ask["cached"], cid=cid)
    return format_directive(scenario="text", tokens=ask["tokens"], cached=ask["cached"], cid=cid)


# ---------------------------------------------------------------- one example, judged


@dataclass
class _Verdict:
    """What one example showed: the request sent, the answer, and each property's failure (None: held)."""

    body: dict[str, Any]
    sent: Sent
    observed: Observed | None
    failures: dict[str, CheckFailed] = field(default_factory=dict)
    #: properties judged on this example (an example the target refused judges only its validity)
    judged: set[str] = field(default_factory=set)


def _size(body: Mapping[str, Any]) -> tuple[int, int]:
    messages = body.get("messages")
    return (len(messages) if isinstance(messages, list) else 0, len(json.dumps(body)))


@dataclass
class _Route:
    """One provider route's run: the client, what to send, and what the mock recorded."""

    config: TargetConfig
    client: httpx.Client
    api_key: str
    dialect: str
    model: str
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    count: int = 0
    #: exchanges that broke (deadline, reset, ...): past a few, the route sends nothing more
    broken: int = 0

    @property
    def gave_up(self) -> bool:
        return self.broken >= _MAX_BROKEN

    def headers(self, cid: str) -> dict[str, str]:
        headers = {"Accept": "application/json", CORRELATION_HEADER: cid}
        for name, value in self.config.extra_headers.items():
            if self.config.profile is Profile.OPENAI_CORE and is_edgee_header(name):
                continue
            headers[name] = value
        headers["Content-Type"] = "application/json"
        headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def judge(self, generated: dict[str, Any], ask: Mapping[str, int]) -> _Verdict:
        self.count += 1
        cid = f"conv-{self.token}-{self.dialect}-{self.count}"
        body = json.loads(json.dumps(generated))
        body["model"] = self.model
        last = body["messages"][-1]
        last["content"] = f"{last['content']} {_directive(body, ask, cid)}"
        stream = bool(body.get("stream"))
        sent = Sent(
            method="POST",
            url=self.config.base_url + CHAT,
            headers=self.headers(cid),
            body=json.dumps(body).encode(),
            stream=stream,
            include_usage=stream,
        )
        if self.gave_up:
            return _Verdict(body, sent, None)  # not sent: judges nothing
        try:
            observed, report = send(self.client, sent)
        except httpx.HTTPError as exc:
            self.broken += 1
            verdict = _Verdict(body, sent, None, judged={RESPONSE_VALID})
            verdict.failures[RESPONSE_VALID] = CheckFailed(
                f"the exchange broke: {type(exc).__name__}: {exc}"[:300], expected="an answer", actual="none"
            )
            return verdict
        if report is not None:
            observed.chunks = parse_chunks(observed.body)
        verdict = _Verdict(body, sent, observed, judged={RESPONSE_VALID})
        problem = _invalid_answer(self.config.profile, observed, report, stream)
        if problem is not None:
            verdict.failures[RESPONSE_VALID] = problem
        if observed.status != 200:
            return verdict  # refused: what reached the provider and its bill are not this example's story
        journal = self.journal(cid)
        verdict.judged |= {TRANSLATED, USAGE}
        translation = _translation_failure(body, journal)
        if translation is not None:
            verdict.failures[TRANSLATED] = translation
        try:
            usage_matches_provider(
                CheckContext(
                    scenario=_SCENARIO,
                    profile=self.config.profile,
                    validators=validators_for(self.config.profile),
                    observed=observed,
                    request_body=body,
                    stream=report,
                    journal=journal,
                )
            )
        except CheckFailed as exc:
            verdict.failures[USAGE] = exc
        except (NotApplicable, Redundant):
            verdict.judged.discard(USAGE)
        return verdict

    def journal(self, cid: str) -> list[JournalRecord]:
        """The POST records the mock filed under ``cid``, waiting briefly for the last one to finish."""
        assert self.config.mock_url is not None
        deadline = time.monotonic() + _JOURNAL_SETTLE_S
        while True:
            records = self._read_journal(cid)
            if not records or records[-1].outcome != "pending" or time.monotonic() > deadline:
                return records
            time.sleep(0.02)

    def _read_journal(self, cid: str) -> list[JournalRecord]:
        assert self.config.mock_url is not None
        try:
            response = self.client.get(
                self.config.mock_url.rstrip("/") + JOURNAL_PATH,
                params={"cid": cid},
                timeout=_JOURNAL_TIMEOUT_S,
            )
            response.raise_for_status()
            entries = loads_bounded(response.content).get("entries", [])
            records = [JournalRecord.from_json(entry) for entry in entries]
        except (httpx.HTTPError, ValueError, AttributeError):
            return []
        return [record for record in records if record.method == "POST"]


#: the scenario a usage judgement is made under (the check reads only its journal and answer)
_SCENARIO = Scenario(name=SCENARIO_NAME, description="a generated conversation", body=None, checks=())


def _invalid_answer(
    profile: Profile, observed: Observed, report: StreamReport | None, stream: bool
) -> CheckFailed | None:
    validators = validators_for(profile)
    if observed.status != 200:
        excerpt = observed.body[:200].decode("utf-8", "replace")
        return CheckFailed(f"HTTP {observed.status}: {excerpt}", expected="200", actual=str(observed.status))
    if stream:
        if report is None:
            return CheckFailed(
                "a stream was asked for but the answer is not an event stream",
                expected="text/event-stream",
                actual=observed.content_type or "no Content-Type",
            )
        if not report.ok:
            first = report.violations[0]
            return CheckFailed(
                f"the stream breaks {first.rule}: {first}"[:400],
                expected="a valid stream",
                actual=str(first)[:200],
            )
        for index, chunk in enumerate(observed.chunks):
            issue = validators.first_issue(SchemaKind.CHUNK, chunk)
            if issue is not None:
                return CheckFailed(
                    f"chunk {index} is not a valid chunk: {issue}"[:400],
                    expected="a valid chunk",
                    actual=str(issue)[:200],
                )
        return None
    try:
        payload = loads_bounded(observed.body)
    except ValueError:
        return CheckFailed(
            "the answer is not JSON",
            expected="a chat completion",
            actual=observed.body[:120].decode("utf-8", "replace"),
        )
    issue = validators.first_issue(SchemaKind.RESPONSE, payload)
    if issue is not None:
        return CheckFailed(
            f"the answer is not a valid chat completion: {issue}"[:400],
            expected="a valid chat completion",
            actual=str(issue)[:200],
        )
    return None


def _translation_failure(body: Mapping[str, Any], journal: list[JournalRecord]) -> CheckFailed | None:
    if not journal:
        return CheckFailed(
            "the provider received no request for this conversation", expected="one request", actual="none"
        )
    record = journal[-1]
    try:
        received = record.request_intent()
    except ValueError as exc:
        return CheckFailed(
            f"the mock's record of the request is unreadable: {exc}", expected="a record", actual="unreadable"
        )
    if received is None:
        return CheckFailed(
            f"the provider did not read the request as its own ({record.dialect or 'unknown'} dialect, "
            f"answered {record.status})",
            expected="a request the provider reads",
            actual=f"{record.method} {record.path} answered {record.status}",
        )
    differences = intent_differences(intent_from_openai(body), received)
    if not differences:
        return None
    first = differences[0]
    more = f" (and {len(differences) - 1} more difference(s))" if len(differences) > 1 else ""
    return CheckFailed(
        f"{first.topic.value}: {first.message}{more}", expected=first.expected, actual=first.actual
    )


# ---------------------------------------------------------------- the searches


class _Fails(AssertionError):
    """Raised inside a shrinking search when the property under search fails (hypothesis shrinks it)."""


def _settings(examples: int, phases: tuple[Phase, ...]) -> settings:
    return settings(
        max_examples=examples,
        phases=phases,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.quiet,
    )


def _route_seed(config: TargetConfig, dialect: str) -> int:
    return config.seed + zlib.crc32(dialect.encode())


def _survey(route: _Route, examples: int, route_seed: int) -> list[_Verdict]:
    """Every example of the generation phase, judged on all three properties; nothing raises."""
    verdicts: list[_Verdict] = []

    @seed(route_seed)
    @_settings(examples, (Phase.generate,))
    @given(conversations(), _MOCK_ASK)
    def survey(body: dict[str, Any], ask: dict[str, int]) -> None:
        verdicts.append(route.judge(body, ask))

    survey()
    return verdicts


def _cause(verdict: _Verdict, check: str) -> str:
    """What a failure of ``check`` says, without the example's particulars (numbers, quoted values).

    Failures with the same cause are one finding; different causes (a provider's 400 and a
    usage chunk with a choice, say) are reported apart, so a small harmless one cannot hide a
    serious one behind its shrunk counterexample.
    """
    observed = verdict.observed
    if observed is not None and observed.status != 200:
        # an error answer: its status and the error's kind, whatever its message quotes
        try:
            error = loads_bounded(observed.body).get("error")
        except (ValueError, AttributeError):
            error = None
        kind = (
            [str(error.get(key)) for key in ("type", "code") if error.get(key)]
            if isinstance(error, dict)
            else []
        )
        return f"HTTP {observed.status} {'/'.join(kind)}".strip()
    reason = verdict.failures[check].reason
    # quoted values (also one cut short by the excerpt's length) and numbers are the example's own
    reason = re.sub(r"\"[^\"]*(?:\"|$)|(?<!\w)'[^']*(?:'|$)", "…", reason)
    return re.sub(r"\d+", "N", reason)[:100]


def _broken(verdict: _Verdict) -> bool:
    """The example got no answer, or not a 200: a client saw an error, not a deviation in an answer."""
    return verdict.observed is None or verdict.observed.status != 200


def _shrink(
    route: _Route, examples: int, route_seed: int, check: str, found: _Verdict, cause: str | None = None
) -> _Verdict:
    """The smallest example that still fails ``check`` (for ``cause``, when given): the survey replayed with shrinking on.

    The same seed generates the same examples, so the search meets the survey's failure again
    and shrinks from it. The smallest failing example seen is kept (hypothesis' own last replay
    may be cut short by the budget); a search that cannot reproduce it keeps the survey's.
    """
    smallest = found
    if route.gave_up:
        return smallest  # the target stopped answering: nothing left to shrink against
    calls = 0
    started = time.monotonic()

    @seed(route_seed)
    @_settings(examples, (Phase.generate, Phase.shrink))
    @given(conversations(), _MOCK_ASK)
    def search(body: dict[str, Any], ask: dict[str, int]) -> None:
        nonlocal smallest, calls
        if calls >= _SHRINK_CALLS or time.monotonic() - started > _SHRINK_SECONDS:
            return  # out of budget: every further candidate "passes", so the shrinker stops
        calls += 1
        verdict = route.judge(body, ask)
        if check in verdict.failures and (cause is None or _cause(verdict, check) == cause):
            if _size(verdict.body) < _size(smallest.body):
                smallest = verdict
            raise _Fails(check)

    # _Fails, or a flaky search: either way the smallest failure seen is kept
    with contextlib.suppress(Exception):
        search()
    return smallest


# ---------------------------------------------------------------- results


def _result(
    config: TargetConfig,
    check: str,
    dialect: str,
    outcome: Outcome,
    reason: str,
    *,
    cases: int,
    failed_cases: int = 0,
    expected: str = "",
    actual: str = "",
    exchange: Exchange | None = None,
    raw: RawResponse | None = None,
    severity: Severity | None = None,
) -> CheckResult:
    return CheckResult(
        check=check,
        description=CONVERSATION_CHECKS[check],
        layer=Layer.PROPERTY,
        profile=config.profile.value,
        target=config.name,
        route=_SCENARIO.route,
        scenario=SCENARIO_NAME,
        outcome=outcome,
        expected=expected or CONVERSATION_CHECKS[check],
        actual=actual,
        reason=reason,
        exchange=exchange,
        severity=severity,
        cases=cases,
        failed_cases=failed_cases,
        provider=dialect,
        raw=raw,
    )


def _exchange(verdict: _Verdict) -> Exchange:
    observed = verdict.observed
    return Exchange(
        method=verdict.sent.method,
        url=verdict.sent.url,
        request_headers=redact_headers(verdict.sent.headers),
        request_body=json.dumps(verdict.body, ensure_ascii=False),
        status=observed.status if observed is not None else None,
        response_headers=redact_headers(observed.headers) if observed is not None else {},
        response_body=observed.body[:2048].decode("utf-8", "replace") if observed is not None else None,
        elapsed_ms=observed.end_s * 1000.0 if observed is not None else None,
    )


def _raw(verdict: _Verdict) -> RawResponse | None:
    observed = verdict.observed
    if observed is None:
        return None
    return RawResponse(
        status=observed.status,
        headers=tuple(observed.headers.items()),
        body=observed.body,
        stream=verdict.sent.stream,
        request=verdict.body,
        expected_statuses=frozenset({200}),
    )


def _judged(
    config: TargetConfig, route: _Route, examples: int, verdicts: list[_Verdict]
) -> list[CheckResult]:
    results: list[CheckResult] = []
    route_seed = _route_seed(config, route.dialect)
    for check in CONVERSATION_CHECKS:
        judged = [v for v in verdicts if check in v.judged]
        failing = [v for v in judged if check in v.failures]
        if not judged:
            results.append(
                _result(
                    config,
                    check,
                    route.dialect,
                    Outcome.NOT_APPLICABLE,
                    f"judged 0 of {len(verdicts)} conversations: the target answered none of them with a 200",
                    cases=0,
                )
            )
            continue
        if not failing:
            results.append(
                _result(
                    config,
                    check,
                    route.dialect,
                    Outcome.PASSED,
                    f"held on {len(judged)} generated conversations",
                    cases=len(judged),
                )
            )
            continue
        causes: dict[str, list[_Verdict]] = {}
        for verdict in failing:
            causes.setdefault(_cause(verdict, check), []).append(verdict)
        # the cause to shrink: one a client met as an error first, else the most frequent
        primary = max(causes, key=lambda c: (any(_broken(v) for v in causes[c]), len(causes[c])))
        first = min(causes[primary], key=lambda v: _size(v.body))
        shrunk = _shrink(route, examples, route_seed, check, causes[primary][0], primary)
        if _size(first.body) < _size(shrunk.body):
            shrunk = first
        failure = shrunk.failures[check]
        others = [
            f"{min(group, key=lambda v: _size(v.body)).failures[check].reason[:200]} "
            f"({len(group)} of {len(judged)})"
            for cause, group in causes.items()
            if cause != primary
        ]
        messages = len(shrunk.body.get("messages", []))
        request = json.dumps(shrunk.body, ensure_ascii=False)
        kind = (
            "counterexample, not shrunk (the target stopped answering)"
            if route.gave_up
            else "shrunk counterexample"
        )
        reason = (
            f"{failure.reason}; failed on {len(causes[primary])} of {len(judged)} conversations; "
            f"{kind} ({messages} message(s)): {request}"
        )
        if others:
            reason += f"; {len(others)} other cause(s) on this route: " + "; ".join(others)
        results.append(
            _result(
                config,
                check,
                route.dialect,
                Outcome.FAILED,
                reason[:4000],
                cases=len(judged),
                failed_cases=len(failing),
                expected=failure.expected or CONVERSATION_CHECKS[check],
                actual=failure.actual,
                exchange=_exchange(shrunk),
                raw=_raw(shrunk) if check == RESPONSE_VALID else None,
                severity=None if check == RESPONSE_VALID else Severity.ERROR,
            )
        )
    return results


def run_conversations(
    config: TargetConfig,
    api_key: str,
    *,
    examples: int = CONVERSATION_EXAMPLES,
    progress: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Send ``examples`` generated conversations through each provider route; one result per (check, route)."""
    routes = config.provider_routes()
    if not config.mock_url:
        reason = "the target is not wired to the gateproof mock (mock_url): its journal is the oracle"
        return [
            _result(config, check, dialect, Outcome.NOT_APPLICABLE, reason, cases=0)
            for dialect, _ in routes
            for check in CONVERSATION_CHECKS
        ]
    from gateproof.contract._property import _keep_hypothesis_out_of_the_working_directory

    _keep_hypothesis_out_of_the_working_directory()
    results: list[CheckResult] = []
    with bounded_client(config.timeout_s) as client:
        for dialect, model in routes:
            if progress is not None:
                progress(f"conversations: {dialect} ({model})")
            route = _Route(config, client, api_key, dialect, model)
            verdicts = _survey(route, examples, _route_seed(config, dialect))
            results.extend(_judged(config, route, examples, verdicts))
    return results


def skipped_conversations(config: TargetConfig, reason: str) -> list[CheckResult]:
    """One error result per (check, route), for a run that cannot send conversations any more."""
    return [
        _result(config, check, dialect, Outcome.ERROR, reason, cases=0)
        for dialect, _ in config.provider_routes()
        for check in CONVERSATION_CHECKS
    ]
