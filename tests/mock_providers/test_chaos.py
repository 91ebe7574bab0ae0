"""Seeded chaos for load runs: ``gateproof mock --chaos-rate R --chaos-faults ... --chaos-seed S``."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import LocalServer, free_port, start_server
from gateproof.mock_providers import Directive
from gateproof.mock_providers import cli as mock_cli
from gateproof.mock_providers._chaos import Chaos, ChaosPolicy, planned_directive

from ._chaos_wire import new_client, settled, wire_request
from .conftest import MOCK_KEY, MOCK_KEY_ENV

FAULTS = ("status_429", "status_503", "mid_stream_error", "reset", "cut", "overload")
POLICY = ChaosPolicy(rate=0.5, faults=FAULTS, seed=7)


@pytest.fixture(scope="module")
def chaotic(logs_dir: Path) -> Iterator[LocalServer]:
    server = start_server(
        "mock-chaos",
        [
            "mock",
            "--api-key-env",
            MOCK_KEY_ENV,
            "--chaos-rate",
            "0.5",
            "--chaos-faults",
            ",".join(FAULTS),
            "--chaos-seed",
            "7",
        ],
        env={MOCK_KEY_ENV: MOCK_KEY},
        log_dir=logs_dir / "mock-chaos",
    )
    try:
        yield server
    finally:
        server.stop()


def _send(client: httpx.Client, dialect: str, text: str, stream: bool) -> None:
    request = wire_request(dialect, text, stream=stream)
    with contextlib.suppress(httpx.RemoteProtocolError, httpx.ReadError):  # a reset
        client.post(request.path, headers=request.headers, json=request.body)


def _journal(client: httpx.Client, cid: str) -> list[dict[str, Any]]:
    def read(one: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = client.get("/_gateproof/journal", params={"cid": one}).json()[
            "entries"
        ]
        return entries

    return settled(read, cid)


def test_the_served_faults_are_the_seeded_draws_in_request_order(chaotic: LocalServer) -> None:
    expected = Chaos(POLICY)
    with new_client(chaotic.url) as client:
        for index in range(30):
            dialect = ("openai", "anthropic", "gemini")[index % 3]
            stream = index % 4 != 0
            cid = f"chaos-{index}"
            if index % 7 == 3:
                # a request with a fault of its own is served that fault and spends no draw
                _send(client, dialect, f"[[gateproof fault=no_done cid={cid}]]", stream=True)
                assert _journal(client, cid)[0]["fault"] == "no_done"
                continue
            _send(client, dialect, f"[[gateproof tokens=4 cid={cid}]]", stream)
            drawn = expected.draw()
            if drawn in ("mid_stream_error", "cut") and not stream:
                drawn = None  # stream-only faults are skipped on non-streamed requests
            if drawn == "overload":
                drawn = "status_529" if dialect == "anthropic" else "status_503"
            entry = _journal(client, cid)[0]
            assert entry["fault"] == drawn, (index, dialect, stream)
            if drawn is None:
                assert entry["status"] == 200 and entry["outcome"] == "complete"
            elif drawn == "reset":
                assert entry["status"] is None and entry["outcome"] == "aborted"
            elif drawn.startswith("status_"):
                assert entry["status"] == int(drawn.removeprefix("status_"))


def test_a_fail_first_request_gets_no_chaos_on_its_later_attempts(chaotic: LocalServer) -> None:
    with new_client(chaotic.url) as client:
        for index in range(12):
            cid = f"chaos-ff-{index}"
            for _ in range(2):
                _send(client, "openai", f"[[gateproof status=500 fail_first=1 cid={cid}]]", stream=True)
            entries = _journal(client, cid)
            assert [e["fault"] for e in entries] == ["status_500", None]


def test_draws_are_deterministic_and_at_the_rate() -> None:
    first, second = Chaos(POLICY), Chaos(POLICY)
    a = [first.draw() for _ in range(4000)]
    assert a == [second.draw() for _ in range(4000)]
    other = Chaos(ChaosPolicy(0.5, FAULTS, seed=8))
    assert a != [other.draw() for _ in range(4000)]
    hit = [x for x in a if x is not None]
    assert 0.46 < len(hit) / len(a) < 0.54
    assert set(hit) == set(FAULTS)
    never, always = Chaos(ChaosPolicy(0.0, FAULTS)), Chaos(ChaosPolicy(1.0, FAULTS))
    assert all(never.draw() is None for _ in range(100))
    assert all(always.draw() is not None for _ in range(100))


def test_stream_only_draws_are_skipped_without_streaming() -> None:
    chaos = Chaos(ChaosPolicy(1.0, ("stall",)))
    assert planned_directive(None, attempt=None, stream=False, overload_status=503, chaos=chaos).fault is None
    assert (
        planned_directive(None, attempt=None, stream=True, overload_status=503, chaos=chaos).fault == "stall"
    )
    mapped = planned_directive(
        None, attempt=None, stream=False, overload_status=529, chaos=Chaos(ChaosPolicy(1.0, ("overload",)))
    )
    assert (mapped.scenario, mapped.status, mapped.fault) == ("error", 529, None)
    own = Directive(fault="truncate")
    assert planned_directive(own, attempt=None, stream=True, overload_status=503, chaos=chaos) == own


@pytest.mark.parametrize(
    ("rate", "faults", "seed", "needle"),
    [
        (1.5, "reset", 0, "--chaos-rate must be from 0 to 1"),
        (float("nan"), "reset", 0, "--chaos-rate must be from 0 to 1"),
        (0.1, "", 0, "--chaos-rate needs --chaos-faults"),
        (0.1, "reset,gremlins", 0, "unknown chaos fault 'gremlins'"),
        (0.1, "status_700", 0, "unknown chaos fault 'status_700'"),
        (0.1, "reset", -1, "must not be negative"),
    ],
)
def test_bad_chaos_options_are_named(rate: float, faults: str, seed: int, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        mock_cli._chaos(rate, faults, seed)


def test_chaos_options() -> None:
    assert mock_cli._chaos(0.0, "", 0) is None
    assert mock_cli._chaos(0.0, "reset", 0) is None  # rate 0 turns it off
    assert mock_cli._chaos(0.25, " reset, status_429 ,", 3) == ChaosPolicy(0.25, ("reset", "status_429"), 3)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--chaos-rate", "0.1", "--chaos-faults", "gremlins"], "unknown chaos fault 'gremlins'"),
        (["--chaos-rate", "lots", "--chaos-faults", "reset"], "invalid float value"),
    ],
)
def test_bad_chaos_options_are_exit_2(options: list[str], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "mock", "--no-auth", "--port", str(free_port()), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert needle in result.stderr
