"""One request through the mock: read, journal, plan, render, fault, deliver.

``GenerationEndpoint`` is the ASGI endpoint of a dialect's generation route; it
runs the same pipeline for every dialect:

1. read the body (refusing oversized ones) and journal the request (secrets
   redacted) with its arrival time;
2. check the API key against the configured ones (401 as the provider answers it);
3. decode the body as JSON if it is JSON; the dialect parses it into a
   ``ChatRequest``, refusing what the provider refuses (unknown model, bad output
   limits, malformed conversations); a long prompt is counted in a worker thread,
   against the model's context window, so it never stalls other requests;
4. the directive is read from the last user message; the correlation id comes from
   the directive, else from the ``X-Gateproof-Correlation-Id`` header;
5. the request is counted among those of its cid (the journal's ``attempt``);
   ``fail_first``, the seeded chaos and error faults decide the directive planned
   with (``_chaos``); the planner makes the ``Scenario``; the dialect renders it; the
   fault, if any, rewrites the reply (the journal's ``fault`` names what was served);
   a request whose bytes were answered lately skips steps 3 and 4, and the plan and
   reply when they come out the same (``_repeats``); it is journaled, authenticated,
   counted and drawn for like any other;
6. the reply is delivered on its deadlines, and the journal learns how it ended.

Any ``RequestRejected`` on the way becomes an immediate error reply in the
dialect's envelope. ``StaticEndpoint`` and ``UnknownRoute`` journal the requests
they answer too, so a test sees everything a gateway sent, even where it went
wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from typing import Any

from starlette.types import Receive, Scope, Send

from gateproof.mock_providers._chaos import Chaos, planned_directive
from gateproof.mock_providers._config import MockConfig
from gateproof.mock_providers._delivery import ConnectionDropped, deliver
from gateproof.mock_providers._dialect import Dialect, Incoming, StaticRoute
from gateproof.mock_providers._directives import parse_directive
from gateproof.mock_providers._errors import ProviderError, RequestRejected
from gateproof.mock_providers._faults import FaultContext, status_fault_name
from gateproof.mock_providers._journal import Journal, JournalEntry, Outcome
from gateproof.mock_providers._repeats import Repeats, Seen
from gateproof.mock_providers._replies import Reply
from gateproof.mock_providers._scenarios import ChatRequest
from gateproof.mock_providers._timing import now
from gateproof.openapi import count_prompt

__all__ = ["GenerationEndpoint", "StaticEndpoint", "UnknownRoute"]

_log = logging.getLogger("gateproof.mock")


class _NotJSON:
    """Marks a body that did not decode as JSON."""


_NOT_JSON = _NotJSON()


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` when it is larger than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


#: the decoder ``json.loads`` uses (default options), called directly
_decode = json.JSONDecoder().decode


def _parse(raw: bytes) -> Any:
    """The JSON value of a body, or ``_NOT_JSON`` (exactly what ``json.loads`` accepts).

    A body that opens with ``{`` and a second non-zero byte is UTF-8 by ``json.loads``'s own
    detection (no byte-order mark starts with ``{``), so it is decoded as ``json.loads``
    would, without the detection; anything else goes through ``json.loads`` itself.
    """
    if not raw:
        return _NOT_JSON
    try:
        if raw[0] == 0x7B and len(raw) > 1 and raw[1]:
            return _decode(raw.decode("utf-8", "surrogatepass"))
        return json.loads(raw)
    except ValueError:  # UnicodeDecodeError included, as from json.loads
        return _NOT_JSON


def _kept(raw: bytes | None) -> bytes | str:
    """What the journal keeps of a body."""
    return "<body larger than the limit>" if raw is None else raw


def _incoming(scope: Scope) -> Incoming:
    return Incoming(
        path=scope["path"],
        path_params=scope.get("path_params", {}),
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=scope["headers"],
    )


def _record(
    journal: Journal, scope: Scope, body: Any, received_at: float, dialect: str | None
) -> JournalEntry:
    return journal.record(
        method=scope["method"],
        path=scope["path"],
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=scope["headers"],
        body=body,
        received_at=received_at,
        dialect=dialect,
    )


async def _finish(
    journal: Journal, entry: JournalEntry, reply: Reply, t0: float, receive: Receive, send: Send
) -> None:
    journal.count_attempt(entry)
    # a reset sends no status line at all
    entry.status = None if reply.reset else reply.status
    delivery = await deliver(reply, t0, receive, send)
    entry.outcome = delivery.outcome
    entry.chunks_sent = delivery.chunks_sent
    entry.finished_at = time.time()
    if delivery.outcome is Outcome.ABORTED and not delivery.closed:
        raise ConnectionDropped(f"dropped on purpose (journal seq {entry.seq})")


class GenerationEndpoint:
    """ASGI endpoint answering a dialect's generation route from scenarios."""

    def __init__(
        self, dialect: Dialect, config: MockConfig, journal: Journal, chaos: Chaos | None = None
    ) -> None:
        self.dialect = dialect
        self.config = config
        self.journal = journal
        #: the process's seeded chaos, shared by every dialect's endpoint (None: off)
        self.chaos = chaos
        #: the requests this endpoint answered lately, to answer the same bytes again for less
        self.repeats = Repeats(dialect, config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = now()
        received_at = time.time()
        raw = await _read_body(receive, self.config.max_body_bytes)
        entry = _record(self.journal, scope, _kept(raw), received_at, self.dialect.name)
        body: Any = _NOT_JSON
        seen: Seen | None = None
        try:
            incoming = _incoming(scope)
            key = None
            if raw is not None:
                key = self.repeats.key(raw, incoming)
                seen = self.repeats.get(key)
                if seen is None:
                    body = _parse(raw)
            _authenticate(self.dialect, self.config, incoming)
            if seen is None:
                seen = await self._read(raw, body, incoming)
                reply = self._answer(seen, entry)
                self.repeats.put(key, seen)
            else:  # the same bytes as a request answered before: read, and maybe planned, already
                reply = self._answer(seen, entry)
        except RequestRejected as rejected:
            if seen is not None and body is _NOT_JSON:
                # a remembered request refused this time (another key, a cid it now lacks)
                assert raw is not None
                body = _parse(raw)
            cid = rejected.cid
            if cid is None and body is not _NOT_JSON:
                # refused before the directive was read: still file the entry under its cid
                cid = self.dialect.correlation_id(body)
            if cid is not None:
                entry.cid = cid
            if body is not _NOT_JSON:
                # what a refused request asked for is what the suite needs to say what was wrong with it
                # (a tool result answering no call, a dropped field): the journal reads it like any other
                entry.reader = self.dialect
            reply = self.dialect.render_error(rejected.error)
        except Exception:
            # a bug in the mock: still answer in the provider's shape, and say so in the log
            _log.exception("gateproof mock could not answer request %s", entry.seq)
            error = ProviderError(
                500, "The gateproof mock failed to answer (see its log).", code="mock_failure"
            )
            reply = self.dialect.render_error(error)
        await _finish(self.journal, entry, reply, t0, receive, send)

    async def _read(self, raw: bytes | None, body: Any, incoming: Incoming) -> Seen:
        """The request read as its provider reads it, counted, and its directive: refused if it must be."""
        if raw is None:
            raise RequestRejected(
                ProviderError(413, f"Request body larger than {self.config.max_body_bytes} bytes.")
            )
        if body is _NOT_JSON:
            raise RequestRejected(
                ProviderError(400, "We could not parse the JSON body of your request.", code="invalid_json")
            )
        request = self.dialect.parse(body, incoming, self.config.catalogue)
        if request.prompt_tokens is None:
            request = await self._counted(request)
        else:
            self._check_window(request, request.prompt_tokens, True)
        return Seen(request, parse_directive(request.last_user_text))

    async def _counted(self, request: ChatRequest) -> ChatRequest:
        """The request (a long prompt the dialect left uncounted) counted, refused if it does not fit.

        A long prompt is counted in a worker thread (the tokenizer releases the GIL),
        and only up to the budget: the window less the requested output.
        """
        assert request.prompt is not None
        budget = None
        if request.context_window is not None:
            budget = request.context_window - (request.max_tokens or 0)
        tokens, complete = await asyncio.to_thread(count_prompt, request.prompt, budget)
        self._check_window(request, tokens, complete)
        return dataclasses.replace(request, prompt_tokens=tokens)

    def _check_window(self, request: ChatRequest, tokens: int, complete: bool) -> None:
        """Refuse, as the provider does, a prompt (plus the output asked for) beyond the model's window."""
        refusal = self.dialect.context_exceeded(request, tokens, complete)
        if refusal is not None:
            raise RequestRejected(refusal)

    def _answer(self, seen: Seen, entry: JournalEntry) -> Reply:
        dialect = self.dialect
        directive = seen.directive
        if directive is not None:
            entry.asked = directive
            if directive.cid is not None:
                entry.cid = directive.cid
        planned = planned_directive(
            directive,
            attempt=self.journal.count_attempt(entry),
            stream=seen.request.stream,
            overload_status=dialect.overload_status,
            chaos=self.chaos,
            on_first_route=self.journal.on_first_route(entry),
        )
        scenario = seen.plan(planned, self.config)
        reply = seen.render(dialect, scenario, int(time.time()))
        if scenario.fault is not None:
            context = FaultContext(dialect, after=scenario.fault_after, delay=scenario.fault_delay)
            reply = scenario.fault.apply(reply, context)
            entry.fault = scenario.fault.name
        elif scenario.error is not None:
            entry.fault = status_fault_name(scenario.error.status)
        entry.scenario = scenario.name
        # the journal derives intent and usages from these when it is read, not now
        entry.reader = dialect
        if scenario.error is None:
            entry.truth = scenario.usage
        return reply


def _authenticate(dialect: Dialect, config: MockConfig, incoming: Incoming) -> None:
    """Refuse, as the provider would, a request whose key the mock does not accept."""
    key = dialect.credential(incoming)
    if not config.auth.accepts(key):
        raise RequestRejected(dialect.refuse_credential(key))


class StaticEndpoint:
    """ASGI endpoint for a dialect's ``StaticRoute`` (journaled, answered at once)."""

    def __init__(self, dialect: Dialect, route: StaticRoute, journal: Journal, config: MockConfig) -> None:
        self.dialect = dialect
        self.route = route
        self.journal = journal
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = now()
        received_at = time.time()
        raw = await _read_body(receive, 1 << 20)
        entry = _record(self.journal, scope, _kept(raw), received_at, self.dialect.name)
        incoming = _incoming(scope)
        try:
            _authenticate(self.dialect, self.config, incoming)
            reply = self.route.answer(incoming)
        except RequestRejected as rejected:
            reply = self.dialect.render_error(rejected.error)
        await _finish(self.journal, entry, reply, t0, receive, send)


class UnknownRoute:
    """Catch-all: a 404 in the envelope of the dialect whose prefix the path is under, journaled like any request."""

    def __init__(self, dialect: Dialect, journal: Journal) -> None:
        self.dialect = dialect
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        t0 = now()
        received_at = time.time()
        raw = await _read_body(receive, 1 << 20)
        entry = _record(self.journal, scope, _kept(raw), received_at, None)
        error = ProviderError(
            404, f"Unknown request URL: {scope['method']} {scope['path']}.", code="unknown_url"
        )
        await _finish(self.journal, entry, self.dialect.render_error(error), t0, receive, send)
