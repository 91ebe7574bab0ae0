"""What the property layer sends: the configured model in every phase, nothing Edgee-only to
an openai-core target, the configured extra headers on every request.

A recording relay on loopback sits between schemathesis and the reference gateway and keeps
every request as it arrived (the mock's journal would show only what the gateway forwarded,
after it stripped the Edgee fields).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from gateproof.cli.launch import LocalStack
from gateproof.contract import Outcome, Profile
from gateproof.contract._property import PropertyRun, run_property
from gateproof.openapi import load_spec

from .conftest import stack_config

#: a model the reference gateway serves that none of the spec's examples names
MODEL = "openai/gpt-4.1"
EXTRA = {"X-Gateproof-Route": "property-test"}
_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive", "content-encoding"})


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Relay:
    """A loopback relay to ``upstream`` that records each request (method, path, headers, JSON body)."""

    def __init__(self, upstream: str) -> None:
        self.seen: list[Seen] = []
        client = httpx.Client(base_url=upstream, trust_env=False, timeout=30.0)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                headers = {k.lower(): v for k, v in self.headers.items()}
                relay.seen.append(Seen(self.command, self.path, headers, body))
                forwarded = {k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}}
                answer = client.request(self.command, self.path, content=raw, headers=forwarded)
                self.send_response(answer.status_code)
                for name, value in answer.headers.multi_items():
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_TRACE = _relay

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._client = client
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


def _run(stack: LocalStack, profile: Profile) -> tuple[PropertyRun, list[Seen]]:
    with Relay(stack.gateway.url) as relay:
        config = stack_config(
            stack,
            profile,
            base_url=relay.url + "/v1",
            models={"default": MODEL},
            extra_headers=EXTRA,
            property_examples=10,
        )
        run = run_property(config, stack.api_key)
    return run, relay.seen


@pytest.fixture(scope="module")
def core_run(stack: LocalStack) -> tuple[PropertyRun, list[Seen]]:
    return _run(stack, Profile.OPENAI_CORE)


@pytest.fixture(scope="module")
def edgee_run(stack: LocalStack) -> tuple[PropertyRun, list[Seen]]:
    return _run(stack, Profile.EDGEE)


def _chat_bodies(seen: list[Seen]) -> list[dict[str, Any]]:
    return [s.body for s in seen if s.path.startswith("/v1/chat/completions") and isinstance(s.body, dict)]


def _spec_examples() -> list[dict[str, Any]]:
    """The request examples the spec gives for chat completions, as written."""
    operation = load_spec()["paths"]["/v1/chat/completions"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    return [dict(example["value"]) for example in examples.values()]


@pytest.mark.parametrize("profile", list(Profile))
def test_the_examples_phase_sends_the_configured_model(
    profile: Profile, core_run: tuple[PropertyRun, list[Seen]], edgee_run: tuple[PropertyRun, list[Seen]]
) -> None:
    _, seen = core_run if profile is Profile.OPENAI_CORE else edgee_run
    bodies = _chat_bodies(seen)
    written = _spec_examples()
    assert "openai/gpt-4o-mini" in {example["model"] for example in written}  # what used to be sent
    for example in written:
        assert example not in bodies or example["model"] == MODEL, f"sent as the spec writes it: {example}"
        pinned = {**example, "model": MODEL}
        if profile is Profile.OPENAI_CORE:
            pinned.pop("tags", None)
        assert pinned in bodies, f"the spec's example was not sent with the configured model: {pinned}"


def test_openai_core_is_sent_no_edgee_field_or_header(core_run: tuple[PropertyRun, list[Seen]]) -> None:
    _, seen = core_run
    bodies = _chat_bodies(seen)
    assert len(bodies) > 10
    for body in bodies:
        edgee = [k for k in body if k in ("tags", "enable_debug") or k.startswith("edgee_")]
        assert not edgee, f"openai-core was sent {edgee}: {body}"
        assert body.get("model") == MODEL  # positive cases only, every one pinned
    for request in seen:
        assert not [h for h in request.headers if h.startswith("x-edgee-")], request


def test_the_edgee_profile_still_exercises_edgee_fields(edgee_run: tuple[PropertyRun, list[Seen]]) -> None:
    _, seen = edgee_run
    assert any("tags" in body or "enable_debug" in body for body in _chat_bodies(seen))


@pytest.mark.parametrize("profile", list(Profile))
def test_extra_headers_go_on_every_request(
    profile: Profile, core_run: tuple[PropertyRun, list[Seen]], edgee_run: tuple[PropertyRun, list[Seen]]
) -> None:
    _, seen = core_run if profile is Profile.OPENAI_CORE else edgee_run
    missing = [
        f"{s.method} {s.path}"
        for s in seen
        if s.headers.get("x-gateproof-route") != EXTRA["X-Gateproof-Route"]
    ]
    assert seen and not missing, (
        f"{len(missing)} of {len(seen)} requests lacked the extra header: {missing[:5]}"
    )
    # the unauthenticated probes of ignored_auth carry them too
    assert any("authorization" not in s.headers for s in seen)


def test_openai_core_judges_response_schemas_against_the_core_view(
    core_run: tuple[PropertyRun, list[Seen]],
) -> None:
    run, _ = core_run
    judged = {(r.check, r.route): r for r in run.results}
    schema = judged[("response_schema_conformance", "POST /v1/chat/completions")]
    assert schema.outcome is Outcome.PASSED and schema.cases > 10, schema.reason
    assert judged[("response_headers_conformance", "all operations")].outcome is Outcome.NOT_APPLICABLE
    failed = [
        f"{r.check} {r.route}: {r.reason}"
        for r in run.results
        if r.outcome in (Outcome.FAILED, Outcome.ERROR)
    ]
    assert not failed
