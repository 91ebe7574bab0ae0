"""`gateproof contract` on bad input and unreachable targets: clear errors, distinct exit codes."""

from __future__ import annotations

import base64
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from gateproof.cli.launch import LocalStack, free_port


def _contract(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_list_checks_prints_the_registry() -> None:
    completed = _contract("--list-checks")
    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    assert len(lines) > 40
    assert any(line.split()[1] == "done_terminates_stream" for line in lines)
    assert any(line.split()[1] == "negative_data_rejection" for line in lines)


def test_non_loopback_target_is_refused() -> None:
    completed = _contract("--base-url", "http://192.0.2.10/v1", env={"GATEPROOF_API_KEY": "x"})
    assert completed.returncode == 2
    assert "loopback" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_missing_key_env_is_a_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GATEPROOF_TEST_NO_SUCH_KEY"}
    completed = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", "--base-url", "http://127.0.0.1:9/v1",
         "--api-key-env", "GATEPROOF_TEST_NO_SUCH_KEY"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "GATEPROOF_TEST_NO_SUCH_KEY" in completed.stderr


def test_unreachable_target_exits_3_with_a_report(tmp_path: object) -> None:
    port = free_port()
    completed = _contract(
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--json",
        f"{tmp_path}/r.json",
        env={"GATEPROOF_API_KEY": "k"},
    )
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "UNREACHABLE" in completed.stdout
    assert "Traceback" not in completed.stderr


def test_unknown_profile_is_refused() -> None:
    completed = _contract("--base-url", "http://127.0.0.1:9/v1", "--profile", "nope")
    assert completed.returncode == 2


# -- keys a target echoes back never reach any output -------------------------------------------------

#: an unshaped key (no sk- prefix, nothing a pattern could recognise), an sk- key, and one with the
#: characters that URL- and JSON-encoding change
ECHO_KEYS = {
    "ECHO_TEST_KEY": "Zq9.unshaped-key.7T",
    "ECHO_TEST_INACTIVE_KEY": "sk-echo-inactive-0123456789abcdef",
    "ECHO_TEST_RESTRICTED_KEY": "Rk/77+restricted=key:unshaped",
    "ECHO_TEST_UPSTREAM_KEY": "up/stream+Key=9Qx.unshaped",
}


def _encodings(secret: str) -> set[str]:
    """Every form a careless target echoes a credential in."""
    forms: set[str] = set()
    for value in (secret, f"Bearer {secret}"):
        raw = value.encode()
        forms |= {
            value,
            base64.b64encode(raw).decode(),
            base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value),
            "".join(f"%{byte:02X}" for byte in raw),
            json.dumps(value)[1:-1].replace("/", "\\/"),
        }
    return forms


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """A target that quotes the Authorization value back in every form, in bodies and headers."""

    timeout = 5  # every socket wait of the server is bounded
    seen: ClassVar[set[str]] = set()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        token = auth.partition(" ")[2]
        self.seen.add(token)
        upstream = ECHO_KEYS["ECHO_TEST_UPSTREAM_KEY"]
        echoes = {
            "message": f"Incorrect API key provided: {auth} (upstream said: key {upstream} refused)",
            "key": token,
            "b64": base64.b64encode(auth.encode()).decode(),
            "b64_key": base64.b64encode(token.encode()).decode(),
            "b64_basic": base64.b64encode(f"user:{token}".encode()).decode(),
            "url": urllib.parse.quote(auth, safe=""),
            "url_plus": urllib.parse.quote_plus(token),
            "percent": "".join(f"%{byte:02x}" for byte in token.encode()),
        }
        status = 200 if token == ECHO_KEYS["ECHO_TEST_KEY"] else 401
        if self.path.endswith("/models"):
            body = json.dumps({"object": "list", "data": [], "echo": echoes}).encode()
            content_type = "application/json"
        elif status == 200:
            # not JSON, so the excerpt keeps the escaped text as sent
            body = ("text echo: " + json.dumps(echoes).replace("/", "\\/")).encode()
            content_type = "text/plain"
        else:
            body = json.dumps({"error": {"type": "invalid_api_key", **echoes}}).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Authorization", auth)
        self.send_header("X-Echo-Base64", echoes["b64"])
        self.send_header("X-Echo-Url", echoes["url"])
        self.send_header("WWW-Authenticate", f'Bearer error="invalid_token", token="{token}"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_TRACE = _answer


@pytest.fixture
def echo_target() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timing
def test_keys_the_target_echoes_reach_no_output(echo_target: int, tmp_path: Path) -> None:
    config = tmp_path / "target.yaml"
    config.write_text(
        f"target: {{base_url: 'http://127.0.0.1:{echo_target}/v1', api_key_env: ECHO_TEST_KEY}}\n"
        "forbidden: {inactive_key_env: ECHO_TEST_INACTIVE_KEY, restricted_key_env: ECHO_TEST_RESTRICTED_KEY,"
        " restricted_model: openai/gpt-4o-mini}\n"
        "mock: {upstream_key_env: ECHO_TEST_UPSTREAM_KEY}\n"
        "timeout_s: 5\nproperty: {max_examples: 3}\n"
    )
    out = tmp_path / "out"
    completed = _contract(
        "--config", str(config), "--out", str(out), "--json", str(tmp_path / "r.json"),
        "--junit", str(tmp_path / "j.xml"), env=ECHO_KEYS,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout + completed.stderr[-3000:]
    wrong_keys = {token for token in _EchoHandler.seen if token.startswith("gp-wrong-")}
    assert wrong_keys, "the auth scenarios sent no generated wrong key"
    secrets = [*ECHO_KEYS.values(), *wrong_keys]
    outputs = {
        path.name: path.read_text() for path in [*out.iterdir(), tmp_path / "r.json", tmp_path / "j.xml"]
    }
    assert {"results.json", "summary.md", "junit.xml", "index.html"} <= set(outputs)
    outputs["stdout"], outputs["stderr"] = completed.stdout, completed.stderr
    leaks = {
        (name, form): text.count(form)
        for secret in secrets
        for form in _encodings(secret)
        for name, text in outputs.items()
        if form in text
    }
    assert not leaks, f"{sum(leaks.values())} occurrences: {sorted(leaks)[:12]}"
    # the echoes were recorded (redacted), not dropped
    assert "Incorrect API key provided" in outputs["results.json"]


# -- a selection that selects nothing is bad input, not a pass -----------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--checks", "no_such_check"], "done_terminates_stream"),
        (["--checks", ","], "done_terminates_stream"),
        (["--checks", ""], "done_terminates_stream"),
        (["--layers", "property", "--checks", "done_terminates_stream"], "negative_data_rejection"),
        (["--scenarios", "no_such_scenario"], "chat_basic"),
        (["--scenarios", ","], "chat_basic"),
        (["--layers", "nope"], "property"),
        (["--layers", ","], "scenario"),
        # known names, but the chosen scenario runs none of the chosen checks: caught after the run
        (["--layers", "scenario", "--scenarios", "models_list", "--checks", "done_terminates_stream"], "--list-checks"),
    ],
    ids=["unknown-check", "empty-checks", "blank-checks", "check-outside-layers", "unknown-scenario",
         "empty-scenarios", "unknown-layer", "empty-layers", "scenario-without-check"],
)  # fmt: skip
def test_a_selection_of_nothing_is_exit_2_naming_the_valid_names(
    stack: LocalStack, options: list[str], named: str
) -> None:
    completed = _contract("--base-url", stack.base_url, *options, env={"GATEPROOF_API_KEY": stack.api_key})
    assert completed.returncode == 2, completed.stdout + completed.stderr[-2000:]
    assert named in completed.stderr
    assert "Traceback" not in completed.stderr
    assert "PASS" not in completed.stdout


# -- an interrupted run is never a pass -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_during_the_property_layer_is_never_a_pass(
    stack: LocalStack, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "gateproof.cli", "contract", "--base-url", stack.base_url, "--layers", "property",
         "--max-examples", "200", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GATEPROOF_API_KEY": stack.api_key},
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        # "property: <operation> (<phase>)": schemathesis' engine is running (not merely imported)
        while not any(line.startswith("[") and "] property: " in line for line in list(lines)):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)[-2000:]
            time.sleep(0.05)
        process.send_signal(signum)
        stdout, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert process.returncode == code, stdout + stderr[-2000:]
    assert "PASS" not in stdout and "INTERRUPTED" in stdout
    assert "Traceback" not in stderr
    results = json.loads((out / "results.json").read_text())["contract"]
    assert results["interrupted"] is True and results["passed"] is False
    assert 'type="interrupted"' in (out / "junit.xml").read_text()
    assert "Interrupted" in (out / "summary.md").read_text()
