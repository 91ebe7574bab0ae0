"""How the gateway treats its upstream connections: reused after a stream, dropped when the client leaves.

These run on a stack of their own (mock + gateway), so every connection to that mock is the
gateway's and the gateway's log holds only these requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import LocalStack, local_stack

from .conftest import journal, new_cid, user

_LISTEN = "0A"  # /proc/net/tcp state of a listening socket


def _peer_ports(port: int) -> dict[int, str]:
    """Every TCP connection to or from ``port`` on this machine (any state but LISTEN): the other
    end's port -> state. TIME_WAIT entries stay for a minute, so closed connections count too."""
    peers: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = (
                int(fields[1].rsplit(":", 1)[1], 16),
                int(fields[2].rsplit(":", 1)[1], 16),
                fields[3],
            )
            if state == _LISTEN:
                continue
            if remote == port:
                peers[local] = state
            elif local == port:
                peers[remote] = state
    return peers


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(log_dir=tmp_path_factory.mktemp("upstream-stack")) as running:
        yield running


def _gateway_log(stack: LocalStack) -> str:
    return stack.gateway.log_path.read_text(errors="replace")


def _post(stack: LocalStack, body: dict[str, Any], *, timeout: float = 15.0) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.gateway.url, timeout=timeout, trust_env=False) as client:
        return client.post("/v1/chat/completions", json=body, headers=headers)


def test_streamed_requests_reuse_the_upstream_connection(own_stack: LocalStack) -> None:
    """100 streams one after another go over one pooled upstream connection, not 100 (TIME_WAIT)."""
    mock_port = httpx.URL(own_stack.mock.url).port
    assert mock_port is not None
    before = set(_peer_ports(mock_port))
    headers = {"Authorization": f"Bearer {own_stack.api_key}"}
    with httpx.Client(base_url=own_stack.gateway.url, timeout=15, trust_env=False) as client:
        for index in range(100):
            body = {
                "model": "openai/gpt-4o",
                "messages": user("Stream.", tokens=3),
                "stream": True,
                "stream_options": {"include_usage": index % 2 == 0},
            }
            response = client.post("/v1/chat/completions", json=body, headers=headers)
            assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
    used = {port: state for port, state in _peer_ports(mock_port).items() if port not in before}
    assert len(used) <= 2, f"{len(used)} upstream connections for 100 streams: {sorted(used.values())}"


def test_a_client_that_leaves_cancels_the_non_streaming_call_and_is_not_billed(own_stack: LocalStack) -> None:
    cid = new_cid("left")
    body = {
        "model": "openai/gpt-4o",
        "messages": user("Take your time.", ttft_ms=4000, cid=cid),
        "tags": [cid],
    }
    with pytest.raises(httpx.ReadTimeout):
        _post(own_stack, body, timeout=0.5)  # hang up long before the provider answers
    deadline = time.monotonic() + 10
    entries = journal(own_stack.mock.url, cid)
    while (not entries or entries[0]["outcome"] == "pending") and time.monotonic() < deadline:
        time.sleep(0.05)
        entries = journal(own_stack.mock.url, cid)
    (entry,) = entries
    assert entry["outcome"] == "disconnected", entry
    assert entry["finished_at"] - entry["received_at"] < 2.5, "the gateway kept waiting for nobody"
    deadline = time.monotonic() + 5
    while f"tags={cid} client went away" not in _gateway_log(own_stack) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in _gateway_log(own_stack).splitlines() if f"tags={cid}" in line]
    assert len(lines) == 1 and "upstream call cancelled, not billed" in lines[0], lines
    assert "cost_micro_usd" not in lines[0]


def test_a_client_that_leaves_before_the_stream_starts_cancels_it_too(own_stack: LocalStack) -> None:
    cid = new_cid("left-stream")
    body = {
        "model": "openai/gpt-4o",
        "messages": user("Slowly.", fault="slow_headers", fault_ms=4000, cid=cid),
        "stream": True,
        "tags": [cid],
    }
    with pytest.raises(httpx.ReadTimeout):
        _post(own_stack, body, timeout=0.5)
    deadline = time.monotonic() + 10
    entries = journal(own_stack.mock.url, cid)
    while (not entries or entries[0]["outcome"] == "pending") and time.monotonic() < deadline:
        time.sleep(0.05)
        entries = journal(own_stack.mock.url, cid)
    (entry,) = entries
    assert entry["outcome"] == "disconnected", entry
    assert entry["finished_at"] - entry["received_at"] < 2.5


def test_a_client_that_stays_is_answered_and_billed(own_stack: LocalStack) -> None:
    cid = new_cid("stayed")
    response = _post(
        own_stack, {"model": "openai/gpt-4o", "messages": user("Hi.", ttft_ms=300, cid=cid), "tags": [cid]}
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 5
    while f"tags={cid}" not in _gateway_log(own_stack) and time.monotonic() < deadline:
        time.sleep(0.05)
    (line,) = [line for line in _gateway_log(own_stack).splitlines() if f"tags={cid}" in line]
    assert "cost_micro_usd=" in line
