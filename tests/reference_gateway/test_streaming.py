"""Streams pass through as they arrive, and a client that leaves stops the provider's stream."""

from __future__ import annotations

import time

import httpx
import openai

from gateproof.cli.launch import LocalStack

from .conftest import journal, new_cid, user


def test_chunks_reach_the_client_as_the_provider_sends_them(sdk: openai.OpenAI, stack: LocalStack) -> None:
    cid = new_cid()
    arrivals: list[float] = []
    stream = sdk.chat.completions.create(
        model="openai/gpt-4o", messages=user("Count.", tokens=5, itl_ms=100, cid=cid), stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.time())
    assert len(arrivals) == 5
    # With 100 ms between upstream chunks, a relay spreads them over ~400 ms; a buffer sends them at once.
    assert arrivals[-1] - arrivals[0] > 0.25, f"content arrived in a burst: {arrivals}"
    (entry,) = journal(stack.mock.url, cid)
    assert arrivals[0] < entry["finished_at"] - 0.25, "the first chunk waited for the provider to finish"


def test_client_disconnect_closes_the_upstream_stream(stack: LocalStack) -> None:
    cid = new_cid()
    body = {
        "model": "openai/gpt-4o",
        "messages": user("Go on.", tokens=60, itl_ms=50, cid=cid),
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with (
        httpx.Client(base_url=stack.gateway.url, timeout=10, trust_env=False) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break  # one content chunk, then hang up
    deadline = time.monotonic() + 5
    entries = journal(stack.mock.url, cid)
    while entries[0]["outcome"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
        entries = journal(stack.mock.url, cid)
    (entry,) = entries
    assert entry["outcome"] == "disconnected", entry
    assert entry["chunks_sent"] < 60
    assert entry["finished_at"] - entry["received_at"] < 2.5, "the provider kept streaming to nobody"
