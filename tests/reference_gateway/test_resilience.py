"""The retry and fallback policy (D44) as code: its classes, its bounds, and every switch a fault turns.

The policy runner is exercised directly with attempts that fail as told (plain callables: this
is the gateway's own code under test, no network). The two switches that act on the wire
(retrying after the first chunk, cancelling on disconnect) are shown on a real gateway served in
this process with the switch turned, in front of the shared mock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
import yaml

from gateproof.cli.launch import UPSTREAMS, LocalServer, free_port
from gateproof.reference_gateway import _errors
from gateproof.reference_gateway import _upstream as upstream
from gateproof.reference_gateway._app import create_app
from gateproof.reference_gateway._config import default_config_path, parse_config
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._hooks import Hooks
from gateproof.reference_gateway._resilience import (
    CORRECT_RESILIENCE,
    FailedAttempt,
    FailureClass,
    ResilienceRules,
    classify_exception,
    classify_status,
    retry_wait,
    run_attempts,
)

from .conftest import journal, new_cid, sse_events, user

# -- the classes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        *((s, FailureClass.RETRY) for s in (429, 500, 502, 503, 529)),
        *((s, FailureClass.FALLBACK) for s in (401, 403, 408, 504, 501, 599)),
        *((s, FailureClass.TERMINAL) for s in (400, 404, 409, 413, 422)),
    ],
)
def test_statuses_fall_in_the_d44_classes(status: int, kind: FailureClass) -> None:
    assert classify_status(status) is kind


def test_connection_failures_are_retried_and_timeouts_fall_back() -> None:
    assert classify_exception(upstream.ConnectError("refused")) is FailureClass.RETRY
    assert classify_exception(upstream.RemoteProtocolError("cut")) is FailureClass.RETRY
    assert classify_exception(upstream.ReadError("reset")) is FailureClass.RETRY
    assert classify_exception(upstream.ConnectTimeout("slow")) is FailureClass.FALLBACK
    assert classify_exception(upstream.PoolTimeout("busy")) is FailureClass.FALLBACK
    assert classify_exception(upstream.ReadTimeout("quiet")) is FailureClass.FALLBACK
    assert classify_exception(TimeoutError()) is FailureClass.FALLBACK
    # a request the client could not send at all (a header it refuses) is not worth a retry
    assert classify_exception(upstream.UpstreamError("bad header")) is FailureClass.FALLBACK


def test_retry_after_is_waited_up_to_the_bound() -> None:
    assert CORRECT_RESILIENCE.retry_after_max_s == 2.0
    assert retry_wait(CORRECT_RESILIENCE, None) == 0.0
    assert retry_wait(CORRECT_RESILIENCE, "1") == 1.0
    assert retry_wait(CORRECT_RESILIENCE, "2") == 2.0
    assert retry_wait(CORRECT_RESILIENCE, "2.5") is None, "longer than the bound: the route's attempts end"
    assert retry_wait(CORRECT_RESILIENCE, "Wed, 21 Oct 2015 07:28:00 GMT") == 0.0, "a date gone by"
    assert retry_wait(CORRECT_RESILIENCE, "soon") == 0.0
    assert retry_wait(CORRECT_RESILIENCE, "-3") == 0.0
    ignoring = replace(CORRECT_RESILIENCE, honour_retry_after=False)
    assert retry_wait(ignoring, "1") == 0.0 and retry_wait(ignoring, "30") == 0.0


# -- the runner ----------------------------------------------------------------------------------------


def _error(route: str) -> GatewayError:
    return _errors.provider_error(route, "failed")


class _Script:
    """Attempts that fail as scripted per route (``None``: answer), recording each route tried."""

    def __init__(self, plan: dict[str, list[FailureClass | None]], retry_after: str | None = None) -> None:
        self.plan = {route: list(steps) for route, steps in plan.items()}
        self.retry_after = retry_after
        self.tried: list[str] = []

    async def __call__(self, route: str) -> str:
        self.tried.append(route)
        steps = self.plan[route]
        kind = steps.pop(0) if steps else FailureClass.RETRY
        if kind is None:
            return f"answer from {route}"
        raise FailedAttempt(_error(route), kind, self.retry_after)


def _run(rules: ResilienceRules, routes: list[str], script: _Script) -> tuple[str | GatewayError, float]:
    async def go() -> str | GatewayError:
        try:
            return (await run_attempts(rules, routes, script)).result
        except GatewayError as error:
            return error

    began = time.monotonic()
    outcome = anyio.run(go)
    return outcome, time.monotonic() - began


RETRY, FALLBACK, TERMINAL = FailureClass.RETRY, FailureClass.FALLBACK, FailureClass.TERMINAL


def test_the_primary_gets_two_attempts_and_each_fallback_one() -> None:
    script = _Script({"a": [], "b": [], "c": []})
    outcome, _ = _run(CORRECT_RESILIENCE, ["a", "b", "c"], script)
    assert isinstance(outcome, GatewayError)
    assert script.tried == ["a", "a", "b", "c"]


def test_a_transient_failure_is_answered_on_the_second_attempt() -> None:
    script = _Script({"a": [RETRY, None], "b": [None]})
    outcome, _ = _run(CORRECT_RESILIENCE, ["a", "b"], script)
    assert outcome == "answer from a" and script.tried == ["a", "a"]


def test_a_route_that_cannot_answer_is_left_at_once() -> None:
    script = _Script({"a": [FALLBACK], "b": [None]})
    outcome, _ = _run(CORRECT_RESILIENCE, ["a", "b"], script)
    assert outcome == "answer from b" and script.tried == ["a", "b"]


def test_a_terminal_failure_ends_everything() -> None:
    script = _Script({"a": [TERMINAL], "b": [None]})
    outcome, _ = _run(CORRECT_RESILIENCE, ["a", "b"], script)
    assert isinstance(outcome, GatewayError) and script.tried == ["a"]


def test_attempts_per_request_are_bounded() -> None:
    routes = [f"r{i}" for i in range(8)]
    script = _Script({route: [] for route in routes})
    _run(CORRECT_RESILIENCE, routes, script)
    assert len(script.tried) == CORRECT_RESILIENCE.max_attempts == 5


def test_retry_after_is_waited_before_the_retry() -> None:
    script = _Script({"a": [RETRY, None]}, retry_after="0.3")
    outcome, took = _run(CORRECT_RESILIENCE, ["a"], script)
    assert outcome == "answer from a" and took >= 0.3


@pytest.mark.timing
def test_a_retry_after_over_the_bound_moves_on_to_the_fallback() -> None:
    script = _Script({"a": [RETRY, None], "b": [None]}, retry_after="30")
    outcome, took = _run(CORRECT_RESILIENCE, ["a", "b"], script)
    assert outcome == "answer from b" and script.tried == ["a", "b"] and took < 1


# -- every switch changes what happens (the self-test's faulty variants are built from these) ------


def test_switch_no_retry() -> None:
    script = _Script({"a": [RETRY, None]})
    outcome, _ = _run(replace(CORRECT_RESILIENCE, primary_attempts=1), ["a"], script)
    assert isinstance(outcome, GatewayError) and script.tried == ["a"]


def test_switch_retries_forever() -> None:
    forever = replace(CORRECT_RESILIENCE, primary_attempts=10**9, max_attempts=10**9)
    script = _Script({"a": [RETRY] * 40 + [None]})
    outcome, _ = _run(forever, ["a"], script)
    assert outcome == "answer from a" and len(script.tried) == 41


@pytest.mark.timing
def test_switch_retry_after_not_honoured() -> None:
    ignoring = replace(CORRECT_RESILIENCE, honour_retry_after=False)
    script = _Script({"a": [RETRY, None]}, retry_after="1")
    outcome, took = _run(ignoring, ["a"], script)
    assert outcome == "answer from a" and took < 0.5, "retried at once"
    script = _Script({"a": [RETRY, None], "b": [None]}, retry_after="30")
    outcome, _ = _run(ignoring, ["a", "b"], script)
    assert outcome == "answer from a", "a 30 s Retry-After did not end the route's attempts"


def test_switch_fallback_never_tried() -> None:
    script = _Script({"a": [FALLBACK], "b": [None]})
    outcome, _ = _run(replace(CORRECT_RESILIENCE, fallback=False), ["a", "b"], script)
    assert isinstance(outcome, GatewayError) and script.tried == ["a"]


# -- the switches that act on the wire, on a gateway served here ------------------------------------

_KEY = "gp-resilience-test-key"


class _Served:
    """A reference gateway with some resilience rules, served by uvicorn on a thread of this process."""

    def __init__(self, rules: ResilienceRules, mock_url: str) -> None:
        document = yaml.safe_load(Path(default_config_path()).read_text())
        config = parse_config(document, source="default.yaml", env={"GATEPROOF_API_KEY": _KEY})
        config = config.with_base_urls({up.provider: mock_url + up.prefix for up in UPSTREAMS})
        app = create_app(config, hooks=Hooks(name="resilience-test", resilience=lambda _: rules))
        assert app.state.gateway.resilience == rules
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on", log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the in-process gateway did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def served(request: pytest.FixtureRequest, mock_server: LocalServer) -> Iterator[_Served]:
    with _Served(request.param, mock_server.url) as gateway:
        yield gateway


def _stream_and_leave(url: str, cid: str, **directive: Any) -> None:
    body = {"model": "openai/gpt-4o", "messages": user("Go.", cid=cid, **directive), "stream": True}
    headers = {"Authorization": f"Bearer {_KEY}"}
    with (
        httpx.Client(base_url=url, timeout=10, trust_env=False) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                break


def _settled(mock_url: str, cid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 8
    while True:
        entries = journal(mock_url, cid)
        if (entries and entries[0]["outcome"] != "pending") or time.monotonic() > deadline:
            (entry,) = entries
            return entry
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("served", "outcome"),
    [
        (CORRECT_RESILIENCE, "disconnected"),
        (replace(CORRECT_RESILIENCE, cancel_on_disconnect=False), "complete"),
    ],
    indirect=["served"],
)
def test_switch_upstream_never_cancelled_on_client_disconnect(
    served: _Served, mock_server: LocalServer, outcome: str
) -> None:
    cid = new_cid("res")
    _stream_and_leave(served.url, cid, tokens=12, itl_ms=60)
    assert _settled(mock_server.url, cid)["outcome"] == outcome


@pytest.mark.parametrize(
    ("served", "attempts"),
    [(CORRECT_RESILIENCE, 1), (replace(CORRECT_RESILIENCE, retry_after_first_chunk=True), 2)],
    indirect=["served"],
)
def test_switch_retry_after_the_first_chunk(served: _Served, mock_server: LocalServer, attempts: int) -> None:
    cid = new_cid("res")
    body = {
        "model": "openai/gpt-4o",
        "messages": user("Go.", cid=cid, tokens=6, fault="mid_stream_error", fault_after=2, fail_first=1),
        "stream": True,
    }
    response = httpx.post(
        served.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {_KEY}"},
        timeout=10,
        trust_env=False,
    )
    events = sse_events(response.text)
    assert len(journal(mock_server.url, cid)) == attempts
    chunks = [json.loads(event) for event in events if event != "[DONE]"]
    roles = [chunk["choices"][0]["delta"].get("role") for chunk in chunks if chunk.get("choices")]
    if attempts == 1:
        assert "[DONE]" not in events and "error" in json.loads(events[-1])
    else:
        # the wrong gateway: the client got the answer's start twice and a [DONE] as if all was well
        assert events[-1] == "[DONE]" and roles.count("assistant") == 2
