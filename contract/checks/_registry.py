"""The registry of checks: every check has a stable name and one sentence saying what it asserts.

The registry *is* the documentation of the suite: reports list it, and
``gateproof contract --list-checks`` prints it. A check is a plain function that
takes a :class:`~gateproof.contract.checks.CheckContext` and either returns
(passed) or raises :class:`CheckFailed` with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from gateproof.contract.results import Layer, Severity

if TYPE_CHECKING:
    from gateproof.contract.checks._context import CheckContext

__all__ = [
    "ALL_PROFILES",
    "CHECKS",
    "EDGEE_ONLY",
    "Check",
    "CheckFailed",
    "CheckFunction",
    "NotApplicable",
    "Profile",
    "Redundant",
    "Registry",
    "Requirement",
    "check",
]


class Profile(StrEnum):
    """How much of the API a target claims to implement."""

    #: what every OpenAI-compatible gateway owes
    OPENAI_CORE = "openai-core"
    #: everything in the reference spec, Edgee extensions and error codes included
    EDGEE = "edgee"


class Requirement(StrEnum):
    """What a check needs beyond a reachable target; without it the check is not applicable."""

    #: the target forwards to a gateproof mock whose journal we can read
    MOCK_JOURNAL = "mock_journal"
    #: a key that the target knows but refuses (inactive, or restricted to other models)
    FORBIDDEN_KEY = "forbidden_key"


class CheckFailed(AssertionError):
    """Raised by a check when the target deviates; carries what was expected and what came."""

    def __init__(self, reason: str, *, expected: str = "", actual: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.expected = expected
        self.actual = actual


class NotApplicable(Exception):
    """Raised by a check that finds, at run time, that it has nothing to judge."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Redundant(Exception):
    """Raised by a check whose every finding is already the failure of another check on the same answer.

    The runner reports it ``skipped (because <that check>)``: one root cause, one failure. A check
    raises it only for checks it names in ``defers_to``, which the runner judges first.
    """

    def __init__(self, because: str, reason: str = "") -> None:
        super().__init__(reason or f"skipped because {because} failed")
        self.because = because
        self.reason = reason or f"skipped because {because} failed"


CheckFunction = Callable[["CheckContext"], None]


@dataclass(frozen=True)
class Check:
    """A registered check."""

    name: str
    description: str
    layer: Layer
    function: CheckFunction
    #: profiles in which the check applies
    profiles: frozenset[Profile]
    requires: frozenset[Requirement] = field(default_factory=frozenset)
    #: advisory checks are reported but never fail a run
    required: bool = True
    #: a fixed severity for every failure of this check (what reaches the provider, auth, status
    #: semantics); None: measured per failure by replaying the answer through the official client
    severity: Severity | None = None
    #: checks that must pass on the same answer for this one to be judged; when one of them failed,
    #: this check is reported ``skipped (because <that check>)``: one root cause, one failure
    depends_on: tuple[str, ...] = ()
    #: checks that judge a part of what this one judges (a stream rule, a field's semantics): the
    #: runner judges them first, and this check leaves out what their failures already report
    #: (see CheckContext.failed); when nothing else is left it raises Redundant
    defers_to: tuple[str, ...] = ()

    def applies_to(self, profile: Profile) -> bool:
        return profile in self.profiles


class Registry:
    """Checks by name; a second registration of a name is a programming error."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def register(self, item: Check) -> None:
        existing = self._checks.get(item.name)
        if existing is not None and existing.function is not item.function:
            raise ValueError(f"a check named {item.name!r} is already registered")
        self._checks[item.name] = item

    def get(self, name: str) -> Check:
        try:
            return self._checks[name]
        except KeyError:
            raise KeyError(f"no check named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._checks

    def __iter__(self) -> Iterator[Check]:
        return iter(sorted(self._checks.values(), key=lambda c: (c.layer.value, c.name)))

    def __len__(self) -> int:
        return len(self._checks)


#: the one registry of the conformance suite
CHECKS = Registry()

ALL_PROFILES = frozenset(Profile)
#: checks of what only the Edgee API promises (error codes, X-Edgee-* headers, ...)
EDGEE_ONLY = frozenset({Profile.EDGEE})


def check(
    *,
    layer: Layer = Layer.SCENARIO,
    profiles: frozenset[Profile] = ALL_PROFILES,
    requires: frozenset[Requirement] = frozenset(),
    required: bool = True,
    name: str | None = None,
    severity: Severity | None = None,
    depends_on: tuple[str, ...] = (),
    defers_to: tuple[str, ...] = (),
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check; its docstring's first line is its description.

    >>> @check(profiles=frozenset({Profile.EDGEE}))
    ... def provider_header_present(ctx):
    ...     '''Responses that reached a provider carry X-Edgee-Provider.'''
    """

    def decorate(function: CheckFunction) -> CheckFunction:
        doc = (function.__doc__ or "").strip().splitlines()
        if not doc:
            raise ValueError(f"check {function.__name__} needs a docstring: it is the check's description")
        CHECKS.register(
            Check(
                name=name or function.__name__,
                description=doc[0].strip(),
                layer=layer,
                function=function,
                profiles=profiles,
                requires=requires,
                required=required,
                severity=severity,
                depends_on=depends_on,
                defers_to=defers_to,
            )
        )
        return function

    return decorate
