"""Fixtures for the reference gateway's tests: SDK and raw clients, journal reads, extra gateways.

The main target is the session ``stack`` (mock + gateway) from tests/conftest.py.
Gateways with a fault, or with a special config, are started here against the shared
``mock_server``; they are started together, in threads, because each takes most of a
second to import and become ready.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateproof.cli.launch import (
    HEALTH_PATH,
    KEY_ENVS,
    STACK_LIMITS,
    UPSTREAMS,
    LocalServer,
    LocalStack,
    free_port,
    start_server,
)
from gateproof.openapi import format_directive
from gateproof.selftest import FAULTS

#: client keys for the gateways started here (the stack has its own random ones)
KEYS = {role: f"gp-rg-test-{role}-" + secrets.token_urlsafe(12) for role in KEY_ENVS}
#: the provider credential those gateways send upstream
UPSTREAM_KEY = "sk-rg-upstream-" + secrets.token_urlsafe(12)
#: the stack fixture's upstream credential (tests/conftest.py sets it before starting the stack)
STACK_UPSTREAM_ENV = "GATEPROOF_UPSTREAM_OPENAI_KEY"

TIMEOUT = httpx.Timeout(15.0)


def directive(**keys: Any) -> str:
    """A mock directive, e.g. ``directive(scenario="tool_call", cid="abc")``."""
    return format_directive(**keys)


def new_cid(prefix: str = "rg") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def user(text: str, **keys: Any) -> list[dict[str, Any]]:
    """A one-message conversation carrying a directive."""
    return [{"role": "user", "content": f"{text} {directive(**keys)}"}]


def fingerprint(secret: str) -> str:
    """How the mock journals a credential: never the value, a short sha256 of it."""
    return "[redacted sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12] + "]"


def journal(mock_url: str, cid: str) -> list[dict[str, Any]]:
    """What the mock received for one correlation id, oldest first."""
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        response = client.get(f"{mock_url}/_gateproof/journal", params={"cid": cid})
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def sse_events(body: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]


@pytest.fixture
def sdk(stack: LocalStack) -> Iterator[openai.OpenAI]:
    """The official OpenAI SDK pointed at the stack's gateway."""
    client = openai.OpenAI(base_url=stack.base_url, api_key=stack.api_key, max_retries=0, timeout=15.0)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def raw(stack: LocalStack) -> Iterator[httpx.Client]:
    """A plain HTTP client on the stack's gateway, for what the SDK hides (headers, bytes, bad bodies)."""
    with httpx.Client(base_url=stack.gateway.url, timeout=TIMEOUT, trust_env=False) as client:
        yield client


@pytest.fixture
def auth(stack: LocalStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.api_key}"}


def _gateway_env() -> dict[str, str]:
    return {**{KEY_ENVS[role]: key for role, key in KEYS.items()}, STACK_UPSTREAM_ENV: UPSTREAM_KEY}


def _start_gateway(name: str, upstream: str, extra: list[str], logs: Path) -> LocalServer:
    return start_server(
        name,
        ["gateway", "--upstream", f"openai={upstream}/v1", "--log-level", "warning", *extra],
        env=_gateway_env(),
        log_dir=logs,
    )


def _request_log_in(logs: Path, name: str) -> Path:
    return logs / f"{name}-requests.jsonl"


def request_log_of(server: LocalServer) -> Path:
    """Where a fault gateway writes its structured request log (D34): beside its server log.

    The tags faults show only there, so each fault gateway writes one, as the stack's does.
    """
    return _request_log_in(server.log_path.parent, server.name)


def _start_fault_gateway(fault: str, upstream: str, logs: Path) -> LocalServer:
    """A gateway running ``fault`` (the launcher makes sure the server that answers is this one).

    Every provider of the default config reaches the shared mock (``_start_gateway`` wires the
    OpenAI one), so the translation faults of the Anthropic and Gemini routes show too.
    """
    name = f"gateway-{fault}"
    others = [up for up in UPSTREAMS if up.provider != "openai"]
    routes = [arg for up in others for arg in ("--upstream", f"{up.provider}={upstream}{up.prefix}")]
    # the stack's timeouts (STACK_LIMITS), so a bad-day fault shows in seconds, as on the stack
    extra = ["--fault", fault, "--request-log", str(_request_log_in(logs, name)), *routes, *STACK_LIMITS]
    server = _start_gateway(name, upstream, extra, logs)
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        health = client.get(server.url + HEALTH_PATH).json()
    assert health.get("fault") == fault, f"{server.url} runs {health.get('fault')!r}, not {fault!r}"
    return server


@pytest.fixture(scope="session")
def fault_gateways(
    mock_server: LocalServer, logs_dir: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, LocalServer]]:
    """One gateway per registered fault the selected tests probe (``-k`` picks some), behind the shared mock."""
    logs = logs_dir / "fault-gateways"
    started: dict[str, LocalServer] = {}
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {
                name: pool.submit(_start_fault_gateway, name, mock_server.url, logs)
                for name in _probed_faults(request.session.items)
            }
            failures: list[BaseException] = []
            for name, future in futures.items():
                try:
                    started[name] = future.result(timeout=120)
                except Exception as exc:  # keep collecting, so every started gateway is stopped
                    failures.append(exc)
        if failures:
            raise failures[0]
        yield started
    finally:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(LocalServer.stop, started.values()))


def _probed_faults(items: list[pytest.Item]) -> list[str]:
    """The faults whose gateways the selected tests use: starting the others is wasted work."""
    wanted: set[str] = set()
    for item in items:
        if "fault_gateways" not in getattr(item, "fixturenames", ()):
            continue
        params = getattr(item, "callspec", None)
        wanted.add(params.params["name"] if params is not None and "name" in params.params else "no_done")
    return [name for name in FAULTS if name in wanted]


SHORT_TIMEOUT_CONFIG = """\
limits:
  provider_timeout_s: 0.5
  connect_timeout_s: 1
  first_byte_timeout_s: 1.5
  stream_idle_timeout_s: 0.5
providers:
  openai:
    dialect: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: GATEPROOF_UPSTREAM_OPENAI_KEY
models:
  - id: openai/gpt-4o
    provider: openai
    upstream_model: gpt-4o
    created: 1715367049
keys:
  - name: default
    key_env: GATEPROOF_API_KEY
"""


@pytest.fixture(scope="session")
def short_timeout_gateway(
    mock_server: LocalServer, logs_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    """A gateway from a custom config file: provider and idle timeouts 0.5 s, first byte 1.5 s."""
    config = tmp_path_factory.mktemp("config") / "short-timeout.yaml"
    config.write_text(SHORT_TIMEOUT_CONFIG)
    server = _start_gateway(
        "gateway-short-timeout", mock_server.url, ["--config", str(config)], logs_dir / "short"
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dead_upstream_gateway(logs_dir: Path) -> Iterator[LocalServer]:
    """A gateway whose provider address has nothing listening (a connection failure)."""
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    server = _start_gateway("gateway-dead-upstream", nothing_listens, [], logs_dir / "dead")
    try:
        yield server
    finally:
        server.stop()
