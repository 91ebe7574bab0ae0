"""Broken targets produce a report that says what broke: no traceback, no hang, a meaningful exit code.

Each target is a few lines of raw socket server on loopback, so the harness meets
exactly the misbehaviour under test: garbage answers, silence, dropped connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Handler = Callable[[socket.socket], None]


def _answer_garbage(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    )


def _stay_silent(conn: socket.socket) -> None:
    conn.recv(65536)
    time.sleep(30)


def _drop_after_probe(conn: socket.socket) -> None:
    request = conn.recv(65536)
    if request.startswith(b"GET /v1/models"):
        body = b'{"object": "list", "data": []}'
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
    # every other request: the connection closes without an answer


class _Server:
    def __init__(self, handler: Handler) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                self.handler(conn)

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], int]]:
    servers: list[_Server] = []

    def start(handler: Handler) -> int:
        server = _Server(handler)
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.close()


def _contract(
    port: int, tmp_path: Path, *extra: str, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], dict[str, object], float]:
    config = tmp_path / "target.yaml"
    config.write_text(
        f"target: {{base_url: 'http://127.0.0.1:{port}/v1'}}\ntimeout_s: 1\nproperty: {{max_examples: 5}}\n"
    )
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", "--config", str(config), "--json", str(tmp_path / "r.json"), *extra],
        capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "GATEPROOF_API_KEY": "gp-hostile-test-key"},
    )  # fmt: skip
    elapsed = time.monotonic() - started
    results = json.loads((tmp_path / "r.json").read_text()) if (tmp_path / "r.json").exists() else {}
    return completed, results, elapsed


def test_garbage_answers_fail_the_run_with_reasons(serve: Callable[[Handler], int], tmp_path: Path) -> None:
    completed, results, _ = _contract(serve(_answer_garbage), tmp_path)
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    failed = [r for r in results["results"] if r["outcome"] == "failed"]  # type: ignore[index]
    assert any(r["check"] == "content_type_matches_mode" for r in failed)
    assert any(r["check"] == "status_code_expected" and r["scenario"] == "auth_missing" for r in failed)
    assert all(r["reason"] for r in failed)


def test_a_silent_target_is_given_up_on_quickly(serve: Callable[[Handler], int], tmp_path: Path) -> None:
    port = serve(_stay_silent)
    completed, results, elapsed = _contract(port, tmp_path)
    # the probe times out first: nothing answers HTTP, so the target counts as unreachable
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "UNREACHABLE: timeout:" in completed.stdout
    assert elapsed < 30
    assert results["unreachable"]


def test_a_target_that_drops_connections_is_reported_not_crashed(
    serve: Callable[[Handler], int], tmp_path: Path
) -> None:
    completed, results, elapsed = _contract(serve(_drop_after_probe), tmp_path)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [r for r in results["results"] if r["outcome"] == "error"]  # type: ignore[index]
    assert errors and any("stopped answering" in r["reason"] for r in errors)
    assert any(r["layer"] == "property" and "stopped answering" in r["reason"] for r in errors)
    assert elapsed < 60
