"""What a check sees: the scenario, what came back, and (when wired) what the provider received."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateproof.contract._wire import JSONTooDeep, loads_bounded
from gateproof.contract.checks._registry import CheckFailed, NotApplicable, Profile

if TYPE_CHECKING:
    from gateproof.contract._scenarios import Scenario
    from gateproof.contract.stream import StreamReport
    from gateproof.openapi import Validators

__all__ = ["CheckContext", "Observed"]


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
    #: requests the mock provider received for this scenario (None when the target is not wired to the mock)
    journal: list[dict[str, Any]] | None = None
    #: the same scenario answered without streaming, for stream/non-stream equivalence
    companion: Observed | None = None
    #: checks that already failed on this answer (judged first: a check's ``depends_on`` and
    #: ``defers_to``), so a check can leave out what another one reports
    failed: frozenset[str] = frozenset()
    #: the model the target declares its provider receives for the model sent (``upstream_models``)
    declared_upstream_model: str | None = None
    #: the environment variable holding the client's key, for messages (never the key itself)
    client_key_env: str = ""

    def require_stream(self) -> StreamReport:
        if self.stream is None:
            raise NotApplicable("the response was not a stream")
        return self.stream

    def require_journal(self) -> list[dict[str, Any]]:
        if self.journal is None:
            raise NotApplicable("the target is not wired to the gateproof mock")
        if not self.journal:
            raise CheckFailed(
                "the mock provider received no request for this scenario",
                expected="one forwarded request",
                actual="none",
            )
        return self.journal

    def upstream_request(self) -> dict[str, Any]:
        """The last request the provider received for this scenario."""
        return self.require_journal()[-1]
