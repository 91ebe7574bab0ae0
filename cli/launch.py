"""Start the mock provider and the reference gateway as child processes on loopback.

`gateproof run`, the test suite and the benchmarks all need "a mock and a gateway
on free ports, ready, and gone again afterwards". This module is the one place
that knows how: pick a free loopback port, start ``python -m gateproof.cli
<command>`` in its own process group, wait (with a deadline) until its health
endpoint answers, and stop the whole group on exit, on Ctrl-C, on SIGTERM and on failure.

Stopping is only as good as its coverage of every instant: an interrupt that lands between
``Popen`` returning and the cleanup path taking charge of the child, or in the middle of
stopping one server of two, would leak a process in its own process group that nothing else
will ever stop. Those few places run with SIGINT and SIGTERM deferred (``signals_deferred``):
a signal arriving then is delivered as soon as the child is in safe hands.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from gateproof.mock_providers.dialects.anthropic import PREFIX as ANTHROPIC_PREFIX
from gateproof.mock_providers.dialects.gemini import GEMINI_PREFIX
from gateproof.openapi import HEALTH_PATH
from gateproof.reference_gateway import OWNER_ENV

__all__ = [
    "HEALTH_PATH",
    "INSTANCE_ENV",
    "KEY_ENVS",
    "REQUEST_LOG_FILE",
    "STACK_FALLBACK_MODEL",
    "STACK_FIRST_BYTE_TIMEOUT_S",
    "STACK_LIMITS",
    "STACK_PROVIDERS",
    "STACK_STREAM_IDLE_TIMEOUT_S",
    "STACK_TIMEOUTS",
    "UPSTREAMS",
    "UPSTREAM_KEY_ENV",
    "UPSTREAM_KEY_ENVS",
    "UPSTREAM_ROLE",
    "LaunchError",
    "LocalServer",
    "LocalStack",
    "PortTaken",
    "Upstream",
    "free_port",
    "local_stack",
    "signals_deferred",
    "start_server",
]

#: every server gateproof starts answers 200 here once it is ready, echoing INSTANCE_ENV
#: a random id per start, passed to the child and echoed by its health endpoint: ``free_port``
#: releases the port it found, so two servers starting at once can pick the same one, and the
#: loser's readiness probe would otherwise be answered by the winner
INSTANCE_ENV = "GATEPROOF_INSTANCE_ID"
#: how many times a start is retried on a fresh port when another server won the port
PORT_ATTEMPTS = 3
LOOPBACK = "127.0.0.1"


class LaunchError(RuntimeError):
    """A local server did not start; the message carries the tail of its log."""


_DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the duration of the block, then deliver them.

    The handlers in place are swapped for a recorder and restored on exit, and every signal that
    arrived meanwhile is raised again, so it reaches the handler it was meant for (a Ctrl-C
    becomes the usual KeyboardInterrupt, just a moment later). The signal mask is not used: it is
    inherited by children, and a server started with SIGTERM blocked could not be stopped.
    Outside the main thread (where Python handles no signals) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous: dict[int, Callable[[int, FrameType | None], Any] | int | signal.Handlers] = {}
    for sig in _DEFERRED_SIGNALS:
        handler = signal.getsignal(sig)
        if handler is not None:  # None: set outside Python, and it could not be put back
            previous[sig] = handler
            signal.signal(sig, record)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def free_port(host: str = LOOPBACK) -> int:
    """Ask the kernel for a free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalServer:
    """One child process serving HTTP on loopback."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process group: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Runs with Ctrl-C and SIGTERM deferred: an impatient second Ctrl-C must not leave the
        group half stopped.
        """
        with signals_deferred():
            if self.process.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)


class PortTaken(LaunchError):
    """Another server answered on the chosen port: the start is retried on a fresh one."""


def start_server(
    name: str,
    command: Sequence[str],
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    ready_timeout: float = 30.0,
    owner: list[LocalServer] | None = None,
) -> LocalServer:
    """Run ``gateproof <command> --host 127.0.0.1 --port <port>`` and wait until it is ready.

    Without ``port`` a free one is chosen, and a start that loses its port to another server is
    retried on a new one. With ``owner``, the server is appended to it the moment its process
    exists, so a caller interrupted at any instant (even as this returns) can still stop it.
    """
    attempts = 1 if port is not None else PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return _start_once(name, command, port or free_port(), env, log_dir, ready_timeout, owner)
        except PortTaken:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _start_once(
    name: str,
    command: Sequence[str],
    port: int,
    env: dict[str, str] | None,
    log_dir: Path | None,
    ready_timeout: float,
    owner: list[LocalServer] | None = None,
) -> LocalServer:
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="gateproof-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    argv = [sys.executable, "-m", "gateproof.cli", *command, "--host", LOOPBACK, "--port", str(port)]
    instance = secrets.token_hex(8)
    child_env = {**os.environ, **(env or {}), INSTANCE_ENV: instance, OWNER_ENV: str(os.getpid())}
    server: LocalServer | None = None
    try:
        # From fork to the moment ``server`` is set, an interrupt would orphan the child.
        with signals_deferred():
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=child_env,
                    start_new_session=True,
                )
            server = LocalServer(
                name=name, url=f"http://{LOOPBACK}:{port}", process=process, log_path=log_path
            )
            if owner is not None:
                owner.append(server)
        _wait_ready(server, ready_timeout, instance)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    return server


def _wait_ready(server: LocalServer, timeout: float, instance: str) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise LaunchError(
                    f"{server.name} exited with code {server.process.returncode} before it was ready:\n"
                    f"{server.log_tail()}"
                )
            try:
                response = client.get(server.url + HEALTH_PATH)
                if response.status_code == 200:
                    if response.json().get("instance") == instance:
                        return
                    raise PortTaken(f"{server.name}: another server answers on {server.url}")
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
            if time.monotonic() > deadline:
                raise LaunchError(f"{server.name} was not ready after {timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(0.05)


@dataclass
class LocalStack:
    """The embedded default target: a mock provider behind the reference gateway."""

    mock: LocalServer
    gateway: LocalServer
    #: the gateway's client keys by role (``KEY_ENVS``), plus ``UPSTREAM_ROLE``: the credential the
    #: gateway sends the mock; every value here is a secret to scrub from what a run writes
    keys: dict[str, str]
    log_dir: Path
    extra: list[LocalServer] = field(default_factory=list)

    @property
    def api_key(self) -> str:
        """The key that may use every model."""
        return self.keys["default"]

    @property
    def base_url(self) -> str:
        """The gateway's base URL, as an OpenAI SDK wants it (with ``/v1``)."""
        return self.gateway.url + "/v1"

    @property
    def request_log(self) -> Path:
        """The gateway's structured request log (JSON lines, D34), in ``log_dir``."""
        return self.log_dir / REQUEST_LOG_FILE

    def start_gateway(
        self, name: str, args: Sequence[str] = (), *, log_dir: Path | None = None
    ) -> LocalServer:
        """Another reference gateway on this stack's mock, with its keys (``args`` e.g. ``--fault``).

        It is stopped with the stack (it joins ``extra``); stopping it earlier is fine.
        A paired run against a deliberately slower gateway, say, needs exactly this.
        """
        return start_server(
            name,
            _gateway_command(self.mock, *args),
            env=_gateway_env(self.keys),
            log_dir=log_dir or self.log_dir,
            owner=self.extra,
        )

    def stop(self) -> None:
        with signals_deferred():
            for server in [*self.extra, self.gateway, self.mock]:
                server.stop()


def _gateway_command(mock: LocalServer, *args: str) -> list[str]:
    """``gateway`` wired to every provider route of ``mock``, with the stack's limits."""
    upstreams = (arg for up in UPSTREAMS for arg in ("--upstream", f"{up.provider}={mock.url}{up.prefix}"))
    return ["gateway", *upstreams, *STACK_LIMITS, *args]


def _gateway_env(keys: dict[str, str]) -> dict[str, str]:
    """The gateway's client keys by role and each provider's upstream key, as its environment."""
    return {
        **{KEY_ENVS[role]: keys[role] for role in KEY_ENVS},
        **{upstream.key_env: keys[upstream.role] for upstream in UPSTREAMS},
    }


#: environment variables that carry the gateway's API keys to the child, by role:
#: ``default`` may use every model, ``inactive`` is switched off (403), ``restricted``
#: may use only some models (403 on the others), ``compressing`` has token compression on by
#: default (D30), ``limited`` may have 2 requests in flight (D47). See reference_gateway/default.yaml.
API_KEY_ENV = "GATEPROOF_API_KEY"
KEY_ENVS: dict[str, str] = {
    "default": API_KEY_ENV,
    "inactive": "GATEPROOF_INACTIVE_API_KEY",
    "restricted": "GATEPROOF_RESTRICTED_API_KEY",
    "compressing": "GATEPROOF_COMPRESSING_API_KEY",
    "limited": "GATEPROOF_LIMITED_API_KEY",
}
#: the key the reference gateway sends to the mock as its OpenAI provider (reference_gateway/default.yaml);
#: the stack's mock accepts only the upstream keys (``gateproof mock --api-key-env``), as a real provider would
UPSTREAM_KEY_ENV = "GATEPROOF_UPSTREAM_OPENAI_KEY"
#: the role under which ``LocalStack.keys`` holds that upstream key (not a key a client may use)
UPSTREAM_ROLE = "upstream"


@dataclass(frozen=True)
class Upstream:
    """One provider of reference_gateway/default.yaml, as the local stack wires it to the mock.

    ``key_env`` is the variable the gateway reads the provider's credential from (its
    ``api_key_env``), ``prefix`` is where the mock serves that dialect (appended to the mock's
    URL for ``--upstream NAME=URL``), ``role`` is where ``LocalStack.keys`` holds the key,
    ``dialect`` the mock dialect it reaches and ``model`` the model id the suite sends to reach
    it (the target's provider route, ``TargetConfig.providers``).
    """

    provider: str
    key_env: str
    prefix: str
    role: str
    dialect: str
    model: str


#: every provider the stack wires: each gets its own generated key and its own route into the mock
UPSTREAMS: tuple[Upstream, ...] = (
    Upstream("openai", UPSTREAM_KEY_ENV, "/v1", UPSTREAM_ROLE, "openai", "openai/gpt-4o"),
    Upstream(
        "anthropic",
        "GATEPROOF_UPSTREAM_ANTHROPIC_KEY",
        ANTHROPIC_PREFIX,
        "upstream-anthropic",
        "anthropic",
        "anthropic/claude-haiku-4-5",
    ),
    Upstream(
        "google",
        "GATEPROOF_UPSTREAM_GOOGLE_KEY",
        GEMINI_PREFIX,
        "upstream-google",
        "gemini",
        "google/gemini-2.5-flash",
    ),
)
#: the stack's provider routes for the suite: mock dialect -> the model id that reaches it
STACK_PROVIDERS: dict[str, str] = {upstream.dialect: upstream.model for upstream in UPSTREAMS}
#: the variables of all upstream keys (a value set in the environment is used instead of a generated one)
UPSTREAM_KEY_ENVS: tuple[str, ...] = tuple(upstream.key_env for upstream in UPSTREAMS)
#: the stack's gateway writes its request log (``--request-log``) to this file in the log folder
REQUEST_LOG_FILE = "gateway-requests.jsonl"
#: the stack's gateway gives up on a provider this fast (D46), so the suite's stall and slow-header
#: faults (one second longer than these) end in seconds; a suite target declares the same values
#: as ``timeouts: {first_byte_s, stream_idle_s}``
STACK_FIRST_BYTE_TIMEOUT_S = 2
STACK_STREAM_IDLE_TIMEOUT_S = 2
STACK_LIMITS: tuple[str, ...] = (
    "--limit",
    f"first_byte_timeout_s={STACK_FIRST_BYTE_TIMEOUT_S}",
    "--limit",
    f"stream_idle_timeout_s={STACK_STREAM_IDLE_TIMEOUT_S}",
)
#: the same two timeouts as a suite target declares them (``TargetConfig.timeouts``)
STACK_TIMEOUTS: dict[str, float] = {
    "first_byte_s": float(STACK_FIRST_BYTE_TIMEOUT_S),
    "stream_idle_s": float(STACK_STREAM_IDLE_TIMEOUT_S),
}
#: the model of reference_gateway/default.yaml with a fallback route (D44); a suite target declares
#: it as ``fallback_model``
STACK_FALLBACK_MODEL = "openai/gpt-4.1"


@contextlib.contextmanager
def local_stack(
    *,
    log_dir: Path | None = None,
    gateway_args: Sequence[str] = (),
    mock_args: Sequence[str] = (),
    api_key: str | None = None,
) -> Iterator[LocalStack]:
    """Start mock + reference gateway on free loopback ports; stop both on exit.

    The gateway's API keys are random per stack (the default one may be given), and
    reach the gateway through the environment (never on a command line, where ``ps``
    shows it). So does each provider's upstream key (``UPSTREAMS``): the one in its
    ``key_env`` if that is set, else a random one; the mock accepts those keys only (unless
    ``mock_args`` asks for ``--no-auth``), so a gateway that loses its provider credential
    fails here as it would against the provider.
    """
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="gateproof-stack-"))
    keys = {role: "gp-" + role + "-" + secrets.token_urlsafe(18) for role in KEY_ENVS}
    if api_key is not None:
        keys["default"] = api_key
    upstream_env: dict[str, str] = {}
    for upstream in UPSTREAMS:
        key = os.environ.get(upstream.key_env, "").strip()
        keys[upstream.role] = key or f"sk-gp-{upstream.provider}-" + secrets.token_urlsafe(24)
        upstream_env[upstream.key_env] = keys[upstream.role]
    auth_args: list[str] = []
    if "--no-auth" not in mock_args:
        auth_args = [arg for env in UPSTREAM_KEY_ENVS for arg in ("--api-key-env", env)]
    started: list[LocalServer] = []
    stack: LocalStack | None = None
    try:
        mock = start_server(
            "mock",
            ["mock", *auth_args, *mock_args],
            env=upstream_env,
            log_dir=log_dir,
            owner=started,
        )
        gateway = start_server(
            "gateway",
            _gateway_command(mock, "--request-log", str(log_dir / REQUEST_LOG_FILE), *gateway_args),
            env=_gateway_env(keys),
            log_dir=log_dir,
            owner=started,
        )
        stack = LocalStack(mock=mock, gateway=gateway, keys=keys, log_dir=log_dir)
        yield stack
    finally:
        with signals_deferred():
            if stack is not None:
                stack.stop()
            for server in reversed(started):
                server.stop()
