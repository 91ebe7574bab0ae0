"""The structured request log (D34): one JSON line per finished request, key names and never keys.

The session stack's gateway writes it to ``stack.request_log`` (``gateproof run`` does the same
into its output folder); each test finds its own lines by a unique tag or by the debug
``request_id``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import LocalStack
from gateproof.reference_gateway import ConfigError, parse_config

from .conftest import journal, new_cid, sse_events, user

#: every key a line has, always (null when not known)
LINE_KEYS = {
    "time",
    "request_id",
    "endpoint",
    "key",
    "model",
    "provider",
    "stream",
    "status",
    "latency_ms",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "cost_micro_usd",
    "compression",
    "tags",
    "attempts",
}


def log_lines(stack: LocalStack) -> list[dict[str, Any]]:
    text = stack.request_log.read_text(encoding="utf-8")
    assert text.isascii(), "every line is ASCII (non-ASCII escaped)"
    return [json.loads(line) for line in text.split("\n") if line]


def log_line(stack: LocalStack, request_id: str) -> dict[str, Any]:
    (line,) = [line for line in log_lines(stack) if line["request_id"] == request_id]
    return line


def tagged(stack: LocalStack, tag: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(stack) if tag in line["tags"]]


def _tag() -> str:
    return "t-" + secrets.token_hex(6)


def test_a_served_request_is_one_line_with_the_providers_figures(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid, tag = new_cid(), _tag()
    answer = raw.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": user("hi", tokens=6, cid=cid), "tags": [tag]},
        headers={**auth, "X-Edgee-Tags": "from-header"},
    )
    assert answer.status_code == 200
    (line,) = tagged(stack, tag)
    assert set(line) == LINE_KEYS
    (entry,) = journal(stack.mock.url, cid)
    assert line["prompt_tokens"] == entry["usage"]["prompt_tokens"] == answer.json()["usage"]["prompt_tokens"]
    assert line["completion_tokens"] == 6
    assert line["key"] == "default" and line["model"] == "openai/gpt-4o" and line["provider"] == "openai"
    assert line["endpoint"] == "/v1/chat/completions"
    assert line["status"] == 200 and line["error"] is None and line["stream"] is False
    assert line["compression"] is None
    assert line["tags"] == [tag, "from-header"]
    assert line["latency_ms"] > 0 and line["request_id"].startswith("req_")
    assert line["time"].endswith("Z")
    # gpt-4o at 2.5 / 10 USD per million tokens
    assert line["cost_micro_usd"] == round(line["prompt_tokens"] * 2.5 + 6 * 10)


def test_no_key_and_no_secret_is_ever_written(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    raw.post("/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": user("hi")}, headers=auth)
    raw.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": user("hi")},
        headers={"Authorization": "Bearer gp-not-a-key-" + "x" * 8},
    )
    text = stack.request_log.read_text(encoding="utf-8")
    for secret in stack.keys.values():
        assert secret not in text
    assert "gp-not-a-key-" not in text


def test_refusals_are_logged_with_their_status(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    tag = _tag()
    missing_key = raw.post(
        "/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": user("hi"), "tags": [tag]}
    )
    assert missing_key.status_code == 401
    unknown_model = raw.post(
        "/v1/chat/completions",
        json={"model": "openai/no-such", "messages": user("hi"), "tags": [tag]},
        headers=auth,
    )
    assert unknown_model.status_code == 400
    # a 401 is refused before the body is read, so its tags are unknown: it is found by elimination
    (refused,) = tagged(stack, tag)
    assert refused["status"] == 400 and refused["error"] == "model_not_found"
    assert refused["key"] == "default" and refused["provider"] is None and refused["prompt_tokens"] is None
    assert any(
        line["status"] == 401 and line["key"] is None and line["error"] == "unauthorized"
        for line in log_lines(stack)
    )


def test_a_provider_failure_is_logged(raw: httpx.Client, auth: dict[str, str], stack: LocalStack) -> None:
    tag = _tag()
    answer = raw.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": user("hi", scenario="error", status=500), "tags": [tag]},
        headers=auth,
    )
    assert answer.status_code == 502
    (line,) = tagged(stack, tag)
    assert line["status"] == 502 and line["provider"] == "openai" and line["error"] == "provider_error"


def test_a_stream_that_fails_after_it_started_logs_the_error_events_status(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    tag = _tag()
    body = {
        "model": "openai/gpt-4o",
        "messages": user("x", tokens=6, fault="mid_stream_error"),
        "stream": True,
    }
    answer = raw.post("/v1/chat/completions", json={**body, "tags": [tag]}, headers=auth)
    assert answer.status_code == 200 and "[DONE]" not in sse_events(answer.text)
    (line,) = tagged(stack, tag)
    assert line["status"] == 502 and line["error"] == "provider_error" and line["stream"] is True
    assert line["prompt_tokens"] is None


def test_a_stream_is_logged_once_it_completes(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    cid, tag = new_cid(), _tag()
    answer = raw.post(
        "/v1/chat/completions",
        json={
            "model": "openai/gpt-4o",
            "messages": user("hi", tokens=4, cid=cid),
            "stream": True,
            "tags": [tag],
        },
        headers=auth,
    )
    assert sse_events(answer.text)[-1] == "[DONE]"
    (line,) = tagged(stack, tag)
    (entry,) = journal(stack.mock.url, cid)
    assert line["stream"] is True and line["status"] == 200
    assert line["prompt_tokens"] == entry["usage"]["prompt_tokens"] and line["completion_tokens"] == 4


def test_compression_and_compress_are_logged(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    from .test_compression_http import COMPRESS, transcript

    tag = _tag()
    body = {"model": "openai/gpt-4o", "messages": transcript(new_cid()), "tags": [tag]}
    chat = raw.post("/v1/chat/completions", json=body, headers={**auth, **COMPRESS}).json()
    compress = raw.post("/v1/compress", json=body, headers=auth).json()
    chat_line, compress_line = tagged(stack, tag)
    assert chat_line["compression"] == {
        "saved_tokens": chat["compression"]["saved_tokens"],
        "time_ms": chat["compression"]["time_ms"],
    }
    assert compress_line["endpoint"] == "/v1/compress" and compress_line["status"] == 200
    assert compress_line["provider"] is None and compress_line["prompt_tokens"] is None
    stats = compress["compression"]
    assert compress_line["compression"]["saved_tokens"] == (
        stats["uncompressed_input_tokens"] - stats["compressed_input_tokens"]
    )


def test_tags_are_bounded(raw: httpx.Client, auth: dict[str, str], stack: LocalStack) -> None:
    marker = _tag()
    tags = [marker] + [f"{n:03d}" + "x" * 500 for n in range(60)]
    raw.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": user("hi"), "tags": tags},
        headers=auth,
    )
    (line,) = tagged(stack, marker)
    assert len(line["tags"]) == 32 and all(len(tag) <= 128 for tag in line["tags"])


def test_tags_with_line_separators_stay_on_one_line(
    raw: httpx.Client, auth: dict[str, str], stack: LocalStack
) -> None:
    """Seen first from the property layer's generated tags: a raw U+2028 split a line for splitlines()."""
    marker = _tag()
    odd = ["a\u2028b", "c\u2029d", "e\x85f", "g\x0bh", "i\x1cj", "k\u00e9l", "\u0627\u0644\u0643\u0644"]
    raw.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": user("hi"), "tags": [marker, *odd]},
        headers=auth,
    )
    (line,) = tagged(stack, marker)
    assert line["tags"] == [marker, *odd]
    text = stack.request_log.read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(text.split("\n")) - 1


# ---------------------------------------------------------------- configuration


MINIMAL = {
    "providers": {"openai": {"dialect": "openai", "base_url": "http://127.0.0.1:9/v1"}},
    "models": [{"id": "openai/gpt-4o", "provider": "openai", "created": 1}],
}


def test_config_request_log_and_key_compression_default() -> None:
    config = parse_config(
        {
            **MINIMAL,
            "request_log": "requests.jsonl",
            "keys": [{"name": "k", "key": "s", "compression": True}],
        },
        env={},
    )
    assert config.request_log == "requests.jsonl"
    assert config.keys[0].compression is True
    assert config.with_request_log("other.jsonl").request_log == "other.jsonl"
    assert config.with_request_log(None).request_log == "requests.jsonl"
    with pytest.raises(ConfigError, match="request_log"):
        parse_config({**MINIMAL, "request_log": 3}, env={})
    with pytest.raises(ConfigError, match=r"keys\[0\]\.compression"):
        parse_config({**MINIMAL, "keys": [{"name": "k", "key": "s", "compression": "yes"}]}, env={})


def test_an_unwritable_request_log_is_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "requests.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "gateway", "--port", "0", "--request-log", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "request log" in done.stderr


# ---------------------------------------------------------------- the switch (D30), without servers


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        (None, None, None),
        ("true", None, True),
        ("0", None, False),
        (None, True, True),
        (None, False, False),
        ("false", True, True),
        ("1", False, True),
        ("0", False, False),
        (None, "yes", None),  # only a JSON boolean counts in the body
    ],
)
def test_compression_switch_merges_header_and_body(
    header: str | None, body: Any, expected: bool | None
) -> None:
    from starlette.datastructures import Headers

    from gateproof.openapi import validators
    from gateproof.reference_gateway._compression_report import compression_wanted
    from gateproof.reference_gateway._validation import RequestValidator

    headers = Headers({"x-edgee-enable-compression": header} if header is not None else {})
    fields = {"enable_compression": body} if body is not None else {}
    said = RequestValidator(validators()).options(fields, headers).compression
    assert said is expected
    # the key's default decides only when the request said nothing
    assert compression_wanted(said, key_default=True) is (True if expected is None else expected)
    assert compression_wanted(said, key_default=False) is (False if expected is None else expected)


def test_a_client_that_leaves_before_the_answer_is_logged_as_499(
    stack: LocalStack, auth: dict[str, str]
) -> None:
    tag = _tag()
    body = {
        "model": "openai/gpt-4o",
        "messages": user("x", fault="slow_headers", fault_ms=3000),
        "tags": [tag],
    }
    impatient = httpx.Client(base_url=stack.gateway.url, timeout=0.5, trust_env=False)
    with impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post("/v1/chat/completions", json=body, headers=auth)
    deadline = time.monotonic() + 5
    while not tagged(stack, tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    (line,) = tagged(stack, tag)
    assert line["status"] == 499 and line["error"] == "client_closed"
    assert line["prompt_tokens"] is None
