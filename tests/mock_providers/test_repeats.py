"""A repeated request answered from what the mock remembers gives the very bytes and journal record
of one answered afresh (issue 11: ``_repeats``, the journal's credential memo, ``LRU``).

Each test drives two mocks in this process through their ASGI interface, one remembering
(the defaults) and one remembering nothing (``repeat_cache=0``, ``credential_cache=0``),
with the wall clock frozen and Anthropic's random request ids made a counter, and compares
every message written and every journal record.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from typing import Any

import pytest

from gateproof.mock_providers import (
    ChaosPolicy,
    KeyPolicy,
    MockApp,
    MockConfig,
    _repeats,
    create_app,
    sample_request,
)
from gateproof.mock_providers._exchange import GenerationEndpoint, _incoming
from gateproof.mock_providers._journal import Journal
from gateproof.mock_providers._lru import LRU
from gateproof.mock_providers._repeats import MAX_PIECES
from gateproof.mock_providers.dialects import OpenAIDialect

KEY = "sk-gp-repeats-test"
NOW = 1_796_180_251.25
DIRECTIVES = (
    "",
    "scenario=refusal",
    "scenario=tool_call calls=2",
    "tokens=0",
    "scenario=length tokens=5",
    "cached=3 tokens=4 seed=9",
    "stamp=1 tokens=3",
    "scenario=error status=429",
    "tokens=4 fault=no_done",
    "tokens=4 fault=malformed_chunk",
    "tokens=4 fault=truncate",
    "cid=ff fail_first=2 fault=status_503",
    "tokens=3 bogus=1",
)

Scope = dict[str, Any]
Exchange = dict[str, Any]


class Frozen:
    """A wall clock that stands still at ``now`` (a test may move it), and request ids that count up."""

    def __init__(self) -> None:
        self.now = NOW
        self._ids = itertools.count()

    def restart_ids(self) -> None:
        self._ids = itertools.count()

    def next_id(self) -> uuid.UUID:
        return uuid.UUID(int=next(self._ids))


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Frozen:
    clock = Frozen()
    monkeypatch.setattr(time, "time", lambda: clock.now)
    monkeypatch.setattr(time, "time_ns", lambda: int(clock.now * 1e9))
    monkeypatch.setattr(uuid, "uuid4", clock.next_id)
    return clock


def _config(remember: bool, **extra: Any) -> MockConfig:
    sizes = {} if remember else {"repeat_cache": 0, "credential_cache": 0}
    return MockConfig(auth=KeyPolicy(keys=frozenset({KEY})), **sizes, **extra)


def _request(dialect: str, text: str, stream: bool, tools: bool, key: str = KEY) -> tuple[Scope, bytes]:
    sample = sample_request(dialect, text, key=key, stream=stream, tools=tools)
    path, query, raw = sample.path, sample.query, sample.body
    headers = [(b"host", b"127.0.0.1:9"), *sample.headers, (b"content-length", str(len(raw)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 9),
    }
    return scope, raw


async def _exchange(app: MockApp, scope: Scope, raw: bytes) -> Exchange:
    """Everything ``app`` wrote for one request, how it ended, and the journal record it left."""
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.sleep(3600)  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    raised = None
    try:
        await app({**scope, "headers": list(scope["headers"])}, receive, send)
    except Exception as exc:  # a dropped connection is raised on purpose
        raised = type(exc).__name__
    journal: Journal = app.state.journal
    return {"sent": sent, "raised": raised, "record": journal.entries()[-1].as_json()}


def _endpoint(app: MockApp, path: str = "/v1/chat/completions") -> GenerationEndpoint:
    endpoint = app._direct[path]
    assert isinstance(endpoint, GenerationEndpoint)
    return endpoint


def _run(requests: list[tuple[Scope, bytes]], config: MockConfig, frozen: Frozen) -> list[Exchange]:
    frozen.restart_ids()

    async def main() -> list[Exchange]:
        app = create_app(config)
        return [await _exchange(app, scope, raw) for scope, raw in requests]

    return asyncio.run(main())


def _same_as_afresh(requests: list[tuple[Scope, bytes]], frozen: Frozen, **extra: Any) -> list[Exchange]:
    """Run ``requests`` through a remembering mock and a forgetful one, assert they agree, return them."""
    remembering = _run(requests, _config(True, **extra), frozen)
    afresh = _run(requests, _config(False, **extra), frozen)
    assert len(remembering) == len(afresh) == len(requests)
    for index, (got, expected) in enumerate(zip(remembering, afresh, strict=True)):
        assert got == expected, f"request {index} differs"
    return remembering


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini"])
def test_a_repeated_request_gets_the_bytes_and_record_of_a_fresh_one(frozen: Frozen, dialect: str) -> None:
    requests = []
    for directive, stream, tools in itertools.product(DIRECTIVES, (False, True), (False, True)):
        text = f"Hello [[gateproof {directive}]]" if directive else "Hello"
        request = _request(dialect, text, stream, tools)
        requests += [request, request, request]
    exchanges = _same_as_afresh(requests, frozen)
    statuses = {e["record"]["status"] for e in exchanges}
    assert {200, 400, 429, 503} <= statuses  # answers, refusals and errors were all compared


def test_a_repeated_request_is_read_planned_and_rendered_once(
    frozen: Frozen, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, int] = {"parse": 0, "plan": 0, "render": 0}

    def counted(name: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(OpenAIDialect, "parse", counted("parse", OpenAIDialect.parse))
    monkeypatch.setattr(OpenAIDialect, "render", counted("render", OpenAIDialect.render))
    monkeypatch.setattr(_repeats, "plan_scenario", counted("plan", _repeats.plan_scenario))
    for stream in (False, True):
        request = _request("openai", "Hi [[gateproof cid=once tokens=5]]", stream, True)
        calls.update(parse=0, plan=0, render=0)
        _run([request] * 5, _config(True), frozen)
        # answered afresh the first time, remembered the second, answered from memory after that
        assert calls == {"parse": 2, "plan": 2, "render": 2}
        calls.update(parse=0, plan=0, render=0)
        _run([request] * 5, _config(False), frozen)
        assert calls == {"parse": 5, "plan": 5, "render": 5}
    # a chaos draw plans its own answer; the request's own plan stays remembered beside it
    chaos = ChaosPolicy(rate=0.3, faults=("status_503", "no_done"), seed=5)
    request = _request("openai", "Hi [[gateproof tokens=5]]", True, False)
    calls.update(parse=0, plan=0, render=0)
    exchanges = _run([request] * 40, _config(True, chaos=chaos), frozen)
    drawn = sum(1 for e in exchanges if e["record"]["fault"] is not None)
    assert 0 < drawn < 40
    clean = [e["record"]["fault"] is None for e in exchanges]
    # read afresh twice (then remembered); planned afresh: every draw, the clean ones of the first
    # two, and once more the first clean one after, if the remembered reading was a drawn one's
    expected = drawn + sum(clean[:2]) + (1 if not clean[1] and any(clean[2:]) else 0)
    assert calls["parse"] == 2 and calls["plan"] == expected


def test_a_new_second_renders_a_new_created(frozen: Frozen) -> None:
    scope, raw = _request("openai", "Hi", False, False)

    async def main() -> list[bytes]:
        app = create_app(_config(True))
        bodies = []
        for step in (0.0, 0.5, 1.0):
            frozen.now = NOW + step
            bodies.append((await _exchange(app, scope, raw))["sent"][1]["body"])
        return bodies

    first, same_second, next_second = asyncio.run(main())
    assert first == same_second
    assert json.loads(first)["created"] == int(NOW)
    assert json.loads(next_second)["created"] == int(NOW) + 1
    assert json.loads(next_second)["id"] == json.loads(first)["id"]


def test_every_repeat_is_journaled_counted_and_drawn_for(frozen: Frozen) -> None:
    chaos = ChaosPolicy(rate=0.5, faults=("status_503", "slow_headers", "truncate"), seed=11)
    repeated = _request("openai", "Hi [[gateproof cid=again fault_ms=1]]", False, False)
    plain = _request("openai", "Hi [[gateproof fault_ms=1]]", False, False)
    exchanges = _same_as_afresh([repeated] * 6 + [plain] * 10, frozen, chaos=chaos)
    assert [e["record"]["attempt"] for e in exchanges[:6]] == [1, 2, 3, 4, 5, 6]
    assert [e["record"]["seq"] for e in exchanges] == list(range(1, 17))
    faults = {e["record"]["fault"] for e in exchanges}
    assert {"status_503", None} <= faults and len(faults) > 2  # the draws went on as before


def test_a_remembered_request_refused_later_is_journaled_as_a_refused_one(frozen: Frozen) -> None:
    good = _request("openai", "Hi [[gateproof cid=k1]]", False, False)
    wrong_key = _request("openai", "Hi [[gateproof cid=k1]]", False, False, key="sk-not-this-one")
    needs_cid = _request("anthropic", "Hi [[gateproof fail_first=1 fault=status_503]]", False, False)
    with_header = (
        {**needs_cid[0], "headers": [*needs_cid[0]["headers"], (b"x-gateproof-correlation-id", b"h1")]},
        needs_cid[1],
    )
    exchanges = _same_as_afresh([good, wrong_key, good, with_header, needs_cid, with_header], frozen)
    refused = exchanges[1]["record"]
    assert refused["status"] == 401 and refused["cid"] == "k1" and refused["intent"] is not None
    assert [e["record"]["status"] for e in exchanges[3:]] == [503, 400, 200]


def test_the_remembered_requests_are_bounded(frozen: Frozen) -> None:
    def hi(cid: str) -> tuple[Scope, bytes]:
        return _request("openai", f"Hi [[gateproof cid={cid}]]", False, False)

    async def main() -> None:
        app = create_app(_config(True, repeat_cache=4, repeat_body_bytes=400))
        repeats = _endpoint(app).repeats
        # a request answered once is not remembered; its hash is, and those are bounded too
        for index in range(10):
            await _exchange(app, *hi(f"once{index}"))
        assert len(repeats) == 0 and len(repeats._sighted) == 4
        for index in range(10):
            for _ in range(2):
                await _exchange(app, *hi(f"c{index}"))
            assert len(repeats) == min(index + 1, 4)
        # the least recently used goes first: c6 was used again, so c7 is the one forgotten next
        await _exchange(app, *hi("c6"))
        for _ in range(2):
            await _exchange(app, *hi("c10"))
        keys = list(repeats._seen._items)
        assert [json.loads(raw)["messages"][0]["content"][-5:-2] for _, raw in keys] == [
            "=c8",
            "=c9",
            "=c6",
            "c10",
        ]
        # a body over the limit is answered, not remembered
        for _ in range(3):
            await _exchange(app, *_request("openai", "x" * 500, False, False))
        assert len(repeats) == 4 and all(len(raw) <= 400 for _, raw in repeats._seen._items)
        # an answer with more pieces than MAX_PIECES is remembered as read, not as planned
        long = _request("openai", f"Hi [[gateproof tokens={MAX_PIECES + 1}]]", False, False)
        for _ in range(3):
            await _exchange(app, *long)
        seen = repeats.get(repeats.key(long[1], _incoming(long[0])))
        assert seen is not None and seen.scenario is None and seen.reply is None

    asyncio.run(main())


def test_nothing_is_remembered_when_the_cache_is_off(frozen: Frozen) -> None:
    async def main() -> None:
        app = create_app(_config(False))
        request = _request("openai", "Hi", False, False)
        for _ in range(3):
            await _exchange(app, *request)
        assert len(_endpoint(app).repeats) == 0
        assert len(app.state.journal._redacted) == 0

    asyncio.run(main())


def test_the_parse_keys_tell_apart_what_parse_reads(frozen: Frozen) -> None:
    # the same body on two Gemini paths (two models) and with and without Anthropic's version header
    flash = _request("gemini", "Hi", False, False)
    pro = ({**flash[0], "path": flash[0]["path"].replace("2.5-flash", "2.5-pro")}, flash[1])
    versioned = _request("anthropic", "Hi", False, False)
    unversioned = (
        {**versioned[0], "headers": [h for h in versioned[0]["headers"] if h[0] != b"anthropic-version"]},
        versioned[1],
    )
    exchanges = _same_as_afresh([flash, pro, flash, versioned, unversioned, versioned], frozen)
    assert [e["record"]["status"] for e in exchanges] == [200, 200, 200, 200, 400, 200]
    assert json.loads(exchanges[1]["sent"][1]["body"])["modelVersion"] == "gemini-2.5-pro"


def test_the_credential_memo_redacts_as_the_journal_always_did() -> None:
    headers = [
        (b"authorization", b"Bearer sk-one"),
        (b"x-api-key", b"sk-two"),
        (b"cookie", b"a=b"),
        (b"authorization", b"Basic dXNlcg=="),
        (b"proxy-authorization", b"weird"),
    ]
    remembering, forgetful = Journal(credential_cache=2), Journal(credential_cache=0)
    for _ in range(3):
        records = [
            journal.record(
                method="POST",
                path="/p",
                query="key=abc",
                headers=headers,
                body=b"",
                received_at=0.0,
                dialect=None,
            ).as_json()
            for journal in (remembering, forgetful)
        ]
        assert records[0] == records[1]
        assert "sk-one" not in json.dumps(records[0]) and "sk-two" not in json.dumps(records[0])
    assert len(remembering._redacted) == 2


def test_the_lru_keeps_the_most_recently_used() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the newest
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and cache.capacity == 2
    cache.put("a", 4)
    assert cache.get("a") == 4 and len(cache) == 2
    off: LRU[str, int] = LRU(0)
    off.put("a", 1)
    assert off.get("a") is None and len(off) == 0
    with pytest.raises(ValueError):
        LRU(-1)
