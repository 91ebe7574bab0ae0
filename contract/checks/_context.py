"""What a check sees: the scenario, what came back, and (when wired) what the provider received."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateproof.contract._wire import JSONTooDeep, loads_bounded
from gateproof.contract.checks._registry import CheckFailed, NotApplicable, Profile

if TYPE_CHECKING:
    from gateproof.contract._scenarios import Scenario
    from gateproof.contract.stream import StreamReport
    from gateproof.openapi import JournalRecord, Validators

__all__ = ["NOTHING_FORWARDED", "CheckContext", "Observed"]

#: the reason of every check that needed what the provider received and found nothing: one root
#: cause (the gateway answered on its own, or never sent the request), which the runner reports once
NOTHING_FORWARDED = "the mock provider received no request for this scenario"


@dataclass
class Observed:
    """One response as the harness received it."""

    status: int
    #: header names lower-cased
    headers: dict[str, str]
    body: bytes
    #: seconds from sending the request to the first byte of the body / to each content event / to the end
    first_byte_s: float | None = None
    content_event_times_s: list[float] = field(default_factory=list)
    end_s: float = 0.0
    #: the JSON payloads of an SSE body, in order (empty for non-stream answers)
    chunks: list[Any] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON; a check that needs JSON fails when it is not.

        A body nested deeper than MAX_JSON_DEPTH fails the same way: validating or walking it
        would recurse past Python's stack, and no API answer needs that depth.
        """
        try:
            return loads_bounded(self.body)
        except JSONTooDeep as exc:
            excerpt = self.body[:200].decode("utf-8", "replace")
            raise CheckFailed(
                f"the body is too deep to judge: {exc}", expected="a JSON body", actual=excerpt
            ) from None
        except ValueError as exc:
            excerpt = self.body[:200].decode("utf-8", "replace")
            raise CheckFailed(
                f"the body is not JSON ({exc.__class__.__name__})", expected="a JSON body", actual=excerpt
            ) from None


@dataclass
class CheckContext:
    """Everything a check may read. Checks never send requests themselves."""

    scenario: Scenario
    profile: Profile
    validators: Validators
    observed: Observed
    #: the body actually sent (parsed JSON), or None for raw or empty bodies
    request_body: Any = None
    #: the client's bearer key, so checks can assert it never reached the provider (never reported)
    client_key: str | None = field(default=None, repr=False)
    stream: StreamReport | None = None
    #: requests the mock provider received for this scenario's first request, oldest first (None when
    #: the target is not wired to the mock)
    journal: list[JournalRecord] | None = None
    #: the same scenario answered without streaming, for stream/non-stream equivalence
    companion: Observed | None = None
    #: the answers to the scenario's further requests (``Scenario.steps``), by step name; a step
    #: that was not sent (its builder declined, or the transport failed) is absent
    steps: dict[str, Observed] = field(default_factory=dict)
    #: what the mock received while each step was answered, by step name (absent without the mock)
    step_journals: dict[str, list[JournalRecord]] = field(default_factory=dict)
    #: the bodies the steps sent (parsed JSON), by step name
    step_requests: dict[str, Any] = field(default_factory=dict)
    #: checks that already failed on this answer (judged first: a check's ``depends_on`` and
    #: ``defers_to``), so a check can leave out what another one reports
    failed: frozenset[str] = frozenset()
    #: the model the target declares its provider receives for the model sent (``upstream_models``)
    declared_upstream_model: str | None = None
    #: the environment variable holding the client's key, for messages (never the key itself)
    client_key_env: str = ""
    #: the structured request log the target declares it appends to (``request_log``), if any
    request_log: str | None = None
    #: the input price the target declares for the model sent (USD per million tokens), if any
    declared_input_price: float | None = None
    #: the provider route the scenario runs on (the dialect its model reaches), None when it is not routed
    route: str | None = None
    #: the model id that selects that route
    route_model: str | None = None
    #: when the client hung up (``time.time()``), for a scenario whose client leaves after the first
    #: content chunk (``BadDay.client_leaves``); None when it did not leave
    client_left_at: float | None = None

    def require_stream(self) -> StreamReport:
        if self.stream is None:
            raise NotApplicable("the response was not a stream")
        return self.stream

    def require_journal(self) -> list[JournalRecord]:
        if self.journal is None:
            raise NotApplicable("the target is not wired to the gateproof mock")
        if not self.journal:
            raise CheckFailed(
                NOTHING_FORWARDED,
                expected="one forwarded request",
                actual="none",
            )
        return self.journal

    def upstream_request(self) -> JournalRecord:
        """The last request the provider received for this scenario's first request."""
        return self.require_journal()[-1]

    def require_step(self, name: str) -> Observed:
        """The answer to step ``name``; the check fails when the step could not be sent."""
        if name not in self.steps:
            raise CheckFailed(
                f"the scenario's step {name!r} got no answer (not sent, or the transport failed)",
                expected=f"an answer to step {name!r}",
                actual="none",
            )
        return self.steps[name]

    def step_journal(self, name: str) -> list[JournalRecord]:
        """What the provider received during step ``name``."""
        if self.journal is None:
            raise NotApplicable("the target is not wired to the gateproof mock")
        return self.step_journals.get(name, [])
