"""Per-key concurrency (D47): a key over ``max_concurrent`` is refused before any provider call.

The stack's ``limited`` key (reference_gateway/default.yaml) may have 2 requests in flight.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import yaml

from gateproof.cli.launch import LocalStack
from gateproof.openapi import PROVIDER_HEADER
from gateproof.reference_gateway._config import ConfigError, parse_config

from .conftest import journal, new_cid, user

MODEL = "openai/gpt-4o"


def _body(cid: str, stream: bool, **directive: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": user("Hi.", cid=cid, **directive), "stream": stream}


def _limited(stack: LocalStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.keys['limited']}"}


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "concurrency_limit_exceeded")
    assert response.headers["retry-after"] == "1"
    assert PROVIDER_HEADER.lower() not in response.headers, "refused before any provider was called"


def _eventually_served(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    """A request once the slots of streams that just closed are free again (their close runs async)."""
    deadline = time.monotonic() + 5
    while True:
        response = client.post("/v1/chat/completions", json=_body(new_cid("cc"), False), headers=headers)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_a_stream_over_the_keys_concurrency_is_429_and_never_reaches_the_provider(stack: LocalStack) -> None:
    headers = _limited(stack)
    refused = new_cid("cc")
    with httpx.Client(base_url=stack.gateway.url, timeout=15, trust_env=False) as client:
        with ExitStack() as open_streams:
            for _ in range(2):
                slow = _body(new_cid("cc"), True, tokens=30, itl_ms=100)
                response = open_streams.enter_context(
                    client.stream("POST", "/v1/chat/completions", json=slow, headers=headers)
                )
                assert response.status_code == 200
            _assert_refused(client.post("/v1/chat/completions", json=_body(refused, True), headers=headers))
            # another key is not held up by this one's burst
            other = {"Authorization": f"Bearer {stack.api_key}"}
            assert client.post(
                "/v1/chat/completions", json=_body(new_cid("cc"), False), headers=other
            ).is_success
        assert journal(stack.mock.url, refused) == []
        # the two streams ended (the client left): their slots are free again
        assert _eventually_served(client, headers).status_code == 200


def test_non_streamed_requests_hold_their_slot_until_answered(stack: LocalStack) -> None:
    headers = _limited(stack)
    with (
        httpx.Client(base_url=stack.gateway.url, timeout=15, trust_env=False) as client,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        slow = [
            pool.submit(
                client.post,
                "/v1/chat/completions",
                json=_body(new_cid("cc"), False, ttft_ms=1500),
                headers=headers,
            )
            for _ in range(2)
        ]
        time.sleep(0.5)  # both are at the provider now
        _assert_refused(
            client.post("/v1/chat/completions", json=_body(new_cid("cc"), False), headers=headers)
        )
        assert [future.result().status_code for future in slow] == [200, 200]
        assert client.post(
            "/v1/chat/completions", json=_body(new_cid("cc"), False), headers=headers
        ).is_success


def test_a_failed_request_gives_its_slot_back(stack: LocalStack) -> None:
    headers = _limited(stack)
    with httpx.Client(base_url=stack.gateway.url, timeout=15, trust_env=False) as client:
        for _ in range(3):  # more failures than slots
            failed = client.post(
                "/v1/chat/completions", json=_body(new_cid("cc"), True, status=400), headers=headers
            )
            assert failed.status_code == 400
        assert client.post(
            "/v1/chat/completions", json=_body(new_cid("cc"), False), headers=headers
        ).is_success


_CONFIG = """\
providers:
  openai: {dialect: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  - {id: openai/gpt-4o, provider: openai, created: 1}
  - {id: openai/gpt-4.1, provider: openai, created: 1%s}
keys:
  - {name: a, key: k-a%s}
"""


@pytest.mark.parametrize(
    ("model_extra", "key_extra", "message"),
    [
        ("", ", max_concurrent: 0", "keys[0].max_concurrent: must be at least 1, got 0"),
        ("", ", max_concurrent: two", "keys[0].max_concurrent: must be an integer, got a string"),
        (", fallbacks: [openai/gpt-5]", "", "models[1].fallbacks[0]: unknown model 'openai/gpt-5'"),
        (
            ", fallbacks: [openai/gpt-4.1]",
            "",
            "models[1].fallbacks[0]: 'openai/gpt-4.1' cannot be its own fallback",
        ),
        (
            ", fallbacks: [openai/gpt-4o, openai/gpt-4o]",
            "",
            "models[1].fallbacks[1]: 'openai/gpt-4o' is listed twice",
        ),
        (", fallbacks: openai/gpt-4o", "", "models[1].fallbacks: must be a list, got a string"),
    ],
)
def test_bad_limits_and_fallbacks_are_config_errors(model_extra: str, key_extra: str, message: str) -> None:
    document = yaml.safe_load(_CONFIG % (model_extra, key_extra))
    with pytest.raises(ConfigError) as raised:
        parse_config(document, source="gw.yaml", env={})
    assert str(raised.value) == f"gw.yaml: {message}"


def test_fallbacks_and_max_concurrent_are_read() -> None:
    document = yaml.safe_load(_CONFIG % (", fallbacks: [openai/gpt-4o]", ", max_concurrent: 3"))
    config = parse_config(document, source="gw.yaml", env={})
    assert config.models["openai/gpt-4.1"].fallbacks == ("openai/gpt-4o",)
    assert config.models["openai/gpt-4o"].fallbacks == ()
    assert config.keys[0].max_concurrent == 3
