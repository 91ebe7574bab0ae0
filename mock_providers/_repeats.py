"""What the mock remembers of a request it answered, so the same bytes cost less the next time.

A load test sends one request thousands of times a second, and a benchmark of the mock
compares it with a bare server answering those requests with canned bytes. Reading,
planning and rendering the same request again gives the same result each time, because
each step is a pure function of what it is given:

- the *reading* (the dialect's counted ``ChatRequest`` and the directive of the last user
  message) of the body bytes and of what the dialect's ``parse`` reads of where the
  request came (``Dialect.parse_key``: nothing for OpenAI, the version header's presence
  for Anthropic, the path and query for Gemini); the catalogue is fixed for the process;
- the *plan* (``Scenario``, seeded by the conversation) of the reading, the directive it
  is planned with and the configuration. ``planned_directive`` hands back the very
  directive it was given (``NO_DIRECTIVE`` for none) unless the request's attempt, its
  route or a chaos draw changes it (a new object then), so the plan of the request's own
  directive is remembered and reused whenever that same object comes back;
- the *reply* of the plan and of ``created`` (the wall-clock second an OpenAI answer
  carries). Error answers are rendered each time (Anthropic's carry a fresh request id).

What every request still gets, remembered or not: its journal entry, its attempt count,
its chaos draw, its fault applied to the reply anew, and its delivery. A request is
remembered only once it has been answered twice (refusals never are), only if its body has
at most ``MockConfig.repeat_body_bytes`` bytes, and its plan and reply only if the answer
has at most ``MAX_PIECES`` pieces, so one entry holds a few times its body at most;
``MockConfig.repeat_cache`` entries are kept per dialect, least recently used first out.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from gateproof.mock_providers._config import MockConfig
from gateproof.mock_providers._dialect import Dialect, Incoming
from gateproof.mock_providers._directives import NO_DIRECTIVE, Directive
from gateproof.mock_providers._lru import LRU
from gateproof.mock_providers._replies import Reply
from gateproof.mock_providers._scenarios import ChatRequest, Scenario, plan_scenario

__all__ = ["MAX_PIECES", "Repeats", "Seen"]

#: answers with more pieces than this are planned afresh each time (they would hold too much)
MAX_PIECES = 512


@dataclass(slots=True)
class Seen:
    """One request's reading, with the last plan and reply made from it."""

    request: ChatRequest
    directive: Directive | None
    #: the directive object ``scenario`` was planned with
    planned: Directive | None = None
    scenario: Scenario | None = None
    #: ``reply`` is ``scenario`` rendered with this ``created``
    created: int = -1
    reply: Reply | None = None

    def plan(self, planned: Directive, config: MockConfig) -> Scenario:
        """The plan of this request under ``planned``: the remembered one when made from the same directive.

        Only the plan of the request's own directive is remembered (``planned_directive`` gave it
        back unchanged): one rewritten by the chaos or ``fail_first`` is a new object every time.
        """
        if planned is self.planned and self.scenario is not None:
            return self.scenario
        scenario = plan_scenario(self.request, planned, config)
        if planned is (self.directive or NO_DIRECTIVE) and len(scenario.pieces) <= MAX_PIECES:
            self.planned, self.scenario, self.reply = planned, scenario, None
        return scenario

    def render(self, dialect: Dialect, scenario: Scenario, created: int) -> Reply:
        """``dialect.render(scenario, request, created)``, remembered for the remembered plan."""
        if scenario is self.scenario and created == self.created and self.reply is not None:
            return self.reply
        reply = dialect.render(scenario, self.request, created)
        if scenario is self.scenario and scenario.error is None:
            self.created, self.reply = created, reply
        return reply


class Repeats:
    """The requests one dialect's endpoint remembers, by body bytes and ``parse_key``.

    A request is remembered the second time its bytes come: under load with a fresh cid on
    every request nothing repeats, and remembering each one would only push the previous
    ones out (freeing them long after they were made, from memory the CPU no longer holds
    close, costs more than freeing them at once). Until then only its hash is kept (another
    request with the same hash is merely remembered a request early).
    """

    __slots__ = ("_dialect", "_max_body", "_seen", "_sighted")

    def __init__(self, dialect: Dialect, config: MockConfig) -> None:
        self._dialect = dialect
        self._max_body = config.repeat_body_bytes if config.repeat_cache else -1
        self._seen: LRU[Hashable, Seen] = LRU(config.repeat_cache)
        #: hashes of the keys answered once (and not remembered yet)
        self._sighted: LRU[int, bool] = LRU(config.repeat_cache)

    def __len__(self) -> int:
        return len(self._seen)

    def key(self, raw: bytes, incoming: Incoming) -> Hashable | None:
        """What a request is remembered by (None: its body is too large to remember)."""
        if len(raw) > self._max_body:
            return None
        return (self._dialect.parse_key(incoming), raw)

    def get(self, key: Hashable | None) -> Seen | None:
        return None if key is None else self._seen.get(key)

    def put(self, key: Hashable | None, seen: Seen) -> None:
        """Remember ``seen`` under ``key`` if a request with that key was answered before."""
        if key is None:
            return
        sighted = hash(key)
        if self._sighted.get(sighted) is None:
            self._sighted.put(sighted, True)
        else:
            self._seen.put(key, seen)
