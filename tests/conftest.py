"""Shared fixtures: real servers on loopback, started through the same launcher as `gateproof run`."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from gateproof.cli.launch import LocalServer, LocalStack, local_stack, start_server


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM stops the run as Ctrl-C does, so fixtures still stop the servers they started.

    The servers run in sessions of their own (a Ctrl-C at the terminal must not reach them
    before their owner stops them), so nothing else would stop them when pytest is terminated.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupted)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to loopback only; a proxy from the environment must never be used."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def mock_server(logs_dir: Path) -> Iterator[LocalServer]:
    """One OpenAI-dialect mock provider for the whole session (tests isolate by correlation id).

    Lenient on purpose (any key, any model): the tests that share it judge gateways (fault
    variants, each with its own upstream key) and load runs that talk to it directly. The
    provider's own rules (keys, catalogue, limits) are held by tests/mock_providers against a
    strict mock, and the ``stack`` fixture, like ``gateproof run``, runs a strict one.
    """
    server = start_server("mock", ["mock", "--no-auth", "--any-model"], log_dir=logs_dir / "mock")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stack(logs_dir: Path) -> Iterator[LocalStack]:
    """Mock provider + reference gateway, wired together, for the whole session."""
    os.environ.setdefault("GATEPROOF_UPSTREAM_OPENAI_KEY", "sk-upstream-test-secret")
    with local_stack(log_dir=logs_dir / "stack") as running:
        yield running
